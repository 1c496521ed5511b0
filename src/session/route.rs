//! What the session layer asks of a routing script: the [`RouteHost`] trait, the call as a script
//! sees it ([`CallView`]) and what a route asks for ([`Action`]).
//!
//! Routes run to completion and return their actions; the session layer carries them out in order
//! afterwards, so a script never blocks signalling or media.

use std::net::SocketAddr;

/// The call's fields a script reads (`call.id`, `call.ruri`, ... and `call:header(name)`).
#[derive(Debug, Clone, PartialEq)]
pub struct CallView {
    pub id: String,
    pub ruri: String,
    pub ruri_user: String,
    pub from: String,
    pub to: String,
    pub source: SocketAddr,
    /// The negotiated codec name (`PCMU`), empty before the answer.
    pub codec: String,
    /// The initial INVITE's headers, in order, for `call:header(name)`.
    pub headers: Vec<(String, String)>,
    /// The B-leg's final status when a bridge failed (for `on_failed`: 486, 408 ...), or 200 once
    /// bridged; 0 before any bridge.
    pub bridge_status: u16,
    /// The B-leg's reason phrase, or why the bridge could not start.
    pub bridge_reason: String,
    /// The B-leg's negotiated codec name, empty until it answers.
    pub b_codec: String,
    /// Why the call ended (`caller_bye`, `rms_bye`, ...), for `event_route["rms:hangup"]`; empty before.
    pub end_reason: String,
    /// Each leg's quality over the call (A, then B when bridged), for `rms:hangup`.
    pub quality: Vec<LegQuality>,
}

/// One leg's quality over the call, from rms's own receive measurements: the figures rtpengine gives
/// Kamailio as `mos_*_A` / `mos_*_B`, but for every call (no RTCP from the peer needed).
#[derive(Debug, Clone, PartialEq)]
pub struct LegQuality {
    /// `A` (the caller's leg) or `B` (the bridged callee's).
    pub label: &'static str,
    /// Lowest interval MOS (conversational, G.107) and when it was measured (s since the call began).
    pub mos_min: Option<(f64, f64)>,
    pub mos_max: Option<f64>,
    pub mos_average: Option<f64>,
    /// Averages over the intervals: loss % (lost and discarded), jitter ms, round trip ms.
    pub packetloss: Option<f64>,
    pub jitter: Option<f64>,
    pub roundtrip: Option<f64>,
    /// Intervals measured.
    pub samples: u64,
}

impl LegQuality {
    /// The figures of a leg's report, times relative to `call_started` (what the hangup route and the
    /// call log both show).
    pub fn of(label: &'static str, report: &crate::media::LegReport, call_started: std::time::Duration) -> Self {
        let q = &report.rtcp.quality;
        LegQuality {
            label,
            mos_min: q.mos_min().map(|m| (m.mos, m.at.saturating_sub(call_started).as_secs_f64())),
            mos_max: q.mos_max().map(|m| m.mos),
            mos_average: q.mos_avg(),
            packetloss: q.loss_pct_avg(),
            jitter: q.jitter_ms_avg(),
            roundtrip: q.rtt_ms_avg(),
            samples: q.count(),
        }
    }
}

impl CallView {
    /// The first value of a header, case-insensitively (compact forms are expanded by the parser).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What a route asks for (Kamailio's `rms_*` functions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `call:answer(route)`: 200 with the negotiated SDP, media starts, then `route` runs.
    Answer { route: String },
    /// `call:play(file, route)`: play a prompt; `route` runs when it ends.
    Play { file: String, route: String },
    /// `call:hangup([code, reason])`: BYE when answered, else a final response (default 480).
    Hangup { code: Option<u16>, reason: Option<String> },
    /// `call:reply(code, reason)`: a response to the INVITE (18x, or a 3xx-6xx final).
    Reply { code: u16, reason: String },
    /// `call:ringing()`: 180 Ringing.
    Ringing,
    /// `call:bridge(target, on_bridged [, on_failed] [, opts])`: dial a B-leg and bridge it.
    Bridge(BridgeRequest),
}

/// What `call:bridge` asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BridgeRequest {
    /// The B-leg's Request-URI, e.g. `sip:bob@192.0.2.9:5060;transport=tcp`.
    pub target: String,
    /// Runs once both legs are answered and their media is joined.
    pub on_bridged: String,
    /// Runs when the B-leg fails (`call.bridge_status` says how); without it the failure is
    /// relayed to an unanswered A-leg, or an answered one gets a BYE.
    pub on_failed: Option<String>,
    /// Codec names offered to the B-leg (`{"PCMU"}`); default: the A-leg's codec first, then ours.
    pub codecs: Option<Vec<String>>,
    /// Ring timeout; default [`crate::session::DEFAULT_RING_TIMEOUT`].
    pub timeout: Option<std::time::Duration>,
    /// Extra headers for the B-leg INVITE.
    pub headers: Vec<(String, String)>,
    /// The B-leg's From URI; default the A-leg's From (without its tag).
    pub from: Option<String>,
}

/// Which route to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteName<'a> {
    /// `request_route(call)`, for each initial INVITE.
    Request,
    /// `event_route["name"]`.
    Event(&'a str),
}

/// The route run for every call that ends, with `call.end_reason` and `call.quality` set.
pub const HANGUP_ROUTE: &str = "rms:hangup";

impl std::fmt::Display for RouteName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteName::Request => f.write_str("request_route"),
            RouteName::Event(name) => write!(f, "event_route[\"{name}\"]"),
        }
    }
}

/// A route that could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// The script defines no such route.
    #[error("{route} is not defined in {script}")]
    UndefinedRoute { route: String, script: String },
    /// The route raised an error (message carries the script's file and line).
    #[error("{route} failed: {message}")]
    Runtime { route: String, message: String },
    /// The script does not load (syntax error, error at top level), with file and line.
    #[error("cannot load {message}")]
    Load { message: String },
}

/// A routing script host. The Lua one is `script::LuaHost`; tests use closures.
pub trait RouteHost {
    /// Run a route to completion for `call` and return what it asked for.
    fn run(&mut self, route: RouteName<'_>, call: &CallView) -> Result<Vec<Action>, ScriptError>;
}
