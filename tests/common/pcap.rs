//! RTP streams written as pcap files for sipp's `play_pcap_audio` (sipp replays each UDP payload,
//! RTP header included, from its media port to the port in the peer's SDP, at the pcap's pace).
//!
//! Written by hand: the format is 24 + 16 bytes of headers around fixed Ethernet/IPv4/UDP frames,
//! and no pcap crate writes them more simply.

use std::io::Write;
use std::path::Path;

/// Write RTP packets (whole datagrams) as a pcap, one every `interval` from the first.
pub fn write_rtp_pcap(path: &Path, datagrams: &[Vec<u8>], interval: std::time::Duration) {
    let mut out = Vec::new();
    // Global header: magic, version 2.4, GMT offset, accuracy, snaplen, link type 1 (Ethernet).
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, rtp) in datagrams.iter().enumerate() {
        let udp_len = 8 + rtp.len();
        // Ethernet (addresses zero, type IPv4), IPv4 127.0.0.1 → 127.0.0.1 (sipp ignores the
        // addresses and checksums), UDP 6000 → 6000.
        let mut frame = vec![0u8; 12];
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.extend_from_slice(&[0x45, 0]);
        frame.extend_from_slice(&((20 + udp_len) as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
        frame.extend_from_slice(&6000u16.to_be_bytes());
        frame.extend_from_slice(&6000u16.to_be_bytes());
        frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
        frame.extend_from_slice(&[0, 0]);
        frame.extend_from_slice(rtp);
        let at = interval * i as u32;
        out.extend_from_slice(&(at.as_secs() as u32).to_le_bytes());
        out.extend_from_slice(&at.subsec_micros().to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    let mut file = std::fs::File::create(path).expect("create the pcap file");
    file.write_all(&out).expect("write the pcap file");
}
