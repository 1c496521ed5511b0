//! SIP message facade (RFC 3261 §7, §18.3, §20) over `rsipstack`'s codec, sans-IO.
//!
//! We tokenise the message head ourselves (line endings, header folding, compact and
//! case-insensitive names, comma-separated list headers, Content-Length per §18.3) and hand each
//! normalised header to `rsipstack::sip::headers::make_header`; the start line is parsed with
//! `rsipstack`'s `Method`, `Uri` and `Version`. Typed accessors parse header values on demand with
//! `rsipstack`'s typed headers ("parse, don't validate"). Printing is ours so the Content-Length
//! always matches the body and a response keeps its reason phrase.
//!
//! Transport framing: [`SipMessage::parse_datagram`] (UDP, §18.3) and [`StreamFramer`] (TCP,
//! framing by Content-Length, RFC 5626 §3.5.1 CRLF keep-alives skipped).

mod dialog;
mod endpoint;
mod framing;
mod message;
mod parse;
mod timer;
mod transaction;

#[cfg(test)]
mod tests;

pub use dialog::{Dialog, DialogId, DialogRole, DialogState};
pub use endpoint::{
    Body, ClientTxId, DialogEnd, Endpoint, EndpointConfig, EndpointCounts, EndpointError, OutgoingRequest, Reply,
    ServerTxId, SipEvent, Transmit, Transport, ACCEPT, ALLOW,
};
pub use framing::{StreamFramer, MAX_MESSAGE_SIZE};
pub use message::{print_uri, CSeq, NameAddr, Request, Response, SipMessage, ViaHeader};
pub use parse::looks_like_response;
pub use rsipstack::sip::{Method, Uri};
pub use timer::{Timer, TimerConfig, TimerTable};
pub use transaction::{
    Absorbed, ClientEvent, ClientState, ClientTransaction, ServerEvent, ServerState, ServerTransaction,
    TransactionError, TransactionKind, MAGIC_COOKIE,
};

/// Errors reading a SIP message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SipError {
    /// No blank line ends the header section.
    #[error("incomplete SIP message: no empty line after the headers")]
    Incomplete,
    /// The start line is neither a Request-Line nor a Status-Line we can read.
    #[error("malformed start line: {detail}")]
    StartLine { detail: String },
    /// A well-formed SIP-Version other than 2.0 (RFC 3261 §21.5.6: 505).
    #[error("unsupported SIP version {version:?}")]
    UnsupportedVersion { version: String },
    /// A request whose method token we do not know.
    #[error("unknown method {method:?}")]
    UnknownMethod { method: String },
    /// A header line that is not `name: value`, or not UTF-8.
    #[error("malformed header line {line:?}")]
    HeaderLine { line: String },
    /// A header whose value does not parse.
    #[error("malformed {name} header: {detail}")]
    HeaderValue { name: &'static str, detail: String },
    /// A header required by RFC 3261 §8.1.1 is missing.
    #[error("missing {name} header")]
    MissingHeader { name: &'static str },
    /// A single-valued header appears more than once with different values.
    #[error("{name} header appears more than once")]
    DuplicateHeader { name: &'static str },
    /// Content-Length is not a non-negative decimal number.
    #[error("invalid Content-Length {value:?}")]
    InvalidContentLength { value: String },
    /// RFC 3261 §18.3: the datagram holds fewer body bytes than Content-Length announces.
    #[error("body shorter than Content-Length: {declared} declared, {available} present")]
    BodyTooShort { declared: usize, available: usize },
    /// RFC 3261 §18.3: a stream message without Content-Length cannot be framed.
    #[error("missing Content-Length on a stream transport")]
    MissingContentLength,
    /// The message (or the stream buffer holding a partial one) exceeds [`MAX_MESSAGE_SIZE`].
    #[error("message larger than {limit} bytes")]
    TooLarge { limit: usize },
}

/// What the transport layer should do with an unreadable message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadMessageAction {
    /// Answer the request with this status and reason phrase (RFC 3261 §8.2.x, §21.4).
    Respond { status: u16, reason: &'static str },
    /// Drop silently (a malformed response, or a request too broken to answer).
    Drop,
}

impl SipError {
    /// The response a UAS sends when a request fails with this error.
    ///
    /// `is_request` is whether the start line read as a request; a malformed response is always
    /// dropped (RFC 3261 §18.1.2). A stream that lost framing (or an over-size
    /// message) is closed or dropped by the caller, never answered.
    pub fn action(&self, is_request: bool) -> BadMessageAction {
        if !is_request {
            return BadMessageAction::Drop;
        }
        match self {
            SipError::Incomplete | SipError::TooLarge { .. } | SipError::MissingContentLength => BadMessageAction::Drop,
            SipError::UnknownMethod { .. } => BadMessageAction::Respond { status: 501, reason: "Not Implemented" },
            SipError::UnsupportedVersion { .. } => {
                BadMessageAction::Respond { status: 505, reason: "Version Not Supported" }
            }
            SipError::StartLine { .. } => BadMessageAction::Respond { status: 400, reason: "Bad Request" },
            SipError::HeaderLine { .. } => {
                BadMessageAction::Respond { status: 400, reason: "Bad Request - Malformed Header" }
            }
            SipError::HeaderValue { .. } => {
                BadMessageAction::Respond { status: 400, reason: "Bad Request - Malformed Header" }
            }
            SipError::MissingHeader { .. } => {
                BadMessageAction::Respond { status: 400, reason: "Bad Request - Missing Header" }
            }
            SipError::DuplicateHeader { .. } => {
                BadMessageAction::Respond { status: 400, reason: "Bad Request - Duplicate Header" }
            }
            SipError::InvalidContentLength { .. } => {
                BadMessageAction::Respond { status: 400, reason: "Bad Request - Invalid Content-Length" }
            }
            SipError::BodyTooShort { .. } => {
                BadMessageAction::Respond { status: 400, reason: "Bad Request - Body Too Short" }
            }
        }
    }
}

/// Why a request target (a bridge's B-leg URI) cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("target {target:?} is not a SIP URI: {detail}")]
    Unparseable { target: String, detail: String },
    #[error("target {target:?}: only sip: URIs are supported")]
    Scheme { target: String },
    /// rms does no DNS (RFC 3263): the host must be an IP literal or `localhost`.
    #[error("target {target:?}: host must be an IP address or localhost (no DNS)")]
    HostName { target: String },
    #[error("target {target:?}: unsupported transport {transport:?} (udp or tcp)")]
    Transport { target: String, transport: String },
}

/// A request target resolved without DNS: the Request-URI, where to send it and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub uri: Uri,
    pub dest: std::net::SocketAddr,
    pub transport: Transport,
}

/// Read a target such as `sip:bob@192.0.2.9:5080;transport=tcp` (RFC 3261 §19.1; default port
/// 5060, default transport UDP).
pub fn parse_target(target: &str) -> Result<Target, TargetError> {
    // A name-addr's angle brackets are accepted (`<sip:bob@192.0.2.9>`).
    let t = target.trim();
    let t = t.strip_prefix('<').and_then(|t| t.strip_suffix('>')).unwrap_or(t);
    let unparseable = |detail: String| TargetError::Unparseable { target: t.to_string(), detail };
    if t.contains(char::is_whitespace) {
        return Err(unparseable("white space in the URI".into()));
    }
    match t.split_once(':') {
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("sip") => {}
        Some((scheme, _)) if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric()) => {
            return Err(TargetError::Scheme { target: t.to_string() })
        }
        _ => return Err(unparseable("no sip: scheme".into())),
    }
    let uri = rsipstack::sip::parse_uri(t).map_err(|e| unparseable(e.to_string()))?;
    let host = uri.host_with_port.host.to_string();
    let port = uri.host_with_port.port.as_ref().map_or(5060, |p| p.value());
    let ip: std::net::IpAddr = match host.trim_start_matches('[').trim_end_matches(']') {
        h if h.eq_ignore_ascii_case("localhost") => std::net::Ipv4Addr::LOCALHOST.into(),
        h => h.parse().map_err(|_| TargetError::HostName { target: t.to_string() })?,
    };
    let transport = match uri_param(t, "transport") {
        None => Transport::Udp,
        Some(v) if v.eq_ignore_ascii_case("udp") => Transport::Udp,
        Some(v) if v.eq_ignore_ascii_case("tcp") => Transport::Tcp,
        Some(v) => return Err(TargetError::Transport { target: t.to_string(), transport: v.to_string() }),
    };
    Ok(Target { uri, dest: std::net::SocketAddr::new(ip, port), transport })
}

/// A URI parameter's value (`;name=value`), before any `?headers`.
fn uri_param<'a>(uri: &'a str, name: &str) -> Option<&'a str> {
    let params = uri.split('?').next()?;
    params.split(';').skip(1).find_map(|p| {
        let (n, v) = p.split_once('=')?;
        n.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

#[cfg(test)]
mod transaction_tests;

#[cfg(test)]
mod endpoint_tests;
