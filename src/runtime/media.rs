//! The media thread: drives the [`MediaCoordinator`] with real time and real UDP sockets.
//!
//! One OS thread. Each pass it takes commands (crossbeam-channel), reads the RTP sockets that have
//! datagrams waiting, runs the ticks due, sends what the graphs produced, and sleeps until the next tick
//! is due (waking early for a command). The coordinator keeps the schedule (tick N at start + N × 10 ms).
//!
//! Readiness comes from one level-triggered epoll set over all leg sockets: a `recv_from` on every
//! socket every tick would cost an idle system call per leg per tick (measured: it doubled the I/O
//! cost of 1000 play legs). Each pass asks epoll which sockets are readable and reads one datagram from
//! each, repeating while any remain, up to [`MAX_READS_PER_TICK`] per socket so one flooded leg cannot
//! starve the tick.

// The runtime layer is where real clocks live.
#![allow(clippy::disallowed_methods)]

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use rms_filters::clock::TscClock;
use tokio::sync::mpsc;

use crate::config::RtcpSettings;
use crate::media::{LegId, LegSocket, MediaCmd, MediaCoordinator, MediaEvent, MediaOutput, TickStats};

/// Read buffer: the largest UDP payload, so no datagram is ever truncated.
const MAX_DATAGRAM: usize = 65536;

/// Datagrams read per socket per pass of the loop at most; the rest wait for the next pass.
pub const MAX_READS_PER_TICK: usize = 16;

/// Readiness events fetched per `epoll_wait`.
const EVENTS_PER_WAIT: usize = 1024;

/// What the media thread accepts.
#[derive(Debug)]
pub enum MediaRequest {
    /// A coordinator command.
    Cmd(MediaCmd),
    /// Hand the leg's bound sockets to the media thread, then create the leg.
    CreateLeg { sockets: LegSockets, cmd: MediaCmd },
    /// Report the tick statistics on the given channel.
    TickStats(Sender<TickStats>),
    /// Stop the thread after destroying every leg.
    Shutdown,
}

/// A leg's bound sockets: RTP on an even port, RTCP on the next (RFC 3550 §11). With rtcp-mux the
/// RTCP socket stays bound but idle, so the pair's port stays ours.
#[derive(Debug)]
pub struct LegSockets {
    pub rtp: UdpSocket,
    pub rtcp: UdpSocket,
}

impl LegSockets {
    /// Bind `ip:port` and `ip:port+1`.
    pub fn bind(ip: std::net::IpAddr, port: u16) -> std::io::Result<Self> {
        let rtcp_port = port.checked_add(1).ok_or_else(|| std::io::Error::from(ErrorKind::AddrNotAvailable))?;
        let rtp = UdpSocket::bind(SocketAddr::new(ip, port))?;
        let rtcp = UdpSocket::bind(SocketAddr::new(ip, rtcp_port))?;
        Ok(Self { rtp, rtcp })
    }

    /// Two sockets on ports the system picks (not a pair): for tests and benchmarks, whose peers are
    /// told both addresses.
    pub fn ephemeral(ip: std::net::IpAddr) -> std::io::Result<Self> {
        Ok(Self { rtp: UdpSocket::bind(SocketAddr::new(ip, 0))?, rtcp: UdpSocket::bind(SocketAddr::new(ip, 0))? })
    }

    fn get(&self, socket: LegSocket) -> &UdpSocket {
        match socket {
            LegSocket::Rtp => &self.rtp,
            LegSocket::Rtcp => &self.rtcp,
        }
    }
}

/// The epoll token of one of a leg's sockets: the leg id, shifted, and a bit for RTCP.
fn token(leg: LegId, socket: LegSocket) -> u64 {
    u64::from(leg.0) << 1 | u64::from(socket == LegSocket::Rtcp)
}

fn from_token(token: u64) -> (LegId, LegSocket) {
    let socket = if token & 1 == 1 { LegSocket::Rtcp } else { LegSocket::Rtp };
    (LegId((token >> 1) as u32), socket)
}

/// The signalling side's handle on the media thread.
pub struct MediaThread {
    requests: Sender<MediaRequest>,
    join: Option<JoinHandle<()>>,
}

impl MediaThread {
    /// Start the thread with the default RTCP settings. Events come back on the returned receiver.
    pub fn spawn(seed: u64) -> std::io::Result<(Self, mpsc::UnboundedReceiver<MediaEvent>)> {
        Self::spawn_with(seed, RtcpSettings::default())
    }

    /// Start the thread; legs report RTCP with `rtcp`.
    pub fn spawn_with(seed: u64, rtcp: RtcpSettings) -> std::io::Result<(Self, mpsc::UnboundedReceiver<MediaEvent>)> {
        let (req_tx, req_rx) = crossbeam_channel::unbounded();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let join = std::thread::Builder::new().name("rms-media".into()).spawn(move || {
            let mut coordinator = MediaCoordinator::new(seed, Box::new(TscClock::new()));
            coordinator.set_rtcp(rtcp);
            match MediaLoop::new(coordinator, req_rx, ev_tx) {
                Ok(media_loop) => media_loop.run(),
                Err(e) => tracing::error!(error = %e, "cannot start the media loop"),
            }
        })?;
        Ok((Self { requests: req_tx, join: Some(join) }, ev_rx))
    }

    pub fn send(&self, req: MediaRequest) {
        // The thread only stops on Shutdown or when this handle drops, so a send error means it died;
        // its panic is reported when joined.
        if self.requests.send(req).is_err() {
            tracing::error!("media thread is gone");
        }
    }

    pub fn cmd(&self, cmd: MediaCmd) {
        self.send(MediaRequest::Cmd(cmd));
    }

    /// Current tick statistics (blocks until the thread answers, at most one tick).
    pub fn tick_stats(&self) -> Option<TickStats> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.send(MediaRequest::TickStats(tx));
        rx.recv_timeout(Duration::from_secs(1)).ok()
    }

    /// Destroy every leg (their `LegClosed` events are sent) and join the thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.requests.send(MediaRequest::Shutdown);
        if let Some(join) = self.join.take() {
            if join.join().is_err() {
                tracing::error!("media thread panicked");
            }
        }
    }
}

impl Drop for MediaThread {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The thread's state: the coordinator plus the sockets it owns.
pub struct MediaLoop {
    coordinator: MediaCoordinator,
    requests: Receiver<MediaRequest>,
    events: mpsc::UnboundedSender<MediaEvent>,
    sockets: HashMap<LegId, LegSockets>,
    /// Readiness of every socket in `sockets`, keyed by leg id.
    epoll: Epoll,
    ready: Vec<EpollEvent>,
    start: Instant,
    buf: Vec<u8>,
}

impl MediaLoop {
    pub fn new(
        coordinator: MediaCoordinator,
        requests: Receiver<MediaRequest>,
        events: mpsc::UnboundedSender<MediaEvent>,
    ) -> std::io::Result<Self> {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        let mut coordinator = coordinator;
        // RTCP's NTP timestamps: the wall clock at the loop's `now == 0`.
        let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        coordinator.set_wall_clock(unix);
        Ok(Self {
            coordinator,
            requests,
            events,
            sockets: HashMap::new(),
            epoll,
            ready: vec![EpollEvent::empty(); EVENTS_PER_WAIT],
            start: Instant::now(),
            buf: vec![0; MAX_DATAGRAM],
        })
    }

    pub fn run(mut self) {
        // Handles taken once: the macros look the metric up by name on every call.
        let tick_duration = metrics::histogram!("rms_tick_duration_seconds");
        let tick_lateness = metrics::histogram!("rms_tick_lateness_seconds");
        loop {
            let now = self.start.elapsed();
            self.read_sockets(now);
            let due = self.coordinator.poll_timeout();
            if self.coordinator.tick(now) > 0 {
                // No-ops unless a recorder is installed (`rms serve --http`).
                let took = self.start.elapsed().saturating_sub(now);
                tick_duration.record(took.as_secs_f64());
                tick_lateness.record(now.saturating_sub(due).as_secs_f64());
            }
            self.flush();
            let wait = self.coordinator.poll_timeout().saturating_sub(self.start.elapsed());
            match self.requests.recv_timeout(wait) {
                Ok(req) => {
                    if !self.handle(req) {
                        break;
                    }
                    while let Ok(req) = self.requests.try_recv() {
                        if !self.handle(req) {
                            return self.shutdown();
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        self.shutdown();
    }

    /// Returns false on Shutdown.
    fn handle(&mut self, req: MediaRequest) -> bool {
        let now = self.start.elapsed();
        match req {
            MediaRequest::Cmd(cmd) => {
                if let MediaCmd::DestroyLeg { leg } = &cmd {
                    self.detach_socket(*leg);
                }
                self.coordinator.handle_cmd(now, cmd);
            }
            MediaRequest::CreateLeg { sockets, cmd } => {
                let MediaCmd::CreateLeg { leg, .. } = &cmd else {
                    tracing::error!(?cmd, "MediaRequest::CreateLeg carries another command; sockets dropped");
                    self.coordinator.handle_cmd(now, cmd);
                    return true;
                };
                let leg = *leg;
                // Only a leg the coordinator accepts gets the socket: a refused one (bad ptime, a leg id
                // already in use) must neither leak it nor replace a live leg's socket.
                let existed = self.coordinator.has_leg(leg);
                self.coordinator.handle_cmd(now, cmd);
                if !existed && self.coordinator.has_leg(leg) {
                    if let Err(e) = self.attach_sockets(leg, sockets) {
                        tracing::error!(?leg, error = %e, "cannot watch the leg's sockets; it will not receive");
                    }
                }
            }
            MediaRequest::TickStats(tx) => {
                let _ = tx.send(self.coordinator.tick_stats());
            }
            MediaRequest::Shutdown => return false,
        }
        self.flush();
        true
    }

    /// Read the datagrams waiting on leg sockets. A datagram is handed over with the time it was read.
    pub fn read_sockets(&mut self, now: Duration) {
        for _ in 0..MAX_READS_PER_TICK {
            let n = match self.epoll.wait(&mut self.ready, EpollTimeout::ZERO) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "epoll_wait failed");
                    return;
                }
            };
            if n == 0 {
                return;
            }
            for ev in &self.ready[..n] {
                let (leg, kind) = from_token(ev.data());
                let Some(sockets) = self.sockets.get(&leg) else { continue };
                match sockets.get(kind).recv_from(&mut self.buf) {
                    Ok((len, from)) => match kind {
                        LegSocket::Rtp => self.coordinator.handle_rtp(now, leg, from, &self.buf[..len]),
                        LegSocket::Rtcp => self.coordinator.handle_rtcp(now, leg, from, &self.buf[..len]),
                    },
                    // ICMP port unreachable from an earlier send surfaces here on Linux; harmless.
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::ConnectionRefused) => {}
                    Err(e) => tracing::warn!(?leg, ?kind, error = %e, "media socket read failed"),
                }
            }
        }
    }

    /// Send datagrams and forward events.
    pub fn flush(&mut self) {
        while let Some(out) = self.coordinator.poll_output() {
            match out {
                MediaOutput::Transmit { leg, socket, dest, payload } => self.transmit(leg, socket, dest, &payload),
                MediaOutput::Event(e) => {
                    if let MediaEvent::LegFailed { leg, .. } = &e {
                        self.detach_socket(*leg);
                    }
                    let _ = self.events.send(e);
                }
            }
        }
    }

    fn transmit(&self, leg: LegId, socket: LegSocket, dest: SocketAddr, payload: &[u8]) {
        let Some(sockets) = self.sockets.get(&leg) else { return };
        if let Err(e) = sockets.get(socket).send_to(payload, dest) {
            if e.kind() != ErrorKind::WouldBlock && e.kind() != ErrorKind::ConnectionRefused {
                tracing::warn!(?leg, ?socket, %dest, error = %e, "media send failed");
            }
        }
    }

    fn shutdown(mut self) {
        let now = self.start.elapsed();
        let legs: Vec<LegId> = self.coordinator.legs().collect();
        for leg in legs {
            self.coordinator.handle_cmd(now, MediaCmd::DestroyLeg { leg });
        }
        self.flush();
        self.sockets.clear();
    }

    /// Direct access for benchmarks that drive the loop by hand.
    pub fn coordinator_mut(&mut self) -> &mut MediaCoordinator {
        &mut self.coordinator
    }

    /// Own `leg`'s sockets and watch them for datagrams (also used directly by benchmarks).
    pub fn attach_sockets(&mut self, leg: LegId, sockets: LegSockets) -> std::io::Result<()> {
        self.detach_socket(leg);
        for kind in [LegSocket::Rtp, LegSocket::Rtcp] {
            let socket = sockets.get(kind);
            socket.set_nonblocking(true)?;
            self.epoll.add(socket, EpollEvent::new(EpollFlags::EPOLLIN, token(leg, kind)))?;
        }
        self.sockets.insert(leg, sockets);
        Ok(())
    }

    fn detach_socket(&mut self, leg: LegId) {
        if let Some(sockets) = self.sockets.remove(&leg) {
            let _ = self.epoll.delete(&sockets.rtp);
            let _ = self.epoll.delete(&sockets.rtcp);
        }
    }
}
