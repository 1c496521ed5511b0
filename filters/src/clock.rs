//! A real [`UsageClock`] for the runtime layer and benchmarks. Graphs never construct one: it is
//! injected by whoever ticks them (tests pass [`crate::NoClock`]).
//!
//! Every filter run reads the clock twice over, so its cost is part of every tick: `clock_gettime`
//! costs about 70 ns a read on the virtual machines rms was measured on, the x86_64 time-stamp counter
//! about 20 ns. With an invariant TSC (every x86_64 CPU of the last decade) the counter is read and
//! scaled to nanoseconds by a factor calibrated once against the monotonic clock.

// The one place in this crate that reads a real clock: see the module docs.
#![allow(clippy::disallowed_methods)]

use std::time::{Duration, Instant};

use crate::filter::UsageClock;

/// Monotonic nanoseconds from the TSC where available, else from `Instant`.
#[derive(Debug, Clone, Copy)]
pub struct TscClock {
    origin: Instant,
    #[cfg(target_arch = "x86_64")]
    tsc_origin: u64,
    /// Nanoseconds per TSC tick in 32.32 fixed point; 0 means "use `Instant`".
    ns_per_tick_q32: u64,
}

impl TscClock {
    /// Calibrates for about `CALIBRATION` (a busy wait, done once at start-up).
    pub const CALIBRATION: Duration = Duration::from_millis(5);

    pub fn new() -> Self {
        let origin = Instant::now();
        #[cfg(target_arch = "x86_64")]
        {
            let tsc_origin = rdtsc();
            while origin.elapsed() < Self::CALIBRATION {
                std::hint::spin_loop();
            }
            let (ns, ticks) = (origin.elapsed().as_nanos() as u64, rdtsc().wrapping_sub(tsc_origin));
            // Without TSC progress (odd hypervisors) fall back to the OS clock.
            let ns_per_tick_q32 = if ticks > 1000 { ((u128::from(ns) << 32) / u128::from(ticks)) as u64 } else { 0 };
            Self { origin, tsc_origin, ns_per_tick_q32 }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self { origin, ns_per_tick_q32: 0 }
    }
}

impl Default for TscClock {
    fn default() -> Self {
        Self::new()
    }
}

impl UsageClock for TscClock {
    fn now_ns(&self) -> u64 {
        #[cfg(target_arch = "x86_64")]
        if self.ns_per_tick_q32 != 0 {
            let ticks = rdtsc().wrapping_sub(self.tsc_origin);
            return ((u128::from(ticks) * u128::from(self.ns_per_tick_q32)) >> 32) as u64;
        }
        self.origin.elapsed().as_nanos() as u64
    }
}

#[cfg(target_arch = "x86_64")]
fn rdtsc() -> u64 {
    // SAFETY: RDTSC is available on every x86_64 CPU and has no memory effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsc_clock_is_monotonic_and_in_nanoseconds() {
        let clock = TscClock::new();
        let a = clock.now_ns();
        // Busy for a while by the OS clock, then compare the two clocks' views of it.
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(20) {
            std::hint::spin_loop();
        }
        let b = clock.now_ns();
        let os = start.elapsed().as_nanos() as u64;
        assert!(b > a);
        // Within 20 % of the OS clock (the VM can pause us between the reads; the bound is loose).
        let measured = b - a;
        assert!(measured > os * 8 / 10 && measured < os * 12 / 10 + 2_000_000, "tsc {measured} ns vs os {os} ns");
    }
}
