//! The filter contract (mediastreamer2's `MSFilterDesc`, typed) and per-filter usage statistics.
//!
//! A filter declares its pins in a [`FilterDesc`] and does all its work in [`Filter::process`], called at
//! most once per 10 ms tick. It must consume everything queued on its inputs each time it runs.

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::frame::Frame;

/// Most pins a filter may have on each side.
pub const MAX_PINS: usize = 8;

/// Length of one graph tick.
pub const TICK: Duration = Duration::from_millis(10);

/// What a filter is: its name and pins. Visible so a graph can be checked before it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FilterDesc {
    pub name: &'static str,
    /// Input and output pin counts, at most [`MAX_PINS`] each.
    pub inputs: usize,
    pub outputs: usize,
    /// A pump runs every tick even with empty inputs (it keeps time, like `rtp_send`).
    pub pump: bool,
}

/// A node of a filter graph.
///
/// `Any` lets the owner of a graph reach a concrete filter (`Graph::filter_mut::<RtpRecv>`) to feed it
/// datagrams or change its settings between ticks.
pub trait Filter: Any + Send {
    fn desc(&self) -> FilterDesc;
    fn process(&mut self, cx: &mut ProcessCx<'_>) -> Result<(), FilterError>;
}

/// Why a filter failed. A failure ends the filter's graph (and so only its own call).
#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("{filter}: expected {expected} frames on input {pin}, got {got}")]
    UnexpectedFrame { filter: &'static str, pin: usize, expected: &'static str, got: &'static str },
    #[error("{filter}: unsupported audio format: {rate} Hz")]
    UnsupportedRate { filter: &'static str, rate: u32 },
    #[error("{filter}: resampler failed: {detail}")]
    Resampler { filter: &'static str, detail: String },
    #[error("{filter}: cannot write {path}: {source}")]
    Write { filter: &'static str, path: PathBuf, source: std::io::Error },
    #[error("{filter}: injected failure")]
    Injected { filter: &'static str },
}

/// Something a filter reports to the graph's owner (the media coordinator).
#[derive(Debug, Clone, PartialEq)]
pub enum FilterEvent {
    /// The file player emitted the last samples of `file` (after `loops` plays).
    EndOfFile { file: PathBuf },
    /// A file could not be opened or decoded; the player stopped and the graph keeps running.
    FileError { file: PathBuf, error: crate::nodes::file_player::FileError },
    /// The recorder closed `file` after writing `samples` samples.
    RecordingClosed { file: PathBuf, samples: u64 },
}

/// A datagram a filter wants sent. `source` is the opaque tag the graph owner gave the sending filter
/// (the coordinator uses its leg id); the owner maps it to a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub source: u32,
    pub dest: SocketAddr,
    pub payload: Vec<u8>,
}

/// A link's frame queue.
pub type Queue = VecDeque<Frame>;

/// What `process` sees: its input and output queues, the time, and the graph's outboxes.
pub struct ProcessCx<'a> {
    /// Virtual time of this tick (time since the graph's owner started).
    pub now: Duration,
    /// Index of this tick in the graph's life (0 for its first tick).
    pub tick: u64,
    pub(crate) queues: &'a mut [Queue],
    pub(crate) inputs: &'a [Option<u16>],
    pub(crate) outputs: &'a [Option<u16>],
    pub(crate) events: &'a mut Vec<FilterEvent>,
    pub(crate) transmits: &'a mut Vec<Transmit>,
}

impl<'a> ProcessCx<'a> {
    /// Build a context over caller-owned queues (test harnesses and single-filter use).
    pub fn new(
        now: Duration,
        tick: u64,
        queues: &'a mut [Queue],
        inputs: &'a [Option<u16>],
        outputs: &'a [Option<u16>],
        events: &'a mut Vec<FilterEvent>,
        transmits: &'a mut Vec<Transmit>,
    ) -> Self {
        Self { now, tick, queues, inputs, outputs, events, transmits }
    }

    /// Next frame queued on input `pin`, oldest first.
    pub fn pop(&mut self, pin: usize) -> Option<Frame> {
        let q = (*self.inputs.get(pin)?)?;
        self.queues[usize::from(q)].pop_front()
    }

    /// Next frame on input `pin`, which must be audio: anything else is `filter`'s error.
    pub fn pop_audio(
        &mut self,
        pin: usize,
        filter: &'static str,
    ) -> Result<Option<crate::frame::AudioFrame>, FilterError> {
        match self.pop(pin) {
            None => Ok(None),
            Some(Frame::Audio(a)) => Ok(Some(a)),
            Some(other) => Err(FilterError::UnexpectedFrame { filter, pin, expected: "audio", got: other.kind() }),
        }
    }

    /// Whether input `pin` has a frame queued.
    pub fn has_input(&self, pin: usize) -> bool {
        matches!(self.inputs.get(pin), Some(Some(q)) if !self.queues[usize::from(*q)].is_empty())
    }

    /// Queue `frame` on output `pin`. A frame sent to an unlinked output is dropped, as in
    /// mediastreamer2, so a graph can leave a pin unused.
    pub fn push(&mut self, pin: usize, frame: impl Into<Frame>) {
        if let Some(Some(q)) = self.outputs.get(pin) {
            self.queues[usize::from(*q)].push_back(frame.into());
        }
    }

    /// Whether output `pin` is linked.
    pub fn is_linked(&self, pin: usize) -> bool {
        matches!(self.outputs.get(pin), Some(Some(_)))
    }

    pub fn emit(&mut self, event: FilterEvent) {
        self.events.push(event);
    }

    pub fn transmit(&mut self, t: Transmit) {
        self.transmits.push(t);
    }
}

/// Reads a CPU-time clock for usage statistics. Injected so graphs never read a real clock themselves;
/// tests pass [`NoClock`] and stay deterministic, the runtime passes a monotonic clock.
pub trait UsageClock {
    /// Nanoseconds since an arbitrary origin, non-decreasing.
    fn now_ns(&self) -> u64;
}

/// A clock that never moves: usage times read 0.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoClock;

impl UsageClock for NoClock {
    fn now_ns(&self) -> u64 {
        0
    }
}

/// How much one filter ran (the seed's "FILTER USAGE STATISTICS" row).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UsageStats {
    /// Ticks in which `process` ran.
    pub count: u64,
    pub total_ns: u64,
    pub max_ns: u64,
}

impl UsageStats {
    pub(crate) fn record(&mut self, ns: u64) {
        self.count += 1;
        self.total_ns += ns;
        self.max_ns = self.max_ns.max(ns);
    }

    /// Add `other`'s runs to these (two nodes reported as one row).
    pub fn merge(&mut self, other: &UsageStats) {
        self.count += other.count;
        self.total_ns += other.total_ns;
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    pub fn mean_ns(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        self.total_ns as f64 / self.count as f64
    }
}

/// One row of a [`UsageTable`].
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    pub name: &'static str,
    pub stats: UsageStats,
    /// Share of the graph's total filter time, in percent.
    pub share_percent: f64,
}

/// A graph's filter usage, sorted by share, printable as mediastreamer2's table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UsageTable {
    pub rows: Vec<UsageRow>,
}

impl UsageTable {
    pub fn new(stats: impl IntoIterator<Item = (&'static str, UsageStats)>) -> Self {
        let mut rows: Vec<UsageRow> =
            stats.into_iter().map(|(name, stats)| UsageRow { name, stats, share_percent: 0.0 }).collect();
        let total: u64 = rows.iter().map(|r| r.stats.total_ns).sum();
        for r in &mut rows {
            r.share_percent = if total == 0 { 0.0 } else { r.stats.total_ns as f64 * 100.0 / total as f64 };
        }
        rows.sort_by(|a, b| b.stats.total_ns.cmp(&a.stats.total_ns).then(b.stats.count.cmp(&a.stats.count)));
        Self { rows }
    }
}

impl fmt::Display for UsageTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "=====")?;
        writeln!(f, "FILTER USAGE STATISTICS")?;
        writeln!(f, "{:<24} {:>8} {:>15} {:>15} {:>10}", "Name", "Count", "Time/tick (ms)", "Max (ms)", "CPU Usage")?;
        writeln!(f, "-----")?;
        for r in &self.rows {
            writeln!(
                f,
                "{:<24} {:>8} {:>15.7} {:>15.7} {:>10.3}",
                r.name,
                r.stats.count,
                r.stats.mean_ns() / 1e6,
                r.stats.max_ns as f64 / 1e6,
                r.share_percent
            )?;
        }
        write!(f, "=====")
    }
}
