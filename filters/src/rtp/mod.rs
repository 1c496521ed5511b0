//! RTP receive-side machinery: per-source statistics (RFC 3550 A.1/A.3/A.8) and the jitter buffer.

pub mod jitter_buffer;
pub mod stats;
