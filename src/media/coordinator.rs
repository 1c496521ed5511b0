//! `MediaCoordinator`: the single owner of every leg's graph.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Duration;

use rms_filters::nodes::dtmf_gen::DtmfGenStats;
use rms_filters::nodes::rtp_recv::RecvStats;
use rms_filters::nodes::rtp_send::SendStats;
use rms_filters::nodes::{
    BridgeIn, BridgeMap, BridgeOut, EventMap, EventRoute, FilePlayer, Recorder, RtpRecv, RtpSend,
};
use rms_filters::{FilterEvent, Frame, Graph, GraphError, RtpFrame, UsageClock, UsageTable};

use rms_filters::rtp::rtcp::{is_rtcp, NtpTimestamp};
use rms_filters::rtp::session::{RtcpConfig, RtcpSession, RtcpSummary};
use rms_filters::rtp::stats::SourceStats;

use super::leg::{BridgeEnd, Leg};
use super::prompt_cache::{PromptCache, PromptCacheLimits};
use super::{BridgeMode, LegId, LegMedia, LegSocket, MediaCmd, MediaEvent, MediaOutput, TickSchedule, TickStats};
use crate::config::RtcpSettings;

/// Why a media command or a leg failed.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("leg {0:?} does not exist")]
    NoSuchLeg(LegId),
    #[error("leg {0:?} already exists")]
    LegExists(LegId),
    #[error("ptime {0} ms is outside 10..=60 or not a multiple of 10")]
    BadPtime(u32),
    #[error("leg {0:?} cannot change codec or payload type in place")]
    CodecChange(LegId),
    #[error("leg {0:?} is already recording")]
    AlreadyRecording(LegId),
    #[error("cannot record to {path}: {detail}")]
    Record { path: PathBuf, detail: String },
    #[error("leg {0:?} cannot be bridged to itself")]
    BridgeToSelf(LegId),
    #[error("leg {leg:?} is already bridged to {peer:?}")]
    AlreadyBridged { leg: LegId, peer: LegId },
    #[error("leg {0:?} is not bridged")]
    NotBridged(LegId),
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Codec(#[from] rms_filters::codec::CodecError),
    #[error("a filter panicked: {message}")]
    Panicked { message: String },
}

/// A leg's statistics at its end: the seed's "RTP STATISTICS" and "FILTER USAGE STATISTICS".
#[derive(Debug, Clone, PartialEq)]
pub struct LegReport {
    pub sent: SendStats,
    pub received: RecvStats,
    pub usage: UsageTable,
    pub ticks: u64,
    /// Our SSRC, and the received source's with its interarrival jitter (RFC 3550 A.8, timestamp units).
    pub local_ssrc: u32,
    pub remote_ssrc: Option<u32>,
    pub received_jitter: Option<u32>,
    /// RTCP counters, the quality of each interval, the last XR VoIP metrics both ways.
    pub rtcp: RtcpSummary,
    /// The other leg's telephone-events played to this leg as in-band tones.
    pub dtmf_in_band: DtmfGenStats,
}

impl std::fmt::Display for LegReport {
    /// The seed's two blocks: oRTP's "RTP STATISTICS" (with the RTCP counters and the E-model MOS) and
    /// mediastreamer2's "FILTER USAGE STATISTICS".
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (s, r) = (&self.sent, &self.received);
        writeln!(f, "AUDIO SESSION'S RTP STATISTICS")?;
        writeln!(f, "=====")?;
        writeln!(f, "{:<40} {} packets", "sent", s.packets)?;
        writeln!(f, "{:<40} {} bytes", "", s.bytes)?;
        writeln!(f, "{:<40} {} packets", "received", r.packets)?;
        writeln!(f, "{:<40} {} duplicated packets", "", r.duplicated)?;
        writeln!(f, "{:<40} {} bytes", "", r.bytes)?;
        writeln!(f, "{:<40} {} bytes", "incoming delivered to the app", r.delivered_bytes)?;
        writeln!(f, "{:<40} {} packets", "incoming cumulative lost", r.cumulative_lost)?;
        writeln!(f, "{:<40} {} packets", "incoming received too late", r.late)?;
        writeln!(f, "{:<40} {} packets", "incoming bad formatted", r.bad_formatted)?;
        writeln!(f, "{:<40} {} packets", "incoming discarded (queue overflow)", r.discarded)?;
        writeln!(f, "{:<40} {} packets", "incoming unknown payload type", r.unknown_payload_type)?;
        writeln!(f, "{:<40} {} packets", "incoming telephone-events malformed", r.bad_events)?;
        writeln!(f, "{:<40} {} packets", "incoming telephone-events not relayed", r.events_dropped)?;
        let d = &self.dtmf_in_band;
        writeln!(f, "{:<40} {} digits ({} ended by timeout)", "outgoing DTMF played in-band", d.played, d.timed_out)?;
        writeln!(f, "{:<40} {} packets", "outgoing telephone-events not played", d.ignored)?;
        let c = &self.rtcp.counters;
        writeln!(f, "{:<40} {} packets", "sent rtcp", c.sent_packets)?;
        writeln!(f, "{:<40} {} bytes", "", c.sent_bytes)?;
        writeln!(f, "{:<40} {} packets", "received rtcp", c.received_packets)?;
        writeln!(f, "{:<40} {} bytes", "", c.received_bytes)?;
        writeln!(f, "{:<40} {} packets", "incoming rtcp bad formatted", c.malformed)?;
        let q = &self.rtcp.quality;
        if let (Some(min), Some(max), Some(avg)) = (q.mos_min(), q.mos_max(), q.mos_avg()) {
            writeln!(
                f,
                "{:<40} avg {avg:.2}, min {:.2}, max {:.2} ({} intervals)",
                "MOS (E-model)",
                min.mos,
                max.mos,
                q.count()
            )?;
        }
        writeln!(f, "=====")?;
        write!(f, "{}", self.usage)
    }
}

/// See the module docs of [`crate::media`] for the run loop.
pub struct MediaCoordinator {
    legs: BTreeMap<LegId, Leg>,
    /// Bridged pairs, each once.
    bridges: Vec<(LegId, LegId)>,
    /// Frames crossing a bridge, reused every tick.
    crossing: (Vec<Frame>, Vec<RtpFrame>),
    schedule: TickSchedule,
    outputs: VecDeque<MediaOutput>,
    rng: fastrand::Rng,
    clock: Box<dyn UsageClock + Send>,
    prompts: PromptCache,
    rtcp: RtcpSettings,
    /// Unix time of `now == 0`.
    wall_clock: Duration,
}

/// The wall clock until the runtime sets it: a fixed instant, so virtual-time runs are repeatable.
const DEFAULT_WALL_CLOCK: Duration = Duration::from_secs(1_790_000_000);

impl MediaCoordinator {
    /// `seed` drives SSRCs and initial sequence numbers and timestamps; `clock` times filters for the
    /// usage table (`rms_filters::NoClock` in tests).
    pub fn new(seed: u64, clock: Box<dyn UsageClock + Send>) -> Self {
        Self {
            legs: BTreeMap::new(),
            bridges: Vec::new(),
            crossing: (Vec::new(), Vec::new()),
            schedule: TickSchedule::new(),
            outputs: VecDeque::new(),
            rng: fastrand::Rng::with_seed(seed),
            clock,
            prompts: PromptCache::new(PromptCacheLimits::default()),
            rtcp: RtcpSettings::default(),
            wall_clock: DEFAULT_WALL_CLOCK,
        }
    }

    /// Replace the prompt cache (and its contents) with one of these limits; `max_bytes: 0` turns
    /// caching off, so every play streams from its file.
    pub fn set_prompt_cache(&mut self, limits: PromptCacheLimits) {
        self.prompts = PromptCache::new(limits);
    }

    pub fn handle_cmd(&mut self, now: Duration, cmd: MediaCmd) {
        let leg = match &cmd {
            MediaCmd::CreateLeg { leg, .. }
            | MediaCmd::UpdateLeg { leg, .. }
            | MediaCmd::Play { leg, .. }
            | MediaCmd::StopPlay { leg }
            | MediaCmd::Record { leg, .. }
            | MediaCmd::Bridge { a: leg, .. }
            | MediaCmd::Unbridge { leg }
            | MediaCmd::DestroyLeg { leg } => *leg,
        };
        // Commands open and probe files (Play, Record): a decoder bug must not take the media thread
        // and every call with it.
        let result = catch_unwind(AssertUnwindSafe(|| self.apply(now, cmd)));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => self.event(MediaEvent::CommandFailed { leg, error }),
            Err(panic) => {
                let error = MediaError::Panicked { message: panic_message(&panic) };
                tracing::error!(?leg, %error, "media command panicked; tearing the leg down");
                if let Some(l) = self.legs.remove(&leg) {
                    self.close(now, leg, l, Some(error));
                } else {
                    self.event(MediaEvent::CommandFailed { leg, error });
                }
            }
        }
    }

    /// A datagram arrived on `leg`'s RTP socket. Unknown legs (a late packet after teardown) are dropped.
    pub fn handle_rtp(&mut self, now: Duration, leg: LegId, from: SocketAddr, bytes: &[u8]) {
        let Some(l) = self.legs.get_mut(&leg) else { return };
        // RFC 5761 §4: on a muxed port, RTCP is told from RTP by its packet type.
        if l.media.rtcp.mux && is_rtcp(bytes) {
            self.handle_rtcp(now, leg, from, bytes);
            return;
        }
        if let Some(recv) = l.rx.filter_mut::<RtpRecv>(l.recv) {
            recv.push_datagram(now, bytes);
        }
    }

    /// A datagram arrived on `leg`'s RTCP socket (or, muxed, on its RTP socket). Malformed ones are
    /// counted and ignored by the leg's RTCP session.
    pub fn handle_rtcp(&mut self, now: Duration, leg: LegId, _from: SocketAddr, bytes: &[u8]) {
        let ntp = self.ntp(now);
        let Some(l) = self.legs.get_mut(&leg) else { return };
        let ssrc = l.ssrc();
        l.rtcp.receive(now, ntp, bytes, ssrc);
    }

    /// RTCP settings for legs created from now on (and XR for legs updated).
    pub fn set_rtcp(&mut self, settings: RtcpSettings) {
        self.rtcp = settings;
    }

    /// The wall-clock time (since the Unix epoch) of `now == 0`, for RTCP's NTP timestamps.
    pub fn set_wall_clock(&mut self, unix_at_zero: Duration) {
        self.wall_clock = unix_at_zero;
    }

    fn ntp(&self, now: Duration) -> NtpTimestamp {
        NtpTimestamp::from_unix(self.wall_clock + now)
    }

    /// Run every tick due by `now`. Returns how many ran.
    pub fn tick(&mut self, now: Duration) -> usize {
        let mut ran = 0;
        while let Some((_, due)) = self.schedule.poll(now) {
            self.tick_all(due);
            ran += 1;
        }
        ran
    }

    /// When `tick` next has work.
    pub fn poll_timeout(&self) -> Duration {
        self.schedule.next_due()
    }

    pub fn poll_output(&mut self) -> Option<MediaOutput> {
        self.outputs.pop_front()
    }

    pub fn tick_stats(&self) -> TickStats {
        self.schedule.stats()
    }

    /// The send graph of `leg` (`file_player → … → rtp_send`), for recipes beyond the built-in ones and
    /// for tests.
    pub fn graph_mut(&mut self, leg: LegId) -> Option<&mut Graph> {
        self.legs.get_mut(&leg).map(|l| &mut l.tx)
    }

    /// The receive graph of `leg` (`rtp_recv → …`).
    pub fn rx_graph_mut(&mut self, leg: LegId) -> Option<&mut Graph> {
        self.legs.get_mut(&leg).map(|l| &mut l.rx)
    }

    /// The leg `leg` is bridged to, and how.
    pub fn bridged_to(&self, leg: LegId) -> Option<(LegId, BridgeMode)> {
        self.legs.get(&leg)?.bridge.map(|b| (b.peer, b.mode))
    }

    pub fn has_leg(&self, leg: LegId) -> bool {
        self.legs.contains_key(&leg)
    }

    pub fn leg_count(&self) -> usize {
        self.legs.len()
    }

    /// The legs that exist, in id order.
    pub fn legs(&self) -> impl Iterator<Item = LegId> + '_ {
        self.legs.keys().copied()
    }

    fn apply(&mut self, now: Duration, cmd: MediaCmd) -> Result<(), MediaError> {
        match cmd {
            MediaCmd::CreateLeg { leg, media } => {
                if self.legs.contains_key(&leg) {
                    return Err(MediaError::LegExists(leg));
                }
                check_ptime(media.ptime_ms)?;
                let ids = (self.rng.u32(..), self.rng.u16(..), self.rng.u32(..));
                let config = RtcpConfig {
                    min_interval: self.rtcp.min_interval,
                    xr: self.rtcp.xr.sends(media.rtcp.xr),
                    // RFC 7022 §4.2: a random CNAME per session, long enough to be unique.
                    cname: format!("rms-{:016x}{:08x}", self.rng.u64(..), self.rng.u32(..)),
                    ..RtcpConfig::new(String::new())
                };
                let rtcp = RtcpSession::new(config, now, self.rng.u64(..));
                self.legs.insert(leg, Leg::new(leg, media, ids, rtcp)?);
            }
            MediaCmd::UpdateLeg { leg, media } => {
                check_ptime(media.ptime_ms)?;
                let l = self.legs.get_mut(&leg).ok_or(MediaError::NoSuchLeg(leg))?;
                if (media.codec, media.payload_type) != (l.media.codec, l.media.payload_type) {
                    return Err(MediaError::CodecChange(leg));
                }
                l.apply_media(media);
                l.rtcp.set_xr(self.rtcp.xr.sends(media.rtcp.xr));
                if let Some(end) = l.bridge {
                    // A new ptime may turn a relay into a transcode or back; new payload types remap.
                    let mode = self.configure_bridge(leg, end.peer)?;
                    if mode != end.mode {
                        let (a, b) = (leg.min(end.peer), leg.max(end.peer));
                        self.event(MediaEvent::Bridged { a, b, mode });
                    }
                }
            }
            MediaCmd::Play { leg, file, loops, token } => {
                let l = self.legs.get_mut(&leg).ok_or(MediaError::NoSuchLeg(leg))?;
                let rate = l.media.params.pcm_rate;
                // A file the cache cannot take (missing, long, corrupt) is streamed: the player then
                // reports whatever is wrong with it.
                let cached = self.prompts.get(&file, rate).ok().flatten();
                let player_node = l.player;
                let player = l.tx.filter_mut::<FilePlayer>(player_node).ok_or(GraphError::NoSuchNode(player_node))?;
                let result = match cached {
                    Some(samples) => player.play_pcm(&file, samples, rate, loops),
                    None => player.play(&file, loops).map(|_| ()),
                };
                let replaced = l.playing.take();
                // The old play's tail still buffered downstream must not leak into the new one.
                l.reset_send_path();
                if result.is_ok() {
                    l.playing = Some(token);
                }
                // On a bridged leg the prompt replaces the bridged audio until it ends.
                l.wire()?;
                if let Some(old) = replaced {
                    self.event(MediaEvent::PlayDone { leg, token: old, completed: false });
                }
                if let Err(error) = result {
                    self.event(MediaEvent::PlayFailed { leg, token, error });
                }
            }
            MediaCmd::StopPlay { leg } => {
                let l = self.legs.get_mut(&leg).ok_or(MediaError::NoSuchLeg(leg))?;
                let token = l.stop_play()?;
                if let Some(token) = token {
                    self.event(MediaEvent::PlayDone { leg, token, completed: false });
                }
            }
            MediaCmd::Record { leg, file } => {
                let l = self.legs.get_mut(&leg).ok_or(MediaError::NoSuchLeg(leg))?;
                if l.recorder.is_some() {
                    return Err(MediaError::AlreadyRecording(leg));
                }
                let recorder = Recorder::create(&file, l.media.params.pcm_rate)
                    .map_err(|e| MediaError::Record { path: file.clone(), detail: e.to_string() })?;
                l.add_recorder(recorder)?;
            }
            MediaCmd::Bridge { a, b } => self.bridge(a, b)?,
            MediaCmd::Unbridge { leg } => {
                let l = self.legs.get(&leg).ok_or(MediaError::NoSuchLeg(leg))?;
                let end = l.bridge.ok_or(MediaError::NotBridged(leg))?;
                self.unbridge(leg, end.peer)?;
            }
            MediaCmd::DestroyLeg { leg } => {
                let l = self.legs.remove(&leg).ok_or(MediaError::NoSuchLeg(leg))?;
                self.close(now, leg, l, None);
            }
        }
        Ok(())
    }

    /// Join `a` and `b` both ways. Plays on either end (each gets its `PlayDone`).
    fn bridge(&mut self, a: LegId, b: LegId) -> Result<(), MediaError> {
        if a == b {
            return Err(MediaError::BridgeToSelf(a));
        }
        for leg in [a, b] {
            let l = self.legs.get(&leg).ok_or(MediaError::NoSuchLeg(leg))?;
            if let Some(end) = l.bridge {
                return Err(MediaError::AlreadyBridged { leg, peer: end.peer });
            }
        }
        for leg in [a, b] {
            let Some(l) = self.legs.get_mut(&leg) else { continue };
            if let Some(send) = l.tx.filter_mut::<RtpSend>(l.send) {
                send.reset_relay();
            }
            if let Some(token) = l.stop_play()? {
                self.event(MediaEvent::PlayDone { leg, token, completed: false });
            }
        }
        self.bridges.push((a, b));
        let mode = self.configure_bridge(a, b)?;
        self.event(MediaEvent::Bridged { a, b, mode });
        Ok(())
    }

    /// (Re)wire the bridge between `a` and `b` for their current media; returns its mode.
    fn configure_bridge(&mut self, a: LegId, b: LegId) -> Result<BridgeMode, MediaError> {
        let ma = self.legs.get(&a).ok_or(MediaError::NoSuchLeg(a))?.media;
        let mb = self.legs.get(&b).ok_or(MediaError::NoSuchLeg(b))?.media;
        let mode = bridge_mode(&ma, &mb);
        for (leg, peer, own, other) in [(a, b, &ma, &mb), (b, a, &mb, &ma)] {
            let l = self.legs.get_mut(&leg).ok_or(MediaError::NoSuchLeg(leg))?;
            let changed = l.mode().is_some_and(|m| m != mode);
            let out = bridge_map(own, other, mode);
            let events_out = out.events.is_some();
            l.bridge = Some(BridgeEnd { peer, mode, map: bridge_map(other, own, mode), events_out });
            l.wire()?;
            if changed {
                // Frames queued for the other recipe are of the wrong kind now.
                if let Some(inp) = l.bridge_in.and_then(|n| l.tx.filter_mut::<BridgeIn>(n)) {
                    inp.clear();
                }
            }
        }
        Ok(mode)
    }

    /// Both legs back to their own recipe, silent until something plays.
    fn unbridge(&mut self, a: LegId, b: LegId) -> Result<(), MediaError> {
        self.bridges.retain(|&(x, y)| !(x == a && y == b || x == b && y == a));
        for leg in [a, b] {
            if let Some(l) = self.legs.get_mut(&leg) {
                l.bridge = None;
                l.wire()?;
            }
        }
        Ok(())
    }

    /// Move what `from` received for the bridge to `to`'s send graph, unless `to` is playing a prompt,
    /// which replaces the bridged audio (what arrives meanwhile is dropped).
    fn cross(&mut self, from: LegId, to: LegId) {
        let (media, events) = &mut self.crossing;
        if let Some(l) = self.legs.get_mut(&from) {
            if let Some(out) = l.bridge_out.and_then(|n| l.rx.filter_mut::<BridgeOut>(n)) {
                out.take(media, events);
            }
        }
        if let Some(l) = self.legs.get_mut(&to).filter(|l| l.playing.is_none()) {
            if let Some(inp) = l.bridge_in.and_then(|n| l.tx.filter_mut::<BridgeIn>(n)) {
                inp.push(media, events);
            }
        }
        media.clear();
        events.clear();
    }

    fn tick_all(&mut self, now: Duration) {
        let mut failed: Vec<(LegId, MediaError)> = Vec::new();
        // Receive halves first, then what crosses bridges, then send halves: bridged audio reaches the
        // other leg in the tick it was released in, both ways.
        for (&id, leg) in &mut self.legs {
            if let Err(error) = run_graph(&mut leg.rx, now, self.clock.as_ref()) {
                failed.push((id, error));
            }
            // Only the recorder reports here (RecordingClosed), and nothing waits for it.
            leg.rx.drain_events().for_each(drop);
        }
        for i in 0..self.bridges.len() {
            let (a, b) = self.bridges[i];
            self.cross(a, b);
            self.cross(b, a);
        }
        let ntp = self.ntp(now);
        for (&id, leg) in &mut self.legs {
            if failed.iter().any(|(f, _)| *f == id) {
                continue;
            }
            let result = run_graph(&mut leg.tx, now, self.clock.as_ref());
            for t in leg.tx.drain_transmits() {
                self.outputs.push_back(MediaOutput::Transmit {
                    leg: id,
                    socket: LegSocket::Rtp,
                    dest: t.dest,
                    payload: t.payload,
                });
            }
            let mut ended = false;
            for e in leg.tx.drain_events() {
                match e {
                    FilterEvent::EndOfFile { .. } => {
                        if let Some(token) = leg.playing.take() {
                            ended = true;
                            self.outputs.push_back(MediaOutput::Event(MediaEvent::PlayDone {
                                leg: id,
                                token,
                                completed: true,
                            }));
                        }
                    }
                    FilterEvent::FileError { error, .. } => {
                        if let Some(token) = leg.playing.take() {
                            ended = true;
                            self.outputs.push_back(MediaOutput::Event(MediaEvent::PlayFailed {
                                leg: id,
                                token,
                                error,
                            }));
                        }
                    }
                    FilterEvent::RecordingClosed { .. } => {}
                }
            }
            // An RTCP report due (RFC 3550 §6.2): after both graphs and this tick's RTP, so its
            // figures include them.
            if result.is_ok() && now >= leg.rtcp.next_report() {
                if let Some((socket, dest, payload)) = leg.rtcp_report(now, ntp, false) {
                    self.outputs.push_back(MediaOutput::Transmit { leg: id, socket, dest, payload });
                }
            }
            // A bridged leg goes back to the bridged audio.
            let rewired = if ended && leg.bridge.is_some() { leg.wire().map_err(MediaError::Graph) } else { Ok(()) };
            if let Err(error) = result.and(rewired) {
                failed.push((id, error));
            }
        }
        for (leg, error) in failed {
            tracing::error!(?leg, %error, "media graph failed; tearing the leg down");
            if let Some(l) = self.legs.remove(&leg) {
                self.close(now, leg, l, Some(error));
            }
        }
    }

    /// Report a leg's end: an interrupted play first (every play gets its `PlayDone`), then
    /// `LegClosed`, or `LegFailed` when `error` says why it ended. The leg it was bridged to stays, silent.
    fn close(&mut self, now: Duration, leg: LegId, mut l: Leg, error: Option<MediaError>) {
        if let Some(end) = l.bridge {
            if let Err(e) = self.unbridge(leg, end.peer) {
                tracing::error!(leg = ?end.peer, error = %e, "cannot unbridge the leg left alone");
            }
        }
        if let Some(token) = l.playing.take() {
            self.event(MediaEvent::PlayDone { leg, token, completed: false });
        }
        // RFC 3550 §6.6: a last report and BYE; it also measures the last, partial interval.
        if let Some((socket, dest, payload)) = l.rtcp_report(now, self.ntp(now), true) {
            self.outputs.push_back(MediaOutput::Transmit { leg, socket, dest, payload });
        }
        let report = report(&l);
        match error {
            None => self.event(MediaEvent::LegClosed { leg, report }),
            Some(error) => self.event(MediaEvent::LegFailed { leg, error, report }),
        }
    }

    fn event(&mut self, e: MediaEvent) {
        self.outputs.push_back(MediaOutput::Event(e));
    }
}

impl Leg {
    /// Stop the play in progress, if any, and return its token; a bridged leg goes back to the bridged
    /// audio.
    fn stop_play(&mut self) -> Result<Option<u64>, MediaError> {
        if let Some(player) = self.tx.filter_mut::<FilePlayer>(self.player) {
            player.stop();
        }
        self.reset_send_path();
        let token = self.playing.take();
        self.wire()?;
        Ok(token)
    }
}

/// Tick one graph, containing a filter's panic as well as its error: it must end only its own call.
fn run_graph(graph: &mut Graph, now: Duration, clock: &(dyn UsageClock + Send)) -> Result<(), MediaError> {
    match catch_unwind(AssertUnwindSafe(|| graph.tick(now, clock))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(MediaError::Graph(e)),
        Err(panic) => Err(MediaError::Panicked { message: panic_message(&panic) }),
    }
}

/// Relay when both legs send the same codec in packets of the same duration and agree on
/// telephone-event: payloads cross untouched. Anything else is decoded and encoded again.
fn bridge_mode(a: &LegMedia, b: &LegMedia) -> BridgeMode {
    // Telephone-events toward a leg without telephone-event become tones in its audio: that needs
    // the audio decoded and encoded again.
    let events_match = a.telephone_event.is_some() == b.telephone_event.is_some();
    if a.codec == b.codec && a.ptime_ms == b.ptime_ms && events_match {
        BridgeMode::Relay
    } else {
        BridgeMode::Transcode
    }
}

/// How frames received on `from` are rewritten to be sent on `to`.
fn bridge_map(from: &LegMedia, to: &LegMedia, mode: BridgeMode) -> BridgeMap {
    let events = match (from.telephone_event, to.telephone_event, mode) {
        (Some(f), Some(t), _) => Some(EventRoute::Relay(EventMap {
            pt: (f, t),
            clock_rate: (from.codec.clock_rate(), to.codec.clock_rate()),
        })),
        (Some(pt), None, BridgeMode::Transcode) => Some(EventRoute::InBand { pt, clock_rate: from.codec.clock_rate() }),
        _ => None,
    };
    BridgeMap { media_pt: (from.payload_type, to.payload_type), events, relay: mode == BridgeMode::Relay }
}

fn check_ptime(ptime_ms: u32) -> Result<(), MediaError> {
    if (10..=60).contains(&ptime_ms) && ptime_ms.is_multiple_of(10) {
        return Ok(());
    }
    Err(MediaError::BadPtime(ptime_ms))
}

/// Statistics and filter usage of both of the leg's graphs.
fn report(leg: &Leg) -> LegReport {
    let rows = leg.rx.usage().rows.into_iter().chain(leg.tx.usage().rows);
    let recv = leg.rx.filter::<RtpRecv>(leg.recv);
    let source = recv.and_then(|r| r.source(r.current_ssrc()?));
    LegReport {
        sent: leg.tx.filter::<RtpSend>(leg.send).map(RtpSend::stats).unwrap_or_default(),
        received: recv.map(RtpRecv::stats).unwrap_or_default(),
        usage: UsageTable::new(rows.map(|r| (r.name, r.stats))),
        ticks: leg.tx.ticks(),
        local_ssrc: leg.ssrc(),
        remote_ssrc: source.map(SourceStats::ssrc),
        received_jitter: source.map(SourceStats::jitter),
        rtcp: leg.rtcp.summary().clone(),
        dtmf_in_band: leg.dtmf_in_band(),
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        return (*s).to_string();
    }
    if let Some(s) = panic.downcast_ref::<String>() {
        return s.clone();
    }
    "non-string panic payload".to_string()
}
