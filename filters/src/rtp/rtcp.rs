//! RTCP compound packets (RFC 3550 §6): SR, RR, SDES CNAME, BYE and XR (RFC 3611), parsed and written.
//!
//! Pure: bytes in, values out; no clock (NTP times are arguments) and no I/O. [`RtcpCompound::parse`] never
//! panics, whatever the bytes, and a compound it returns writes back to bytes that parse to the same value.
//!
//! rtcp-types writes every packet and parses SR, RR and BYE. We do by hand what it gets wrong on input
//! from the network:
//! - compound framing: its `Compound` checks the version of the first packet only and never checks a
//!   padding count against the packet;
//! - padding: its parsers read the padding of a packet as content (as SDES chunks, BYE SSRCs, XR blocks),
//!   so we hand them a copy with the padding cut off;
//! - SDES: its chunk parser skips every zero byte after a chunk's terminator, eating the leading zero
//!   bytes of the next chunk's SSRC, wants 4 bytes left for any item (so it rejects a valid 2-byte item
//!   near the end), and accepts an item list without its terminating null;
//! - XR report blocks: see [`crate::rtp::xr`].

use std::borrow::Cow;
use std::time::Duration;

use rtcp_types::prelude::*;
use rtcp_types::{Bye, ReceiverReport, RtcpParseError, RtcpWriteError, Sdes, SdesChunk, SdesItem, SenderReport, Xr};

use crate::rtp::stats::ReceptionReport;
use crate::rtp::xr::{self, be32, XrBlock};

/// RFC 3550 §6.4.1: sender report.
pub const PT_SR: u8 = 200;
/// RFC 3550 §6.4.2: receiver report.
pub const PT_RR: u8 = 201;
/// RFC 3550 §6.5: source description.
pub const PT_SDES: u8 = 202;
/// RFC 3550 §6.6: goodbye.
pub const PT_BYE: u8 = 203;
/// RFC 3611 §2: extended report.
pub const PT_XR: u8 = 207;
/// RFC 3550 §6.4: report count, source count and SSRC count are 5 bits.
pub const MAX_COUNT: usize = 31;
/// RFC 3550 §6.5: an SDES item's text (and §6.6 a BYE reason) has an 8-bit length.
pub const MAX_TEXT_LEN: usize = 255;

/// RFC 3550 §6.5.1: the CNAME item type.
const SDES_CNAME: u8 = 1;
/// RFC 3550 §6.4.1: the length field counts 32-bit words minus one in 16 bits.
const MAX_PACKET_LEN: usize = 4 * (u16::MAX as usize + 1);
/// RFC 3550 §4 / RFC 868: seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// 64-bit NTP timestamp (RFC 3550 §4), seconds since 1900 in 32.32 fixed point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct NtpTimestamp(pub u64);

impl NtpTimestamp {
    /// The fraction is rounded to the nearest 2^-32 s. The seconds wrap in 2036 as the 32-bit field does
    /// (RFC 3550 §4: "it should be sufficient to use the current era").
    pub fn from_unix(since_unix_epoch: Duration) -> Self {
        let secs = since_unix_epoch.as_secs().wrapping_add(NTP_UNIX_OFFSET);
        let frac = ((u128::from(since_unix_epoch.subsec_nanos()) << 32) + 500_000_000) / 1_000_000_000;
        Self(((u128::from(secs) << 32) + frac) as u64)
    }

    /// Rounded to the nearest nanosecond; a time before 1970 saturates to zero.
    pub fn to_unix(self) -> Duration {
        let Some(secs) = (self.0 >> 32).checked_sub(NTP_UNIX_OFFSET) else { return Duration::ZERO };
        let nanos = ((self.0 & 0xffff_ffff) * 1_000_000_000 + (1 << 31)) >> 32;
        // nanos may round up to 1e9: Duration::new carries it into the seconds.
        Duration::new(secs, nanos as u32)
    }

    /// The middle 32 bits: the LSR field of a report block, and RFC 3611's LRR.
    pub fn middle(self) -> u32 {
        (self.0 >> 16) as u32
    }
}

/// A duration in 1/65536 s units, as DLSR/DLRR carry it (RFC 3550 §6.4.1); saturating, rounded.
pub fn to_compact(d: Duration) -> u32 {
    let units = ((d.as_nanos() << 16) + 500_000_000) / 1_000_000_000;
    u32::try_from(units).unwrap_or(u32::MAX)
}

/// The inverse of [`to_compact`], rounded to the nearest nanosecond.
pub fn from_compact(v: u32) -> Duration {
    Duration::from_nanos(((u64::from(v) * 1_000_000_000) + (1 << 15)) >> 16)
}

/// RFC 3550 §6.4.1 sender information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderInfo {
    pub ntp: NtpTimestamp,
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    pub octet_count: u32,
}

/// RFC 3550 §6.4.1 report block: the receiver figures plus LSR/DLSR.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    pub reception: ReceptionReport,
    /// LSR: [`NtpTimestamp::middle`] of the last SR from this source, 0 if none.
    pub last_sr: u32,
    /// DLSR, in 1/65536 s ([`to_compact`]).
    pub delay_since_last_sr: u32,
}

/// One packet of a compound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtcpPacket {
    /// RFC 3550 §6.4.1. Profile-specific extensions after the report blocks are skipped.
    SenderReport { ssrc: u32, sender: SenderInfo, reports: Vec<ReportBlock> },
    /// RFC 3550 §6.4.2. Profile-specific extensions after the report blocks are skipped.
    ReceiverReport { ssrc: u32, reports: Vec<ReportBlock> },
    /// CNAME per SSRC; other SDES items are skipped when parsing (RFC 3550 §6.5). A chunk without a CNAME,
    /// or whose CNAME is not UTF-8, is skipped; of several CNAMEs in a chunk the first is kept.
    Sdes { chunks: Vec<(u32, String)> },
    /// RFC 3550 §6.6. A reason that is empty or not UTF-8 parses as `None`; `Some("")` is written as none.
    Bye { ssrcs: Vec<u32>, reason: Option<String> },
    /// RFC 3611 §2.
    Xr { ssrc: u32, blocks: Vec<XrBlock> },
    /// A well-formed packet of a type we do not use (APP, RTPFB, PSFB, …), skipped. Written back as a
    /// header-only packet of its type, so a parsed compound writes and re-parses to the same value.
    Other { packet_type: u8 },
}

impl RtcpPacket {
    /// The RTCP packet type (PT) this packet is written with.
    pub fn packet_type(&self) -> u8 {
        match self {
            RtcpPacket::SenderReport { .. } => PT_SR,
            RtcpPacket::ReceiverReport { .. } => PT_RR,
            RtcpPacket::Sdes { .. } => PT_SDES,
            RtcpPacket::Bye { .. } => PT_BYE,
            RtcpPacket::Xr { .. } => PT_XR,
            RtcpPacket::Other { packet_type } => *packet_type,
        }
    }
}

/// A compound RTCP packet: what one datagram carries (RFC 3550 §6.1).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RtcpCompound {
    pub packets: Vec<RtcpPacket>,
}

impl RtcpCompound {
    /// RFC 3550 §6.1 / A.2 checks: version 2 on every packet, lengths that add up exactly to the datagram,
    /// padding only on the last packet with a non-zero count within the packet (§6.4.1; a count that is not
    /// a multiple of 4 is tolerated for webrtc-rs/pion peers). The first packet must be SR or RR: we do not negotiate reduced-size RTCP (RFC 5506), and
    /// A.2's check of the first packet is what tells RTCP from stray datagrams. A packet that is
    /// structurally invalid fails the whole compound (RFC 3550 A.2: discard); XR blocks of unknown type or
    /// that RFC 3611 says to ignore become [`XrBlock::Ignored`] and the rest is still parsed.
    pub fn parse(bytes: &[u8]) -> Result<Self, RtcpError> {
        if bytes.is_empty() {
            return Err(RtcpError::Empty);
        }
        let mut packets = Vec::new();
        let mut offset = 0;
        while offset < bytes.len() {
            let rest = &bytes[offset..];
            let Some(&[first, packet_type, hi, lo]) = rest.get(..4) else {
                return Err(RtcpError::TruncatedHeader { offset });
            };
            let version = first >> 6;
            if version != 2 {
                return Err(RtcpError::Version { offset, version });
            }
            let length = 4 * (usize::from(u16::from_be_bytes([hi, lo])) + 1);
            let Some(packet) = rest.get(..length) else {
                return Err(RtcpError::LengthOverrun { offset, length, available: rest.len() });
            };
            let padded = first & 0x20 != 0;
            if padded && length != rest.len() {
                return Err(RtcpError::PaddingNotLast { offset });
            }
            if packets.is_empty() && packet_type != PT_SR && packet_type != PT_RR {
                return Err(RtcpError::FirstNotReport { packet_type });
            }
            let packet = if padded { strip_padding(packet, offset)? } else { Cow::Borrowed(packet) };
            packets.push(parse_packet(&packet, offset)?);
            offset += length;
        }
        Ok(Self { packets })
    }

    /// Append the compound to `out`. The first packet must be SR or RR as §6.1 requires (an error
    /// otherwise, not a reordering). More than 31 report blocks in one SR/RR is an error, not a split:
    /// the caller decides which sources to report in this interval (§6.4: "SR or RR ... more RR packets").
    /// On error `out` is left as it was.
    pub fn write(&self, out: &mut Vec<u8>) -> Result<(), RtcpError> {
        let start = out.len();
        let written = self.write_packets(out);
        if written.is_err() {
            out.truncate(start);
        }
        written
    }

    fn write_packets(&self, out: &mut Vec<u8>) -> Result<(), RtcpError> {
        match self.packets.first() {
            None => return Err(RtcpError::Empty),
            Some(RtcpPacket::SenderReport { .. } | RtcpPacket::ReceiverReport { .. }) => {}
            Some(p) => return Err(RtcpError::FirstNotReport { packet_type: p.packet_type() }),
        }
        for packet in &self.packets {
            let builder = packet_builder(packet)?;
            let length = builder.calculate_size().map_err(RtcpError::Unwritable)?;
            if length > MAX_PACKET_LEN {
                return Err(RtcpError::PacketTooLong { packet_type: packet.packet_type(), length });
            }
            let at = out.len();
            out.resize(at + length, 0);
            builder.write_into_unchecked(&mut out[at..]);
        }
        Ok(())
    }
}

/// RFC 5761 §4: on a muxed port, a datagram whose second byte is 192..=223 (PT 64..=95 with marker) is RTCP.
pub fn is_rtcp(datagram: &[u8]) -> bool {
    matches!(datagram.get(1), Some(192..=223))
}

/// Why a compound did not parse or could not be written.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RtcpError {
    /// Nothing to parse, or a compound without packets to write.
    #[error("empty RTCP compound")]
    Empty,
    /// Fewer than 4 bytes left where a packet header should start (RFC 3550 A.2: lengths must add up).
    #[error("RTCP header truncated at offset {offset}")]
    TruncatedHeader { offset: usize },
    /// RFC 3550 §6.4.1: the version is 2.
    #[error("RTCP version {version} at offset {offset}")]
    Version { offset: usize, version: u8 },
    /// The length field says more than the datagram holds (RFC 3550 A.2).
    #[error("RTCP packet at offset {offset} claims {length} bytes, {available} left")]
    LengthOverrun { offset: usize, length: usize, available: usize },
    /// RFC 3550 §6.1 / A.2: only the last packet of a compound may be padded.
    #[error("padding bit on the RTCP packet at offset {offset}, which is not the last")]
    PaddingNotLast { offset: usize },
    /// RFC 3550 §6.4.1: the padding count includes itself and fits after the header (a count that is not
    /// the multiple of 4 the RFC expects is tolerated, see `strip_padding`).
    #[error("padding count {count} in the {length}-byte RTCP packet at offset {offset}")]
    BadPadding { offset: usize, count: u8, length: usize },
    /// RFC 3550 §6.1 / A.2: a compound starts with SR or RR.
    #[error("RTCP compound starts with packet type {packet_type}, not SR or RR")]
    FirstNotReport { packet_type: u8 },
    /// A packet shorter than its fixed part, its count (RC, SC, SSRC count) or a length inside it says.
    #[error("RTCP packet type {packet_type} at offset {offset} is shorter than its contents say")]
    Truncated { offset: usize, packet_type: u8 },
    /// RFC 3550 §6.5: a chunk's item list ends with a null octet inside the packet; this one runs out first
    /// (no terminator, or an item whose length runs past the packet).
    #[error("SDES chunk at offset {offset} is not terminated within its packet")]
    SdesUnterminated { offset: usize },
    /// RFC 3550 §6.5: bytes after the SC chunks of an SDES packet.
    #[error("SDES packet at offset {offset} has bytes after its chunks")]
    SdesTrailing { offset: usize },
    /// RFC 3611 §3: an XR report block runs past the end of its packet.
    #[error("XR block type {block_type} at offset {offset} runs past its packet")]
    XrBlockOverrun { offset: usize, block_type: u8 },
    /// rtcp-types refused a packet that passed our own checks.
    #[error("RTCP packet type {packet_type} at offset {offset} rejected: {source}")]
    Rejected {
        offset: usize,
        packet_type: u8,
        #[source]
        source: RtcpParseError,
    },
    /// Writing: more than [`MAX_COUNT`] report blocks, SDES chunks or BYE sources in one packet.
    #[error("{count} entries in one RTCP packet of type {packet_type}, at most 31")]
    TooMany { packet_type: u8, count: usize },
    /// Writing: a CNAME or BYE reason longer than [`MAX_TEXT_LEN`] bytes.
    #[error("RTCP text of {len} bytes, at most 255")]
    TextTooLong { len: usize },
    /// Writing: a value that does not fit its wire field (a cumulative loss beyond 24 signed bits, a JB
    /// rate beyond 4 bits).
    #[error("{field} = {value} does not fit its RTCP field")]
    FieldOutOfRange { field: &'static str, value: i64 },
    /// Writing: a packet longer than its 16-bit length field can say (rtcp-types would truncate the field).
    #[error("RTCP packet type {packet_type} would be {length} bytes")]
    PacketTooLong { packet_type: u8, length: usize },
    /// Writing: [`RtcpPacket::Other`] with the type of a packet we parse, which would not read back.
    #[error("cannot write an opaque packet of type {packet_type}")]
    OtherOfKnownType { packet_type: u8 },
    /// Writing: rtcp-types refused a packet that passed our own checks.
    #[error("RTCP packet not writable: {0}")]
    Unwritable(#[source] RtcpWriteError),
}

/// A copy of the last packet without its padding, P cleared and the length fixed, for rtcp-types.
///
/// A count that is not a multiple of 4 is accepted, the content being zero-filled to the next word:
/// webrtc-rs (like pion) pads a BYE reason to the word with the P bit and a count of 1–3, against
/// RFC 3550 §6.6, and rejecting that would drop the SR or RR of the same compound.
fn strip_padding(packet: &[u8], offset: usize) -> Result<Cow<'_, [u8]>, RtcpError> {
    let length = packet.len();
    let count = packet[length - 1];
    let pad = usize::from(count);
    if pad == 0 || pad > length - 4 {
        return Err(RtcpError::BadPadding { offset, count, length });
    }
    let content = length - pad;
    let mut unpadded = packet[..content].to_vec();
    unpadded.resize(content.next_multiple_of(4), 0);
    unpadded[0] &= !0x20;
    let words = (unpadded.len() / 4 - 1) as u16;
    unpadded[2..4].copy_from_slice(&words.to_be_bytes());
    Ok(Cow::Owned(unpadded))
}

/// One packet, without padding: a whole number of words, at least the header.
fn parse_packet(p: &[u8], offset: usize) -> Result<RtcpPacket, RtcpError> {
    let packet_type = p[1];
    let rejected = |e: RtcpParseError| match e {
        RtcpParseError::Truncated { .. } => RtcpError::Truncated { offset, packet_type },
        source => RtcpError::Rejected { offset, packet_type, source },
    };
    Ok(match packet_type {
        PT_SR => {
            let sr = SenderReport::parse(p).map_err(rejected)?;
            RtcpPacket::SenderReport {
                ssrc: sr.ssrc(),
                sender: SenderInfo {
                    ntp: NtpTimestamp(sr.ntp_timestamp()),
                    rtp_timestamp: sr.rtp_timestamp(),
                    packet_count: sr.packet_count(),
                    octet_count: sr.octet_count(),
                },
                reports: sr.report_blocks().map(|b| report_block(&b)).collect(),
            }
        }
        PT_RR => {
            let rr = ReceiverReport::parse(p).map_err(rejected)?;
            RtcpPacket::ReceiverReport {
                ssrc: rr.ssrc(),
                reports: rr.report_blocks().map(|b| report_block(&b)).collect(),
            }
        }
        PT_SDES => parse_sdes(p, offset)?,
        PT_BYE => {
            let bye = Bye::parse(p).map_err(rejected)?;
            let reason = bye.reason().filter(|r| !r.is_empty()).and_then(|r| std::str::from_utf8(r).ok());
            RtcpPacket::Bye { ssrcs: bye.ssrcs().collect(), reason: reason.map(str::to_owned) }
        }
        PT_XR => {
            let Some(ssrc) = p.get(4..8) else { return Err(RtcpError::Truncated { offset, packet_type }) };
            let blocks = xr::parse_blocks(&p[8..])
                .map_err(|e| RtcpError::XrBlockOverrun { offset: offset + 8 + e.at, block_type: e.block_type })?;
            RtcpPacket::Xr { ssrc: be32(ssrc), blocks }
        }
        _ => RtcpPacket::Other { packet_type },
    })
}

/// RFC 3550 §6.4.1: the cumulative loss is a signed 24-bit number.
fn report_block(b: &rtcp_types::ReportBlock<'_>) -> ReportBlock {
    ReportBlock {
        reception: ReceptionReport {
            ssrc: b.ssrc(),
            fraction_lost: b.fraction_lost(),
            cumulative_lost: ((b.cumulative_lost() << 8) as i32) >> 8,
            extended_highest_seq: b.extended_sequence_number(),
            jitter: b.interarrival_jitter(),
        },
        last_sr: b.last_sender_report_timestamp(),
        delay_since_last_sr: b.delay_since_last_sender_report_timestamp(),
    }
}

/// RFC 3550 §6.5, by hand (see the module doc for what rtcp-types gets wrong). Exactly SC chunks, each an
/// SSRC and items up to a null octet, padded with nulls to the next word.
fn parse_sdes(p: &[u8], offset: usize) -> Result<RtcpPacket, RtcpError> {
    let count = p[0] & 0x1f;
    let mut chunks = Vec::new();
    let mut pos = 4;
    for _ in 0..count {
        let Some(ssrc) = p.get(pos..pos + 4) else { return Err(RtcpError::Truncated { offset, packet_type: PT_SDES }) };
        let ssrc = be32(ssrc);
        let unterminated = RtcpError::SdesUnterminated { offset: offset + pos };
        pos += 4;
        let mut cname = None;
        loop {
            let Some(&item_type) = p.get(pos) else { return Err(unterminated) };
            if item_type == 0 {
                pos += 1;
                break;
            }
            let Some(&len) = p.get(pos + 1) else { return Err(unterminated) };
            let end = pos + 2 + usize::from(len);
            let Some(text) = p.get(pos + 2..end) else { return Err(unterminated) };
            if item_type == SDES_CNAME && cname.is_none() {
                cname = std::str::from_utf8(text).ok().map(str::to_owned);
            }
            pos = end;
        }
        // The packet is whole words, so the next word boundary is still inside it.
        pos = pos.next_multiple_of(4);
        if let Some(cname) = cname {
            chunks.push((ssrc, cname));
        }
    }
    if pos != p.len() {
        return Err(RtcpError::SdesTrailing { offset });
    }
    Ok(RtcpPacket::Sdes { chunks })
}

/// An rtcp-types writer for `packet`, after the checks it lacks or would panic on.
fn packet_builder(packet: &RtcpPacket) -> Result<Box<dyn RtcpPacketWriter + '_>, RtcpError> {
    let too_many =
        |count: usize| (count > MAX_COUNT).then_some(RtcpError::TooMany { packet_type: packet.packet_type(), count });
    Ok(match packet {
        RtcpPacket::SenderReport { ssrc, sender, reports } => {
            if let Some(e) = too_many(reports.len()) {
                return Err(e);
            }
            let mut sr = SenderReport::builder(*ssrc)
                .ntp_timestamp(sender.ntp.0)
                .rtp_timestamp(sender.rtp_timestamp)
                .packet_count(sender.packet_count)
                .octet_count(sender.octet_count);
            for r in reports {
                sr = sr.add_report_block(report_block_builder(r)?);
            }
            Box::new(sr)
        }
        RtcpPacket::ReceiverReport { ssrc, reports } => {
            if let Some(e) = too_many(reports.len()) {
                return Err(e);
            }
            let mut rr = ReceiverReport::builder(*ssrc);
            for r in reports {
                rr = rr.add_report_block(report_block_builder(r)?);
            }
            Box::new(rr)
        }
        RtcpPacket::Sdes { chunks } => {
            if let Some(e) = too_many(chunks.len()) {
                return Err(e);
            }
            let mut sdes = Sdes::builder();
            for (ssrc, cname) in chunks {
                check_text(cname)?;
                sdes = sdes.add_chunk(SdesChunk::builder(*ssrc).add_item(SdesItem::builder(SDES_CNAME, cname)));
            }
            Box::new(sdes)
        }
        RtcpPacket::Bye { ssrcs, reason } => {
            if let Some(e) = too_many(ssrcs.len()) {
                return Err(e);
            }
            let mut bye = ssrcs.iter().fold(Bye::builder(), |b, &s| b.add_source(s));
            if let Some(reason) = reason {
                check_text(reason)?;
                bye = bye.reason(reason.as_str());
            }
            Box::new(bye)
        }
        RtcpPacket::Xr { ssrc, blocks } => {
            let mut builder = Xr::builder().sender_ssrc(*ssrc);
            for block in blocks {
                builder = xr::add_block(builder, block)
                    .map_err(|e| RtcpError::FieldOutOfRange { field: e.field, value: i64::from(e.value) })?;
            }
            Box::new(builder)
        }
        RtcpPacket::Other { packet_type } => {
            if matches!(*packet_type, PT_SR | PT_RR | PT_SDES | PT_BYE | PT_XR) {
                return Err(RtcpError::OtherOfKnownType { packet_type: *packet_type });
            }
            Box::new(rtcp_types::Unknown::builder(*packet_type, &[]))
        }
    })
}

/// RFC 3550 §6.4.1 report block; the cumulative loss must fit 24 signed bits.
fn report_block_builder(r: &ReportBlock) -> Result<rtcp_types::ReportBlockBuilder, RtcpError> {
    let lost = r.reception.cumulative_lost;
    if !(-0x80_0000..=0x7f_ffff).contains(&lost) {
        return Err(RtcpError::FieldOutOfRange { field: "cumulative packets lost", value: i64::from(lost) });
    }
    Ok(rtcp_types::ReportBlock::builder(r.reception.ssrc)
        .fraction_lost(r.reception.fraction_lost)
        .cumulative_lost(lost as u32 & 0xff_ffff)
        .extended_sequence_number(r.reception.extended_highest_seq)
        .interarrival_jitter(r.reception.jitter)
        .last_sender_report_timestamp(r.last_sr)
        .delay_since_last_sender_report_timestamp(r.delay_since_last_sr))
}

fn check_text(text: &str) -> Result<(), RtcpError> {
    if text.len() > MAX_TEXT_LEN {
        return Err(RtcpError::TextTooLong { len: text.len() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::rtp::xr::{DlrrItem, JitterBufferKind, JitterSummary, Plc, RxConfig, StatisticsSummary};
    use crate::rtp::xr::{TtlSummary, VoipMetrics};
    use crate::testing::mutate;

    fn block(ssrc: u32, cumulative_lost: i32) -> ReportBlock {
        ReportBlock {
            reception: ReceptionReport {
                ssrc,
                fraction_lost: 0x40,
                cumulative_lost,
                extended_highest_seq: 0x0001_0005,
                jitter: 17,
            },
            last_sr: 0x0304_0506,
            delay_since_last_sr: 65536,
        }
    }

    fn voip_metrics() -> VoipMetrics {
        VoipMetrics {
            ssrc: 0x0102_0304,
            loss_rate: 0x10,
            discard_rate: 0x20,
            burst_density: 0x30,
            gap_density: 0x40,
            burst_duration: 0x0102,
            gap_duration: 0x0304,
            round_trip_delay: 0x0506,
            end_system_delay: 0x0708,
            signal_level: -20,
            noise_level: -60,
            rerl: xr::UNAVAILABLE,
            gmin: crate::rtp::burst_gap::DEFAULT_GMIN,
            r_factor: 90,
            ext_r_factor: xr::UNAVAILABLE,
            mos_lq: 42,
            mos_cq: 41,
            rx_config: RxConfig { plc: Plc::Standard, jitter_buffer: JitterBufferKind::Adaptive, jb_rate: 2 },
            jb_nominal: 40,
            jb_maximum: 80,
            jb_abs_max: 120,
        }
    }

    fn stats_summary() -> StatisticsSummary {
        StatisticsSummary {
            ssrc: 0x0102_0304,
            begin_seq: 100,
            end_seq: 350,
            lost_packets: Some(3),
            dup_packets: Some(1),
            jitter: Some(JitterSummary { min: 1, max: 90, mean: 20, dev: 7 }),
            ttl: Some(TtlSummary { ipv6_hop_limit: true, min: 60, max: 64, mean: 62, dev: 1 }),
        }
    }

    /// The sender info of the SRs below: NTP 0x0102030405060708, RTP 0x0a0b0c0d, 5 packets, 1000 octets.
    fn sender_info() -> SenderInfo {
        SenderInfo {
            ntp: NtpTimestamp(0x0102_0304_0506_0708),
            rtp_timestamp: 0x0a0b_0c0d,
            packet_count: 5,
            octet_count: 1000,
        }
    }

    /// SR (2 report blocks) + SDES CNAME + XR (BT 4, BT 5 with 2 items, BT 6 all flags, BT 7) + BYE with reason.
    fn full_compound() -> RtcpCompound {
        RtcpCompound {
            packets: vec![
                RtcpPacket::SenderReport {
                    ssrc: 0x1122_3344,
                    sender: sender_info(),
                    reports: vec![block(0xaabb_ccdd, -2), block(0x0000_1234, 0x7f_ffff)],
                },
                RtcpPacket::Sdes { chunks: vec![(0x1122_3344, "rms@example.org".to_owned())] },
                RtcpPacket::Xr {
                    ssrc: 0x1122_3344,
                    blocks: vec![
                        XrBlock::ReceiverReferenceTime { ntp: NtpTimestamp(0xdead_beef_0123_4567) },
                        XrBlock::Dlrr(vec![
                            DlrrItem { ssrc: 1, last_rr: 0x1111_2222, delay_since_last_rr: 300 },
                            DlrrItem { ssrc: 2, last_rr: 0x3333_4444, delay_since_last_rr: 400 },
                        ]),
                        XrBlock::StatisticsSummary(stats_summary()),
                        XrBlock::VoipMetrics(voip_metrics()),
                    ],
                },
                RtcpPacket::Bye { ssrcs: vec![0x1122_3344], reason: Some("call ended".to_owned()) },
            ],
        }
    }

    fn rr_only() -> RtcpCompound {
        RtcpCompound { packets: vec![RtcpPacket::ReceiverReport { ssrc: 7, reports: vec![block(9, -0x80_0000)] }] }
    }

    fn bytes(c: &RtcpCompound) -> Vec<u8> {
        let mut out = Vec::new();
        c.write(&mut out).expect("writes");
        out
    }

    /// Offsets where each packet of `c` starts when written, plus the end.
    fn boundaries(c: &RtcpCompound) -> Vec<usize> {
        (1..=c.packets.len()).map(|k| bytes(&RtcpCompound { packets: c.packets[..k].to_vec() }).len()).collect()
    }

    #[test]
    fn full_compound_round_trips() {
        let c = full_compound();
        assert_eq!(RtcpCompound::parse(&bytes(&c)), Ok(c));
    }

    #[test]
    fn rr_only_round_trips() {
        let c = rr_only();
        let b = bytes(&c);
        assert_eq!(b.len(), 8 + 24);
        assert_eq!(RtcpCompound::parse(&b), Ok(c));
    }

    #[test]
    fn write_appends_to_out() {
        let mut out = vec![0xee];
        rr_only().write(&mut out).unwrap();
        assert_eq!(out[0], 0xee);
        assert_eq!(RtcpCompound::parse(&out[1..]), Ok(rr_only()));
    }

    /// RFC 3550 §6.4.1 layout, written out by hand.
    #[test]
    fn sender_report_bytes_by_hand() {
        let c = RtcpCompound {
            packets: vec![RtcpPacket::SenderReport {
                ssrc: 0x1122_3344,
                sender: sender_info(),
                reports: vec![block(0xaabb_ccdd, -2)],
            }],
        };
        #[rustfmt::skip]
        let expected = [
            0x81, 200, 0x00, 12,            // V=2 P=0 RC=1, PT=SR, length 13 words - 1
            0x11, 0x22, 0x33, 0x44,         // SSRC of sender
            0x01, 0x02, 0x03, 0x04,         // NTP timestamp, most significant word
            0x05, 0x06, 0x07, 0x08,         // NTP timestamp, least significant word
            0x0a, 0x0b, 0x0c, 0x0d,         // RTP timestamp
            0x00, 0x00, 0x00, 0x05,         // sender's packet count
            0x00, 0x00, 0x03, 0xe8,         // sender's octet count (1000)
            0xaa, 0xbb, 0xcc, 0xdd,         // SSRC_1
            0x40, 0xff, 0xff, 0xfe,         // fraction lost 1/4, cumulative lost -2 (24-bit)
            0x00, 0x01, 0x00, 0x05,         // extended highest sequence number
            0x00, 0x00, 0x00, 0x11,         // interarrival jitter 17
            0x03, 0x04, 0x05, 0x06,         // LSR
            0x00, 0x01, 0x00, 0x00,         // DLSR: 1 s
        ];
        assert_eq!(bytes(&c), expected);
        assert_eq!(RtcpCompound::parse(&expected), Ok(c));
    }

    /// RFC 3611 §4.7 layout, written out by hand, after an RR.
    #[test]
    fn voip_metrics_bytes_by_hand() {
        let c = RtcpCompound {
            packets: vec![
                RtcpPacket::ReceiverReport { ssrc: 7, reports: vec![] },
                RtcpPacket::Xr { ssrc: 7, blocks: vec![XrBlock::VoipMetrics(voip_metrics())] },
            ],
        };
        #[rustfmt::skip]
        let expected = [
            0x80, 201, 0x00, 0x01, 0x00, 0x00, 0x00, 0x07,  // RR, RC=0, SSRC 7
            0x80, 207, 0x00, 10, 0x00, 0x00, 0x00, 0x07,    // XR, 11 words, SSRC 7
            7, 0x00, 0x00, 8,               // BT=7, reserved, block length 8
            0x01, 0x02, 0x03, 0x04,         // SSRC of source
            0x10, 0x20, 0x30, 0x40,         // loss rate, discard rate, burst density, gap density
            0x01, 0x02, 0x03, 0x04,         // burst duration, gap duration
            0x05, 0x06, 0x07, 0x08,         // round trip delay, end system delay
            0xec, 0xc4, 0x7f, 0x10,         // signal -20 dBm, noise -60 dBm, RERL unavailable, Gmin 16
            90, 0x7f, 42, 41,               // R factor, ext. R unavailable, MOS-LQ 4.2, MOS-CQ 4.1
            0b1111_0010, 0x00, 0x00, 40,   // RX config: PLC standard, JB adaptive, JB rate 2; reserved; JB nominal
            0x00, 80, 0x00, 120,            // JB maximum, JB abs max
        ];
        assert_eq!(bytes(&c), expected);
        assert_eq!(RtcpCompound::parse(&expected), Ok(c));
    }

    /// webrtc-rs `rtcp` reads what we write, field by field.
    #[test]
    fn webrtc_rtcp_parses_what_we_write() {
        use rtcp::extended_report::{
            DLRRReportBlock, ExtendedReport, ReceiverReferenceTimeReportBlock, StatisticsSummaryReportBlock,
            TTLorHopLimitType, VoIPMetricsReportBlock,
        };
        use rtcp::goodbye::Goodbye;
        use rtcp::sender_report::SenderReport as WSenderReport;
        use rtcp::source_description::{SdesType, SourceDescription};

        let mut raw = bytes::Bytes::from(bytes(&full_compound()));
        let packets = rtcp::packet::unmarshal(&mut raw).expect("webrtc-rs parses our compound");
        assert_eq!(packets.len(), 4);

        let sr = packets[0].as_any().downcast_ref::<WSenderReport>().expect("SR");
        assert_eq!((sr.ssrc, sr.ntp_time, sr.rtp_time), (0x1122_3344, 0x0102_0304_0506_0708, 0x0a0b_0c0d));
        assert_eq!((sr.packet_count, sr.octet_count), (5, 1000));
        assert_eq!(sr.reports.len(), 2);
        for (r, (ssrc, lost)) in sr.reports.iter().zip([(0xaabb_ccdd, 0xff_fffe), (0x1234, 0x7f_ffff)]) {
            assert_eq!((r.ssrc, r.fraction_lost, r.total_lost), (ssrc, 0x40, lost));
            assert_eq!((r.last_sequence_number, r.jitter), (0x0001_0005, 17));
            assert_eq!((r.last_sender_report, r.delay), (0x0304_0506, 65536));
        }

        let sdes = packets[1].as_any().downcast_ref::<SourceDescription>().expect("SDES");
        assert_eq!(sdes.chunks.len(), 1);
        assert_eq!(sdes.chunks[0].source, 0x1122_3344);
        assert_eq!(sdes.chunks[0].items.len(), 1);
        assert_eq!(sdes.chunks[0].items[0].sdes_type, SdesType::SdesCname);
        assert_eq!(&sdes.chunks[0].items[0].text[..], b"rms@example.org");

        let xr = packets[2].as_any().downcast_ref::<ExtendedReport>().expect("XR");
        assert_eq!(xr.sender_ssrc, 0x1122_3344);
        assert_eq!(xr.reports.len(), 4);
        let rrt = xr.reports[0].as_any().downcast_ref::<ReceiverReferenceTimeReportBlock>().expect("BT 4");
        assert_eq!(rrt.ntp_timestamp, 0xdead_beef_0123_4567);
        let dlrr = xr.reports[1].as_any().downcast_ref::<DLRRReportBlock>().expect("BT 5");
        let items: Vec<_> = dlrr.reports.iter().map(|r| (r.ssrc, r.last_rr, r.dlrr)).collect();
        assert_eq!(items, [(1, 0x1111_2222, 300), (2, 0x3333_4444, 400)]);
        let ssr = xr.reports[2].as_any().downcast_ref::<StatisticsSummaryReportBlock>().expect("BT 6");
        assert!(ssr.loss_reports && ssr.duplicate_reports && ssr.jitter_reports);
        assert_eq!(ssr.ttl_or_hop_limit, TTLorHopLimitType::IPv6);
        assert_eq!((ssr.ssrc, ssr.begin_seq, ssr.end_seq), (0x0102_0304, 100, 350));
        assert_eq!((ssr.lost_packets, ssr.dup_packets), (3, 1));
        assert_eq!((ssr.min_jitter, ssr.max_jitter, ssr.mean_jitter, ssr.dev_jitter), (1, 90, 20, 7));
        assert_eq!((ssr.min_ttl_or_hl, ssr.max_ttl_or_hl, ssr.mean_ttl_or_hl, ssr.dev_ttl_or_hl), (60, 64, 62, 1));
        let vm = xr.reports[3].as_any().downcast_ref::<VoIPMetricsReportBlock>().expect("BT 7");
        let v = voip_metrics();
        assert_eq!(vm.ssrc, v.ssrc);
        assert_eq!(
            [vm.loss_rate, vm.discard_rate, vm.burst_density, vm.gap_density],
            [v.loss_rate, v.discard_rate, v.burst_density, v.gap_density]
        );
        assert_eq!(
            [vm.burst_duration, vm.gap_duration, vm.round_trip_delay, vm.end_system_delay],
            [v.burst_duration, v.gap_duration, v.round_trip_delay, v.end_system_delay]
        );
        assert_eq!([vm.signal_level as i8, vm.noise_level as i8], [v.signal_level, v.noise_level]);
        assert_eq!([vm.rerl, vm.gmin, vm.rfactor, vm.ext_rfactor], [v.rerl, v.gmin, v.r_factor, v.ext_r_factor]);
        assert_eq!([vm.mos_lq, vm.mos_cq, vm.rx_config, vm.reserved], [v.mos_lq, v.mos_cq, 0xf2, 0]);
        assert_eq!([vm.jb_nominal, vm.jb_maximum, vm.jb_abs_max], [v.jb_nominal, v.jb_maximum, v.jb_abs_max]);

        let bye = packets[3].as_any().downcast_ref::<Goodbye>().expect("BYE");
        assert_eq!(bye.sources, [0x1122_3344]);
        assert_eq!(&bye.reason[..], b"call ended");
    }

    /// We read what webrtc-rs `rtcp` writes.
    #[test]
    fn we_parse_what_webrtc_rtcp_writes() {
        use rtcp::extended_report::{
            DLRRReport, DLRRReportBlock, ExtendedReport, ReceiverReferenceTimeReportBlock,
            StatisticsSummaryReportBlock, TTLorHopLimitType, VoIPMetricsReportBlock,
        };
        use rtcp::goodbye::Goodbye;
        use rtcp::packet::Packet;
        use rtcp::reception_report::ReceptionReport as WReceptionReport;
        use rtcp::sender_report::SenderReport as WSenderReport;
        use rtcp::source_description::{SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem};

        let report = |ssrc: u32, total_lost: u32| WReceptionReport {
            ssrc,
            fraction_lost: 0x40,
            total_lost,
            last_sequence_number: 0x0001_0005,
            jitter: 17,
            last_sender_report: 0x0304_0506,
            delay: 65536,
        };
        let v = voip_metrics();
        let packets: Vec<Box<dyn Packet + Send + Sync>> = vec![
            Box::new(WSenderReport {
                ssrc: 0x1122_3344,
                ntp_time: 0x0102_0304_0506_0708,
                rtp_time: 0x0a0b_0c0d,
                packet_count: 5,
                octet_count: 1000,
                reports: vec![report(0xaabb_ccdd, 0xff_fffe), report(0x1234, 0x7f_ffff)],
                profile_extensions: bytes::Bytes::new(),
            }),
            Box::new(SourceDescription {
                chunks: vec![SourceDescriptionChunk {
                    source: 0x1122_3344,
                    items: vec![SourceDescriptionItem {
                        sdes_type: SdesType::SdesCname,
                        text: bytes::Bytes::from_static(b"rms@example.org"),
                    }],
                }],
            }),
            Box::new(ExtendedReport {
                sender_ssrc: 0x1122_3344,
                reports: vec![
                    Box::new(ReceiverReferenceTimeReportBlock { ntp_timestamp: 0xdead_beef_0123_4567 }),
                    Box::new(DLRRReportBlock {
                        reports: vec![
                            DLRRReport { ssrc: 1, last_rr: 0x1111_2222, dlrr: 300 },
                            DLRRReport { ssrc: 2, last_rr: 0x3333_4444, dlrr: 400 },
                        ],
                    }),
                    Box::new(StatisticsSummaryReportBlock {
                        loss_reports: true,
                        duplicate_reports: true,
                        jitter_reports: true,
                        ttl_or_hop_limit: TTLorHopLimitType::IPv6,
                        ssrc: 0x0102_0304,
                        begin_seq: 100,
                        end_seq: 350,
                        lost_packets: 3,
                        dup_packets: 1,
                        min_jitter: 1,
                        max_jitter: 90,
                        mean_jitter: 20,
                        dev_jitter: 7,
                        min_ttl_or_hl: 60,
                        max_ttl_or_hl: 64,
                        mean_ttl_or_hl: 62,
                        dev_ttl_or_hl: 1,
                    }),
                    Box::new(VoIPMetricsReportBlock {
                        ssrc: v.ssrc,
                        loss_rate: v.loss_rate,
                        discard_rate: v.discard_rate,
                        burst_density: v.burst_density,
                        gap_density: v.gap_density,
                        burst_duration: v.burst_duration,
                        gap_duration: v.gap_duration,
                        round_trip_delay: v.round_trip_delay,
                        end_system_delay: v.end_system_delay,
                        signal_level: v.signal_level as u8,
                        noise_level: v.noise_level as u8,
                        rerl: v.rerl,
                        gmin: v.gmin,
                        rfactor: v.r_factor,
                        ext_rfactor: v.ext_r_factor,
                        mos_lq: v.mos_lq,
                        mos_cq: v.mos_cq,
                        rx_config: 0xf2,
                        reserved: 0,
                        jb_nominal: v.jb_nominal,
                        jb_maximum: v.jb_maximum,
                        jb_abs_max: v.jb_abs_max,
                    }),
                ],
            }),
            Box::new(Goodbye { sources: vec![0x1122_3344], reason: bytes::Bytes::from_static(b"call ended") }),
        ];
        let raw = rtcp::packet::marshal(&packets).expect("webrtc-rs writes");
        assert_eq!(RtcpCompound::parse(&raw), Ok(full_compound()));
        // Byte for byte the same as ours in the SR and the XR. webrtc-rs ends an SDES chunk's null padding
        // with a count byte (here 2), and aligns the BYE reason with the P bit and a count of 1 where
        // RFC 3550 §6.5 and §6.6 want null octets; we read both.
        let ours = bytes(&full_compound());
        let ends = boundaries(&full_compound());
        assert_eq!(&raw[..ends[0]], &ours[..ends[0]]);
        assert_eq!(&raw[ends[1]..ends[2]], &ours[ends[1]..ends[2]]);
        assert_eq!(raw[ends[1] - 1], 2);
        assert_eq!((raw.len(), raw[ends[2]] & 0x20, raw[raw.len() - 1]), (ours.len(), 0x20, 1));
    }

    #[test]
    fn every_truncation_fails_or_ends_on_a_packet_boundary() {
        let c = full_compound();
        let b = bytes(&c);
        let ends = boundaries(&c);
        for cut in 0..b.len() {
            let parsed = RtcpCompound::parse(&b[..cut]);
            match ends.iter().position(|&e| e == cut) {
                Some(k) => assert_eq!(parsed, Ok(RtcpCompound { packets: c.packets[..=k].to_vec() }), "cut {cut}"),
                None => assert!(parsed.is_err(), "cut {cut} parsed: {parsed:?}"),
            }
        }
        assert_eq!(RtcpCompound::parse(&[]), Err(RtcpError::Empty));
        assert_eq!(RtcpCompound::parse(&b[..3]), Err(RtcpError::TruncatedHeader { offset: 0 }));
        assert_eq!(
            RtcpCompound::parse(&b[..20]),
            Err(RtcpError::LengthOverrun { offset: 0, length: 76, available: 20 })
        );
    }

    #[test]
    fn wrong_version_on_any_packet() {
        let c = full_compound();
        let ends = boundaries(&c);
        let b = bytes(&c);
        for offset in [0, ends[0], ends[2]] {
            let mut m = b.clone();
            m[offset] = m[offset] & 0x3f | 1 << 6;
            assert_eq!(RtcpCompound::parse(&m), Err(RtcpError::Version { offset, version: 1 }));
        }
    }

    #[test]
    fn length_fields_too_long_or_too_short() {
        let b = bytes(&rr_only());
        let mut long = b.clone();
        long[3] += 1;
        assert_eq!(RtcpCompound::parse(&long), Err(RtcpError::LengthOverrun { offset: 0, length: 36, available: 32 }));
        let mut short = b.clone();
        short[3] -= 1;
        // RC=1 needs 32 bytes; the 28 left over are not a packet either way.
        assert_eq!(RtcpCompound::parse(&short), Err(RtcpError::Truncated { offset: 0, packet_type: PT_RR }));
        // A wrong length in the middle of a compound misframes the rest.
        let c = full_compound();
        let mut mid = bytes(&c);
        let sdes = boundaries(&c)[0];
        mid[sdes + 3] += 1;
        assert!(RtcpCompound::parse(&mid).is_err());
    }

    #[test]
    fn padding_only_on_the_last_packet() {
        let c = full_compound();
        let b = bytes(&c);
        let mut m = b.clone();
        m[0] |= 0x20;
        assert_eq!(RtcpCompound::parse(&m), Err(RtcpError::PaddingNotLast { offset: 0 }));

        // Valid padding on the last packet (the BYE) is cut off before its contents are read.
        let bye = *boundaries(&c).iter().rev().nth(1).unwrap();
        let mut padded = b.clone();
        padded.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 8]);
        padded[bye] |= 0x20;
        padded[bye + 3] += 2;
        assert_eq!(RtcpCompound::parse(&padded), Ok(c.clone()));

        // A count of 1-3 (webrtc-rs and pion pad a BYE reason so) is tolerated.
        let mut odd = b.clone();
        odd.extend_from_slice(&[0, 0, 0, 3]);
        odd[bye] |= 0x20;
        odd[bye + 3] += 1;
        assert_eq!(RtcpCompound::parse(&odd), Ok(c));

        for (count, extra) in [(0u8, 4usize), (21, 4), (255, 4)] {
            let mut bad = b.clone();
            bad.extend(std::iter::repeat_n(0, extra - 1));
            bad.push(count);
            bad[bye] |= 0x20;
            bad[bye + 3] += 1;
            let length = b.len() - bye + extra;
            assert_eq!(
                RtcpCompound::parse(&bad),
                Err(RtcpError::BadPadding { offset: bye, count, length }),
                "count {count}"
            );
        }
    }

    #[test]
    fn report_count_larger_than_the_packet_holds() {
        let mut b = bytes(&rr_only());
        b[0] = 0x80 | 2;
        assert_eq!(RtcpCompound::parse(&b), Err(RtcpError::Truncated { offset: 0, packet_type: PT_RR }));
        let mut sr = bytes(&full_compound());
        sr[0] = 0x80 | 3;
        assert_eq!(RtcpCompound::parse(&sr), Err(RtcpError::Truncated { offset: 0, packet_type: PT_SR }));
    }

    /// An RR with no report blocks followed by `tail`, one packet whose header we write here.
    fn rr_then(packet_type: u8, count: u8, body: &[u8]) -> Vec<u8> {
        assert_eq!(body.len() % 4, 0);
        let mut b = vec![0x80, PT_RR, 0, 1, 0, 0, 0, 7];
        b.extend_from_slice(&[0x80 | count, packet_type, 0, (body.len() / 4) as u8]);
        b.extend_from_slice(body);
        b
    }

    #[test]
    fn sdes_edge_cases() {
        let rr = RtcpPacket::ReceiverReport { ssrc: 7, reports: vec![] };
        // Item list without its null terminator, ending exactly on a word boundary.
        let unterminated = rr_then(PT_SDES, 1, &[0, 0, 0, 9, 1, 2, b'a', b'b']);
        assert_eq!(RtcpCompound::parse(&unterminated), Err(RtcpError::SdesUnterminated { offset: 12 }));
        // An item whose length runs past the packet.
        let overrun = rr_then(PT_SDES, 1, &[0, 0, 0, 9, 1, 9, b'a', 0]);
        assert_eq!(RtcpCompound::parse(&overrun), Err(RtcpError::SdesUnterminated { offset: 12 }));
        // SC says 2, one chunk present.
        let short = rr_then(PT_SDES, 2, &[0, 0, 0, 9, 1, 1, b'a', 0]);
        assert_eq!(RtcpCompound::parse(&short), Err(RtcpError::Truncated { offset: 8, packet_type: PT_SDES }));
        // SC says 0, a chunk present.
        let trailing = rr_then(PT_SDES, 0, &[0, 0, 0, 9, 1, 1, b'a', 0]);
        assert_eq!(RtcpCompound::parse(&trailing), Err(RtcpError::SdesTrailing { offset: 8 }));

        // Two chunks, the second SSRC starting with zero bytes (rtcp-types 0.3 skips them as padding), the
        // first with a NAME item after its CNAME, the second with a 2-byte NOTE item 3 bytes before the end
        // (rtcp-types 0.3 wants 4), and a chunk without CNAME, which is skipped.
        #[rustfmt::skip]
        let good = rr_then(PT_SDES, 3, &[
            0, 0, 0, 9, 1, 1, b'a', 2, 1, b'n', 0, 0,
            0, 0, 0x12, 0x34, 1, 3, b'x', b'y', b'z', 7, 0, 0,
            0, 0, 0, 5, 2, 1, b'q', 0,
        ]);
        let sdes = RtcpPacket::Sdes { chunks: vec![(9, "a".to_owned()), (0x1234, "xyz".to_owned())] };
        assert_eq!(RtcpCompound::parse(&good), Ok(RtcpCompound { packets: vec![rr.clone(), sdes] }));

        // A CNAME that is not UTF-8 is skipped with its chunk.
        let latin1 = rr_then(PT_SDES, 1, &[0, 0, 0, 9, 1, 1, 0xe9, 0]);
        let empty = RtcpPacket::Sdes { chunks: vec![] };
        assert_eq!(RtcpCompound::parse(&latin1), Ok(RtcpCompound { packets: vec![rr, empty] }));
    }

    #[test]
    fn bye_edge_cases() {
        let rr = RtcpPacket::ReceiverReport { ssrc: 7, reports: vec![] };
        let overrun = rr_then(PT_BYE, 1, &[0, 0, 0, 9, 4, b'a', b'b', b'c']);
        assert_eq!(RtcpCompound::parse(&overrun), Err(RtcpError::Truncated { offset: 8, packet_type: PT_BYE }));
        let too_many = rr_then(PT_BYE, 2, &[0, 0, 0, 9]);
        assert_eq!(RtcpCompound::parse(&too_many), Err(RtcpError::Truncated { offset: 8, packet_type: PT_BYE }));
        // An empty reason reads as none.
        let empty = rr_then(PT_BYE, 1, &[0, 0, 0, 9, 0, 0, 0, 0]);
        let bye = RtcpPacket::Bye { ssrcs: vec![9], reason: None };
        assert_eq!(RtcpCompound::parse(&empty), Ok(RtcpCompound { packets: vec![rr, bye] }));
    }

    #[test]
    fn xr_blocks_overrunning_unknown_or_ignored() {
        let rr = RtcpPacket::ReceiverReport { ssrc: 7, reports: vec![] };
        // A BT 4 block claiming 3 words where 2 are left.
        let overrun = rr_then(PT_XR, 0, &[0, 0, 0, 7, 4, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(RtcpCompound::parse(&overrun), Err(RtcpError::XrBlockOverrun { offset: 16, block_type: 4 }));
        // An unknown type (42), then a BT 4: the rest is still parsed.
        let unknown = rr_then(PT_XR, 0, &[0, 0, 0, 7, 42, 0xff, 0, 1, 9, 9, 9, 9, 4, 0, 0, 2, 1, 2, 3, 4, 5, 6, 7, 8]);
        let xr = RtcpPacket::Xr {
            ssrc: 7,
            blocks: vec![
                XrBlock::Ignored { block_type: 42 },
                XrBlock::ReceiverReferenceTime { ntp: NtpTimestamp(0x0102_0304_0506_0708) },
            ],
        };
        assert_eq!(RtcpCompound::parse(&unknown), Ok(RtcpCompound { packets: vec![rr.clone(), xr.clone()] }));
        // Ignored blocks write back as something that reads as ignored again.
        let again = bytes(&RtcpCompound { packets: vec![rr, xr.clone()] });
        assert_eq!(RtcpCompound::parse(&again).unwrap().packets[1], xr);
    }

    #[test]
    fn first_packet_must_be_a_report() {
        let sdes_first = [0x81, PT_SDES, 0, 2, 0, 0, 0, 9, 1, 1, b'a', 0];
        assert_eq!(RtcpCompound::parse(&sdes_first), Err(RtcpError::FirstNotReport { packet_type: PT_SDES }));
        let c = RtcpCompound { packets: vec![RtcpPacket::Bye { ssrcs: vec![1], reason: None }] };
        assert_eq!(c.write(&mut Vec::new()), Err(RtcpError::FirstNotReport { packet_type: PT_BYE }));
        assert_eq!(RtcpCompound::default().write(&mut Vec::new()), Err(RtcpError::Empty));
    }

    #[test]
    fn other_packets_are_skipped_and_written_back_empty() {
        // An APP packet (PT 204) with a name and data, then a transport feedback (PT 205).
        let mut b = rr_then(204, 1, &[0, 0, 0, 7, b'r', b'm', b's', b'!', 1, 2, 3, 4]);
        b.extend_from_slice(&[0x81, 205, 0, 2, 0, 0, 0, 7, 0, 0, 0, 9]);
        let c = RtcpCompound::parse(&b).unwrap();
        let expected = [
            RtcpPacket::ReceiverReport { ssrc: 7, reports: vec![] },
            RtcpPacket::Other { packet_type: 204 },
            RtcpPacket::Other { packet_type: 205 },
        ];
        assert_eq!(c.packets, expected);
        assert_eq!(RtcpCompound::parse(&bytes(&c)), Ok(c));
        let known = RtcpCompound { packets: vec![expected[0].clone(), RtcpPacket::Other { packet_type: PT_XR }] };
        assert_eq!(known.write(&mut Vec::new()), Err(RtcpError::OtherOfKnownType { packet_type: PT_XR }));
    }

    #[test]
    fn write_errors_leave_out_unchanged() {
        let rr = |reports| RtcpCompound { packets: vec![RtcpPacket::ReceiverReport { ssrc: 1, reports }] };
        let mut out = vec![1, 2, 3];
        assert_eq!(
            rr(vec![block(1, 0); 32]).write(&mut out),
            Err(RtcpError::TooMany { packet_type: PT_RR, count: 32 })
        );
        assert!(rr(vec![block(1, 0); 31]).write(&mut Vec::new()).is_ok());
        assert_eq!(
            rr(vec![block(1, 0x80_0000)]).write(&mut out),
            Err(RtcpError::FieldOutOfRange { field: "cumulative packets lost", value: 0x80_0000 })
        );
        let mut c = rr(vec![]);
        c.packets.push(RtcpPacket::Sdes { chunks: vec![(1, "x".repeat(256))] });
        assert_eq!(c.write(&mut out), Err(RtcpError::TextTooLong { len: 256 }));
        let mut c = rr(vec![]);
        let mut v = voip_metrics();
        v.rx_config.jb_rate = 16;
        c.packets.push(RtcpPacket::Xr { ssrc: 1, blocks: vec![XrBlock::VoipMetrics(v)] });
        assert_eq!(c.write(&mut out), Err(RtcpError::FieldOutOfRange { field: "RX config JB rate", value: 16 }));
        let mut c = rr(vec![]);
        let items = vec![DlrrItem::default(); 22_000];
        c.packets.push(RtcpPacket::Xr { ssrc: 1, blocks: vec![XrBlock::Dlrr(items)] });
        assert_eq!(c.write(&mut out), Err(RtcpError::PacketTooLong { packet_type: PT_XR, length: 8 + 4 + 264_000 }));
        assert_eq!(out, [1, 2, 3]);
    }

    #[test]
    fn rtcp_or_rtp_on_a_muxed_port() {
        for pt in [0u8, 8, 96, 111] {
            for marker in [0, 0x80] {
                let rtp = [0x80, marker | pt, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
                assert!(!is_rtcp(&rtp), "RTP PT {pt} marker {marker}");
            }
        }
        for pt in 200..=207 {
            assert!(is_rtcp(&[0x80, pt, 0, 1, 0, 0, 0, 1]), "RTCP PT {pt}");
        }
        assert!(is_rtcp(&[0x80, 192]) && is_rtcp(&[0x80, 223]));
        assert!(!is_rtcp(&[0x80, 191]) && !is_rtcp(&[0x80, 224]));
        assert!(!is_rtcp(&[]) && !is_rtcp(&[0x80]));
        assert!(is_rtcp(&bytes(&full_compound())));
    }

    #[test]
    fn ntp_conversions() {
        assert_eq!(NtpTimestamp::from_unix(Duration::ZERO), NtpTimestamp(2_208_988_800 << 32));
        assert_eq!(
            NtpTimestamp::from_unix(Duration::from_millis(500)),
            NtpTimestamp(2_208_988_800 << 32 | 0x8000_0000)
        );
        let t = Duration::new(1_700_000_000, 250_000_000);
        assert_eq!(NtpTimestamp::from_unix(t), NtpTimestamp((1_700_000_000 + 2_208_988_800) << 32 | 0x4000_0000));
        assert_eq!(NtpTimestamp::from_unix(t).to_unix(), t);
        assert_eq!(NtpTimestamp(0x0102_0304_0506_0708).middle(), 0x0304_0506);
        // Before 1970 saturates.
        assert_eq!(NtpTimestamp(5 << 32).to_unix(), Duration::ZERO);
        // The largest fraction rounds up into the next second.
        assert_eq!(NtpTimestamp((2_208_988_800 << 32) | 0xffff_ffff).to_unix(), Duration::from_secs(1));
        assert_eq!(to_compact(Duration::from_secs(1)), 65536);
        assert_eq!(to_compact(Duration::from_millis(500)), 32768);
        assert_eq!(to_compact(Duration::MAX), u32::MAX);
        assert_eq!(from_compact(65536), Duration::from_secs(1));
        assert_eq!(from_compact(98304), Duration::from_millis(1500));
        assert_eq!(from_compact(1), Duration::from_nanos(15_259));
    }

    /// Whatever parses writes back and re-parses to the same value.
    fn reparses(data: &[u8]) {
        let Ok(c) = RtcpCompound::parse(data) else { return };
        let mut out = Vec::new();
        c.write(&mut out).unwrap_or_else(|e| panic!("{c:?} does not write: {e}"));
        assert_eq!(RtcpCompound::parse(&out), Ok(c));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            reparses(&data);
        }

        #[test]
        fn mutated_compounds_never_panic(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..5),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut m = bytes(&full_compound());
            mutate(&mut m, &edits, (cut.index(4) == 0).then(|| cut.index(usize::MAX)));
            reparses(&m);
        }
    }
}
