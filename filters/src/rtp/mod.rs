//! RTP receive-side machinery and RTCP: per-source statistics (RFC 3550 A.1/A.3/A.8, RFC 3611 §4.6
//! intervals), the jitter buffer, the RFC 3611 Appendix A burst/gap counter, the E-model (ITU-T G.107),
//! the RTCP wire format (RFC 3550 §6 compound packets, RFC 3611 XR blocks) and a leg's RTCP session.

pub mod burst_gap;
pub mod jitter_buffer;
pub mod quality;
pub mod rtcp;
pub mod session;
pub mod stats;
pub mod xr;
