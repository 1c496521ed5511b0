//! The 10 ms tick schedule: tick N is due at N × 10 ms after the coordinator's start, whatever time the
//! previous ticks actually ran, so the media clock never drifts. A tick that runs a whole period or more
//! after its due time is counted late; it still runs (catch-up), never silently skipped.

use std::time::Duration;

use rms_filters::TICK;

/// Lateness counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickStats {
    /// Ticks run so far.
    pub ticks: u64,
    /// Ticks that ran ≥ one tick period after their due time.
    pub late: u64,
    /// Largest lateness seen.
    pub max_lateness: Duration,
    /// Sum of lateness over all ticks (mean = total / ticks).
    pub total_lateness: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct TickSchedule {
    next: u64,
    stats: TickStats,
}

impl TickSchedule {
    pub fn new() -> Self {
        Self::default()
    }

    /// When the next tick is due.
    pub fn next_due(&self) -> Duration {
        // Not `TICK * n as u32`: that wraps after 2^32 ticks (497 days).
        Duration::from_nanos(self.next.saturating_mul(TICK.as_nanos() as u64))
    }

    /// If a tick is due at `now`, take it: returns its index and due time, and records its lateness.
    pub fn poll(&mut self, now: Duration) -> Option<(u64, Duration)> {
        let due = self.next_due();
        if now < due {
            return None;
        }
        let lateness = now - due;
        self.stats.ticks += 1;
        self.stats.total_lateness += lateness;
        self.stats.max_lateness = self.stats.max_lateness.max(lateness);
        if lateness >= TICK {
            self.stats.late += 1;
        }
        let n = self.next;
        self.next += 1;
        Some((n, due))
    }

    pub fn stats(&self) -> TickStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn ticks_are_due_every_10ms_from_start_without_drift() {
        let mut s = TickSchedule::new();
        assert_eq!(s.poll(ms(0)), Some((0, ms(0))));
        assert_eq!(s.poll(ms(9)), None);
        // Running tick 1 late (at 13 ms) does not move tick 2 from 20 ms.
        assert_eq!(s.poll(ms(13)), Some((1, ms(10))));
        assert_eq!(s.next_due(), ms(20));
        assert_eq!(s.poll(ms(20)), Some((2, ms(20))));
        assert_eq!(s.stats().late, 0);
        assert_eq!(s.stats().max_lateness, ms(3));
    }

    #[test]
    fn the_schedule_does_not_wrap_after_2_pow_32_ticks() {
        let mut s = TickSchedule { next: 1 << 32, stats: TickStats::default() };
        assert_eq!(s.next_due(), Duration::from_millis((1u64 << 32) * 10));
        assert_eq!(s.poll(Duration::from_secs(1)), None, "not due for 497 days");
    }

    #[test]
    fn a_stall_is_caught_up_tick_by_tick_and_counted_late() {
        let mut s = TickSchedule::new();
        s.poll(ms(0));
        // The thread stalls until 45 ms: ticks 1..=4 are due; each runs, none is skipped.
        let ran: Vec<_> = std::iter::from_fn(|| s.poll(ms(45))).collect();
        assert_eq!(ran, vec![(1, ms(10)), (2, ms(20)), (3, ms(30)), (4, ms(40))]);
        // Lateness 35, 25, 15 ms are a period or more; 5 ms is not.
        assert_eq!(s.stats().late, 3);
        assert_eq!(s.stats().ticks, 5);
        assert_eq!(s.stats().max_lateness, ms(35));
        assert_eq!(s.next_due(), ms(50));
    }
}
