//! `MediaCoordinator`: the single owner of every leg's graph.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::Duration;

use rms_filters::nodes::rtp_recv::RecvStats;
use rms_filters::nodes::rtp_send::SendStats;
use rms_filters::nodes::{Decoder, Encoder, FilePlayer, Recorder, Resampler, RtpRecv, RtpSend, VoidSink};
use rms_filters::{FilterEvent, Graph, GraphError, NodeId, UsageClock, UsageTable};

use super::prompt_cache::{PromptCache, PromptCacheLimits};
use super::{LegId, LegMedia, MediaCmd, MediaEvent, MediaOutput, TickSchedule, TickStats};

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
    #[error(transparent)]
    Graph(#[from] GraphError),
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
}

impl std::fmt::Display for LegReport {
    /// The seed's two blocks: oRTP's "RTP STATISTICS" (RTCP counters join with the RTCP issue) and
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
        writeln!(f, "=====")?;
        write!(f, "{}", self.usage)
    }
}

/// A leg and the nodes of its play recipe.
struct Leg {
    graph: Graph,
    media: LegMedia,
    player: NodeId,
    resampler: NodeId,
    encoder: NodeId,
    send: NodeId,
    recv: NodeId,
    /// What follows `recv`: the void sink, or the decoder of a recording.
    recv_sink: NodeId,
    recording: bool,
    /// Token of the play in progress.
    playing: Option<u64>,
}

/// See the module docs of [`crate::media`] for the run loop.
pub struct MediaCoordinator {
    legs: BTreeMap<LegId, Leg>,
    schedule: TickSchedule,
    outputs: VecDeque<MediaOutput>,
    rng: fastrand::Rng,
    clock: Box<dyn UsageClock + Send>,
    prompts: PromptCache,
}

impl MediaCoordinator {
    /// `seed` drives SSRCs and initial sequence numbers and timestamps; `clock` times filters for the
    /// usage table (`rms_filters::NoClock` in tests).
    pub fn new(seed: u64, clock: Box<dyn UsageClock + Send>) -> Self {
        Self {
            legs: BTreeMap::new(),
            schedule: TickSchedule::new(),
            outputs: VecDeque::new(),
            rng: fastrand::Rng::with_seed(seed),
            clock,
            prompts: PromptCache::new(PromptCacheLimits::default()),
        }
    }

    /// Replace the prompt cache (and its contents) with one of these limits; `max_bytes: 0` turns
    /// caching off, so every play streams from its file.
    pub fn set_prompt_cache(&mut self, limits: PromptCacheLimits) {
        self.prompts = PromptCache::new(limits);
    }

    pub fn handle_cmd(&mut self, _now: Duration, cmd: MediaCmd) {
        let leg = match &cmd {
            MediaCmd::CreateLeg { leg, .. }
            | MediaCmd::UpdateLeg { leg, .. }
            | MediaCmd::Play { leg, .. }
            | MediaCmd::StopPlay { leg }
            | MediaCmd::Record { leg, .. }
            | MediaCmd::DestroyLeg { leg }
            | MediaCmd::Unbridge { leg }
            | MediaCmd::Bridge { a: leg, .. } => *leg,
        };
        // Commands open and probe files (Play, Record): a decoder bug must not take the media thread
        // and every call with it.
        let result = catch_unwind(AssertUnwindSafe(|| self.apply(cmd)));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => self.event(MediaEvent::CommandFailed { leg, error }),
            Err(panic) => {
                let error = MediaError::Panicked { message: panic_message(&panic) };
                tracing::error!(?leg, %error, "media command panicked; tearing the leg down");
                if let Some(l) = self.legs.remove(&leg) {
                    self.close(leg, l, Some(error));
                } else {
                    self.event(MediaEvent::CommandFailed { leg, error });
                }
            }
        }
    }

    /// A datagram arrived on `leg`'s RTP socket. Unknown legs (a late packet after teardown) are dropped.
    pub fn handle_rtp(&mut self, now: Duration, leg: LegId, _from: SocketAddr, bytes: &[u8]) {
        let Some(l) = self.legs.get_mut(&leg) else { return };
        if let Some(recv) = l.graph.filter_mut::<RtpRecv>(l.recv) {
            recv.push_datagram(now, bytes);
        }
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

    /// The graph of `leg`, for recipes beyond the built-in ones and for tests.
    pub fn graph_mut(&mut self, leg: LegId) -> Option<&mut Graph> {
        self.legs.get_mut(&leg).map(|l| &mut l.graph)
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

    fn apply(&mut self, cmd: MediaCmd) -> Result<(), MediaError> {
        match cmd {
            MediaCmd::CreateLeg { leg, media } => {
                if self.legs.contains_key(&leg) {
                    return Err(MediaError::LegExists(leg));
                }
                let built = self.build_play_graph(leg, media)?;
                self.legs.insert(leg, built);
            }
            MediaCmd::UpdateLeg { leg, media } => {
                check_ptime(media.ptime_ms)?;
                let l = self.legs.get_mut(&leg).ok_or(MediaError::NoSuchLeg(leg))?;
                if (media.codec, media.payload_type) != (l.media.codec, l.media.payload_type) {
                    return Err(MediaError::CodecChange(leg));
                }
                if let Some(send) = l.graph.filter_mut::<RtpSend>(l.send) {
                    send.set_dest(media.remote);
                }
                if let Some(encoder) = l.graph.filter_mut::<Encoder>(l.encoder) {
                    encoder.set_ptime(media.ptime_ms);
                }
                l.media = media;
            }
            MediaCmd::Play { leg, file, loops, token } => {
                let l = self.legs.get_mut(&leg).ok_or(MediaError::NoSuchLeg(leg))?;
                let rate = l.media.codec.sample_rate();
                // A file the cache cannot take (missing, long, corrupt) is streamed: the player then
                // reports whatever is wrong with it.
                let cached = self.prompts.get(&file, rate).ok().flatten();
                let player_node = l.player;
                let player =
                    l.graph.filter_mut::<FilePlayer>(player_node).ok_or(GraphError::NoSuchNode(player_node))?;
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
                if let Some(old) = replaced {
                    self.event(MediaEvent::PlayDone { leg, token: old, completed: false });
                }
                if let Err(error) = result {
                    self.event(MediaEvent::PlayFailed { leg, token, error });
                }
            }
            MediaCmd::StopPlay { leg } => {
                let l = self.legs.get_mut(&leg).ok_or(MediaError::NoSuchLeg(leg))?;
                if let Some(player) = l.graph.filter_mut::<FilePlayer>(l.player) {
                    player.stop();
                }
                l.reset_send_path();
                if let Some(token) = l.playing.take() {
                    self.event(MediaEvent::PlayDone { leg, token, completed: false });
                }
            }
            MediaCmd::Record { leg, file } => {
                let l = self.legs.get_mut(&leg).ok_or(MediaError::NoSuchLeg(leg))?;
                if l.recording {
                    return Err(MediaError::AlreadyRecording(leg));
                }
                let recorder = Recorder::create(&file, l.media.codec.sample_rate())
                    .map_err(|e| MediaError::Record { path: file.clone(), detail: e.to_string() })?;
                let decoder = l.graph.add(Decoder::new(l.media.codec.decoder(), l.media.payload_type));
                let rec = l.graph.add(recorder);
                let old = l.recv_sink;
                l.graph.remove(old)?;
                l.graph.chain(&[l.recv, decoder, rec])?;
                l.recv_sink = decoder;
                l.recording = true;
            }
            // Placeholder until the bridge recipes land (the media half is built separately).
            MediaCmd::Bridge { .. } | MediaCmd::Unbridge { .. } => {}
            MediaCmd::DestroyLeg { leg } => {
                let l = self.legs.remove(&leg).ok_or(MediaError::NoSuchLeg(leg))?;
                self.close(leg, l, None);
            }
        }
        Ok(())
    }

    fn build_play_graph(&mut self, leg: LegId, media: LegMedia) -> Result<Leg, MediaError> {
        check_ptime(media.ptime_ms)?;
        let codec = media.codec;
        let mut g = Graph::new();
        let player = g.add(FilePlayer::new());
        let resampler = g.add(Resampler::new(codec.sample_rate()));
        let encoder = g.add(Encoder::new(codec.encoder(), media.payload_type, media.ptime_ms));
        let send = g.add(RtpSend::new(
            leg.0,
            media.remote,
            codec.clock_rate(),
            self.rng.u32(..),
            self.rng.u16(..),
            self.rng.u32(..),
        ));
        g.chain(&[player, resampler, encoder, send])?;
        let recv = g.add(RtpRecv::new(codec.clock_rate()));
        let sink = g.add(VoidSink::new());
        g.chain(&[recv, sink])?;
        Ok(Leg {
            graph: g,
            media,
            player,
            resampler,
            encoder,
            send,
            recv,
            recv_sink: sink,
            recording: false,
            playing: None,
        })
    }

    fn tick_all(&mut self, now: Duration) {
        let mut failed = Vec::new();
        for (&id, leg) in &mut self.legs {
            let clock = self.clock.as_ref();
            // A filter bug must end only its own call: contain panics as well as errors.
            let result = catch_unwind(AssertUnwindSafe(|| leg.graph.tick(now, clock)));
            for t in leg.graph.drain_transmits() {
                self.outputs.push_back(MediaOutput::Transmit { leg: id, dest: t.dest, payload: t.payload });
            }
            for e in leg.graph.drain_events() {
                match e {
                    FilterEvent::EndOfFile { .. } => {
                        if let Some(token) = leg.playing.take() {
                            self.outputs.push_back(MediaOutput::Event(MediaEvent::PlayDone {
                                leg: id,
                                token,
                                completed: true,
                            }));
                        }
                    }
                    FilterEvent::FileError { error, .. } => {
                        if let Some(token) = leg.playing.take() {
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
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed.push((id, MediaError::Graph(e))),
                Err(panic) => failed.push((id, MediaError::Panicked { message: panic_message(&panic) })),
            }
        }
        for (leg, error) in failed {
            tracing::error!(?leg, %error, "media graph failed; tearing the leg down");
            if let Some(l) = self.legs.remove(&leg) {
                self.close(leg, l, Some(error));
            }
        }
    }

    /// Report a leg's end: an interrupted play first (every play gets its `PlayDone`), then
    /// `LegClosed`, or `LegFailed` when `error` says why it ended.
    fn close(&mut self, leg: LegId, mut l: Leg, error: Option<MediaError>) {
        if let Some(token) = l.playing.take() {
            self.event(MediaEvent::PlayDone { leg, token, completed: false });
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
    fn reset_send_path(&mut self) {
        if let Some(resampler) = self.graph.filter_mut::<Resampler>(self.resampler) {
            resampler.reset();
        }
        if let Some(encoder) = self.graph.filter_mut::<Encoder>(self.encoder) {
            encoder.reset();
        }
    }
}

fn check_ptime(ptime_ms: u32) -> Result<(), MediaError> {
    if (10..=60).contains(&ptime_ms) && ptime_ms.is_multiple_of(10) {
        return Ok(());
    }
    Err(MediaError::BadPtime(ptime_ms))
}

fn report(leg: &Leg) -> LegReport {
    LegReport {
        sent: leg.graph.filter::<RtpSend>(leg.send).map(RtpSend::stats).unwrap_or_default(),
        received: leg.graph.filter::<RtpRecv>(leg.recv).map(RtpRecv::stats).unwrap_or_default(),
        usage: leg.graph.usage(),
        ticks: leg.graph.ticks(),
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
