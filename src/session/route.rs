//! What the session layer asks of a routing script: the [`RouteHost`] trait, the call as a script
//! sees it ([`CallView`]) and what a route asks for ([`Action`]).
//!
//! Routes run to completion and return their actions; the session layer carries them out in order
//! afterwards, so a script never blocks signalling or media.

use std::net::SocketAddr;

/// The call's fields a script reads (`call.id`, `call.ruri`, ... and `call:header(name)`).
#[derive(Debug, Clone, PartialEq, Eq)]
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
}

/// Which route to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteName<'a> {
    /// `request_route(call)`, for each initial INVITE.
    Request,
    /// `event_route["name"]`.
    Event(&'a str),
}

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
