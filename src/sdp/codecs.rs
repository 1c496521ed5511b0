//! The local table between SDP encoding names (RFC 4566 §6 `a=rtpmap`, RFC 3551 §6) and
//! [`CodecKind`]. Adding a codec to `CodecKind` means adding one arm to [`sdp_channels`] (the match
//! is exhaustive, so the compiler points here) and listing it in [`KNOWN`]: e.g. G.722 is
//! `G722/8000` with static PT 9 (its RTP clock is 8000 although it samples at 16 kHz, RFC 3551
//! §4.5.2), Opus is dynamic `opus/48000/2` (RFC 7587 §7).

use rms_filters::codec::CodecKind;

/// Every codec the SDP layer can name, in a default preference order.
pub const KNOWN: &[CodecKind] = &[CodecKind::Pcmu, CodecKind::Pcma];

/// The encoding name of telephone events (RFC 4733 §7.1.1).
pub const TELEPHONE_EVENT: &str = "telephone-event";

/// The payload type we offer telephone-event at (clock 8000).
pub const TELEPHONE_EVENT_PT: u8 = 101;

/// First dynamic payload type (RFC 3551 §6).
pub const FIRST_DYNAMIC_PT: u8 = 96;

/// The channel count `a=rtpmap` carries for the codec (1 is written as nothing).
pub fn sdp_channels(kind: CodecKind) -> u8 {
    match kind {
        CodecKind::Pcmu | CodecKind::Pcma | CodecKind::G722 => 1,
        CodecKind::Opus => 2,
    }
}

/// An `a=rtpmap` value: `<encoding name>/<clock rate>[/<channels>]` (RFC 4566 §6).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: u8,
}

impl RtpMap {
    /// Parse the part after `<pt> ` of an rtpmap value.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.trim().split('/');
        let encoding = parts.next()?.trim();
        if encoding.is_empty() {
            return None;
        }
        let clock_rate = parts.next()?.trim().parse().ok()?;
        let channels = match parts.next() {
            Some(c) => c.trim().parse().ok()?,
            None => 1,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(Self { encoding: encoding.to_owned(), clock_rate, channels })
    }

    /// The rtpmap of one of our codecs.
    pub fn of(kind: CodecKind) -> Self {
        Self { encoding: kind.name().to_owned(), clock_rate: kind.clock_rate(), channels: sdp_channels(kind) }
    }

    /// The codec this rtpmap names, if we know it (encoding names are case-insensitive,
    /// RFC 4855 §3).
    pub fn codec(&self) -> Option<CodecKind> {
        KNOWN.iter().copied().find(|k| {
            k.name().eq_ignore_ascii_case(&self.encoding)
                && k.clock_rate() == self.clock_rate
                && sdp_channels(*k) == self.channels
        })
    }

    pub fn is_telephone_event(&self) -> bool {
        self.encoding.eq_ignore_ascii_case(TELEPHONE_EVENT)
    }
}

impl std::fmt::Display for RtpMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.encoding, self.clock_rate)?;
        if self.channels != 1 {
            write!(f, "/{}", self.channels)?;
        }
        Ok(())
    }
}

/// The codec a static payload type stands for without an rtpmap (RFC 3551 table 4).
pub fn codec_for_static_pt(pt: u8) -> Option<CodecKind> {
    if pt >= FIRST_DYNAMIC_PT {
        return None;
    }
    KNOWN.iter().copied().find(|k| k.static_payload_type() == Some(pt))
}
