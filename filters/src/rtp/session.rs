//! A leg's RTCP session: when to report (RFC 3550 §6.2, A.7), what the report says (SR or RR, SDES
//! CNAME, XR blocks of RFC 3611), what the peer's reports tell (round trip from LSR/DLSR, §6.4.1, and
//! from RRTR/DLRR, RFC 3611 §4.4–4.5), and the E-model quality of each interval.
//!
//! Pure, like the rest of the crate: `now` (monotonic) and `ntp` (the wall clock as an NTP timestamp)
//! are passed in. The media coordinator drives it:
//!
//! ```text
//! session.receive(now, ntp, bytes)                     each RTCP datagram from the peer
//! if now >= session.next_report() {
//!     let inputs = ReportInputs { .. }                 gathered from the leg's rtp_send and rtp_recv
//!     send(session.report(now, ntp, &inputs))          SR/RR + SDES [+ XR]
//! }
//! send(session.bye(now, ntp, &inputs))                 at the end: a last report and BYE
//! session.summary()                                    counters, quality per interval, last XR both ways
//! ```
//!
//! Quality is measured from our own receive statistics every interval, whether or not the peer sends
//! RTCP: interval loss (RFC 3550 A.3 expected minus received, plus jitter-buffer discards), jitter
//! (A.8), the round trip when the peer's reports give one, and the jitter buffer's delay.

use std::time::Duration;

use crate::rtp::burst_gap::{BurstGapMetrics, Fraction};
use crate::rtp::quality::{self, CodecImpairment, EModelInput, QualitySample, QualitySummary};
use crate::rtp::rtcp::{
    from_compact, to_compact, NtpTimestamp, ReportBlock, RtcpCompound, RtcpError, RtcpPacket, SenderInfo,
};
use crate::rtp::stats::{IntervalSummary, ReceptionReport};
use crate::rtp::xr::{
    DlrrItem, JitterBufferKind, JitterSummary, Plc, RxConfig, StatisticsSummary, VoipMetrics, XrBlock,
    LEVEL_UNAVAILABLE, UNAVAILABLE,
};

/// RFC 3550 §6.2: the recommended minimum interval between reports.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(5);
/// Round trips beyond this are taken as a peer's clock error, not a measurement.
const MAX_RTT: Duration = Duration::from_secs(10);

/// How a leg reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtcpConfig {
    /// RFC 3550 §6.2 Tmin (the first report comes after half of it, randomised).
    pub min_interval: Duration,
    /// Send XR blocks (RFC 3611): the peer's SDP had `a=rtcp-xr`, or configuration says always.
    pub xr: bool,
    /// Our SDES CNAME (RFC 3550 §6.5.1).
    pub cname: String,
    /// Session bandwidth in bit/s, of which RTCP takes 5 % (§6.2).
    pub session_bandwidth: u32,
}

impl RtcpConfig {
    pub fn new(cname: String) -> Self {
        Self { min_interval: DEFAULT_MIN_INTERVAL, xr: false, cname, session_bandwidth: 64_000 }
    }
}

/// Our sending side at report time (from `rtp_send`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInputs {
    pub ssrc: u32,
    /// RTP packets and payload octets sent since the start (RFC 3550 §6.4.1, wrapping at 2^32).
    pub packets: u64,
    pub payload_octets: u64,
    /// The RTP timestamp corresponding to `now` on our timeline.
    pub rtp_timestamp: u32,
}

/// The jitter buffer's figures (RFC 3611 §4.7.7), in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JitterBufferFigures {
    pub nominal_ms: u16,
    pub maximum_ms: u16,
    pub abs_max_ms: u16,
    /// Adaptive (true) or fixed playout delay; relay legs play out at once (fixed, zero).
    pub adaptive: bool,
}

/// Our receiving side at report time (from `rtp_recv`), about the source being played.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReceiverInputs {
    /// RFC 3550 A.3 report figures (taking it starts a new fraction-lost interval).
    pub reception: ReceptionReport,
    /// Packets expected and cumulatively lost since the source started (A.3).
    pub expected: u64,
    pub lost: i64,
    /// Packets dropped by the jitter buffer as late or overflowing (RFC 3611 §4.7.1 discards).
    pub discarded: u64,
    /// BT 6 figures over the packets since the last report.
    pub interval: IntervalSummary,
    /// RFC 3611 Appendix A burst/gap figures.
    pub burst_gap: BurstGapMetrics,
    pub clock_rate: u32,
    pub jitter_buffer: JitterBufferFigures,
    /// Signal and noise level of the decoded audio in dBm0 (RFC 3611 §4.7.4), each when measured.
    pub levels: Option<(Option<i8>, Option<i8>)>,
}

/// Everything a report needs besides the session's own state.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReportInputs {
    pub sender: SenderInputs,
    /// `None` until a source is valid (RFC 3550 A.1 probation).
    pub receiver: Option<ReceiverInputs>,
    /// The received codec's E-model parameters.
    pub impairment: CodecImpairment,
    /// Our packet duration, a part of our end system delay.
    pub packet_ms: u32,
    /// Whether loss is concealed (RFC 3611 §4.7.6 PLC): decoded legs do, relays pass gaps on.
    pub plc: bool,
}

/// RTCP traffic counters (the seed's "RTCP sent/received" lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtcpCounters {
    pub sent_packets: u64,
    pub sent_bytes: u64,
    pub received_packets: u64,
    pub received_bytes: u64,
    /// Datagrams that failed RFC 3550 A.2 validation, ignored.
    pub malformed: u64,
    /// Packets and XR blocks of types we do not use, skipped.
    pub ignored: u64,
}

/// What a session knows at its end.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RtcpSummary {
    pub counters: RtcpCounters,
    pub quality: QualitySummary,
    /// The latest round trip, from either LSR/DLSR or DLRR.
    pub rtt: Option<Duration>,
    /// Our last VoIP metrics about the peer's stream (RFC 6035 LocalMetrics).
    pub local_metrics: Option<VoipMetrics>,
    /// The peer's last VoIP metrics about our stream (RFC 6035 RemoteMetrics).
    pub remote_metrics: Option<VoipMetrics>,
    /// The peer's last report block about our stream.
    pub remote_reception: Option<ReportBlock>,
    /// The peer's SSRC as its RTCP names it, and its CNAME.
    pub remote_ssrc: Option<u32>,
    pub remote_cname: Option<String>,
    pub bye_received: bool,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct RtcpSession {
    config: RtcpConfig,
    rng: fastrand::Rng,
    next_report: Duration,
    /// Average compound size, A.7 `avg_rtcp_size` (octets, with UDP/IP overhead).
    avg_rtcp_size: f64,
    /// Packets sent as of the previous report: a sender is one that sent since then (§6.4).
    sent_at_last_report: u64,
    /// The peer's last SR (NTP middle bits) and when it arrived, for our LSR/DLSR.
    last_sr: Option<(u32, Duration)>,
    /// The peer's last RRTR (RFC 3611 §4.4) and when it arrived, for our DLRR.
    last_rrtr: Option<(u32, Duration)>,
    /// Cumulative receive figures as of the previous report, for interval loss.
    prior: Option<(u64, i64, u64)>,
    summary: RtcpSummary,
}

impl RtcpSession {
    /// `seed` randomises the intervals (§6.2: so that reports from many participants do not align).
    pub fn new(config: RtcpConfig, now: Duration, seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        // §6.2: the first report after half the minimum interval.
        let first = randomised(config.min_interval / 2, rng.f64());
        Self {
            config,
            rng,
            next_report: now + first,
            avg_rtcp_size: 100.0,
            sent_at_last_report: 0,
            last_sr: None,
            last_rrtr: None,
            prior: None,
            summary: RtcpSummary::default(),
        }
    }

    /// When the next report is due.
    pub fn next_report(&self) -> Duration {
        self.next_report
    }

    pub fn set_xr(&mut self, xr: bool) {
        self.config.xr = xr;
    }

    pub fn summary(&self) -> &RtcpSummary {
        &self.summary
    }

    /// The latest round-trip time measured from the peer's reports.
    pub fn rtt(&self) -> Option<Duration> {
        self.summary.rtt
    }

    /// Take one datagram from the peer. Malformed ones are counted and ignored (RFC 3550 A.2).
    pub fn receive(&mut self, now: Duration, ntp: NtpTimestamp, bytes: &[u8], our_ssrc: u32) {
        self.summary.counters.received_packets += 1;
        self.summary.counters.received_bytes += bytes.len() as u64;
        let compound = match RtcpCompound::parse(bytes) {
            Ok(c) => c,
            Err(error) => {
                self.summary.counters.malformed += 1;
                tracing::debug!(%error, len = bytes.len(), "malformed RTCP ignored");
                return;
            }
        };
        self.update_avg_size(bytes.len());
        for packet in compound.packets {
            match packet {
                RtcpPacket::SenderReport { ssrc, sender, reports } => {
                    self.summary.remote_ssrc = Some(ssrc);
                    self.last_sr = Some((sender.ntp.middle(), now));
                    self.take_blocks(ntp, &reports, our_ssrc);
                }
                RtcpPacket::ReceiverReport { ssrc, reports } => {
                    self.summary.remote_ssrc = Some(ssrc);
                    self.take_blocks(ntp, &reports, our_ssrc);
                }
                RtcpPacket::Sdes { chunks } => {
                    if let Some((_, cname)) = chunks.into_iter().next() {
                        self.summary.remote_cname = Some(cname);
                    }
                }
                RtcpPacket::Bye { .. } => self.summary.bye_received = true,
                RtcpPacket::Xr { blocks, .. } => self.take_xr(now, ntp, blocks, our_ssrc),
                RtcpPacket::Other { .. } => self.summary.counters.ignored += 1,
            }
        }
    }

    /// The report due now: SR if we sent since the last one, else RR (§6.4); SDES CNAME; XR when on.
    /// Also samples the interval's quality. Schedules the next report.
    pub fn report(&mut self, now: Duration, ntp: NtpTimestamp, inputs: &ReportInputs) -> Result<Vec<u8>, RtcpError> {
        let compound = self.compound(now, ntp, inputs, false);
        self.finish_report(now, inputs, compound)
    }

    /// A last report and BYE (§6.6), sampling the last (partial) interval.
    pub fn bye(&mut self, now: Duration, ntp: NtpTimestamp, inputs: &ReportInputs) -> Result<Vec<u8>, RtcpError> {
        let compound = self.compound(now, ntp, inputs, true);
        self.finish_report(now, inputs, compound)
    }

    fn finish_report(
        &mut self,
        now: Duration,
        inputs: &ReportInputs,
        compound: RtcpCompound,
    ) -> Result<Vec<u8>, RtcpError> {
        let mut out = Vec::with_capacity(256);
        compound.write(&mut out)?;
        self.summary.counters.sent_packets += 1;
        self.summary.counters.sent_bytes += out.len() as u64;
        self.update_avg_size(out.len());
        self.sent_at_last_report = inputs.sender.packets;
        let t = self.interval(inputs);
        self.next_report = now + randomised(t, self.rng.f64());
        Ok(out)
    }

    fn compound(&mut self, now: Duration, ntp: NtpTimestamp, inputs: &ReportInputs, bye: bool) -> RtcpCompound {
        let ssrc = inputs.sender.ssrc;
        let mut packets = Vec::with_capacity(4);
        let blocks: Vec<ReportBlock> = inputs
            .receiver
            .as_ref()
            .map(|r| {
                let (last_sr, delay) = match self.last_sr {
                    Some((lsr, at)) => (lsr, to_compact(now.saturating_sub(at))),
                    None => (0, 0),
                };
                ReportBlock { reception: r.reception, last_sr, delay_since_last_sr: delay }
            })
            .into_iter()
            .collect();
        if inputs.sender.packets > self.sent_at_last_report {
            let sender = SenderInfo {
                ntp,
                rtp_timestamp: inputs.sender.rtp_timestamp,
                // §6.4.1: the counts wrap at 32 bits.
                packet_count: inputs.sender.packets as u32,
                octet_count: inputs.sender.payload_octets as u32,
            };
            packets.push(RtcpPacket::SenderReport { ssrc, sender, reports: blocks });
        } else {
            packets.push(RtcpPacket::ReceiverReport { ssrc, reports: blocks });
        }
        packets.push(RtcpPacket::Sdes { chunks: vec![(ssrc, self.config.cname.clone())] });
        let metrics = inputs.receiver.as_ref().map(|r| self.sample(now, inputs, r));
        if self.config.xr {
            let mut xr = vec![XrBlock::ReceiverReferenceTime { ntp }];
            if let Some((lrr, at)) = self.last_rrtr {
                let item = DlrrItem {
                    ssrc: self.summary.remote_ssrc.unwrap_or(0),
                    last_rr: lrr,
                    delay_since_last_rr: to_compact(now.saturating_sub(at)),
                };
                xr.push(XrBlock::Dlrr(vec![item]));
            }
            if let (Some(r), Some(m)) = (inputs.receiver.as_ref(), metrics) {
                xr.push(XrBlock::StatisticsSummary(statistics_summary(r)));
                xr.push(XrBlock::VoipMetrics(m));
            }
            packets.push(RtcpPacket::Xr { ssrc, blocks: xr });
        }
        if bye {
            packets.push(RtcpPacket::Bye { ssrcs: vec![ssrc], reason: None });
        }
        RtcpCompound { packets }
    }

    /// Measure the interval since the last report and record it; the VoIP metrics that say so.
    fn sample(&mut self, now: Duration, inputs: &ReportInputs, r: &ReceiverInputs) -> VoipMetrics {
        let (expected0, lost0, discarded0) = self.prior.unwrap_or((0, 0, 0));
        self.prior = Some((r.expected, r.lost, r.discarded));
        let expected = r.expected.saturating_sub(expected0);
        let lost = (r.lost - lost0).max(0) as u64;
        let discarded = r.discarded.saturating_sub(discarded0);
        // Ppl of the E-model: what the listener did not hear, lost or too late (RFC 3611 §4.7.1).
        let loss_pct =
            if expected == 0 { 0.0 } else { 100.0 * (lost + discarded).min(expected) as f64 / expected as f64 };
        let jitter_ms = f64::from(r.reception.jitter) * 1000.0 / f64::from(r.clock_rate.max(1));
        let rtt_ms = self.summary.rtt.map(|d| d.as_secs_f64() * 1000.0);
        let end_system_ms = f64::from(r.jitter_buffer.nominal_ms) + f64::from(inputs.packet_ms);
        let delay = quality::one_way_delay_ms(rtt_ms.unwrap_or(0.0), end_system_ms, 0.0);
        let input = EModelInput::random_loss(loss_pct, delay, inputs.impairment);
        let (r_lq, r_cq) = (quality::r_lq(&input), quality::r_cq(&input));
        let (mos_lq, mos_cq) = (quality::mos_from_r(r_lq), quality::mos_from_r(r_cq));
        if expected > 0 {
            self.summary
                .quality
                .record(now, QualitySample { mos: mos_cq, r: r_cq, loss_pct, jitter_ms, rtt_ms, expected });
        }
        let rx_config = RxConfig {
            // Not decoded here (relayed or not played): whoever plays it conceals, we cannot say how.
            plc: if inputs.plc { Plc::Standard } else { Plc::Unspecified },
            jitter_buffer: if r.jitter_buffer.adaptive {
                JitterBufferKind::Adaptive
            } else {
                JitterBufferKind::NonAdaptive
            },
            jb_rate: 0,
        };
        let (signal, noise) = r.levels.unwrap_or((None, None));
        let (signal, noise) = (signal.unwrap_or(LEVEL_UNAVAILABLE), noise.unwrap_or(LEVEL_UNAVAILABLE));
        // RFC 3611 §4.7.1: fractions of the packets expected since reception began, in 1/256.
        let rate = |n: u64| Fraction::of(n, r.expected).wire;
        let metrics = VoipMetrics {
            ssrc: r.reception.ssrc,
            loss_rate: rate(r.lost.max(0) as u64),
            discard_rate: rate(r.discarded),
            burst_density: r.burst_gap.burst_density.wire,
            gap_density: r.burst_gap.gap_density.wire,
            burst_duration: r.burst_gap.burst_duration_ms,
            gap_duration: r.burst_gap.gap_duration_ms,
            round_trip_delay: self.summary.rtt.map_or(0, |d| d.as_millis().min(u128::from(u16::MAX)) as u16),
            end_system_delay: end_system_ms.round().min(f64::from(u16::MAX)) as u16,
            signal_level: signal,
            noise_level: noise,
            rerl: UNAVAILABLE,
            gmin: r.burst_gap.gmin,
            r_factor: r_cq.round() as u8,
            ext_r_factor: UNAVAILABLE,
            mos_lq: (mos_lq * 10.0).round() as u8,
            mos_cq: (mos_cq * 10.0).round() as u8,
            rx_config,
            jb_nominal: r.jitter_buffer.nominal_ms,
            jb_maximum: r.jitter_buffer.maximum_ms,
            jb_abs_max: r.jitter_buffer.abs_max_ms,
        };
        self.summary.local_metrics = Some(metrics);
        metrics
    }

    /// Report blocks about our stream: the peer's view of it, and the round trip (§6.4.1).
    fn take_blocks(&mut self, ntp: NtpTimestamp, blocks: &[ReportBlock], our_ssrc: u32) {
        let Some(block) = blocks.iter().find(|b| b.reception.ssrc == our_ssrc) else {
            self.summary.counters.ignored += u64::from(!blocks.is_empty());
            return;
        };
        self.summary.remote_reception = Some(*block);
        // LSR 0: the peer has had no SR from us yet, so there is no round trip to measure.
        if block.last_sr != 0 {
            self.round_trip(ntp, block.last_sr, block.delay_since_last_sr);
        }
    }

    fn take_xr(&mut self, now: Duration, ntp: NtpTimestamp, blocks: Vec<XrBlock>, our_ssrc: u32) {
        for block in blocks {
            match block {
                XrBlock::ReceiverReferenceTime { ntp: theirs } => self.last_rrtr = Some((theirs.middle(), now)),
                XrBlock::Dlrr(items) => {
                    // RFC 3611 §4.5: the item for our SSRC answers our RRTR.
                    if let Some(item) = items.iter().find(|i| i.ssrc == our_ssrc && i.last_rr != 0) {
                        self.round_trip(ntp, item.last_rr, item.delay_since_last_rr);
                    }
                }
                XrBlock::VoipMetrics(m) if m.ssrc == our_ssrc => self.summary.remote_metrics = Some(m),
                XrBlock::VoipMetrics(_) | XrBlock::StatisticsSummary(_) => {}
                XrBlock::Ignored { .. } => self.summary.counters.ignored += 1,
            }
        }
    }

    /// RFC 3550 §6.4.1: RTT = A − LSR − DLSR, all in 1/65536 s (the middle 32 bits of NTP time).
    fn round_trip(&mut self, ntp: NtpTimestamp, last: u32, delay: u32) {
        let rtt = ntp.middle().wrapping_sub(last).wrapping_sub(delay);
        // A "negative" round trip (clock steps, bogus DLSR) wraps to a huge value: discarded.
        let rtt = from_compact(rtt);
        if rtt <= MAX_RTT {
            self.summary.rtt = Some(rtt);
        }
    }

    /// A.7 `avg_rtcp_size`: a moving average of compound sizes with 28 octets of UDP/IPv4 header.
    fn update_avg_size(&mut self, len: usize) {
        self.avg_rtcp_size = (len as f64 + 28.0) / 16.0 + self.avg_rtcp_size * 15.0 / 16.0;
    }

    /// The deterministic interval of RFC 3550 §6.3.1/A.7 for a two-party session.
    fn interval(&self, inputs: &ReportInputs) -> Duration {
        let we_sent = inputs.sender.packets > self.sent_at_last_report;
        let peer_sends = inputs.receiver.is_some();
        let senders = u32::from(we_sent) + u32::from(peer_sends);
        let rtcp_bw = f64::from(self.config.session_bandwidth) / 8.0 * 0.05;
        rtcp_interval(2, senders, rtcp_bw, we_sent, self.avg_rtcp_size, self.config.min_interval)
    }
}

/// RFC 3550 A.7 `rtcp_interval` without its randomisation: `members` and `senders` in the session,
/// `rtcp_bw` in octets/s, `avg_rtcp_size` in octets, `min` the Tmin (already halved for the first
/// report by the caller).
pub fn rtcp_interval(
    members: u32,
    senders: u32,
    rtcp_bw: f64,
    we_sent: bool,
    avg_rtcp_size: f64,
    min: Duration,
) -> Duration {
    // A.7: senders get a quarter of the RTCP bandwidth when they are at most a quarter of members.
    const SENDER_FRACTION: f64 = 0.25;
    let mut n = f64::from(members.max(1));
    let mut bw = rtcp_bw;
    let senders = f64::from(senders);
    if senders <= n * SENDER_FRACTION {
        if we_sent {
            bw *= SENDER_FRACTION;
            n = senders;
        } else {
            bw *= 1.0 - SENDER_FRACTION;
            n -= senders;
        }
    }
    let t = if bw > 0.0 { avg_rtcp_size * n / bw } else { f64::INFINITY };
    Duration::from_secs_f64(t.max(min.as_secs_f64()).min(3600.0))
}

/// A.7: T × [0.5, 1.5), divided by e − 3/2 to compensate for timer reconsideration. `r` in [0, 1).
pub fn randomised(t: Duration, r: f64) -> Duration {
    const COMPENSATION: f64 = std::f64::consts::E - 1.5;
    t.mul_f64((r + 0.5) / COMPENSATION)
}

/// BT 6 from the interval's figures: loss, duplicates and jitter flagged, no TTL (we do not read it).
fn statistics_summary(r: &ReceiverInputs) -> StatisticsSummary {
    let i = &r.interval;
    StatisticsSummary {
        ssrc: r.reception.ssrc,
        begin_seq: i.begin_seq,
        end_seq: i.end_seq,
        lost_packets: Some(i.lost),
        dup_packets: Some(i.duplicates),
        jitter: Some(JitterSummary { min: i.jitter_min, max: i.jitter_max, mean: i.jitter_mean, dev: i.jitter_dev }),
        ttl: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::CodecKind;
    use crate::rtp::burst_gap::BurstGapCounter;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Wall clock of `now` for a side: both sides share it, as NTP-synchronised hosts would.
    fn ntp(now: Duration) -> NtpTimestamp {
        NtpTimestamp::from_unix(Duration::from_secs(1_790_000_000) + now)
    }

    fn config(xr: bool) -> RtcpConfig {
        RtcpConfig { xr, ..RtcpConfig::new("test@rms".into()) }
    }

    fn sender(ssrc: u32, packets: u64) -> SenderInputs {
        SenderInputs { ssrc, packets, payload_octets: packets * 160, rtp_timestamp: 1234 }
    }

    fn inputs(sender: SenderInputs, receiver: Option<ReceiverInputs>) -> ReportInputs {
        ReportInputs {
            sender,
            receiver,
            impairment: quality::impairment(CodecKind::Pcmu, true),
            packet_ms: 20,
            plc: true,
        }
    }

    /// A receiver that has heard `expected` packets of `ssrc`, `lost` of them lost.
    fn heard(ssrc: u32, expected: u64, lost: i64) -> ReceiverInputs {
        ReceiverInputs {
            reception: ReceptionReport {
                ssrc,
                fraction_lost: 0,
                cumulative_lost: lost as i32,
                extended_highest_seq: 99,
                jitter: 0,
            },
            expected,
            lost,
            discarded: 0,
            interval: IntervalSummary::default(),
            burst_gap: BurstGapCounter::new().metrics(20.0),
            clock_rate: 8000,
            jitter_buffer: JitterBufferFigures { nominal_ms: 40, maximum_ms: 200, abs_max_ms: 200, adaptive: true },
            levels: None,
        }
    }

    fn packets(bytes: &[u8]) -> Vec<RtcpPacket> {
        RtcpCompound::parse(bytes).expect("our report parses").packets
    }

    /// RFC 3550 §6.4.1: A sends an SR; B answers in its RR with LSR = the SR's middle NTP bits and DLSR =
    /// how long B held it; A's round trip = arrival − LSR − DLSR, the two 30 ms flights, to within one
    /// 1/65536 s unit of the compact format.
    #[test]
    fn round_trip_from_lsr_and_dlsr_is_both_flights() {
        let (a_ssrc, b_ssrc) = (0xaaaa, 0xbbbb);
        let mut a = RtcpSession::new(config(false), ms(0), 1);
        let mut b = RtcpSession::new(config(false), ms(0), 2);
        let t0 = ms(1000);
        let sr = a.report(t0, ntp(t0), &inputs(sender(a_ssrc, 50), Some(heard(b_ssrc, 50, 0)))).unwrap();
        assert!(matches!(packets(&sr)[0], RtcpPacket::SenderReport { ssrc: 0xaaaa, .. }), "A sent RTP: an SR");
        let arrive_b = t0 + ms(30);
        b.receive(arrive_b, ntp(arrive_b), &sr, b_ssrc);
        // B reports 700 ms later; it sent nothing, so an RR.
        let t1 = arrive_b + ms(700);
        let rr = b.report(t1, ntp(t1), &inputs(sender(b_ssrc, 0), Some(heard(a_ssrc, 50, 0)))).unwrap();
        let RtcpPacket::ReceiverReport { reports, .. } = &packets(&rr)[0] else { panic!("B sent no RTP: an RR") };
        assert_eq!(reports[0].last_sr, ntp(t0).middle());
        assert_eq!(reports[0].delay_since_last_sr, 700 * 65536 / 1000);
        let arrive_a = t1 + ms(30);
        a.receive(arrive_a, ntp(arrive_a), &rr, a_ssrc);
        let rtt = a.rtt().expect("a round trip");
        assert!(rtt.abs_diff(ms(60)) <= Duration::from_micros(31), "{rtt:?}");
        assert_eq!(a.summary().remote_ssrc, Some(b_ssrc));
        assert_eq!(a.summary().remote_cname.as_deref(), Some("test@rms"));
    }

    /// RFC 3611 §4.4–4.5: a receiver-only side gets its round trip from its RRTR answered by a DLRR.
    #[test]
    fn round_trip_from_rrtr_and_dlrr_without_any_sr() {
        let (a_ssrc, b_ssrc) = (0xaaaa, 0xbbbb);
        let mut a = RtcpSession::new(config(true), ms(0), 1);
        let mut b = RtcpSession::new(config(true), ms(0), 2);
        let t0 = ms(1000);
        let rr = a.report(t0, ntp(t0), &inputs(sender(a_ssrc, 0), Some(heard(b_ssrc, 50, 0)))).unwrap();
        b.receive(t0 + ms(45), ntp(t0 + ms(45)), &rr, b_ssrc);
        let t1 = t0 + ms(545);
        let reply = b.report(t1, ntp(t1), &inputs(sender(b_ssrc, 0), Some(heard(a_ssrc, 50, 0)))).unwrap();
        let dlrr = packets(&reply).into_iter().find_map(|p| match p {
            RtcpPacket::Xr { blocks, .. } => blocks.into_iter().find_map(|b| match b {
                XrBlock::Dlrr(items) => Some(items),
                _ => None,
            }),
            _ => None,
        });
        let item = dlrr.expect("a DLRR")[0];
        assert_eq!((item.ssrc, item.last_rr, item.delay_since_last_rr), (a_ssrc, ntp(t0).middle(), 500 * 65536 / 1000));
        a.receive(t1 + ms(45), ntp(t1 + ms(45)), &reply, a_ssrc);
        assert!(a.rtt().expect("a round trip").abs_diff(ms(90)) <= Duration::from_micros(31));
    }

    /// Malformed datagrams are counted and change nothing; a round trip beyond 10 s is a clock error.
    #[test]
    fn malformed_rtcp_is_counted_and_bogus_round_trips_are_ignored() {
        let mut a = RtcpSession::new(config(false), ms(0), 1);
        for bad in [&[][..], &[0x80, 201, 0, 7, 1, 2][..], &[0x40, 200, 0, 1, 0, 0, 0, 0][..]] {
            a.receive(ms(10), ntp(ms(10)), bad, 1);
        }
        let c = a.summary().counters;
        assert_eq!((c.received_packets, c.malformed), (3, 3));
        // An RR about us whose LSR/DLSR put our SR in the future: the wrapped difference is huge.
        let block = ReportBlock {
            reception: ReceptionReport { ssrc: 1, ..ReceptionReport::default() },
            last_sr: ntp(ms(5000)).middle(),
            delay_since_last_sr: 0,
        };
        let mut rr = Vec::new();
        RtcpCompound { packets: vec![RtcpPacket::ReceiverReport { ssrc: 2, reports: vec![block] }] }
            .write(&mut rr)
            .unwrap();
        a.receive(ms(20), ntp(ms(20)), &rr, 1);
        assert_eq!(a.rtt(), None);
        assert_eq!(a.summary().remote_reception, Some(block));
    }

    /// RFC 3550 A.7: Tmin once the bandwidth share allows more often; the first report after half of
    /// it; the randomisation spreads T over [0.5, 1.5) × T / (e − 3/2).
    #[test]
    fn intervals_follow_a7() {
        // 64 kbit/s, RTCP 5 % = 400 octets/s, two members each 100 octets: 0.5 s, raised to Tmin.
        assert_eq!(rtcp_interval(2, 2, 400.0, true, 100.0, Duration::from_secs(5)), Duration::from_secs(5));
        // At 8 kbit/s (50 octets/s) and 200-octet compounds: 2 × 200 / 50 = 8 s, above Tmin.
        assert_eq!(rtcp_interval(2, 2, 50.0, true, 200.0, Duration::from_secs(5)), Duration::from_secs(8));
        // One sender of 8 members: senders share a quarter of the bandwidth among themselves.
        assert_eq!(rtcp_interval(8, 1, 400.0, true, 100.0, Duration::ZERO), Duration::from_secs(1));
        let t = Duration::from_secs(5);
        let comp = std::f64::consts::E - 1.5;
        assert!((randomised(t, 0.0).as_secs_f64() - 2.5 / comp).abs() < 1e-9);
        assert!((randomised(t, 1.0).as_secs_f64() - 7.5 / comp).abs() < 1e-9);
        let s = RtcpSession::new(config(false), ms(0), 9);
        let first = s.next_report().as_secs_f64();
        assert!((1.25 / comp..3.75 / comp).contains(&first), "{first}");
    }

    /// An interval's E-model sample uses its own loss, not the cumulative: 2 of 100, then 0 of 100.
    #[test]
    fn each_interval_is_sampled_from_its_own_figures() {
        let mut a = RtcpSession::new(config(false), ms(0), 1);
        a.report(ms(5000), ntp(ms(5000)), &inputs(sender(1, 0), Some(heard(2, 100, 2)))).unwrap();
        a.report(ms(10000), ntp(ms(10000)), &inputs(sender(1, 0), Some(heard(2, 200, 2)))).unwrap();
        let q = &a.summary().quality;
        assert_eq!(q.count(), 2);
        assert!((q.loss_pct_avg().unwrap() - 1.0).abs() < 1e-9);
        // The lossless interval scores the G.711 maximum (R 93.2 less the 60 ms end-system delay's Id
        // 0.024 × 60 = 1.44: R 91.76 → MOS 4.39); the lossy one less.
        let max = q.mos_max().unwrap();
        assert_eq!(max.at, ms(10000));
        assert!((max.mos - quality::mos_from_r(93.2 - 0.024 * 60.0)).abs() < 1e-9);
        assert!(q.mos_min().unwrap().mos < max.mos);
    }
}
