//! `tee`: copies each input frame to every linked output (e.g. to send and record the same audio).

use crate::filter::{Filter, FilterDesc, FilterError, ProcessCx};

#[derive(Debug, Default)]
pub struct Tee;

impl Tee {
    pub const OUTPUTS: usize = 4;
    pub const DESC: FilterDesc = FilterDesc { name: "tee", inputs: 1, outputs: Self::OUTPUTS, pump: false };

    pub fn new() -> Self {
        Self
    }
}

impl Filter for Tee {
    fn desc(&self) -> FilterDesc {
        Self::DESC
    }

    fn process(&mut self, cx: &mut ProcessCx<'_>) -> Result<(), FilterError> {
        while let Some(frame) = cx.pop(0) {
            let last = (0..Self::OUTPUTS).rev().find(|&p| cx.is_linked(p));
            let Some(last) = last else { continue };
            for pin in 0..last {
                if cx.is_linked(pin) {
                    cx.push(pin, frame.clone());
                }
            }
            cx.push(last, frame);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::AudioFrame;
    use crate::testing::FilterHarness;

    #[test]
    fn every_output_gets_every_frame() {
        let mut h = FilterHarness::new(Tee::new());
        h.push(0, AudioFrame::new(vec![1, 2, 3], 8000));
        h.push(0, AudioFrame::new(vec![4], 8000));
        h.run().unwrap();
        for pin in 0..Tee::OUTPUTS {
            assert_eq!(h.take_samples(pin), vec![1, 2, 3, 4], "pin {pin}");
        }
    }
}
