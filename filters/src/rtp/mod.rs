//! RTP receive-side machinery: per-source statistics (RFC 3550 A.1/A.3/A.8, RFC 3611 §4.6 intervals),
//! the jitter buffer, the RFC 3611 Appendix A burst/gap counter and the E-model (ITU-T G.107).

pub mod burst_gap;
pub mod jitter_buffer;
pub mod quality;
pub mod stats;
