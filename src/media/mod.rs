//! The media coordinator: owns every call leg's filter graph and ticks them all every 10 ms.
//!
//! Sans-IO, like the SIP endpoint: it never reads a clock or touches a socket. Its driver
//! (`runtime::media`) feeds it and drains it in this loop:
//!
//! ```text
//! loop {
//!     coordinator.handle_cmd(now, cmd)              for each command received
//!     coordinator.handle_rtp(now, leg, from, bytes) for each datagram read (non-blocking)
//!     coordinator.tick(now)                         runs every 10 ms tick due by `now`
//!     while let Some(out) = coordinator.poll_output() { send the datagram / forward the event }
//!     sleep until coordinator.poll_timeout(), waking early for commands
//! }
//! ```
//!
//! Prompts of up to 30 s are decoded and resampled once into a shared [`PromptCache`]; longer ones
//! stream from their file.
//!
//! Each leg has a receive graph and a send graph. Its own recipe ("play") is
//! `file_player → resampler → encoder → rtp_send` and `rtp_recv → void_sink` (or
//! `rtp_recv → decoder → recorder` while recording). [`MediaCmd::Bridge`] joins two legs both ways:
//! - **relay** (same codec and ptime): `rtp_recv ⇒ bridge_out ~ bridge_in → rtp_send`, the received
//!   packets released as they arrive (no jitter buffer) and sent unchanged but for the payload type, with
//!   the other leg's own SSRC and its sequence numbers and timestamps shifted by offsets (losses stay
//!   gaps, timing is the sender's; RFC 3550 §5.1);
//! - **transcode** (otherwise): `rtp_recv → decoder → bridge_out ~ bridge_in → resampler → encoder →
//!   rtp_send` through the receiving leg's jitter buffer.
//!
//! `~` is the coordinator: each tick it runs every receive graph, moves what each `bridge_out` collected
//! to the other leg's `bridge_in`, then runs every send graph, so a frame crosses in the tick it was
//! released in, in both directions. RFC 4733 telephone-events cross too when both legs negotiated them
//! (relayed with the media's offsets, or retimed onto the transcoding sender's timeline, its audio held
//! back meanwhile); a leg whose peer did not negotiate them drops and counts them. A play on a bridged
//! leg replaces the bridged audio to that leg until it ends. See `leg.rs` for the wiring.

mod coordinator;
mod leg;
mod prompt_cache;
mod schedule;

pub use coordinator::{LegReport, MediaCoordinator, MediaError};
pub use prompt_cache::{PromptCache, PromptCacheLimits};
pub use schedule::{TickSchedule, TickStats};

use std::net::SocketAddr;
use std::path::PathBuf;

use rms_filters::codec::{CodecKind, CodecParams};
use rms_filters::nodes::file_player::FileError;

/// Identifies a call leg across the signalling and media halves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub u32);

/// The negotiated media of a leg (from the SDP offer/answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegMedia {
    /// Where to send RTP.
    pub remote: SocketAddr,
    pub codec: CodecKind,
    pub payload_type: u8,
    /// Packet duration in ms (RFC 4566 `a=ptime`), 10..=60.
    pub ptime_ms: u32,
    /// Payload type of RFC 4733 telephone-event, when the peer negotiated it.
    pub telephone_event: Option<u8>,
    /// Whether rms sends RTP to the peer (false while the peer holds the call: its offer was
    /// `sendonly` or `inactive`, RFC 3264 §6.1). Timestamps keep running while not sending.
    pub send: bool,
    /// The PCM rate the leg's codec runs at and its encoder settings (Opus: from the peer's fmtp).
    pub params: CodecParams,
    /// Where the leg's RTCP goes and what it carries.
    pub rtcp: LegRtcp,
}

/// A leg's RTCP transport (RFC 3550 §6, RFC 3605, RFC 5761) and whether the peer takes XR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegRtcp {
    /// Where to send RTCP: the peer's `a=rtcp`, or its RTP port + 1, or its RTP address when muxed.
    pub remote: SocketAddr,
    /// RTCP shares the RTP socket (RFC 5761): received RTCP is told from RTP by its packet type.
    pub mux: bool,
    /// The peer's SDP had `a=rtcp-xr` (RFC 3611 §5.1).
    pub xr: bool,
}

impl LegRtcp {
    /// RTCP on the port above the peer's RTP port (RFC 3550 §11), not muxed, no XR negotiated.
    pub fn next_port(remote_rtp: SocketAddr) -> Self {
        let remote = SocketAddr::new(remote_rtp.ip(), remote_rtp.port().saturating_add(1));
        Self { remote, mux: false, xr: false }
    }
}

impl LegMedia {
    /// A sending leg without telephone-event, its codec at [`leg_pcm_rate`] with default settings.
    pub fn new(remote: SocketAddr, codec: CodecKind, payload_type: u8, ptime_ms: u32) -> Self {
        let params = CodecParams::at(leg_pcm_rate(codec));
        let rtcp = LegRtcp::next_port(remote);
        Self { remote, codec, payload_type, ptime_ms, telephone_event: None, send: true, params, rtcp }
    }
}

/// The PCM rate for a leg running `codec` bridged to a leg running `partner`: the rate of the audio
/// it will carry (an Opus leg bridged to G.711 codes narrowband, all its bits where the audio is).
pub fn bridged_pcm_rate(codec: CodecKind, partner: CodecKind) -> u32 {
    codec.pcm_rate_for(leg_pcm_rate(partner))
}

/// The PCM rate a leg runs its codec at: the codec's own rate, except Opus, which runs wideband
/// (16 kHz: prompts, G.722 and G.711 peers all fit, and it costs far less than 48 kHz).
pub fn leg_pcm_rate(codec: CodecKind) -> u32 {
    match codec {
        CodecKind::Opus => 16_000,
        _ => codec.sample_rate(),
    }
}

/// Commands from the signalling side.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaCmd {
    /// Build the leg's graph; RTP reception starts at once, sending when something plays.
    CreateLeg {
        leg: LegId,
        media: LegMedia,
    },
    /// New remote address or ptime after a re-INVITE; SSRC, sequence and timestamps continue.
    UpdateLeg {
        leg: LegId,
        media: LegMedia,
    },
    /// Play `file` `loops` times (0 = until stopped); `PlayDone { token }` follows. A play already
    /// running is replaced and reported as `PlayDone { completed: false }`.
    Play {
        leg: LegId,
        file: PathBuf,
        loops: u32,
        token: u64,
    },
    StopPlay {
        leg: LegId,
    },
    /// Record what the leg receives to a WAV file at the codec's rate, until the leg ends.
    Record {
        leg: LegId,
        file: PathBuf,
    },
    /// Join two legs both ways (relay or transcode, see [`BridgeMode`]); `Bridged` follows. Both must
    /// exist and neither be bridged already. Plays on either are stopped (`PlayDone { completed: false }`);
    /// a later `Play` on a bridged leg replaces the bridged audio to it until the prompt ends or is
    /// stopped.
    Bridge {
        a: LegId,
        b: LegId,
    },
    /// Separate `leg` from the leg it is bridged to; both go back to their own recipe, silent until
    /// something plays.
    Unbridge {
        leg: LegId,
    },
    /// Tear the graph down; `LegClosed` reports its statistics. A leg bridged to it is unbridged and
    /// stays, silent.
    DestroyLeg {
        leg: LegId,
    },
}

/// How a bridge carries audio from one leg to the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeMode {
    /// Same codec and ptime: RTP payloads copied without decoding.
    Relay,
    /// Decoded, resampled if the rates differ, and encoded again, through the jitter buffer.
    Transcode,
}

/// What the coordinator reports.
#[derive(Debug)]
pub enum MediaEvent {
    /// A play ended: all its audio was sent (`completed`), or it was stopped or replaced.
    PlayDone { leg: LegId, token: u64, completed: bool },
    /// A file could not be played (missing, unsupported, corrupt); the leg keeps running.
    PlayFailed { leg: LegId, token: u64, error: FileError },
    /// A command could not be carried out; nothing changed.
    CommandFailed { leg: LegId, error: MediaError },
    /// The leg's graph failed and was torn down; other legs are unaffected.
    LegFailed { leg: LegId, error: MediaError, report: LegReport },
    /// The leg was destroyed on request.
    LegClosed { leg: LegId, report: LegReport },
    /// Two legs were bridged, or their bridge changed mode (a re-INVITE changed a ptime).
    Bridged { a: LegId, b: LegId, mode: BridgeMode },
}

/// Which of a leg's two sockets (an even RTP port and the RTCP port above it, RFC 3550 §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegSocket {
    Rtp,
    Rtcp,
}

/// What the coordinator asks its driver to do.
// An event with a leg's report is ~300 bytes, a transmit ~60. Events are rare and each output is moved
// once from the coordinator's queue to its driver; boxing the report would cost an allocation per leg for
// nothing measurable (see `benches/bridge.rs`).
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum MediaOutput {
    /// Send `payload` from the leg's RTP or RTCP socket to `dest`.
    Transmit {
        leg: LegId,
        socket: LegSocket,
        dest: SocketAddr,
        payload: Vec<u8>,
    },
    Event(MediaEvent),
}

#[cfg(test)]
mod tests;
