//! `--call-log FILE`: one JSON object per ended call, appended as a line (JSON Lines).

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::media::LegReport;
use crate::session::{CallRecord, EndReason};

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
    let legs: Vec<Value> =
        [record.leg.as_ref().map(|r| leg_json("A", r)), record.b_leg.as_ref().map(|r| leg_json("B", r))]
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

/// The seed's "RTP STATISTICS" and "FILTER USAGE STATISTICS" blocks, structured.
pub fn leg_json(label: &str, report: &LegReport) -> Value {
    let (s, r) = (&report.sent, &report.received);
    json!({
        "leg": label,
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

fn unix_seconds(t: SystemTime) -> f64 {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}
