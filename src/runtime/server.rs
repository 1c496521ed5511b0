//! `rms serve`: the signalling task running the session layer with a Lua route host, the media
//! thread, and the RTP port pool that binds each leg's socket before its SDP goes out.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use super::call_log::CallLog;
use super::media::{LegSockets, MediaRequest, MediaThread};
use super::signalling::{SignallingApp, SignallingConfig, SignallingThread};
use crate::config::ServeConfig;
use crate::media::{LegId, MediaCmd, MediaEvent};
use crate::script::LuaHost;
use crate::session::{CallSummary, RtpPorts, ScriptError, SessionConfig, SessionCounts, Sessions};
use tokio::sync::{mpsc, oneshot};

use super::http::HttpThread;
use crate::sip::{Endpoint, SipEvent};

/// The example IVR script, built in: `rms serve` without `--script` runs it.
pub const EXAMPLE_SCRIPT: &str = include_str!("../../examples/ivr_play_hangup.lua");

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Script(#[from] ScriptError),
    #[error("cannot bind {what}: {source}")]
    Bind { what: String, source: io::Error },
}

/// Even RTP ports from a range, each with the RTCP port above it; each allocation binds both sockets
/// at once, so the ports in our SDP are ones we hold (pairs another process holds are skipped).
pub struct RtpPortPool {
    ip: IpAddr,
    free: VecDeque<u16>,
    held: HashMap<LegId, u16>,
    sockets: HashMap<LegId, LegSockets>,
}

impl RtpPortPool {
    pub fn new(ip: IpAddr, range: RangeInclusive<u16>) -> Self {
        let free = range.clone().step_by(2).filter(|p| p.checked_add(1).is_some_and(|r| range.contains(&r))).collect();
        Self { ip, free, held: HashMap::new(), sockets: HashMap::new() }
    }

    /// The bound sockets of a leg about to be created (handed to the media thread).
    pub fn take_sockets(&mut self, leg: LegId) -> Option<LegSockets> {
        self.sockets.remove(&leg)
    }

    pub fn in_use(&self) -> usize {
        self.held.len()
    }
}

impl RtpPorts for RtpPortPool {
    fn allocate(&mut self, leg: LegId) -> Option<u16> {
        for _ in 0..self.free.len() {
            let port = self.free.pop_front()?;
            match LegSockets::bind(self.ip, port) {
                Ok(sockets) => {
                    self.held.insert(leg, port);
                    self.sockets.insert(leg, sockets);
                    return Some(port);
                }
                Err(e) => {
                    tracing::debug!(port, error = %e, "RTP/RTCP port pair busy, skipped");
                    self.free.push_back(port);
                }
            }
        }
        None
    }

    fn release(&mut self, leg: LegId) {
        self.sockets.remove(&leg);
        if let Some(port) = self.held.remove(&leg) {
            self.free.push_back(port);
        }
    }
}

/// The application on the signalling task.
pub struct ServerApp {
    sessions: Sessions,
    host: LuaHost,
    ports: RtpPortPool,
    media: MediaThread,
    call_log: Option<CallLog>,
}

impl ServerApp {
    /// Move media commands to the media thread (a new leg with its bound socket).
    fn pump(&mut self) {
        while let Some(cmd) = self.sessions.poll_media() {
            match &cmd {
                MediaCmd::CreateLeg { leg, .. } => match self.ports.take_sockets(*leg) {
                    Some(sockets) => self.media.send(MediaRequest::CreateLeg { sockets, cmd }),
                    None => tracing::error!(?leg, "no sockets for a new leg"),
                },
                _ => self.media.cmd(cmd),
            }
        }
        while let Some(record) = self.sessions.poll_ended() {
            if let Some(report) = &record.leg {
                tracing::debug!(call = %record.id, "call ended\n{report}");
            }
            metrics::counter!("rms_calls_total", "outcome" => record.reason.name()).increment(1);
            // Per leg, average MOS and loss over the call (legs with no measured interval are skipped).
            for (label, report) in [("A", &record.leg), ("B", &record.b_leg)] {
                let Some(q) = report.as_ref().map(|r| &r.rtcp.quality) else { continue };
                if let (Some(mos), Some(loss)) = (q.mos_avg(), q.loss_pct_avg()) {
                    metrics::histogram!("rms_call_mos", "leg" => label).record(mos);
                    metrics::histogram!("rms_call_packet_loss_percent", "leg" => label).record(loss);
                }
            }
            if let Some(log) = &mut self.call_log {
                if let Err(e) = log.append(&record) {
                    tracing::error!(call = %record.id, error = %e, "call log write failed");
                }
            }
        }
        metrics::gauge!("rms_active_calls").set(self.sessions.counts().calls as f64);
        while let Some((leg, report)) = self.sessions.poll_report() {
            tracing::debug!(?leg, "leg closed\n{report}");
        }
    }

    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    pub fn ports(&self) -> &RtpPortPool {
        &self.ports
    }
}

/// What reaches the signalling task besides SIP.
// Nearly every input is a media event: boxing it would allocate for each to save space on the rare
// `/sessions` request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum ServerInput {
    /// From the media thread.
    Media(MediaEvent),
    /// `GET /sessions`: the active calls.
    Sessions(oneshot::Sender<Vec<CallSummary>>),
}

impl SignallingApp for ServerApp {
    type Input = ServerInput;

    fn handle_event(&mut self, now: Duration, event: SipEvent, endpoint: &mut Endpoint) {
        self.sessions.handle_sip(now, event, endpoint, &mut self.host, &mut self.ports);
        self.pump();
    }

    fn handle_input(&mut self, now: Duration, input: ServerInput, endpoint: &mut Endpoint) {
        match input {
            ServerInput::Media(event) => {
                self.sessions.handle_media(now, event, endpoint, &mut self.host, &mut self.ports);
                self.pump();
            }
            ServerInput::Sessions(reply) => {
                let _ = reply.send(self.sessions.summaries(now));
            }
        }
    }

    fn begin_shutdown(&mut self, now: Duration, endpoint: &mut Endpoint) {
        tracing::info!(calls = self.sessions.counts().calls, "shutting down: ending calls");
        self.sessions.shutdown(now, endpoint, &mut self.host, &mut self.ports);
        self.pump();
    }

    /// No call, and every leg closed (so every call's record is written).
    fn is_idle(&self) -> bool {
        self.sessions.counts() == SessionCounts::default()
    }

    fn handle_timeout(&mut self, now: Duration, endpoint: &mut Endpoint) {
        self.sessions.handle_timeout(now, endpoint, &mut self.host, &mut self.ports);
        self.pump();
    }

    fn poll_timeout(&self) -> Option<Duration> {
        self.sessions.poll_timeout()
    }
}

/// A running server (signalling thread + media thread).
pub struct Server {
    signalling: SignallingThread<ServerApp>,
    http: Option<HttpThread>,
}

impl Server {
    /// Load the script, start the media thread, bind the SIP sockets.
    pub fn start(config: &ServeConfig) -> Result<Self, ServeError> {
        let host = match &config.script {
            Some(path) => LuaHost::load(path)?,
            None => LuaHost::from_source("examples/ivr_play_hangup.lua (built in)", EXAMPLE_SCRIPT)?,
        };
        if config.http.is_some() {
            // Before the media thread starts: it takes its metric handles once, from the recorder
            // installed then.
            let _ = super::http::prometheus();
        }
        let (media, events) = MediaThread::spawn_with(fastrand::u64(..), config.rtcp)
            .map_err(|source| ServeError::Bind { what: "media thread".into(), source })?;
        // The signalling task's clock starts right after this; the call log's and quality reports'
        // absolute times are off by that much (well under a millisecond).
        #[allow(clippy::disallowed_methods)] // the runtime owns the wall clock
        let epoch = std::time::SystemTime::now();
        let sessions = Sessions::new(
            SessionConfig {
                media_ip: config.media_ip,
                voice_dirs: vec![config.voice_dir.clone()],
                codecs: crate::sdp::codecs::KNOWN.to_vec(),
                telephone_event: true,
                opus: config.opus,
                vq_collector: config.vq_collector.clone(),
                epoch,
            },
            fastrand::u64(..),
        );
        let call_log = match &config.call_log {
            Some(path) => Some(
                CallLog::open(path, epoch)
                    .map_err(|source| ServeError::Bind { what: format!("call log {}", path.display()), source })?,
            ),
            None => None,
        };
        let ports = RtpPortPool::new(config.media_ip, config.rtp_ports.clone());
        let app = ServerApp { sessions, host, ports, media, call_log };
        let (inputs_tx, inputs) = mpsc::unbounded_channel();
        let media_events = inputs_tx.clone();
        let mut events = events;
        std::thread::Builder::new()
            .name("rms-media-events".into())
            .spawn(move || {
                // Ends when the media thread drops its sender or the signalling task is gone.
                while let Some(event) = events.blocking_recv() {
                    if media_events.send(ServerInput::Media(event)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|source| ServeError::Bind { what: "media event thread".into(), source })?;
        let http = match config.http {
            Some(addr) => Some(
                HttpThread::spawn(addr, inputs_tx.clone())
                    .map_err(|source| ServeError::Bind { what: format!("HTTP on {addr}"), source })?,
            ),
            None => None,
        };
        drop(inputs_tx);
        let mut signalling_config = SignallingConfig::new(config.listen);
        signalling_config.timers = config.timers;
        let signalling = SignallingThread::spawn_with_inputs(signalling_config, app, inputs)
            .map_err(|source| ServeError::Bind { what: format!("SIP on {}", config.listen), source })?;
        tracing::info!(listen = %signalling.local_addr(), "rms serving (UDP and TCP)");
        Ok(Self { signalling, http })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.signalling.local_addr()
    }

    /// The HTTP address, when `--http` was given.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http.as_ref().map(|h| h.local_addr())
    }

    /// End every call with BYE, wait for them to settle (bounded), stop.
    pub fn shutdown(self) -> (ServerApp, Endpoint) {
        drop(self.http);
        self.signalling.shutdown()
    }
}
