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
                return Err(FilterError::UnexpectedFrame { filter: "rtp_send", pin: 0, expected: "encoded", got: frame.kind() });
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
