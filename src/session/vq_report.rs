//! RFC 6035 voice-quality reports: the `application/vq-rtcpxr` body of the `PUBLISH` sent per leg at
//! call end to `--vq-collector` (`VQSessionReport: CallTerm`, §4.2), with our measurements as
//! LocalMetrics and the peer's RTCP XR VoIP metrics, when it sent any, as RemoteMetrics.
//!
//! Lines end in CRLF and are never folded (§4.2 allows folding; collectors need not handle it);
//! percentages have one decimal; delays and jitter-buffer sizes are in ms (§4.3).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::SystemTime;

use rms_filters::rtp::xr::{JitterBufferKind, Plc, VoipMetrics, LEVEL_UNAVAILABLE, UNAVAILABLE};

/// RFC 6035 §3.2: the event package name.
pub const EVENT: &str = "vq-rtcpxr";
/// RFC 6035 §3.3 / §7.2: the body's media type.
pub const CONTENT_TYPE: &str = "application/vq-rtcpxr";

/// One leg's report.
#[derive(Debug, Clone, PartialEq)]
pub struct VqReport {
    /// The leg's SIP Call-ID (§4.3 CallID).
    pub call_id: String,
    /// Our and the peer's SIP identities (From/To of the leg as we see it), and the caller's.
    pub local_id: String,
    pub remote_id: String,
    pub orig_id: String,
    /// Our and the peer's RTP address and SSRC (§4.3 LocalAddr/RemoteAddr).
    pub local_addr: SocketAddr,
    pub local_ssrc: u32,
    pub remote_addr: SocketAddr,
    pub remote_ssrc: Option<u32>,
    pub start: SystemTime,
    pub stop: SystemTime,
    pub session: SessionDesc,
    /// What we measured of the peer's stream.
    pub local: Option<Metrics>,
    /// What the peer measured of ours (its RTCP XR VoIP metrics).
    pub remote: Option<Metrics>,
    /// `call-id;to-tag=..;from-tag=..` (§4.3 DialogID).
    pub dialog_id: Option<String>,
}

/// §4.3 SessionDesc: the received stream's codec and packetisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDesc {
    pub payload_type: u8,
    /// The codec's name (`PCMU`).
    pub payload_desc: String,
    /// The RTP clock rate.
    pub sample_rate: u32,
    /// Packet duration in ms; one frame per packet.
    pub frame_ms: u32,
}

/// One direction's metrics (§4.3), in the report's units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Metrics {
    pub xr: VoipMetrics,
    /// Interarrival jitter (RFC 3550 A.8) in ms, when known (§4.3 IAJ).
    pub interarrival_jitter_ms: Option<u32>,
}

impl VqReport {
    /// The body (§4.2 CallTermReport).
    pub fn body(&self) -> String {
        let mut b = String::with_capacity(1024);
        line(&mut b, format_args!("VQSessionReport: CallTerm"));
        line(&mut b, format_args!("CallID: {}", self.call_id));
        line(&mut b, format_args!("LocalID: {}", self.local_id));
        line(&mut b, format_args!("RemoteID: {}", self.remote_id));
        line(&mut b, format_args!("OrigID: {}", self.orig_id));
        line(&mut b, format_args!("LocalAddr: {}", addr(self.local_addr, self.local_ssrc)));
        // §4.2 requires an SSRC: 0 when the peer never sent RTP we accepted.
        line(&mut b, format_args!("RemoteAddr: {}", addr(self.remote_addr, self.remote_ssrc.unwrap_or(0))));
        // §4.2: LocalMetrics is required, with at least its Timestamps; the measured lines follow when
        // something was received.
        line(&mut b, format_args!("LocalMetrics:"));
        match &self.local {
            Some(local) => self.metrics(&mut b, local),
            None => self.session_lines(&mut b, None),
        }
        if let Some(remote) = &self.remote {
            line(&mut b, format_args!("RemoteMetrics:"));
            self.metrics(&mut b, remote);
        }
        if let Some(d) = &self.dialog_id {
            line(&mut b, format_args!("DialogID: {d}"));
        }
        b
    }

    /// Timestamps and SessionDesc (§4.3), with the PLC the metrics say was used.
    fn session_lines(&self, b: &mut String, plc: Option<Plc>) {
        let s = &self.session;
        line(b, format_args!("Timestamps: START={} STOP={}", time(self.start), time(self.stop)));
        let pps = 1000 / s.frame_ms.max(1);
        let plc = match plc {
            Some(Plc::Standard) => 3,
            Some(Plc::Enhanced) => 2,
            Some(Plc::Disabled) => 1,
            Some(Plc::Unspecified) | None => 0,
        };
        line(
            b,
            format_args!(
                "SessionDesc: PT={} PD={} SR={} FD={} FPP=1 PPS={pps} PLC={plc} SSUP=off",
                s.payload_type, s.payload_desc, s.sample_rate, s.frame_ms
            ),
        );
    }

    fn metrics(&self, b: &mut String, m: &Metrics) {
        let x = &m.xr;
        self.session_lines(b, Some(x.rx_config.plc));
        let jba = match x.rx_config.jitter_buffer {
            JitterBufferKind::Adaptive => 3,
            JitterBufferKind::NonAdaptive => 2,
            JitterBufferKind::Reserved | JitterBufferKind::Unknown => 0,
        };
        line(
            b,
            format_args!(
                "JitterBuffer: JBA={jba} JBR={} JBN={} JBM={} JBX={}",
                x.rx_config.jb_rate, x.jb_nominal, x.jb_maximum, x.jb_abs_max
            ),
        );
        line(b, format_args!("PacketLoss: NLR={} JDR={}", percent(x.loss_rate), percent(x.discard_rate)));
        line(
            b,
            format_args!(
                "BurstGapLoss: BLD={} BD={} GLD={} GD={} GMIN={}",
                percent(x.burst_density),
                x.burst_duration,
                percent(x.gap_density),
                x.gap_duration,
                x.gmin
            ),
        );
        let mut delay = format!("Delay: RTD={} ESD={}", x.round_trip_delay, x.end_system_delay);
        if let Some(iaj) = m.interarrival_jitter_ms {
            let _ = write!(delay, " IAJ={iaj}");
        }
        line(b, format_args!("{delay}"));
        let mut signal = String::from("Signal:");
        // §4.3: a value we cannot measure (127 in RFC 3611) is left out.
        if x.signal_level != LEVEL_UNAVAILABLE {
            let _ = write!(signal, " SL={}", x.signal_level);
        }
        if x.noise_level != LEVEL_UNAVAILABLE {
            let _ = write!(signal, " NL={}", x.noise_level);
        }
        if x.rerl != UNAVAILABLE {
            let _ = write!(signal, " RERL={}", x.rerl);
        }
        if signal.len() > "Signal:".len() {
            line(b, format_args!("{signal}"));
        }
        let mut q = String::from("QualityEst:");
        if x.r_factor != UNAVAILABLE {
            let _ = write!(q, " RCQ={}", x.r_factor);
        }
        if x.mos_lq != UNAVAILABLE {
            let _ = write!(q, " MOSLQ={}", tenths(x.mos_lq));
        }
        if x.mos_cq != UNAVAILABLE {
            let _ = write!(q, " MOSCQ={}", tenths(x.mos_cq));
        }
        // §4.3 QoEEstAlg names the estimator.
        let _ = write!(q, " QoEEstAlg=ITU-T G.107");
        line(b, format_args!("{q}"));
    }
}

fn line(b: &mut String, args: std::fmt::Arguments<'_>) {
    let _ = b.write_fmt(args);
    b.push_str("\r\n");
}

/// §4.3 `IP=.. PORT=.. SSRC=0x..` (the ABNF's `0x`, which the RFC's own example forgets).
fn addr(a: SocketAddr, ssrc: u32) -> String {
    format!("IP={} PORT={} SSRC=0x{ssrc:08x}", a.ip(), a.port())
}

/// A fraction in 1/256 as a percentage with one decimal.
fn percent(fraction: u8) -> String {
    format!("{:.1}", f64::from(fraction) * 100.0 / 256.0)
}

/// MOS ×10 as `4.2`.
fn tenths(v: u8) -> String {
    format!("{}.{}", v / 10, v % 10)
}

/// RFC 3339 UTC, to the second (§4.3 `date-time`).
fn time(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rms_filters::rtp::xr::RxConfig;
    use std::time::{Duration, UNIX_EPOCH};

    fn metrics() -> VoipMetrics {
        VoipMetrics {
            ssrc: 0x2468_abcd,
            loss_rate: 13,
            discard_rate: 5,
            burst_density: 0,
            gap_density: 5,
            burst_duration: 0,
            gap_duration: 500,
            round_trip_delay: 200,
            end_system_delay: 140,
            signal_level: -21,
            noise_level: -50,
            rerl: 127,
            gmin: 16,
            r_factor: 90,
            ext_r_factor: 127,
            mos_lq: 42,
            mos_cq: 43,
            rx_config: RxConfig { plc: Plc::Standard, jitter_buffer: JitterBufferKind::Adaptive, jb_rate: 0 },
            jb_nominal: 40,
            jb_maximum: 80,
            jb_abs_max: 120,
        }
    }

    /// The layout of RFC 6035 §4.7.3 F13, with our fields.
    #[test]
    fn a_call_term_report_has_the_rfcs_lines_in_order() {
        let report = VqReport {
            call_id: "6dg37f1890463".into(),
            local_id: "<sip:ivr@192.0.2.100>".into(),
            remote_id: "<sip:bill@example.net>".into(),
            orig_id: "<sip:bill@example.net>".into(),
            local_addr: "192.0.2.100:5000".parse().unwrap(),
            local_ssrc: 0x1a3b_5c7d,
            remote_addr: "198.51.100.150:5002".parse().unwrap(),
            remote_ssrc: Some(0x2468_abcd),
            start: UNIX_EPOCH + Duration::from_secs(1_097_432_623),
            stop: UNIX_EPOCH + Duration::from_secs(1_097_432_762),
            session: SessionDesc { payload_type: 0, payload_desc: "PCMU".into(), sample_rate: 8000, frame_ms: 20 },
            local: Some(Metrics { xr: metrics(), interarrival_jitter_ms: Some(2) }),
            remote: None,
            dialog_id: Some("6dg37f1890463;to-tag=8472761;from-tag=9123dh311".into()),
        };
        let body = report.body();
        assert!(body.ends_with("\r\n") && !body.replace("\r\n", "").contains('\n'));
        let lines: Vec<&str> = body.split("\r\n").collect();
        assert_eq!(
            lines,
            [
                "VQSessionReport: CallTerm",
                "CallID: 6dg37f1890463",
                "LocalID: <sip:ivr@192.0.2.100>",
                "RemoteID: <sip:bill@example.net>",
                "OrigID: <sip:bill@example.net>",
                "LocalAddr: IP=192.0.2.100 PORT=5000 SSRC=0x1a3b5c7d",
                "RemoteAddr: IP=198.51.100.150 PORT=5002 SSRC=0x2468abcd",
                "LocalMetrics:",
                "Timestamps: START=2004-10-10T18:23:43Z STOP=2004-10-10T18:26:02Z",
                "SessionDesc: PT=0 PD=PCMU SR=8000 FD=20 FPP=1 PPS=50 PLC=3 SSUP=off",
                "JitterBuffer: JBA=3 JBR=0 JBN=40 JBM=80 JBX=120",
                "PacketLoss: NLR=5.1 JDR=2.0",
                "BurstGapLoss: BLD=0.0 BD=0 GLD=2.0 GD=500 GMIN=16",
                "Delay: RTD=200 ESD=140 IAJ=2",
                "Signal: SL=-21 NL=-50",
                "QualityEst: RCQ=90 MOSLQ=4.2 MOSCQ=4.3 QoEEstAlg=ITU-T G.107",
                "DialogID: 6dg37f1890463;to-tag=8472761;from-tag=9123dh311",
                "",
            ]
        );
        // Nothing received: LocalMetrics still opens with its Timestamps and SessionDesc (§4.2), and the
        // peer's SSRC is 0.
        let silent = VqReport { local: None, remote_ssrc: None, dialog_id: None, ..report }.body();
        let lines: Vec<&str> = silent.split("\r\n").collect();
        assert_eq!(
            lines[6..],
            [
                "RemoteAddr: IP=198.51.100.150 PORT=5002 SSRC=0x00000000",
                "LocalMetrics:",
                "Timestamps: START=2004-10-10T18:23:43Z STOP=2004-10-10T18:26:02Z",
                "SessionDesc: PT=0 PD=PCMU SR=8000 FD=20 FPP=1 PPS=50 PLC=0 SSUP=off",
                "",
            ]
        );
    }
}
