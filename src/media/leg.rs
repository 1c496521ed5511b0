//! A leg's two graphs and the recipes wired into them.
//!
//! Every leg has a receive graph and a send graph. The coordinator ticks every receive graph, then moves
//! frames across bridges, then ticks every send graph, so bridged audio crosses within the tick it was
//! received in, both ways. [`Leg::wire`] links both graphs from the leg's state (bridged or not, playing,
//! recording), adding and removing the optional nodes:
//!
//! ```text
//! receive  rtp_recv → void_sink                                  own recipe
//!          rtp_recv → decoder → recorder                         own recipe, recording
//!          rtp_recv ⇒ bridge_out [→ decoder → recorder]          relay (immediate playout)
//!          rtp_recv → decoder → bridge_out [→ recorder]          transcode (jitter buffer)
//!          rtp_recv:1 → bridge_out:1                             telephone-events, both legs negotiated it
//! send     file_player → resampler → encoder → rtp_send          own recipe, and any play
//!          bridge_in:0 → rtp_send:1                              relay (offsets)
//!          bridge_in:0 → resampler → encoder → rtp_send          transcode, when not playing
//!          bridge_in:1 → rtp_send:2                              transcode telephone-events (retimed)
//!          … resampler → dtmf_gen → encoder, bridge_in:1 → dtmf_gen:1   the other leg's events in-band,
//!                                                                 this leg without telephone-event
//! ```

use rms_filters::codec::{AudioDecoder, AudioEncoder, CodecError};
use rms_filters::nodes::dtmf_gen::DtmfGenStats;
use rms_filters::nodes::rtp_recv::Playout;
use rms_filters::nodes::{
    BridgeIn, BridgeMap, BridgeOut, Decoder, DtmfGen, Encoder, EventRoute, FilePlayer, Recorder, Resampler, RtpRecv,
    RtpSend, VoidSink,
};
use rms_filters::{Filter, Graph, GraphError, NodeId};

use std::net::SocketAddr;
use std::time::Duration;

use rms_filters::rtp::quality;
use rms_filters::rtp::rtcp::NtpTimestamp;
use rms_filters::rtp::session::{JitterBufferFigures, ReceiverInputs, ReportInputs, RtcpSession, SenderInputs};

use super::{BridgeMode, LegId, LegMedia, LegSocket, MediaError};

/// `from:out → to:in`.
type Link = (NodeId, usize, NodeId, usize);

/// The leg's codec, made here only, at the leg's PCM rate and settings ([`LegMedia::params`]).
/// [`Leg::new`] builds both once to check the parameters, so the decoder a later recipe adds cannot
/// fail; should it, the codec's native defaults stand in.
fn encoder(media: &LegMedia) -> Result<Box<dyn AudioEncoder>, CodecError> {
    media.codec.encoder_with(&media.params)
}

fn decoder(media: &LegMedia) -> Box<dyn AudioDecoder> {
    media.codec.decoder_with(&media.params).unwrap_or_else(|_| media.codec.decoder())
}

/// A leg's side of a bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BridgeEnd {
    pub peer: LegId,
    pub mode: BridgeMode,
    /// How the peer's frames are rewritten for this leg.
    pub map: BridgeMap,
    /// This leg's received telephone-events cross to the peer (relayed, or played in-band there).
    pub events_out: bool,
}

pub(super) struct Leg {
    pub media: LegMedia,
    pub rx: Graph,
    pub tx: Graph,
    pub recv: NodeId,
    pub player: NodeId,
    pub resampler: NodeId,
    pub encoder: NodeId,
    pub send: NodeId,
    void: Option<NodeId>,
    decoder: Option<NodeId>,
    dtmf_gen: Option<NodeId>,
    /// Counts of `dtmf_gen` nodes already removed (the bridge ended or changed).
    dtmf_retired: DtmfGenStats,
    pub recorder: Option<NodeId>,
    pub bridge_out: Option<NodeId>,
    pub bridge_in: Option<NodeId>,
    pub bridge: Option<BridgeEnd>,
    /// Token of the play in progress.
    pub playing: Option<u64>,
    rx_links: Vec<Link>,
    tx_links: Vec<Link>,
    pub rtcp: RtcpSession,
}

impl Leg {
    /// The own recipe, silent until something plays. `ids` are the SSRC, first sequence number and
    /// first timestamp (random, RFC 3550 §5.1).
    pub fn new(id: LegId, media: LegMedia, ids: (u32, u16, u32), rtcp: RtcpSession) -> Result<Self, MediaError> {
        let codec = media.codec;
        media.codec.decoder_with(&media.params)?;
        let mut rx = Graph::new();
        let recv = rx.add(RtpRecv::new(codec.clock_rate()));
        let mut tx = Graph::new();
        let player = tx.add(FilePlayer::new());
        let resampler = tx.add(Resampler::new(media.params.pcm_rate));
        let encoder = tx.add(Encoder::new(encoder(&media)?, media.payload_type, media.ptime_ms));
        let (ssrc, seq, ts) = ids;
        let send = tx.add(RtpSend::new(id.0, media.remote, codec.clock_rate(), ssrc, seq, ts));
        let mut leg = Self {
            media,
            rx,
            tx,
            recv,
            player,
            resampler,
            encoder,
            send,
            void: None,
            decoder: None,
            dtmf_gen: None,
            dtmf_retired: DtmfGenStats::default(),
            recorder: None,
            bridge_out: None,
            bridge_in: None,
            bridge: None,
            playing: None,
            rx_links: Vec::new(),
            tx_links: Vec::new(),
            rtcp,
        };
        leg.apply_media(media);
        leg.wire()?;
        Ok(leg)
    }

    /// Apply negotiated media that can change in place (the codec cannot): remote address, ptime, payload
    /// types, send flag.
    pub fn apply_media(&mut self, media: LegMedia) {
        if let Some(send) = self.tx.filter_mut::<RtpSend>(self.send) {
            send.set_dest(media.remote);
            send.set_packet_time(media.ptime_ms);
            send.set_sending(media.send);
        }
        if let Some(encoder) = self.tx.filter_mut::<Encoder>(self.encoder) {
            encoder.set_ptime(media.ptime_ms);
        }
        if let Some(recv) = self.rx.filter_mut::<RtpRecv>(self.recv) {
            recv.set_payload_types(media.payload_type, media.telephone_event);
        }
        self.media = media;
    }

    /// Our SSRC (RFC 3550 §8: one per leg, as our RTCP names it).
    pub fn ssrc(&self) -> u32 {
        self.tx.filter::<RtpSend>(self.send).map_or(0, RtpSend::ssrc)
    }

    /// The RTCP report due (or, with `bye`, the last one and BYE), with where it goes: the peer's RTCP
    /// address, from the RTCP socket or, muxed, from the RTP one. `None` when the peer's address is
    /// unspecified (legacy hold) or the report cannot be written; either way the interval is sampled.
    pub fn rtcp_report(
        &mut self,
        now: Duration,
        ntp: NtpTimestamp,
        bye: bool,
    ) -> Option<(LegSocket, SocketAddr, Vec<u8>)> {
        let inputs = self.report_inputs(now);
        let result = if bye { self.rtcp.bye(now, ntp, &inputs) } else { self.rtcp.report(now, ntp, &inputs) };
        let bytes = match result {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(%error, "cannot write an RTCP report");
                return None;
            }
        };
        let rtcp = self.media.rtcp;
        if rtcp.remote.ip().is_unspecified() || rtcp.remote.port() == 0 {
            return None;
        }
        let socket = if rtcp.mux { LegSocket::Rtp } else { LegSocket::Rtcp };
        Some((socket, rtcp.remote, bytes))
    }

    /// What a report at `now` needs from the graphs: our sending figures (the RTP time of `now`, which
    /// may be after the last tick), and the received source's, taking its interval figures (RFC 3550 A.3
    /// fraction lost, RFC 3611 §4.6 summary) so the next interval starts.
    fn report_inputs(&mut self, now: Duration) -> ReportInputs {
        let sender = self.tx.filter::<RtpSend>(self.send).map_or(SenderInputs::default(), |send| {
            let stats = send.stats();
            SenderInputs {
                ssrc: send.ssrc(),
                packets: stats.packets,
                payload_octets: stats.payload_bytes,
                rtp_timestamp: send.timeline_at(now),
            }
        });
        let ptime_ms = self.media.ptime_ms;
        let receiver = self.rx.filter_mut::<RtpRecv>(self.recv).and_then(|recv| {
            let reception = recv.report()?;
            let buffered = recv.playout() == Playout::Buffered;
            let ms = |d: Duration| d.as_millis().min(u128::from(u16::MAX)) as u16;
            let jb = recv.jitter_buffer();
            let jitter_buffer = if buffered {
                JitterBufferFigures {
                    nominal_ms: ms(jb.target_delay()),
                    maximum_ms: ms(jb.max_delay()),
                    abs_max_ms: ms(jb.max_delay()),
                    adaptive: true,
                }
            } else {
                // Relayed at once: no playout delay here (the far end buffers).
                JitterBufferFigures::default()
            };
            let stats = recv.stats();
            let burst_gap = recv.burst_gap().metrics(f64::from(ptime_ms));
            let clock_rate = recv.clock_rate();
            let source = recv.current_source_mut()?;
            Some(ReceiverInputs {
                reception,
                expected: source.expected(),
                lost: source.cumulative_lost(),
                discarded: stats.late + stats.discarded,
                interval: source.take_interval_summary(),
                burst_gap,
                clock_rate,
                jitter_buffer,
                levels: None,
            })
        });
        // RFC 3611 §4.7.4: levels of the decoded audio, when this leg decodes what it receives.
        let levels = self.decoder.and_then(|d| self.rx.filter::<Decoder>(d)).map(|d| d.levels.levels());
        let receiver = receiver.map(|r| ReceiverInputs { levels, ..r });
        ReportInputs {
            sender,
            receiver,
            // The listener's decoder conceals loss: ours when we decode, the far end's when we relay.
            impairment: quality::impairment(self.media.codec, true),
            packet_ms: ptime_ms,
            plc: self.decoder.is_some(),
        }
    }

    pub fn mode(&self) -> Option<BridgeMode> {
        self.bridge.map(|b| b.mode)
    }

    /// Link both graphs for the leg's current state, adding the nodes it needs and removing the others.
    /// Links that stay are left alone; between ticks every link queue is empty, so relinking loses nothing.
    pub fn wire(&mut self) -> Result<(), GraphError> {
        let mode = self.mode();
        let (relay, transcode) = (mode == Some(BridgeMode::Relay), mode == Some(BridgeMode::Transcode));
        let recording = self.recorder.is_some();
        let (media, pt) = (self.media, self.media.payload_type);

        // Receive graph.
        let void = ensure(&mut self.rx, &mut self.void, mode.is_none() && !recording, VoidSink::new);
        let dec = ensure(&mut self.rx, &mut self.decoder, recording || transcode, || Decoder::new(decoder(&media), pt));
        let out = ensure(&mut self.rx, &mut self.bridge_out, mode.is_some(), BridgeOut::new);
        let mut chain = vec![self.recv];
        match (mode, out) {
            (Some(BridgeMode::Relay), Some(out)) => chain.extend([Some(out), dec, self.recorder].into_iter().flatten()),
            (Some(BridgeMode::Transcode), Some(out)) => {
                chain.extend([dec, Some(out), self.recorder].into_iter().flatten())
            }
            _ => chain.extend([void, dec, self.recorder].into_iter().flatten()),
        }
        let mut rx_links: Vec<Link> = chain.windows(2).map(|w| (w[0], 0, w[1], 0)).collect();
        if let (Some(out), Some(end)) = (out, self.bridge) {
            if end.events_out {
                rx_links.push((self.recv, 1, out, 1));
            }
        }
        relink(&mut self.rx, &mut self.rx_links, rx_links)?;
        remove_unneeded(&mut self.rx, &mut self.void, mode.is_none() && !recording)?;
        remove_unneeded(&mut self.rx, &mut self.decoder, recording || transcode)?;
        remove_unneeded(&mut self.rx, &mut self.bridge_out, mode.is_some())?;
        if let Some(recv) = self.rx.filter_mut::<RtpRecv>(self.recv) {
            recv.set_playout(if relay { Playout::Immediate } else { Playout::Buffered });
        }

        // Send graph.
        let map = self.bridge.map(|b| b.map);
        let inp = ensure(&mut self.tx, &mut self.bridge_in, mode.is_some(), || {
            BridgeIn::new(map.unwrap_or(BridgeMap { media_pt: (pt, pt), events: None, relay }))
        });
        if let (Some(inp), Some(map)) = (inp, map) {
            if let Some(node) = self.tx.filter_mut::<BridgeIn>(inp) {
                node.set_map(map);
            }
        }
        let source = match inp {
            Some(inp) if transcode && self.playing.is_none() => inp,
            _ => self.player,
        };
        let old_source = self.tx_links.iter().find(|l| l.2 == self.resampler).map(|l| l.0);
        // The other leg's events clock, when they are played in-band here.
        let in_band = match map.and_then(|m| m.events) {
            Some(EventRoute::InBand { clock_rate, .. }) if transcode => Some(clock_rate),
            _ => None,
        };
        let pcm_rate = media.params.pcm_rate;
        let gen = ensure(&mut self.tx, &mut self.dtmf_gen, in_band.is_some(), || {
            DtmfGen::new(pcm_rate, in_band.unwrap_or(pcm_rate))
        });
        let mut tx_links = vec![(source, 0, self.resampler, 0)];
        match gen {
            Some(gen) => tx_links.extend([(self.resampler, 0, gen, 0), (gen, 0, self.encoder, 0)]),
            None => tx_links.push((self.resampler, 0, self.encoder, 0)),
        }
        tx_links.push((self.encoder, 0, self.send, 0));
        match (mode, inp, gen) {
            (Some(BridgeMode::Relay), Some(inp), _) => tx_links.push((inp, 0, self.send, 1)),
            (Some(BridgeMode::Transcode), Some(inp), Some(gen)) => tx_links.push((inp, 1, gen, 1)),
            (Some(BridgeMode::Transcode), Some(inp), None) => tx_links.push((inp, 1, self.send, 2)),
            _ => {}
        }
        relink(&mut self.tx, &mut self.tx_links, tx_links)?;
        remove_unneeded(&mut self.tx, &mut self.bridge_in, mode.is_some())?;
        if in_band.is_none() {
            if let Some(gen) = self.dtmf_gen.and_then(|n| self.tx.filter::<DtmfGen>(n)) {
                self.dtmf_retired.merge(gen.stats());
            }
        }
        remove_unneeded(&mut self.tx, &mut self.dtmf_gen, in_band.is_some())?;
        if old_source.is_some_and(|s| s != source) {
            // Samples of the old source still buffered must not be prepended to the new one.
            self.reset_send_path();
        }
        Ok(())
    }

    /// Drop audio the resampler and encoder hold (a play was stopped, replaced, or the source changed).
    pub fn reset_send_path(&mut self) {
        if let Some(resampler) = self.tx.filter_mut::<Resampler>(self.resampler) {
            resampler.reset();
        }
        if let Some(encoder) = self.tx.filter_mut::<Encoder>(self.encoder) {
            encoder.reset();
        }
    }

    /// Telephone-events played in-band on this leg so far.
    pub fn dtmf_in_band(&self) -> DtmfGenStats {
        let mut stats = self.dtmf_retired;
        if let Some(gen) = self.dtmf_gen.and_then(|n| self.tx.filter::<DtmfGen>(n)) {
            stats.merge(gen.stats());
        }
        stats
    }

    pub fn add_recorder(&mut self, recorder: Recorder) -> Result<(), GraphError> {
        self.recorder = Some(self.rx.add(recorder));
        self.wire()
    }
}

/// The node in `slot`, added with `make` if `needed` and missing. Removal waits for [`remove_unneeded`],
/// once its links are gone.
fn ensure<F: Filter>(
    graph: &mut Graph,
    slot: &mut Option<NodeId>,
    needed: bool,
    make: impl FnOnce() -> F,
) -> Option<NodeId> {
    if needed && slot.is_none() {
        *slot = Some(graph.add(make()));
    }
    slot.filter(|_| needed)
}

fn remove_unneeded(graph: &mut Graph, slot: &mut Option<NodeId>, needed: bool) -> Result<(), GraphError> {
    if !needed {
        if let Some(node) = slot.take() {
            graph.remove(node)?;
        }
    }
    Ok(())
}

/// Make `graph`'s links those of `new`: unlink what goes, link what comes.
fn relink(graph: &mut Graph, current: &mut Vec<Link>, new: Vec<Link>) -> Result<(), GraphError> {
    for &(from, out, to, inp) in current.iter().filter(|l| !new.contains(l)) {
        graph.unlink(from, out, to, inp)?;
    }
    for &(from, out, to, inp) in new.iter().filter(|l| !current.contains(l)) {
        graph.link(from, out, to, inp)?;
    }
    *current = new;
    Ok(())
}
