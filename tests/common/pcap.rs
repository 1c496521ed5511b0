//! UDP datagrams written as pcap files: RTP streams for sipp's `play_pcap_audio` (sipp replays each UDP
//! payload, RTP header included, from its media port to the port in the peer's SDP, at the pcap's pace),
//! and RTCP for Wireshark's dissector (`tshark -r`).
//!
//! Written by hand: the format is 24 + 16 bytes of headers around fixed Ethernet/IPv4/UDP frames,
//! and no pcap crate writes them more simply.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// Write RTP packets (whole datagrams) as a pcap, one every `interval` from the first, UDP 6000 → 6000.
pub fn write_rtp_pcap(path: &Path, datagrams: &[Vec<u8>], interval: Duration) {
    let timed: Vec<(Duration, &[u8])> =
        datagrams.iter().enumerate().map(|(i, rtp)| (interval * i as u32, rtp.as_slice())).collect();
    write_udp_pcap(path, (6000, 6000), &timed);
}

/// Write UDP datagrams from 127.0.0.1:`ports.0` to 127.0.0.1:`ports.1` as a pcap, each at its time
/// from the start of the capture.
pub fn write_udp_pcap(path: &Path, ports: (u16, u16), datagrams: &[(Duration, &[u8])]) {
    let mut out = Vec::new();
    // Global header: magic, version 2.4, GMT offset, accuracy, snaplen, link type 1 (Ethernet).
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for &(at, payload) in datagrams {
        let frame = udp_frame(ports, payload);
        out.extend_from_slice(&(at.as_secs() as u32).to_le_bytes());
        out.extend_from_slice(&at.subsec_micros().to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    let mut file = std::fs::File::create(path).expect("create the pcap file");
    file.write_all(&out).expect("write the pcap file");
}

/// Ethernet (addresses zero, type IPv4), IPv4 127.0.0.1 → 127.0.0.1 (checksums zero: sipp ignores
/// them, and Wireshark does not check them by default), UDP `ports.0` → `ports.1`, then `payload`.
fn udp_frame(ports: (u16, u16), payload: &[u8]) -> Vec<u8> {
    let udp_len = 8 + payload.len();
    let mut frame = vec![0u8; 12];
    frame.extend_from_slice(&[0x08, 0x00]);
    frame.extend_from_slice(&[0x45, 0]);
    frame.extend_from_slice(&((20 + udp_len) as u16).to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
    frame.extend_from_slice(&ports.0.to_be_bytes());
    frame.extend_from_slice(&ports.1.to_be_bytes());
    frame.extend_from_slice(&(udp_len as u16).to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(payload);
    frame
}
