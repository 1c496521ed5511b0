//! `tone_gen`: a source of sine tones (ringback, beeps, test signals), 10 ms per tick.

use crate::filter::{Filter, FilterDesc, FilterError, ProcessCx};
use crate::frame::AudioFrame;

/// A sum of up to two sines (dual tones like DTMF or ringback), optionally for a limited duration.
#[derive(Debug, Clone)]
pub struct ToneGen {
    rate: u32,
    freqs: [f64; 2],
    amplitude: f64,
    /// Samples left to produce; `None` plays forever.
    remaining: Option<u64>,
    phase: u64,
}

impl ToneGen {
    pub const DESC: FilterDesc = FilterDesc { name: "tone_gen", inputs: 0, outputs: 1, pump: false };

    /// `freq2` may be 0 for a single tone. `amplitude` is the peak of each sine, 0..=32767.
    pub fn new(rate: u32, freq1: f64, freq2: f64, amplitude: i16) -> Self {
        Self { rate, freqs: [freq1, freq2], amplitude: f64::from(amplitude), remaining: None, phase: 0 }
    }

    /// Stop after `ms` milliseconds, marking the last frame end-of-stream.
    pub fn with_duration_ms(mut self, ms: u64) -> Self {
        self.remaining = Some(ms * u64::from(self.rate) / 1000);
        self
    }
}

impl Filter for ToneGen {
    fn desc(&self) -> FilterDesc {
        Self::DESC
    }

    fn process(&mut self, cx: &mut ProcessCx<'_>) -> Result<(), FilterError> {
        let mut n = u64::from(self.rate / 100);
        if let Some(rem) = self.remaining {
            if rem == 0 {
                return Ok(());
            }
            n = n.min(rem);
        }
        let samples = dual_tone(self.rate, self.freqs, self.amplitude, self.phase, n);
        self.phase += n;
        let mut frame = AudioFrame::new(samples, self.rate);
        if let Some(rem) = self.remaining.as_mut() {
            *rem -= n;
            frame.end_of_stream = *rem == 0;
        }
        cx.push(0, frame);
        Ok(())
    }
}

/// Samples `from..from + n` of the sum of sines at `freqs` (0 Hz leaves one out), each of peak
/// `amplitude`, at `rate` Hz: phase-continuous across calls that continue from where the last ended.
pub(crate) fn dual_tone(rate: u32, freqs: [f64; 2], amplitude: f64, from: u64, n: u64) -> Vec<i16> {
    let step = std::f64::consts::TAU / f64::from(rate);
    (from..from + n)
        .map(|i| {
            let t = i as f64 * step;
            let v: f64 = freqs.iter().filter(|f| **f > 0.0).map(|f| (f * t).sin()).sum();
            (v * amplitude).clamp(-32768.0, 32767.0) as i16
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{goertzel_ratio, FilterHarness};

    #[test]
    fn emits_10ms_frames_of_the_tone_and_ends_on_time() {
        let mut h = FilterHarness::new(ToneGen::new(8000, 425.0, 0.0, 8000).with_duration_ms(105));
        let mut frames = Vec::new();
        for _ in 0..15 {
            h.run().unwrap();
            frames.extend(h.take(0));
        }
        assert_eq!(frames.len(), 11);
        let samples: Vec<i16> = frames
            .iter()
            .flat_map(|f| match f {
                crate::frame::Frame::Audio(a) => a.samples.clone(),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(samples.len(), 840);
        assert!(matches!(&frames[10], crate::frame::Frame::Audio(a) if a.end_of_stream && a.samples.len() == 40));
        assert!(goertzel_ratio(&samples, 8000, 425.0) > 0.9);
    }
}
