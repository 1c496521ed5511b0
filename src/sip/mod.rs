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

#[cfg(test)]
mod transaction_tests;

#[cfg(test)]
mod endpoint_tests;
