//! placeholder
pub struct RtpRecv;
