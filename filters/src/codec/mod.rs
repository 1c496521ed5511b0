//! Audio codecs behind two small traits, so the encoder and decoder filters are codec-agnostic.
//!
//! G.711 is ours (table-driven, bit-exact) with our own packet-loss concealment ([`plc`], ITU-T G.711
//! Appendix I style); G.722 is SpanDSP's codec ported to Rust (bit-exact with ffmpeg's, both ways) and
//! uses the same concealment on its 16 kHz output; Opus wraps libopus through the `opus` crate (bundled
//! libopus 1.6 via `opusic-sys`), with libopus's own PLC and in-band FEC.

pub mod g711;
pub mod g722;
pub mod opus;
pub mod plc;
pub mod telephone_event;

use std::fmt;

/// The codecs rms knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecKind {
    Pcmu,
    Pcma,
    /// ITU-T G.722 at 64 kbit/s (RFC 3551 §4.5.2).
    G722,
    /// Opus, mono (RFC 6716, RTP payload format RFC 7587).
    Opus,
}

impl CodecKind {
    /// The encoding name as SDP writes it (RFC 3551 §6, RFC 7587 §7).
    pub fn name(self) -> &'static str {
        match self {
            CodecKind::Pcmu => "PCMU",
            CodecKind::Pcma => "PCMA",
            CodecKind::G722 => "G722",
            CodecKind::Opus => "opus",
        }
    }

    /// Static payload type (RFC 3551 table 4), if the codec has one.
    pub fn static_payload_type(self) -> Option<u8> {
        match self {
            CodecKind::Pcmu => Some(0),
            CodecKind::Pcma => Some(8),
            CodecKind::G722 => Some(9),
            CodecKind::Opus => None,
        }
    }

    /// The codec's native PCM rate (what [`encoder`](Self::encoder) and [`decoder`](Self::decoder) run at).
    pub fn sample_rate(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma => 8000,
            CodecKind::G722 => 16000,
            CodecKind::Opus => 48000,
        }
    }

    /// RTP timestamp clock rate: 8000 for G.722 although it samples at 16 kHz (RFC 3551 §4.5.2),
    /// 48000 for Opus whatever rate it codes at (RFC 7587 §4.1).
    pub fn clock_rate(self) -> u32 {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma | CodecKind::G722 => 8000,
            CodecKind::Opus => 48000,
        }
    }

    /// The PCM rates the codec can run at.
    pub fn pcm_rates(self) -> &'static [u32] {
        match self {
            CodecKind::Pcmu | CodecKind::Pcma => &[8000],
            CodecKind::G722 => &[16000],
            // RFC 6716 §2: libopus encodes and decodes at any of these.
            CodecKind::Opus => &[8000, 12000, 16000, 24000, 48000],
        }
    }

    /// The PCM rate to run this codec at when its audio comes from (or goes to) audio at `other` Hz:
    /// the fixed rate for G.711 and G.722; for Opus the smallest supported rate ≥ `other`, else 48000
    /// (so no band is lost to the codec and no effort is spent above the source's band).
    pub fn pcm_rate_for(self, other: u32) -> u32 {
        let rates = self.pcm_rates();
        rates.iter().copied().find(|&r| r >= other).or_else(|| rates.last().copied()).unwrap_or(other)
    }

    /// The packet duration this codec sends for a negotiated ptime: Opus frames are 10, 20, 40 or 60 ms
    /// here (RFC 6716 §2.1.4; our ticks are 10 ms), so other ptimes round down to one of those. The
    /// sample codecs send any multiple of 10 ms.
    pub fn packet_ms(self, ptime_ms: u32) -> u32 {
        match self {
            CodecKind::Opus => [60, 40, 20, 10].into_iter().find(|&ms| ms <= ptime_ms).unwrap_or(10),
            _ => ptime_ms,
        }
    }

    /// An encoder at the native rate with default parameters. It cannot fail for the sample codecs;
    /// should libopus fail to allocate, the encoder returned reports that error on every `encode`.
    pub fn encoder(self) -> Box<dyn AudioEncoder> {
        let params = CodecParams::native(self);
        self.encoder_with(&params).unwrap_or_else(|error| Box::new(Broken { kind: self, rate: params.pcm_rate, error }))
    }

    /// A decoder at the native rate with default parameters (see [`encoder`](Self::encoder)).
    pub fn decoder(self) -> Box<dyn AudioDecoder> {
        let params = CodecParams::native(self);
        self.decoder_with(&params).unwrap_or_else(|error| Box::new(Broken { kind: self, rate: params.pcm_rate, error }))
    }

    /// An encoder at `params.pcm_rate` (one of [`pcm_rates`](Self::pcm_rates)).
    pub fn encoder_with(self, params: &CodecParams) -> Result<Box<dyn AudioEncoder>, CodecError> {
        self.check_rate(params.pcm_rate)?;
        Ok(match self {
            CodecKind::Pcmu => Box::new(g711::Encoder::new(g711::Law::Mu)),
            CodecKind::Pcma => Box::new(g711::Encoder::new(g711::Law::A)),
            CodecKind::G722 => Box::new(g722::Encoder::new()),
            CodecKind::Opus => Box::new(opus::Encoder::new(params.pcm_rate, &params.opus)?),
        })
    }

    /// A decoder at `params.pcm_rate` (one of [`pcm_rates`](Self::pcm_rates)).
    pub fn decoder_with(self, params: &CodecParams) -> Result<Box<dyn AudioDecoder>, CodecError> {
        self.check_rate(params.pcm_rate)?;
        Ok(match self {
            CodecKind::Pcmu => Box::new(g711::Decoder::new(g711::Law::Mu)),
            CodecKind::Pcma => Box::new(g711::Decoder::new(g711::Law::A)),
            CodecKind::G722 => Box::new(g722::Decoder::new()),
            CodecKind::Opus => Box::new(opus::Decoder::new(params.pcm_rate)?),
        })
    }

    fn check_rate(self, rate: u32) -> Result<(), CodecError> {
        if self.pcm_rates().contains(&rate) {
            Ok(())
        } else {
            Err(CodecError::UnsupportedRate { codec: self, rate })
        }
    }
}

impl fmt::Display for CodecKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How to build an encoder or decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecParams {
    /// The PCM rate the codec consumes and produces (one of `CodecKind::pcm_rates`).
    pub pcm_rate: u32,
    /// Encoder settings used by Opus only.
    pub opus: OpusConfig,
}

impl CodecParams {
    /// The codec's native rate with default settings.
    pub fn native(kind: CodecKind) -> Self {
        Self { pcm_rate: kind.sample_rate(), ..Self::default() }
    }

    /// `pcm_rate` with default settings.
    pub fn at(pcm_rate: u32) -> Self {
        Self { pcm_rate, ..Self::default() }
    }
}

impl Default for CodecParams {
    /// 8 kHz (the telephony rate, valid for G.711 and Opus; G.722 needs 16000) and default Opus settings.
    fn default() -> Self {
        Self { pcm_rate: 8000, opus: OpusConfig::default() }
    }
}

/// Opus encoder settings (RFC 7587 §6.1 fmtp parameters of the peer adjust these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusConfig {
    /// libopus complexity 0..=10 (higher costs more CPU); 5 at scale.
    pub complexity: u8,
    /// In-band FEC (LBRR, RFC 6716 §2.1.7): the next packet can rebuild a lost one.
    pub inband_fec: bool,
    /// The most the receiver can play (Hz, RFC 7587 §6.1 `maxplaybackrate`): caps the coded band.
    pub max_playback_rate: Option<u32>,
    /// Target bitrate in bit/s (libopus chooses when `None`).
    pub bitrate: Option<u32>,
    /// Expected packet loss in percent, 0..=100: libopus only spends bits on FEC when this is non-zero.
    pub packet_loss_pct: u8,
}

impl Default for OpusConfig {
    fn default() -> Self {
        // 32 kbit/s: what WebRTC sends for mono voice. With FEC on, libopus's own choice at 8-16 kHz
        // (24 kbit/s) cost 0.1 PESQ on the test speech through a PCMU<->Opus bridge; 32 kbit/s
        // scores within 0.01 of ffmpeg's FEC-less 32 kbit/s coding.
        Self { complexity: 5, inband_fec: true, max_playback_rate: None, bitrate: Some(32_000), packet_loss_pct: 10 }
    }
}

/// Why a codec could not be built or could not code a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("{codec} does not run at {rate} Hz")]
    UnsupportedRate { codec: CodecKind, rate: u32 },
    #[error("{codec} cannot code {samples} samples at {rate} Hz as one packet")]
    BadFrameSize { codec: CodecKind, samples: usize, rate: u32 },
    #[error("{codec}: corrupt payload of {len} bytes")]
    CorruptPayload { codec: CodecKind, len: usize },
    #[error("libopus {function}: {description}")]
    Opus { function: &'static str, description: &'static str },
}

/// PCM in, payload bytes out.
pub trait AudioEncoder: Send {
    fn kind(&self) -> CodecKind;
    /// The rate of the PCM it takes.
    fn pcm_rate(&self) -> u32;
    /// Encode exactly one packet's worth of samples, appending the payload to `out` (nothing is
    /// appended on error).
    fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Result<(), CodecError>;
}

/// Payload bytes in, PCM out.
pub trait AudioDecoder: Send {
    fn kind(&self) -> CodecKind;
    /// The rate of the PCM it produces.
    fn pcm_rate(&self) -> u32;
    /// Decode one payload, appending samples to `out` (nothing is appended on error).
    fn decode(&mut self, payload: &[u8], out: &mut Vec<i16>) -> Result<(), CodecError>;
    /// Append `samples` samples standing in for lost audio.
    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>);
    /// Rebuild the `samples` lost just before `next_payload` from the FEC data in it, appending them to
    /// `out`. Returns whether FEC data was used; codecs without FEC conceal and return `Ok(false)`.
    fn decode_fec(&mut self, next_payload: &[u8], samples: usize, out: &mut Vec<i16>) -> Result<bool, CodecError> {
        let _ = next_payload;
        self.conceal(samples, out);
        Ok(false)
    }
}

/// What `encoder()`/`decoder()` return when the codec could not be built: every call reports the error,
/// concealment is silence.
struct Broken {
    kind: CodecKind,
    rate: u32,
    error: CodecError,
}

impl AudioEncoder for Broken {
    fn kind(&self) -> CodecKind {
        self.kind
    }

    fn pcm_rate(&self) -> u32 {
        self.rate
    }

    fn encode(&mut self, _pcm: &[i16], _out: &mut Vec<u8>) -> Result<(), CodecError> {
        Err(self.error.clone())
    }
}

impl AudioDecoder for Broken {
    fn kind(&self) -> CodecKind {
        self.kind
    }

    fn pcm_rate(&self) -> u32 {
        self.rate
    }

    fn decode(&mut self, _payload: &[u8], _out: &mut Vec<i16>) -> Result<(), CodecError> {
        Err(self.error.clone())
    }

    fn conceal(&mut self, samples: usize, out: &mut Vec<i16>) {
        out.resize(out.len() + samples, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [CodecKind; 4] = [CodecKind::Pcmu, CodecKind::Pcma, CodecKind::G722, CodecKind::Opus];

    #[test]
    fn rates_and_payload_types() {
        assert_eq!(ALL.map(|k| k.sample_rate()), [8000, 8000, 16000, 48000]);
        assert_eq!(ALL.map(|k| k.clock_rate()), [8000, 8000, 8000, 48000]);
        assert_eq!(ALL.map(|k| k.static_payload_type()), [Some(0), Some(8), Some(9), None]);
        for k in ALL {
            assert!(k.pcm_rates().contains(&k.sample_rate()), "{k}");
        }
    }

    #[test]
    fn pcm_rate_for_follows_the_other_side() {
        assert_eq!(CodecKind::Pcmu.pcm_rate_for(48000), 8000);
        assert_eq!(CodecKind::G722.pcm_rate_for(8000), 16000);
        assert_eq!(CodecKind::Opus.pcm_rate_for(8000), 8000);
        assert_eq!(CodecKind::Opus.pcm_rate_for(11025), 12000);
        assert_eq!(CodecKind::Opus.pcm_rate_for(16000), 16000);
        assert_eq!(CodecKind::Opus.pcm_rate_for(22050), 24000);
        assert_eq!(CodecKind::Opus.pcm_rate_for(44100), 48000);
        assert_eq!(CodecKind::Opus.pcm_rate_for(96000), 48000);
    }

    #[test]
    fn opus_packets_round_down_to_its_frame_sizes() {
        assert_eq!([10, 20, 30, 40, 50, 60].map(|p| CodecKind::Opus.packet_ms(p)), [10, 20, 20, 40, 40, 60]);
        assert_eq!(CodecKind::Pcmu.packet_ms(30), 30);
    }

    #[test]
    fn builders_check_the_rate() {
        for k in ALL {
            for &rate in k.pcm_rates() {
                let p = CodecParams::at(rate);
                assert_eq!(k.encoder_with(&p).map(|e| (e.kind(), e.pcm_rate())), Ok((k, rate)));
                assert_eq!(k.decoder_with(&p).map(|d| (d.kind(), d.pcm_rate())), Ok((k, rate)));
            }
            let e = k.encoder();
            assert_eq!((e.kind(), e.pcm_rate()), (k, k.sample_rate()));
            let d = k.decoder();
            assert_eq!((d.kind(), d.pcm_rate()), (k, k.sample_rate()));
        }
        assert_eq!(
            CodecKind::G722.encoder_with(&CodecParams::at(8000)).err(),
            Some(CodecError::UnsupportedRate { codec: CodecKind::G722, rate: 8000 })
        );
        assert!(CodecKind::Opus.decoder_with(&CodecParams::at(44100)).is_err());
        assert!(CodecKind::Pcma.encoder_with(&CodecParams::at(16000)).is_err());
    }
}
