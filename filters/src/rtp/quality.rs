//! Call quality as an E-model rating R and a MOS, per leg (ITU-T G.107, simplified).
//!
//! R = 93.2 − Id(d) − Ie,eff, with all other G.107 parameters at their defaults:
//! - 93.2 is Ro − Is with the default values (G.107 §7.1): the best a narrowband connection can score;
//! - Id is the delay impairment in Cole & Rosenbluth's simplified form ("Voice over IP performance
//!   monitoring", ACM SIGCOMM CCR 31(2), 2001), for one-way mouth-to-ear delay `d` in ms and echo under
//!   control: Id = 0.024·d + 0.11·(d − 177.3)·H(d − 177.3);
//! - Ie,eff is the equipment impairment under packet loss (G.107 §7.5):
//!   Ie,eff = Ie + (95 − Ie)·Ppl / (Ppl/BurstR + Bpl).
//!
//! Every codec is scored on the narrowband R scale (0–100), wideband and fullband ones included, so that
//! figures compare across legs and with what other equipment reports in RFC 3611 / RFC 6035. Inputs stay
//! `f64` throughout: no truncation of loss or jitter to integers (rtpengine's mistake), and the MOS is
//! G.107 Annex B's polynomial, not a parabola fitted on loss.
//!
//! [`QualitySummary`] accumulates a leg's samples for the end-of-call figures (min/max/avg MOS, averages
//! of loss, jitter and RTT). Everything here is pure: times are passed in.

use std::time::Duration;

use crate::codec::CodecKind;

/// Ro − Is with G.107's default parameters (G.107 §7.1, Table 3 defaults): R with no impairment.
pub const R_DEFAULT: f64 = 93.2;

/// Knee of the simplified delay impairment, in ms (Cole & Rosenbluth 2001).
const DELAY_KNEE_MS: f64 = 177.3;

/// Equipment impairment parameters of a codec (G.107 §7.5, values from G.113 Appendix I).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodecImpairment {
    /// Equipment impairment factor Ie with no loss.
    pub ie: f64,
    /// Packet-loss robustness factor Bpl: the larger, the better the codec's concealment hides loss.
    pub bpl: f64,
}

/// Bpl of G.711 with the concealment of G.711 Appendix I (G.113 Appendix I).
const BPL_G711_PLC: f64 = 25.1;
/// Bpl of G.711 without concealment, lost frames played as silence (G.113 Appendix I).
const BPL_NO_PLC: f64 = 4.3;

/// Ie and Bpl for `codec` on the narrowband R scale, with or without packet-loss concealment.
///
/// - G.711 (PCMU, PCMA): Ie 0; Bpl 25.1 with PLC, 4.3 without (G.113 Appendix I).
/// - G.722: G.113 Appendix IV gives only wideband-scale figures (Ie,wb, where G.722 at 64 kbit/s is
///   better than G.711). On the narrowband scale nothing beats G.711's Ie 0, so Ie is 0. rms conceals
///   G.722 loss with the same G.711 Appendix I algorithm on its 16 kHz output, so Bpl is G.711's 25.1
///   (4.3 without PLC). A planning choice of ours, not an ITU-published narrowband value.
/// - Opus: no ITU-T Ie/Bpl exists. Ie 0 for the same reason as G.722 (at VoIP bitrates Opus is at least
///   narrowband-transparent); Bpl 25.1, G.711-with-PLC's value, which is conservative: libopus's PLC
///   (and in-band FEC when negotiated) hides loss at least as well as G.711 Appendix I. Without PLC, 4.3.
pub fn impairment(codec: CodecKind, plc: bool) -> CodecImpairment {
    let bpl = if plc { BPL_G711_PLC } else { BPL_NO_PLC };
    match codec {
        CodecKind::Pcmu | CodecKind::Pcma | CodecKind::G722 | CodecKind::Opus => CodecImpairment { ie: 0.0, bpl },
    }
}

/// One-way mouth-to-ear delay d for the E-model, in ms: half the round trip (the network one way) plus
/// the playout delay plus the codec's own delay (frame and look-ahead).
///
/// `jitter_buffer_ms` is the jitter buffer's nominal delay; where a leg has no jitter buffer (a relay),
/// pass the measured interarrival jitter as its proxy, as the far end's buffer must absorb about that.
pub fn one_way_delay_ms(rtt_ms: f64, jitter_buffer_ms: f64, codec_delay_ms: f64) -> f64 {
    rtt_ms / 2.0 + jitter_buffer_ms + codec_delay_ms
}

/// What the E-model needs about a leg over one interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EModelInput {
    /// Packet loss Ppl in percent (0–100) over the interval: network loss plus jitter-buffer discards.
    pub loss_pct: f64,
    /// One-way mouth-to-ear delay in ms (see [`one_way_delay_ms`]).
    pub one_way_delay_ms: f64,
    /// G.107 §7.5 BurstR: 1 for random loss, above 1 for bursty loss. See [`burst_ratio`].
    pub burst_ratio: f64,
    pub impairment: CodecImpairment,
}

impl EModelInput {
    /// Random loss (BurstR = 1), the usual case when nothing better is known.
    pub fn random_loss(loss_pct: f64, one_way_delay_ms: f64, impairment: CodecImpairment) -> Self {
        Self { loss_pct, one_way_delay_ms, burst_ratio: 1.0, impairment }
    }
}

/// G.107 §7.5 BurstR from a two-state (Gilbert) loss model: the mean length of runs of consecutive
/// losses observed, divided by the mean run length random loss at the same rate would give,
/// 1/(1 − Ppl). Equivalently BurstR = 1/(p + q) with p = P(loss | previous received) and
/// q = P(received | previous lost), as G.107 §7.5 defines it.
///
/// `loss_fraction` is Ppl/100; `mean_loss_run` is in packets (total losses / number of loss runs). The
/// RFC 3611 burst/gap figures (Gmin-based bursts that contain received packets) are not loss runs and do
/// not give BurstR directly, so rms reports with BurstR = 1 unless it counted loss runs. Values below 1
/// (loss more spread out than random) are kept at 1: G.107 defines BurstR ≥ 1 only.
pub fn burst_ratio(loss_fraction: f64, mean_loss_run: f64) -> f64 {
    let ratio = mean_loss_run * (1.0 - loss_fraction.clamp(0.0, 1.0));
    ratio.max(1.0)
}

/// Delay impairment Id for one-way delay `d` ms (Cole & Rosenbluth's simplification of G.107 §7.4).
pub fn delay_impairment(d: f64) -> f64 {
    let d = non_negative(d);
    let over_knee = if d > DELAY_KNEE_MS { 0.11 * (d - DELAY_KNEE_MS) } else { 0.0 };
    0.024 * d + over_knee
}

/// Effective equipment impairment Ie,eff (G.107 §7.5, eq. 7-29).
pub fn effective_equipment_impairment(input: &EModelInput) -> f64 {
    let CodecImpairment { ie, bpl } = input.impairment;
    let ppl = non_negative(input.loss_pct).min(100.0);
    // NaN or below 1 falls back to random loss (f64::max ignores NaN).
    let burst_r = input.burst_ratio.max(1.0);
    let denominator = ppl / burst_r + bpl;
    if denominator <= 0.0 {
        return ie;
    }
    ie + (95.0 - ie) * ppl / denominator
}

/// Conversational quality R (RFC 3611 §4.7.5 "R factor", RFC 6035 RCQ): with the delay impairment.
pub fn r_cq(input: &EModelInput) -> f64 {
    clamp_r(R_DEFAULT - delay_impairment(input.one_way_delay_ms) - effective_equipment_impairment(input))
}

/// Listening quality R (RFC 6035 RLQ; RFC 3611 §4.7.5 MOS-LQ "does not include the effects of delay"):
/// the same rating without the delay impairment.
pub fn r_lq(input: &EModelInput) -> f64 {
    clamp_r(R_DEFAULT - effective_equipment_impairment(input))
}

/// MOS from R, ITU-T G.107 Annex B (eq. B-4): 1 below R 0, 4.5 above R 100, else
/// 1 + 0.035·R + 7·10⁻⁶·R·(R − 60)·(100 − R).
///
/// The polynomial dips to 0.988 for 0 < R < 6.5; it is floored at 1, the bottom of the MOS scale, which
/// also keeps MOS non-decreasing in R.
pub fn mos_from_r(r: f64) -> f64 {
    if r.is_nan() || r < 0.0 {
        return 1.0;
    }
    if r > 100.0 {
        return 4.5;
    }
    let mos = 1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r);
    mos.max(1.0)
}

fn clamp_r(r: f64) -> f64 {
    if r.is_nan() {
        return 0.0;
    }
    r.clamp(0.0, 100.0)
}

/// Negative or NaN inputs count as 0 (a missing measurement must not improve the score).
fn non_negative(x: f64) -> f64 {
    if x.is_nan() {
        return 0.0;
    }
    x.max(0.0)
}

/// One quality measurement of a leg, as reported each interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualitySample {
    pub mos: f64,
    pub r: f64,
    pub loss_pct: f64,
    pub jitter_ms: f64,
    /// None when no RTT was measured in the interval (no RTCP from the peer).
    pub rtt_ms: Option<f64>,
    /// Packets expected in the interval: the weight of its loss in the call's loss.
    pub expected: u64,
}

/// A MOS and when it was recorded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MosAt {
    pub mos: f64,
    pub at: Duration,
}

/// Per-leg accumulator of [`QualitySample`]s for the end-of-call summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QualitySummary {
    count: u64,
    mos_sum: f64,
    r_sum: f64,
    loss_sum: f64,
    jitter_sum: f64,
    rtt_sum: f64,
    rtt_count: u64,
    /// Σ loss % × expected and Σ expected, for the call's loss weighted by packets.
    loss_weighted: f64,
    expected: u64,
    min: Option<MosAt>,
    max: Option<MosAt>,
}

impl QualitySummary {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add the sample taken at `at`. On equal MOS the earliest time is kept for the min and the max.
    /// A sample whose MOS is not finite is ignored: it would poison every average.
    pub fn record(&mut self, at: Duration, sample: QualitySample) {
        if !sample.mos.is_finite() {
            return;
        }
        self.count += 1;
        self.mos_sum += sample.mos;
        self.r_sum += sample.r;
        self.loss_sum += sample.loss_pct;
        self.loss_weighted += sample.loss_pct * sample.expected as f64;
        self.expected += sample.expected;
        self.jitter_sum += sample.jitter_ms;
        if let Some(rtt) = sample.rtt_ms {
            self.rtt_sum += rtt;
            self.rtt_count += 1;
        }
        let here = MosAt { mos: sample.mos, at };
        if self.min.is_none_or(|m| sample.mos < m.mos) {
            self.min = Some(here);
        }
        if self.max.is_none_or(|m| sample.mos > m.mos) {
            self.max = Some(here);
        }
    }

    /// Samples recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Lowest MOS and when it was recorded.
    pub fn mos_min(&self) -> Option<MosAt> {
        self.min
    }

    /// Highest MOS and when it was recorded.
    pub fn mos_max(&self) -> Option<MosAt> {
        self.max
    }

    pub fn mos_avg(&self) -> Option<f64> {
        self.average(self.mos_sum)
    }

    pub fn r_avg(&self) -> Option<f64> {
        self.average(self.r_sum)
    }

    /// The call's loss: each interval's weighted by its packets (an interval of a few packets cannot
    /// swing it), or the plain mean when no sample said how many it had.
    pub fn loss_pct_avg(&self) -> Option<f64> {
        if self.expected > 0 {
            return Some(self.loss_weighted / self.expected as f64);
        }
        self.average(self.loss_sum)
    }

    pub fn jitter_ms_avg(&self) -> Option<f64> {
        self.average(self.jitter_sum)
    }

    /// Average RTT over the samples that had one; None if none did.
    pub fn rtt_ms_avg(&self) -> Option<f64> {
        if self.rtt_count == 0 {
            return None;
        }
        Some(self.rtt_sum / self.rtt_count as f64)
    }

    fn average(&self, sum: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        Some(sum / self.count as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const G711_PLC: CodecImpairment = CodecImpairment { ie: 0.0, bpl: 25.1 };

    /// The reference table's inputs: jitter ms stands in for the jitter-buffer delay, no codec delay.
    fn g711_plc(loss_pct: f64, jitter_ms: f64, rtt_ms: f64) -> EModelInput {
        EModelInput::random_loss(loss_pct, one_way_delay_ms(rtt_ms, jitter_ms, 0.0), G711_PLC)
    }

    fn assert_point(loss: f64, jitter: f64, rtt: f64, r_hand: f64, mos_hand: f64) {
        let input = g711_plc(loss, jitter, rtt);
        let r = r_cq(&input);
        let mos = mos_from_r(r);
        assert!((r - r_hand).abs() < 0.01, "({loss}, {jitter}, {rtt}): R {r} vs {r_hand}");
        assert!((mos - mos_hand).abs() < 0.05, "({loss}, {jitter}, {rtt}): MOS {mos} vs {mos_hand}");
    }

    // The five acceptance points, G.711 with PLC (Ie 0, Bpl 25.1), d = RTT/2 + jitter.
    // They match the "textbook simplified E-model" table of the reference notes.

    #[test]
    fn no_loss_no_delay_is_the_g711_maximum() {
        // d = 0: Id = 0; Ppl = 0: Ie,eff = 0. R = 93.2.
        // MOS = 1 + 0.035·93.2 + 7e-6·93.2·33.2·6.8 = 1 + 3.262 + 7e-6·21040.83 = 1 + 3.262 + 0.14729 = 4.4093.
        assert_point(0.0, 0.0, 0.0, 93.2, 4.4093);
        assert!(mos_from_r(r_cq(&g711_plc(0.0, 0.0, 0.0))) > 4.3);
    }

    #[test]
    fn one_percent_loss_20ms_jitter_100ms_rtt() {
        // d = 100/2 + 20 = 70: Id = 0.024·70 = 1.68 (below the 177.3 knee).
        // Ie,eff = 95·1/(1 + 25.1) = 95/26.1 = 3.63985. R = 93.2 − 1.68 − 3.63985 = 87.88015.
        // MOS = 1 + 0.035·87.88015 + 7e-6·87.88015·27.88015·12.11985
        //     = 1 + 3.07581 + 7e-6·(2450.112·12.11985 = 29694.98) = 1 + 3.07581 + 0.20786 = 4.2837.
        assert_point(1.0, 20.0, 100.0, 87.880, 4.2837);
    }

    #[test]
    fn three_percent_loss_15ms_jitter_250ms_rtt() {
        // d = 125 + 15 = 140: Id = 0.024·140 = 3.36.
        // Ie,eff = 95·3/(3 + 25.1) = 285/28.1 = 10.14235. R = 93.2 − 3.36 − 10.14235 = 79.69765.
        // MOS = 1 + 0.035·79.69765 + 7e-6·79.69765·19.69765·20.30235
        //     = 1 + 2.78942 + 7e-6·(1569.857·20.30235 = 31871.79) = 1 + 2.78942 + 0.22310 = 4.0125.
        assert_point(3.0, 15.0, 250.0, 79.698, 4.0125);
    }

    #[test]
    fn five_percent_loss_20ms_jitter_400ms_rtt_is_past_the_delay_knee() {
        // d = 200 + 20 = 220 > 177.3: Id = 0.024·220 + 0.11·(220 − 177.3) = 5.28 + 4.697 = 9.977.
        // Ie,eff = 95·5/(5 + 25.1) = 475/30.1 = 15.78073. R = 93.2 − 9.977 − 15.78073 = 67.44227.
        // MOS = 1 + 0.035·67.44227 + 7e-6·67.44227·7.44227·32.55773
        //     = 1 + 2.36048 + 7e-6·(501.9235·32.55773 = 16341.49) = 1 + 2.36048 + 0.11439 = 3.4749.
        assert_point(5.0, 20.0, 400.0, 67.442, 3.4749);
    }

    #[test]
    fn thirty_percent_loss_is_poor_not_good() {
        // d = 0. Ie,eff = 95·30/(30 + 25.1) = 2850/55.1 = 51.72414. R = 93.2 − 51.72414 = 41.47586.
        // MOS = 1 + 0.035·41.47586 + 7e-6·41.47586·(−18.52414)·58.52414
        //     = 1 + 1.45166 − 7e-6·(768.3046·58.52414 = 44964.37) = 1 + 1.45166 − 0.31475 = 2.1369.
        // rtpengine's parabola gives 4.1 here.
        assert_point(30.0, 0.0, 0.0, 41.476, 2.1369);
        assert!(mos_from_r(r_cq(&g711_plc(30.0, 0.0, 0.0))) < 2.5);
    }

    #[test]
    fn without_plc_loss_hurts_more() {
        // Ie,eff = 95·1/(1 + 4.3) = 17.92453; d = 70, Id = 1.68: R = 93.2 − 1.68 − 17.92453 = 73.59547.
        let input = EModelInput::random_loss(1.0, 70.0, impairment(CodecKind::Pcmu, false));
        assert!((r_cq(&input) - 73.595).abs() < 0.01);
    }

    #[test]
    fn listening_quality_leaves_out_delay() {
        // 3 % loss, d = 140: R-LQ = 93.2 − 10.14235 = 83.05765; R-CQ = 83.05765 − 3.36 = 79.69765.
        let input = g711_plc(3.0, 15.0, 250.0);
        assert!((r_lq(&input) - 83.058).abs() < 0.01);
        assert!((r_cq(&input) - 79.698).abs() < 0.01);
    }

    #[test]
    fn bursty_loss_lowers_r() {
        // BurstR 2 at 5 %: Ie,eff = 95·5/(5/2 + 25.1) = 475/27.6 = 17.21014 > 15.78073 (random).
        let bursty = EModelInput { burst_ratio: 2.0, ..EModelInput::random_loss(5.0, 0.0, G711_PLC) };
        assert!((effective_equipment_impairment(&bursty) - 17.21014).abs() < 1e-4);
        // Mean loss run 3 packets at 10 % loss: 3·0.9 = 2.7. Runs shorter than random: kept at 1.
        assert!((burst_ratio(0.1, 3.0) - 2.7).abs() < 1e-12);
        assert_eq!(burst_ratio(0.1, 1.0), 1.0);
    }

    #[test]
    fn annex_b_mapping_edges() {
        assert_eq!(mos_from_r(-5.0), 1.0);
        assert_eq!(mos_from_r(f64::NAN), 1.0);
        assert_eq!(mos_from_r(120.0), 4.5);
        assert!((mos_from_r(100.0) - 4.5).abs() < 1e-12);
        // The polynomial is 0.9890 at R 3 (1 + 0.105 − 7e-6·3·57·97): floored to 1.
        assert_eq!(mos_from_r(3.0), 1.0);
        // Reference values of G.107 Annex B as tabulated in the notes: 80 → 4.02, 70 → 3.60, 50 → 2.58.
        assert!((mos_from_r(80.0) - 4.024).abs() < 1e-9);
        assert!((mos_from_r(70.0) - 3.597).abs() < 1e-9);
        assert!((mos_from_r(50.0) - 2.575).abs() < 1e-9);
    }

    #[test]
    fn one_way_delay_adds_half_the_rtt() {
        assert_eq!(one_way_delay_ms(100.0, 40.0, 25.0), 115.0);
    }

    #[test]
    fn every_codec_has_an_impairment() {
        for codec in [CodecKind::Pcmu, CodecKind::Pcma, CodecKind::G722, CodecKind::Opus] {
            assert_eq!(impairment(codec, true), CodecImpairment { ie: 0.0, bpl: 25.1 });
            assert_eq!(impairment(codec, false), CodecImpairment { ie: 0.0, bpl: 4.3 });
        }
    }

    #[test]
    fn summary_tracks_min_max_and_averages() {
        let mut s = QualitySummary::new();
        assert_eq!((s.count(), s.mos_avg(), s.mos_min(), s.rtt_ms_avg()), (0, None, None, None));
        let at = Duration::from_secs;
        let sample = |mos, r, loss_pct, jitter_ms, rtt_ms, expected| QualitySample {
            mos,
            r,
            loss_pct,
            jitter_ms,
            rtt_ms,
            expected,
        };
        s.record(at(5), sample(4.0, 80.0, 1.0, 10.0, Some(100.0), 100));
        s.record(at(10), sample(3.0, 60.0, 4.0, 30.0, None, 100));
        s.record(at(15), sample(4.5, 95.0, 0.0, 2.0, Some(50.0), 300));
        // A tie does not move the min's time.
        s.record(at(20), sample(3.0, 61.0, 3.0, 20.0, Some(60.0), 100));
        s.record(at(25), sample(f64::NAN, 0.0, 99.0, 0.0, None, 100));
        assert_eq!(s.count(), 4);
        assert_eq!(s.mos_min(), Some(MosAt { mos: 3.0, at: at(10) }));
        assert_eq!(s.mos_max(), Some(MosAt { mos: 4.5, at: at(15) }));
        // (4 + 3 + 4.5 + 3)/4 = 3.625; R (80 + 60 + 95 + 61)/4 = 74; loss weighted by packets
        // (1 × 100 + 4 × 100 + 0 × 300 + 3 × 100)/600 = 1.333…; jitter 62/4 = 15.5;
        // RTT over the three samples that had one: (100 + 50 + 60)/3 = 70.
        assert_eq!(s.mos_avg(), Some(3.625));
        assert_eq!(s.r_avg(), Some(74.0));
        assert_eq!(s.loss_pct_avg(), Some(800.0 / 600.0));
        assert_eq!(s.jitter_ms_avg(), Some(15.5));
        assert_eq!(s.rtt_ms_avg(), Some(70.0));
    }

    fn any_impairment() -> impl Strategy<Value = CodecImpairment> {
        (prop::sample::select(vec![CodecKind::Pcmu, CodecKind::Pcma, CodecKind::G722, CodecKind::Opus]), any::<bool>())
            .prop_map(|(codec, plc)| impairment(codec, plc))
    }

    /// R and MOS for (loss %, jitter ms as JB delay, RTT ms).
    fn score(imp: CodecImpairment, burst: f64, loss: f64, jitter: f64, rtt: f64) -> (f64, f64) {
        let input = EModelInput {
            loss_pct: loss,
            one_way_delay_ms: one_way_delay_ms(rtt, jitter, 0.0),
            burst_ratio: burst,
            impairment: imp,
        };
        let r = r_cq(&input);
        (r, mos_from_r(r))
    }

    /// Tolerance for rounding in comparisons that must hold exactly in real arithmetic.
    const EPS: f64 = 1e-9;

    proptest! {
        #[test]
        fn monotonic_in_loss_delay_and_jitter(
            imp in any_impairment(),
            burst in 1.0..4.0f64,
            loss in 0.0..100.0f64, more_loss in 0.0..50.0f64,
            jitter in 0.0..500.0f64, more_jitter in 0.0..500.0f64,
            rtt in 0.0..2000.0f64, more_rtt in 0.0..2000.0f64,
        ) {
            let (r, mos) = score(imp, burst, loss, jitter, rtt);
            for (r2, mos2) in [
                score(imp, burst, loss + more_loss, jitter, rtt),
                score(imp, burst, loss, jitter + more_jitter, rtt),
                score(imp, burst, loss, jitter, rtt + more_rtt),
            ] {
                prop_assert!(r2 <= r + EPS, "R rose from {r} to {r2}");
                prop_assert!(mos2 <= mos + EPS, "MOS rose from {mos} to {mos2}");
            }
            prop_assert!((0.0..=100.0).contains(&r));
            prop_assert!((1.0..=4.5).contains(&mos));
        }

        #[test]
        fn mos_always_on_the_scale(r in -1000.0..1000.0f64) {
            let mos = mos_from_r(r);
            prop_assert!((1.0..=4.5).contains(&mos));
        }

        #[test]
        fn mos_non_decreasing_in_r(r in -10.0..110.0f64, dr in 0.0..50.0f64) {
            prop_assert!(mos_from_r(r + dr) + EPS >= mos_from_r(r));
        }
    }
}
