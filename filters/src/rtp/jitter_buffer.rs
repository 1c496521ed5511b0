//! Adaptive playout buffer for one RTP stream.
//!
//! A packet is released when its playout time has come, strictly in sequence order. Its playout time is
//! its timestamp mapped onto the arrival clock through a base packet (arrival time ↔ RTP timestamp), plus
//! a target delay of about twice the measured interarrival jitter (RFC 3550 A.8) plus one packet time.
//!
//! The base and the target change only where that cannot cut audio in the middle of a talkspurt:
//! - at a talkspurt start (marker bit, RFC 3551 §4.1);
//! - at an underrun: the buffer is empty and the newest packet has missed its slot, so playback already
//!   stopped (a delay spike or a sender clock running slow);
//! - at a timestamp jump: the newest packet would wait more than twice the maximum delay (a talkspurt
//!   started without the marker bit).
//!
//! Rebasing on the packet that starts a talkspurt also absorbs the drift between the sender's clock and
//! ours. Everything is in RTP timestamp units; time is passed in as `now`.

use std::collections::VecDeque;
use std::time::Duration;

use crate::frame::RtpFrame;
use crate::rtp::stats::rtp_units;

/// One packet time added to twice the jitter in the target delay.
const PACKET_TIME: Duration = Duration::from_millis(20);

/// Limits of the playout buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Packets held at most; beyond, the oldest is dropped.
    pub max_packets: usize,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self { min_delay: Duration::from_millis(20), max_delay: Duration::from_millis(200), max_packets: 50 }
    }
}

/// Packets the buffer did not release, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Same sequence number as a queued packet.
    pub duplicates: u64,
    /// Arrived after their playout slot, or after a later packet was released (a duplicate of a released
    /// packet counts here: the buffer no longer knows it).
    pub late: u64,
    /// Dropped as the oldest when the buffer was full ("discarded (queue overflow)").
    pub discarded: u64,
    /// Dropped by [`JitterBuffer::reset`].
    pub flushed: u64,
}

/// What [`JitterBuffer::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    Duplicate,
    Late,
    /// The buffer was full and this packet was the oldest.
    Overflow,
}

#[derive(Debug)]
struct Slot {
    /// Playout time in RTP units since time 0.
    playout: i64,
    frame: RtpFrame,
}

/// Playout buffer for one stream, fed extended sequence numbers (`RtpFrame::seq`).
#[derive(Debug)]
pub struct JitterBuffer {
    clock_rate: u32,
    min_delay: i64,
    max_delay: i64,
    max_packets: usize,
    /// Sorted by sequence number.
    queue: VecDeque<Slot>,
    /// Playout time minus unwrapped timestamp, set at each rebase; `None` until the first packet.
    offset: Option<i64>,
    /// Target delay in RTP units.
    target: i64,
    /// Timestamp of the newest packet and its unwrapped value, to unwrap the next ones.
    ts_ref: Option<(u32, i64)>,
    /// Highest sequence number accepted.
    highest: Option<u32>,
    /// Highest sequence number released or discarded: anything at or below it is late.
    released: Option<u32>,
    /// Time of the last `pop`: a packet due by then has missed its slot.
    last_pop: Option<i64>,
    stats: JitterStats,
}

impl JitterBuffer {
    pub fn new(clock_rate: u32, config: JitterConfig) -> Self {
        let units = |d: Duration| rtp_units(d, clock_rate) as i64;
        let min_delay = units(config.min_delay);
        let max_delay = units(config.max_delay).max(min_delay);
        let max_packets = config.max_packets.max(1);
        let mut buffer = Self {
            clock_rate,
            min_delay,
            max_delay,
            max_packets,
            // One spare slot: a push inserts before dropping the oldest, without reallocating.
            queue: VecDeque::with_capacity(max_packets + 1),
            offset: None,
            target: 0,
            ts_ref: None,
            highest: None,
            released: None,
            last_pop: None,
            stats: JitterStats::default(),
        };
        buffer.target = buffer.target_for(0);
        buffer
    }

    /// Queue `frame`, which arrived at `now`. `jitter` is the stream's current interarrival jitter in
    /// timestamp units (`SourceStats::jitter`); it sets the target delay when the buffer rebases.
    pub fn push(&mut self, now: Duration, frame: RtpFrame, jitter: u32) -> Pushed {
        let now = rtp_units(now, self.clock_rate) as i64;
        let seq = frame.seq;
        if self.released.is_some_and(|r| seq <= r) {
            self.stats.late += 1;
            return Pushed::Late;
        }
        // Usually the newest: search from the back.
        let before = self.queue.iter().rposition(|s| s.frame.seq <= seq);
        if before.is_some_and(|i| self.queue[i].frame.seq == seq) {
            self.stats.duplicates += 1;
            return Pushed::Duplicate;
        }
        let newest = self.highest.is_none_or(|h| seq > h);
        let ts = self.unwrap_ts(frame.timestamp, newest);
        let playout = self.offset.map(|o| ts + o);
        let missed = |p: i64| self.last_pop.is_some_and(|l| p <= l);
        let rebase = match playout {
            None => true,
            Some(p) => newest && (frame.marker || (missed(p) && self.queue.is_empty()) || p > now + 2 * self.max_delay),
        };
        let playout = match playout {
            Some(p) if !rebase => {
                if missed(p) {
                    self.stats.late += 1;
                    return Pushed::Late;
                }
                p
            }
            _ => {
                self.target = self.target_for(jitter);
                self.offset = Some(now - ts + self.target);
                now + self.target
            }
        };
        if self.queue.len() >= self.max_packets && before.is_none() {
            self.stats.discarded += 1;
            self.released = Some(seq);
            return Pushed::Overflow;
        }
        self.queue.insert(before.map_or(0, |i| i + 1), Slot { playout, frame });
        if newest {
            self.highest = Some(seq);
        }
        if self.queue.len() > self.max_packets {
            if let Some(oldest) = self.queue.pop_front() {
                self.stats.discarded += 1;
                self.released = Some(oldest.frame.seq);
            }
        }
        Pushed::Queued
    }

    /// The next packet in sequence order if its playout time is at or before `now`. Call until `None`.
    pub fn pop(&mut self, now: Duration) -> Option<RtpFrame> {
        let now = rtp_units(now, self.clock_rate) as i64;
        self.last_pop = Some(self.last_pop.map_or(now, |l| l.max(now)));
        if self.queue.front()?.playout > now {
            return None;
        }
        let slot = self.queue.pop_front()?;
        self.released = Some(slot.frame.seq);
        Some(slot.frame)
    }

    /// The next packet in sequence order, due or not (the stream is handed over to be released at once).
    pub fn pop_next(&mut self) -> Option<RtpFrame> {
        let slot = self.queue.pop_front()?;
        self.released = Some(slot.frame.seq);
        Some(slot.frame)
    }

    /// Forget the stream (new SSRC, or a sender restart with new sequence numbers): queued packets are
    /// dropped and the next packet sets a new base.
    pub fn reset(&mut self) {
        self.stats.flushed += self.queue.len() as u64;
        self.queue.clear();
        self.offset = None;
        self.ts_ref = None;
        self.highest = None;
        self.released = None;
    }

    /// The largest target delay the buffer adapts to (RFC 3611 §4.7.7 JB maximum and absolute maximum).
    pub fn max_delay(&self) -> Duration {
        self.units_to_duration(self.max_delay)
    }

    fn units_to_duration(&self, units: i64) -> Duration {
        if self.clock_rate == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos((units.max(0) as u64).saturating_mul(1_000_000_000) / u64::from(self.clock_rate))
    }

    /// Current target delay between a base packet's arrival and its playout.
    pub fn target_delay(&self) -> Duration {
        self.units_to_duration(self.target)
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// clamp(2 × jitter + one packet time, min, max), in RTP units.
    fn target_for(&self, jitter: u32) -> i64 {
        let packet = rtp_units(PACKET_TIME, self.clock_rate) as i64;
        (2 * i64::from(jitter) + packet).clamp(self.min_delay, self.max_delay)
    }

    /// Timestamp on a wrap-free axis: the signed distance to the newest timestamp seen, added to its
    /// unwrapped value. The newest packet becomes the reference, so the axis never wraps.
    fn unwrap_ts(&mut self, ts: u32, newest: bool) -> i64 {
        let unwrapped = match self.ts_ref {
            None => i64::from(ts),
            Some((r, u)) => u + i64::from(ts.wrapping_sub(r) as i32),
        };
        if newest {
            self.ts_ref = Some((ts, unwrapped));
        }
        unwrapped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 8000;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Packet `seq` of a 20 ms stream whose sequence 100 has timestamp 1000.
    fn packet(seq: u32, marker: bool) -> RtpFrame {
        RtpFrame {
            ssrc: 1,
            seq,
            timestamp: 1000u32.wrapping_add(160u32.wrapping_mul(seq.wrapping_sub(100))),
            payload_type: 0,
            marker,
            payload: vec![seq as u8; 4],
        }
    }

    /// Runs 10 ms ticks from 0 to `end_ms`: at each tick, pushes the arrivals due by then (with their own
    /// arrival times), then pops everything due. Returns (tick ms, seq) of each released packet.
    fn run(jb: &mut JitterBuffer, arrivals: &[(u64, u32, bool)], jitter: u32, end_ms: u64) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        let mut next = 0;
        for tick in (0..=end_ms).step_by(10) {
            while next < arrivals.len() && arrivals[next].0 <= tick {
                let (at, seq, marker) = arrivals[next];
                jb.push(ms(at), packet(seq, marker), jitter);
                next += 1;
            }
            while let Some(f) = jb.pop(ms(tick)) {
                out.push((tick, f.seq));
            }
        }
        out
    }

    #[test]
    fn reorder_loss_duplicates_and_late_exact() {
        let mut jb = JitterBuffer::new(RATE, JitterConfig::default());
        // Jitter 0: target = clamp(0 + 20 ms, 20, 200) = 20 ms. Seq 100 arrives at 5 ms and is the base, so
        // seq s plays at 5 + 20 × (s - 100) + 20 = 25 + 20 × (s - 100) ms, released at the next tick.
        let arrivals = [
            (5, 100, true),
            (25, 101, false),
            (45, 103, false),
            (50, 102, false), // reordered, plays at 65 > last pop (40): back in order
            (85, 104, false),
            (86, 104, false),  // duplicate of a queued packet
            (100, 101, false), // duplicate of a released packet: late (the buffer no longer knows it)
            // 105 lost
            (125, 106, false),
            (145, 108, false), // plays at 185: released at tick 190
            (165, 109, false),
            (185, 110, false),
            (195, 107, false), // plays at 165 but 108 was released at 190: late
            (230, 112, false),
            (240, 113, false),
            (255, 111, false), // plays at 245, pushed after the pop at 250 with 112 queued: late
        ];
        let out = run(&mut jb, &arrivals, 0, 400);
        assert_eq!(
            out,
            vec![
                (30, 100),
                (50, 101),
                (70, 102),
                (90, 103),
                (110, 104),
                (150, 106),
                (190, 108),
                (210, 109),
                (230, 110),
                (270, 112),
                (290, 113),
            ]
        );
        assert_eq!(jb.stats(), JitterStats { duplicates: 1, late: 3, discarded: 0, flushed: 0 });
        assert!(jb.is_empty());
    }

    #[test]
    fn full_buffer_drops_the_oldest() {
        let config = JitterConfig { max_packets: 4, ..JitterConfig::default() };
        let mut jb = JitterBuffer::new(RATE, config);
        // A burst of 6 in one go: 100 and 101 are pushed out by 104 and 105.
        for seq in 100..106 {
            assert_eq!(jb.push(ms(0), packet(seq, false), 0), Pushed::Queued);
        }
        assert_eq!(jb.len(), 4);
        // At or below the discarded 101: gone for good.
        assert_eq!(jb.push(ms(1), packet(99, false), 0), Pushed::Late);
        assert_eq!(jb.push(ms(1), packet(101, false), 0), Pushed::Late);
        let out = run(&mut jb, &[], 0, 200);
        assert_eq!(out.iter().map(|&(_, s)| s).collect::<Vec<_>>(), vec![102, 103, 104, 105]);
        assert_eq!(jb.stats(), JitterStats { duplicates: 0, late: 2, discarded: 2, flushed: 0 });
    }

    #[test]
    fn overflow_when_the_new_packet_is_the_oldest() {
        let config = JitterConfig { max_packets: 2, ..JitterConfig::default() };
        let mut jb = JitterBuffer::new(RATE, config);
        jb.push(ms(0), packet(101, false), 0);
        jb.push(ms(0), packet(102, false), 0);
        assert_eq!(jb.push(ms(0), packet(100, false), 0), Pushed::Overflow);
        assert_eq!(jb.stats().discarded, 1);
        assert_eq!(jb.len(), 2);
    }

    #[test]
    fn target_delay_adapts_at_talkspurt_starts_only() {
        let mut jb = JitterBuffer::new(RATE, JitterConfig::default());
        assert_eq!(jb.target_delay(), ms(20));
        jb.push(ms(0), packet(100, true), 0);
        assert_eq!(jb.target_delay(), ms(20));
        // Mid-talkspurt, more jitter does not move the target.
        jb.push(ms(20), packet(101, false), 400);
        assert_eq!(jb.target_delay(), ms(20));
        assert_eq!(run(&mut jb, &[], 0, 50).len(), 2);
        // Talkspurt start (1 s later in timestamps) with jitter 400 units (50 ms):
        // target = 2 × 400 + 160 = 960 units = 120 ms, and the marker packet plays 120 ms after arrival.
        assert_eq!(jb.push(ms(1005), packet(150, true), 400), Pushed::Queued);
        assert_eq!(jb.target_delay(), ms(120));
        jb.push(ms(1025), packet(151, false), 800);
        assert_eq!(jb.target_delay(), ms(120));
        assert_eq!(jb.pop(ms(1120)), None);
        assert_eq!(jb.pop(ms(1130)).map(|f| f.seq), Some(150));
        // More jitter: 2 × 1000 + 160 = 2160 units is clamped to 200 ms.
        jb.push(ms(2005), packet(200, true), 1000);
        assert_eq!(jb.target_delay(), ms(200));
        // Jitter gone: back down to the minimum at the next talkspurt.
        jb.push(ms(3005), packet(250, true), 0);
        assert_eq!(jb.target_delay(), ms(20));
    }

    #[test]
    fn underrun_rebases_instead_of_dropping() {
        let mut jb = JitterBuffer::new(RATE, JitterConfig::default());
        // Target 20 ms: seq s plays at 25 + 20 × (s - 100) ms.
        jb.push(ms(5), packet(100, true), 0);
        jb.push(ms(25), packet(101, false), 0);
        let mut out = Vec::new();
        for tick in (0..=100).step_by(10) {
            while let Some(f) = jb.pop(ms(tick)) {
                out.push((tick, f.seq));
            }
        }
        // The network delay grows by 60 ms and the jitter estimate to 200 units. 102 was due at 65, the
        // buffer has been empty since 50: an underrun. It becomes the base with target
        // 2 × 200 + 160 = 560 units = 70 ms: it plays at 105 + 70 = 175, the next ones 20 ms apart.
        let arrivals = [(105, 102), (125, 103), (145, 104)];
        let mut next = 0;
        for tick in (110..=300).step_by(10) {
            while next < arrivals.len() && arrivals[next].0 <= tick {
                assert_eq!(jb.push(ms(arrivals[next].0), packet(arrivals[next].1, false), 200), Pushed::Queued);
                next += 1;
            }
            while let Some(f) = jb.pop(ms(tick)) {
                out.push((tick, f.seq));
            }
        }
        assert_eq!(out, vec![(30, 100), (50, 101), (180, 102), (200, 103), (220, 104)]);
        assert_eq!(jb.target_delay(), ms(70));
        assert_eq!(jb.stats().late, 0);
    }

    /// A continuous 20 ms stream (no silence suppression: the marker bit only on the first packet)
    /// whose packets are each delayed by a uniform 0-`spread` ms, from `start_ms`; before, no delay.
    /// The jitter given to the buffer is RFC 3550 A.8's, from the arrivals. Returns the late count and
    /// the packets released.
    fn continuous_stream(jb: &mut JitterBuffer, seconds: u64, start_ms: u64, spread: u64) -> (u64, usize) {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut arrivals: Vec<(u64, u32)> = (0..seconds * 50)
            .map(|k| {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let sent = k * 20;
                let delay = if sent >= start_ms { (seed >> 33) % (spread + 1) } else { 0 };
                (sent + delay, 100 + k as u32)
            })
            .collect();
        arrivals.sort();
        let (mut jitter, mut last_transit) = (0i64, None::<i64>);
        let (mut next, mut released) = (0, 0);
        for tick in (0..=seconds * 1000 + 500).step_by(10) {
            while next < arrivals.len() && arrivals[next].0 <= tick {
                let (at, seq) = arrivals[next];
                let p = packet(seq, seq == 100);
                let transit = (at * 8) as i64 - i64::from(p.timestamp);
                if let Some(last) = last_transit {
                    jitter += ((transit - last).abs() - jitter) / 16;
                }
                last_transit = Some(transit);
                jb.push(ms(at), p, jitter as u32);
                next += 1;
            }
            while jb.pop(ms(tick)).is_some() {
                released += 1;
            }
        }
        (jb.stats().late, released)
    }

    #[test]
    fn a_continuous_stream_whose_jitter_grows_mid_talkspurt_loses_almost_nothing() {
        // Calm for 2 s (target 20 ms), then each packet delayed by 0-40 (then 0-80) ms, with reordering.
        // There is no marker bit to rebase on, but the first packet to miss its slot finds the buffer
        // empty: an underrun. It becomes the base, so the playout delay is then its own lateness plus
        // the new target, which covers the spread; the reported target (for packets as late as the base)
        // stays small. Without that, every packet delayed by over 20 ms would be lost: about half.
        for (spread, most_late) in [(40, 2), (80, 5)] {
            let mut jb = JitterBuffer::new(RATE, JitterConfig::default());
            let (late, released) = continuous_stream(&mut jb, 20, 2000, spread);
            assert!(late <= most_late, "0-{spread} ms: {late} of 1000 packets late");
            assert_eq!(released as u64 + late, 1000);
        }
    }

    #[test]
    fn a_calm_continuous_stream_keeps_the_minimum_target() {
        let mut jb = JitterBuffer::new(RATE, JitterConfig::default());
        let (late, released) = continuous_stream(&mut jb, 10, 0, 0);
        assert_eq!((late, released), (0, 500));
        assert_eq!(jb.target_delay(), ms(20));
    }

    #[test]
    fn timestamp_jump_without_marker_rebases() {
        let mut jb = JitterBuffer::new(RATE, JitterConfig::default());
        jb.push(ms(0), packet(100, true), 0);
        assert_eq!(jb.pop(ms(20)).map(|f| f.seq), Some(100));
        // 10 s ahead in timestamps, no marker: rather than waiting 10 s, it plays 20 ms after arrival.
        let mut jumped = packet(101, false);
        jumped.timestamp = jumped.timestamp.wrapping_add(80_000);
        jb.push(ms(40), jumped, 0);
        assert_eq!(jb.pop(ms(50)), None);
        assert_eq!(jb.pop(ms(60)).map(|f| f.seq), Some(101));
    }

    #[test]
    fn timestamps_wrap() {
        let mut jb = JitterBuffer::new(RATE, JitterConfig::default());
        let mut a = packet(100, true);
        a.timestamp = u32::MAX - 100;
        let mut b = packet(101, false);
        b.timestamp = a.timestamp.wrapping_add(160);
        jb.push(ms(0), a, 0);
        jb.push(ms(20), b, 0);
        assert_eq!(jb.pop(ms(20)).map(|f| f.seq), Some(100));
        assert_eq!(jb.pop(ms(30)), None);
        assert_eq!(jb.pop(ms(40)).map(|f| f.seq), Some(101));
    }

    #[test]
    fn reset_flushes_and_restarts() {
        let mut jb = JitterBuffer::new(RATE, JitterConfig::default());
        jb.push(ms(0), packet(500, true), 0);
        jb.push(ms(20), packet(501, false), 0);
        jb.reset();
        assert_eq!(jb.stats().flushed, 2);
        // Lower sequence numbers are fine after a reset.
        assert_eq!(jb.push(ms(30), packet(7, false), 0), Pushed::Queued);
        assert_eq!(jb.pop(ms(50)).map(|f| f.seq), Some(7));
    }
}
