//! RTCP Extended Report blocks (RFC 3611): Receiver Reference Time (BT 4), DLRR (BT 5), Statistics
//! Summary (BT 6) and VoIP Metrics (BT 7). The XR packet around them is in [`crate::rtp::rtcp`].
//!
//! rtcp-types writes BT 4 and BT 5 and parses BT 4; BT 6 and BT 7 are ours, built on its public
//! `XrBlockBuilder` trait. We frame and parse BT 5 by hand: rtcp-types 0.3 rejects a DLRR block unless its
//! length is a multiple of 16 bytes (so one with two sub-blocks fails), and its sub-block iterator runs on
//! past the block into the blocks that follow it.

use rtcp_types::prelude::*;
use rtcp_types::{
    DelaySinceLastReceiverReport, DelaySinceLastReceiverReportBlock, ReceiverReferenceTime, RtcpWriteError,
};

use crate::rtp::rtcp::NtpTimestamp;

/// RFC 3611 §4.4: Receiver Reference Time Report Block.
pub const BT_RECEIVER_REFERENCE_TIME: u8 = 4;
/// RFC 3611 §4.5: DLRR Report Block.
pub const BT_DLRR: u8 = 5;
/// RFC 3611 §4.6: Statistics Summary Report Block.
pub const BT_STATISTICS_SUMMARY: u8 = 6;
/// RFC 3611 §4.7: VoIP Metrics Report Block.
pub const BT_VOIP_METRICS: u8 = 7;

/// RFC 3611 §4.7.5: signal level and noise level value meaning "unavailable".
pub const LEVEL_UNAVAILABLE: i8 = 127;
/// RFC 3611 §4.7.5–4.7.6: RERL, R factor, ext. R factor, MOS-LQ and MOS-CQ value meaning "unavailable".
pub const UNAVAILABLE: u8 = 127;

/// Block lengths in 32-bit words minus one, as the block header carries them (RFC 3611 §3).
const RRT_WORDS: u16 = 2; // §4.4
const DLRR_ITEM_WORDS: u16 = 3; // §4.5
const STATS_WORDS: u16 = 9; // §4.6
const VOIP_WORDS: u16 = 8; // §4.7

/// One report block of an XR packet (RFC 3611 §3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XrBlock {
    /// BT 4 (RFC 3611 §4.4): the sender's wallclock, so that non-senders get round-trip times.
    ReceiverReferenceTime { ntp: NtpTimestamp },
    /// BT 5 (RFC 3611 §4.5): one sub-block per receiver whose BT 4 we answer.
    Dlrr(Vec<DlrrItem>),
    /// BT 6 (RFC 3611 §4.6).
    StatisticsSummary(StatisticsSummary),
    /// BT 7 (RFC 3611 §4.7).
    VoipMetrics(VoipMetrics),
    /// A block of another type (or one RFC 3611 says to ignore, e.g. BT 6 with a value in an unflagged field),
    /// skipped by its length. Blocks of types 4–7 whose length is not the one their section fixes land here
    /// too. Written back as a one-word block of zeroes, which parses as `Ignored` again for every type.
    Ignored { block_type: u8 },
}

/// A DLRR sub-block (RFC 3611 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DlrrItem {
    /// The receiver that sent the BT 4 block.
    pub ssrc: u32,
    /// LRR: the middle 32 bits of that block's NTP timestamp ([`NtpTimestamp::middle`]).
    pub last_rr: u32,
    /// DLRR: delay since that block arrived, in 1/65536 s ([`crate::rtp::rtcp::to_compact`]).
    pub delay_since_last_rr: u32,
}

/// Statistics Summary (RFC 3611 §4.6) about packets `begin_seq..end_seq` of `ssrc`. `None` is a field
/// flagged as not reported (L, D, J, ToH); it is written as zeroes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatisticsSummary {
    pub ssrc: u32,
    pub begin_seq: u16,
    /// Exclusive (RFC 3611 §4.1).
    pub end_seq: u16,
    pub lost_packets: Option<u32>,
    pub dup_packets: Option<u32>,
    pub jitter: Option<JitterSummary>,
    pub ttl: Option<TtlSummary>,
}

/// Jitter figures of a Statistics Summary, in timestamp units (RFC 3611 §4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JitterSummary {
    pub min: u32,
    pub max: u32,
    pub mean: u32,
    pub dev: u32,
}

/// TTL (IPv4, ToH = 1) or Hop Limit (IPv6, ToH = 2) figures of a Statistics Summary (RFC 3611 §4.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TtlSummary {
    pub ipv6_hop_limit: bool,
    pub min: u8,
    pub max: u8,
    pub mean: u8,
    pub dev: u8,
}

/// BT 7, raw wire values (RFC 3611 §4.7): rates/densities in 1/256, durations and delays in ms, levels in
/// dBm (127 = unavailable) etc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VoipMetrics {
    pub ssrc: u32,
    /// §4.7.1: fraction of packets lost, in 1/256.
    pub loss_rate: u8,
    /// §4.7.1: fraction of packets discarded (late or early), in 1/256.
    pub discard_rate: u8,
    /// §4.7.2: fraction lost or discarded within bursts, in 1/256.
    pub burst_density: u8,
    /// §4.7.2: fraction lost or discarded within gaps, in 1/256.
    pub gap_density: u8,
    /// §4.7.2: mean burst duration, ms.
    pub burst_duration: u16,
    /// §4.7.2: mean gap duration, ms.
    pub gap_duration: u16,
    /// §4.7.3: the most recent RTCP round-trip time, ms.
    pub round_trip_delay: u16,
    /// §4.7.3: end-system delay, ms.
    pub end_system_delay: u16,
    /// §4.7.4: dBm0, [`LEVEL_UNAVAILABLE`] if unknown.
    pub signal_level: i8,
    /// §4.7.4: dBm0, [`LEVEL_UNAVAILABLE`] if unknown.
    pub noise_level: i8,
    /// §4.7.4: residual echo return loss, dB, [`UNAVAILABLE`] if unknown.
    pub rerl: u8,
    /// §4.7.2: gap threshold, [`crate::rtp::burst_gap::DEFAULT_GMIN`] recommended.
    pub gmin: u8,
    /// §4.7.5: 0–100, [`UNAVAILABLE`] if unknown.
    pub r_factor: u8,
    /// §4.7.5: external R factor, [`UNAVAILABLE`] if unknown.
    pub ext_r_factor: u8,
    /// §4.7.5: MOS x10 (10–50), [`UNAVAILABLE`] if unknown.
    pub mos_lq: u8,
    /// §4.7.5: MOS x10 (10–50), [`UNAVAILABLE`] if unknown.
    pub mos_cq: u8,
    pub rx_config: RxConfig,
    /// §4.7.7: jitter buffer nominal delay, ms.
    pub jb_nominal: u16,
    /// §4.7.7: jitter buffer maximum delay, ms.
    pub jb_maximum: u16,
    /// §4.7.7: jitter buffer absolute maximum delay, ms.
    pub jb_abs_max: u16,
}

/// RFC 3611 §4.7.6 receiver configuration byte: PLC (2 bits), JBA (2 bits), JB rate (4 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RxConfig {
    pub plc: Plc,
    pub jitter_buffer: JitterBufferKind,
    /// 0–15 (4 bits); writing a larger value is an error.
    pub jb_rate: u8,
}

/// RFC 3611 §4.7.6 PLC: packet loss concealment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Plc {
    /// 00
    #[default]
    Unspecified,
    /// 01
    Disabled,
    /// 10
    Enhanced,
    /// 11
    Standard,
}

/// RFC 3611 §4.7.6 JBA: jitter buffer adaptive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JitterBufferKind {
    /// 00
    #[default]
    Unknown,
    /// 01
    Reserved,
    /// 10
    NonAdaptive,
    /// 11
    Adaptive,
}

/// An XR block whose length runs past the end of its packet (RFC 3611 §3): the packet is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockOverrun {
    /// Offset of the block's header in the XR packet's report-block area.
    pub(crate) at: usize,
    pub(crate) block_type: u8,
}

/// A value that does not fit its wire field, found while writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OutOfRange {
    pub(crate) field: &'static str,
    pub(crate) value: u32,
}

/// Parse the report blocks of an XR packet (everything after its SSRC, padding removed).
///
/// Our own framing rather than rtcp-types' `XrBlockIter`: that one stops silently at a block whose
/// length overruns, so a malformed packet would look like a short valid one.
pub(crate) fn parse_blocks(mut area: &[u8]) -> Result<Vec<XrBlock>, BlockOverrun> {
    let mut blocks = Vec::new();
    let mut at = 0;
    while !area.is_empty() {
        let block_type = area[0];
        let Some(&[_, _, hi, lo]) = area.get(..4) else { return Err(BlockOverrun { at, block_type }) };
        let words = u16::from_be_bytes([hi, lo]);
        let len = 4 * (usize::from(words) + 1);
        let Some(block) = area.get(..len) else { return Err(BlockOverrun { at, block_type }) };
        blocks.push(parse_block(block, words));
        area = &area[len..];
        at += len;
    }
    Ok(blocks)
}

/// One whole block (header included) whose header says `words`.
fn parse_block(block: &[u8], words: u16) -> XrBlock {
    let block_type = block[0];
    let ignored = XrBlock::Ignored { block_type };
    match block_type {
        BT_RECEIVER_REFERENCE_TIME if words == RRT_WORDS => match ReceiverReferenceTime::parse(block) {
            Ok(rrt) => XrBlock::ReceiverReferenceTime { ntp: NtpTimestamp(rrt.ntp_timestamp()) },
            Err(_) => ignored,
        },
        BT_DLRR if words.is_multiple_of(DLRR_ITEM_WORDS) => XrBlock::Dlrr(
            block[4..]
                .chunks_exact(12)
                .map(|item| DlrrItem {
                    ssrc: be32(&item[0..4]),
                    last_rr: be32(&item[4..8]),
                    delay_since_last_rr: be32(&item[8..12]),
                })
                .collect(),
        ),
        BT_STATISTICS_SUMMARY if words == STATS_WORDS => parse_statistics_summary(block).unwrap_or(ignored),
        BT_VOIP_METRICS if words == VOIP_WORDS => XrBlock::VoipMetrics(parse_voip_metrics(block)),
        _ => ignored,
    }
}

/// RFC 3611 §4.6. `None` when the block must be ignored: a value in a field flagged as unreported, or
/// ToH = 3 ("undefined and MUST NOT be used").
fn parse_statistics_summary(b: &[u8]) -> Option<XrBlock> {
    let flags = b[1];
    let (loss, dup, jitter, toh) = (flags & 0x80 != 0, flags & 0x40 != 0, flags & 0x20 != 0, (flags >> 3) & 0x03);
    if toh == 3 {
        return None;
    }
    let lost = be32(&b[12..16]);
    let dups = be32(&b[16..20]);
    let jitters = &b[20..36];
    let ttls = &b[36..40];
    let unflagged_value = (!loss && lost != 0)
        || (!dup && dups != 0)
        || (!jitter && jitters.iter().any(|&x| x != 0))
        || (toh == 0 && ttls.iter().any(|&x| x != 0));
    if unflagged_value {
        return None;
    }
    Some(XrBlock::StatisticsSummary(StatisticsSummary {
        ssrc: be32(&b[4..8]),
        begin_seq: be16(&b[8..10]),
        end_seq: be16(&b[10..12]),
        lost_packets: loss.then_some(lost),
        dup_packets: dup.then_some(dups),
        jitter: jitter.then(|| JitterSummary {
            min: be32(&jitters[0..4]),
            max: be32(&jitters[4..8]),
            mean: be32(&jitters[8..12]),
            dev: be32(&jitters[12..16]),
        }),
        ttl: (toh != 0).then(|| TtlSummary {
            ipv6_hop_limit: toh == 2,
            min: ttls[0],
            max: ttls[1],
            mean: ttls[2],
            dev: ttls[3],
        }),
    }))
}

/// RFC 3611 §4.7; the two reserved bytes are ignored as the RFC asks.
fn parse_voip_metrics(b: &[u8]) -> VoipMetrics {
    VoipMetrics {
        ssrc: be32(&b[4..8]),
        loss_rate: b[8],
        discard_rate: b[9],
        burst_density: b[10],
        gap_density: b[11],
        burst_duration: be16(&b[12..14]),
        gap_duration: be16(&b[14..16]),
        round_trip_delay: be16(&b[16..18]),
        end_system_delay: be16(&b[18..20]),
        signal_level: b[20] as i8,
        noise_level: b[21] as i8,
        rerl: b[22],
        gmin: b[23],
        r_factor: b[24],
        ext_r_factor: b[25],
        mos_lq: b[26],
        mos_cq: b[27],
        rx_config: RxConfig::from_byte(b[28]),
        jb_nominal: be16(&b[30..32]),
        jb_maximum: be16(&b[32..34]),
        jb_abs_max: be16(&b[34..36]),
    }
}

impl RxConfig {
    /// RFC 3611 §4.7.6: PLC in bits 7–6, JBA in bits 5–4, JB rate in bits 3–0.
    pub fn from_byte(b: u8) -> Self {
        let plc = match b >> 6 {
            0 => Plc::Unspecified,
            1 => Plc::Disabled,
            2 => Plc::Enhanced,
            _ => Plc::Standard,
        };
        let jitter_buffer = match (b >> 4) & 0x03 {
            0 => JitterBufferKind::Unknown,
            1 => JitterBufferKind::Reserved,
            2 => JitterBufferKind::NonAdaptive,
            _ => JitterBufferKind::Adaptive,
        };
        Self { plc, jitter_buffer, jb_rate: b & 0x0f }
    }

    /// The wire byte; `None` if `jb_rate` does not fit its 4 bits.
    pub fn to_byte(self) -> Option<u8> {
        if self.jb_rate > 0x0f {
            return None;
        }
        let plc = match self.plc {
            Plc::Unspecified => 0,
            Plc::Disabled => 1,
            Plc::Enhanced => 2,
            Plc::Standard => 3,
        };
        let jba = match self.jitter_buffer {
            JitterBufferKind::Unknown => 0,
            JitterBufferKind::Reserved => 1,
            JitterBufferKind::NonAdaptive => 2,
            JitterBufferKind::Adaptive => 3,
        };
        Some(plc << 6 | jba << 4 | self.jb_rate)
    }
}

/// Add `block` to an rtcp-types XR packet builder.
pub(crate) fn add_block(xr: rtcp_types::XrBuilder, block: &XrBlock) -> Result<rtcp_types::XrBuilder, OutOfRange> {
    Ok(match block {
        XrBlock::ReceiverReferenceTime { ntp } => xr.add_block(ReceiverReferenceTime::builder().ntp_timestamp(ntp.0)),
        XrBlock::Dlrr(items) => xr.add_block(items.iter().fold(DelaySinceLastReceiverReport::builder(), |b, i| {
            b.add_block(
                DelaySinceLastReceiverReportBlock::builder()
                    .ssrc(i.ssrc)
                    .last_receiver_report(i.last_rr)
                    .delay_since_last_receiver_report_timestamp(i.delay_since_last_rr),
            )
        })),
        XrBlock::StatisticsSummary(s) => xr.add_block(RawBlock::statistics_summary(s)),
        XrBlock::VoipMetrics(v) => xr.add_block(RawBlock::voip_metrics(v)?),
        XrBlock::Ignored { block_type } => {
            xr.add_block(RawBlock { block_type: *block_type, specific: 0, body: vec![0; 4] })
        }
    })
}

/// A block we lay out ourselves (rtcp-types has no BT 6 or 7): its type, type-specific byte and the
/// words after the header.
#[derive(Debug)]
struct RawBlock {
    block_type: u8,
    specific: u8,
    body: Vec<u8>,
}

impl RawBlock {
    /// RFC 3611 §4.6: unreported fields are written as zeroes.
    fn statistics_summary(s: &StatisticsSummary) -> Self {
        let mut flags = 0;
        let mut body = Vec::with_capacity(36);
        body.extend_from_slice(&s.ssrc.to_be_bytes());
        body.extend_from_slice(&s.begin_seq.to_be_bytes());
        body.extend_from_slice(&s.end_seq.to_be_bytes());
        if s.lost_packets.is_some() {
            flags |= 0x80;
        }
        body.extend_from_slice(&s.lost_packets.unwrap_or(0).to_be_bytes());
        if s.dup_packets.is_some() {
            flags |= 0x40;
        }
        body.extend_from_slice(&s.dup_packets.unwrap_or(0).to_be_bytes());
        if s.jitter.is_some() {
            flags |= 0x20;
        }
        let j = s.jitter.unwrap_or_default();
        for v in [j.min, j.max, j.mean, j.dev] {
            body.extend_from_slice(&v.to_be_bytes());
        }
        if let Some(t) = s.ttl {
            flags |= if t.ipv6_hop_limit { 2 << 3 } else { 1 << 3 };
        }
        let t = s.ttl.unwrap_or_default();
        body.extend_from_slice(&[t.min, t.max, t.mean, t.dev]);
        Self { block_type: BT_STATISTICS_SUMMARY, specific: flags, body }
    }

    /// RFC 3611 §4.7; reserved bytes zero.
    fn voip_metrics(v: &VoipMetrics) -> Result<Self, OutOfRange> {
        let rx_config = v
            .rx_config
            .to_byte()
            .ok_or(OutOfRange { field: "RX config JB rate", value: u32::from(v.rx_config.jb_rate) })?;
        let mut body = Vec::with_capacity(32);
        body.extend_from_slice(&v.ssrc.to_be_bytes());
        body.extend_from_slice(&[v.loss_rate, v.discard_rate, v.burst_density, v.gap_density]);
        for x in [v.burst_duration, v.gap_duration, v.round_trip_delay, v.end_system_delay] {
            body.extend_from_slice(&x.to_be_bytes());
        }
        body.extend_from_slice(&[v.signal_level as u8, v.noise_level as u8, v.rerl, v.gmin]);
        body.extend_from_slice(&[v.r_factor, v.ext_r_factor, v.mos_lq, v.mos_cq]);
        body.extend_from_slice(&[rx_config, 0]);
        for x in [v.jb_nominal, v.jb_maximum, v.jb_abs_max] {
            body.extend_from_slice(&x.to_be_bytes());
        }
        Ok(Self { block_type: BT_VOIP_METRICS, specific: 0, body })
    }
}

impl XrBlockBuilder<'_> for RawBlock {
    fn type_specific_byte(&self) -> u8 {
        self.specific
    }
}

impl RtcpPacketWriter for RawBlock {
    fn calculate_size(&self) -> Result<usize, RtcpWriteError> {
        Ok(4 + self.body.len())
    }

    fn write_into_unchecked(&self, buf: &mut [u8]) -> usize {
        // Bodies are whole words of at most a few dozen bytes, so the length fits.
        let words = (self.body.len() / 4) as u16;
        self.write_header_unchecked(buf, self.block_type, words);
        buf[4..4 + self.body.len()].copy_from_slice(&self.body);
        4 + self.body.len()
    }

    fn get_padding(&self) -> Option<u8> {
        None
    }
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

/// The big-endian u32 at the start of `b` (callers have checked the length).
pub(crate) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block of `block_type` with `specific` in its second byte and `body` (whole words) after its header.
    fn raw(block_type: u8, specific: u8, body: &[u8]) -> Vec<u8> {
        let mut b = vec![block_type, specific, 0, (body.len() / 4) as u8];
        b.extend_from_slice(body);
        b
    }

    /// BT 6 with every flag and ToH = 1 (IPv4), hand-laid per RFC 3611 §4.6.
    #[rustfmt::skip]
    fn stats_body() -> Vec<u8> {
        vec![
            0, 0, 0, 5,         // SSRC
            0, 10, 0, 20,       // begin_seq, end_seq
            0, 0, 0, 3,         // lost_packets
            0, 0, 0, 1,         // dup_packets
            0, 0, 0, 2, 0, 0, 0, 9, 0, 0, 0, 4, 0, 0, 0, 1, // min, max, mean, dev jitter
            60, 64, 62, 1,      // min, max, mean, dev TTL
        ]
    }

    #[test]
    fn statistics_summary_flags() {
        let all = parse_blocks(&raw(6, 0b1110_1000, &stats_body())).unwrap();
        let expected = StatisticsSummary {
            ssrc: 5,
            begin_seq: 10,
            end_seq: 20,
            lost_packets: Some(3),
            dup_packets: Some(1),
            jitter: Some(JitterSummary { min: 2, max: 9, mean: 4, dev: 1 }),
            ttl: Some(TtlSummary { ipv6_hop_limit: false, min: 60, max: 64, mean: 62, dev: 1 }),
        };
        assert_eq!(all, [XrBlock::StatisticsSummary(expected)]);

        // RFC 3611 §4.6: a value in a field flagged as unreported makes the block ignored, flag by flag.
        for flags in [0b0110_1000, 0b1010_1000, 0b1100_1000, 0b1110_0000] {
            assert_eq!(parse_blocks(&raw(6, flags, &stats_body())).unwrap(), [XrBlock::Ignored { block_type: 6 }]);
        }
        // ToH = 3 is undefined and MUST NOT be used.
        assert_eq!(parse_blocks(&raw(6, 0b1111_1000, &stats_body())).unwrap(), [XrBlock::Ignored { block_type: 6 }]);
        // Unflagged fields at zero: reported as None; reserved bits ignored.
        let mut zeroed = stats_body();
        zeroed[8..].fill(0);
        let none = StatisticsSummary { ssrc: 5, begin_seq: 10, end_seq: 20, ..Default::default() };
        assert_eq!(parse_blocks(&raw(6, 0b0000_0111, &zeroed)).unwrap(), [XrBlock::StatisticsSummary(none)]);
    }

    #[test]
    fn statistics_summary_writes_its_flags() {
        let mut s = StatisticsSummary { ssrc: 5, begin_seq: 10, end_seq: 20, ..Default::default() };
        assert_eq!(RawBlock::statistics_summary(&s).specific, 0);
        s.ttl = Some(TtlSummary { ipv6_hop_limit: true, ..Default::default() });
        s.dup_packets = Some(0);
        assert_eq!(RawBlock::statistics_summary(&s).specific, 0b0101_0000);
        s.ttl = Some(TtlSummary::default());
        s.lost_packets = Some(0);
        s.jitter = Some(JitterSummary::default());
        let b = RawBlock::statistics_summary(&s);
        assert_eq!((b.specific, b.body.len()), (0b1110_1000, 36));
    }

    #[test]
    fn dlrr_with_any_number_of_items() {
        // rtcp-types 0.3 rejects 2 items (28 bytes is not a multiple of 16) and reads past the block.
        #[rustfmt::skip]
        let body = [0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6];
        let mut b = raw(5, 0, &body);
        b.extend(raw(5, 0, &[]));
        b.extend(raw(4, 0, &[0, 0, 0, 0, 0, 0, 0, 1]));
        let items = vec![
            DlrrItem { ssrc: 1, last_rr: 2, delay_since_last_rr: 3 },
            DlrrItem { ssrc: 4, last_rr: 5, delay_since_last_rr: 6 },
        ];
        let expected =
            [XrBlock::Dlrr(items), XrBlock::Dlrr(vec![]), XrBlock::ReceiverReferenceTime { ntp: NtpTimestamp(1) }];
        assert_eq!(parse_blocks(&b).unwrap(), expected);
    }

    #[test]
    fn unexpected_lengths_are_ignored_and_overruns_fail() {
        for (bt, words) in [(4, 1), (4, 3), (5, 1), (5, 4), (6, 8), (6, 10), (7, 7), (7, 9)] {
            let b = raw(bt, 0, &vec![0; 4 * words]);
            assert_eq!(parse_blocks(&b).unwrap(), [XrBlock::Ignored { block_type: bt }], "BT {bt}, {words} words");
        }
        let mut overrun = raw(7, 0, &[0; 32]);
        overrun.truncate(35);
        assert_eq!(parse_blocks(&overrun), Err(BlockOverrun { at: 0, block_type: 7 }));
        let mut after = raw(9, 0, &[1, 2, 3, 4]);
        after.extend_from_slice(&[4, 0]);
        assert_eq!(parse_blocks(&after), Err(BlockOverrun { at: 8, block_type: 4 }));
        assert_eq!(parse_blocks(&[]).unwrap(), []);
    }

    #[test]
    fn rx_config_byte() {
        for b in 0..=u8::MAX {
            assert_eq!(RxConfig::from_byte(b).to_byte(), Some(b));
        }
        let c = RxConfig { plc: Plc::Enhanced, jitter_buffer: JitterBufferKind::NonAdaptive, jb_rate: 15 };
        assert_eq!(c.to_byte(), Some(0b1010_1111));
        assert_eq!(RxConfig::from_byte(0b0101_0000).plc, Plc::Disabled);
        assert_eq!(RxConfig::from_byte(0b0101_0000).jitter_buffer, JitterBufferKind::Reserved);
        assert_eq!(RxConfig { jb_rate: 16, ..c }.to_byte(), None);
    }
}
