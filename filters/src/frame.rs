//! What flows along graph links: PCM audio, encoded media, and received RTP.
//!
//! Frames are moved, not shared: a link queue owns its frames until the next filter pops them.

/// A block of 16-bit mono PCM. Filters downstream of the file player only ever see mono.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AudioFrame {
    pub samples: Vec<i16>,
    /// Sample rate in Hz.
    pub rate: u32,
    /// Set on the last frame of a stream (end of file): buffering filters flush when they see it.
    pub end_of_stream: bool,
}

impl AudioFrame {
    pub fn new(samples: Vec<i16>, rate: u32) -> Self {
        Self { samples, rate, end_of_stream: false }
    }

    /// Duration in microseconds (rounded down).
    pub fn duration_us(&self) -> u64 {
        if self.rate == 0 {
            return 0;
        }
        self.samples.len() as u64 * 1_000_000 / u64::from(self.rate)
    }
}

/// One encoded packet's payload, as an encoder produces it and `rtp_send` consumes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    pub payload: Vec<u8>,
    /// RTP payload type to send it with.
    pub payload_type: u8,
    /// Duration in RTP clock units (160 for 20 ms of PCMU; 160 for 20 ms of G.722 too, RFC 3551 §4.5.2).
    pub duration: u32,
    /// The RTP clock rate of `duration`.
    pub clock_rate: u32,
    pub end_of_stream: bool,
}

/// A received RTP packet, parsed and released by the jitter buffer in playout order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpFrame {
    pub ssrc: u32,
    /// Extended (32-bit, wrap-free) sequence number.
    pub seq: u32,
    pub timestamp: u32,
    pub payload_type: u8,
    pub marker: bool,
    pub payload: Vec<u8>,
}

/// Anything a link carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Audio(AudioFrame),
    Encoded(EncodedFrame),
    Rtp(RtpFrame),
}

impl Frame {
    /// Short name of the variant, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Frame::Audio(_) => "audio",
            Frame::Encoded(_) => "encoded",
            Frame::Rtp(_) => "rtp",
        }
    }
}

impl From<AudioFrame> for Frame {
    fn from(f: AudioFrame) -> Self {
        Frame::Audio(f)
    }
}

impl From<EncodedFrame> for Frame {
    fn from(f: EncodedFrame) -> Self {
        Frame::Encoded(f)
    }
}

impl From<RtpFrame> for Frame {
    fn from(f: RtpFrame) -> Self {
        Frame::Rtp(f)
    }
}
