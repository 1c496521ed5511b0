//! Stream framing by Content-Length (RFC 3261 §18.3) with RFC 5626 §3.5.1 keep-alives.

use super::message::SipMessage;
use super::parse::{find_head_end, parse_head, Head};
use super::SipError;

/// The largest message (head + body) we accept, and the most a [`StreamFramer`] buffers.
pub const MAX_MESSAGE_SIZE: usize = 64 * 1024;

/// Cuts a TCP byte stream into SIP messages.
///
/// After an error that loses framing (missing or invalid Content-Length, over-size message) the
/// buffer is cleared; the caller should close the connection.
///
/// Work is linear in the bytes received however they are split: the search for the end of the
/// head resumes where it stopped, and a head is parsed once while its body arrives (a peer
/// trickling one byte per segment must not cost quadratic time).
#[derive(Debug, Default)]
pub struct StreamFramer {
    buf: Vec<u8>,
    /// How much of `buf` has been searched for the empty line ending the head.
    scanned: usize,
    /// The parsed head of the message whose body is arriving: (head, head length, total length).
    pending: Option<(Head, usize, usize)>,
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
        if self.pending.is_none() {
            if let Err(e) = self.read_head()? {
                self.reset();
                return Some(Err(e));
            }
        }
        let &(_, head_end, total) = self.pending.as_ref()?;
        if self.buf.len() < total {
            return None;
        }
        let (head, ..) = self.pending.take()?;
        let body = self.buf[head_end..total].to_vec();
        self.buf.drain(..total);
        self.scanned = 0;
        Some(SipMessage::from_head(head, body))
    }

    /// Find and parse the next head into `pending`: `None` if more bytes are needed.
    fn read_head(&mut self) -> Option<Result<(), SipError>> {
        // Keep-alives (CRLF, CRLFCRLF) between messages are skipped.
        let lead = self.buf.iter().position(|b| !matches!(b, b'\r' | b'\n')).unwrap_or(self.buf.len());
        self.buf.drain(..lead);
        self.scanned = self.scanned.saturating_sub(lead);
        if self.buf.is_empty() {
            return None;
        }
        // The empty line is at most 3 bytes ("\n\r\n"): resume just before where we stopped.
        let from = self.scanned.saturating_sub(3);
        let Some(head_end) = find_head_end(&self.buf[from..]).map(|end| from + end) else {
            self.scanned = self.buf.len();
            if self.buf.len() > MAX_MESSAGE_SIZE {
                return Some(Err(SipError::TooLarge { limit: MAX_MESSAGE_SIZE }));
            }
            return None;
        };
        let head = match parse_head(&self.buf[..head_end]) {
            Ok(h) => h,
            Err(e) => return Some(Err(e)),
        };
        let Some(len) = head.content_length else {
            return Some(Err(SipError::MissingContentLength));
        };
        let total = head_end.saturating_add(len);
        if total > MAX_MESSAGE_SIZE {
            return Some(Err(SipError::TooLarge { limit: MAX_MESSAGE_SIZE }));
        }
        self.pending = Some((head, head_end, total));
        Some(Ok(()))
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.scanned = 0;
        self.pending = None;
    }
}
