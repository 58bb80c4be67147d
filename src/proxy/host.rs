//! One Host, checked, before routing: routing and forwarding then use the
//! same value.
//!
//! - An absolute-form request (`GET http://a.example/ HTTP/1.1`) is routed
//!   by its authority, which replaces `Host` (RFC 9112 §3.2.2).
//! - Two `Host` headers, no `Host` on HTTP/1.1, or a `Host` that is not
//!   `host[:port]` (a path, userinfo, whitespace, other characters) is 400.
//! - On HTTP/2 a `host` header that disagrees with `:authority` is 400.
//!
//! Costs one pass over a short value; allocates only to replace `Host`.

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::Version;

/// Why a request's host is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    #[error("more than one Host header")]
    Duplicate,
    #[error("HTTP/1.1 request without Host")]
    Missing,
    #[error("invalid Host")]
    Invalid,
    #[error(":authority and host disagree")]
    Mismatch,
}

/// Checks the request's host and makes `Host` agree with an absolute-form
/// request's authority.
pub fn check(parts: &mut Parts) -> Result<(), HostError> {
    let mut all = parts.headers.get_all(header::HOST).iter();
    let host = all.next();
    if all.next().is_some() {
        return Err(HostError::Duplicate);
    }
    if let Some(h) = host {
        if !valid(h.as_bytes()) {
            return Err(HostError::Invalid);
        }
    }
    let Some(authority) = parts.uri.authority() else {
        return match (host, parts.version) {
            (None, Version::HTTP_11) => Err(HostError::Missing),
            _ => Ok(()),
        };
    };
    let authority = authority.as_str();
    if !valid(authority.as_bytes()) {
        return Err(HostError::Invalid);
    }
    let agrees = host.is_some_and(|h| h.as_bytes().eq_ignore_ascii_case(authority.as_bytes()));
    if agrees {
        return Ok(());
    }
    if parts.version == Version::HTTP_2 && host.is_some() {
        return Err(HostError::Mismatch);
    }
    // Absolute form (or h2 without `host`): the authority is the host.
    let value = HeaderValue::from_str(authority).map_err(|_| HostError::Invalid)?;
    parts.headers.insert(header::HOST, value);
    Ok(())
}

/// `host[:port]`: a reg-name or IPv4 address (unreserved, sub-delims,
/// percent escapes), or an IPv6 literal in brackets; no userinfo, path,
/// query or whitespace.
fn valid(value: &[u8]) -> bool {
    let (name, port) = match value.first() {
        Some(b'[') => match value.iter().position(|&b| b == b']') {
            Some(end) => {
                let inner = &value[1..end];
                let ok = inner
                    .iter()
                    .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
                if !ok {
                    return false;
                }
                (&value[..0], &value[end + 1..])
            }
            None => return false,
        },
        _ => match value.iter().position(|&b| b == b':') {
            Some(colon) => (&value[..colon], &value[colon..]),
            None => (value, &value[..0]),
        },
    };
    let name_ok = name.iter().all(|&b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b'%'
            )
    });
    let port_ok = match port.split_first() {
        None => true,
        Some((b':', digits)) => digits.len() <= 5 && digits.iter().all(u8::is_ascii_digit),
        Some(_) => false,
    };
    name_ok && port_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_hosts() {
        for h in [
            "a.example",
            "a.example:8080",
            "127.0.0.1:80",
            "[::1]:8080",
            "[::1]",
            "x_y",
        ] {
            assert!(valid(h.as_bytes()), "{h}");
        }
        for h in [
            "a/b",
            "a.example/x",
            "u@a",
            "a b",
            "a:b",
            "[::1",
            "[zz]",
            "a\\b",
            "a?b",
        ] {
            assert!(!valid(h.as_bytes()), "{h}");
        }
    }
}
