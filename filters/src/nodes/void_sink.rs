//! `void_sink`: discards whatever reaches it (the receive path of a play-only call).

use crate::filter::{Filter, FilterDesc, FilterError, ProcessCx};

#[derive(Debug, Default)]
pub struct VoidSink {
    /// Frames discarded so far.
    pub frames: u64,
}

impl VoidSink {
    pub const DESC: FilterDesc = FilterDesc { name: "void_sink", inputs: 1, outputs: 0, pump: false };

    pub fn new() -> Self {
        Self::default()
    }
}

impl Filter for VoidSink {
    fn desc(&self) -> FilterDesc {
        Self::DESC
    }

    fn process(&mut self, cx: &mut ProcessCx<'_>) -> Result<(), FilterError> {
        while cx.pop(0).is_some() {
            self.frames += 1;
        }
        Ok(())
    }
}
