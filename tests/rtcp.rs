//! The RTCP rms sends, read by independent parsers: webrtc-rs `rtcp` and Wireshark's dissector
//! (`tshark -V`), each showing the values expected from a call driven by hand (issue 6 acceptance).
//!
//! One leg in virtual time, no sockets: rms plays a prompt to the far end (so it reports with SRs) while a
//! hand-driven far end sends it 200 PCMU packets with losses chosen below, then an SR and an XR RRTR. The
//! expected report figures are worked out in the comments from that pattern (RFC 3550 A.3, RFC 3611 §4.4–4.7).

#[path = "common/pcap.rs"]
#[allow(dead_code)] // write_rtp_pcap is for sipp's tests
mod pcap;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use rms::config::{RtcpSettings, XrPolicy};
use rms::media::{LegId, LegMedia, LegSocket, MediaCmd, MediaCoordinator, MediaEvent, MediaOutput};
use rms_filters::codec::CodecKind;
use rms_filters::rtp::rtcp::{NtpTimestamp, RtcpCompound, RtcpPacket, SenderInfo};
use rms_filters::rtp::xr::XrBlock;
use rms_filters::testing::{sine, write_wav};
use rms_filters::{NoClock, TICK};
use rtcp::extended_report::{
    DLRRReportBlock, ExtendedReport, ReceiverReferenceTimeReportBlock, StatisticsSummaryReportBlock,
    VoIPMetricsReportBlock,
};
use rtcp::goodbye::Goodbye;
use rtcp::packet::Packet;
use rtcp::sender_report::SenderReport;
use rtcp::source_description::{SdesType, SourceDescription};

/// Drives the leg's SSRC, CNAME and report times (the first after 0.45 s, then 0.88, 1.65, 2.50, 3.71,
/// 4.68 s with Tmin 1 s): the expectations below are worked out for these times.
const SEED: u64 = 7;
/// Unix time of virtual time 0: NTP seconds 1_790_000_000 + 2_208_988_800 = 0xee5b_ba00.
const WALL_CLOCK: Duration = Duration::from_secs(1_790_000_000);
const REPORT_TICKS: [u64; 6] = [45, 88, 165, 250, 371, 468];
/// The leg is destroyed at 5 s, after ticks 0..500.
const TICKS: u64 = 500;

/// The far end: 200 packets of 20 ms from sequence number 1000, packet `i` arriving at `i` × 20 ms.
const FAR_SSRC: u32 = 0x0bad_cafe;
const FIRST_SEQ: u16 = 1000;
const FAR_PACKETS: u16 = 200;
/// Packets (by index) that never arrive: three isolated losses and one burst of four.
const LOST: [u16; 7] = [30, 70, 120, 121, 122, 123, 160];
/// The far end's SR + SDES + XR (RRTR) arrives at 2 s. Its SR NTP timestamp has middle bits 0x1234_5678
/// (the LSR rms must echo), its RRTR 0x1234_9abc (the LRR): different, to tell which is echoed where.
const FAR_RTCP_TICK: u64 = 200;
const FAR_SR_NTP: u64 = 0xec4f_1234_5678_0000;
const FAR_RRTR_NTP: u64 = 0xec4f_1234_9abc_0000;

/// Where rms sends RTCP (the far end's RTP port + 1), and the port rms's RTCP comes from in the pcap.
const FAR_RTCP_PORT: u16 = 40001;
const RMS_RTCP_PORT: u16 = 30001;

/// rms's reports: the periodic ones, then the last report + BYE.
struct Call {
    leg_ssrc: u32,
    /// (virtual time, RTP packets rms had sent by then, the compound).
    reports: Vec<(Duration, u32, Vec<u8>)>,
    /// (virtual time, RTP packets sent in all, the compound with BYE).
    bye: (Duration, u32, Vec<u8>),
}

/// webrtc-rs `rtcp` parses every compound rms sent, and finds in them what the call makes them say.
#[test]
fn webrtc_rtcp_reads_the_reports_rms_sends_with_the_expected_values() {
    let call = call();
    assert_eq!(
        call.reports.iter().map(|r| r.0).collect::<Vec<_>>(),
        REPORT_TICKS.map(|n| TICK * n as u32),
        "report times changed (seed {SEED}): the expectations of this file must be worked out again"
    );

    for (at, rtp_sent, bytes) in &call.reports {
        let packets = unmarshal(bytes);
        let sr = every_report_says(call, *at, *rtp_sent, &packets);
        let xr = downcast::<ExtendedReport>(&*packets[2], "XR");
        let before_far_rtcp = *at < TICK * FAR_RTCP_TICK as u32;
        assert_eq!(sr.reports[0].last_sender_report == 0, before_far_rtcp, "LSR only after the far end's SR");
        assert_eq!(xr.reports.len(), if before_far_rtcp { 3 } else { 4 }, "DLRR only after the far end's RRTR");
    }

    // RFC 3550 §6.4.1: the RTP timestamp is of the NTP timestamp's instant, so both advance together,
    // 8 units per ms at 8 kHz, also for the last report, sent between ticks when the leg is destroyed.
    let rtp_times: Vec<(Duration, u32)> = call
        .reports
        .iter()
        .chain([&call.bye])
        .map(|(at, _, bytes)| (*at, downcast::<SenderReport>(&*unmarshal(bytes)[0], "SR").rtp_time))
        .collect();
    let (t0, ts0) = rtp_times[0];
    for &(at, ts) in &rtp_times {
        let ms = (at - t0).as_millis() as u32;
        assert_eq!(ts.wrapping_sub(ts0), 8 * ms, "SR RTP timestamp at {at:?}: {rtp_times:?}");
    }

    // The report at 2.50 s, the first after the far end's RTCP at 2.00 s.
    let (_, rtp_sent, bytes) = &call.reports[3];
    let packets = unmarshal(bytes);
    let sr = every_report_says(call, TICK * 250, *rtp_sent, &packets);
    // One packet every 20 ms since 0: ticks 1, 3, …, 249.
    assert_eq!((sr.packet_count, sr.octet_count), (125, 125 * 160));
    // Unix 1_790_000_002.5 s.
    assert_eq!(sr.ntp_time, 0xee5b_ba02_8000_0000);
    let rb = &sr.reports[0];
    assert_eq!(rb.ssrc, FAR_SSRC);
    // The previous report (1.65 s) had up to seq 1082 (packet 82, 1.64 s); now up to 1125 (packet 125,
    // 2.50 s): 43 expected, of which 1120..=1123 lost: 4 × 256 / 43 = 23.8.
    assert_eq!(rb.fraction_lost, 23);
    // Counting starts at 1001, the packet that ends probation (RFC 3550 A.1): 1030, 1070, 1120..=1123.
    assert_eq!(rb.total_lost, 6);
    assert_eq!(rb.last_sequence_number, 1125);
    assert_eq!(rb.jitter, 0, "packets arrive exactly on their timestamps");
    assert_eq!(rb.last_sender_report, 0x1234_5678);
    // 2.50 s − 2.00 s in 1/65536 s.
    assert_eq!(rb.delay, 32768);

    let xr = downcast::<ExtendedReport>(&*packets[2], "XR");
    let dlrr = downcast::<DLRRReportBlock>(&*xr.reports[1], "DLRR (BT 5)");
    assert_eq!(dlrr.reports.len(), 1);
    assert_eq!((dlrr.reports[0].ssrc, dlrr.reports[0].last_rr, dlrr.reports[0].dlrr), (FAR_SSRC, 0x1234_9abc, 32768));
    let ss = downcast::<StatisticsSummaryReportBlock>(&*xr.reports[2], "Statistics Summary (BT 6)");
    assert!(ss.loss_reports && ss.duplicate_reports && ss.jitter_reports);
    // [1083, 1126): what arrived since the last report, the burst in it.
    assert_eq!((ss.ssrc, ss.begin_seq, ss.end_seq, ss.lost_packets, ss.dup_packets), (FAR_SSRC, 1083, 1126, 4, 0));
    assert_eq!((ss.min_jitter, ss.max_jitter, ss.mean_jitter, ss.dev_jitter), (0, 0, 0, 0));
    let vm = downcast::<VoIPMetricsReportBlock>(&*xr.reports[3], "VoIP Metrics (BT 7)");
    assert_eq!(vm.ssrc, FAR_SSRC);
    // RFC 3611 §4.7.1, since reception began: 6 lost of 125 expected (1001..=1125): 6 × 256 / 125 = 12.3.
    assert_eq!((vm.loss_rate, vm.discard_rate), (12, 0));
    // §4.7.2 with Gmin 16, over the 125 packets played out by now (1000..=1124, 20 ms behind): one burst,
    // 1120..=1123, all lost (density 256, saturated to 255), 4 × 20 ms = 80 ms; the other 121 packets
    // are the two gaps around it, with 2 losses: density 2 × 256 / 121 = 4.2, mean 121 × 20 / 2 = 1210 ms.
    assert_eq!((vm.burst_density, vm.gap_density, vm.burst_duration, vm.gap_duration), (255, 4, 80, 1210));
    unmeasured_voip_fields(vm);

    // The last report and BYE at 5 s.
    let (at, rtp_sent, bytes) = &call.bye;
    let packets = unmarshal(bytes);
    assert_eq!(packets.len(), 4, "SR, SDES, XR, BYE");
    let sr = every_report_says(call, *at, *rtp_sent, &packets);
    // Ticks 1, 3, …, 499.
    assert_eq!((sr.packet_count, sr.octet_count), (250, 250 * 160));
    let rb = &sr.reports[0];
    // Nothing arrived since the report at 4.68 s (the far end stopped at 3.98 s).
    assert_eq!((rb.fraction_lost, rb.total_lost, rb.last_sequence_number), (0, 7, 1199));
    // 5.00 s − 2.00 s = 3 × 65536.
    assert_eq!((rb.last_sender_report, rb.delay), (0x1234_5678, 196_608));
    let xr = downcast::<ExtendedReport>(&*packets[2], "XR");
    let dlrr = downcast::<DLRRReportBlock>(&*xr.reports[1], "DLRR (BT 5)");
    assert_eq!((dlrr.reports[0].ssrc, dlrr.reports[0].last_rr, dlrr.reports[0].dlrr), (FAR_SSRC, 0x1234_9abc, 196_608));
    let ss = downcast::<StatisticsSummaryReportBlock>(&*xr.reports[2], "Statistics Summary (BT 6)");
    assert_eq!((ss.begin_seq, ss.end_seq, ss.lost_packets), (1200, 1200, 0), "an empty interval");
    let vm = downcast::<VoIPMetricsReportBlock>(&*xr.reports[3], "VoIP Metrics (BT 7)");
    // 7 lost of 199 (1001..=1199): 7 × 256 / 199 = 9.0. All 200 played out: the burst, and 196 packets in
    // two gaps with 3 losses: 3 × 256 / 196 = 3.9, 196 × 20 / 2 = 1960 ms.
    assert_eq!((vm.loss_rate, vm.burst_density, vm.gap_density, vm.gap_duration), (9, 255, 3, 1960));
    unmeasured_voip_fields(vm);
    let bye = downcast::<Goodbye>(&*packets[3], "BYE");
    assert_eq!(bye.sources, [call.leg_ssrc]);
}

/// Wireshark's RTCP dissector reads the same compounds from a capture without an error, and prints the
/// figures the call makes them carry.
#[test]
fn tshark_dissects_the_reports_rms_sends_with_the_expected_values() {
    let call = call();
    let dir = work_dir();
    let capture = dir.join("rtcp.pcap");
    let datagrams: Vec<(Duration, &[u8])> =
        call.reports.iter().chain([&call.bye]).map(|(at, _, bytes)| (*at, bytes.as_slice())).collect();
    pcap::write_udp_pcap(&capture, (RMS_RTCP_PORT, FAR_RTCP_PORT), &datagrams);
    let text = tshark_verbose(&capture, FAR_RTCP_PORT);
    std::fs::write(dir.join("rtcp.txt"), &text).expect("write the dissection");

    // One frame per compound ("Frame 1: …" starts the text).
    let frames: Vec<&str> = text.split("\nFrame ").collect();
    assert_eq!(frames.len(), 7, "7 frames:\n{text}");
    for bad in ["Malformed", "Expert Info", "frame length check: Wrong"] {
        assert!(!text.contains(bad), "tshark finds the RTCP wrong ({bad}):\n{text}");
    }
    for (n, frame) in frames.iter().enumerate() {
        for line in [
            "Real-time Transport Control Protocol (Sender Report)",
            &format!("Sender SSRC: 0x{:08x}", call.leg_ssrc),
            "Identifier: 0x0badcafe",
            "Real-time Transport Control Protocol (Source description)",
            "Type: CNAME (user and domain) (1)",
            "Text: rms-",
            "Real-time Transport Control Protocol (Extended report (RFC 3611))",
            "Type: Receiver Reference Time Report Block (4)",
            "Type: Statistics Summary Report Block (6)",
            "Type: VoIP Metrics Report Block (7)",
            "Gmin: 16",
            "[RTCP frame length check: OK",
        ] {
            assert!(frame.contains(line), "frame {} lacks {line:?}:\n{frame}", n + 1);
        }
    }

    // The report at 2.50 s: the figures worked out in the webrtc-rs test.
    let report = frames[3];
    let expected = [
        "Timestamp, MSW: 3998988802 (0xee5bba02)",
        "Timestamp, LSW: 2147483648 (0x80000000)",
        "Sender's packet count: 125",
        "Sender's octet count: 20000",
        "Fraction lost: 23 / 256",
        "Cumulative number of packets lost: 6",
        "Highest sequence number received: 1125",
        "Interarrival jitter: 0",
        "Last SR timestamp: 305419896 (0x12345678)",
        "Delay since last SR timestamp: 32768 (500 milliseconds)",
        // DLRR: LRR 0x1234_9abc.
        "Type: DLRR Report Block (5)",
        "Last RR timestamp: 305437372",
        "Delay since last RR timestamp: 32768",
        // Statistics Summary.
        "1... .... = Loss Report Flag: True",
        ".1.. .... = Duplicates Report Flag: True",
        "..1. .... = Jitter Report Flag: True",
        "Begin Sequence Number: 1083",
        "End Sequence Number: 1126",
        "Lost Packets: 4",
        "Duplicate Packets: 0",
        // VoIP Metrics.
        "Fraction lost: 12 / 256",
        "Fraction discarded: 0 / 256",
        "Burst Density: 255",
        "Gap Density: 4",
        "Burst Duration(ms): 80",
        "Gap Duration(ms): 1210",
        "Round Trip Delay(ms): 0",
        "Signal Level: Unavailable",
        "Noise Level: Unavailable",
        "Residual Echo Return Loss: Unavailable",
        "External R Factor: Unavailable",
        "MOS - Listening Quality: ",
        "MOS - Conversational Quality: ",
        "00.. .... = Packet Loss Concealment Algorithm: Unspecified (0)",
        "..11 .... = Adaptive Jitter Buffer Algorithm: Adaptive (3)",
    ];
    for line in expected {
        assert!(report.contains(line), "the report at 2.50 s lacks {line:?}:\n{report}");
    }

    // The last report and BYE at 5 s.
    let bye = frames[6];
    let expected = [
        "Sender's packet count: 250",
        "Cumulative number of packets lost: 7",
        "Delay since last SR timestamp: 196608 (3000 milliseconds)",
        "Fraction lost: 9 / 256",
        "Real-time Transport Control Protocol (Goodbye)",
    ];
    for line in expected {
        assert!(bye.contains(line), "the last report lacks {line:?}:\n{bye}");
    }
    let goodbye = &bye[bye.find("(Goodbye)").expect("BYE")..];
    assert!(goodbye.contains(&format!("Identifier: 0x{:08x}", call.leg_ssrc)), "BYE of another SSRC:\n{goodbye}");
}

/// What every compound of rms says: SR from the leg's SSRC counting the RTP it sent, one report block on
/// the far end's stream, SDES with a CNAME, XR with a Receiver Reference Time of the SR's instant, a
/// Statistics Summary and VoIP Metrics on the far end's stream. Returns the SR.
fn every_report_says<'a>(
    call: &Call,
    at: Duration,
    rtp_sent: u32,
    packets: &'a [Box<dyn Packet + Send + Sync>],
) -> &'a SenderReport {
    let sr = downcast::<SenderReport>(&*packets[0], "SR first");
    assert_eq!(sr.ssrc, call.leg_ssrc, "at {at:?}");
    assert_eq!((sr.packet_count, sr.octet_count), (rtp_sent, rtp_sent * 160), "at {at:?}: PCMU, 160 octets each");
    assert_eq!(sr.ntp_time, NtpTimestamp::from_unix(WALL_CLOCK + at).0, "at {at:?}");
    assert_eq!(sr.reports.len(), 1, "at {at:?}");
    assert_eq!(sr.reports[0].ssrc, FAR_SSRC, "at {at:?}");

    let sdes = downcast::<SourceDescription>(&*packets[1], "SDES second");
    assert_eq!(sdes.chunks.len(), 1, "at {at:?}");
    assert_eq!(sdes.chunks[0].source, call.leg_ssrc, "at {at:?}");
    let cname = &sdes.chunks[0].items[0];
    assert_eq!(cname.sdes_type, SdesType::SdesCname, "at {at:?}");
    assert!(cname.text.starts_with(b"rms-") && cname.text.len() > 4, "at {at:?}: CNAME {:?}", cname.text);

    let xr = downcast::<ExtendedReport>(&*packets[2], "XR third");
    assert_eq!(xr.sender_ssrc, call.leg_ssrc, "at {at:?}");
    let rrtr = downcast::<ReceiverReferenceTimeReportBlock>(&*xr.reports[0], "RRTR (BT 4) first");
    assert_eq!(rrtr.ntp_timestamp, sr.ntp_time, "at {at:?}");
    let ss = downcast::<StatisticsSummaryReportBlock>(&*xr.reports[xr.reports.len() - 2], "BT 6");
    assert_eq!(ss.ssrc, FAR_SSRC, "at {at:?}");
    let vm = downcast::<VoIPMetricsReportBlock>(&*xr.reports[xr.reports.len() - 1], "BT 7 last");
    assert_eq!(vm.ssrc, FAR_SSRC, "at {at:?}");
    assert_eq!(vm.gmin, 16, "at {at:?}");
    assert!((10..=45).contains(&vm.mos_lq) && (10..=45).contains(&vm.mos_cq), "at {at:?}: MOS {vm:?}");
    sr
}

/// RFC 3611 §4.7 fields rms does not measure on a leg that only receives (no decoder, no RTT yet), and
/// its receiver configuration.
fn unmeasured_voip_fields(vm: &VoIPMetricsReportBlock) {
    // §4.7.4: no round trip measured yet (the far end sent no report block on rms's stream).
    assert_eq!(vm.round_trip_delay, 0);
    // §4.7.5: signal, noise and RERL 127 = unavailable; §4.7.6: extended R factor 127 = unavailable.
    assert_eq!((vm.signal_level, vm.noise_level, vm.rerl, vm.ext_rfactor), (127, 127, 127, 127));
    // §4.7.6 RX config: PLC 00 (unspecified: the received audio is not decoded here, so whoever plays it
    // conceals), JBA 11 (adaptive), rate 0.
    assert_eq!(vm.rx_config, 0b0011_0000);
    assert!(vm.jb_nominal <= vm.jb_maximum && vm.jb_maximum <= vm.jb_abs_max, "{vm:?}");
}

/// The call both tests read, run once.
fn call() -> &'static Call {
    static CALL: OnceLock<Call> = OnceLock::new();
    CALL.get_or_init(run_call)
}

/// Runs the call (see the module docs) and collects the RTCP rms sends.
fn run_call() -> Call {
    let dir = work_dir();
    let prompt = dir.join("prompt.wav");
    // 6 s of 440 Hz: rms sends RTP for the whole call.
    write_wav(&prompt, 8000, &sine(8000, 440.0, 8000.0, 6 * 8000)).expect("write the prompt");

    let mut c = MediaCoordinator::new(SEED, Box::new(NoClock));
    c.set_wall_clock(WALL_CLOCK);
    c.set_rtcp(RtcpSettings { min_interval: Duration::from_secs(1), xr: XrPolicy::Always });
    let far: SocketAddr = ([127, 0, 0, 1], FAR_RTCP_PORT - 1).into();
    let leg = LegId(1);
    let media = LegMedia::new(far, CodecKind::Pcmu, 0, 20);
    c.handle_cmd(Duration::ZERO, MediaCmd::CreateLeg { leg, media });
    c.handle_cmd(Duration::ZERO, MediaCmd::Play { leg, file: prompt, loops: 1, token: 1 });

    let mut leg_ssrc = None;
    let mut rtp_sent = 0;
    let mut reports = Vec::new();
    let mut collect = |c: &mut MediaCoordinator, now: Duration, reports: &mut Vec<_>| {
        while let Some(output) = c.poll_output() {
            match output {
                MediaOutput::Transmit { socket: LegSocket::Rtp, payload, .. } => {
                    let ssrc = u32::from_be_bytes(payload[8..12].try_into().expect("RTP header"));
                    assert_eq!(*leg_ssrc.get_or_insert(ssrc), ssrc, "one SSRC per leg");
                    rtp_sent += 1;
                }
                MediaOutput::Transmit { socket: LegSocket::Rtcp, dest, payload, .. } => {
                    assert_eq!(dest.port(), FAR_RTCP_PORT);
                    reports.push((now, rtp_sent, payload));
                }
                MediaOutput::Event(MediaEvent::LegClosed { .. } | MediaEvent::PlayDone { .. }) => {}
                MediaOutput::Event(e) => panic!("unexpected {e:?}"),
            }
        }
    };
    for n in 0..TICKS {
        let now = TICK * n as u32;
        if n % 2 == 0 && n / 2 < u64::from(FAR_PACKETS) {
            let i = (n / 2) as u16;
            if !LOST.contains(&i) {
                c.handle_rtp(now, leg, far, &far_rtp(i));
            }
        }
        if n == FAR_RTCP_TICK {
            c.handle_rtcp(now, leg, far, &far_rtcp());
        }
        assert_eq!(c.tick(now), 1, "one tick due at {now:?}");
        collect(&mut c, now, &mut reports);
    }
    let end = TICK * TICKS as u32;
    c.handle_cmd(end, MediaCmd::DestroyLeg { leg });
    collect(&mut c, end, &mut reports);
    let bye = reports.pop().expect("the last report and BYE");
    Call { leg_ssrc: leg_ssrc.expect("rms sent RTP"), reports, bye }
}

/// The far end's packet `i`: PCMU, 20 ms of µ-law silence.
fn far_rtp(i: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&(FIRST_SEQ + i).to_be_bytes());
    p.extend_from_slice(&(50_000 + 160 * u32::from(i)).to_be_bytes());
    p.extend_from_slice(&FAR_SSRC.to_be_bytes());
    p.extend_from_slice(&[0xff; 160]);
    p
}

/// The far end's SR (no report block: it has not heard rms's RTCP), SDES and XR with an RRTR.
fn far_rtcp() -> Vec<u8> {
    let sender =
        SenderInfo { ntp: NtpTimestamp(FAR_SR_NTP), rtp_timestamp: 66_000, packet_count: 101, octet_count: 16_160 };
    let compound = RtcpCompound {
        packets: vec![
            RtcpPacket::SenderReport { ssrc: FAR_SSRC, sender, reports: vec![] },
            RtcpPacket::Sdes { chunks: vec![(FAR_SSRC, "far@example.org".into())] },
            RtcpPacket::Xr {
                ssrc: FAR_SSRC,
                blocks: vec![XrBlock::ReceiverReferenceTime { ntp: NtpTimestamp(FAR_RRTR_NTP) }],
            },
        ],
    };
    let mut bytes = Vec::new();
    compound.write(&mut bytes).expect("write the far end's RTCP");
    bytes
}

fn unmarshal(bytes: &[u8]) -> Vec<Box<dyn Packet + Send + Sync>> {
    let mut raw = bytes::Bytes::copy_from_slice(bytes);
    rtcp::packet::unmarshal(&mut raw).unwrap_or_else(|e| panic!("webrtc-rs rejects rms's RTCP ({e}): {bytes:02x?}"))
}

/// webrtc-rs packets and XR blocks, both `Box<dyn Packet>`, as the type `what` says they are.
fn downcast<'a, T: 'static>(packet: &'a (dyn Packet + Send + Sync), what: &str) -> &'a T {
    packet.as_any().downcast_ref::<T>().unwrap_or_else(|| panic!("expected {what}: {packet:?}"))
}

/// `tshark -V` of `capture`, UDP port `port` decoded as RTCP.
fn tshark_verbose(capture: &std::path::Path, port: u16) -> String {
    let out = Command::new("tshark")
        .arg("-V")
        .arg("-r")
        .arg(capture)
        .args(["-d", &format!("udp.port=={port},rtcp")])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run tshark ({e}): install Debian's tshark (the README's test command does)")
        });
    assert!(out.status.success(), "tshark failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("tshark prints UTF-8")
}

fn work_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rms-rtcp-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
