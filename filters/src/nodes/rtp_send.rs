//! `rtp_send`: encoded frames in, RTP datagrams out (as [`Transmit`]s for the graph's owner to send).
//!
//! One SSRC for the life of the filter; sequence numbers +1 per packet and timestamps continuous across
//! file switches (RFC 3550 §5.1). It is a pump: it counts media time every tick, so that after a silent
//! gap (nothing to send) the timestamp jumps by the gap's duration and the first packet of the new
//! talkspurt carries the marker bit (RFC 3551 §4.1).

use std::net::SocketAddr;

use rtp_types::RtpPacketBuilder;

use crate::filter::{Filter, FilterDesc, FilterError, ProcessCx, Transmit};
use crate::frame::Frame;

/// Counters for the "sent" half of the RTP statistics block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendStats {
    pub packets: u64,
    /// RTP payload octets (RFC 3550 §6.4.1 sender's octet count).
    pub payload_bytes: u64,
    /// Whole datagram bytes (header included).
    pub bytes: u64,
    pub last_timestamp: u32,
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
    stats: SendStats,
}

impl RtpSend {
    pub const DESC: FilterDesc = FilterDesc { name: "rtp_send", inputs: 1, outputs: 0, pump: true };

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
            stats: SendStats::default(),
        }
    }

    /// New remote address (re-INVITE); SSRC, sequence and timestamps continue.
    pub fn set_dest(&mut self, dest: SocketAddr) {
        self.dest = dest;
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    pub fn stats(&self) -> SendStats {
        self.stats
    }
}

impl Filter for RtpSend {
    fn desc(&self) -> FilterDesc {
        Self::DESC
    }

    fn process(&mut self, cx: &mut ProcessCx<'_>) -> Result<(), FilterError> {
        self.media_now += u64::from(self.clock_rate / 100);
        while let Some(frame) = cx.pop(0) {
            let Frame::Encoded(enc) = frame else {
                return Err(FilterError::UnexpectedFrame {
                    filter: "rtp_send",
                    pin: 0,
                    expected: "encoded",
                    got: frame.kind(),
                });
            };
            let d = u64::from(enc.duration);
            // Audio for this packet ends at `media_now` at the latest. A shortfall of at least one packet
            // since the last one is a silent gap: jump the timestamp over it and mark the new talkspurt.
            // Shorter shortfalls are scheduling jitter in the chain, not silence.
            let (ts, marker, until) = match self.sent_until {
                None => (self.next_ts, true, self.media_now),
                Some(until) => {
                    let gap = self.media_now.saturating_sub(until + d);
                    if gap >= d {
                        (self.next_ts.wrapping_add(gap as u32), true, self.media_now)
                    } else {
                        (self.next_ts, false, until + d)
                    }
                }
            };
            let packet = RtpPacketBuilder::<&[u8], &[u8]>::new()
                .payload_type(enc.payload_type)
                .sequence_number(self.seq)
                .timestamp(ts)
                .ssrc(self.ssrc)
                .marker_bit(marker)
                .payload(enc.payload.as_slice())
                .write_vec_unchecked();
            self.stats.packets += 1;
            self.stats.payload_bytes += enc.payload.len() as u64;
            self.stats.bytes += packet.len() as u64;
            self.stats.last_timestamp = ts;
            cx.transmit(Transmit { source: self.source, dest: self.dest, payload: packet });
            self.seq = self.seq.wrapping_add(1);
            self.next_ts = ts.wrapping_add(enc.duration);
            self.sent_until = Some(until);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::EncodedFrame;
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
}
