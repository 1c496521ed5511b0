//! Bridging in virtual time: two legs, RTP datagrams of a tone fed tick by tick through `handle_rtp`,
//! and what the coordinator transmits parsed, decoded and measured. No sockets, no sleeps.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rms_filters::codec::telephone_event::TelephoneEvent;
use rms_filters::codec::CodecKind;
use rms_filters::rtp::rtcp::{ReportBlock, RtcpCompound, RtcpPacket};
use rms_filters::rtp::xr::{StatisticsSummary, VoipMetrics, XrBlock};
use rms_filters::testing::{best_correlation, goertzel_ratio, read_wav, rms_level, sine, write_wav};
use rms_filters::{Filter, FilterDesc, FilterError, NoClock, ProcessCx, TICK};
use rtp_types::{RtpPacket, RtpPacketBuilder};

use super::*;

const A: LegId = LegId(1);
const B: LegId = LegId(2);

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn leg(port: u16, codec: CodecKind, payload_type: u8, ptime_ms: u32, telephone_event: Option<u8>) -> LegMedia {
    LegMedia { telephone_event, ..LegMedia::new(addr(port), codec, payload_type, ptime_ms) }
}

fn pcmu(port: u16) -> LegMedia {
    leg(port, CodecKind::Pcmu, 0, 20, None)
}

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rms-bridge-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join(name)
}

/// A far end sending a tone: one packet per ptime, as its own SSRC, sequence and timestamps.
struct Peer {
    ssrc: u32,
    seq: u16,
    ts: u32,
    codec: CodecKind,
    pt: u8,
    /// The tone before encoding, to compare with what comes out.
    pcm: Vec<i16>,
    pos: usize,
    samples: usize,
    talkspurt: bool,
}

impl Peer {
    fn new(codec: CodecKind, pt: u8, ssrc: u32, freq: f64) -> Self {
        let pcm = sine(8000, freq, 8000.0, 8000 * 20);
        let (seq, ts) = ((ssrc as u16).wrapping_mul(7), ssrc.wrapping_mul(13));
        Self { ssrc, seq, ts, codec, pt, pcm, pos: 0, samples: 160, talkspurt: true }
    }

    fn datagram(&self, pt: u8, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
        RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(pt)
            .sequence_number(self.seq)
            .timestamp(ts)
            .ssrc(self.ssrc)
            .marker_bit(marker)
            .payload(payload)
            .write_vec()
            .expect("valid test packet")
    }

    /// The next packet of the tone.
    fn audio(&mut self) -> Vec<u8> {
        let mut payload = Vec::new();
        self.codec.encoder().encode(&self.pcm[self.pos..self.pos + self.samples], &mut payload).unwrap();
        let d = self.datagram(self.pt, self.ts, self.talkspurt, &payload);
        self.talkspurt = false;
        self.advance();
        d
    }

    /// A packet lost on the way: numbers and time move on.
    fn lose(&mut self) {
        self.advance();
    }

    fn advance(&mut self) {
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(self.samples as u32);
        self.pos += self.samples;
    }

    /// A telephone-event packet of the event that started at `start` (RFC 4733: all its packets carry
    /// that timestamp; the first is marked). Media time moves on by one packet.
    fn event(&mut self, pt: u8, start: u32, first: bool, end: bool, duration: u16) -> Vec<u8> {
        let payload = TelephoneEvent { event: 5, end, volume: 10, duration }.to_bytes();
        let d = self.datagram(pt, start, first, &payload);
        self.seq = self.seq.wrapping_add(1);
        self.talkspurt = true;
        d
    }

    /// Time passes without audio (during an event).
    fn silence(&mut self) {
        self.ts = self.ts.wrapping_add(self.samples as u32);
        self.pos += self.samples;
    }
}

/// A datagram the coordinator transmitted, parsed.
#[derive(Debug, Clone)]
struct Sent {
    tick: u64,
    leg: LegId,
    dest: SocketAddr,
    ssrc: u32,
    seq: u16,
    ts: u32,
    pt: u8,
    marker: bool,
    payload: Vec<u8>,
}

/// The coordinator with two legs, driven one 10 ms tick at a time.
struct World {
    c: MediaCoordinator,
    tick: u64,
    sent: Vec<Sent>,
    /// RTCP compounds sent, by leg.
    rtcp: Vec<(LegId, Vec<u8>)>,
    events: Vec<(u64, MediaEvent)>,
}

impl World {
    fn new(a: LegMedia, b: LegMedia) -> Self {
        let mut w = Self {
            c: MediaCoordinator::new(7, Box::new(NoClock)),
            tick: 0,
            sent: Vec::new(),
            rtcp: Vec::new(),
            events: Vec::new(),
        };
        w.cmd(MediaCmd::CreateLeg { leg: A, media: a });
        w.cmd(MediaCmd::CreateLeg { leg: B, media: b });
        w
    }

    fn bridged(a: LegMedia, b: LegMedia) -> Self {
        let mut w = Self::new(a, b);
        w.cmd(MediaCmd::Bridge { a: A, b: B });
        w
    }

    fn now(&self) -> Duration {
        TICK * self.tick as u32
    }

    fn cmd(&mut self, cmd: MediaCmd) {
        self.c.handle_cmd(self.now(), cmd);
        self.collect();
    }

    fn rtp(&mut self, leg: LegId, datagram: &[u8]) {
        self.c.handle_rtp(self.now(), leg, addr(9), datagram);
    }

    /// Run the tick due now.
    fn step(&mut self) {
        assert_eq!(self.c.tick(self.now()), 1);
        self.collect();
        self.tick += 1;
    }

    /// `ticks` ticks; at every other one (20 ms), a packet from each peer given.
    fn talk(&mut self, ticks: u64, mut a: Option<&mut Peer>, mut b: Option<&mut Peer>) {
        for _ in 0..ticks {
            if self.tick.is_multiple_of(2) {
                if let Some(p) = a.as_deref_mut() {
                    let d = p.audio();
                    self.rtp(A, &d);
                }
                if let Some(p) = b.as_deref_mut() {
                    let d = p.audio();
                    self.rtp(B, &d);
                }
            }
            self.step();
        }
    }

    fn collect(&mut self) {
        while let Some(out) = self.c.poll_output() {
            match out {
                MediaOutput::Transmit { leg, socket: LegSocket::Rtcp, payload, .. } => self.rtcp.push((leg, payload)),
                // Muxed RTCP (RFC 5761) leaves from the RTP socket.
                MediaOutput::Transmit { leg, payload, .. } if rms_filters::rtp::rtcp::is_rtcp(&payload) => {
                    self.rtcp.push((leg, payload))
                }
                MediaOutput::Transmit { leg, dest, payload, .. } => {
                    let p = RtpPacket::parse(&payload).expect("the coordinator sends valid RTP");
                    self.sent.push(Sent {
                        tick: self.tick,
                        leg,
                        dest,
                        ssrc: p.ssrc(),
                        seq: p.sequence_number(),
                        ts: p.timestamp(),
                        pt: p.payload_type(),
                        marker: p.marker_bit(),
                        payload: p.payload().to_vec(),
                    });
                }
                MediaOutput::Event(e) => self.events.push((self.tick, e)),
            }
        }
    }

    /// What was sent on `leg` (to its far end), in sending order.
    fn to(&self, leg: LegId) -> Vec<Sent> {
        self.sent.iter().filter(|s| s.leg == leg).cloned().collect()
    }

    fn take_events(&mut self) -> Vec<MediaEvent> {
        self.events.drain(..).map(|(_, e)| e).collect()
    }

    /// Destroy `leg` and return its report.
    fn destroy(&mut self, leg: LegId) -> LegReport {
        self.cmd(MediaCmd::DestroyLeg { leg });
        let events = self.take_events();
        events
            .into_iter()
            .find_map(|e| match e {
                MediaEvent::LegClosed { leg: l, report } if l == leg => Some(report),
                _ => None,
            })
            .expect("LegClosed")
    }
}

/// PCM of `packets` decoded with `codec`.
fn decode(codec: CodecKind, packets: &[Sent]) -> Vec<i16> {
    let mut decoder = codec.decoder();
    let mut pcm = Vec::new();
    for p in packets {
        decoder.decode(&p.payload, &mut pcm).unwrap();
    }
    pcm
}

/// Sequence numbers step by one and timestamps by `duration` (RFC 3550 §5.1), from one SSRC that is
/// not `not_ssrc`.
fn assert_continuous(packets: &[Sent], duration: u32, not_ssrc: u32) {
    assert!(!packets.is_empty());
    for w in packets.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "{:?} -> {:?}", w[0], w[1]);
        assert_eq!(w[1].ts, w[0].ts.wrapping_add(duration), "{:?} -> {:?}", w[0], w[1]);
        assert_eq!(w[1].ssrc, w[0].ssrc);
    }
    assert_ne!(packets[0].ssrc, not_ssrc, "each leg sends with its own SSRC");
}

fn mode_of(events: &[MediaEvent]) -> Option<BridgeMode> {
    events.iter().find_map(|e| match e {
        MediaEvent::Bridged { mode, .. } => Some(*mode),
        _ => None,
    })
}

fn command_error(events: &[MediaEvent]) -> Option<&MediaError> {
    events.iter().find_map(|e| match e {
        MediaEvent::CommandFailed { error, .. } => Some(error),
        _ => None,
    })
}

#[test]
fn relay_pcmu_carries_both_tones_at_once_unchanged_with_each_legs_own_numbering() {
    let mut w = World::bridged(pcmu(4000), pcmu(5000));
    assert_eq!(mode_of(&w.take_events()), Some(BridgeMode::Relay));
    assert_eq!(w.c.bridged_to(A), Some((B, BridgeMode::Relay)));
    let (mut pa, mut pb) =
        (Peer::new(CodecKind::Pcmu, 0, 0xa1a1, 440.0), Peer::new(CodecKind::Pcmu, 0, 0xb2b2, 1000.0));
    w.talk(400, Some(&mut pa), Some(&mut pb));

    for (to, from, freq, dest) in [(B, &pa, 440.0, addr(5000)), (A, &pb, 1000.0, addr(4000))] {
        let out = w.to(to);
        // 200 packets sent; the first waits for the second (RFC 3550 A.1 probation), then each leaves
        // in the tick it arrived in: relaying adds no delay.
        assert_eq!(out.len(), 200, "to {to:?}");
        assert!(out.iter().enumerate().skip(1).all(|(k, s)| s.tick == 2 * k as u64), "to {to:?}");
        assert_continuous(&out, 160, from.ssrc);
        assert!(out[0].marker && out[1..].iter().all(|s| !s.marker));
        assert!(out.iter().all(|s| s.pt == 0 && s.dest == dest));
        let pcm = decode(CodecKind::Pcmu, &out);
        assert!(goertzel_ratio(&pcm, 8000, freq) > 0.9, "to {to:?}");
        let (c, _) = best_correlation(&pcm, &from.pcm[..pcm.len()], 0);
        assert!(c >= 0.98, "to {to:?}: correlation {c}");
    }
    // Nothing decoded or buffered on the way: the payloads are the peer's bytes.
    let report = w.destroy(A);
    assert_eq!(report.sent.relayed, 200);
    assert!(!report.usage.rows.iter().any(|r| (r.name == "decoder" || r.name == "encoder") && r.stats.count > 0));
}

#[test]
fn relay_numbering_survives_update_leg_and_a_sender_ssrc_change_and_loss_stays_a_gap() {
    let mut w = World::bridged(pcmu(4000), pcmu(5000));
    w.take_events();
    let mut pa = Peer::new(CodecKind::Pcmu, 0, 0xa1a1, 440.0);
    w.talk(40, Some(&mut pa), None);
    // Re-INVITE: B moved (same codec and ptime: still a relay, no new Bridged event).
    w.cmd(MediaCmd::UpdateLeg { leg: B, media: pcmu(5002) });
    w.talk(40, Some(&mut pa), None);
    // A's far end switches source (new SSRC, sequence and timestamps), without a pause.
    let mut pa2 = Peer::new(CodecKind::Pcmu, 0, 0xc3c3, 440.0);
    pa2.pos = pa.pos;
    w.talk(40, Some(&mut pa2), None);
    // One packet lost.
    pa2.lose();
    w.talk(2, None, None);
    w.talk(20, Some(&mut pa2), None);
    assert_eq!(mode_of(&w.take_events()), None);

    let out = w.to(B);
    assert_eq!(out.len(), 20 + 20 + 20 + 10);
    assert!(out[..20].iter().all(|s| s.dest == addr(5000)) && out[20..].iter().all(|s| s.dest == addr(5002)));
    let lost = 60;
    assert_continuous(&out[..lost], 160, pa.ssrc);
    assert_continuous(&out[lost..], 160, pa2.ssrc);
    // The loss shows to B's far end as a gap of one packet in sequence and time.
    assert_eq!(out[lost].seq, out[lost - 1].seq.wrapping_add(2));
    assert_eq!(out[lost].ts, out[lost - 1].ts.wrapping_add(320));
    // Marked: the start, and the new source (a discontinuity for B's jitter buffer), nothing else.
    let marked: Vec<usize> = out.iter().enumerate().filter(|(_, s)| s.marker).map(|(k, _)| k).collect();
    assert_eq!(marked, vec![0, 40]);
    let pcm = decode(CodecKind::Pcmu, &out[..lost]);
    let (c, _) = best_correlation(&pcm, &pa.pcm[..pcm.len()], 0);
    assert!(c >= 0.98, "{c}");
}

#[test]
fn transcode_pcmu_pcma_keeps_both_tones_with_the_same_delay_each_way() {
    let mut w = World::bridged(pcmu(4000), leg(5000, CodecKind::Pcma, 8, 20, None));
    assert_eq!(mode_of(&w.take_events()), Some(BridgeMode::Transcode));
    let mut pa = Peer::new(CodecKind::Pcmu, 0, 0xa1a1, 440.0);
    let mut pb = Peer::new(CodecKind::Pcma, 8, 0xb2b2, 1000.0);
    w.talk(400, Some(&mut pa), Some(&mut pb));

    let (to_b, to_a) = (w.to(B), w.to(A));
    for (out, codec, pt, from, freq) in
        [(&to_b, CodecKind::Pcma, 8, &pa, 440.0), (&to_a, CodecKind::Pcmu, 0, &pb, 1000.0)]
    {
        assert!(out.len() >= 195, "{}", out.len());
        assert_continuous(out, 160, from.ssrc);
        assert!(out.iter().all(|s| s.pt == pt && s.payload.len() == 160));
        let pcm = decode(codec, out);
        assert!(goertzel_ratio(&pcm, 8000, freq) > 0.9);
        let (c, _) = best_correlation(&pcm, &from.pcm[..pcm.len()], 400);
        assert!(c >= 0.98, "{freq} Hz: correlation {c}");
    }
    // Through each receiving leg's jitter buffer, the same delay both ways.
    assert_eq!(to_b[0].tick, to_a[0].tick);
    assert_eq!(to_b.last().map(|s| s.tick), to_a.last().map(|s| s.tick));
    let report = w.destroy(A);
    let ran = |name: &str| report.usage.rows.iter().any(|r| r.name == name && r.stats.count > 0);
    assert!(ran("decoder") && ran("bridge_out") && ran("bridge_in") && ran("encoder"), "{}", report.usage);
    // RFC 3611 §4.7.4 from the decoded tone: peak 8000 is 20·log10(8000 / 32767) + 3.17 = −9.1 dBm0; no
    // silence was heard (noise unavailable, 127).
    let m = report.rtcp.local_metrics.expect("the closing report measured the stream");
    assert_eq!((m.signal_level, m.noise_level), (-9, 127));
}

#[test]
fn a_ptime_change_turns_a_transcode_into_a_relay_and_numbering_continues() {
    let mut w = World::bridged(pcmu(4000), leg(5000, CodecKind::Pcmu, 0, 30, None));
    assert_eq!(mode_of(&w.take_events()), Some(BridgeMode::Transcode));
    let mut pa = Peer::new(CodecKind::Pcmu, 0, 0xa1a1, 440.0);
    w.talk(60, Some(&mut pa), None);
    let before = w.to(B);
    assert!(before.len() >= 15 && before.iter().all(|s| s.payload.len() == 240));
    assert_continuous(&before, 240, pa.ssrc);
    let pcm = decode(CodecKind::Pcmu, &before);
    assert!(goertzel_ratio(&pcm, 8000, 440.0) > 0.9);

    w.cmd(MediaCmd::UpdateLeg { leg: B, media: pcmu(5000) });
    let events = w.take_events();
    assert!(matches!(events[..], [MediaEvent::Bridged { a: A, b: B, mode: BridgeMode::Relay }]), "{events:?}");
    w.talk(40, Some(&mut pa), None);
    let out = w.to(B);
    let after = &out[before.len()..];
    // The packet A's jitter buffer held goes out with the first relayed ones.
    assert_eq!(after.len(), 21);
    assert_eq!(after[0].seq, before[before.len() - 1].seq.wrapping_add(1));
    assert!(after[0].ts.wrapping_sub(before[before.len() - 1].ts) >= 240);
    assert_continuous(after, 160, pa.ssrc);
    assert!(after.iter().all(|s| s.payload.len() == 160));
}

#[test]
fn on_hold_nothing_is_sent_and_sending_resumes_marked_on_a_continuous_timeline() {
    let mut w = World::bridged(pcmu(4000), pcmu(5000));
    let (mut pa, mut pb) =
        (Peer::new(CodecKind::Pcmu, 0, 0xa1a1, 440.0), Peer::new(CodecKind::Pcmu, 0, 0xb2b2, 1000.0));
    w.talk(40, Some(&mut pa), Some(&mut pb));
    w.cmd(MediaCmd::UpdateLeg { leg: B, media: LegMedia { send: false, ..pcmu(5000) } });
    let held_from = w.tick;
    w.talk(60, Some(&mut pa), Some(&mut pb));
    w.cmd(MediaCmd::UpdateLeg { leg: B, media: pcmu(5000) });
    w.talk(20, Some(&mut pa), Some(&mut pb));

    let out = w.to(B);
    assert!(out.iter().all(|s| s.tick < held_from || s.tick >= held_from + 60), "nothing sent on hold");
    let k = out.iter().position(|s| s.tick >= held_from).expect("sending resumed");
    let (last, first) = (&out[k - 1], &out[k]);
    assert!(first.marker && !out[k + 1..].iter().any(|s| s.marker));
    assert_eq!(first.seq, last.seq.wrapping_add(1));
    // Time kept running: 8 timestamp units per ms between the two sending ticks.
    assert_eq!(first.ts.wrapping_sub(last.ts), 80 * (first.tick - last.tick) as u32);
    assert_continuous(&out[k..], 160, pa.ssrc);
    // B's far end kept being heard by A all along.
    assert_eq!(w.to(A).len(), 60);
    assert_eq!(w.destroy(B).sent.held, 30);
}

/// Audio, then one event of three packets and two retransmissions of its end from A, then audio.
/// Returns A's timestamps of its first packet and of the event.
fn talk_with_dtmf(w: &mut World, pa: &mut Peer, te: u8) -> (u32, u32) {
    let first = pa.ts;
    w.talk(20, Some(&mut *pa), None);
    let start = pa.ts;
    let packets = [(true, false, 160), (false, false, 320), (false, true, 480), (false, true, 480), (false, true, 480)];
    for (first, end, duration) in packets {
        let d = pa.event(te, start, first, end, duration);
        w.rtp(A, &d);
        pa.silence();
        w.step();
        w.step();
    }
    w.talk(20, Some(&mut *pa), None);
    (first, start)
}

#[test]
fn dtmf_is_relayed_with_the_other_legs_payload_type_on_its_timeline() {
    let mut w =
        World::bridged(leg(4000, CodecKind::Pcmu, 0, 20, Some(101)), leg(5000, CodecKind::Pcmu, 0, 20, Some(100)));
    let mut pa = Peer::new(CodecKind::Pcmu, 0, 0xa1a1, 440.0);
    let (first, start) = talk_with_dtmf(&mut w, &mut pa, 101);
    let out = w.to(B);
    let events: Vec<&Sent> = out.iter().filter(|s| s.pt == 100).collect();
    assert_eq!(events.len(), 5);
    assert!(!out.iter().any(|s| s.pt == 101));
    // One sequence space with the audio, B's timestamp base: A's event start moved by the relay offset.
    let offset = out[0].ts.wrapping_sub(first);
    assert_eq!(out[0].seq.wrapping_add(out.len() as u16 - 1), out[out.len() - 1].seq);
    assert!(events.iter().all(|e| e.ts == start.wrapping_add(offset)));
    assert!(events[0].marker && events[1..].iter().all(|e| !e.marker));
    let durations: Vec<(bool, u16)> = events
        .iter()
        .map(|e| TelephoneEvent::parse(&e.payload).map(|t| (t.end, t.duration)).expect("valid event"))
        .collect();
    assert_eq!(durations, vec![(false, 160), (false, 320), (true, 480), (true, 480), (true, 480)]);
}

#[test]
fn dtmf_into_a_transcoded_leg_starts_at_its_current_timestamp_and_mutes_its_audio() {
    let mut w =
        World::bridged(leg(4000, CodecKind::Pcmu, 0, 20, Some(101)), leg(5000, CodecKind::Pcma, 8, 20, Some(96)));
    let mut pa = Peer::new(CodecKind::Pcmu, 0, 0xa1a1, 440.0);
    talk_with_dtmf(&mut w, &mut pa, 101);
    let out = w.to(B);
    let first = out.iter().position(|s| s.pt == 96).expect("events relayed");
    let events = &out[first..first + 5];
    assert!(events.iter().all(|e| e.pt == 96 && e.ts == events[0].ts));
    assert!(events[0].marker && events[1..].iter().all(|e| !e.marker));
    // B's timeline: after its last audio packet, within a packet time or two.
    let before = &out[first - 1];
    assert_eq!(before.pt, 8);
    let lead = events[0].ts.wrapping_sub(before.ts);
    assert!((160..=480).contains(&lead), "{lead}");
    // One sequence space, and no audio in between the event's packets.
    assert_continuous_seq(&out);
    let durations: Vec<u16> =
        events.iter().map(|e| TelephoneEvent::parse(&e.payload).map(|t| t.duration).expect("valid")).collect();
    assert_eq!(durations, vec![160, 320, 480, 480, 480], "same clock rate: durations unchanged");
    // Audio resumes after the event on B's timeline, marked.
    let after = &out[first + 5];
    assert_eq!(after.pt, 8);
    assert!(after.marker && after.ts.wrapping_sub(events[0].ts) >= 480);
}

fn assert_continuous_seq(packets: &[Sent]) {
    for w in packets.windows(2) {
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "{:?} -> {:?}", w[0], w[1]);
    }
}

#[test]
fn dtmf_toward_a_leg_without_telephone_event_is_played_in_band() {
    // Same codec both sides, but only A negotiated telephone-event: the bridge transcodes, so that B
    // hears A's digit as Q.23 tones in its audio.
    let mut w = World::bridged(leg(4000, CodecKind::Pcmu, 0, 20, Some(101)), pcmu(5000));
    assert_eq!(w.c.bridged_to(A), Some((B, BridgeMode::Transcode)));
    let mut pa = Peer::new(CodecKind::Pcmu, 0, 0xa1a1, 440.0);
    talk_with_dtmf(&mut w, &mut pa, 101);
    let out = w.to(B);
    assert!(out.iter().all(|s| s.pt == 0), "no events on a leg that did not negotiate them");
    assert_continuous_seq(&out);
    let pcm = decode(CodecKind::Pcmu, &out);
    // 10 ms blocks: voice (440 Hz), then digit 5 (770 + 1336 Hz), then voice again.
    let kinds: Vec<char> = pcm
        .chunks_exact(80)
        .map(|b| {
            if goertzel_ratio(b, 8000, 770.0) + goertzel_ratio(b, 8000, 1336.0) > 0.9 {
                'D'
            } else if goertzel_ratio(b, 8000, 440.0) > 0.9 {
                'v'
            } else {
                '?'
            }
        })
        .collect();
    let kinds: String = kinds.into_iter().collect();
    let digit = kinds.find('D').expect("the digit is heard");
    let tone_blocks = kinds[digit..].find(|c| c != 'D').unwrap_or(kinds.len() - digit);
    // The end packets say 480 units: 60 ms, six blocks (five whole ones if it starts mid-block).
    assert!((5..=6).contains(&tone_blocks), "{kinds}");
    assert!(kinds[..digit].trim_start_matches('?').trim_end_matches('?').chars().all(|c| c == 'v'), "{kinds}");
    let after = &kinds[digit + tone_blocks..];
    assert!(
        after.trim_start_matches('?').trim_end_matches('?').chars().all(|c| c == 'v') && after.contains('v'),
        "{kinds}"
    );
    // Volume 10: −10 dBm0, RMS about 5090 (G.711 adds its quantisation noise).
    let level = rms_level(&pcm[(digit + 1) * 80..(digit + tone_blocks - 1) * 80]);
    assert!((level - 5090.0).abs() < 150.0, "RMS {level:.0}");
    let report = w.destroy(A);
    assert_eq!(report.received.events_dropped, 0);
    // B's report counts the digit, though A's end already took B's dtmf_gen away.
    let report = w.destroy(B);
    assert_eq!((report.dtmf_in_band.played, report.dtmf_in_band.timed_out), (1, 0));
    let text = report.to_string();
    assert!(text.lines().any(|l| l.starts_with("outgoing DTMF played in-band") && l.contains(" 1 digits")), "{text}");
}

#[test]
fn legs_that_agree_on_telephone_event_still_relay() {
    for (a, b) in [(Some(101), Some(100)), (None, None)] {
        let w = World::bridged(leg(4000, CodecKind::Pcmu, 0, 20, a), leg(5000, CodecKind::Pcmu, 0, 20, b));
        assert_eq!(w.c.bridged_to(A), Some((B, BridgeMode::Relay)), "{a:?} / {b:?}");
    }
}

#[test]
fn unbridge_and_destroy_leave_the_other_leg_alive_and_silent() {
    let mut w = World::bridged(pcmu(4000), pcmu(5000));
    let (mut pa, mut pb) =
        (Peer::new(CodecKind::Pcmu, 0, 0xa1a1, 440.0), Peer::new(CodecKind::Pcmu, 0, 0xb2b2, 1000.0));
    w.talk(20, Some(&mut pa), Some(&mut pb));
    w.cmd(MediaCmd::Unbridge { leg: B });
    assert_eq!((w.c.bridged_to(A), w.c.bridged_to(B)), (None, None));
    let sent = w.sent.len();
    w.talk(20, Some(&mut pa), Some(&mut pb));
    assert_eq!(w.sent.len(), sent, "both back to their own recipe: silent");
    w.cmd(MediaCmd::Unbridge { leg: B });
    assert!(matches!(command_error(&w.take_events()), Some(MediaError::NotBridged(B))));

    // Bridged again: B's numbering continues.
    let before = w.to(B);
    w.cmd(MediaCmd::Bridge { a: B, b: A });
    w.talk(20, Some(&mut pa), Some(&mut pb));
    let out = w.to(B);
    assert_eq!(out[before.len()].seq, before[before.len() - 1].seq.wrapping_add(1));

    // Destroying one end unbridges the other, which stays and can play.
    let report = w.destroy(A);
    assert!(report.received.packets > 0);
    assert!(w.c.has_leg(B) && w.c.bridged_to(B).is_none());
    let sent = w.sent.len();
    w.talk(20, None, Some(&mut pb));
    assert_eq!(w.sent.len(), sent);
    let file = temp_path("beep-200ms.wav");
    write_wav(&file, 8000, &sine(8000, 1000.0, 8000.0, 1600)).expect("wav");
    w.cmd(MediaCmd::Play { leg: B, file, loops: 1, token: 3 });
    w.talk(30, None, None);
    assert_eq!(w.sent.len(), sent + 10);
    assert!(w.take_events().iter().any(|e| matches!(e, MediaEvent::PlayDone { leg: B, token: 3, completed: true })));
}

#[test]
fn bad_bridge_commands_fail_and_change_nothing() {
    let mut w = World::new(pcmu(4000), pcmu(5000));
    let c = LegId(3);
    w.cmd(MediaCmd::Bridge { a: A, b: A });
    assert!(matches!(command_error(&w.take_events()), Some(MediaError::BridgeToSelf(A))));
    w.cmd(MediaCmd::Bridge { a: A, b: LegId(9) });
    assert!(matches!(command_error(&w.take_events()), Some(MediaError::NoSuchLeg(LegId(9)))));
    w.cmd(MediaCmd::CreateLeg { leg: c, media: pcmu(6000) });
    w.cmd(MediaCmd::Bridge { a: A, b: B });
    w.take_events();
    w.cmd(MediaCmd::Bridge { a: c, b: B });
    assert!(matches!(command_error(&w.take_events()), Some(MediaError::AlreadyBridged { leg: B, peer: A })));
    assert_eq!(w.c.bridged_to(c), None);
    assert_eq!(w.c.bridged_to(A), Some((B, BridgeMode::Relay)));
}

#[test]
fn a_play_on_a_bridged_leg_replaces_the_bridged_audio_until_it_ends() {
    for b_media in [pcmu(5000), leg(5000, CodecKind::Pcma, 8, 20, None)] {
        let codec = b_media.codec;
        let file = temp_path("prompt-1000hz-300ms.wav");
        write_wav(&file, 8000, &sine(8000, 1000.0, 8000.0, 2400)).expect("wav");
        let mut w = World::new(pcmu(4000), b_media);
        // Bridging stops a play already running.
        w.cmd(MediaCmd::Play { leg: A, file: file.clone(), loops: 0, token: 1 });
        w.talk(4, None, None);
        w.cmd(MediaCmd::Bridge { a: A, b: B });
        let events = w.take_events();
        assert!(matches!(events[0], MediaEvent::PlayDone { leg: A, token: 1, completed: false }), "{events:?}");

        let mut pa = Peer::new(CodecKind::Pcmu, 0, 0xa1a1, 440.0);
        w.talk(40, Some(&mut pa), None);
        let played_from = w.tick;
        w.cmd(MediaCmd::Play { leg: B, file: file.clone(), loops: 1, token: 2 });
        w.talk(60, Some(&mut pa), None);
        let done = w.events.iter().find(|(_, e)| matches!(e, MediaEvent::PlayDone { token: 2, completed: true, .. }));
        let done_at = done.map(|(t, _)| *t).expect("the prompt ended");
        assert_eq!(done_at, played_from + 29, "{codec:?}");
        w.talk(40, Some(&mut pa), None);

        let out = w.to(B);
        let during: Vec<Sent> = out.iter().filter(|s| s.tick >= played_from && s.tick <= done_at).cloned().collect();
        let after: Vec<Sent> = out.iter().filter(|s| s.tick > done_at + 4).cloned().collect();
        assert_eq!(during.len(), 15, "{codec:?}");
        assert!(goertzel_ratio(&decode(codec, &during), 8000, 1000.0) > 0.9, "{codec:?}: the prompt");
        assert!(goertzel_ratio(&decode(codec, &after), 8000, 440.0) > 0.9, "{codec:?}: A again");
        assert_continuous_seq(&out);
        assert!(out.windows(2).all(|w| w[1].ts.wrapping_sub(w[0].ts) as i32 >= 160), "{codec:?}");
    }
}

#[test]
fn unnegotiated_payload_types_are_counted_and_dropped_and_the_call_goes_on() {
    let mut w =
        World::bridged(leg(4000, CodecKind::Pcmu, 0, 20, Some(101)), leg(5000, CodecKind::Pcmu, 0, 20, Some(101)));
    let mut pa = Peer::new(CodecKind::Pcmu, 0, 0xa1a1, 440.0);
    for k in 0..100 {
        if k % 10 == 5 {
            // Comfort noise and an unknown dynamic type, never negotiated.
            let cn = pa.datagram(13, pa.ts, false, &[40]);
            let dynamic = pa.datagram(99, pa.ts, false, &[1, 2, 3]);
            w.rtp(A, &cn);
            w.rtp(A, &dynamic);
        }
        w.talk(1, Some(&mut pa), None);
    }
    let out = w.to(B);
    assert_eq!(out.len(), 50);
    assert!(out.iter().all(|s| s.pt == 0));
    assert!(goertzel_ratio(&decode(CodecKind::Pcmu, &out), 8000, 440.0) > 0.9);
    let report = w.destroy(A);
    assert_eq!(report.received.unknown_payload_type, 20);
    let text = report.to_string();
    assert!(
        text.lines().any(|l| l.starts_with("incoming unknown payload type") && l.contains(" 20 packets")),
        "{text}"
    );
}

#[test]
fn a_bridged_leg_records_what_it_receives_in_either_mode() {
    for b_media in [pcmu(5000), leg(5000, CodecKind::Pcma, 8, 20, None)] {
        let file = temp_path(&format!("bridged-{:?}.wav", b_media.codec));
        let mut w = World::bridged(pcmu(4000), b_media);
        w.cmd(MediaCmd::Record { leg: A, file: file.clone() });
        let mut pa = Peer::new(CodecKind::Pcmu, 0, 0xa1a1, 440.0);
        w.talk(100, Some(&mut pa), None);
        assert!(w.to(B).len() >= 49, "{:?}: still bridged", b_media.codec);
        w.destroy(A);
        let (rate, pcm) = read_wav(&file).expect("recording");
        assert_eq!(rate, 8000);
        assert!(pcm.len() >= 48 * 160, "{}", pcm.len());
        let (c, _) = best_correlation(&pcm, &pa.pcm[..pcm.len()], 0);
        assert!(c >= 0.98, "{:?}: {c}", b_media.codec);
    }
}

/// Fails on a chosen tick.
struct Faulty {
    at: u64,
}

impl Filter for Faulty {
    fn desc(&self) -> FilterDesc {
        FilterDesc { name: "faulty", inputs: 0, outputs: 0, pump: false }
    }
    fn process(&mut self, cx: &mut ProcessCx<'_>) -> Result<(), FilterError> {
        if cx.tick == self.at {
            return Err(FilterError::Injected { filter: "faulty" });
        }
        Ok(())
    }
}

#[test]
fn a_failing_bridged_leg_ends_alone_and_its_peer_stays_unbridged() {
    let mut w = World::bridged(pcmu(4000), pcmu(5000));
    w.c.rx_graph_mut(A).expect("leg").add(Faulty { at: 30 });
    let (mut pa, mut pb) =
        (Peer::new(CodecKind::Pcmu, 0, 0xa1a1, 440.0), Peer::new(CodecKind::Pcmu, 0, 0xb2b2, 1000.0));
    w.talk(60, Some(&mut pa), Some(&mut pb));
    assert!(w.events.iter().any(|(t, e)| *t == 30 && matches!(e, MediaEvent::LegFailed { leg: A, .. })));
    assert!(!w.c.has_leg(A) && w.c.has_leg(B) && w.c.bridged_to(B).is_none());
    assert!(w.to(B).iter().all(|s| s.tick < 30));
}

#[test]
fn a_packet_lost_before_a_transcoding_bridge_is_concealed_not_a_gap() {
    let mut w = World::bridged(pcmu(4000), leg(5000, CodecKind::Pcma, 8, 20, None));
    let mut pa = Peer::new(CodecKind::Pcmu, 0, 0xa1a1, 440.0);
    w.talk(100, Some(&mut pa), None);
    // One packet of A's tone never arrives; the next ones do.
    pa.lose();
    w.step();
    w.step();
    w.talk(100, Some(&mut pa), None);
    let to_b = w.to(B);
    // B's stream has no hole: the decoder concealed the lost 20 ms (G.711 Appendix I style), so
    // numbering, timing and the tone go on.
    assert_continuous(&to_b, 160, pa.ssrc);
    assert!(to_b.iter().skip(1).all(|s| !s.marker), "no new talkspurt");
    let pcm = decode(CodecKind::Pcma, &to_b);
    assert!(goertzel_ratio(&pcm, 8000, 440.0) > 0.9, "the tone goes on through the loss");
    let report = w.destroy(A);
    assert!(report.usage.rows.iter().any(|r| r.name == "decoder"), "{}", report.usage);
}

impl World {
    /// One PCMU leg A reporting XR, whose first periodic report comes after at least 10 s / 2 /
    /// (e − 3/2) = 4.1 s: a stream shorter than that is all in its closing report.
    fn reporting_once() -> Self {
        let mut c = MediaCoordinator::new(7, Box::new(NoClock));
        c.set_rtcp(crate::config::RtcpSettings {
            min_interval: Duration::from_secs(10),
            xr: crate::config::XrPolicy::Always,
        });
        let mut w = World { c, tick: 0, sent: Vec::new(), rtcp: Vec::new(), events: Vec::new() };
        w.cmd(MediaCmd::CreateLeg { leg: A, media: pcmu(4000) });
        w
    }

    /// Destroy A and read its closing compound: the report, its report blocks and XR blocks (checking
    /// it ends with BYE for A's SSRC).
    fn closing_report(&mut self) -> (LegReport, Vec<ReportBlock>, Vec<XrBlock>) {
        assert!(self.rtcp.is_empty(), "no periodic report before 4.1 s");
        let report = self.destroy(A);
        let (_, bye) = self.rtcp.last().expect("the closing compound").clone();
        let compound = RtcpCompound::parse(&bye).expect("rms's RTCP parses");
        let (mut blocks, mut xr_blocks, mut bye_seen) = (Vec::new(), Vec::new(), false);
        for p in &compound.packets {
            match p {
                RtcpPacket::ReceiverReport { reports, .. } => blocks.extend(reports.iter().copied()),
                RtcpPacket::Xr { blocks, .. } => xr_blocks.extend(blocks.iter().cloned()),
                RtcpPacket::Bye { ssrcs, .. } => bye_seen = ssrcs == &vec![report.local_ssrc],
                _ => {}
            }
        }
        assert!(bye_seen, "{compound:?}");
        (report, blocks, xr_blocks)
    }
}

/// The VoIP metrics and statistics summary blocks of an XR packet.
fn voip_and_summary(blocks: &[XrBlock]) -> (VoipMetrics, StatisticsSummary) {
    let m = blocks.iter().find_map(|b| match b {
        XrBlock::VoipMetrics(m) => Some(*m),
        _ => None,
    });
    let s = blocks.iter().find_map(|b| match b {
        XrBlock::StatisticsSummary(s) => Some(*s),
        _ => None,
    });
    (m.expect("VoIP metrics"), s.expect("statistics summary"))
}

/// RFC 3550 §6.4.1 and RFC 3611 §4.6/§4.7 figures of the report a leg sends, for a seeded loss and
/// jitter pattern, against values worked out by hand. The far end sends 100 PCMU packets, one per
/// 20 ms; 40, 41, 42 (a burst) and 80 (alone) are lost; every odd packet arrives 10 ms late. The leg is
/// destroyed 2.1 s in, before its first periodic report (Tmin 10 s: the first comes after at least
/// 5 s / (e − 3/2) = 4.1 s), so its closing compound covers the whole stream.
#[test]
fn the_closing_report_carries_exact_loss_jitter_and_burst_gap_figures() {
    let mut w = World::reporting_once();
    let mut peer = Peer::new(CodecKind::Pcmu, 0, 0xfeed, 440.0);
    let (base_seq, ssrc) = (peer.seq, peer.ssrc);
    let mut late: Option<Vec<u8>> = None;
    for i in 0..100u32 {
        // Tick 2i: packet i on time (even) or held back one tick (odd).
        let d = if [40, 41, 42, 80].contains(&i) {
            peer.lose();
            None
        } else {
            Some(peer.audio())
        };
        match (i % 2, d) {
            (0, Some(d)) => w.rtp(A, &d),
            (_, d) => late = d,
        }
        w.step();
        if let Some(d) = late.take() {
            w.rtp(A, &d);
        }
        w.step();
    }
    for _ in 0..10 {
        w.step();
    }
    let (report, blocks, xr_blocks) = w.closing_report();
    // RR: one block about the far end. RFC 3550 A.1 counts from the packet that ends probation (base + 1):
    // expected 99, received 95, 4 lost; the fraction over the one interval is 4 × 256 / 99 = 10.3 → 10.
    // Jitter by A.8's integer code: |D| is 80 units (10 ms at 8 kHz) between neighbours of different
    // parity and 0 across the two gaps that join odd to odd (39→43, 79→81); J16 += |D| − ((J16 + 8) >> 4)
    // over the pairs ends at 1248, reported as 1248 >> 4 = 78.
    assert_eq!(blocks.len(), 1);
    let b = blocks[0];
    assert_eq!(b.reception.ssrc, ssrc);
    assert_eq!(b.reception.cumulative_lost, 4);
    assert_eq!(b.reception.fraction_lost, 10);
    assert_eq!(b.reception.extended_highest_seq & 0xffff, u32::from(base_seq.wrapping_add(99)));
    assert_eq!(b.reception.jitter, 78);
    assert_eq!((b.last_sr, b.delay_since_last_sr), (0, 0), "no SR from the far end yet");
    // XR BT 7 (RFC 3611 §4.7): loss rate 4/99 × 256 = 10.3 → 10; no discards. Appendix A with Gmin 16: 40–42
    // are one burst of 3 packets, all lost (density 3/3 = 1 → 255, duration 3 × 20 = 60 ms); 80 has 37
    // received before it, so it is a gap loss: the gaps hold 96 received + 1 lost = 97 packets, density
    // 1/97 × 256 = 2.6 → 2, mean duration 97 × 20 ms / 2 gaps = 970 ms.
    let (m, s) = voip_and_summary(&xr_blocks);
    assert_eq!((m.ssrc, m.loss_rate, m.discard_rate), (ssrc, 10, 0));
    assert_eq!((m.burst_density, m.burst_duration, m.gap_density, m.gap_duration, m.gmin), (255, 60, 2, 970, 16));
    // G.711 with PLC at 4.04 % loss: Ie,eff = 95 × 4.04 / (4.04 + 25.1) = 13.17, R-LQ = 93.2 − 13.17 =
    // 80.03 → MOS 4.02 (Annex B), ×10 = 40.
    assert_eq!((m.r_factor <= 80, m.mos_lq), (true, 40));
    // BT 6 (RFC 3611 §4.6) over the same packets: [base + 1, base + 100), 4 lost, no duplicates, |D| from
    // 0 to 80 over 94 pairs, 92 of them 80: mean 92 × 80 / 94 = 78.3.
    assert_eq!((s.begin_seq, s.end_seq), (base_seq.wrapping_add(1), base_seq.wrapping_add(100)));
    assert_eq!((s.lost_packets, s.dup_packets), (Some(4), Some(0)));
    let j = s.jitter.expect("jitter flagged");
    assert_eq!((j.min, j.max, j.mean), (0, 80, 78));
    // The leg's quality: one interval measured, at 4 of 99 lost.
    let q = &report.rtcp.quality;
    assert_eq!(q.count(), 1);
    assert!((q.loss_pct_avg().unwrap() - 400.0 / 99.0).abs() < 1e-9);
    assert_eq!(report.rtcp.counters.sent_packets, 1);
}

/// A packet that arrives after its playout slot is a discard (RFC 3611 §4.7.1), not a loss: RFC 3550
/// counts it received, the jitter buffer drops it as late, and its slot is a gap in what was played.
/// 50 packets every 20 ms, on time but for packet 20, 310 ms late (between 35 and 36).
#[test]
fn a_packet_too_late_to_play_is_a_discard_with_exact_figures() {
    let mut w = World::reporting_once();
    let mut peer = Peer::new(CodecKind::Pcmu, 0, 0xbeef, 440.0);
    let mut held = None;
    for i in 0..50u32 {
        let d = peer.audio();
        if i == 20 {
            held = Some(d);
        } else {
            w.rtp(A, &d);
        }
        w.step();
        if i == 35 {
            w.rtp(A, held.as_ref().expect("packet 20"));
        }
        w.step();
    }
    for _ in 0..10 {
        w.step();
    }
    let (report, blocks, xr_blocks) = w.closing_report();
    // Counting from the packet that ended probation: 49 expected, 49 received, none lost. Jitter (A.8
    // integer code, arrival order): packet 20's transit is 31 ticks × 80 − 20 × 160 = 2480 units above
    // the others', so |D| = 2480 into it and out of it, 0 elsewhere; J16 ends at 2076, reported 129.
    let b = blocks[0].reception;
    assert_eq!((b.cumulative_lost, b.fraction_lost, b.jitter), (0, 0, 129));
    assert_eq!(report.received.late, 1);
    // XR: loss rate 0; discard rate 1/49 × 256 = 5.2 → 5. Its slot is a gap loss in the Appendix A
    // pattern (one loss among 50 packets, no burst): gap density 1/50 × 256 = 5.1 → 5, one gap of 50
    // packets = 1000 ms.
    let (m, s) = voip_and_summary(&xr_blocks);
    assert_eq!((m.loss_rate, m.discard_rate), (0, 5));
    assert_eq!((m.burst_density, m.burst_duration, m.gap_density, m.gap_duration), (0, 0, 5, 1000));
    assert_eq!((s.lost_packets, s.dup_packets), (Some(0), Some(0)));
    // The E-model's Ppl counts it: 1 of 49 not heard.
    assert!((report.rtcp.quality.loss_pct_avg().unwrap() - 100.0 / 49.0).abs() < 1e-9);
}

/// RFC 5761: with rtcp-mux, reports leave from the RTP socket to the peer's RTP address, and RTCP
/// arriving on the RTP socket is told from RTP by its packet type (§4) and read as RTCP, not counted as
/// bad RTP.
#[test]
fn muxed_rtcp_shares_the_rtp_socket_both_ways() {
    let mut media = pcmu(4000);
    media.rtcp = LegRtcp { remote: addr(4000), mux: true, xr: false };
    let mut w = World {
        c: MediaCoordinator::new(7, Box::new(NoClock)),
        tick: 0,
        sent: Vec::new(),
        rtcp: Vec::new(),
        events: Vec::new(),
    };
    w.cmd(MediaCmd::CreateLeg { leg: A, media });
    let mut peer = Peer::new(CodecKind::Pcmu, 0, 0xabcd, 440.0);
    w.talk(200, Some(&mut peer), None);
    // The far end's own RR, on the RTP port.
    let mut rr = Vec::new();
    RtcpCompound { packets: vec![RtcpPacket::ReceiverReport { ssrc: 0xabcd, reports: vec![] }] }
        .write(&mut rr)
        .unwrap();
    w.rtp(A, &rr);
    let mut outputs = Vec::new();
    for _ in 0..400 {
        assert_eq!(w.c.tick(w.now()), 1);
        while let Some(out) = w.c.poll_output() {
            outputs.push(out);
        }
        w.tick += 1;
    }
    let reports: Vec<SocketAddr> = outputs
        .iter()
        .filter_map(|o| match o {
            MediaOutput::Transmit { socket: LegSocket::Rtp, dest, payload, .. }
                if RtcpCompound::parse(payload).is_ok() =>
            {
                Some(*dest)
            }
            MediaOutput::Transmit { socket: LegSocket::Rtcp, .. } => panic!("a muxed leg used its RTCP socket"),
            _ => None,
        })
        .collect();
    assert!(!reports.is_empty() && reports.iter().all(|d| *d == addr(4000)), "{reports:?}");
    let report = w.destroy(A);
    assert_eq!((report.rtcp.counters.received_packets, report.rtcp.counters.malformed), (1, 0));
    assert_eq!(report.rtcp.remote_ssrc, Some(0xabcd));
    assert_eq!(report.received.bad_formatted, 0);
}
