//! RTP receive-side machinery: per-source statistics (RFC 3550 A.1/A.3/A.8), the jitter buffer, and the
//! RTCP wire format (RFC 3550 §6 compound packets, RFC 3611 XR blocks).

pub mod jitter_buffer;
pub mod rtcp;
pub mod stats;
pub mod xr;
