//! The signalling runtime: one tokio task owning the UDP socket and the TCP listener on the same
//! port, driving the sans-IO [`Endpoint`] with real time and handing its events to an
//! application ([`SignallingApp`]; the session layer, or a test application).
//!
//! Responses go where [`Endpoint`] says (RFC 3261 §18.2.2, RFC 3581): on TCP, the connection the
//! request came on; requests we send on TCP open a connection when none to that address exists.
//! Each TCP connection has a reader task (framing by Content-Length with [`StreamFramer`]) and a
//! writer task; both talk to the owner task through channels, so the endpoint stays `&mut`.
#![allow(clippy::disallowed_methods)] // the runtime layer owns the real clock

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

use crate::sip::{
    Endpoint, EndpointConfig, SipError, SipEvent, SipMessage, StreamFramer, TimerConfig, Transmit, Transport,
    MAX_MESSAGE_SIZE,
};

/// The application on top of the endpoint. Everything runs on the signalling task, in order.
pub trait SignallingApp: Send + 'static {
    /// What else wakes the task (media events for the session layer; `()` for none).
    type Input: Send + 'static;

    /// An endpoint event; answer or send through `endpoint`.
    fn handle_event(&mut self, now: Duration, event: SipEvent, endpoint: &mut Endpoint);

    /// An input from the channel given to [`SignallingTask::run`].
    fn handle_input(&mut self, _now: Duration, _input: Self::Input, _endpoint: &mut Endpoint) {}

    /// Shutdown was asked for: end calls (BYE). The task keeps serving until [`Self::is_idle`]
    /// and no request of ours is pending, for at most [`SHUTDOWN_GRACE`].
    fn begin_shutdown(&mut self, _now: Duration, _endpoint: &mut Endpoint) {}

    /// Nothing left to finish before exit.
    fn is_idle(&self) -> bool {
        true
    }

    /// The application's own timers (e.g. a BYE after a delay).
    fn handle_timeout(&mut self, _now: Duration, _endpoint: &mut Endpoint) {}

    /// When [`SignallingApp::handle_timeout`] next has work.
    fn poll_timeout(&self) -> Option<Duration> {
        None
    }
}

/// How long a shutdown waits for BYEs to be answered.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// Where and how to listen.
#[derive(Debug, Clone)]
pub struct SignallingConfig {
    /// UDP and TCP both bind this address; port 0 picks one free for both.
    pub listen: SocketAddr,
    /// The address put in Via and Contact; defaults to the bound address.
    pub public_addr: Option<SocketAddr>,
    pub timers: TimerConfig,
    /// Seeds tags, branches and Call-IDs.
    pub seed: u64,
}

impl SignallingConfig {
    pub fn new(listen: SocketAddr) -> Self {
        Self { listen, public_addr: None, timers: TimerConfig::default(), seed: fastrand::u64(..) }
    }
}

/// What connection tasks report to the owner task.
enum Inbound {
    Message {
        from: SocketAddr,
        result: Box<Result<SipMessage, SipError>>,
        raw: Vec<u8>,
    },
    Closed {
        peer: SocketAddr,
    },
    /// A connection we opened for our requests could not be made.
    ConnectFailed {
        peer: SocketAddr,
    },
}

/// The bound sockets; [`SignallingTask::run`] drives them.
pub struct SignallingTask {
    udp: UdpSocket,
    tcp: TcpListener,
    endpoint: Endpoint,
    local_addr: SocketAddr,
}

impl SignallingTask {
    /// Bind UDP and TCP on the same port (§18: a UAS listens on both).
    pub async fn bind(config: SignallingConfig) -> io::Result<Self> {
        let mut last_err = None;
        // With port 0 the UDP port may be taken on TCP: try a few.
        for _ in 0..16 {
            let udp = UdpSocket::bind(config.listen).await?;
            let local_addr = udp.local_addr()?;
            match TcpListener::bind(local_addr).await {
                Ok(tcp) => {
                    let public = config.public_addr.unwrap_or(local_addr);
                    let mut ep_config = EndpointConfig::new(public);
                    ep_config.timers = config.timers;
                    let endpoint = Endpoint::new(ep_config, config.seed);
                    return Ok(Self { udp, tcp, endpoint, local_addr });
                }
                Err(e) if config.listen.port() == 0 => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| io::Error::other("no port free for both UDP and TCP")))
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serve until `shutdown` completes; returns the application and the endpoint.
    pub async fn run<A: SignallingApp>(self, app: A, shutdown: impl Future<Output = ()>) -> (A, Endpoint) {
        let (_keep, inputs) = mpsc::unbounded_channel();
        self.run_with_inputs(app, inputs, shutdown).await
    }

    /// Serve, also handing the application whatever arrives on `inputs`. After `shutdown`
    /// completes the application ends its calls and the task serves on until they are settled
    /// (or [`SHUTDOWN_GRACE`] passes).
    pub async fn run_with_inputs<A: SignallingApp>(
        self,
        mut app: A,
        mut inputs: mpsc::UnboundedReceiver<A::Input>,
        shutdown: impl Future<Output = ()>,
    ) -> (A, Endpoint) {
        let Self { udp, tcp, mut endpoint, .. } = self;
        let start = Instant::now();
        let (inbound_tx, mut inbound_rx) = mpsc::unbounded_channel::<Inbound>();
        let mut conns: HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>> = HashMap::new();
        let mut buf = vec![0u8; MAX_MESSAGE_SIZE];
        tokio::pin!(shutdown);
        let mut stopping: Option<Duration> = None;
        loop {
            if let Some(since) = stopping {
                let settled = app.is_idle() && endpoint.counts().client_transactions == 0;
                if settled || start.elapsed() >= since + SHUTDOWN_GRACE {
                    break;
                }
            }
            let deadline = [endpoint.poll_timeout(), app.poll_timeout()].into_iter().flatten().min();
            let sleep = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until((start + at).into()).await,
                    None => std::future::pending().await,
                }
            };
            let grace_tick = async {
                match stopping {
                    Some(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut shutdown, if stopping.is_none() => {
                    stopping = Some(start.elapsed());
                    app.begin_shutdown(start.elapsed(), &mut endpoint);
                }
                _ = grace_tick => {}
                Some(input) = inputs.recv() => {
                    let now = start.elapsed();
                    guarded("application input", SocketAddr::from(([0, 0, 0, 0], 0)), || {
                        app.handle_input(now, input, &mut endpoint)
                    });
                }
                r = udp.recv_from(&mut buf) => match r {
                    Ok((n, from)) => {
                        let bytes = &buf[..n];
                        guarded("UDP datagram", from, || endpoint.handle_datagram(start.elapsed(), from, bytes))
                    }
                    // ICMP port unreachable surfaces here on Linux; nothing to do.
                    Err(e) => tracing::debug!(error = %e, "UDP receive error"),
                },
                r = tcp.accept() => match r {
                    Ok((stream, peer)) => {
                        let writer = spawn_connection(stream, peer, inbound_tx.clone());
                        conns.insert(peer, writer);
                    }
                    Err(e) => tracing::warn!(error = %e, "TCP accept failed"),
                },
                Some(inbound) = inbound_rx.recv() => match inbound {
                    Inbound::Message { from, result, raw } => match *result {
                        Ok(msg) => guarded("TCP message", from, || {
                            endpoint.handle_message(start.elapsed(), from, Transport::Tcp, msg)
                        }),
                        Err(err) => endpoint.handle_unreadable(from, Transport::Tcp, &raw, &err),
                    },
                    Inbound::Closed { peer } => {
                        conns.remove(&peer);
                    }
                    Inbound::ConnectFailed { peer } => {
                        conns.remove(&peer);
                        endpoint.transport_failed(Transport::Tcp, peer);
                    }
                },
                _ = sleep => {}
            }
            let now = start.elapsed();
            endpoint.handle_timeout(now);
            app.handle_timeout(now, &mut endpoint);
            loop {
                let mut progressed = false;
                while let Some(event) = endpoint.poll_event() {
                    progressed = true;
                    let now = start.elapsed();
                    let source = event_source(&event);
                    guarded("application event", source, || app.handle_event(now, event, &mut endpoint));
                }
                while let Some(t) = endpoint.poll_transmit() {
                    progressed = true;
                    send(&udp, &mut conns, &inbound_tx, t).await;
                }
                if !progressed {
                    break;
                }
            }
        }
        (app, endpoint)
    }
}

/// Run one step of the sans-IO core so that a bug reached by one message costs that message, not
/// the process: the panic is logged and the task goes on (the cores are fuzzed; this is the
/// last line of defence, as `catch_unwind` is for the media graphs).
fn guarded(what: &str, peer: SocketAddr, f: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        let msg = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(%peer, panic = %msg, "bug: panic handling a {what}; it was dropped");
    }
}

/// The peer an event is about, for the panic log.
fn event_source(event: &SipEvent) -> SocketAddr {
    match event {
        SipEvent::Request { source, .. } => *source,
        _ => SocketAddr::from(([0, 0, 0, 0], 0)),
    }
}

async fn send(
    udp: &UdpSocket,
    conns: &mut HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>,
    inbound: &mpsc::UnboundedSender<Inbound>,
    t: Transmit,
) {
    match t.transport {
        Transport::Udp => {
            if let Err(e) = udp.send_to(&t.payload, t.dest).await {
                tracing::debug!(dest = %t.dest, error = %e, "UDP send failed");
            }
        }
        Transport::Tcp => {
            let writer = conns.entry(t.dest).or_insert_with(|| connect(t.dest, inbound.clone()));
            if writer.send(t.payload).is_err() {
                conns.remove(&t.dest);
            }
        }
    }
}

/// Open a TCP connection for a request of ours; bytes queue until it is up.
fn connect(peer: SocketAddr, inbound: mpsc::UnboundedSender<Inbound>) -> mpsc::UnboundedSender<Vec<u8>> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        match TcpStream::connect(peer).await {
            Ok(stream) => run_connection(stream, peer, inbound, rx).await,
            Err(e) => {
                tracing::info!(%peer, error = %e, "TCP connect failed");
                let _ = inbound.send(Inbound::ConnectFailed { peer });
            }
        }
    });
    tx
}

fn spawn_connection(
    stream: TcpStream,
    peer: SocketAddr,
    inbound: mpsc::UnboundedSender<Inbound>,
) -> mpsc::UnboundedSender<Vec<u8>> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run_connection(stream, peer, inbound, rx));
    tx
}

/// Read and frame one connection; write what the owner sends. Ends on EOF, an I/O error, or a
/// framing error (RFC 3261 §18.3: without Content-Length the stream cannot be resynchronised).
async fn run_connection(
    stream: TcpStream,
    peer: SocketAddr,
    inbound: mpsc::UnboundedSender<Inbound>,
    mut outbound: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let (mut reader, mut writer) = stream.into_split();
    let write = async move {
        while let Some(bytes) = outbound.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                break;
            }
        }
    };
    let read = async {
        let mut framer = StreamFramer::new();
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match reader.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            framer.push(&buf[..n]);
            while let Some(result) = framer.next_message() {
                let lost_framing = matches!(
                    result,
                    Err(SipError::TooLarge { .. }
                        | SipError::MissingContentLength
                        | SipError::InvalidContentLength { .. }
                        | SipError::Incomplete)
                );
                // Only an unreadable message needs its bytes (to address a 400): the last read,
                // which holds at least its end.
                let raw = if result.is_err() { buf[..n].to_vec() } else { Vec::new() };
                if inbound.send(Inbound::Message { from: peer, result: Box::new(result), raw }).is_err() || lost_framing
                {
                    return;
                }
            }
        }
    };
    tokio::select! {
        _ = write => {}
        _ = read => {}
    }
    let _ = inbound.send(Inbound::Closed { peer });
}

/// A signalling task on its own thread and tokio runtime (tests, tools).
pub struct SignallingThread<A: SignallingApp> {
    local_addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<(A, Endpoint)>>,
}

impl<A: SignallingApp> SignallingThread<A> {
    pub fn spawn(config: SignallingConfig, app: A) -> io::Result<Self> {
        let (keep, inputs) = mpsc::unbounded_channel();
        let thread = Self::spawn_with_inputs(config, app, inputs);
        drop(keep);
        thread
    }

    /// As [`Self::spawn`], with the application's input channel (media events).
    pub fn spawn_with_inputs(
        config: SignallingConfig,
        app: A,
        inputs: mpsc::UnboundedReceiver<A::Input>,
    ) -> io::Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let task = rt.block_on(SignallingTask::bind(config))?;
        let local_addr = task.local_addr();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("rms-sip".into()).spawn(move || {
            rt.block_on(task.run_with_inputs(app, inputs, async move {
                let _ = stopped.await;
            }))
        })?;
        Ok(Self { local_addr, stop: Some(stop), thread: Some(thread) })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stop serving and hand back the application and the endpoint (for inspection).
    pub fn shutdown(mut self) -> (A, Endpoint) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(result)) => result,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            None => unreachable!("shutdown runs once"),
        }
    }
}

impl<A: SignallingApp> Drop for SignallingThread<A> {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
