//! `--call-log FILE`: one JSON object per ended call, appended as a line (JSON Lines).

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use rms_filters::rtp::xr::VoipMetrics;

use crate::media::LegReport;
use crate::session::{CallRecord, EndReason, LegQuality};

/// An open call log.
pub struct CallLog {
    file: File,
    /// Wall-clock time of the runtime's `now == 0`, to print absolute times.
    epoch: SystemTime,
}

impl CallLog {
    pub fn open(path: &Path, epoch: SystemTime) -> io::Result<Self> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self { file, epoch })
    }

    /// Append one call (a single `write` per line, so concurrent readers see whole lines).
    pub fn append(&mut self, record: &CallRecord) -> io::Result<()> {
        let mut line = serde_json::to_vec(&record_json(record, self.epoch)).map_err(io::Error::other)?;
        line.push(b'\n');
        self.file.write_all(&line)
    }
}

/// The call log object for one call.
pub fn record_json(record: &CallRecord, epoch: SystemTime) -> Value {
    let at = |d: Duration| unix_seconds(epoch + d);
    let status = match record.reason {
        EndReason::Rejected { status } | EndReason::BridgeFailed { status } => Some(status),
        _ => None,
    };
    let detail = match &record.reason {
        EndReason::Error { detail } => Some(detail.clone()),
        _ => None,
    };
    let legs: Vec<Value> = [
        record.leg.as_ref().map(|r| leg_json("A", r, record.started)),
        record.b_leg.as_ref().map(|r| leg_json("B", r, record.started)),
    ]
    .into_iter()
    .flatten()
    .collect();
    json!({
        "call_id": record.id,
        "from": record.from,
        "to": record.to,
        "ruri": record.ruri,
        "codec": record.codec.map(|c| c.name()),
        "start": at(record.started),
        "answer": record.answered.map(at),
        "end": at(record.ended),
        "duration_s": record.answered.map(|a| record.ended.saturating_sub(a).as_secs_f64()),
        "end_reason": record.reason.name(),
        "status": status,
        "error": detail,
        "hung_up_by": record.reason.hung_up_by(),
        "b_codec": record.b_codec.map(|c| c.name()),
        "legs": legs,
    })
}

/// The seed's "RTP STATISTICS" and "FILTER USAGE STATISTICS" blocks, structured, and the leg's quality
/// (E-model per interval, RTCP, the last XR VoIP metrics both ways). `call_started` dates `mos_min_at`.
pub fn leg_json(label: &'static str, report: &LegReport, call_started: Duration) -> Value {
    let (s, r) = (&report.sent, &report.received);
    let q = LegQuality::of(label, report, call_started);
    let c = &report.rtcp.counters;
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    json!({
        "leg": label,
        "quality": {
            "mos_min": q.mos_min.map(|(mos, _)| round(mos)),
            "mos_min_at_s": q.mos_min.map(|(_, at)| round(at)),
            "mos_max": q.mos_max.map(round),
            "mos_average": q.mos_average.map(round),
            "packetloss_percent": q.packetloss.map(round),
            "jitter_ms": q.jitter.map(round),
            "roundtrip_ms": q.roundtrip.map(round),
            "samples": q.samples,
            "local_xr": report.rtcp.local_metrics.map(|m| xr_json(&m)),
            "remote_xr": report.rtcp.remote_metrics.map(|m| xr_json(&m)),
        },
        "rtcp": {
            "sent_packets": c.sent_packets,
            "sent_bytes": c.sent_bytes,
            "received_packets": c.received_packets,
            "received_bytes": c.received_bytes,
            "malformed": c.malformed,
            "ignored": c.ignored,
            "local_ssrc": report.local_ssrc,
            "remote_ssrc": report.remote_ssrc,
        },
        "rtp": {
            "sent_packets": s.packets,
            "sent_bytes": s.bytes,
            "received_packets": r.packets,
            "received_bytes": r.bytes,
            "delivered_bytes": r.delivered_bytes,
            "duplicated": r.duplicated,
            "lost": r.cumulative_lost,
            "late": r.late,
            "bad_formatted": r.bad_formatted,
            "discarded": r.discarded,
        },
        "ticks": report.ticks,
        "filters": report.usage.rows.iter().map(|row| json!({
            "name": row.name,
            "count": row.stats.count,
            "mean_ns": row.stats.total_ns.checked_div(row.stats.count).unwrap_or(0),
            "max_ns": row.stats.max_ns,
            "share_percent": (row.share_percent * 100.0).round() / 100.0,
        })).collect::<Vec<_>>(),
    })
}

/// An RFC 3611 VoIP metrics block in its report units (percent, ms, MOS).
fn xr_json(m: &VoipMetrics) -> Value {
    let pct = |v: u8| (f64::from(v) * 1000.0 / 256.0).round() / 10.0;
    let opt = |v: u8| (v != rms_filters::rtp::xr::UNAVAILABLE).then_some(v);
    json!({
        "loss_percent": pct(m.loss_rate),
        "discard_percent": pct(m.discard_rate),
        "burst_density_percent": pct(m.burst_density),
        "gap_density_percent": pct(m.gap_density),
        "burst_duration_ms": m.burst_duration,
        "gap_duration_ms": m.gap_duration,
        "round_trip_ms": m.round_trip_delay,
        "end_system_delay_ms": m.end_system_delay,
        "r_factor": opt(m.r_factor),
        "mos_lq": opt(m.mos_lq).map(|v| f64::from(v) / 10.0),
        "mos_cq": opt(m.mos_cq).map(|v| f64::from(v) / 10.0),
        "jb_nominal_ms": m.jb_nominal,
        "jb_max_ms": m.jb_maximum,
    })
}

fn unix_seconds(t: SystemTime) -> f64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}
