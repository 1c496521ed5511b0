//! RTP streams written as pcap files for sipp's `play_pcap_audio` (sipp replays each UDP payload,
//! RTP header included, from its media port to the port in the peer's SDP, at the pcap's pace).
//!
//! Written by hand: the format is 24 + 16 bytes of headers around fixed Ethernet/IPv4/UDP frames,
//! and no pcap crate writes them more simply.

use std::io::Write;
use std::path::Path;

/// Write one RTP stream: `payloads[i]` goes out `i × ptime_ms` after the first packet, with
/// payload type `pt`, sequence numbers from 1000 and timestamps from 0 advancing by
/// `ts_per_packet` (e.g. 160 for 20 ms of PCMU or G.722, 960 for Opus).
pub fn write_rtp_pcap(path: &Path, pt: u8, ts_per_packet: u32, ptime_ms: u32, payloads: &[Vec<u8>]) {
    let mut out = Vec::new();
    // Global header: magic, version 2.4, GMT offset, accuracy, snaplen, link type 1 (Ethernet).
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, payload) in payloads.iter().enumerate() {
        let i = i as u32;
        let mut rtp = vec![0x80, pt & 0x7f];
        rtp.extend_from_slice(&(1000u16.wrapping_add(i as u16)).to_be_bytes());
        rtp.extend_from_slice(&(i.wrapping_mul(ts_per_packet)).to_be_bytes());
        rtp.extend_from_slice(&0x5eed_0001u32.to_be_bytes());
        rtp.extend_from_slice(payload);
        let udp_len = 8 + rtp.len();
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        let ip_len = (20 + udp_len) as u16;
        frame.extend_from_slice(&[0x45, 0]);
        frame.extend_from_slice(&ip_len.to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
        frame.extend_from_slice(&6000u16.to_be_bytes());
        frame.extend_from_slice(&6000u16.to_be_bytes());
        frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(&rtp);
        let at_us = u64::from(i) * u64::from(ptime_ms) * 1000;
        out.extend_from_slice(&((at_us / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((at_us % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    let mut file = std::fs::File::create(path).expect("create the pcap file");
    file.write_all(&out).expect("write the pcap file");
}
