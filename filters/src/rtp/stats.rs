//! Receive statistics for one RTP source (SSRC), computed as RFC 3550 Appendix A describes.
//!
//! [`SourceStats`] is a pure state machine fed with each packet's sequence number, timestamp and arrival
//! time (`now`, passed in, never read from a clock). It keeps
//! - sequence validation and extension (A.1): probation of new sources, wrap-around, restarts;
//! - the loss figures of a reception report (A.3);
//! - the interarrival jitter (A.8);
//! - counters for the statistics block: packets, payload bytes, duplicates;
//! - the RFC 3611 §4.6 Statistics Summary figures (BT 6) over a sequence-number interval.

use std::time::Duration;

/// RFC 3550 A.1: sequential packets needed before a new source is valid.
pub const MIN_SEQUENTIAL: u32 = 2;
/// RFC 3550 A.1: largest forward jump still taken as the same stream (the packets between were lost).
pub const MAX_DROPOUT: u16 = 3000;
/// RFC 3550 A.1: largest backward step taken as reordering rather than as a jump.
pub const MAX_MISORDER: u16 = 100;
/// RFC 3550 A.1: sequence numbers are 16 bits.
pub const RTP_SEQ_MOD: u32 = 1 << 16;

/// Range of the 24-bit signed "cumulative number of packets lost" of a report block (RFC 3550 §6.4.1).
const LOST_MAX: i64 = 0x7f_ffff;
const LOST_MIN: i64 = -0x80_0000;

/// `now` in units of a `clock_rate` Hz clock: the arrival time of RFC 3550 A.8.
pub(crate) fn rtp_units(now: Duration, clock_rate: u32) -> u64 {
    // Whole seconds apart: the same floor as over total nanoseconds, without a u128 division per packet.
    let rate = u64::from(clock_rate);
    now.as_secs().wrapping_mul(rate) + u64::from(now.subsec_nanos()) * rate / 1_000_000_000
}

/// What a packet's sequence number means for its source (RFC 3550 A.1 `update_seq`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqUpdate {
    /// The source became valid with this packet (end of probation, or a confirmed restart): extended
    /// sequence numbers start again at `ext_seq` and nothing received before compares with them.
    Start { ext_seq: u32 },
    /// A valid packet, in order, after a gap, or reordered.
    Valid { ext_seq: u32 },
    /// A sequence number received recently (within the last 128).
    Duplicate,
    /// The source is still on probation (fewer than [`MIN_SEQUENTIAL`] packets in sequence).
    Probation,
    /// A jump of more than [`MAX_DROPOUT`]: counted only if the next packet confirms a restart.
    Jump,
    /// Reordered from before the source's first valid packet: it has no extended sequence number.
    Stale,
}

/// The receiver's fields of an RTCP report block about one source (RFC 3550 §6.4.1), computed as in A.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReceptionReport {
    pub ssrc: u32,
    /// Packets lost since the previous report, as a fraction of those expected, in 1/256.
    pub fraction_lost: u8,
    /// Expected minus received since the source (re)started, clamped to 24 signed bits. Negative when
    /// duplicates outnumber losses (A.3).
    pub cumulative_lost: i32,
    /// Sequence-number cycles in the high 16 bits, highest sequence number in the low 16.
    pub extended_highest_seq: u32,
    /// Interarrival jitter in timestamp units (A.8).
    pub jitter: u32,
}

/// RFC 3611 §4.6 Statistics Summary figures over one sequence-number interval.
///
/// The interval is [`begin_seq`, `end_seq`): `end_seq` is the last sequence number reported plus one
/// (§4.6), and the next interval begins where this one ends, so consecutive blocks tile the sequence
/// space. Jitter values are |D(i−1, i)| of RFC 3550 A.8, the difference in relative transit time of two
/// consecutively arrived packets, in RTP timestamp units; `jitter_samples` says how many there were
/// (none: the J flag is not set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IntervalSummary {
    pub begin_seq: u16,
    pub end_seq: u16,
    /// Sequence numbers in the interval never received (reordered ones received before the summary
    /// included; those arriving after it stay counted lost, as the block already went out).
    pub lost: u32,
    /// Duplicates received during the interval.
    pub duplicates: u32,
    pub jitter_min: u32,
    pub jitter_max: u32,
    /// Integer part of the mean.
    pub jitter_mean: u32,
    /// Integer part of the population standard deviation.
    pub jitter_dev: u32,
    pub jitter_samples: u32,
}

/// Accumulator behind [`IntervalSummary`].
#[derive(Debug, Clone, Copy, Default)]
struct Interval {
    /// Extended sequence number the interval begins at; None until the source is valid.
    begin: Option<u32>,
    /// Distinct packets received with an extended sequence number at or after `begin`.
    received: u32,
    duplicates: u32,
    jitter_n: u32,
    jitter_min: u32,
    jitter_max: u32,
    jitter_sum: u64,
    jitter_sum_sq: u128,
}

impl Interval {
    fn starting_at(begin: u32) -> Self {
        Self { begin: Some(begin), ..Self::default() }
    }

    fn jitter_sample(&mut self, d: u32) {
        if self.jitter_n == 0 || d < self.jitter_min {
            self.jitter_min = d;
        }
        self.jitter_max = self.jitter_max.max(d);
        self.jitter_n += 1;
        self.jitter_sum += u64::from(d);
        self.jitter_sum_sq += u128::from(d) * u128::from(d);
    }

    /// Population standard deviation, integer part: sqrt((n·Σx² − (Σx)²) / n²), exact in integers.
    fn jitter_dev(&self) -> u32 {
        if self.jitter_n == 0 {
            return 0;
        }
        let n = u128::from(self.jitter_n);
        let sum = u128::from(self.jitter_sum);
        let variance = (n * self.jitter_sum_sq - sum * sum) / (n * n);
        variance.isqrt() as u32
    }
}

/// Receive state for one SSRC (RFC 3550 A.1 `source`, plus counters).
#[derive(Debug, Clone)]
pub struct SourceStats {
    ssrc: u32,
    clock_rate: u32,
    /// Whether any packet was received (the RFC allocates the state on the first one).
    heard: bool,
    last_heard: Option<Duration>,
    max_seq: u16,
    /// Sequence-number cycles, shifted left by 16 (A.1).
    cycles: u32,
    base_seq: u32,
    /// Last "bad" sequence number + 1; `RTP_SEQ_MOD + 1` matches no sequence number.
    bad_seq: u32,
    probation: u32,
    /// Packets received since the (re)start, duplicates and reordered ones included (A.3).
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Relative transit time of the previous packet; `None` until a packet after the (re)start.
    transit: Option<u32>,
    /// Jitter scaled by 16, as the RFC's integer code keeps it (A.8).
    jitter: u32,
    /// Bit `k` set: extended sequence number `extended_max - k` was received. 128 > MAX_MISORDER, so
    /// every packet taken as reordered falls inside the window.
    seen: u128,
    duplicates: u64,
    payload_bytes: u64,
    /// Cumulative loss of the epochs before restarts, which `init_seq` forgets.
    lost_before_restart: i64,
    /// RFC 3611 §4.6 figures since the last [`SourceStats::take_interval_summary`].
    interval: Interval,
}

impl SourceStats {
    /// State for a source not heard yet; its first packet puts it on probation.
    pub fn new(ssrc: u32, clock_rate: u32) -> Self {
        Self {
            ssrc,
            clock_rate,
            heard: false,
            last_heard: None,
            max_seq: 0,
            cycles: 0,
            base_seq: 0,
            bad_seq: RTP_SEQ_MOD + 1,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter: 0,
            seen: 0,
            duplicates: 0,
            payload_bytes: 0,
            lost_before_restart: 0,
            interval: Interval::default(),
        }
    }

    /// Account one packet of this source arriving at `now`, and say what its sequence number means.
    ///
    /// Packets on probation or after an unconfirmed jump are not counted (A.1). Duplicates are counted
    /// as received (A.3) but do not update the jitter: their transit measures the duplication, not the
    /// network's jitter.
    pub fn receive(&mut self, now: Duration, seq: u16, timestamp: u32, payload_len: usize) -> SeqUpdate {
        self.last_heard = Some(now);
        let update = self.update_seq(seq);
        match update {
            SeqUpdate::Probation | SeqUpdate::Jump => return update,
            SeqUpdate::Duplicate => {
                self.duplicates += 1;
                self.interval.duplicates += 1;
            }
            SeqUpdate::Start { ext_seq } => {
                // A new epoch: its sequence numbers do not compare with the old interval's, whose
                // unreported rest is dropped.
                self.interval = Interval::starting_at(ext_seq);
                self.interval.received += 1;
                self.update_jitter(now, timestamp);
            }
            SeqUpdate::Valid { ext_seq } => {
                if self.interval.begin.is_some_and(|begin| ext_seq >= begin) {
                    self.interval.received += 1;
                }
                self.update_jitter(now, timestamp);
            }
            SeqUpdate::Stale => self.update_jitter(now, timestamp),
        }
        self.payload_bytes += payload_len as u64;
        update
    }

    /// A.1 `init_seq`: start counting from `seq`.
    fn init_seq(&mut self, seq: u16) {
        self.base_seq = u32::from(seq);
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
        self.seen = 1;
        // After a restart the timestamps are unrelated to the old ones: one transit difference across
        // it would be a huge bogus jitter sample (the RFC's code keeps `transit`; we do not).
        self.transit = None;
    }

    /// A.1 `update_seq`, plus duplicate detection and the packet's extended sequence number.
    fn update_seq(&mut self, seq: u16) -> SeqUpdate {
        if !self.heard {
            // A.1: a new source starts on probation, as if `seq - 1` were its highest so far.
            self.heard = true;
            self.init_seq(seq);
            self.max_seq = seq.wrapping_sub(1);
            self.probation = MIN_SEQUENTIAL;
        }
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            // In sequence. Wrapping, unlike the RFC's int arithmetic which misses 65535 -> 0 here.
            if udelta == 1 {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return SeqUpdate::Start { ext_seq: self.extended_max() };
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return SeqUpdate::Probation;
        }
        if udelta == 0 {
            // The highest sequence number again (A.1 counts it in the in-order branch).
            self.received += 1;
            return SeqUpdate::Duplicate;
        }
        if udelta < MAX_DROPOUT {
            // In order, with a permissible gap.
            if seq < self.max_seq {
                self.cycles = self.cycles.wrapping_add(RTP_SEQ_MOD);
            }
            self.max_seq = seq;
            self.seen = if udelta >= 128 { 0 } else { self.seen << udelta };
            self.seen |= 1;
            self.received += 1;
            return SeqUpdate::Valid { ext_seq: self.extended_max() };
        }
        if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            // A very large jump: wait for a second packet in sequence before believing it.
            if u32::from(seq) != self.bad_seq {
                self.bad_seq = u32::from(seq.wrapping_add(1));
                return SeqUpdate::Jump;
            }
            // Two sequential packets: the sender restarted without telling us, re-sync on this one.
            self.lost_before_restart += self.cumulative_lost();
            self.init_seq(seq);
            self.received += 1;
            return SeqUpdate::Start { ext_seq: self.extended_max() };
        }
        // Duplicate or reordered, at most MAX_MISORDER behind the highest.
        self.received += 1;
        let behind = self.max_seq.wrapping_sub(seq);
        let bit = 1u128 << behind;
        if self.seen & bit != 0 {
            return SeqUpdate::Duplicate;
        }
        self.seen |= bit;
        let ext_seq = i64::from(self.extended_max()) - i64::from(behind);
        if ext_seq < i64::from(self.base_seq) {
            return SeqUpdate::Stale;
        }
        SeqUpdate::Valid { ext_seq: ext_seq as u32 }
    }

    /// A.8: J += (|D| - J) / 16, in the RFC's integer form with J scaled by 16.
    fn update_jitter(&mut self, now: Duration, timestamp: u32) {
        let arrival = rtp_units(now, self.clock_rate) as u32;
        let transit = arrival.wrapping_sub(timestamp);
        let Some(prev) = self.transit.replace(transit) else {
            return;
        };
        let d = transit.wrapping_sub(prev) as i32;
        self.interval.jitter_sample(d.unsigned_abs());
        let j = i64::from(self.jitter) + i64::from(d.unsigned_abs()) - ((i64::from(self.jitter) + 8) >> 4);
        self.jitter = j.clamp(0, i64::from(u32::MAX)) as u32;
    }

    /// A.3: the report-block figures, and start a new interval for the next fraction lost.
    pub fn report(&mut self) -> ReceptionReport {
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction_lost = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            // 256 when everything was lost, which 8 bits cannot say.
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        ReceptionReport {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: clamp_lost(self.cumulative_lost()),
            extended_highest_seq: self.extended_max(),
            jitter: self.jitter(),
        }
    }

    /// RFC 3611 §4.6 figures for [begin, end) where begin is where the previous summary ended (or the
    /// source's first valid packet) and end is the highest sequence number received plus one; the next
    /// interval starts at end. All zero before the source is valid.
    pub fn take_interval_summary(&mut self) -> IntervalSummary {
        let Some(begin) = self.interval.begin else {
            return IntervalSummary::default();
        };
        let end = self.extended_max().wrapping_add(1);
        let i = self.interval;
        self.interval = Interval::starting_at(end);
        let expected = end.wrapping_sub(begin);
        IntervalSummary {
            begin_seq: begin as u16,
            end_seq: end as u16,
            lost: expected.saturating_sub(i.received),
            duplicates: i.duplicates,
            jitter_min: i.jitter_min,
            jitter_max: i.jitter_max,
            jitter_mean: if i.jitter_n == 0 { 0 } else { (i.jitter_sum / u64::from(i.jitter_n)) as u32 },
            jitter_dev: i.jitter_dev(),
            jitter_samples: i.jitter_n,
        }
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    pub fn clock_rate(&self) -> u32 {
        self.clock_rate
    }

    /// Whether the source passed probation (A.1).
    pub fn is_valid(&self) -> bool {
        self.heard && self.probation == 0
    }

    /// Arrival time of the last packet, counted or not.
    pub fn last_heard(&self) -> Option<Duration> {
        self.last_heard
    }

    /// Highest sequence number with the cycles count in the high bits (A.3 `extended_max`).
    pub fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// First sequence number of the current epoch (A.1 `base_seq`).
    pub fn base_seq(&self) -> u32 {
        self.base_seq
    }

    /// Packets expected since the (re)start: `extended_max - base_seq + 1` (A.3).
    pub fn expected(&self) -> u64 {
        if !self.is_valid() {
            return 0;
        }
        (u64::from(self.extended_max()) + 1).saturating_sub(u64::from(self.base_seq))
    }

    /// Packets received since the (re)start, duplicates included (A.3).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// Expected minus received since the (re)start, unclamped (A.3).
    pub fn cumulative_lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Cumulative loss over the source's whole life, restarts included.
    pub fn total_lost(&self) -> i64 {
        self.lost_before_restart + self.cumulative_lost()
    }

    /// Interarrival jitter in timestamp units (A.8: the scaled value shifted right by 4).
    pub fn jitter(&self) -> u32 {
        self.jitter >> 4
    }

    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Payload octets of the counted packets, duplicates included.
    pub fn payload_bytes(&self) -> u64 {
        self.payload_bytes
    }
}

/// Clamp a loss count to the report block's 24-bit signed field (RFC 3550 §6.4.1, A.3).
fn clamp_lost(lost: i64) -> i32 {
    lost.clamp(LOST_MIN, LOST_MAX) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 8000;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Feed `seq` arriving at `at_ms`, with a timestamp 160 per sequence number after `first`.
    fn feed(s: &mut SourceStats, at_ms: u64, seq: u16, first: u16) -> SeqUpdate {
        let ts = 160u32.wrapping_mul(u32::from(seq.wrapping_sub(first)));
        s.receive(ms(at_ms), seq, ts, 160)
    }

    #[test]
    fn probation_then_start_then_valid() {
        let mut s = SourceStats::new(7, RATE);
        assert_eq!(feed(&mut s, 0, 500, 500), SeqUpdate::Probation);
        assert!(!s.is_valid());
        // Not in sequence: probation starts over from 502.
        assert_eq!(feed(&mut s, 40, 502, 500), SeqUpdate::Probation);
        assert_eq!(feed(&mut s, 60, 503, 500), SeqUpdate::Start { ext_seq: 503 });
        assert!(s.is_valid());
        assert_eq!(feed(&mut s, 80, 504, 500), SeqUpdate::Valid { ext_seq: 504 });
        assert_eq!(s.base_seq(), 503);
        assert_eq!(s.expected(), 2);
        assert_eq!(s.received(), 2);
        // Probation packets are not counted.
        assert_eq!(s.payload_bytes(), 320);
    }

    #[test]
    fn probation_across_the_wrap() {
        let mut s = SourceStats::new(7, RATE);
        assert_eq!(feed(&mut s, 0, 65535, 65535), SeqUpdate::Probation);
        assert_eq!(feed(&mut s, 20, 0, 65535), SeqUpdate::Start { ext_seq: 0 });
    }

    #[test]
    fn loss_and_reorder_give_hand_computed_report() {
        let mut s = SourceStats::new(1, RATE);
        // 1000 is on probation; 1001 starts the count. 1001..=1020 sent (20 expected), 1004 before 1003,
        // 1008 and 1015 lost. Seq k is sent at 20 × (k - 1000) ms and arrives then, but 1003 arrives 25 ms
        // late (after 1004).
        let arrivals: [(u64, u16); 19] = [
            (0, 1000),
            (20, 1001),
            (40, 1002),
            (80, 1004),
            (85, 1003),
            (100, 1005),
            (120, 1006),
            (140, 1007),
            (180, 1009),
            (200, 1010),
            (220, 1011),
            (240, 1012),
            (260, 1013),
            (280, 1014),
            (320, 1016),
            (340, 1017),
            (360, 1018),
            (380, 1019),
            (400, 1020),
        ];
        let updates: Vec<SeqUpdate> = arrivals.iter().map(|&(at, seq)| feed(&mut s, at, seq, 1000)).collect();
        assert_eq!(updates[0], SeqUpdate::Probation);
        assert_eq!(updates[1], SeqUpdate::Start { ext_seq: 1001 });
        assert_eq!(updates[3], SeqUpdate::Valid { ext_seq: 1004 });
        assert_eq!(updates[4], SeqUpdate::Valid { ext_seq: 1003 });
        // expected = 1020 - 1001 + 1 = 20; received 18; lost 2; fraction = floor(2 * 256 / 20) = 25.
        // Jitter, in timestamp units (8 per ms): transit is 0 but for 1003 (25 ms = 200), so D = 200 at
        // 1003, D = -200 at 1005 and 0 elsewhere. J16 += |D| - ((J16 + 8) >> 4):
        // 1003: 0 + 200 - 0 = 200; 1005: 200 + 200 - (208 >> 4 = 13) = 387;
        // then 13 packets with D = 0: 387-24=363, 363-23=340, 340-21=319, 319-20=299, 299-19=280,
        // 280-18=262, 262-16=246, 246-15=231, 231-14=217, 217-14=203, 203-13=190, 190-12=178,
        // 178-11=167. jitter = 167 >> 4 = 10.
        assert_eq!(s.jitter, 167);
        let r = s.report();
        assert_eq!(
            r,
            ReceptionReport { ssrc: 1, fraction_lost: 25, cumulative_lost: 2, extended_highest_seq: 1020, jitter: 10 }
        );
        // Next interval: a duplicate of 1020, then 1021..=1030 with 1025 lost.
        assert_eq!(feed(&mut s, 410, 1020, 1000), SeqUpdate::Duplicate);
        for seq in 1021..=1030u16 {
            if seq != 1025 {
                feed(&mut s, 20 * u64::from(seq - 1000), seq, 1000);
            }
        }
        assert_eq!(s.duplicates(), 1);
        // expected 30 - prior 20 = 10; received 28 - prior 18 = 10 (9 new + the duplicate): lost in the
        // interval 0, so fraction 0; cumulative = 30 - 28 = 2 (the duplicate hides one loss, A.3).
        let r = s.report();
        assert_eq!((r.fraction_lost, r.cumulative_lost, r.extended_highest_seq), (0, 2, 1030));
        // An interval where all 4 expected are lost but one: floor(3 * 256 / 4) = 192.
        feed(&mut s, 700, 1034, 1000);
        let r = s.report();
        assert_eq!((r.fraction_lost, r.cumulative_lost), (192, 5));
        // An interval with nothing received: fraction 0 (expected 0), not a division by zero.
        assert_eq!(s.report().fraction_lost, 0);
    }

    #[test]
    fn jitter_follows_the_integer_formula() {
        let mut s = SourceStats::new(1, RATE);
        // Packet k sent at 20k ms with timestamp 160k; extra delays in ms: 0, 0, 2, 0, 10, 10.
        let extra = [0u64, 0, 2, 0, 10, 10];
        let mut j16 = Vec::new();
        for (k, e) in extra.iter().enumerate() {
            s.receive(ms(20 * k as u64 + e), k as u16, 160 * k as u32, 160);
            j16.push(s.jitter);
        }
        // k=0 probation, k=1 starts (no previous transit). D in timestamp units = 8 × delay change:
        // k=2: D=16: 0 + 16 - 0 = 16; k=3: D=16: 16 + 16 - (24 >> 4 = 1) = 31;
        // k=4: D=80: 31 + 80 - (39 >> 4 = 2) = 109; k=5: D=0: 109 - (117 >> 4 = 7) = 102.
        assert_eq!(j16, vec![0, 0, 16, 31, 109, 102]);
        assert_eq!(s.jitter(), 6);
        assert_eq!(s.report().jitter, 6);
    }

    #[test]
    fn duplicates_detected_in_order_and_reordered() {
        let mut s = SourceStats::new(1, RATE);
        feed(&mut s, 0, 10, 10);
        feed(&mut s, 20, 11, 10);
        feed(&mut s, 60, 13, 10);
        assert_eq!(feed(&mut s, 61, 13, 10), SeqUpdate::Duplicate);
        assert_eq!(feed(&mut s, 62, 12, 10), SeqUpdate::Valid { ext_seq: 12 });
        assert_eq!(feed(&mut s, 63, 12, 10), SeqUpdate::Duplicate);
        assert_eq!(feed(&mut s, 64, 11, 10), SeqUpdate::Duplicate);
        // 99 behind the highest after a jump of 110: still inside the window, seen once only.
        for seq in 14..=123u16 {
            if seq != 24 {
                feed(&mut s, 80, seq, 10);
            }
        }
        assert_eq!(feed(&mut s, 90, 24, 10), SeqUpdate::Valid { ext_seq: 24 });
        assert_eq!(feed(&mut s, 91, 24, 10), SeqUpdate::Duplicate);
        assert_eq!(s.duplicates(), 4);
        // expected 11..=123 = 113; received 113 + 4 duplicates = 117.
        assert_eq!((s.expected(), s.received(), s.cumulative_lost()), (113, 117, -4));
    }

    #[test]
    fn wrap_around_counts_a_cycle() {
        let mut s = SourceStats::new(1, RATE);
        let seqs = [65533u16, 65534, 65535, 1, 0, 2];
        let updates: Vec<SeqUpdate> =
            seqs.iter().enumerate().map(|(k, &q)| feed(&mut s, 20 * k as u64, q, 65533)).collect();
        assert_eq!(
            updates,
            vec![
                SeqUpdate::Probation,
                SeqUpdate::Start { ext_seq: 65534 },
                SeqUpdate::Valid { ext_seq: 65535 },
                SeqUpdate::Valid { ext_seq: 65537 },
                // Reordered across the wrap: 1 behind 65537.
                SeqUpdate::Valid { ext_seq: 65536 },
                SeqUpdate::Valid { ext_seq: 65538 },
            ]
        );
        // expected = 65538 - 65534 + 1 = 5, received 5.
        assert_eq!((s.expected(), s.received(), s.cumulative_lost()), (5, 5, 0));
        assert_eq!(s.report().extended_highest_seq, (1 << 16) | 2);
    }

    #[test]
    fn big_jump_resyncs_after_two_sequential_packets() {
        let mut s = SourceStats::new(1, RATE);
        feed(&mut s, 0, 100, 100);
        feed(&mut s, 20, 101, 100);
        feed(&mut s, 60, 103, 100);
        // Before the restart: expected 101..=103 = 3, received 2, lost 1.
        assert_eq!(s.cumulative_lost(), 1);
        // A lone stray packet far ahead is ignored, and the stream goes on.
        assert_eq!(feed(&mut s, 70, 30000, 100), SeqUpdate::Jump);
        assert_eq!(feed(&mut s, 80, 104, 100), SeqUpdate::Valid { ext_seq: 104 });
        // The sender restarts at 10000 (jump 9896 > MAX_DROPOUT): the second packet in sequence
        // re-syncs (A.1) and counting starts over from it.
        assert_eq!(feed(&mut s, 100, 10000, 100), SeqUpdate::Jump);
        assert_eq!(feed(&mut s, 120, 10001, 100), SeqUpdate::Start { ext_seq: 10001 });
        assert_eq!(feed(&mut s, 140, 10002, 100), SeqUpdate::Valid { ext_seq: 10002 });
        assert_eq!((s.base_seq(), s.expected(), s.received(), s.cumulative_lost()), (10001, 2, 2, 0));
        // The loss before the restart is not forgotten in the total.
        assert_eq!(s.total_lost(), 1);
        // A packet more than MAX_MISORDER behind is a jump too (A.1), not a reorder.
        assert_eq!(feed(&mut s, 160, 10002 - 101, 100), SeqUpdate::Jump);
    }

    #[test]
    fn reordered_from_before_the_start_is_stale() {
        let mut s = SourceStats::new(1, RATE);
        feed(&mut s, 0, 10, 10);
        feed(&mut s, 20, 11, 10);
        // 9 was never part of the count (base is 11).
        assert_eq!(feed(&mut s, 30, 9, 10), SeqUpdate::Stale);
        assert_eq!(feed(&mut s, 31, 9, 10), SeqUpdate::Duplicate);
    }

    #[test]
    fn cumulative_lost_is_clamped_to_24_bits() {
        let mut s = SourceStats::new(1, RATE);
        feed(&mut s, 0, 0, 0);
        feed(&mut s, 0, 1, 0);
        // Jumps of 2999 (under MAX_DROPOUT) lose 2998 packets each: 2800 jumps lose 8_394_400.
        let mut seq = 1u16;
        for _ in 0..2800 {
            seq = seq.wrapping_add(2999);
            feed(&mut s, 0, seq, 0);
        }
        assert_eq!(s.cumulative_lost(), 2800 * 2998);
        assert_eq!(s.report().cumulative_lost, 0x7f_ffff);
        assert_eq!(clamp_lost(-9_000_000), -0x80_0000);
        assert_eq!(clamp_lost(-5), -5);
    }

    #[test]
    fn interval_summaries_tile_the_sequence_space() {
        let mut s = SourceStats::new(1, RATE);
        assert_eq!(s.take_interval_summary(), IntervalSummary::default());
        // Seq k is sent at 20 × (k − 100) ms; extra arrival delays in ms below. 100 is on probation,
        // 101 starts the interval; 104 and 108 lost; 106 duplicated (no jitter sample for it).
        let arrivals: [(u16, u64); 9] =
            [(100, 0), (101, 0), (102, 0), (103, 2), (105, 0), (106, 5), (107, 5), (109, 1), (110, 0)];
        for (seq, extra) in arrivals {
            feed(&mut s, 20 * u64::from(seq - 100) + extra, seq, 100);
            if seq == 107 {
                assert_eq!(feed(&mut s, 146, 106, 100), SeqUpdate::Duplicate);
            }
        }
        // Transit in timestamp units is 8 × extra ms, so |D| along arrivals 102..110 (101 has no
        // predecessor after the start): 0, 16, 16, 40, 0, 32, 8. n = 7, min 0, max 40, sum 112,
        // mean 16. Σx² = 256 + 256 + 1600 + 1024 + 64 = 3200; (7·3200 − 112²)/49 = 9856/49 = 201.1,
        // sqrt = 14.2: dev 14. [101, 111): 10 expected, 8 distinct received, lost 2; 1 duplicate.
        let first = s.take_interval_summary();
        assert_eq!(
            first,
            IntervalSummary {
                begin_seq: 101,
                end_seq: 111,
                lost: 2,
                duplicates: 1,
                jitter_min: 0,
                jitter_max: 40,
                jitter_mean: 16,
                jitter_dev: 14,
                jitter_samples: 7,
            }
        );
        // Next: 111, then 108 arrives 65 ms late (at 225, its slot was 160), 112, 114 (+3 ms), 115;
        // 113 lost. 108 belongs to the reported interval: it is not counted here, but its transit
        // difference is a sample. |D|: 111: 0; 108: 8·65 = 520; 112: 520; 114: 24; 115: 24.
        // n = 5, sum 1088, mean floor(217.6) = 217; Σx² = 2·270400 + 2·576 = 541952;
        // (5·541952 − 1088²)/25 = (2709760 − 1183744)/25 = 61040.6: isqrt(61040) = 247.
        for (at, seq) in [(220, 111), (225, 108), (240, 112), (283, 114), (300, 115)] {
            feed(&mut s, at, seq, 100);
        }
        let second = s.take_interval_summary();
        assert_eq!(
            second,
            IntervalSummary {
                begin_seq: 111,
                end_seq: 116,
                lost: 1,
                duplicates: 0,
                jitter_min: 0,
                jitter_max: 520,
                jitter_mean: 217,
                jitter_dev: 247,
                jitter_samples: 5,
            }
        );
        // Nothing since: an empty interval at 116.
        let empty = s.take_interval_summary();
        assert_eq!((empty.begin_seq, empty.end_seq, empty.lost, empty.jitter_samples), (116, 116, 0, 0));
        // The RFC 3550 figures are untouched: 101..=115 expected 15; received 13 distinct (the late 108
        // included) + 1 duplicate = 14.
        assert_eq!((s.expected(), s.received(), s.cumulative_lost()), (15, 14, 1));
    }

    #[test]
    fn arrival_in_rtp_units() {
        assert_eq!(rtp_units(ms(125), 8000), 1000);
        assert_eq!(rtp_units(Duration::from_micros(62_500), 16000), 1000);
        // The floor over the whole duration, not per part: 1.999999999 s at 48 kHz.
        assert_eq!(rtp_units(Duration::new(1, 999_999_999), 48000), 95_999);
        assert_eq!(rtp_units(Duration::new(86_400, 20_833), 48000), 86_400 * 48000);
        assert_eq!(rtp_units(Duration::new(86_400, 20_834), 48000), 86_400 * 48000 + 1);
    }
}
