//! A network impairment on a real UDP path, for the call-quality tests: a thread with its own
//! sockets on 127.0.0.1 that plays a caller's RTP to rms through seeded random loss and delay.
//!
//! Where it sits: sipp carries the signalling, and its SDP names the relay's port as the caller's
//! media address, so rms sends its RTP (and, to the port above, its RTCP) to the relay. The relay
//! learns rms's RTP address from the source of the first of those packets (symmetric RTP, as rms
//! itself sends from the port it receives on) and from then on sends the caller's media to it:
//! ready-made RTP datagrams, one every `interval` from the moment it learned the address, each
//! through the impairment. sipp sends no media on this path; the relay is the caller's media.
//!
//! The impairment, per caller packet, in order, from one `fastrand` generator seeded with `seed`
//! (the same seed and packets give the same drops and delays on every run):
//! - **loss**: the packet is dropped with probability `loss_percent`/100 (independent, "random"
//!   loss: no bursts beyond chance);
//! - **jitter**: a packet that is kept is held for a delay drawn uniformly from
//!   `0..2 × jitter` after its due time (so "20 ms jitter" is a delay of 0 to 40 ms, 20 ms on
//!   average, and an interarrival jitter, RFC 3550 A.8, of about 40/3 ≈ 13 ms); packets leave in
//!   order of their release time, so a packet delayed more than 20 ms past its successor's
//!   release is overtaken by it (reordering).
//!
//! It counts what it took in from the caller's stream (`received`), dropped and forwarded, and what
//! it got from rms on the RTP and RTCP ports.

// Real-peer tooling: the relay paces packets on the wall clock.
#![allow(clippy::disallowed_methods)]
// Each test file uses a different part of the tooling.
#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the relay does to the caller's packets.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    /// Probability of dropping each packet, in percent.
    pub loss_percent: f64,
    /// Each kept packet is delayed by a uniform random 0..2 × `jitter`.
    pub jitter: Duration,
    pub seed: u64,
}

impl Impairment {
    /// A clean path: nothing dropped, nothing delayed.
    pub const NONE: Impairment = Impairment { loss_percent: 0.0, jitter: Duration::ZERO, seed: 0 };
}

/// The relay's counters once it has stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayCounts {
    /// Caller packets that came due (every one is then dropped or forwarded).
    pub received: u64,
    pub dropped: u64,
    pub forwarded: u64,
    /// Datagrams rms sent to the relay's RTP port (its RTP) and RTCP port.
    pub from_rms_rtp: u64,
    pub from_rms_rtcp: u64,
}

impl RelayCounts {
    /// dropped / received × 100.
    pub fn dropped_percent(&self) -> f64 {
        if self.received == 0 {
            return 0.0;
        }
        100.0 * self.dropped as f64 / self.received as f64
    }
}

/// The running relay.
pub struct Relay {
    rtp_port: u16,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<RelayCounts>,
}

impl Relay {
    /// Bind an RTP/RTCP port pair (even, even + 1) on 127.0.0.1 and start: once rms's first RTP
    /// arrives, `caller` (whole RTP datagrams) goes out one every `interval`, through `impairment`.
    pub fn spawn(impairment: Impairment, caller: Vec<Vec<u8>>, interval: Duration) -> Relay {
        let (rtp, rtcp) = port_pair();
        let rtp_port = rtp.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || run(rtp, rtcp, impairment, caller, interval, &stopped));
        Relay { rtp_port, stop, thread }
    }

    /// The port to name in the caller's SDP (RTCP is on the next one, RFC 3550 §11).
    pub fn rtp_port(&self) -> u16 {
        self.rtp_port
    }

    /// Stop (packets not yet due are never sent) and return the counts.
    pub fn finish(self) -> RelayCounts {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("the relay thread")
    }
}

fn port_pair() -> (UdpSocket, UdpSocket) {
    loop {
        let rtp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = rtp.local_addr().unwrap().port();
        if port.is_multiple_of(2) {
            if let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port + 1)) {
                return (rtp, rtcp);
            }
        }
    }
}

fn run(
    rtp: UdpSocket,
    rtcp: UdpSocket,
    impairment: Impairment,
    caller: Vec<Vec<u8>>,
    interval: Duration,
    stop: &AtomicBool,
) -> RelayCounts {
    let mut rng = fastrand::Rng::with_seed(impairment.seed);
    let mut counts = RelayCounts::default();
    // Kept packets waiting for their release: (release time, caller index), earliest first.
    let mut held: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::new();
    let mut peer: Option<(SocketAddr, Instant)> = None;
    let mut next = 0usize;
    rtcp.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::SeqCst) {
        // Wait for rms's RTP until the next thing to do (at most 5 ms, to see the stop flag).
        let now = Instant::now();
        let mut wake = now + Duration::from_millis(5);
        if let Some((_, start)) = peer {
            if next < caller.len() {
                wake = wake.min(start + interval * next as u32);
            }
        }
        if let Some(Reverse((at, _))) = held.peek() {
            wake = wake.min(*at);
        }
        let wait = wake.saturating_duration_since(now).max(Duration::from_micros(200));
        rtp.set_read_timeout(Some(wait)).unwrap();
        if let Ok((_, from)) = rtp.recv_from(&mut buf) {
            counts.from_rms_rtp += 1;
            peer.get_or_insert((from, Instant::now()));
        }
        while rtcp.recv_from(&mut buf).is_ok() {
            counts.from_rms_rtcp += 1;
        }
        let Some((dest, start)) = peer else { continue };
        let now = Instant::now();
        // Caller packets that came due: drop or hold each.
        while next < caller.len() && start + interval * next as u32 <= now {
            let due = start + interval * next as u32;
            counts.received += 1;
            let lose = rng.f64() * 100.0 < impairment.loss_percent;
            let delay = impairment.jitter.mul_f64(2.0 * rng.f64());
            if lose {
                counts.dropped += 1;
            } else {
                held.push(Reverse((due + delay, next)));
            }
            next += 1;
        }
        // Held packets whose release time has come, in release order.
        while let Some(Reverse((at, i))) = held.peek().copied() {
            if at > now {
                break;
            }
            held.pop();
            rtp.send_to(&caller[i], dest).expect("send to rms");
            counts.forwarded += 1;
        }
    }
    counts
}
