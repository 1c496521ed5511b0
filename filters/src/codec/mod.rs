//! Audio codecs behind two small traits, so the encoder and decoder filters are codec-agnostic.
//!
//! G.711 is ours (table-driven, bit-exact); G.722 and Opus join with the transcoding issue.

pub mod g711;

/// The codecs rms knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecKind {
    Pcmu,
    Pcma,
}

impl CodecKind {
    /// The encoding name as SDP writes it (RFC 3551 §6).
    pub fn name(self) -> &'static str {
        match self {
            CodecKind::Pcmu => "PCMU",
            CodecKind::Pcma => "PCMA",
        }
    }

    /// Static payload type (RFC 3551 table 4), if the codec has one.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            CodecKind::Pcmu => Some(0),
            CodecKind::Pcma => Some(8),
        }
    }

    /// Rate of the PCM the codec consumes and produces.
    pub fn sample_rate(self) -> u32 {
        8000
    }

    /// RTP timestamp clock rate.
    pub fn clock_rate(self) -> u32 {
        8000
    }

    pub fn encoder(self) -> Box<dyn AudioEncoder> {
        match self {
            CodecKind::Pcmu => Box::new(g711::Encoder::new(g711::Law::Mu)),
            CodecKind::Pcma => Box::new(g711::Encoder::new(g711::Law::A)),
        }
    }

    pub fn decoder(self) -> Box<dyn AudioDecoder> {
        match self {
            CodecKind::Pcmu => Box::new(g711::Decoder::new(g711::Law::Mu)),
            CodecKind::Pcma => Box::new(g711::Decoder::new(g711::Law::A)),
        }
    }
}

/// PCM in, payload bytes out.
pub trait AudioEncoder: Send {
    fn kind(&self) -> CodecKind;
    /// Encode exactly one packet's worth of samples, appending the payload to `out`.
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>);
}

/// Payload bytes in, PCM out.
pub trait AudioDecoder: Send {
    fn kind(&self) -> CodecKind;
    /// Decode one payload, appending samples to `out`.
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>);
}
