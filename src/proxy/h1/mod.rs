//! veer's own HTTP/1.1 framing (issue 20, in progress): the request
//! head parsed once with `httparse`, the body's framing decided from it
//! (RFC 9112 §6), chunked bodies decoded incrementally ([`chunked`]), and
//! upstream response heads ([`response`]). It is at least as strict as hyper's server: a
//! differential test (`tests/it/h1_differential.rs`) feeds generated
//! heads and bodies to both (requests to hyper's server, responses to its
//! client) and fails on any message this accepts and hyper rejects, or
//! frames differently. Not yet on the hot path.
//!
//! Stricter than hyper, like nginx: `Content-Length` together with
//! `Transfer-Encoding` is refused (hyper lets chunked win); a
//! `Transfer-Encoding` other than exactly `chunked` is refused; a
//! `Content-Length` must be one run of digits (no lists, no sign), the
//! same in every copy of the header.

pub mod chunked;
pub mod response;

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body (no framing header, or `Content-Length: 0`).
    Empty,
    Length(u64),
    Chunked,
}

/// A parsed request head: offsets into the buffer it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// Bytes of the head, blank line included: the body starts here.
    pub len: usize,
    pub method: String,
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub framing: BodyFraming,
    /// The connection may carry another request after this one.
    pub keep_alive: bool,
}

/// Why a head was refused (answered with 400, or 431 for `TooLarge`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    #[error("request head larger than {0} bytes")]
    TooLarge(usize),
    #[error("malformed request head: {0}")]
    Malformed(String),
    #[error("bad framing: {0}")]
    Framing(&'static str),
}

/// At most this many header lines (hyper's default too).
pub const MAX_HEADERS: usize = 100;

/// Parses the request head at the start of `buf`: `Ok(None)` when more
/// bytes are needed (and `buf` is still under `max` bytes).
pub fn parse_head(buf: &[u8], max: usize) -> Result<Option<RequestHead>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let Some(len) = complete(req.parse(buf), buf.len(), max)? else {
        return Ok(None);
    };
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(HeadError::Malformed("incomplete request line".into()));
    };
    let found = Found::scan(req.headers)?;
    let chunked = match found.coding {
        None => false,
        Some(_) if minor == 0 => {
            return Err(HeadError::Framing(
                "transfer-encoding in an HTTP/1.0 request",
            ))
        }
        Some(coding) if trimmed(coding).eq_ignore_ascii_case(b"chunked") => true,
        Some(_) => return Err(HeadError::Framing("transfer-encoding other than chunked")),
    };
    let framing = match (found.length, chunked) {
        (Some(_), true) => return Err(HeadError::Framing("content-length with transfer-encoding")),
        (None, true) => BodyFraming::Chunked,
        (Some(0), false) | (None, false) => BodyFraming::Empty,
        (Some(n), false) => BodyFraming::Length(n),
    };
    Ok(Some(RequestHead {
        len,
        method: method.to_string(),
        target: target.to_string(),
        minor,
        framing,
        keep_alive: found.persistent(minor),
    }))
}

/// The head's length once httparse has all of it; `None` while more
/// bytes may complete it (under `max`).
fn complete(
    parsed: httparse::Result<usize>,
    have: usize,
    max: usize,
) -> Result<Option<usize>, HeadError> {
    match parsed {
        Ok(httparse::Status::Complete(len)) if len > max => Err(HeadError::TooLarge(max)),
        Ok(httparse::Status::Complete(len)) => Ok(Some(len)),
        Ok(httparse::Status::Partial) if have > max => Err(HeadError::TooLarge(max)),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(HeadError::Malformed(e.to_string())),
    }
}

/// What a head's header fields say about framing and persistence.
struct Found<'b> {
    length: Option<u64>,
    /// The `Transfer-Encoding` value (one header line at most).
    coding: Option<&'b [u8]>,
    close: bool,
    keep_alive: bool,
}

impl<'b> Found<'b> {
    fn scan(headers: &[httparse::Header<'b>]) -> Result<Found<'b>, HeadError> {
        let mut found = Found {
            length: None,
            coding: None,
            close: false,
            keep_alive: false,
        };
        for header in headers {
            let name = header.name;
            if name.eq_ignore_ascii_case("content-length") {
                let value = content_length(header.value)?;
                if found.length.is_some_and(|l| l != value) {
                    return Err(HeadError::Framing("differing content-length values"));
                }
                found.length = Some(value);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                if found.coding.is_some() {
                    return Err(HeadError::Framing("more than one transfer-encoding header"));
                }
                found.coding = Some(header.value);
            } else if name.eq_ignore_ascii_case("connection") {
                for token in header.value.split(|b| *b == b',') {
                    let token = trimmed(token);
                    found.close |= token.eq_ignore_ascii_case(b"close");
                    found.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
                }
            }
        }
        Ok(found)
    }

    /// The connection stays open after this message (HTTP/1.1 unless
    /// `close`; HTTP/1.0 only with `keep-alive`).
    fn persistent(&self, minor: u8) -> bool {
        match minor {
            1 => !self.close,
            _ => self.keep_alive && !self.close,
        }
    }
}

/// A `Content-Length` value: one run of ASCII digits, optional
/// surrounding whitespace, no overflow.
fn content_length(value: &[u8]) -> Result<u64, HeadError> {
    let digits = trimmed(value);
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(HeadError::Framing("invalid content-length"));
    }
    digits
        .iter()
        .try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .ok_or(HeadError::Framing("invalid content-length"))
}

fn trimmed(value: &[u8]) -> &[u8] {
    let start = value.iter().position(|b| !matches!(b, b' ' | b'\t'));
    let end = value.iter().rposition(|b| !matches!(b, b' ' | b'\t'));
    match (start, end) {
        (Some(s), Some(e)) => &value[s..=e],
        _ => &[],
    }
}

#[cfg(test)]
mod tests;
