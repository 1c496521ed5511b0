//! `rtp_send`: frames in, RTP datagrams out (as [`Transmit`]s for the graph's owner to send).
//!
//! - input 0: [`EncodedFrame`](crate::frame::EncodedFrame)s of our own media (a prompt, transcoded audio);
//! - input 1: [`RtpFrame`]s relayed unchanged from another leg (same codec): sequence numbers and
//!   timestamps are shifted by offsets, so the sender's losses stay visible as gaps and its timing is
//!   kept; the offsets are chosen afresh when the relayed stream starts, changes SSRC or jumps (RFC 3550
//!   §5.1, A.1), or after we sent anything else, so that our own stream stays continuous;
//! - input 2: RFC 4733 telephone-event [`RtpFrame`]s from a transcoded leg: each event starts at our
//!   current timestamp and keeps it in all its packets (§2.5.1.1), the first one marked; our own audio
//!   is held back while events flow and [`EVENT_QUIET`] after the last one.
//!
//! One SSRC for the life of the filter; sequence numbers +1 per packet and timestamps continuous across
//! file switches (RFC 3550 §5.1). It is a pump: it counts media time every tick, so that after a silent
//! gap (nothing to send) the timestamp jumps by the gap's duration and the first packet of the new
//! talkspurt carries the marker bit (RFC 3551 §4.1). While not sending (the peer holds the call,
//! RFC 3264 §8.4) everything is dropped and media time keeps running, so sending resumes with a marker on
//! a continuous timeline.

use std::net::SocketAddr;
use std::time::Duration;

use rtp_types::{RtpPacket, RtpPacketBuilder};

use crate::codec::telephone_event::TelephoneEvent;
use crate::filter::{Filter, FilterDesc, FilterError, ProcessCx, Transmit};
use crate::frame::Frame;
use crate::rtp::stats::{MAX_DROPOUT, MAX_MISORDER};

/// How long our own audio stays held back after the last telephone-event packet (the end packet's
/// retransmissions come within it, RFC 4733 §2.5.1.4).
pub const EVENT_QUIET: Duration = Duration::from_millis(50);

/// Counters for the "sent" half of the RTP statistics block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendStats {
    pub packets: u64,
    /// RTP payload octets (RFC 3550 §6.4.1 sender's octet count).
    pub payload_bytes: u64,
    /// Whole datagram bytes (header included).
    pub bytes: u64,
    pub last_timestamp: u32,
    /// Of `packets`, relayed from another leg (input 1).
    pub relayed: u64,
    /// Of `packets`, telephone-events retimed from another leg (input 2).
    pub events: u64,
    /// Frames dropped while not sending (call on hold).
    pub held: u64,
}

/// Offsets from a relayed stream's numbering to ours.
#[derive(Debug, Clone, Copy)]
struct RelayMap {
    ssrc: u32,
    /// Highest extended sequence number relayed.
    newest: u32,
    seq_offset: u16,
    ts_offset: u32,
}

/// The telephone-event being sent on input 2: its timestamp at the sender and ours.
#[derive(Debug, Clone, Copy)]
struct EventSpan {
    ssrc: u32,
    source_ts: u32,
    ts: u32,
}

pub struct RtpSend {
    /// Tag copied into every [`Transmit`] (the coordinator's leg id).
    source: u32,
    dest: SocketAddr,
    ssrc: u32,
    seq: u16,
    /// Timestamp of the next contiguous packet.
    next_ts: u32,
    clock_rate: u32,
    /// Media time (RTP units since this filter's first tick) up to the end of the current tick.
    media_now: u64,
    /// Media time up to which audio has been sent.
    sent_until: Option<u64>,
    /// Virtual time of the last tick, which `media_now` is the end of.
    last_tick: Option<Duration>,
    /// Duration of one relayed packet (the leg's ptime), in RTP units.
    packet_duration: u32,
    sending: bool,
    relay: Option<RelayMap>,
    event: Option<EventSpan>,
    /// Media time before which our own audio is held back (telephone-events are flowing).
    quiet_until: u64,
    stats: SendStats,
}

impl RtpSend {
    pub const DESC: FilterDesc = FilterDesc { name: "rtp_send", inputs: 3, outputs: 0, pump: true };

    /// `ssrc`, `initial_seq` and `initial_ts` should be random (RFC 3550 §5.1); the caller's seeded RNG
    /// provides them.
    pub fn new(source: u32, dest: SocketAddr, clock_rate: u32, ssrc: u32, initial_seq: u16, initial_ts: u32) -> Self {
        Self {
            source,
            dest,
            ssrc,
            seq: initial_seq,
            next_ts: initial_ts,
            clock_rate,
            media_now: 0,
            sent_until: None,
            last_tick: None,
            packet_duration: clock_rate / 50,
            sending: true,
            relay: None,
            event: None,
            quiet_until: 0,
            stats: SendStats::default(),
        }
    }

    /// New remote address (re-INVITE); SSRC, sequence and timestamps continue.
    pub fn set_dest(&mut self, dest: SocketAddr) {
        self.dest = dest;
    }

    /// Packet duration of relayed packets (the leg's ptime; 20 ms until told).
    pub fn set_packet_time(&mut self, ptime_ms: u32) {
        self.packet_duration = (u64::from(self.clock_rate) * u64::from(ptime_ms) / 1000) as u32;
    }

    /// Send, or drop everything while keeping time (`false`: the peer holds the call).
    pub fn set_sending(&mut self, sending: bool) {
        self.sending = sending;
    }

    /// Choose new relay offsets at the next relayed packet (a new bridge: the stream relayed before is
    /// no reference).
    pub fn reset_relay(&mut self) {
        self.relay = None;
        self.event = None;
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    pub fn stats(&self) -> SendStats {
        self.stats
    }

    /// Where a packet of `d` units whose audio ends now goes: (timestamp, marker, media time sent up to).
    /// Audio ends at `media_now` at the latest. A shortfall of at least one packet (plus `slack`) since
    /// the last one is a silent gap: jump the timestamp over it and mark the new talkspurt. Shorter
    /// shortfalls are scheduling jitter in the chain, not silence.
    fn place(&self, d: u64, slack: u64) -> (u32, bool, u64) {
        match self.sent_until {
            None => (self.next_ts, true, self.media_now),
            Some(until) => {
                let gap = self.media_now.saturating_sub(until + d);
                if gap >= d + slack {
                    (self.next_ts.wrapping_add(gap as u32), true, self.media_now)
                } else {
                    (self.next_ts, false, until + d)
                }
            }
        }
    }

    /// Our timestamp for this tick: the next contiguous one plus the time since audio last ended.
    fn timeline_now(&self) -> u32 {
        let since = self.sent_until.map_or(0, |until| self.media_now.saturating_sub(until));
        self.next_ts.wrapping_add(since as u32)
    }

    /// Our timestamp for virtual time `now`, at or after the last tick: `timeline_now` (which
    /// is the last tick's) plus the time since that tick. An SR sent between ticks (the last report, when
    /// a leg is destroyed) must pair its NTP time with the RTP time of the same instant (§6.4.1), like
    /// the reports sent right after a tick do.
    pub fn timeline_at(&self, now: Duration) -> u32 {
        let since = self.last_tick.map_or(Duration::ZERO, |tick| now.saturating_sub(tick));
        self.timeline_now().wrapping_add(crate::rtp::stats::rtp_units(since, self.clock_rate) as u32)
    }

    fn send(&mut self, cx: &mut ProcessCx<'_>, payload_type: u8, seq: u16, ts: u32, marker: bool, payload: &[u8]) {
        // Sized up front: `write_vec` grows the Vec header first, then payload, and reallocates.
        let mut packet = Vec::with_capacity(RtpPacket::MIN_RTP_PACKET_LEN + payload.len());
        RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(payload_type)
            .sequence_number(seq)
            .timestamp(ts)
            .ssrc(self.ssrc)
            .marker_bit(marker)
            .payload(payload)
            .write_into_vec_unchecked(&mut packet);
        self.stats.packets += 1;
        self.stats.payload_bytes += payload.len() as u64;
        self.stats.bytes += packet.len() as u64;
        self.stats.last_timestamp = ts;
        cx.transmit(Transmit { source: self.source, dest: self.dest, payload: packet });
    }

    fn send_own(&mut self, cx: &mut ProcessCx<'_>, frame: Frame) -> Result<(), FilterError> {
        let Frame::Encoded(enc) = frame else {
            return Err(unexpected(0, "encoded", &frame));
        };
        if self.media_now < self.quiet_until {
            return Ok(());
        }
        // Bridged audio may come a packet time late without any silence before it: the decoder
        // conceals a lost packet only once the next one is released, and both leave in one tick.
        // Only a longer shortfall is a gap.
        let d = u64::from(enc.duration);
        let (ts, marker, until) = self.place(d, d);
        // Audio after a telephone-event starts a new talkspurt (RFC 3551 §4.1).
        let marker = marker || self.event.take().is_some();
        self.send(cx, enc.payload_type, self.seq, ts, marker, &enc.payload);
        self.seq = self.seq.wrapping_add(1);
        self.next_ts = ts.wrapping_add(enc.duration);
        self.sent_until = Some(until);
        self.relay = None;
        Ok(())
    }

    fn send_relayed(&mut self, cx: &mut ProcessCx<'_>, frame: Frame) -> Result<(), FilterError> {
        let Frame::Rtp(rtp) = frame else {
            return Err(unexpected(1, "rtp", &frame));
        };
        let d = self.packet_duration;
        let same_stream = self.relay.filter(|m| {
            let delta = rtp.seq.wrapping_sub(m.newest) as i32;
            m.ssrc == rtp.ssrc && (-i32::from(MAX_MISORDER)..=i32::from(MAX_DROPOUT)).contains(&delta)
        });
        let fresh = same_stream.is_none();
        let mut map = same_stream.unwrap_or_else(|| {
            // Relayed packets leave as they arrive, so one may come a packet time late without any
            // silence before it (network jitter; RFC 3550 A.1 probation holds a new source's first
            // packet until the second): only a longer shortfall is a gap.
            let (ts, _, _) = self.place(u64::from(d), u64::from(d));
            RelayMap {
                ssrc: rtp.ssrc,
                newest: rtp.seq,
                seq_offset: self.seq.wrapping_sub(rtp.seq as u16),
                ts_offset: ts.wrapping_sub(rtp.timestamp),
            }
        });
        let seq = (rtp.seq as u16).wrapping_add(map.seq_offset);
        let ts = rtp.timestamp.wrapping_add(map.ts_offset);
        self.send(cx, rtp.payload_type, seq, ts, rtp.marker || fresh, &rtp.payload);
        self.stats.relayed += 1;
        if fresh || rtp.seq.wrapping_sub(map.newest) as i32 > 0 {
            map.newest = rtp.seq;
            self.seq = seq.wrapping_add(1);
            self.sent_until = Some(self.media_now);
        }
        // Telephone-events keep their start timestamp: the timeline only moves forward.
        let end = ts.wrapping_add(d);
        if end.wrapping_sub(self.next_ts) as i32 > 0 || fresh {
            self.next_ts = end;
        }
        self.relay = Some(map);
        Ok(())
    }

    fn send_event(&mut self, cx: &mut ProcessCx<'_>, frame: Frame) -> Result<(), FilterError> {
        let Frame::Rtp(rtp) = frame else {
            return Err(unexpected(2, "rtp", &frame));
        };
        let current = self.event.filter(|e| e.ssrc == rtp.ssrc && e.source_ts == rtp.timestamp);
        let first = current.is_none();
        let span = current.unwrap_or(EventSpan { ssrc: rtp.ssrc, source_ts: rtp.timestamp, ts: self.timeline_now() });
        self.send(cx, rtp.payload_type, self.seq, span.ts, first, &rtp.payload);
        self.stats.events += 1;
        self.seq = self.seq.wrapping_add(1);
        // The event covers [ts, ts + duration) of our timeline; audio resumes after it.
        let duration = TelephoneEvent::parse(&rtp.payload).map_or(0, |e| u32::from(e.duration));
        let end = span.ts.wrapping_add(duration);
        if end.wrapping_sub(self.next_ts) as i32 > 0 || first {
            self.next_ts = end;
        }
        self.sent_until = Some(self.media_now);
        self.quiet_until = self.media_now + crate::rtp::stats::rtp_units(EVENT_QUIET, self.clock_rate);
        self.event = Some(span);
        self.relay = None;
        Ok(())
    }
}

fn unexpected(pin: usize, expected: &'static str, got: &Frame) -> FilterError {
    FilterError::UnexpectedFrame { filter: "rtp_send", pin, expected, got: got.kind() }
}

impl Filter for RtpSend {
    fn desc(&self) -> FilterDesc {
        Self::DESC
    }

    fn process(&mut self, cx: &mut ProcessCx<'_>) -> Result<(), FilterError> {
        self.media_now += u64::from(self.clock_rate / 100);
        self.last_tick = Some(cx.now);
        if !self.sending {
            for pin in 0..3 {
                while cx.pop(pin).is_some() {
                    self.stats.held += 1;
                }
            }
            self.relay = None;
            self.event = None;
            return Ok(());
        }
        // Events first: they hold back this tick's own audio.
        while let Some(frame) = cx.pop(2) {
            self.send_event(cx, frame)?;
        }
        while let Some(frame) = cx.pop(1) {
            self.send_relayed(cx, frame)?;
        }
        while let Some(frame) = cx.pop(0) {
            self.send_own(cx, frame)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{EncodedFrame, RtpFrame};
    use crate::testing::FilterHarness;
    use rtp_types::RtpPacket;

    fn frame(n: usize) -> EncodedFrame {
        crate::testing::pcmu_packet(n)
    }

    fn dest() -> SocketAddr {
        "127.0.0.1:4000".parse().unwrap()
    }

    /// (seq, ts, marker) of each datagram sent so far.
    fn sent(h: &mut FilterHarness<RtpSend>) -> Vec<(u16, u32, bool)> {
        h.transmits
            .drain(..)
            .map(|t| {
                let p = RtpPacket::parse(&t.payload).unwrap();
                assert_eq!(p.ssrc(), 0x1234_5678);
                (p.sequence_number(), p.timestamp(), p.marker_bit())
            })
            .collect()
    }

    /// Packets every other tick (20 ms ptime), as an encoder fed 10 ms per tick produces them.
    fn run_talkspurt(h: &mut FilterHarness<RtpSend>, packets: usize) {
        for _ in 0..packets {
            h.run().unwrap();
            h.push(0, frame(160));
            h.run().unwrap();
        }
    }

    /// An SR between ticks gets the RTP time of its own instant: timeline_at a time after the last tick
    /// runs on from the tick's timeline_now at the clock rate, and says what the next tick will.
    #[test]
    fn timeline_at_a_time_after_the_last_tick_adds_the_time_since_it() {
        let mut h = FilterHarness::new(RtpSend::new(7, dest(), 8000, 0x1234_5678, 1, 1000));
        // Ticks at 0..=50 ms, three packets of 160 from timestamp 1000: 1000 + 3 × 160 = 1480 at the end
        // of the last tick's media.
        run_talkspurt(&mut h, 3);
        let f = &h.filter;
        assert_eq!(f.timeline_now(), 1480);
        assert_eq!(f.timeline_at(Duration::from_millis(50)), 1480);
        // 7 ms later: + 56.
        assert_eq!(f.timeline_at(Duration::from_millis(57)), 1536);
        assert_eq!(f.timeline_at(Duration::from_millis(60)), 1560);
        // The tick at 60 ms, silent: its own timeline_now agrees.
        h.run().unwrap();
        assert_eq!(h.filter.timeline_now(), 1560);
    }

    #[test]
    fn contiguous_packets_step_seq_by_one_and_ts_by_duration_across_the_wrap() {
        let mut h = FilterHarness::new(RtpSend::new(7, dest(), 8000, 0x1234_5678, 65534, u32::MAX - 200));
        run_talkspurt(&mut h, 4);
        let s = sent(&mut h);
        let ts0 = u32::MAX - 200;
        assert_eq!(
            s,
            vec![
                (65534, ts0, true),
                (65535, ts0.wrapping_add(160), false),
                (0, ts0.wrapping_add(320), false),
                (1, ts0.wrapping_add(480), false)
            ]
        );
        assert_eq!(h.filter.stats().packets, 4);
        assert_eq!(h.filter.stats().payload_bytes, 640);
        assert_eq!(h.filter.stats().bytes, 4 * (12 + 160));
    }

    #[test]
    fn a_file_switch_without_gap_continues_but_silence_jumps_the_timestamp_and_sets_the_marker() {
        let mut h = FilterHarness::new(RtpSend::new(7, dest(), 8000, 0x1234_5678, 100, 1000));
        run_talkspurt(&mut h, 2);
        // Next file starts at once: contiguous, no marker.
        run_talkspurt(&mut h, 1);
        // 50 ms of silence (5 ticks with nothing to send), then a new talkspurt.
        for _ in 0..5 {
            h.run().unwrap();
        }
        run_talkspurt(&mut h, 2);
        let s = sent(&mut h);
        assert_eq!(s[..3], [(100, 1000, true), (101, 1160, false), (102, 1320, false)]);
        // The gap is 5 ticks of 80 samples: the next packet's ts is 1320 + 160 + 400.
        assert_eq!(s[3..], [(103, 1880, true), (104, 2040, false)]);
    }

    #[test]
    fn two_packets_in_one_tick_are_contiguous() {
        let mut h = FilterHarness::new(RtpSend::new(7, dest(), 8000, 0x1234_5678, 0, 0));
        run_talkspurt(&mut h, 1);
        h.run().unwrap();
        h.push(0, frame(160));
        h.push(0, frame(80));
        h.run().unwrap();
        assert_eq!(sent(&mut h), vec![(0, 0, true), (1, 160, false), (2, 320, false)]);
    }

    #[test]
    fn non_encoded_input_is_an_error_naming_the_filter() {
        let mut h = FilterHarness::new(RtpSend::new(7, dest(), 8000, 1, 0, 0));
        h.push(0, crate::frame::AudioFrame::new(vec![0; 80], 8000));
        let e = h.run().unwrap_err();
        assert!(e.to_string().contains("rtp_send"), "{e}");
    }
    fn relayed(ssrc: u32, seq: u32, ts: u32, marker: bool) -> RtpFrame {
        RtpFrame { ssrc, seq, timestamp: ts, payload_type: 0, marker, payload: vec![0xff; 160] }
    }

    #[test]
    fn relayed_packets_keep_the_senders_gaps_and_timing_on_our_numbering() {
        let mut h = FilterHarness::new(RtpSend::new(7, dest(), 8000, 0x1234_5678, 100, 1000));
        run_talkspurt(&mut h, 2); // own: (100, 1000), (101, 1160)
                                  // The relayed sender starts at seq 5000, ts 90000, right after: one packet per 20 ms.
                                  // 5002 is lost and 5004 comes before 5003.
        let order = [(5000, 0), (5001, 1), (5004, 4), (5003, 3), (5005, 5)];
        for &(seq, k) in &order {
            h.run().unwrap();
            h.push(1, relayed(9, seq, 90_000 + 160 * k, false));
            h.run().unwrap();
        }
        let s = sent(&mut h);
        assert_eq!(s[..2], [(100, 1000, true), (101, 1160, false)]);
        // Offsets chosen on the first relayed packet: contiguous with our stream (seq 102, ts 1320),
        // marked as the start of a new stream; then the sender's gaps and order show through.
        assert_eq!(
            s[2..],
            [(102, 1320, true), (103, 1480, false), (106, 1960, false), (105, 1800, false), (107, 2120, false)]
        );
        assert_eq!(h.filter.stats().relayed, 5);
        // Our own audio afterwards continues after the highest relayed packet.
        run_talkspurt(&mut h, 1);
        assert_eq!(sent(&mut h), vec![(108, 2280, false)]);
    }

    #[test]
    fn a_new_relayed_ssrc_continues_our_stream() {
        let mut h = FilterHarness::new(RtpSend::new(7, dest(), 8000, 0x1234_5678, 0, 0));
        for k in 0..3 {
            h.run().unwrap();
            h.push(1, relayed(1, 700 + k, 5000 + 160 * k, k == 0));
            h.run().unwrap();
        }
        // The sender restarts with another SSRC and unrelated numbers, 60 ms after its last packet.
        for _ in 0..4 {
            h.run().unwrap();
        }
        for k in 0..2 {
            h.run().unwrap();
            h.push(1, relayed(2, 40 + k, 777 + 160 * k, false));
            h.run().unwrap();
        }
        let s = sent(&mut h);
        assert_eq!(s[..3], [(0, 0, true), (1, 160, false), (2, 320, false)]);
        // 40 ms of silence beyond the packet time: the timestamp jumps by 320, the marker says so.
        assert_eq!(s[3..], [(3, 480 + 320, true), (4, 960, false)]);
    }

    #[test]
    fn nothing_is_sent_on_hold_and_time_keeps_running() {
        let mut h = FilterHarness::new(RtpSend::new(7, dest(), 8000, 0x1234_5678, 10, 0));
        run_talkspurt(&mut h, 2);
        h.filter.set_sending(false);
        run_talkspurt(&mut h, 5);
        assert_eq!(h.filter.stats().held, 5);
        h.filter.set_sending(true);
        run_talkspurt(&mut h, 2);
        // 100 ms unsent: the next packet is 5 packet times later than contiguous, and marked.
        assert_eq!(sent(&mut h), vec![(10, 0, true), (11, 160, false), (12, 320 + 800, true), (13, 1280, false)]);
    }

    fn event(seq: u32, ts: u32, end: bool, duration: u16) -> RtpFrame {
        let payload = TelephoneEvent { event: 5, end, volume: 10, duration }.to_bytes().to_vec();
        RtpFrame { ssrc: 3, seq, timestamp: ts, payload_type: 101, marker: false, payload }
    }

    #[test]
    fn telephone_events_start_at_our_timestamp_and_hold_our_audio_back() {
        let mut h = FilterHarness::new(RtpSend::new(7, dest(), 8000, 0x1234_5678, 0, 0));
        run_talkspurt(&mut h, 2); // (0, 0), (1, 160): audio sent up to media time 320
                                  // Three event packets and two retransmissions of the end, one per 20 ms, while our own audio
                                  // keeps coming (it is held back).
        let packets = [(0, false, 160), (1, false, 320), (2, true, 480), (3, true, 480), (4, true, 480)];
        for &(k, end, duration) in &packets {
            h.run().unwrap();
            h.push(0, frame(160));
            h.push(2, event(900 + k, 123_456, end, duration));
            h.run().unwrap();
        }
        let s = sent(&mut h);
        assert_eq!(s[..2], [(0, 0, true), (1, 160, false)]);
        // Our audio ended at media time 320 (ts 320); the event arrives 20 ms later: ts 320 + 160.
        let ts = 480;
        assert_eq!(s[2..], [(2, ts, true), (3, ts, false), (4, ts, false), (5, ts, false), (6, ts, false)]);
        assert_eq!(h.filter.stats().events, 5);
        // Audio resumes 50 ms after the last event packet, after the event on our timeline.
        for _ in 0..3 {
            run_talkspurt(&mut h, 1);
        }
        let s = sent(&mut h);
        assert!(!s.is_empty());
        assert!(s[0].1.wrapping_sub(ts + 480) as i32 >= 0, "{s:?}");
        assert_eq!(s[0].0, 7);
    }
}
