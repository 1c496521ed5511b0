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
//! stream from their file. A leg's graph for the "play" recipe is
//! `file_player → resampler → encoder → rtp_send` and `rtp_recv → void_sink`
//! (or `rtp_recv → decoder → recorder` while recording).

mod coordinator;
mod prompt_cache;
mod schedule;

pub use coordinator::{LegReport, MediaCoordinator, MediaError};
pub use prompt_cache::{PromptCache, PromptCacheLimits};
pub use schedule::{TickSchedule, TickStats};

use std::net::SocketAddr;
use std::path::PathBuf;

use rms_filters::codec::CodecKind;
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
}

impl LegMedia {
    /// A sending leg without telephone-event.
    pub fn new(remote: SocketAddr, codec: CodecKind, payload_type: u8, ptime_ms: u32) -> Self {
        Self { remote, codec, payload_type, ptime_ms, telephone_event: None, send: true }
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
    /// Join two legs' media both ways (relay when codec and ptime match, else transcode).
    Bridge {
        a: LegId,
        b: LegId,
    },
    /// Separate a leg from its bridge partner; both go back to silence.
    Unbridge {
        leg: LegId,
    },
    /// Tear the graph down; `LegClosed` reports its statistics.
    DestroyLeg {
        leg: LegId,
    },
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
    /// Two legs were joined.
    Bridged { a: LegId, b: LegId, mode: BridgeMode },
}

/// How a bridge moves media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BridgeMode {
    /// Same codec and ptime: payloads copied.
    Relay,
    /// Decoded, resampled if needed, and encoded again.
    Transcode,
}

/// What the coordinator asks its driver to do.
#[derive(Debug)]
pub enum MediaOutput {
    /// Send `payload` from the leg's RTP socket to `dest`.
    Transmit {
        leg: LegId,
        dest: SocketAddr,
        payload: Vec<u8>,
    },
    Event(MediaEvent),
}
