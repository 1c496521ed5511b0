//! RFC 3261 §17 transaction timers as one table (quinn's `TimerTable`), with RFC 6026's L and M.
//!
//! Times are `Duration`s since the runtime started (virtual in tests), like the media coordinator's.

use std::time::Duration;

/// Base timer values (RFC 3261 §17.1.1.1, Table 4). Defaults: T1 500 ms, T2 4 s, T4 5 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerConfig {
    /// RTT estimate: first retransmission interval.
    pub t1: Duration,
    /// Cap on non-INVITE request and INVITE response retransmission intervals.
    pub t2: Duration,
    /// Longest time a message stays in the network.
    pub t4: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        Self { t1: Duration::from_millis(500), t2: Duration::from_secs(4), t4: Duration::from_secs(5) }
    }
}

impl TimerConfig {
    /// 64 × T1: the transaction timeout (timers B, F, H, J, L, M).
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }
}

/// Every timer a transaction can run (RFC 3261 Table 4 and RFC 6026 §8.4, §8.11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Timer {
    /// INVITE client: request retransmission (UDP).
    A,
    /// INVITE client: transaction timeout.
    B,
    /// INVITE client: wait for response retransmissions in Completed.
    D,
    /// Non-INVITE client: request retransmission (UDP).
    E,
    /// Non-INVITE client: transaction timeout.
    F,
    /// INVITE server: final response retransmission (UDP).
    G,
    /// INVITE server: wait for the ACK.
    H,
    /// INVITE server: wait for ACK retransmissions in Confirmed.
    I,
    /// Non-INVITE server: wait for request retransmissions in Completed.
    J,
    /// Non-INVITE client: wait for response retransmissions in Completed.
    K,
    /// INVITE server (RFC 6026): stay in Accepted to absorb INVITE retransmissions.
    L,
    /// INVITE client (RFC 6026): stay in Accepted to pass 2xx retransmissions up.
    M,
}

impl Timer {
    const ALL: [Timer; 12] = [
        Timer::A,
        Timer::B,
        Timer::D,
        Timer::E,
        Timer::F,
        Timer::G,
        Timer::H,
        Timer::I,
        Timer::J,
        Timer::K,
        Timer::L,
        Timer::M,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// When each timer fires, `None` when stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimerTable {
    deadlines: [Option<Duration>; Timer::ALL.len()],
}

impl TimerTable {
    pub fn set(&mut self, timer: Timer, at: Duration) {
        self.deadlines[timer.index()] = Some(at);
    }

    pub fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    pub fn stop_all(&mut self) {
        self.deadlines = Default::default();
    }

    pub fn deadline(&self, timer: Timer) -> Option<Duration> {
        self.deadlines[timer.index()]
    }

    /// The earliest running deadline.
    pub fn next_timeout(&self) -> Option<Duration> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Stop and return the earliest timer due by `now` (ties in table order).
    pub fn expire(&mut self, now: Duration) -> Option<Timer> {
        let (timer, _) = Timer::ALL
            .iter()
            .filter_map(|&t| self.deadline(t).filter(|&at| at <= now).map(|at| (t, at)))
            .min_by_key(|&(_, at)| at)?;
        self.stop(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_in_deadline_order_and_only_when_due() {
        let mut t = TimerTable::default();
        t.set(Timer::B, Duration::from_secs(32));
        t.set(Timer::A, Duration::from_millis(500));
        assert_eq!(t.next_timeout(), Some(Duration::from_millis(500)));
        assert_eq!(t.expire(Duration::from_millis(499)), None);
        assert_eq!(t.expire(Duration::from_secs(40)), Some(Timer::A));
        assert_eq!(t.expire(Duration::from_secs(40)), Some(Timer::B));
        assert_eq!(t.expire(Duration::from_secs(40)), None);
        assert_eq!(t.next_timeout(), None);
    }
}
