//! Upstream response heads (RFC 9112 §6.3): the status, how the body is
//! delimited given the request it answers, and whether the upstream
//! connection can be reused. Refuses what hyper's client refuses, and
//! `Content-Length` together with `Transfer-Encoding` (hyper lets chunked
//! win; a proxy that forwards the response must not guess).

use super::{complete, trimmed, Found, HeadError, MAX_HEADERS};

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseBody {
    /// No body, whatever the headers say (HEAD, 1xx, 204, 304).
    None,
    Length(u64),
    Chunked,
    /// Until the upstream closes the connection.
    UntilClose,
    /// 101 to an upgrade, 2xx to CONNECT: the bytes after the head are a
    /// tunnel.
    Tunnel,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// Bytes of the head, blank line included.
    pub len: usize,
    pub status: u16,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub body: ResponseBody,
    /// The upstream connection can carry another request after this
    /// response's body.
    pub reusable: bool,
}

/// Parses the response head at the start of `buf`, answering a request
/// with `method` (`upgrade`: the request asked to switch protocols).
/// `Ok(None)`: more bytes needed. Interim (1xx other than 101) heads are
/// returned like any other; the caller reads the next head after them.
pub fn parse_response(
    buf: &[u8],
    max: usize,
    method: &str,
    upgrade: bool,
) -> Result<Option<ResponseHead>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let Some(len) = complete(resp.parse(buf), buf.len(), max)? else {
        return Ok(None);
    };
    let (Some(status), Some(minor)) = (resp.code, resp.version) else {
        return Err(HeadError::Malformed("incomplete status line".into()));
    };
    let found = Found::scan(resp.headers)?;
    let (length, coding) = (found.length, found.coding);
    let bodiless =
        method == "HEAD" || (100..200).contains(&status) || status == 204 || status == 304;
    let tunnel =
        (status == 101 && upgrade) || (method == "CONNECT" && (200..300).contains(&status));
    if status == 101 && !upgrade {
        return Err(HeadError::Framing("101 without an upgrade request"));
    }
    let chunked = match coding {
        None => false,
        Some(_) if minor == 0 => {
            return Err(HeadError::Framing(
                "transfer-encoding in an HTTP/1.0 response",
            ))
        }
        Some(_) if length.is_some() => {
            return Err(HeadError::Framing("content-length with transfer-encoding"))
        }
        Some(value) => {
            let last = value.rsplit(|b| *b == b',').next().unwrap_or_default();
            trimmed(last).eq_ignore_ascii_case(b"chunked")
        }
    };
    let body = match (tunnel, bodiless, chunked, coding.is_some(), length) {
        (true, ..) => ResponseBody::Tunnel,
        (_, true, ..) => ResponseBody::None,
        (_, _, true, ..) => ResponseBody::Chunked,
        // A coding that is not chunked: the body runs to the close.
        (_, _, false, true, _) => ResponseBody::UntilClose,
        (.., Some(n)) => ResponseBody::Length(n),
        (.., None) => ResponseBody::UntilClose,
    };
    let reusable =
        found.persistent(minor) && !matches!(body, ResponseBody::UntilClose | ResponseBody::Tunnel);
    Ok(Some(ResponseHead {
        len,
        status,
        minor,
        body,
        reusable,
    }))
}
