//! RFC 3264 offer/answer for one audio stream.

use std::net::{IpAddr, SocketAddr};

use rms_filters::codec::CodecKind;
use sdp_types::{Attribute, Connection, Media, Origin, Session, Time};

use super::codecs::{self, OpusFmtp, RtpMap, FIRST_DYNAMIC_PT, OPUS_PT, TELEPHONE_EVENT, TELEPHONE_EVENT_PT};
use super::SessionDescription;

/// Default packetization time when the offer says nothing (RFC 3551 §4.5: 20 ms for G.711).
pub const DEFAULT_PTIME_MS: u32 = 20;
/// The ptime range we accept: our media graphs tick every 10 ms and send at most 60 ms a packet.
pub const PTIME_RANGE_MS: std::ops::RangeInclusive<u32> = 10..=60;
/// The telephone-event events we support: DTMF 0-9, *, #, A-D and flash (RFC 4733 §3.2).
pub const TELEPHONE_EVENTS: &str = "0-16";
/// The RTCP XR blocks we send and take (RFC 3611 §5.1 `xr-format`): RRTR/DLRR (BT 4/5, round trip
/// for either side), Statistics Summary (BT 6) and VoIP Metrics (BT 7).
pub const RTCP_XR_FORMATS: &str = "rcvr-rtt=all stat-summary=loss,dup,jitt voip-metrics";

/// Stream direction (RFC 3264 §5.1, §6.1; RFC 4566 §6 `a=sendrecv|sendonly|recvonly|inactive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    pub fn from_flags(sends: bool, receives: bool) -> Self {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    pub fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    pub fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The direction seen from the other side: sendonly ↔ recvonly (RFC 3264 §6.1).
    pub fn reversed(self) -> Self {
        Self::from_flags(self.receives(), self.sends())
    }

    /// Both constraints at once (what both sides allow).
    pub fn intersect(self, other: Self) -> Self {
        Self::from_flags(self.sends() && other.sends(), self.receives() && other.receives())
    }

    /// The attribute name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    fn from_attribute(name: &str) -> Option<Self> {
        match name {
            "sendrecv" => Some(Direction::SendRecv),
            "sendonly" => Some(Direction::SendOnly),
            "recvonly" => Some(Direction::RecvOnly),
            "inactive" => Some(Direction::Inactive),
            _ => None,
        }
    }
}

/// Our `o=` line's session id and version (RFC 4566 §5.2). The id comes from the caller's injected
/// RNG; the version goes up by one for every new offer or answer we send in the session
/// (RFC 3264 §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OriginState {
    pub session_id: u64,
    pub version: u64,
}

impl OriginState {
    /// A new session at version 1.
    pub fn new(session_id: u64) -> Self {
        Self { session_id, version: 1 }
    }

    /// Advance to the next version and return the new state (use it for the next SDP we send).
    // Not an iterator: there is always a next version, and the name is the agreed API.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Self {
        self.version = self.version.wrapping_add(1);
        *self
    }
}

/// What we answer with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerConfig {
    /// Our media address (`o=` and `c=`).
    pub address: IpAddr,
    /// Our RTP port (RTCP is on port + 1 unless rtcp-mux is negotiated).
    pub rtp_port: u16,
    /// The codecs we support. The offerer's order decides among them (RFC 3264 §6.1 lets the
    /// answerer choose; we honour the offerer's preference).
    pub codecs: Vec<CodecKind>,
    /// Whether we accept telephone-event (RFC 4733).
    pub telephone_event: bool,
    /// `o=` session id and version of this answer.
    pub origin: OriginState,
}

/// What we offer with (INVITE without SDP: our offer goes in the 200; B-legs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferConfig {
    pub address: IpAddr,
    pub rtp_port: u16,
    /// All listed in this order, our preference first.
    pub codecs: Vec<CodecKind>,
    /// Offer telephone-event (dynamic PT 101 for 8 kHz codecs).
    pub telephone_event: bool,
    pub origin: OriginState,
    /// `sendrecv` normally; `sendonly` to hold the peer (RFC 3264 §8.4).
    pub direction: Direction,
}

/// Codec settings of ours that appear in our SDP (the `_with` variants of [`negotiate_answer`] and
/// [`build_offer`] take them; the plain ones use the defaults).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CodecOptions {
    /// Written as Opus `maxplaybackrate` (RFC 7587 §6.1) when set: the peer need not code a wider band.
    pub opus_max_playback_rate: Option<u32>,
}

/// The negotiated audio stream, for the media engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// Index of the audio m-line in the session.
    pub media_index: usize,
    /// Where to send RTP (the peer's `c=` and `m=` port; 0.0.0.0 on legacy hold).
    pub remote_rtp: SocketAddr,
    /// Where to send RTCP: `a=rtcp` (RFC 3605), else RTP port + 1, or the RTP address with rtcp-mux.
    pub remote_rtcp: SocketAddr,
    pub codec: CodecKind,
    /// The payload type of `codec` on the wire (the offerer's number).
    pub payload_type: u8,
    /// RTP clock rate of `codec`.
    pub clock_rate: u32,
    /// Packetization time in milliseconds.
    pub ptime: u32,
    /// telephone-event payload type, when both sides use it.
    pub telephone_event: Option<u8>,
    /// OUR direction: whether we send and/or receive.
    pub direction: Direction,
    /// RTP and RTCP share one port (RFC 5761).
    pub rtcp_mux: bool,
    /// The peer's SDP carries `a=rtcp-xr` (RFC 3611 §5.1): it takes RTCP XR reports.
    pub rtcp_xr: bool,
    /// With Opus: the peer's format parameters (RFC 7587 §6.1; all unset without an fmtp line), to
    /// adjust our encoder with [`OpusFmtp::encoder_config`].
    pub opus: Option<OpusFmtp>,
}

/// An answer to send and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub sdp: SessionDescription,
    pub negotiated: Negotiated,
}

/// Why an offer or answer cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// No audio codec of the offer is one we support.
    #[error("no common codec")]
    NoCommonCodec,
    /// The offer has no audio m-line with a non-zero port.
    #[error("no audio stream offered")]
    NoAudio,
    /// The audio streams use a transport we do not speak (RTP/AVP and RTP/AVPF only).
    #[error("unsupported audio transport {proto}")]
    UnsupportedTransport { proto: String },
    /// The chosen stream has neither a media- nor a session-level `c=` (RFC 4566 §5.7).
    #[error("no connection address for m-line {media_index}")]
    MissingConnection { media_index: usize },
    /// The `c=` address is not an IP literal we can send to (FQDNs are not resolved here).
    #[error("connection address {address} is not an IP address")]
    InvalidConnectionAddress { address: String },
    /// The answer does not have the offer's m-line count (RFC 3264 §6).
    #[error("answer has {answered} m-lines, the offer had {offered}")]
    MediaCountMismatch { offered: usize, answered: usize },
    /// The answer rejected our audio stream (port 0, RFC 3264 §6).
    #[error("audio stream rejected by the answer")]
    AudioRejected,
}

impl NegotiationError {
    /// The SIP Warning code (RFC 3261 §20.43) to send with the 488.
    pub fn warning_code(&self) -> u16 {
        match self {
            NegotiationError::NoCommonCodec => 305,               // Incompatible media format
            NegotiationError::NoAudio => 304,                     // Media type not available
            NegotiationError::UnsupportedTransport { .. } => 302, // Incompatible transport protocol
            NegotiationError::MissingConnection { .. } | NegotiationError::InvalidConnectionAddress { .. } => 301, // Incompatible network address formats
            NegotiationError::MediaCountMismatch { .. } | NegotiationError::AudioRejected => 399, // Miscellaneous
        }
    }

    /// The Warning header value (RFC 3261 §20.43: `warn-code SP warn-agent SP warn-text`), with
    /// warn-agent `rms`, e.g. `305 rms "Incompatible media format: no common codec"`.
    pub fn warning_text(&self) -> String {
        let phrase = match self.warning_code() {
            305 => "Incompatible media format",
            304 => "Media type not available",
            302 => "Incompatible transport protocol",
            301 => "Incompatible network address formats",
            _ => "Miscellaneous warning",
        };
        let text = format!("{phrase}: {self}").replace('\\', "\\\\").replace('"', "\\\"");
        format!("{} rms \"{}\"", self.warning_code(), text)
    }
}

/// Answer an offer (RFC 3264 §6): same m-line count and order; the first audio m-line that has a
/// codec we support is accepted with that codec only (the first in the OFFER's order that is in
/// `config.codecs`), every other m-line is rejected with port 0 and its formats echoed.
pub fn negotiate_answer(offer: &SessionDescription, config: &AnswerConfig) -> Result<Answer, NegotiationError> {
    negotiate_answer_with(offer, config, &CodecOptions::default())
}

/// [`negotiate_answer`] with our codec options.
pub fn negotiate_answer_with(
    offer: &SessionDescription,
    config: &AnswerConfig,
    options: &CodecOptions,
) -> Result<Answer, NegotiationError> {
    let session = offer.session();
    let mut chosen: Option<(usize, Choice)> = None;
    let mut saw_audio = false;
    let mut saw_rtp = false;
    let mut bad_proto: Option<String> = None;
    for (index, media) in session.medias.iter().enumerate() {
        if chosen.is_some() || media.media != "audio" || media.port == 0 {
            continue;
        }
        saw_audio = true;
        if !is_rtp_avp(&media.proto) {
            bad_proto.get_or_insert_with(|| media.proto.clone());
            continue;
        }
        saw_rtp = true;
        let offered = offered_formats(media);
        let Some((payload_type, codec)) = offered.iter().find_map(|f| match f.kind {
            FormatKind::Codec(k) if config.codecs.contains(&k) => Some((f.pt, k)),
            _ => None,
        }) else {
            continue;
        };
        let telephone_event = config
            .telephone_event
            .then(|| {
                offered.iter().find_map(|f| match f.kind {
                    FormatKind::TelephoneEvent(clock) if clock == codec.clock_rate() => Some(f.pt),
                    _ => None,
                })
            })
            .flatten();
        chosen = Some((index, Choice { payload_type, codec, telephone_event }));
    }
    let Some((media_index, choice)) = chosen else {
        return Err(match (saw_audio, saw_rtp, bad_proto) {
            (false, _, _) => NegotiationError::NoAudio,
            (true, false, Some(proto)) => NegotiationError::UnsupportedTransport { proto },
            _ => NegotiationError::NoCommonCodec,
        });
    };

    let media = &session.medias[media_index];
    let remote = remote_endpoint(session, media, media_index)?;
    let offered_direction = remote.direction;
    let direction = offered_direction.reversed();
    let ptime = negotiated_ptime(session, media);

    let mut medias = Vec::with_capacity(session.medias.len());
    for (index, offered) in session.medias.iter().enumerate() {
        if index != media_index {
            medias.push(rejected(offered));
            continue;
        }
        let mut fmt = choice.payload_type.to_string();
        if let Some(te) = choice.telephone_event {
            fmt.push_str(&format!(" {te}"));
        }
        let mut m = answer_media(offered, config.rtp_port, fmt);
        push_rtpmap(&mut m, choice.payload_type, &RtpMap::of(choice.codec));
        if choice.codec == CodecKind::Opus {
            // Our own receive parameters, not the offer's (RFC 7587 §7: each side declares what it
            // receives).
            push_opus_fmtp(&mut m, choice.payload_type, options);
        } else if let Some(fmtp) = fmtp(offered, choice.payload_type) {
            m.attributes.push(Attribute::with_value("fmtp", format!("{} {fmtp}", choice.payload_type)));
        }
        if let Some(te) = choice.telephone_event {
            push_telephone_event(&mut m, te, choice.codec.clock_rate());
        }
        m.attributes.push(Attribute::with_value("ptime", ptime));
        // RFC 4566 §6 maxptime: the most we accept, within what they accept.
        m.attributes.push(Attribute::with_value("maxptime", answer_maxptime(session, media)));
        // RFC 3605 §2.1 `a=rtcp`; with rtcp-mux accepted (only when offered, RFC 5761 §5.1.1,
        // RFC 8035) it names the RTP port itself (RFC 5761 §5.1.3, RFC 8858 §4).
        let rtcp_port = if remote.rtcp_mux { config.rtp_port } else { config.rtp_port.saturating_add(1) };
        m.attributes.push(Attribute::with_value("rtcp", rtcp_port));
        if remote.rtcp_mux {
            m.attributes.push(Attribute::new("rtcp-mux"));
        }
        // RFC 3611 §5.2: an answerer may echo the XR blocks it takes; only when the offer had any.
        if remote.rtcp_xr {
            m.attributes.push(Attribute::with_value("rtcp-xr", RTCP_XR_FORMATS));
        }
        m.attributes.push(Attribute::new(direction.as_str()));
        medias.push(m);
    }

    let sdp = SessionDescription::from_session(session_skeleton(config.address, config.origin, medias));
    let negotiated = Negotiated {
        media_index,
        remote_rtp: remote.rtp,
        remote_rtcp: if remote.rtcp_mux { remote.rtp } else { remote.rtcp },
        codec: choice.codec,
        payload_type: choice.payload_type,
        clock_rate: choice.codec.clock_rate(),
        ptime,
        telephone_event: choice.telephone_event,
        direction,
        rtcp_mux: remote.rtcp_mux,
        rtcp_xr: remote.rtcp_xr,
        opus: opus_fmtp(media, choice.codec, choice.payload_type),
    };
    Ok(Answer { sdp, negotiated })
}

/// Our offer (RFC 3264 §5): one audio m-line with all our codecs in preference order (static PTs
/// where RFC 3551 has one, Opus at 111, dynamic from 96 otherwise), telephone-event at PT 101
/// `0-16`, an rtpmap for every PT (and `useinbandfec=1` for Opus), `a=ptime:20`, `a=rtcp:<port+1>`
/// (RFC 3605) and the direction.
pub fn build_offer(config: &OfferConfig) -> SessionDescription {
    build_offer_with(config, &CodecOptions::default())
}

/// [`build_offer`] with our codec options.
pub fn build_offer_with(config: &OfferConfig, options: &CodecOptions) -> SessionDescription {
    let mut codecs: Vec<CodecKind> = Vec::with_capacity(config.codecs.len());
    for &c in &config.codecs {
        if !codecs.contains(&c) {
            codecs.push(c);
        }
    }
    let mut used: Vec<u8> = codecs.iter().filter_map(|c| c.static_payload_type()).collect();
    if config.telephone_event {
        used.push(TELEPHONE_EVENT_PT);
    }
    let opus_pt = (codecs.contains(&CodecKind::Opus) && !used.contains(&OPUS_PT)).then(|| {
        used.push(OPUS_PT);
        OPUS_PT
    });
    let mut next_dynamic = FIRST_DYNAMIC_PT;
    let mut alloc = |used: &mut Vec<u8>| {
        while used.contains(&next_dynamic) {
            next_dynamic += 1;
        }
        used.push(next_dynamic);
        next_dynamic
    };
    let mut formats: Vec<(u8, RtpMap)> = Vec::new();
    for &c in &codecs {
        let pt = match (c.static_payload_type(), opus_pt) {
            (Some(pt), _) => pt,
            (None, Some(pt)) if c == CodecKind::Opus => pt,
            (None, _) => alloc(&mut used),
        };
        formats.push((pt, RtpMap::of(c)));
    }
    let mut events: Vec<(u8, u32)> = Vec::new();
    if config.telephone_event {
        for &c in &codecs {
            let clock = c.clock_rate();
            if events.iter().any(|&(_, r)| r == clock) {
                continue;
            }
            let pt = if clock == 8000 { TELEPHONE_EVENT_PT } else { alloc(&mut used) };
            events.push((pt, clock));
        }
    }
    let fmt = formats.iter().map(|(pt, _)| *pt).chain(events.iter().map(|(pt, _)| *pt)).map(|pt| pt.to_string());
    let mut m = Media {
        media: "audio".into(),
        port: config.rtp_port,
        num_ports: None,
        proto: "RTP/AVP".into(),
        fmt: fmt.collect::<Vec<_>>().join(" "),
        media_title: None,
        connections: vec![],
        bandwidths: vec![],
        key: None,
        attributes: vec![],
    };
    for (pt, map) in &formats {
        push_rtpmap(&mut m, *pt, map);
        if map.codec() == Some(CodecKind::Opus) {
            push_opus_fmtp(&mut m, *pt, options);
        }
    }
    for &(pt, clock) in &events {
        push_telephone_event(&mut m, pt, clock);
    }
    m.attributes.push(Attribute::with_value("ptime", DEFAULT_PTIME_MS));
    m.attributes.push(Attribute::with_value("maxptime", *PTIME_RANGE_MS.end()));
    m.attributes.push(Attribute::with_value("rtcp", config.rtp_port.saturating_add(1)));
    m.attributes.push(Attribute::with_value("rtcp-xr", RTCP_XR_FORMATS));
    m.attributes.push(Attribute::new(config.direction.as_str()));
    SessionDescription::from_session(session_skeleton(config.address, config.origin, vec![m]))
}

/// We were the offerer (e.g. INVITE without SDP, answer in the ACK; or a B-leg): read their
/// answer. The codec is the first in the ANSWER's format list that our offer contained.
pub fn negotiate_offer_answer(
    our_offer: &SessionDescription,
    their_answer: &SessionDescription,
) -> Result<Negotiated, NegotiationError> {
    let ours = our_offer.session();
    let theirs = their_answer.session();
    if ours.medias.len() != theirs.medias.len() {
        return Err(NegotiationError::MediaCountMismatch { offered: ours.medias.len(), answered: theirs.medias.len() });
    }
    let Some(media_index) = ours.medias.iter().position(|m| m.media == "audio" && m.port != 0) else {
        return Err(NegotiationError::NoAudio);
    };
    let offered_media = &ours.medias[media_index];
    let answered_media = &theirs.medias[media_index];
    if answered_media.port == 0 || answered_media.media != "audio" {
        return Err(NegotiationError::AudioRejected);
    }
    let offered = offered_formats(offered_media);
    let answered = offered_formats(answered_media);
    let (payload_type, codec) = answered
        .iter()
        .find_map(|f| match f.kind {
            FormatKind::Codec(k) if offered.iter().any(|o| o.kind == FormatKind::Codec(k)) => Some((f.pt, k)),
            _ => None,
        })
        .ok_or(NegotiationError::NoCommonCodec)?;
    let telephone_event = answered.iter().find_map(|f| match f.kind {
        FormatKind::TelephoneEvent(clock)
            if clock == codec.clock_rate() && offered.iter().any(|o| o.kind == f.kind) =>
        {
            Some(f.pt)
        }
        _ => None,
    });
    let remote = remote_endpoint(theirs, answered_media, media_index)?;
    let our_offered_direction = media_direction(ours, offered_media);
    let direction = our_offered_direction.intersect(remote.direction.reversed());
    let rtcp_mux = offered_media.has_attribute("rtcp-mux") && remote.rtcp_mux;
    let remote_rtcp = if rtcp_mux { remote.rtp } else { remote.rtcp };
    Ok(Negotiated {
        media_index,
        remote_rtp: remote.rtp,
        remote_rtcp,
        codec,
        payload_type,
        clock_rate: codec.clock_rate(),
        ptime: negotiated_ptime(theirs, answered_media),
        telephone_event,
        direction,
        rtcp_mux,
        rtcp_xr: remote.rtcp_xr,
        opus: opus_fmtp(answered_media, codec, payload_type),
    })
}

struct Choice {
    payload_type: u8,
    codec: CodecKind,
    telephone_event: Option<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FormatKind {
    Codec(CodecKind),
    /// telephone-event at this clock rate.
    TelephoneEvent(u32),
    Other,
}

struct Format {
    pt: u8,
    kind: FormatKind,
}

/// The RTP payload formats of an m-line in its order, each resolved through its `a=rtpmap`
/// (RFC 4566 §6) or, without one, the static table (RFC 3551 §6). Non-numeric formats are skipped.
fn offered_formats(media: &Media) -> Vec<Format> {
    media
        .fmt
        .split_ascii_whitespace()
        .filter_map(|f| f.parse::<u8>().ok())
        .filter(|&pt| pt < 128)
        .map(|pt| {
            let kind = match rtpmap(media, pt) {
                Some(map) if map.is_telephone_event() => FormatKind::TelephoneEvent(map.clock_rate),
                Some(map) => map.codec().map_or(FormatKind::Other, FormatKind::Codec),
                None => codecs::codec_for_static_pt(pt).map_or(FormatKind::Other, FormatKind::Codec),
            };
            Format { pt, kind }
        })
        .collect()
}

fn attr_for_pt<'a>(media: &'a Media, name: &str, pt: u8) -> Option<&'a str> {
    media.attributes.iter().filter(|a| a.attribute == name).find_map(|a| {
        let value = a.value.as_deref()?.trim_start();
        let (num, rest) = value.split_once(|c: char| c.is_ascii_whitespace())?;
        (num.parse::<u8>().ok()? == pt).then(|| rest.trim())
    })
}

fn rtpmap(media: &Media, pt: u8) -> Option<RtpMap> {
    RtpMap::parse(attr_for_pt(media, "rtpmap", pt)?)
}

fn fmtp(media: &Media, pt: u8) -> Option<&str> {
    attr_for_pt(media, "fmtp", pt).filter(|s| !s.is_empty())
}

/// The peer's Opus parameters for `pt` on `media`, when the codec is Opus.
fn opus_fmtp(media: &Media, codec: CodecKind, pt: u8) -> Option<OpusFmtp> {
    (codec == CodecKind::Opus).then(|| OpusFmtp::parse(fmtp(media, pt).unwrap_or_default()))
}

/// `a=fmtp:<pt> useinbandfec=1[; maxplaybackrate=<rate>]` (RFC 7587 §6.1).
fn push_opus_fmtp(m: &mut Media, pt: u8, options: &CodecOptions) {
    m.attributes
        .push(Attribute::with_value("fmtp", format!("{pt} {}", OpusFmtp::ours(options.opus_max_playback_rate))));
}

fn is_rtp_avp(proto: &str) -> bool {
    proto.eq_ignore_ascii_case("RTP/AVP") || proto.eq_ignore_ascii_case("RTP/AVPF")
}

fn direction_in(attributes: &[Attribute]) -> Option<Direction> {
    attributes.iter().rev().find_map(|a| Direction::from_attribute(&a.attribute))
}

/// Media-level direction, else session-level, else sendrecv (RFC 3264 §5.1, RFC 4566 §6).
fn media_direction(session: &Session, media: &Media) -> Direction {
    direction_in(&media.attributes).or_else(|| direction_in(&session.attributes)).unwrap_or(Direction::SendRecv)
}

/// The value of a numeric attribute (`a=ptime:20`, also `20.0`), media level first.
fn numeric_attr(session: &Session, media: &Media, name: &str) -> Option<u32> {
    let value = media
        .attributes
        .iter()
        .chain(session.attributes.iter())
        .find(|a| a.attribute == name)
        .and_then(|a| a.value.as_deref())?
        .trim();
    value.parse::<u32>().ok().or_else(|| {
        let f = value.parse::<f64>().ok()?;
        (f.is_finite() && f >= 0.0 && f < u32::MAX as f64).then_some(f as u32)
    })
}

/// Our `a=maxptime` in an answer: 60 ms, or the offer's maxptime when smaller (never below 10).
fn answer_maxptime(session: &Session, media: &Media) -> u32 {
    let ours = *PTIME_RANGE_MS.end();
    let theirs = numeric_attr(session, media, "maxptime").unwrap_or(ours);
    let max = theirs.clamp(*PTIME_RANGE_MS.start(), ours);
    max - max % 10
}

/// RFC 3264 §8: a re-offer whose `o=` line (username, session id and version) equals the
/// previous one's is the same SDP, so the previous answer stands (a session refresh).
pub fn offer_unchanged(previous: &SessionDescription, offer: &SessionDescription) -> bool {
    let (a, b) = (previous.origin(), offer.origin());
    a.username == b.username && a.sess_id == b.sess_id && a.sess_version == b.sess_version
}

/// `a=ptime` (RFC 4566 §6) limited by `a=maxptime`, clamped to 10..=60 ms and rounded down to our
/// 10 ms tick; 20 ms when absent.
fn negotiated_ptime(session: &Session, media: &Media) -> u32 {
    let mut ptime = numeric_attr(session, media, "ptime").unwrap_or(DEFAULT_PTIME_MS);
    if let Some(max) = numeric_attr(session, media, "maxptime") {
        ptime = ptime.min(max);
    }
    let ptime = ptime.clamp(*PTIME_RANGE_MS.start(), *PTIME_RANGE_MS.end());
    ptime - ptime % 10
}

struct Remote {
    rtp: SocketAddr,
    /// Without rtcp-mux: `a=rtcp` (RFC 3605 §2.1), else RTP port + 1 (RFC 3550 §11).
    rtcp: SocketAddr,
    /// The remote's direction, after legacy hold.
    direction: Direction,
    rtcp_mux: bool,
    /// `a=rtcp-xr` at media or session level (RFC 3611 §5.1).
    rtcp_xr: bool,
}

/// The peer's RTP and RTCP addresses and its direction for one m-line. The media-level `c=`
/// overrides the session-level one (RFC 4566 §5.7). `c=IN IP4 0.0.0.0` is the legacy hold of
/// RFC 2543 (RFC 3264 §8.4): the peer does not want to receive, so it counts as (at most) sendonly.
fn remote_endpoint(session: &Session, media: &Media, media_index: usize) -> Result<Remote, NegotiationError> {
    let connection: &Connection = media
        .connections
        .first()
        .or(session.connection.as_ref())
        .ok_or(NegotiationError::MissingConnection { media_index })?;
    let address = connection.connection_address.split('/').next().unwrap_or_default();
    let ip: IpAddr = address
        .parse()
        .map_err(|_| NegotiationError::InvalidConnectionAddress { address: connection.connection_address.clone() })?;
    let mut direction = media_direction(session, media);
    if ip.is_unspecified() {
        direction = direction.intersect(Direction::SendOnly);
    }
    let rtcp_mux = media.has_attribute("rtcp-mux");
    let rtp = SocketAddr::new(ip, media.port);
    let rtcp = rtcp_attribute(media, ip).unwrap_or_else(|| SocketAddr::new(ip, media.port.saturating_add(1)));
    let rtcp_xr = media.has_attribute("rtcp-xr") || session.has_attribute("rtcp-xr");
    Ok(Remote { rtp, rtcp, direction, rtcp_mux, rtcp_xr })
}

/// `a=rtcp:<port> [IN IP4|IP6 <address>]` (RFC 3605 §2.1).
fn rtcp_attribute(media: &Media, rtp_ip: IpAddr) -> Option<SocketAddr> {
    let value = media.attributes.iter().find(|a| a.attribute == "rtcp")?.value.as_deref()?;
    let mut parts = value.split_ascii_whitespace();
    let port: u16 = parts.next()?.parse().ok()?;
    let ip = match (parts.next(), parts.next(), parts.next()) {
        (Some(_net), Some(_addrtype), Some(addr)) => addr.parse().unwrap_or(rtp_ip),
        _ => rtp_ip,
    };
    Some(SocketAddr::new(ip, port))
}

/// A rejected stream: same media type, port 0, formats echoed (RFC 3264 §6).
fn rejected(offered: &Media) -> Media {
    let fmt = if offered.fmt.trim().is_empty() { "0".to_owned() } else { offered.fmt.clone() };
    answer_media(offered, 0, fmt)
}

/// An answer m-line for `offered`: same media type and transport, our port and formats, nothing else.
fn answer_media(offered: &Media, port: u16, fmt: String) -> Media {
    Media {
        media: offered.media.clone(),
        port,
        num_ports: None,
        proto: offered.proto.clone(),
        fmt,
        media_title: None,
        connections: vec![],
        bandwidths: vec![],
        key: None,
        attributes: vec![],
    }
}

fn push_rtpmap(m: &mut Media, pt: u8, map: &RtpMap) {
    m.attributes.push(Attribute::with_value("rtpmap", format!("{pt} {map}")));
}

/// `a=rtpmap:<pt> telephone-event/<clock>` and `a=fmtp:<pt> 0-16` (RFC 4733 §7.1.1).
fn push_telephone_event(m: &mut Media, pt: u8, clock: u32) {
    m.attributes.push(Attribute::with_value("rtpmap", format!("{pt} {TELEPHONE_EVENT}/{clock}")));
    m.attributes.push(Attribute::with_value("fmtp", format!("{pt} {TELEPHONE_EVENTS}")));
}

/// `v=0`, `o=- <id> <version> IN IP4|IP6 <addr>`, `s=-`, `c=IN IP4|IP6 <addr>`, `t=0 0`.
fn session_skeleton(address: IpAddr, origin: OriginState, medias: Vec<Media>) -> Session {
    Session {
        origin: Origin::with_ip_addr(origin.session_id, origin.version, address),
        session_name: "-".into(),
        session_description: None,
        uri: None,
        emails: vec![],
        phones: vec![],
        connection: Some(Connection::from_ip_addr(address)),
        bandwidths: vec![],
        times: vec![Time::new(0, 0)],
        time_zones: vec![],
        key: None,
        attributes: vec![],
        medias,
    }
}

/// The codecs we know in the first audio stream of an offer, in the offerer's order (to offer them
/// on in the same order, e.g. to a bridge's B-leg).
pub fn offered_codecs(offer: &SessionDescription) -> Vec<CodecKind> {
    let session = offer.session();
    let Some(media) = session.medias.iter().find(|m| m.media == "audio" && m.port != 0) else {
        return Vec::new();
    };
    let mut codecs = Vec::new();
    for f in offered_formats(media) {
        if let FormatKind::Codec(k) = f.kind {
            if !codecs.contains(&k) {
                codecs.push(k);
            }
        }
    }
    codecs
}
