//! `rtp_recv`: RTP datagrams in (handed over by the graph's owner), received packets out: media on output
//! 0, RFC 4733 telephone-events on output 1.
//!
//! Each well-formed datagram of a negotiated payload type updates its source's [`SourceStats`] (RFC 3550
//! A.1/A.3/A.8); packets of any other payload type are counted and dropped first, so they can neither
//! start a source nor disturb the one played. Packets are then released either through the
//! [`JitterBuffer`] in playout order ([`Playout::Buffered`], to decode) or as they arrive
//! ([`Playout::Immediate`], to relay: the far end's jitter buffer does the rest). The buffer plays one
//! source: the one that became valid most recently (a new SSRC, or a sender restart, RFC 3550 A.1), or
//! any source once the one played has been silent for [`SOURCE_TIMEOUT`]. Packets held back by source
//! validation are not lost: the packet before the one that validates a source is released with it.
//! Telephone-events with a malformed payload, or with nothing linked to output 1, are counted and dropped.

use std::collections::VecDeque;
use std::time::Duration;

use rtp_types::RtpPacket;

use crate::codec::telephone_event::TelephoneEvent;
use crate::filter::{Filter, FilterDesc, FilterError, ProcessCx};
use crate::frame::{Frame, RtpFrame};
use crate::rtp::burst_gap::{BurstGapCounter, PacketFate};
use crate::rtp::jitter_buffer::{JitterBuffer, JitterConfig};
use crate::rtp::stats::{ReceptionReport, SeqUpdate, SourceStats, MAX_DROPOUT};

/// Sources tracked at once; beyond, the one heard least recently is forgotten (its loss is kept).
pub const MAX_SOURCES: usize = 4;
/// Silence after which another valid source may take over the jitter buffer.
pub const SOURCE_TIMEOUT: Duration = Duration::from_millis(500);
/// Packets waiting for the next tick in [`Playout::Immediate`]; beyond, the oldest is discarded.
const MAX_ARRIVED: usize = 64;

/// How received packets are released.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Playout {
    /// Through the jitter buffer, in sequence order at their playout time (to decode).
    #[default]
    Buffered,
    /// At the first tick after their arrival, in arrival order (to relay without adding delay).
    Immediate,
}

/// Totals for the receive half of the "RTP STATISTICS" block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecvStats {
    /// Well-formed RTP packets received, duplicates included.
    pub packets: u64,
    /// Their whole datagram bytes, headers included.
    pub bytes: u64,
    /// Payload bytes released to the graph ("incoming delivered to the app").
    pub delivered_bytes: u64,
    pub duplicated: u64,
    /// Expected minus received over all sources (RFC 3550 A.3); duplicates offset losses, so it can be
    /// negative.
    pub cumulative_lost: i64,
    /// Arrived after their playout slot, or reordered from before their source's first packet.
    pub late: u64,
    /// Not RTP: too short, version not 2, bad padding, CSRC or extension lengths, or RTCP on the RTP port.
    pub bad_formatted: u64,
    /// Dropped because the jitter buffer was full ("discarded (queue overflow)").
    pub discarded: u64,
    /// Dropped from the jitter buffer when it switched source or the sender restarted.
    pub flushed: u64,
    /// Dropped by source validation (RFC 3550 A.1 probation, or a jump no second packet confirmed).
    pub unvalidated: u64,
    /// From a valid source other than the one played.
    pub other_source: u64,
    /// Of a payload type the leg did not negotiate (neither its codec nor telephone-event): dropped
    /// before any statistics.
    pub unknown_payload_type: u64,
    /// Telephone-events whose payload is not a valid RFC 4733 §2.3 event.
    pub bad_events: u64,
    /// Telephone-events nothing took (output 1 unlinked: the leg is not bridged, or the other leg did
    /// not negotiate telephone-event).
    pub events_dropped: u64,
}

/// Added to RFC 3550 extended sequence numbers inside the jitter buffer (and taken off again on the way
/// out), so that the packet held back by probation always has a predecessor number, even when its
/// source validates on sequence number 0 (extended 0).
const PLAYOUT_SEQ_OFFSET: u32 = 1 << 16;

/// A packet held back by source validation, with what is needed to release it later.
#[derive(Debug)]
struct Held {
    arrival: Duration,
    seq: u16,
    frame: RtpFrame,
}

pub struct RtpRecv {
    clock_rate: u32,
    /// Payload types accepted, one bit each (RTP's are 7 bits).
    accepted: u128,
    telephone_event: Option<u8>,
    playout: Playout,
    sources: Vec<SourceStats>,
    /// SSRC the jitter buffer plays.
    current: Option<u32>,
    buffer: JitterBuffer,
    /// Packets waiting for the next tick in [`Playout::Immediate`] (RFC extended sequence numbers).
    arrived: VecDeque<RtpFrame>,
    held: Option<Held>,
    /// Loss of forgotten sources.
    retired_lost: i64,
    /// Counters kept here; the others come from the sources and the buffer.
    stats: RecvStats,
    /// RFC 3611 Appendix A loss pattern of what was released: a gap in the released extended sequence
    /// numbers is a loss (a packet arriving after its slot, counted late, does not fill it).
    burst_gap: BurstGapCounter,
    last_released: Option<u32>,
    /// A telephone-event was released since the last media packet.
    after_event: bool,
}

impl RtpRecv {
    pub const DESC: FilterDesc = FilterDesc { name: "rtp_recv", inputs: 0, outputs: 2, pump: false };

    pub fn new(clock_rate: u32) -> Self {
        Self::with_config(clock_rate, JitterConfig::default())
    }

    pub fn with_config(clock_rate: u32, config: JitterConfig) -> Self {
        Self {
            clock_rate,
            accepted: u128::MAX,
            telephone_event: None,
            playout: Playout::Buffered,
            sources: Vec::with_capacity(MAX_SOURCES),
            current: None,
            buffer: JitterBuffer::new(clock_rate, config),
            arrived: VecDeque::new(),
            held: None,
            retired_lost: 0,
            stats: RecvStats::default(),
            burst_gap: BurstGapCounter::new(),
            last_released: None,
            after_event: false,
        }
    }

    /// Accept only `media` (released on output 0) and `telephone_event` (on output 1); until this is
    /// called every payload type is media.
    pub fn set_payload_types(&mut self, media: u8, telephone_event: Option<u8>) {
        self.accepted = pt_bit(media) | telephone_event.map_or(0, pt_bit);
        self.telephone_event = telephone_event;
    }

    /// Release packets through the jitter buffer or as they arrive. Packets buffered when switching to
    /// `Immediate` go out at the next tick; switching back starts the buffer afresh.
    pub fn set_playout(&mut self, playout: Playout) {
        if playout == self.playout {
            return;
        }
        self.playout = playout;
        match playout {
            Playout::Immediate => {
                while let Some(mut frame) = self.buffer.pop_next() {
                    frame.seq = frame.seq.wrapping_sub(PLAYOUT_SEQ_OFFSET);
                    self.arrived.push_back(frame);
                }
            }
            Playout::Buffered => self.buffer.reset(),
        }
    }

    pub fn playout(&self) -> Playout {
        self.playout
    }

    /// Take one datagram received on the RTP port at `now`. Anything that is not a well-formed RTP packet
    /// is counted in `bad_formatted` and dropped.
    pub fn push_datagram(&mut self, now: Duration, bytes: &[u8]) {
        // RTCP multiplexed on this port (RFC 5761 §4): packet types 192..=223 read as marker + PT 64..=95.
        if bytes.get(1).is_some_and(|b| (192..=223).contains(b)) {
            self.stats.bad_formatted += 1;
            return;
        }
        let Ok(packet) = RtpPacket::parse(bytes) else {
            self.stats.bad_formatted += 1;
            return;
        };
        self.stats.packets += 1;
        self.stats.bytes += bytes.len() as u64;
        if self.accepted & pt_bit(packet.payload_type()) == 0 {
            self.stats.unknown_payload_type += 1;
            return;
        }

        let ssrc = packet.ssrc();
        let seq = packet.sequence_number();
        let i = self.source_index(ssrc);
        let source = &mut self.sources[i];
        let update = source.receive(now, seq, packet.timestamp(), packet.payload_len());
        let jitter = source.jitter();
        let frame = || RtpFrame {
            ssrc,
            seq: u32::from(seq),
            timestamp: packet.timestamp(),
            payload_type: packet.payload_type(),
            marker: packet.marker_bit(),
            payload: packet.payload().to_vec(),
        };

        let ext_seq = match update {
            SeqUpdate::Probation | SeqUpdate::Jump => {
                // Possibly the first packet of a source about to become valid: keep it for then.
                if self.held.replace(Held { arrival: now, seq, frame: frame() }).is_some() {
                    self.stats.unvalidated += 1;
                }
                return;
            }
            SeqUpdate::Duplicate => {
                self.stats.duplicated += 1;
                return;
            }
            SeqUpdate::Stale => {
                self.stats.late += 1;
                return;
            }
            SeqUpdate::Start { ext_seq } => {
                // A new source, or the same one restarted: sequence numbers start over, so does the buffer.
                self.current = Some(ssrc);
                self.restart_stream();
                self.release_held(ssrc, seq, ext_seq, jitter);
                ext_seq
            }
            SeqUpdate::Valid { ext_seq } => {
                if self.current != Some(ssrc) {
                    if !self.current_silent(now) {
                        self.stats.other_source += 1;
                        return;
                    }
                    self.current = Some(ssrc);
                    self.restart_stream();
                }
                ext_seq
            }
        };
        let mut frame = frame();
        frame.seq = ext_seq;
        self.enqueue(now, frame, jitter);
    }

    /// Totals for the statistics block.
    pub fn stats(&self) -> RecvStats {
        let buffer = self.buffer.stats();
        RecvStats {
            duplicated: self.stats.duplicated + buffer.duplicates,
            cumulative_lost: self.retired_lost + self.sources.iter().map(SourceStats::total_lost).sum::<i64>(),
            late: self.stats.late + buffer.late,
            discarded: self.stats.discarded + buffer.discarded,
            flushed: buffer.flushed,
            ..self.stats
        }
    }

    /// Reception report on the source being played (RFC 3550 §6.4.1), starting a new interval for its
    /// fraction lost. `None` before any source is valid.
    pub fn report(&mut self) -> Option<ReceptionReport> {
        let ssrc = self.current?;
        let source = self.sources.iter_mut().find(|s| s.ssrc() == ssrc)?;
        if !source.is_valid() {
            return None;
        }
        Some(source.report())
    }

    /// SSRC of the source being played.
    pub fn current_ssrc(&self) -> Option<u32> {
        self.current
    }

    pub fn source(&self, ssrc: u32) -> Option<&SourceStats> {
        self.sources.iter().find(|s| s.ssrc() == ssrc)
    }

    /// Every source tracked, valid or not.
    pub fn sources(&self) -> &[SourceStats] {
        &self.sources
    }

    /// The source being played, mutable for its interval summaries (RFC 3611 §4.6).
    pub fn current_source_mut(&mut self) -> Option<&mut SourceStats> {
        let ssrc = self.current?;
        self.sources.iter_mut().find(|s| s.ssrc() == ssrc)
    }

    /// RFC 3611 Appendix A loss pattern of the packets released.
    pub fn burst_gap(&self) -> &BurstGapCounter {
        &self.burst_gap
    }

    pub fn jitter_buffer(&self) -> &JitterBuffer {
        &self.buffer
    }

    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    /// Index of `ssrc`'s state, created if new; when full, replaces the source heard least recently
    /// other than the one played.
    fn source_index(&mut self, ssrc: u32) -> usize {
        if let Some(i) = self.sources.iter().position(|s| s.ssrc() == ssrc) {
            return i;
        }
        let fresh = SourceStats::new(ssrc, self.clock_rate);
        if self.sources.len() < MAX_SOURCES {
            self.sources.push(fresh);
            return self.sources.len() - 1;
        }
        let current = self.current;
        let oldest = self
            .sources
            .iter()
            .enumerate()
            .filter(|(_, s)| Some(s.ssrc()) != current)
            .min_by_key(|(_, s)| s.last_heard())
            .map_or(0, |(i, _)| i);
        self.retired_lost += self.sources[oldest].total_lost();
        self.sources[oldest] = fresh;
        oldest
    }

    /// Another numbering starts (a new source, or a restart): the buffer's packets and the burst/gap
    /// counter's last number belong to the old one.
    fn restart_stream(&mut self) {
        self.buffer.reset();
        self.last_released = None;
    }

    /// Feed the burst/gap counter up to `ext_seq`: the numbers skipped since the last release are losses.
    /// An older number (reordered, in immediate playout) was counted lost already; a jump beyond
    /// [`MAX_DROPOUT`] is a new source or a restart, not a loss burst.
    fn track_fates(&mut self, ext_seq: u32) {
        if let Some(last) = self.last_released {
            let step = ext_seq.wrapping_sub(last);
            if step == 0 || step > u32::MAX / 2 {
                return;
            }
            if step <= u32::from(MAX_DROPOUT) {
                self.burst_gap.lost_run(u64::from(step - 1));
            }
        }
        self.last_released = Some(ext_seq);
        self.burst_gap.packet(PacketFate::Received);
    }

    /// Whether the source played has been silent for [`SOURCE_TIMEOUT`] (or there is none).
    fn current_silent(&self, now: Duration) -> bool {
        let Some(source) = self.current.and_then(|ssrc| self.source(ssrc)) else {
            return true;
        };
        source.last_heard().is_none_or(|t| now.saturating_sub(t) >= SOURCE_TIMEOUT)
    }

    /// Queue the held packet if it is the one just before `seq`, which has just validated its source.
    fn release_held(&mut self, ssrc: u32, seq: u16, ext_seq: u32, jitter: u32) {
        let Some(held) = self.held.take() else { return };
        if held.frame.ssrc != ssrc {
            // Another source still on probation.
            self.held = Some(held);
            return;
        }
        if held.seq != seq.wrapping_sub(1) {
            self.stats.unvalidated += 1;
            return;
        }
        let mut frame = held.frame;
        frame.seq = ext_seq.wrapping_sub(1);
        self.enqueue(held.arrival, frame, jitter);
    }

    /// Queue a validated packet (`frame.seq` is its RFC extended sequence number) for release.
    fn enqueue(&mut self, arrival: Duration, mut frame: RtpFrame, jitter: u32) {
        match self.playout {
            Playout::Buffered => {
                frame.seq = frame.seq.wrapping_add(PLAYOUT_SEQ_OFFSET);
                self.buffer.push(arrival, frame, jitter);
            }
            Playout::Immediate => {
                if self.arrived.len() >= MAX_ARRIVED {
                    self.arrived.pop_front();
                    self.stats.discarded += 1;
                }
                self.arrived.push_back(frame);
            }
        }
    }

    /// Hand one packet on: media to output 0, a valid telephone-event to output 1. The first media
    /// packet after events is marked as a talkspurt start (the events' sequence numbers are not lost
    /// audio for a decoder to conceal), as RFC 4733 senders should but not all do.
    fn release(&mut self, cx: &mut ProcessCx<'_>, mut frame: RtpFrame) {
        self.track_fates(frame.seq);
        let pin = if Some(frame.payload_type) == self.telephone_event {
            self.after_event = true;
            if TelephoneEvent::parse(&frame.payload).is_err() {
                self.stats.bad_events += 1;
                return;
            }
            if !cx.is_linked(1) {
                self.stats.events_dropped += 1;
                return;
            }
            1
        } else {
            frame.marker |= std::mem::take(&mut self.after_event);
            0
        };
        self.stats.delivered_bytes += frame.payload.len() as u64;
        cx.push(pin, Frame::Rtp(frame));
    }
}

fn pt_bit(payload_type: u8) -> u128 {
    1 << (payload_type & 0x7f)
}

impl Filter for RtpRecv {
    fn desc(&self) -> FilterDesc {
        Self::DESC
    }

    fn process(&mut self, cx: &mut ProcessCx<'_>) -> Result<(), FilterError> {
        while let Some(frame) = self.arrived.pop_front() {
            self.release(cx, frame);
        }
        while let Some(mut frame) = self.buffer.pop(cx.now) {
            // Back to the RFC's extended number (the held packet of a source that validated on 0 reads
            // as u32::MAX, i.e. -1).
            frame.seq = frame.seq.wrapping_sub(PLAYOUT_SEQ_OFFSET);
            self.release(cx, frame);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FilterHarness;
    use proptest::prelude::*;
    use rtp_types::RtpPacketBuilder;

    const RATE: u32 = 8000;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A PCMU packet with a 160-byte payload (172 bytes in all).
    fn datagram(ssrc: u32, seq: u16, ts: u32, marker: bool) -> Vec<u8> {
        let payload = [seq as u8; 160];
        let packet = RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(0)
            .sequence_number(seq)
            .timestamp(ts)
            .ssrc(ssrc)
            .marker_bit(marker)
            .payload(payload.as_slice())
            .write_vec()
            .expect("valid test packet");
        packet
    }

    /// Runs ticks until `end_ms`, pushing each datagram before the first tick at or after its arrival.
    /// Returns (tick ms, ssrc, extended seq) of each frame emitted.
    fn drive(h: &mut FilterHarness<RtpRecv>, arrivals: &[(u64, Vec<u8>)], end_ms: u64) -> Vec<(u64, u32, u32)> {
        let mut out = Vec::new();
        let mut next = 0;
        while h.now() <= ms(end_ms) {
            while next < arrivals.len() && ms(arrivals[next].0) <= h.now() {
                h.filter.push_datagram(ms(arrivals[next].0), &arrivals[next].1);
                next += 1;
            }
            let tick = h.now().as_millis() as u64;
            h.run().expect("rtp_recv does not fail");
            for f in h.take(0) {
                let Frame::Rtp(f) = f else { panic!("expected rtp, got {}", f.kind()) };
                out.push((tick, f.ssrc, f.seq));
            }
        }
        out
    }

    fn bad_datagrams() -> Vec<Vec<u8>> {
        let good = datagram(1, 10, 0, false);
        let with = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut d = good.clone();
            f(&mut d);
            d
        };
        vec![
            vec![],
            b"hello".to_vec(),
            good[..11].to_vec(),    // shorter than the fixed header
            with(&|d| d[0] = 0x40), // version 1
            with(&|d| d[0] = 0x00), // version 0
            with(&|d| {
                d[0] |= 0x0f; // 15 CSRCs announced, 60 bytes needed after the header, 0 present
                d.truncate(20);
            }),
            with(&|d| {
                d[0] |= 0x10; // extension announced with a length of 0xffff words
                d[12..16].copy_from_slice(&[0xbe, 0xde, 0xff, 0xff]);
            }),
            with(&|d| {
                d[0] |= 0x20; // padding of 0 bytes
                *d.last_mut().unwrap() = 0;
            }),
            with(&|d| {
                d[0] |= 0x20; // padding longer than the packet
                *d.last_mut().unwrap() = 255;
            }),
            // RTCP receiver report (type 201) and sender report (type 200) on the RTP port.
            vec![0x81, 201, 0, 7, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            vec![0x80, 200, 0, 6, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ]
    }

    #[test]
    fn a_source_validating_on_sequence_zero_keeps_its_first_packet() {
        let mut h = FilterHarness::new(RtpRecv::new(8000));
        h.filter.push_datagram(Duration::ZERO, &datagram(7, 65535, 0, false));
        h.filter.push_datagram(Duration::from_millis(20), &datagram(7, 0, 160, false));
        for _ in 0..30 {
            h.run().unwrap();
        }
        let seqs: Vec<u32> = h
            .take(0)
            .into_iter()
            .map(|f| match f {
                Frame::Rtp(r) => r.seq,
                other => panic!("{}", other.kind()),
            })
            .collect();
        assert_eq!(seqs, vec![u32::MAX, 0], "the held 65535 comes out first, as extended -1");
        assert_eq!(h.filter.stats().unvalidated, 0);
    }

    #[test]
    fn garbage_is_bad_formatted_and_nothing_is_emitted() {
        let bad = bad_datagrams();
        let n = bad.len() as u64;
        let mut h = FilterHarness::new(RtpRecv::new(RATE));
        for (k, d) in bad.iter().enumerate() {
            h.filter.push_datagram(ms(k as u64), d);
        }
        for _ in 0..30 {
            h.run().unwrap();
        }
        assert!(h.take(0).is_empty());
        let s = h.filter.stats();
        assert_eq!(s, RecvStats { bad_formatted: n, ..RecvStats::default() });
        assert!(h.filter.sources().is_empty());
        assert_eq!(h.filter.report(), None);
    }

    #[test]
    fn truncations_of_a_valid_packet_never_panic() {
        let mut good = datagram(1, 10, 0, false);
        good[0] |= 0x10 | 0x02; // two CSRCs and an extension, to make every length check matter
        let mut packet = good[..12].to_vec();
        packet.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2, 0xbe, 0xde, 0, 1, 1, 2, 3, 4]);
        packet.extend_from_slice(&good[12..]);
        let mut r = RtpRecv::new(RATE);
        for len in 0..=packet.len() {
            r.push_datagram(ms(0), &packet[..len]);
        }
        // Only lengths reaching the end of the extension (12 + 8 + 4 + 4 = 28) parse.
        let s = r.stats();
        assert_eq!(s.bad_formatted, 28);
        assert_eq!(s.packets, packet.len() as u64 + 1 - 28);
    }

    proptest! {
        #[test]
        fn any_bytes_are_counted_never_panic(datagrams in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..40)) {
            let mut h = FilterHarness::new(RtpRecv::new(RATE));
            for (k, d) in datagrams.iter().enumerate() {
                h.filter.push_datagram(ms(5 * k as u64), d);
                h.run().unwrap();
            }
            let s = h.filter.stats();
            prop_assert_eq!(s.packets + s.bad_formatted, datagrams.len() as u64);
        }
    }

    #[test]
    fn reordered_stream_comes_out_in_order_with_hand_computed_stats() {
        let ssrc = 0x1234_5678;
        // Packet k: seq 65534 + k (wrapping), ts 160 k, sent at 20 k ms, nominally arriving 3 ms later.
        let p = |k: u32| datagram(ssrc, 65534u16.wrapping_add(k as u16), 160 * k, k == 0);
        let arrivals = vec![
            (3, p(0)),  // on probation: held, released when p(1) validates the source
            (23, p(1)), // starts the source (base 65535)
            (43, p(2)), // seq 0: first cycle
            // p(3) (seq 1) lost
            (50, b"not rtp".to_vec()),
            (60, vec![0x81, 201, 0, 1, 0, 0, 0, 1]),
            (103, p(5)),
            (105, p(4)), // 22 ms late, after p(5): reordered
            (123, p(6)),
            (124, p(6)), // duplicate
            // p(7) (seq 5) lost
            (163, p(8)),
            (183, p(9)),
        ];
        let mut h = FilterHarness::new(RtpRecv::new(RATE));
        let out = drive(&mut h, &arrivals, 300);
        // p(0) is the buffer's base: it plays at 3 + 20 = 23 ms, packet k at 23 + 20 k, released at the
        // next 10 ms tick. p(4) plays at 103 > last pop (100) when pushed: in time.
        assert_eq!(
            out,
            vec![
                (30, ssrc, 65534),
                (50, ssrc, 65535),
                (70, ssrc, 65536),
                (110, ssrc, 65538),
                (130, ssrc, 65539),
                (150, ssrc, 65540),
                (190, ssrc, 65542),
                (210, ssrc, 65543),
            ]
        );
        // Counted from the base 65535 (A.1): expected 65543 - 65535 + 1 = 9; received 8 (p(1), p(2),
        // p(5), p(4), p(6) twice, p(8), p(9)); cumulative lost 9 - 8 = 1 (2 lost, hidden 1 by the
        // duplicate, A.3). Fraction = floor(1 × 256 / 9) = 28.
        // Jitter in timestamp units, transit = 8 × arrival ms - ts: p(1) 24 (first), p(2) 24, p(5) 24,
        // p(4) 840 - 640 = 200, p(6) 24, p(8) 24, p(9) 24; the duplicate is skipped.
        // J16: p(2) 0; p(5) 0; p(4) D=176: 176; p(6) D=176: 176 + 176 - (184 >> 4 = 11) = 341;
        // p(8) D=0: 341 - (349 >> 4 = 21) = 320; p(9): 320 - (328 >> 4 = 20) = 300. jitter = 300 >> 4 = 18.
        assert_eq!(
            h.filter.stats(),
            RecvStats {
                packets: 9,
                bytes: 9 * 172,
                delivered_bytes: 8 * 160,
                duplicated: 1,
                cumulative_lost: 1,
                bad_formatted: 2,
                ..RecvStats::default()
            }
        );
        assert_eq!(
            h.filter.report(),
            Some(ReceptionReport {
                ssrc,
                fraction_lost: 28,
                cumulative_lost: 1,
                extended_highest_seq: 65543,
                jitter: 18
            })
        );
        let source = h.filter.source(ssrc).expect("tracked");
        assert_eq!((source.duplicates(), source.payload_bytes()), (1, 8 * 160));
        // A second report covers nothing new.
        assert_eq!(h.filter.report().map(|r| r.fraction_lost), Some(0));
    }

    #[test]
    fn a_new_ssrc_takes_over_and_strays_from_the_old_one_are_ignored() {
        let (a, b) = (0xaaaa, 0xbbbb);
        let arrivals = vec![
            (3, datagram(a, 10, 0, true)),
            (23, datagram(a, 11, 160, false)),
            (43, datagram(a, 12, 320, false)), // plays at 63: still queued when b takes over at 65
            (45, datagram(b, 500, 9000, true)), // b on probation
            (65, datagram(b, 501, 9160, false)), // b valid: the buffer switches, 500 plays at 45 + 20
            (70, datagram(a, 13, 480, false)), // a stray from a: b is active
            (85, datagram(b, 502, 9320, false)),
        ];
        let mut h = FilterHarness::new(RtpRecv::new(RATE));
        let out = drive(&mut h, &arrivals, 200);
        assert_eq!(out, vec![(30, a, 10), (50, a, 11), (70, b, 500), (90, b, 501), (110, b, 502)]);
        assert_eq!(h.filter.current_ssrc(), Some(b));
        let s = h.filter.stats();
        assert_eq!((s.flushed, s.other_source, s.unvalidated, s.packets), (1, 1, 0, 7));
        assert_eq!(h.filter.report().map(|r| (r.ssrc, r.extended_highest_seq)), Some((b, 502)));
        assert_eq!(h.filter.sources().len(), 2);
    }

    #[test]
    fn the_old_source_comes_back_after_silence() {
        let (a, b) = (1, 2);
        let mut r = RtpRecv::new(RATE);
        r.push_datagram(ms(0), &datagram(a, 10, 0, false));
        r.push_datagram(ms(20), &datagram(a, 11, 160, false));
        r.push_datagram(ms(40), &datagram(b, 10, 0, false));
        r.push_datagram(ms(60), &datagram(b, 11, 160, false));
        assert_eq!(r.current_ssrc(), Some(b));
        r.push_datagram(ms(80), &datagram(a, 12, 320, false));
        assert_eq!((r.current_ssrc(), r.stats().other_source), (Some(b), 1));
        // b silent since 60 ms: at 560 ms a takes the buffer back.
        r.push_datagram(ms(560), &datagram(a, 13, 480, false));
        assert_eq!(r.current_ssrc(), Some(a));
    }

    #[test]
    fn sender_restart_resyncs_the_buffer() {
        let ssrc = 9;
        let arrivals = vec![
            (3, datagram(ssrc, 100, 0, true)),
            (23, datagram(ssrc, 101, 160, false)),
            // Restart with unrelated sequence numbers and timestamps (A.1: two in sequence re-sync).
            (103, datagram(ssrc, 40000, 777, true)),
            (123, datagram(ssrc, 40001, 937, false)),
            (143, datagram(ssrc, 40002, 1097, false)),
        ];
        let mut h = FilterHarness::new(RtpRecv::new(RATE));
        let out = drive(&mut h, &arrivals, 300);
        // 40000 was held as a jump and released with 40001, playing at 103 + 20.
        assert_eq!(
            out,
            vec![(30, ssrc, 100), (50, ssrc, 101), (130, ssrc, 40000), (150, ssrc, 40001), (170, ssrc, 40002)]
        );
        let source = h.filter.source(ssrc).expect("tracked");
        assert_eq!((source.base_seq(), source.expected(), source.received()), (40001, 2, 2));
        assert_eq!(h.filter.stats().unvalidated, 0);
    }

    #[test]
    fn sources_beyond_the_limit_replace_the_least_recent() {
        let mut r = RtpRecv::new(RATE);
        for ssrc in 0..(MAX_SOURCES as u32 + 2) {
            r.push_datagram(ms(u64::from(ssrc)), &datagram(ssrc, 1, 0, false));
        }
        assert_eq!(r.sources().len(), MAX_SOURCES);
        assert!(r.source(0).is_none() && r.source(1).is_none());
        // Each replaced probation packet of another source counts once.
        assert_eq!(r.stats().unvalidated, MAX_SOURCES as u64 + 1);
    }
    /// A datagram of payload type `pt` carrying `payload`.
    fn datagram_with(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        RtpPacketBuilder::<&[u8], &[u8]>::new()
            .payload_type(pt)
            .sequence_number(seq)
            .timestamp(ts)
            .ssrc(7)
            .payload(payload)
            .write_vec()
            .expect("valid test packet")
    }

    fn pts_and_seqs(frames: Vec<Frame>) -> Vec<(u8, u32)> {
        frames
            .into_iter()
            .map(|f| match f {
                Frame::Rtp(r) => (r.payload_type, r.seq),
                other => panic!("{}", other.kind()),
            })
            .collect()
    }

    #[test]
    fn unnegotiated_payload_types_are_counted_and_never_touch_the_stream() {
        let mut h = FilterHarness::new(RtpRecv::new(RATE));
        h.filter.set_payload_types(0, Some(101));
        h.filter.push_datagram(ms(0), &datagram(1, 10, 0, false));
        h.filter.push_datagram(ms(20), &datagram(1, 11, 160, false));
        // A stream of payload type 13 from another SSRC would otherwise validate and take over.
        for k in 0..4u16 {
            h.filter.push_datagram(ms(25 + u64::from(k)), &datagram_with(13, 500 + k, 0, &[0; 10]));
        }
        for _ in 0..10 {
            h.run().unwrap();
        }
        assert_eq!(pts_and_seqs(h.take(0)), vec![(0, 10), (0, 11)]);
        let s = h.filter.stats();
        assert_eq!((s.packets, s.unknown_payload_type, s.other_source), (6, 4, 0));
        assert_eq!(h.filter.current_ssrc(), Some(1));
        assert_eq!(h.filter.sources().len(), 1);
    }

    #[test]
    fn telephone_events_go_to_output_1_and_malformed_ones_are_counted() {
        let mut h = FilterHarness::new(RtpRecv::new(RATE));
        h.filter.set_payload_types(0, Some(101));
        let event = [5, 10, 0, 160];
        h.filter.push_datagram(ms(0), &datagram_with(0, 1, 0, &[0xff; 160]));
        h.filter.push_datagram(ms(20), &datagram_with(101, 2, 160, &event));
        h.filter.push_datagram(ms(40), &datagram_with(101, 3, 160, &[5, 10, 1]));
        h.filter.push_datagram(ms(60), &datagram_with(0, 4, 480, &[0xff; 160]));
        for _ in 0..12 {
            h.run().unwrap();
        }
        let media = h.take(0);
        // The sender did not mark the audio after the event; we do, so a decoder conceals nothing.
        let marks: Vec<bool> = media.iter().map(|f| matches!(f, Frame::Rtp(r) if r.marker)).collect();
        assert_eq!(pts_and_seqs(media), vec![(0, 1), (0, 4)]);
        assert_eq!(marks, vec![false, true]);
        assert_eq!(pts_and_seqs(h.take(1)), vec![(101, 2)]);
        assert_eq!(h.filter.stats().bad_events, 1);
    }

    #[test]
    fn telephone_events_with_output_1_unlinked_are_counted_dropped() {
        let mut g = crate::Graph::new();
        let mut recv = RtpRecv::with_config(RATE, JitterConfig::default());
        recv.set_payload_types(0, Some(101));
        let recv = g.add(recv);
        let sink = g.add(crate::nodes::VoidSink::new());
        g.link(recv, 0, sink, 0).unwrap();
        let r = g.filter_mut::<RtpRecv>(recv).unwrap();
        r.push_datagram(ms(0), &datagram_with(101, 1, 0, &[5, 10, 0, 0]));
        r.push_datagram(ms(20), &datagram_with(101, 2, 0, &[5, 10, 0, 160]));
        for k in 0..10 {
            g.tick(crate::TICK * k, &crate::NoClock).unwrap();
        }
        assert_eq!(g.filter::<RtpRecv>(recv).unwrap().stats().events_dropped, 2);
        assert_eq!(g.filter::<crate::nodes::VoidSink>(sink).unwrap().frames, 0);
    }

    #[test]
    fn immediate_playout_releases_at_the_next_tick_in_arrival_order() {
        let mut h = FilterHarness::new(RtpRecv::new(RATE));
        h.filter.set_playout(Playout::Immediate);
        // Probation: 10 is held and released with 11, which validates the source.
        let arrivals = vec![
            (3, datagram(1, 10, 0, true)),
            (23, datagram(1, 11, 160, false)),
            (43, datagram(1, 13, 480, false)), // 12 comes late: relayed after 13, as it arrived
            (45, datagram(1, 12, 320, false)),
            (63, datagram(1, 14, 640, false)),
        ];
        let out = drive(&mut h, &arrivals, 100);
        assert_eq!(out, vec![(30, 1, 10), (30, 1, 11), (50, 1, 13), (50, 1, 12), (70, 1, 14)]);
        let s = h.filter.stats();
        assert_eq!((s.packets, s.late, s.cumulative_lost), (5, 0, 0));
    }

    #[test]
    fn switching_to_immediate_hands_over_what_the_buffer_holds() {
        let mut h = FilterHarness::new(RtpRecv::new(RATE));
        h.filter.push_datagram(ms(0), &datagram(1, 10, 0, false));
        h.filter.push_datagram(ms(1), &datagram(1, 11, 160, false));
        h.run().unwrap();
        assert!(h.take(0).is_empty(), "buffered: not due yet");
        h.filter.set_playout(Playout::Immediate);
        h.run().unwrap();
        assert_eq!(pts_and_seqs(h.take(0)), vec![(0, 10), (0, 11)]);
        h.filter.set_playout(Playout::Buffered);
        h.filter.push_datagram(ms(40), &datagram(1, 12, 320, false));
        h.run().unwrap();
        assert!(h.take(0).is_empty(), "buffered again");
    }

    #[test]
    fn the_burst_gap_pattern_counts_gaps_in_what_is_released() {
        let mut h = FilterHarness::new(RtpRecv::new(RATE));
        // 40 packets every 20 ms; 7 lost alone, 20..=22 lost together, 30 arrives 200 ms late (after its
        // slot: counted late, its slot stays a loss).
        let mut arrivals: Vec<(u64, Vec<u8>)> = (0u16..40)
            .filter(|s| ![7, 20, 21, 22, 30].contains(s))
            .map(|s| (u64::from(s) * 20, datagram(1, s, u32::from(s) * 160, s == 0)))
            .collect();
        arrivals.push((30 * 20 + 200, datagram(1, 30, 30 * 160, false)));
        arrivals.sort_by_key(|(t, _)| *t);
        drive(&mut h, &arrivals, 1200);
        let bg = h.filter.burst_gap();
        assert_eq!((bg.received(), bg.lost(), bg.discarded()), (35, 5, 0));
        assert_eq!(h.filter.stats().late, 1);
        assert_eq!(h.filter.current_source_mut().map(|s| s.ssrc()), Some(1));
    }

    #[test]
    fn the_burst_gap_pattern_follows_a_new_source_numbered_lower() {
        let mut h = FilterHarness::new(RtpRecv::new(RATE));
        // Source 1 numbered from 50000, then source 2 from 1000 (lower) with 1020..=1022 lost: the
        // counter must follow the new numbering, not wait for it to pass 50039.
        let mut arrivals: Vec<(u64, Vec<u8>)> =
            (0u16..40).map(|k| (u64::from(k) * 20, datagram(1, 50_000 + k, u32::from(k) * 160, k == 0))).collect();
        arrivals.extend(
            (0u16..40)
                .filter(|k| !(20..=22).contains(k))
                .map(|k| (800 + u64::from(k) * 20, datagram(2, 1000 + k, 90_000 + u32::from(k) * 160, k == 0))),
        );
        drive(&mut h, &arrivals, 2000);
        let bg = h.filter.burst_gap();
        assert_eq!((bg.received(), bg.lost()), (77, 3));
        assert_eq!(h.filter.current_source_mut().map(|s| s.ssrc()), Some(2));
    }
}
