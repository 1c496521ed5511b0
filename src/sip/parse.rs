//! Head tokeniser: start line, header lines, folding, compact names, list splitting and
//! Content-Length (RFC 3261 §7.3, §7.3.1, §7.3.3, §18.3).

use super::SipError;

/// A header as read: canonical name and one (list-split) value.
pub(crate) type RawHeader = (String, String);

/// The head of a message: start line, headers, and where the body starts.
#[derive(Debug)]
pub(crate) struct Head {
    pub start_line: String,
    pub headers: Vec<RawHeader>,
    /// Byte offset of the body (just after the empty line).
    pub body_start: usize,
    /// The Content-Length value, if one was present.
    pub content_length: Option<usize>,
}

/// Whether the first line of `bytes` reads as a Status-Line (`SIP/...`), i.e. the message is a
/// response and a parse error means "drop" rather than "answer 400".
pub fn looks_like_response(bytes: &[u8]) -> bool {
    let start = bytes.iter().position(|b| !matches!(b, b'\r' | b'\n')).unwrap_or(bytes.len());
    bytes[start..].starts_with(b"SIP/")
}

/// Offset just past the empty line ending the head, accepting CRLF or bare LF line ends.
pub(crate) fn find_head_end(bytes: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\n' {
            // Line ended at i; is the next line empty?
            let rest = &bytes[i + 1..];
            if rest.starts_with(b"\r\n") {
                return Some(i + 3);
            }
            if rest.starts_with(b"\n") {
                return Some(i + 2);
            }
        }
        i += 1;
    }
    None
}

/// The full header name for a compact form (RFC 3261 §7.3.3 and later RFCs' registrations) or a
/// case variant of a known name; other names are kept as written.
pub(crate) fn canonical_name(name: &str) -> std::borrow::Cow<'_, str> {
    const COMPACT: &[(&str, &str)] = &[
        ("a", "Accept-Contact"),
        ("b", "Referred-By"),
        ("c", "Content-Type"),
        ("d", "Request-Disposition"),
        ("e", "Content-Encoding"),
        ("f", "From"),
        ("i", "Call-ID"),
        ("j", "Reject-Contact"),
        ("k", "Supported"),
        ("l", "Content-Length"),
        ("m", "Contact"),
        ("o", "Event"),
        ("r", "Refer-To"),
        ("s", "Subject"),
        ("t", "To"),
        ("u", "Allow-Events"),
        ("v", "Via"),
        ("x", "Session-Expires"),
        ("y", "Identity"),
    ];
    const KNOWN: &[&str] = &[
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Route",
        "Record-Route",
        "Max-Forwards",
        "Content-Type",
        "Content-Length",
        "Content-Encoding",
        "Content-Disposition",
        "Supported",
        "Require",
        "Allow",
        "Subject",
        "Event",
        "Expires",
        "User-Agent",
        "Server",
    ];
    if name.len() == 1 {
        if let Some((_, full)) = COMPACT.iter().find(|(c, _)| c.eq_ignore_ascii_case(name)) {
            return std::borrow::Cow::Borrowed(full);
        }
    }
    // Borrowed either way: header lookups call this for every access, so it must not allocate.
    std::borrow::Cow::Borrowed(KNOWN.iter().find(|k| k.eq_ignore_ascii_case(name)).copied().unwrap_or(name))
}

/// Headers whose value is a comma-separated list that we split into one entry per element
/// (RFC 3261 §7.3.1). Other headers keep commas (e.g. Date, auth headers).
fn is_list_header(canonical: &str) -> bool {
    matches!(canonical, "Via" | "Contact" | "Route" | "Record-Route")
}

/// Split at commas outside quotes and `<...>`.
pub(crate) fn split_list(value: &str) -> Vec<String> {
    if !value.contains(',') {
        return vec![value.trim().to_string()];
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut escaped = false;
    let mut depth = 0usize;
    for ch in value.chars() {
        if in_quotes {
            cur.push(ch);
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                in_quotes = false;
            }
            continue;
        }
        match ch {
            '"' => {
                in_quotes = true;
                cur.push(ch);
            }
            '<' => {
                depth += 1;
                cur.push(ch);
            }
            '>' => {
                depth = depth.saturating_sub(1);
                cur.push(ch);
            }
            ',' if depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
            }
            _ => cur.push(ch),
        }
    }
    out.push(cur.trim().to_string());
    out
}

/// RFC 3261 §25.1 `token` characters.
pub(crate) fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// A non-empty RFC 3261 §25.1 `token`.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// Read the head of `bytes` (which must contain the empty line; see [`find_head_end`]).
pub(crate) fn parse_head(bytes: &[u8]) -> Result<Head, SipError> {
    // RFC 3261 §7.5: ignore CRLFs before the start line.
    let lead = bytes.iter().position(|b| !matches!(b, b'\r' | b'\n')).unwrap_or(bytes.len());
    let body_start = lead + find_head_end(&bytes[lead..]).ok_or(SipError::Incomplete)?;
    let head = &bytes[lead..body_start];
    let head = std::str::from_utf8(head).map_err(|_| SipError::HeaderLine {
        line: String::from_utf8_lossy(head).lines().next().unwrap_or("").to_string(),
    })?;
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start_line = lines.next().unwrap_or("").to_string();

    // Unfold (§7.3.1): a line starting with SP/HT continues the previous one.
    let mut logical: Vec<String> = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            match logical.last_mut() {
                Some(prev) => {
                    prev.push(' ');
                    prev.push_str(line.trim());
                }
                None => return Err(SipError::HeaderLine { line: line.to_string() }),
            }
        } else {
            logical.push(line.to_string());
        }
    }

    let mut headers = Vec::with_capacity(logical.len());
    let mut content_length: Option<usize> = None;
    for line in logical {
        let Some((name, value)) = line.split_once(':') else {
            return Err(SipError::HeaderLine { line });
        };
        let name = name.trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_char) {
            return Err(SipError::HeaderLine { line: line.clone() });
        }
        let name = canonical_name(name).into_owned();
        let value = value.trim_matches([' ', '\t']);
        if name == "Content-Length" {
            let n = parse_content_length(value)?;
            match content_length {
                Some(c) if c != n => return Err(SipError::DuplicateHeader { name: "Content-Length" }),
                // Equal repeats are kept once.
                Some(_) => {}
                None => {
                    content_length = Some(n);
                    headers.push((name, n.to_string()));
                }
            }
        } else if is_list_header(&name) {
            for v in split_list(value) {
                headers.push((name.clone(), v));
            }
        } else {
            headers.push((name, value.to_string()));
        }
    }
    Ok(Head { start_line, headers, body_start, content_length })
}

fn parse_content_length(value: &str) -> Result<usize, SipError> {
    let invalid = || SipError::InvalidContentLength { value: value.to_string() };
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    value.parse::<usize>().map_err(|_| invalid())
}
