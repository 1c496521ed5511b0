//! SDP model (RFC 4566) and RFC 3264 offer/answer, sans-IO.
//!
//! [`SessionDescription`] wraps `sdp_types::Session` (parsing and printing are the crate's; the
//! printer writes CRLF line endings as RFC 4566 §5 requires). Offer/answer is ours
//! ([`negotiate_answer`], [`build_offer`], [`negotiate_offer_answer`]): one audio stream, the codec
//! the offerer preferred among ours, telephone-event (RFC 4733), ptime, RTCP port (RFC 3605),
//! rtcp-mux (RFC 5761) and direction/hold (RFC 3264 §8.4).
//!
//! Codecs are `rms_filters::codec::CodecKind`; [`codecs`] holds the small local table that maps SDP
//! encoding names to it (PCMU, PCMA, G722, opus) and the Opus format parameters (RFC 7587 §6.1).

pub mod codecs;
mod negotiate;

#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;

pub use codecs::OpusFmtp;
pub use negotiate::{
    build_offer, build_offer_with, negotiate_answer, negotiate_answer_with, negotiate_offer_answer, offer_unchanged,
    offered_codecs, Answer, AnswerConfig, CodecOptions, Direction, Negotiated, NegotiationError, OfferConfig,
    OriginState,
};
pub use sdp_types;

/// Errors reading an SDP body.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body is empty (or only whitespace).
    #[error("empty SDP body")]
    Empty,
    /// The body does not follow the RFC 4566 §5 grammar.
    #[error("malformed SDP: {0}")]
    Syntax(#[from] sdp_types::ParserError),
}

/// A parsed (or built) SDP session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    session: sdp_types::Session,
}

impl SessionDescription {
    /// Parse an SDP body. Never panics; any input that is not SDP is an [`SdpError`].
    /// Lenient as `sdp-types` is: LF or CRLF line endings, missing `o=`/`s=`/`t=` accepted.
    pub fn parse(bytes: &[u8]) -> Result<Self, SdpError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(SdpError::Empty);
        }
        let session = sdp_types::Session::parse(bytes)?;
        Ok(Self { session })
    }

    /// Wrap a session built by hand.
    pub fn from_session(session: sdp_types::Session) -> Self {
        Self { session }
    }

    /// The underlying `sdp_types` model.
    pub fn session(&self) -> &sdp_types::Session {
        &self.session
    }

    /// Mutable access to the underlying model.
    pub fn session_mut(&mut self) -> &mut sdp_types::Session {
        &mut self.session
    }

    pub fn into_session(self) -> sdp_types::Session {
        self.session
    }

    /// The `o=` line (RFC 4566 §5.2).
    pub fn origin(&self) -> &sdp_types::Origin {
        &self.session.origin
    }

    /// The media descriptions (`m=` sections) in order.
    pub fn media(&self) -> &[sdp_types::Media] {
        &self.session.medias
    }

    /// The session-level `c=` address, if present and an IP literal.
    pub fn session_address(&self) -> Option<IpAddr> {
        self.session.connection.as_ref().and_then(|c| c.connection_address.parse().ok())
    }

    /// The printed body, CRLF line endings (RFC 4566 §5).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        // Writing into a Vec cannot fail.
        let _ = self.session.write(&mut out);
        out
    }
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // sdp-types only writes UTF-8 strings it holds, so this is lossless.
        f.write_str(&String::from_utf8_lossy(&self.to_bytes()))
    }
}

impl std::str::FromStr for SessionDescription {
    type Err = SdpError;

    fn from_str(s: &str) -> Result<Self, SdpError> {
        Self::parse(s.as_bytes())
    }
}
