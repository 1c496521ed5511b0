//! Loss and discard pattern of one RTP stream for the RFC 3611 VoIP Metrics block (BT 7, §4.7.1–4.7.2):
//! loss and discard rates, and burst/gap densities and durations under the Gilbert–Elliott model with a
//! threshold Gmin (RFC 3611 Appendix A).
//!
//! A burst (§4.7.2) is the longest run that starts and ends with a lost or discarded packet and holds no
//! Gmin or more consecutive received packets; gaps are the periods before, between and after bursts.
//! [`BurstGapCounter`] runs Appendix A's event-driven counters per packet in sequence-number order, with
//! the two boundary rules §4.7.2 states and the Appendix A code leaves to chance:
//! - the session is assumed preceded by at least Gmin received packets, so the first loss is judged as a
//!   gap loss (Appendix A starts with `pkt = 0`, which makes it a burst loss), and there is no episode
//!   before it to classify (Appendix A's `lost = 0` at start adds a phantom burst to `c13`);
//! - the report is assumed followed by at least Gmin received packets, so the loss episode in progress
//!   at report time ends there: an isolated loss counts as a gap loss (`c14`), several as a burst
//!   (`c13`), and packets received since the last loss belong to the final gap (`c11`).
//!
//! With those, every packet lands in exactly one of the gap or burst counts, and Appendix A's densities
//! and burst duration become exact fractions of counted packets (see [`BurstGapCounter::metrics`]).
//! pjmedia's `rtcp_xr.c` implements Appendix A verbatim, phantom burst and unclassified last episode
//! included.

/// Gmin recommended by RFC 3611 §4.7.2.
pub const DEFAULT_GMIN: u8 = 16;

/// What happened to one RTP packet, taken in sequence-number order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketFate {
    /// Arrived and was played out.
    Received,
    /// Never arrived (or arrived so late it was counted lost, RFC 3611 §4.7.1).
    Lost,
    /// Arrived but the jitter buffer dropped it: late, early, or overflow (RFC 3611 §4.7.1).
    Discarded,
}

/// A fraction both as a number in 0..=1 and as RFC 3611's 8-bit field (§4.7.1): ×256, integer part,
/// at most 255. 0 when there is nothing to divide by.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fraction {
    pub value: f64,
    pub wire: u8,
}

impl Fraction {
    pub(crate) fn of(numerator: u64, denominator: u64) -> Self {
        if denominator == 0 {
            return Self { value: 0.0, wire: 0 };
        }
        let wire = ((u128::from(numerator) << 8) / u128::from(denominator)).min(255) as u8;
        Self { value: numerator as f64 / denominator as f64, wire }
    }
}

/// The loss/discard and burst/gap fields of a VoIP Metrics block (RFC 3611 §4.7.1–4.7.2), since the
/// start of reception.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BurstGapMetrics {
    /// Lost / expected (§4.7.1 loss rate). Discards do not count.
    pub loss_rate: Fraction,
    /// Discarded / expected (§4.7.1 discard rate).
    pub discard_rate: Fraction,
    /// Lost or discarded / packets, within bursts (§4.7.2).
    pub burst_density: Fraction,
    /// Lost or discarded / packets, within gaps (§4.7.2).
    pub gap_density: Fraction,
    /// Mean burst length in ms (§4.7.2); 0 without bursts. Saturates at 65535.
    pub burst_duration_ms: u16,
    /// Mean gap length in ms (§4.7.2); 0 before any packet. Saturates at 65535.
    pub gap_duration_ms: u16,
    pub gmin: u8,
}

/// RFC 3611 Appendix A transition counts. States: 1 received in a gap, 2 received in a burst, 3 lost in
/// a burst, 4 lost (isolated) in a gap; `cXY` counts transitions from X to Y.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Transitions {
    c11: u64,
    c13: u64,
    c14: u64,
    c22: u64,
    c23: u64,
    c33: u64,
}

impl Transitions {
    /// A loss episode of `losses` lost/discarded packets ended in a gap: classify it (Appendix A counts
    /// the episode's exit to the gap, c31 = c13 or c41 = c14, in the c13/c14 slot).
    fn end_episode(&mut self, losses: u64) {
        match losses {
            0 => {}
            1 => self.c14 += 1,
            _ => self.c13 += 1,
        }
    }
}

/// Appendix A's per-packet state machine for one stream, plus plain totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BurstGapCounter {
    gmin: u8,
    received: u64,
    lost: u64,
    discarded: u64,
    /// Appendix A `pkt`: packets received since the last loss or discard.
    pkt: u64,
    /// Appendix A `lost`: losses and discards in the episode in progress; 0 before the first one.
    episode: u64,
    t: Transitions,
}

impl Default for BurstGapCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl BurstGapCounter {
    /// A counter with the recommended Gmin of 16.
    pub fn new() -> Self {
        Self::with_gmin(DEFAULT_GMIN)
    }

    pub fn with_gmin(gmin: u8) -> Self {
        Self { gmin, received: 0, lost: 0, discarded: 0, pkt: 0, episode: 0, t: Transitions::default() }
    }

    /// Account the next packet in sequence-number order (RFC 3611 Appendix A, per event).
    pub fn packet(&mut self, fate: PacketFate) {
        match fate {
            PacketFate::Received => {
                self.received += 1;
                self.pkt += 1;
                return;
            }
            PacketFate::Lost => self.lost += 1,
            PacketFate::Discarded => self.discarded += 1,
        }
        if self.episode == 0 || self.pkt >= u64::from(self.gmin) {
            // Gap condition: the previous episode (if any) ended in a gap, this loss opens a new one.
            self.t.end_episode(self.episode);
            self.episode = 1;
            self.t.c11 += self.pkt;
        } else {
            // Burst condition: fewer than Gmin received since the last loss.
            self.episode += 1;
            if self.pkt == 0 {
                self.t.c33 += 1;
            } else {
                self.t.c23 += 1;
                self.t.c22 += self.pkt - 1;
            }
        }
        self.pkt = 0;
    }

    /// `n` packets lost in a row: the same as `n` × `packet(Lost)`, without a step per packet (a peer
    /// that skips sequence numbers must not cost a loop per number).
    pub fn lost_run(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        self.packet(PacketFate::Lost);
        if self.gmin == 0 {
            // Every loss is its own episode: nothing to fold.
            for _ in 1..n {
                self.packet(PacketFate::Lost);
            }
            return;
        }
        // After a loss `pkt` is 0 < Gmin: each further loss continues the burst, loss after loss.
        let rest = n - 1;
        self.lost += rest;
        self.episode += rest;
        self.t.c33 += rest;
    }

    pub fn received(&self) -> u64 {
        self.received
    }

    pub fn lost(&self) -> u64 {
        self.lost
    }

    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    /// Every packet accounted, whatever its fate.
    pub fn expected(&self) -> u64 {
        self.received + self.lost + self.discarded
    }

    pub fn gmin(&self) -> u8 {
        self.gmin
    }

    /// The report figures so far, for packets of `packet_interval_ms` each (frame duration × frames per
    /// packet, Appendix A's `m`). Does not change the counter.
    ///
    /// With the counts closed at report time (module doc):
    /// - burst losses = c13 (each burst's first) + c23 + c33, burst packets = those + c22 + c23; their
    ///   ratio equals Appendix A's p23/(p23 + p32) with p23 = c23/(c22 + c23) (1 if no c22 + c23) and
    ///   p32 = c32/(c31 + c32 + c33), c31 = c13, c32 = c23;
    /// - gap density = c14/(c11 + c14), as Appendix A;
    /// - burst duration = burst packets × m / c13, Appendix A's `ctotal·m/c13 − gap_length`;
    /// - gap duration = gap packets × m / (c13 + 1): §4.7.2's gaps are the one before each burst plus the
    ///   one after the last (to the report). Appendix A's (c11 + c14 + c13)·m/c13 leaves the last out
    ///   and has no answer without a burst; here the whole stream is then one gap.
    pub fn metrics(&self, packet_interval_ms: f64) -> BurstGapMetrics {
        let t = self.closed();
        let bursts = t.c13;
        let burst_losses = t.c13 + t.c23 + t.c33;
        let burst_packets = burst_losses + t.c22 + t.c23;
        let gap_packets = t.c11 + t.c14;
        let expected = self.expected();
        BurstGapMetrics {
            loss_rate: Fraction::of(self.lost, expected),
            discard_rate: Fraction::of(self.discarded, expected),
            burst_density: Fraction::of(burst_losses, burst_packets),
            gap_density: Fraction::of(t.c14, gap_packets),
            burst_duration_ms: mean_ms(burst_packets, bursts, packet_interval_ms),
            gap_duration_ms: mean_ms(gap_packets, bursts + 1, packet_interval_ms),
            gmin: self.gmin,
        }
    }

    /// The transition counts as if the report were followed by Gmin received packets (§4.7.2).
    fn closed(&self) -> Transitions {
        let mut t = self.t;
        t.end_episode(self.episode);
        t.c11 += self.pkt;
        t
    }
}

/// Mean length in ms of `periods` periods totalling `packets` packets, floored and saturated to u16.
fn mean_ms(packets: u64, periods: u64, packet_interval_ms: f64) -> u16 {
    if periods == 0 || packets == 0 || !packet_interval_ms.is_finite() || packet_interval_ms <= 0.0 {
        return 0;
    }
    let ms = (packets as f64 * packet_interval_ms / periods as f64).floor();
    ms.min(f64::from(u16::MAX)) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_losses_counts_as_that_many_single_losses() {
        for gmin in [0, 1, 2, 16] {
            for pattern in [&[(3u64, 1u64), (40, 2), (1, 5)][..], &[(0, 4), (20, 1), (2, 3), (17, 6)]] {
                let (mut one_by_one, mut runs) = (BurstGapCounter::with_gmin(gmin), BurstGapCounter::with_gmin(gmin));
                for &(received, lost) in pattern {
                    for c in [&mut one_by_one, &mut runs] {
                        for _ in 0..received {
                            c.packet(PacketFate::Received);
                        }
                    }
                    for _ in 0..lost {
                        one_by_one.packet(PacketFate::Lost);
                    }
                    runs.lost_run(lost);
                }
                assert_eq!(one_by_one, runs, "Gmin {gmin}, {pattern:?}");
            }
        }
    }
    use PacketFate::{Discarded as X, Lost as L, Received as R};

    const PTIME: f64 = 20.0;

    fn feed(c: &mut BurstGapCounter, fate: PacketFate, n: usize) {
        for _ in 0..n {
            c.packet(fate);
        }
    }

    fn frac(value: f64, wire: u8) -> Fraction {
        Fraction { value, wire }
    }

    /// The invariant the boundary rules buy: every packet is in a gap or in a burst.
    fn assert_partition(c: &BurstGapCounter) {
        let t = c.closed();
        let burst = t.c13 + 2 * t.c23 + t.c33 + t.c22;
        assert_eq!(t.c11 + t.c14 + burst, c.expected());
    }

    #[test]
    fn no_loss_is_one_gap() {
        let mut c = BurstGapCounter::new();
        feed(&mut c, R, 100);
        // No loss: rates and densities 0, no burst; the whole stream is one gap of 100 × 20 ms.
        let m = c.metrics(PTIME);
        assert_eq!(
            m,
            BurstGapMetrics {
                loss_rate: frac(0.0, 0),
                discard_rate: frac(0.0, 0),
                burst_density: frac(0.0, 0),
                gap_density: frac(0.0, 0),
                burst_duration_ms: 0,
                gap_duration_ms: 2000,
                gmin: 16,
            }
        );
        assert_eq!((c.received(), c.lost(), c.discarded()), (100, 0, 0));
        // Before any packet everything is 0.
        assert_eq!(BurstGapCounter::new().metrics(PTIME).gap_duration_ms, 0);
    }

    #[test]
    fn one_isolated_loss_is_a_gap_loss() {
        let mut c = BurstGapCounter::new();
        feed(&mut c, R, 49);
        c.packet(L);
        feed(&mut c, R, 50);
        // The loss opens an episode (c11 = 49); at report it is closed as isolated (c14 = 1) and the 50
        // after it join the gap (c11 = 99). Gap density 1/100: wire floor(256/100) = 2. No burst.
        // Gap duration 100 packets / 1 gap × 20 = 2000 ms. Loss rate 1/100, wire 2.
        let m = c.metrics(PTIME);
        assert_eq!(m.loss_rate, frac(0.01, 2));
        assert_eq!(m.burst_density, frac(0.0, 0));
        assert_eq!(m.gap_density, frac(0.01, 2));
        assert_eq!((m.burst_duration_ms, m.gap_duration_ms), (0, 2000));
        assert_partition(&c);
    }

    #[test]
    fn five_consecutive_losses_are_one_burst() {
        let mut c = BurstGapCounter::new();
        feed(&mut c, R, 50);
        feed(&mut c, L, 5);
        feed(&mut c, R, 50);
        // First loss: c11 = 50; four more with pkt = 0: c33 = 4. At report: c13 = 1, c11 = 100.
        // Burst losses 1 + 0 + 4 = 5 of 5 packets: density 1, wire min(256, 255) = 255 (Appendix A:
        // p23 = 1 as c22 + c23 = 0, p32 = 0/(1 + 0 + 4) = 0, 1/(1 + 0) = 1).
        // Burst duration 5 × 20 / 1 = 100 ms; gaps 100 packets / 2 gaps × 20 = 1000 ms.
        // Loss rate 5/105 = 0.047619, wire floor(1280/105 = 12.19) = 12.
        let m = c.metrics(PTIME);
        assert_eq!(m.burst_density, frac(1.0, 255));
        assert_eq!(m.gap_density, frac(0.0, 0));
        assert_eq!((m.burst_duration_ms, m.gap_duration_ms), (100, 1000));
        assert_eq!(m.loss_rate, frac(5.0 / 105.0, 12));
        assert_eq!(c.t, Transitions { c11: 50, c13: 0, c14: 0, c22: 0, c23: 0, c33: 4 });
        assert_partition(&c);
    }

    #[test]
    fn a_loss_every_four_packets_is_a_burst() {
        let mut c = BurstGapCounter::new();
        feed(&mut c, R, 40);
        for _ in 0..4 {
            c.packet(L);
            feed(&mut c, R, 3);
        }
        c.packet(L);
        feed(&mut c, R, 60);
        // First loss after 40: c11 = 40. Then four losses each 3 received after the previous one
        // (3 < Gmin): c23 = 4, c22 = 4 × 2 = 8. At report: c13 = 1, c11 = 100.
        // Burst: losses 1 + 4 + 0 = 5, packets 5 + 8 + 4 = 17 (L RRR L RRR L RRR L RRR L).
        // Density 5/17 = 0.294118, wire floor(1280/17 = 75.29) = 75. Appendix A: p23 = 4/12 = 1/3,
        // p32 = 4/(1 + 4 + 0) = 4/5, (1/3)/(1/3 + 4/5) = 5/17.
        // Burst duration 17 × 20 = 340 ms; gap 100 / 2 × 20 = 1000 ms. Loss 5/117: floor(1280/117) = 10.
        let m = c.metrics(PTIME);
        assert_eq!(m.burst_density, frac(5.0 / 17.0, 75));
        assert_eq!(m.gap_density, frac(0.0, 0));
        assert_eq!((m.burst_duration_ms, m.gap_duration_ms), (340, 1000));
        assert_eq!(m.loss_rate, frac(5.0 / 117.0, 10));
        assert_partition(&c);
    }

    #[test]
    fn gmin_received_packets_end_a_burst() {
        let mut c = BurstGapCounter::new();
        feed(&mut c, R, 20);
        c.packet(L);
        feed(&mut c, R, 15);
        c.packet(L);
        feed(&mut c, R, 16);
        c.packet(L);
        feed(&mut c, R, 20);
        // Loss 1: c11 = 20. Loss 2 after 15 (< 16): burst, c23 = 1, c22 = 14. Loss 3 after 16 (= Gmin):
        // gap condition, the 2-loss episode closes as a burst (c13 = 1), c11 = 36. At report loss 3
        // closes as isolated (c14 = 1), c11 = 56.
        // Burst: 2 losses in 17 packets: 2/17, wire floor(512/17 = 30.1) = 30; 340 ms.
        // Gap: 1 loss in 57 packets: 1/57, wire floor(256/57 = 4.49) = 4; 57 / 2 × 20 = 570 ms.
        let m = c.metrics(PTIME);
        assert_eq!(m.burst_density, frac(2.0 / 17.0, 30));
        assert_eq!(m.gap_density, frac(1.0 / 57.0, 4));
        assert_eq!((m.burst_duration_ms, m.gap_duration_ms), (340, 570));
        assert_partition(&c);
    }

    #[test]
    fn discards_mixed_with_losses() {
        let mut c = BurstGapCounter::new();
        feed(&mut c, R, 30);
        for fate in [L, R, X, R, R, L] {
            c.packet(fate);
        }
        feed(&mut c, R, 30);
        c.packet(X);
        feed(&mut c, R, 20);
        // L after 30: c11 = 30. X after 1: c23 = 1, c22 += 0. L after 2: c23 = 2, c22 = 1 (episode 3).
        // X after 30: gap condition, the episode closes as a burst (c13 = 1), c11 = 60. At report the
        // X closes as isolated (c14 = 1) and c11 = 80.
        // Burst: losses 1 + 2 + 0 = 3 in 3 + 1 + 2 = 6 packets (L R X R R L): 0.5, wire 128; 120 ms.
        // Gap: 1 discard in 81 packets: 1/81, wire floor(256/81 = 3.16) = 3; 81 / 2 × 20 = 810 ms.
        // 87 packets: loss 2/87 and discard 2/87, each wire floor(512/87 = 5.89) = 5.
        let m = c.metrics(PTIME);
        assert_eq!(
            m,
            BurstGapMetrics {
                loss_rate: frac(2.0 / 87.0, 5),
                discard_rate: frac(2.0 / 87.0, 5),
                burst_density: frac(0.5, 128),
                gap_density: frac(1.0 / 81.0, 3),
                burst_duration_ms: 120,
                gap_duration_ms: 810,
                gmin: 16,
            }
        );
        assert_eq!((c.received(), c.lost(), c.discarded()), (83, 2, 2));
        assert_partition(&c);
    }

    #[test]
    fn seeded_random_five_percent_loss() {
        // A 64-bit LCG (Knuth's MMIX constants), fixed seed: the pattern is the same on every run.
        let mut x: u64 = 0x5eed;
        let mut c = BurstGapCounter::new();
        let mut lost = 0u64;
        for _ in 0..5000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            if (x >> 33) % 100 < 5 {
                lost += 1;
                c.packet(L);
            } else {
                c.packet(R);
            }
        }
        assert!(lost > 150 && lost < 350, "{lost}");
        let m = c.metrics(PTIME);
        assert_eq!(m.loss_rate.value, lost as f64 / 5000.0);
        assert_eq!(m.loss_rate.wire, (lost * 256 / 5000) as u8);
        for d in [m.burst_density, m.gap_density] {
            assert!((0.0..=1.0).contains(&d.value));
        }
        // Random 5 % loss puts losses closer than Gmin often: there are bursts, denser than the gaps.
        assert!(m.burst_density.value > m.gap_density.value);
        assert!(m.burst_duration_ms > 0 && m.gap_duration_ms > 0);
        assert_partition(&c);
    }

    #[test]
    fn huge_durations_saturate() {
        assert_eq!(mean_ms(10_000, 1, 20.0), u16::MAX);
        assert_eq!(mean_ms(3, 2, 20.0), 30);
        assert_eq!(mean_ms(3, 2, f64::NAN), 0);
    }
}
