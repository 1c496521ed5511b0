//! placeholder
pub struct Resampler;
