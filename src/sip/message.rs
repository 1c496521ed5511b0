//! The message model: [`SipMessage`], [`Request`], [`Response`] and typed header views.

use std::fmt::Write as _;

use rsipstack::sip::headers::typed;
use rsipstack::sip::uri::Param;
use rsipstack::sip::{HostWithPort, Method, Uri, Version};

use super::parse::{canonical_name, is_token, is_token_char, parse_head, Head};
use super::SipError;

/// A parsed or built SIP request or response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SipMessage {
    Request(Request),
    Response(Response),
}

/// A SIP request: method, Request-URI, headers (in wire order, compact names expanded, list
/// headers one entry per element) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: Method,
    uri: Uri,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A SIP response: status code, reason phrase, headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    status: u16,
    reason: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// The typed view of one Via header entry (RFC 3261 §20.42, RFC 3581 rport).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViaHeader {
    /// `UDP`, `TCP`, `TLS`, ...
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub branch: Option<String>,
    pub received: Option<String>,
    /// `None`: no rport; `Some(None)`: `;rport` without value; `Some(Some(p))`: `;rport=p`.
    pub rport: Option<Option<u16>>,
}

/// A name-addr / addr-spec header value: From, To, Contact, Route, Record-Route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    pub display_name: Option<String>,
    pub uri: Uri,
    pub tag: Option<String>,
    /// The header parameters (after the URI), printed (`;expires=60;lr`), without `tag`.
    pub params: String,
}

/// The CSeq header (RFC 3261 §20.16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

fn header_err(name: &'static str, e: impl std::fmt::Display) -> SipError {
    SipError::HeaderValue { name, detail: e.to_string() }
}

/// Strict checks rsipstack does not make: empty Via entries and empty `;;` parameters.
fn check_no_empty_params(name: &'static str, value: &str) -> Result<(), SipError> {
    if value.is_empty() {
        return Err(header_err(name, "empty list element"));
    }
    // Parameters after the closing '>' (or after the addr-spec / sent-by).
    let params = match value.rfind('>') {
        Some(gt) => &value[gt + 1..],
        None => value.split_once(';').map(|(_, p)| p).map_or("", |p| p),
    };
    let params = params.trim();
    let params = if value.contains('>') { params.strip_prefix(';').unwrap_or(params) } else { params };
    if !params.is_empty() && params.split(';').any(|p| p.trim().is_empty()) {
        return Err(header_err(name, format!("empty parameter in {value:?}")));
    }
    if value.contains('>') && !params.is_empty() && !value[value.rfind('>').unwrap_or(0) + 1..].trim().starts_with(';')
    {
        return Err(header_err(name, format!("text after '>' in {value:?}")));
    }
    Ok(())
}

/// Via (RFC 3261 §20.42, §25.1): `sent-protocol LWS sent-by *( SEMI via-params )`. Read here, not
/// by rsipstack, whose Via rejects transports it does not know (`other-transport = token`, RFC 4475
/// §3.1.1.10) and misreads LWS around `=` (RFC 4475 §3.1.1.1).
fn via_from_str(value: &str) -> Result<ViaHeader, SipError> {
    check_no_empty_params("Via", value)?;
    let bad = |what: &str| header_err("Via", format!("{what} in {value:?}"));
    // sent-protocol = protocol-name SLASH protocol-version SLASH transport; SLASH = SWS "/" SWS.
    let (protocol, rest) = value.split_once('/').ok_or_else(|| bad("no sent-protocol"))?;
    let (version, rest) = rest.split_once('/').ok_or_else(|| bad("no sent-protocol"))?;
    let rest = rest.trim_start_matches(LWS);
    let transport_end = rest.bytes().position(|b| !is_token_char(b)).unwrap_or(rest.len());
    let (transport, rest) = rest.split_at(transport_end);
    if !is_token(protocol.trim_matches(LWS)) || !is_token(version.trim_matches(LWS)) || transport.is_empty() {
        return Err(bad("malformed sent-protocol"));
    }
    let after = rest.trim_start_matches(LWS);
    if after.len() == rest.len() {
        return Err(bad("no LWS before sent-by"));
    }
    let (sent_by, params) = after.split_once(';').unwrap_or((after, ""));
    // sent-by = host [ COLON port ]; COLON = SWS ":" SWS.
    let sent_by: String = squeeze_around(sent_by.trim_matches(LWS), ':');
    if sent_by.contains(LWS) {
        return Err(bad("whitespace in sent-by"));
    }
    let host_port = HostWithPort::try_from(sent_by.as_str()).map_err(|e| header_err("Via", e))?;
    let mut via = ViaHeader {
        transport: transport.to_ascii_uppercase(),
        host: host_port.host.to_string(),
        port: host_port.port.as_ref().map(|p| p.value()),
        branch: None,
        received: None,
        rport: None,
    };
    if params.is_empty() {
        return Ok(via);
    }
    for param in params.split(';') {
        let (name, val) = match param.split_once('=') {
            Some((n, v)) => (n.trim_matches(LWS), Some(v.trim_matches(LWS))),
            None => (param.trim_matches(LWS), None),
        };
        // gen-value = token / host / quoted-string; a host may be an IPv6 reference.
        let value_ok =
            |v: &str| is_quoted(v) || (!v.is_empty() && v.bytes().all(|b| is_token_char(b) || b":[]".contains(&b)));
        if !is_token(name) || val.is_some_and(|v| !value_ok(v)) {
            return Err(bad("malformed parameter"));
        }
        match (name.to_ascii_lowercase().as_str(), val) {
            ("branch", Some(v)) => via.branch = Some(v.to_string()),
            ("received", Some(v)) => via.received = Some(v.to_string()),
            ("rport", None) => via.rport = Some(None),
            ("rport", Some(v)) => via.rport = Some(Some(v.parse::<u16>().map_err(|_| bad("invalid rport"))?)),
            ("branch" | "received", None) => return Err(bad("parameter without value")),
            _ => {}
        }
    }
    Ok(via)
}

const LWS: [char; 2] = [' ', '\t'];

/// A complete quoted-string (RFC 3261 §25.1), quoted-pairs included.
fn is_quoted(v: &str) -> bool {
    v.len() >= 2 && v.starts_with('"') && quoted_string_len(v) == Some(v.len())
}

/// The length of the quoted-string `s` starts with, `None` if it is not terminated.
fn quoted_string_len(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i + 1),
            _ => {}
        }
    }
    None
}

/// Drop whitespace next to `sep` (SWS around COLON, EQUAL, ...).
fn squeeze_around(s: &str, sep: char) -> String {
    s.split(sep).map(|part| part.trim_matches(LWS)).collect::<Vec<_>>().join(&sep.to_string())
}

/// RFC 3261 §25.1 name-addr / addr-spec checks rsipstack does not make (RFC 4475 §3.1.2.6,
/// §3.1.2.13, §3.1.2.15): quotes terminated, an unquoted display-name is `*(token LWS)`, and an
/// addr-spec without `<>` has no `?` or `,` (RFC 3261 §20.10: such a URI must be in `<>`).
fn check_name_addr(name: &'static str, value: &str) -> Result<(), SipError> {
    let mut i = 0;
    let mut lt = None;
    while let Some(c) = value[i..].chars().next() {
        match c {
            '"' => i += quoted_string_len(&value[i..]).ok_or_else(|| header_err(name, "unterminated quoted string"))?,
            '<' if lt.is_none() => {
                lt = Some(i);
                i += 1;
            }
            _ => i += c.len_utf8(),
        }
    }
    match lt {
        Some(lt) => {
            let display = value[..lt].trim_matches(LWS);
            let ok = if display.starts_with('"') {
                is_quoted(display)
            } else {
                display.split(LWS).all(|t| t.is_empty() || is_token(t))
            };
            if !ok {
                return Err(header_err(name, format!("malformed display-name {display:?}")));
            }
        }
        None => {
            let uri = value.split(';').next().unwrap_or(value);
            if uri.contains(['?', ',']) {
                return Err(header_err(name, format!("URI with '?' or ',' outside <> in {value:?}")));
            }
        }
    }
    Ok(())
}

/// rsipstack misreads `; tag = x` (LWS around `;` and `=`, legal per RFC 3261 §25.1): drop
/// whitespace next to `;` and `=` outside quotes and `<...>`. Linear: a whitespace run is judged
/// once (a datagram full of spaces must not cost quadratic time).
fn squeeze_param_lws(value: &str) -> std::borrow::Cow<'_, str> {
    if !value.contains([' ', '\t']) {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let (mut quoted, mut escaped, mut depth) = (false, false, 0usize);
    let mut chars = value.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            out.push(c);
            continue;
        }
        match c {
            '"' => quoted = true,
            '<' => depth += 1,
            '>' => depth = depth.saturating_sub(1),
            ' ' | '\t' if depth == 0 => {
                let mut end = i + 1;
                while let Some(&(j, ' ' | '\t')) = chars.peek() {
                    chars.next();
                    end = j + 1;
                }
                let prev = out.chars().next_back();
                let next = value[end..].chars().next();
                if !matches!(prev, Some(';' | '=')) && !matches!(next, Some(';' | '=')) {
                    out.push_str(&value[i..end]);
                }
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    std::borrow::Cow::Owned(out)
}

fn name_addr_from_str(name: &'static str, value: &str) -> Result<NameAddr, SipError> {
    check_name_addr(name, value)?;
    let value = &squeeze_param_lws(value);
    // From's parser is rsipstack's generic display-name/URI/params reader.
    let typed::From { display_name, uri, params } = typed::From::parse(value).map_err(|e| header_err(name, e))?;
    let mut tag = None;
    let mut rest = String::new();
    for p in params {
        match p {
            Param::Tag(t) => tag = Some(t.to_string()),
            other => {
                let _ = write!(rest, "{other}");
            }
        }
    }
    Ok(NameAddr { display_name, uri, tag, params: rest })
}

fn cseq_from_str(value: &str) -> Result<CSeq, SipError> {
    let c = typed::CSeq::parse(value).map_err(|e| header_err("CSeq", e))?;
    Ok(CSeq { seq: c.seq, method: c.method })
}

/// A SIP-Version other than `SIP/2.0`: 505 when it is well formed (RFC 3261 §21.5.6, RFC 4475
/// §3.1.2.16 `badvers`), else a malformed start line.
fn version_error(version: &str, line: &str) -> SipError {
    // SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT (§25.1).
    let well_formed = version.strip_prefix("SIP/").and_then(|v| v.split_once('.')).is_some_and(|(major, minor)| {
        [major, minor].iter().all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    if well_formed {
        SipError::UnsupportedVersion { version: version.to_string() }
    } else {
        SipError::StartLine { detail: format!("malformed SIP-Version: {line:?}") }
    }
}

/// Whether a `sip:`/`sips:` URI has a `?headers` part. The user part may itself hold `?`
/// (`user-unreserved`, RFC 4475 §3.1.1.2), so look only after the `@`.
fn has_uri_headers(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else { return false };
    if !scheme.eq_ignore_ascii_case("sip") && !scheme.eq_ignore_ascii_case("sips") {
        return false;
    }
    rest.split_once('@').map_or(rest, |(_, host)| host).contains('?')
}

/// A URI as we put it on the wire. rsipstack keeps the userinfo as received, escapes included,
/// but its `Display` escapes it again (`sips%3Au` prints as `sips%253Au`): escape only what
/// RFC 3261 §25.1 does not allow there and keep valid `%HH` escapes.
pub fn print_uri(uri: &Uri) -> String {
    let mut out = String::new();
    if let Some(scheme) = &uri.scheme {
        let _ = write!(out, "{scheme}:");
    }
    if let Some(auth) = &uri.auth {
        // user-unreserved / unreserved; password adds nothing but drops ";?/".
        escape_into(&mut out, &auth.user, b"-_.!~*'()&=+$,;?/");
        if let Some(password) = &auth.password {
            out.push(':');
            escape_into(&mut out, password, b"-_.!~*'()&=+$,");
        }
        out.push('@');
    }
    let _ = write!(out, "{}", uri.host_with_port);
    for param in &uri.params {
        let _ = write!(out, "{param}");
    }
    for (i, (name, value)) in uri.headers.iter().enumerate() {
        let _ = write!(out, "{}{name}={value}", if i == 0 { '?' } else { '&' });
    }
    out
}

fn escape_into(out: &mut String, text: &str, unreserved: &[u8]) {
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let escape = b == b'%' && bytes.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit));
        if b.is_ascii_alphanumeric() || unreserved.contains(&b) || escape {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Header access shared by requests and responses.
macro_rules! header_accessors {
    () => {
        /// All headers in order, as (canonical name, value); list headers one entry per element.
        pub fn headers(&self) -> &[(String, String)] {
            &self.headers
        }

        /// The first value of a header, by full or compact name, case-insensitively.
        pub fn header(&self, name: &str) -> Option<&str> {
            let name = canonical_name(name);
            self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(&name)).map(|(_, v)| v.as_str())
        }

        /// Every value of a header, by full or compact name, case-insensitively.
        pub fn header_all(&self, name: &str) -> Vec<&str> {
            let name = canonical_name(name);
            self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(&name)).map(|(_, v)| v.as_str()).collect()
        }

        /// Append a header (name canonicalised; list values are not split).
        pub fn push_header(&mut self, name: &str, value: impl Into<String>) {
            self.headers.push((canonical_name(name).into_owned(), value.into()));
        }

        /// Insert a header before all others (a new top Via).
        pub fn prepend_header(&mut self, name: &str, value: impl Into<String>) {
            self.headers.insert(0, (canonical_name(name).into_owned(), value.into()));
        }

        /// Replace the first value of a header (appended when absent).
        pub fn set_first_header(&mut self, name: &str, value: impl Into<String>) {
            let name = canonical_name(name);
            match self.headers.iter_mut().find(|(n, _)| n.eq_ignore_ascii_case(&name)) {
                Some((_, v)) => *v = value.into(),
                None => self.headers.push((name.into_owned(), value.into())),
            }
        }

        /// Remove every header with this name.
        pub fn remove_header(&mut self, name: &str) {
            let name = canonical_name(name);
            self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        }

        /// The topmost Via.
        pub fn via_top(&self) -> Result<ViaHeader, SipError> {
            via_from_str(self.header("Via").ok_or(SipError::MissingHeader { name: "Via" })?)
        }

        /// Every Via, top first.
        pub fn vias(&self) -> Result<Vec<ViaHeader>, SipError> {
            self.header_all("Via").into_iter().map(via_from_str).collect()
        }

        pub fn from(&self) -> Result<NameAddr, SipError> {
            name_addr_from_str("From", self.header("From").ok_or(SipError::MissingHeader { name: "From" })?)
        }

        pub fn to(&self) -> Result<NameAddr, SipError> {
            name_addr_from_str("To", self.header("To").ok_or(SipError::MissingHeader { name: "To" })?)
        }

        pub fn call_id(&self) -> Result<&str, SipError> {
            self.header("Call-ID").ok_or(SipError::MissingHeader { name: "Call-ID" })
        }

        pub fn cseq(&self) -> Result<CSeq, SipError> {
            cseq_from_str(self.header("CSeq").ok_or(SipError::MissingHeader { name: "CSeq" })?)
        }

        /// Contact entries (`*` reads as a URI with scheme `*`).
        pub fn contacts(&self) -> Result<Vec<NameAddr>, SipError> {
            self.header_all("Contact").into_iter().map(|v| name_addr_from_str("Contact", v)).collect()
        }

        pub fn record_routes(&self) -> Result<Vec<NameAddr>, SipError> {
            self.header_all("Record-Route").into_iter().map(|v| name_addr_from_str("Record-Route", v)).collect()
        }

        pub fn routes(&self) -> Result<Vec<NameAddr>, SipError> {
            self.header_all("Route").into_iter().map(|v| name_addr_from_str("Route", v)).collect()
        }

        /// Max-Forwards, `None` when absent.
        pub fn max_forwards(&self) -> Result<Option<u32>, SipError> {
            self.header("Max-Forwards").map(|v| v.parse::<u32>().map_err(|e| header_err("Max-Forwards", e))).transpose()
        }

        /// The Content-Type value as written (`application/sdp`).
        pub fn content_type(&self) -> Option<&str> {
            self.header("Content-Type")
        }

        pub fn body(&self) -> &[u8] {
            &self.body
        }

        /// Replace the body (the printed Content-Length follows it).
        pub fn set_body(&mut self, content_type: Option<&str>, body: Vec<u8>) {
            if let Some(ct) = content_type {
                self.remove_header("Content-Type");
                self.push_header("Content-Type", ct);
            }
            self.body = body;
        }

        fn write_headers(&self, out: &mut Vec<u8>) {
            for (n, v) in self.headers.iter().filter(|(n, _)| n != "Content-Length") {
                out.extend_from_slice(n.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(v.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes());
            out.extend_from_slice(&self.body);
        }

        /// Validate the headers every message needs (RFC 3261 §8.1.1): present, single, parseable.
        fn check_mandatory(&self) -> Result<(), SipError> {
            for name in ["From", "To", "Call-ID", "CSeq", "Max-Forwards", "Content-Type"] {
                let mut values = self.header_all(name);
                values.dedup();
                if values.len() > 1 {
                    let name = match name {
                        "From" => "From",
                        "To" => "To",
                        "Call-ID" => "Call-ID",
                        "CSeq" => "CSeq",
                        "Max-Forwards" => "Max-Forwards",
                        _ => "Content-Type",
                    };
                    return Err(SipError::DuplicateHeader { name });
                }
            }
            let vias = self.header_all("Via");
            if vias.is_empty() {
                return Err(SipError::MissingHeader { name: "Via" });
            }
            self.vias()?;
            for v in self.header_all("Contact") {
                if v != "*" {
                    check_no_empty_params("Contact", v)?;
                }
            }
            self.contacts()?;
            self.from()?;
            self.to()?;
            self.call_id()?;
            self.cseq()?;
            self.max_forwards()?;
            Ok(())
        }
    };
}

impl Request {
    /// A request with no headers and an empty body.
    pub fn new(method: Method, uri: Uri) -> Self {
        Self { method, uri, headers: Vec::new(), body: Vec::new() }
    }

    pub fn method(&self) -> &Method {
        &self.method
    }

    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    header_accessors!();

    /// The printed request, Content-Length set to the body length.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("{} {} SIP/2.0\r\n", self.method, print_uri(&self.uri)).into_bytes();
        self.write_headers(&mut out);
        out
    }
}

impl Response {
    /// A response with no headers and an empty body.
    pub fn new(status: u16, reason: impl Into<String>) -> Self {
        Self { status, reason: reason.into(), headers: Vec::new(), body: Vec::new() }
    }

    /// RFC 3261 §8.2.6.2: copy Via(s), From, To, Call-ID and CSeq from the request; add a To tag
    /// when `to_tag` is given and the request's To has none. Not Record-Route (the dialog layer
    /// copies it into 2xx/18x as §12.1.1 requires).
    pub fn for_request(req: &Request, status: u16, reason: &str, to_tag: Option<&str>) -> Self {
        let mut resp = Self::new(status, reason);
        for (n, v) in &req.headers {
            match n.as_str() {
                "Via" | "From" | "Call-ID" | "CSeq" => resp.headers.push((n.clone(), v.clone())),
                "To" => {
                    let mut v = v.clone();
                    if let Some(tag) = to_tag {
                        let has_tag = req.to().map(|t| t.tag.is_some()).unwrap_or(false);
                        if !has_tag {
                            let _ = write!(v, ";tag={tag}");
                        }
                    }
                    resp.headers.push((n.clone(), v));
                }
                _ => {}
            }
        }
        resp
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }

    header_accessors!();

    /// The printed response, Content-Length set to the body length.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("SIP/2.0 {} {}\r\n", self.status, self.reason).into_bytes();
        self.write_headers(&mut out);
        out
    }
}

/// Body length rule: UDP (`stream == false`) or stream framing.
impl SipMessage {
    /// Parse one UDP datagram (RFC 3261 §18.3): a Content-Length larger than the bytes left is an
    /// error (400 for a request), extra bytes past it are dropped, and no Content-Length means
    /// the body is the rest of the datagram.
    pub fn parse_datagram(bytes: &[u8]) -> Result<SipMessage, SipError> {
        if bytes.len() > super::MAX_MESSAGE_SIZE {
            return Err(SipError::TooLarge { limit: super::MAX_MESSAGE_SIZE });
        }
        match parse_head(bytes) {
            // The datagram bounds the message (§18.3): one that ends after a header line without
            // the empty line (RFC 4475 §3.1.2.15 `baddn` as archived) is read as having no body.
            Err(SipError::Incomplete) if bytes.ends_with(b"\n") => {
                let mut terminated = bytes.to_vec();
                terminated.extend_from_slice(b"\r\n");
                let head = parse_head(&terminated)?;
                Self::from_datagram_head(head, &terminated)
            }
            head => Self::from_datagram_head(head?, bytes),
        }
    }

    fn from_datagram_head(head: Head, bytes: &[u8]) -> Result<SipMessage, SipError> {
        let rest = bytes.get(head.body_start..).unwrap_or_default();
        let body = match head.content_length {
            Some(n) if n > rest.len() => return Err(SipError::BodyTooShort { declared: n, available: rest.len() }),
            Some(n) => &rest[..n],
            None => rest,
        };
        Self::from_head(head, body.to_vec())
    }

    /// Parse a complete message whose body has already been framed.
    pub(crate) fn from_head(head: Head, body: Vec<u8>) -> Result<SipMessage, SipError> {
        let line = head.start_line.as_str();
        let bad = |detail: &str| SipError::StartLine { detail: format!("{detail}: {line:?}") };
        let msg = if let Some(rest) = line.strip_prefix("SIP/") {
            let mut parts = rest.splitn(3, ' ');
            let version = parts.next().unwrap_or("");
            if version != "2.0" {
                return Err(version_error(&format!("SIP/{version}"), line));
            }
            let code = parts.next().unwrap_or("");
            if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("status code is not three digits"));
            }
            let status: u16 = code.parse().map_err(|_| bad("status code"))?;
            if !(100..=699).contains(&status) {
                return Err(bad("status code out of range"));
            }
            let reason = parts.next().unwrap_or("").to_string();
            SipMessage::Response(Response { status, reason, headers: head.headers, body })
        } else {
            // Request-Line = Method SP Request-URI SP SIP-Version: exactly single spaces.
            let parts: Vec<&str> = line.split(' ').collect();
            if parts.len() != 3 {
                return Err(bad("Request-Line is not `Method SP Request-URI SP SIP-Version`"));
            }
            let (method, uri, version) = (parts[0], parts[1], parts[2]);
            if version != "SIP/2.0" {
                return Err(version_error(version, line));
            }
            if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)) {
                return Err(bad("method is not a token"));
            }
            if uri.starts_with('<') || uri.ends_with('>') {
                return Err(bad("Request-URI enclosed in <>"));
            }
            let method: Method = method.parse().map_err(|_| SipError::UnknownMethod { method: method.to_string() })?;
            if has_uri_headers(uri) {
                // RFC 3261 §19.1.1 (table 1): headers are not allowed in a Request-URI; RFC 4475
                // §3.1.2.11 `escruri` lets us answer 400.
                return Err(bad("headers in a SIP Request-URI"));
            }
            let uri = rsipstack::sip::parse_uri(uri).map_err(|e| bad(&e.to_string()))?;
            let _ = Version::V2;
            SipMessage::Request(Request { method, uri, headers: head.headers, body })
        };
        match &msg {
            SipMessage::Request(r) => {
                r.check_mandatory()?;
                if r.cseq()?.method != r.method {
                    return Err(header_err("CSeq", "method differs from the Request-Line"));
                }
            }
            SipMessage::Response(r) => r.check_mandatory()?,
        }
        Ok(msg)
    }

    pub fn is_request(&self) -> bool {
        matches!(self, SipMessage::Request(_))
    }

    /// The request method, or `None` for a response.
    pub fn method(&self) -> Option<&Method> {
        match self {
            SipMessage::Request(r) => Some(r.method()),
            SipMessage::Response(_) => None,
        }
    }

    /// The response status, or `None` for a request.
    pub fn status(&self) -> Option<u16> {
        match self {
            SipMessage::Request(_) => None,
            SipMessage::Response(r) => Some(r.status()),
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        match self {
            SipMessage::Request(r) => r.header(name),
            SipMessage::Response(r) => r.header(name),
        }
    }

    pub fn header_all(&self, name: &str) -> Vec<&str> {
        match self {
            SipMessage::Request(r) => r.header_all(name),
            SipMessage::Response(r) => r.header_all(name),
        }
    }

    pub fn via_top(&self) -> Result<ViaHeader, SipError> {
        match self {
            SipMessage::Request(r) => r.via_top(),
            SipMessage::Response(r) => r.via_top(),
        }
    }

    pub fn call_id(&self) -> Result<&str, SipError> {
        match self {
            SipMessage::Request(r) => r.call_id(),
            SipMessage::Response(r) => r.call_id(),
        }
    }

    pub fn cseq(&self) -> Result<CSeq, SipError> {
        match self {
            SipMessage::Request(r) => r.cseq(),
            SipMessage::Response(r) => r.cseq(),
        }
    }

    pub fn body(&self) -> &[u8] {
        match self {
            SipMessage::Request(r) => r.body(),
            SipMessage::Response(r) => r.body(),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            SipMessage::Request(r) => r.to_bytes(),
            SipMessage::Response(r) => r.to_bytes(),
        }
    }
}
