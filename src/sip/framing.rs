//! Stream framing by Content-Length (RFC 3261 §18.3) with RFC 5626 §3.5.1 keep-alives.

use super::message::SipMessage;
use super::parse::parse_head;
use super::SipError;

/// The largest message (head + body) we accept, and the most a [`StreamFramer`] buffers.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// Cuts a TCP byte stream into SIP messages.
///
/// After an error that loses framing (missing or invalid Content-Length, over-size message) the
/// buffer is cleared; the caller should close the connection.
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
}

impl StreamFramer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Append received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes buffered and not yet framed.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, `None` if more bytes are needed.
    pub fn next_message(&mut self) -> Option<Result<SipMessage, SipError>> {
        // Keep-alives (CRLF, CRLFCRLF) between messages are skipped.
        let lead = self.buf.iter().position(|b| !matches!(b, b'\r' | b'\n')).unwrap_or(self.buf.len());
        self.buf.drain(..lead);
        if self.buf.is_empty() {
            return None;
        }
        let Some(head_end) = SipMessage::head_complete(&self.buf) else {
            if self.buf.len() > MAX_MESSAGE_SIZE {
                self.buf.clear();
                return Some(Err(SipError::TooLarge { limit: MAX_MESSAGE_SIZE }));
            }
            return None;
        };
        let head = match parse_head(&self.buf[..head_end]) {
            Ok(h) => h,
            Err(e) => {
                self.buf.clear();
                return Some(Err(e));
            }
        };
        let Some(len) = head.content_length else {
            self.buf.clear();
            return Some(Err(SipError::MissingContentLength));
        };
        let total = head_end.saturating_add(len);
        if total > MAX_MESSAGE_SIZE {
            self.buf.clear();
            return Some(Err(SipError::TooLarge { limit: MAX_MESSAGE_SIZE }));
        }
        if self.buf.len() < total {
            return None;
        }
        let body = self.buf[head_end..total].to_vec();
        self.buf.drain(..total);
        Some(SipMessage::from_head(head, body))
    }
}
