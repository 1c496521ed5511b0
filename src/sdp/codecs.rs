//! The local table between SDP encoding names (RFC 4566 §6 `a=rtpmap`, RFC 3551 §6) and
//! [`CodecKind`]. Adding a codec to `CodecKind` means adding one arm to [`sdp_channels`] (the match
//! is exhaustive, so the compiler points here) and listing it in [`KNOWN`]: G.722 is `G722/8000`
//! with static PT 9 (its RTP clock is 8000 although it samples at 16 kHz, RFC 3551 §4.5.2), Opus is
//! dynamic `opus/48000/2` (RFC 7587 §7), with its format parameters in [`OpusFmtp`].

use rms_filters::codec::{CodecKind, OpusConfig};

/// Every codec the SDP layer can name, in a default preference order.
pub const KNOWN: &[CodecKind] = &[CodecKind::Pcmu, CodecKind::Pcma, CodecKind::G722, CodecKind::Opus];

/// The encoding name of telephone events (RFC 4733 §7.1.1).
pub const TELEPHONE_EVENT: &str = "telephone-event";

/// The payload type we offer telephone-event at (clock 8000).
pub const TELEPHONE_EVENT_PT: u8 = 101;

/// First dynamic payload type (RFC 3551 §6).
pub const FIRST_DYNAMIC_PT: u8 = 96;

/// The payload type we offer Opus at unless it is taken (the common choice of WebRTC stacks and
/// Asterisk, so relayed SDP keeps the same number).
pub const OPUS_PT: u8 = 111;

/// The channel count `a=rtpmap` carries for the codec (1 is written as nothing). Opus always says 2,
/// mono or not (RFC 7587 §7).
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
    /// RFC 4855 §3). Lenient about Opus: `opus/48000` without the mandatory `/2` (RFC 7587 §7) is
    /// accepted too, as some endpoints write it.
    pub fn codec(&self) -> Option<CodecKind> {
        KNOWN.iter().copied().find(|&k| {
            k.name().eq_ignore_ascii_case(&self.encoding)
                && k.clock_rate() == self.clock_rate
                && (sdp_channels(k) == self.channels || (k == CodecKind::Opus && self.channels == 1))
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

/// The Opus format parameters of an `a=fmtp` line (RFC 7587 §6.1) that matter to us. Each describes
/// what the side that wrote it wants to RECEIVE (or, `sprop-`, is likely to send).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct OpusFmtp {
    /// The receiver can use in-band FEC; absent means 0 (RFC 7587 §6.1).
    pub useinbandfec: Option<bool>,
    /// The highest rate the receiver plays, 8000..=48000 Hz.
    pub maxplaybackrate: Option<u32>,
    /// The receiver prefers stereo (we always send mono, which is always allowed).
    pub stereo: Option<bool>,
    /// The sender is likely to send stereo (our mono decoder downmixes it).
    pub sprop_stereo: Option<bool>,
    /// The most average bitrate the receiver wants, 6000..=510000 bit/s.
    pub maxaveragebitrate: Option<u32>,
}

impl OpusFmtp {
    /// Parse an fmtp value (after `<pt> `): `name=value` pairs separated by `;`, spaces allowed
    /// around each. Unknown parameters and unreadable values are ignored (RFC 7587 §6.1: parameters
    /// may be absent; a receiver ignores what it does not understand).
    pub fn parse(s: &str) -> Self {
        let mut f = Self::default();
        for param in s.split(';') {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            let (name, value) = (name.trim(), value.trim());
            let flag = match value {
                "0" => Some(false),
                "1" => Some(true),
                _ => None,
            };
            let number = value.parse::<u32>().ok();
            match name.to_ascii_lowercase().as_str() {
                "useinbandfec" => f.useinbandfec = flag.or(f.useinbandfec),
                "stereo" => f.stereo = flag.or(f.stereo),
                "sprop-stereo" => f.sprop_stereo = flag.or(f.sprop_stereo),
                "maxplaybackrate" => f.maxplaybackrate = number.filter(|&r| r > 0).or(f.maxplaybackrate),
                "maxaveragebitrate" => f.maxaveragebitrate = number.filter(|&r| r > 0).or(f.maxaveragebitrate),
                _ => {}
            }
        }
        f
    }

    /// Our encoder settings for a peer that wrote these parameters: its maxplaybackrate caps our
    /// coded band, its maxaveragebitrate our bitrate, and without its useinbandfec=1 we send no FEC
    /// (it would cost bits the peer does not use).
    pub fn encoder_config(&self, ours: &OpusConfig) -> OpusConfig {
        let min = |a: Option<u32>, b: Option<u32>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        OpusConfig {
            inband_fec: ours.inband_fec && self.useinbandfec == Some(true),
            max_playback_rate: min(ours.max_playback_rate, self.maxplaybackrate.map(|r| r.clamp(8000, 48000))),
            bitrate: min(ours.bitrate, self.maxaveragebitrate.map(|b| b.clamp(6000, 510_000))),
            ..*ours
        }
    }

    /// Our own fmtp value: we decode FEC (`useinbandfec=1`) and, when set, play at most
    /// `max_playback_rate` Hz.
    pub fn ours(max_playback_rate: Option<u32>) -> String {
        match max_playback_rate {
            Some(rate) => format!("useinbandfec=1; maxplaybackrate={rate}"),
            None => "useinbandfec=1".to_owned(),
        }
    }
}

/// The `rms codecs` listing (like `rtpengine --codecs`): for every codec its SDP name, RTP clock
/// rate, rtpmap channels, the PCM rates it runs at, whether this build encodes and decodes it (each
/// is built once to find out), and its payload type; then telephone-event.
pub fn describe() -> String {
    use rms_filters::codec::CodecParams;
    use std::fmt::Write;
    let yes = |ok: bool| if ok { "yes" } else { "no" };
    let mut out = format!(
        "{:<16} {:>6} {:>8}  {:<30} {:<6} {:<6} {}\n",
        "codec", "clock", "channels", "PCM rates (Hz)", "encode", "decode", "payload type"
    );
    for &kind in KNOWN {
        let params = CodecParams::native(kind);
        let rates = kind.pcm_rates().iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        let channels = match sdp_channels(kind) {
            1 => "1".to_owned(),
            n => format!("{n} (mono)"),
        };
        let pt = match kind.static_payload_type() {
            Some(pt) => pt.to_string(),
            None if kind == CodecKind::Opus => format!("dynamic ({OPUS_PT})"),
            None => "dynamic".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:<16} {:>6} {:>8}  {:<30} {:<6} {:<6} {pt}",
            kind.name(),
            kind.clock_rate(),
            channels,
            rates,
            yes(kind.encoder_with(&params).is_ok()),
            yes(kind.decoder_with(&params).is_ok()),
        );
    }
    let _ = writeln!(
        out,
        "{:<16} {:>6} {:>8}  {:<30} {:<6} {:<6} dynamic ({TELEPHONE_EVENT_PT}); RFC 4733, relayed or played in-band",
        TELEPHONE_EVENT, "8000", "1", "-", "no", "no"
    );
    out
}
