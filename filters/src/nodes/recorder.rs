//! placeholder
pub struct Recorder;
