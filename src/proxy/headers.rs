//! Header rewriting between client and upstream: hop-by-hop removal both
//! ways (RFC 9110 §7.6.1), forwarding headers, request ids.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");

/// True when the request asks for a protocol upgrade (WebSocket and the
/// like): an `Upgrade` header and `upgrade` among the `Connection` tokens.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && connection_tokens(headers).any(|t| t.eq_ignore_ascii_case("upgrade"))
}

/// Whether every protocol the request's `Upgrade` offers is in `allowed`
/// (lowercase names; a version suffix such as `/13` is ignored). `h2c`
/// never is: veer speaks h2c itself and would hand the upstream a
/// connection it cannot see into.
pub fn upgrade_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let mut offered = headers
        .get_all(header::UPGRADE)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("").split(','))
        .map(|t| t.trim())
        .peekable();
    offered.peek().is_some()
        && offered.all(|t| {
            let name = t.split('/').next().unwrap_or(t);
            !name.eq_ignore_ascii_case("h2c")
                && allowed.iter().any(|a| name.eq_ignore_ascii_case(a))
        })
}

fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Removes hop-by-hop headers: `Connection` and every header it names,
/// `Keep-Alive`, `TE` (but `te: trailers`, which gRPC needs end to end),
/// `Trailer`, `Transfer-Encoding`, `Upgrade` (unless `upgrade`), and every
/// `Proxy-*` header. `Host` is never removed, whatever `Connection` says.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, upgrade: bool) {
    // One pass over the names (cheap comparisons, no hashing) finds which
    // are present; only those are removed. Most requests carry none, most
    // upstream responses only `Connection: keep-alive`.
    let found = headers
        .keys()
        .fold(0, |found, name| found | hop_by_hop(name));
    if found == 0 && !upgrade {
        return;
    }
    if found & CONNECTION != 0 {
        // `keep-alive` goes below anyway; other names are rare.
        let named: Vec<HeaderName> = connection_tokens(headers)
            .filter(|t| !t.eq_ignore_ascii_case("keep-alive"))
            .filter_map(|t| HeaderName::from_bytes(t.as_bytes()).ok())
            .filter(|n| *n != header::HOST && !(upgrade && *n == header::UPGRADE))
            .collect();
        for name in named {
            headers.remove(name);
        }
        headers.remove(header::CONNECTION);
    }
    if found & KEEP_ALIVE_BIT != 0 {
        headers.remove(&KEEP_ALIVE);
    }
    if found & TRAILER != 0 {
        headers.remove(header::TRAILER);
    }
    if found & TRANSFER_ENCODING != 0 {
        // The message was framed by its transfer coding, which wins over a
        // `Content-Length` beside it (RFC 9112 §6.3); that length no longer
        // describes the body, and sent on it would truncate or corrupt it.
        headers.remove(header::TRANSFER_ENCODING);
        headers.remove(header::CONTENT_LENGTH);
    }
    if found & UPGRADE != 0 && !upgrade {
        headers.remove(header::UPGRADE);
    }
    if found & TE != 0 {
        if let Some(te) = headers.get(header::TE) {
            if !te.as_bytes().eq_ignore_ascii_case(b"trailers") {
                headers.remove(header::TE);
            }
        }
    }
    if found & PROXY != 0 {
        let proxied: Vec<HeaderName> = headers
            .keys()
            .filter(|k| k.as_str().starts_with("proxy-"))
            .cloned()
            .collect();
        for name in proxied {
            headers.remove(name);
        }
    }
    if upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

const CONNECTION: u8 = 1;
const KEEP_ALIVE_BIT: u8 = 2;
const TRAILER: u8 = 4;
const TRANSFER_ENCODING: u8 = 8;
const UPGRADE: u8 = 16;
const TE: u8 = 32;
const PROXY: u8 = 64;

/// Which hop-by-hop header `name` is (a bit above; 0 for none).
/// `Connection` may name others. Names in a `HeaderMap` are lowercase:
/// the first byte rules out most.
fn hop_by_hop(name: &HeaderName) -> u8 {
    let s = name.as_str();
    match s.as_bytes().first() {
        Some(b'c') if *name == header::CONNECTION => CONNECTION,
        Some(b't') if *name == header::TE => TE,
        Some(b't') if *name == header::TRAILER => TRAILER,
        Some(b't') if *name == header::TRANSFER_ENCODING => TRANSFER_ENCODING,
        Some(b'u') if *name == header::UPGRADE => UPGRADE,
        Some(b'k') if *name == KEEP_ALIVE => KEEP_ALIVE_BIT,
        Some(b'p') if s.starts_with("proxy-") => PROXY,
        _ => 0,
    }
}

/// The client address as an `X-Forwarded-For` entry; made once per
/// connection, not per request.
pub fn client_address(client: IpAddr) -> HeaderValue {
    HeaderValue::try_from(client.to_string()).expect("an IP address is a valid header value")
}

/// Adds the forwarding headers of a proxied request; `client` comes from
/// [`client_address`].
pub fn add_forwarding(
    headers: &mut HeaderMap,
    client: &HeaderValue,
    https: bool,
    host: Option<&HeaderValue>,
) {
    // Room for the (up to) four names below at once: a map parsed from a
    // small request would otherwise grow and rehash more than once.
    headers.reserve(4);
    let prior = headers
        .get(&X_FORWARDED_FOR)
        .and_then(|v| v.to_str().ok())
        .filter(|prior| !prior.trim().is_empty());
    let xff = match (prior, client.to_str()) {
        (Some(prior), Ok(ip)) => HeaderValue::try_from(format!("{prior}, {ip}")).ok(),
        _ => Some(client.clone()),
    };
    if let Some(v) = xff {
        headers.insert(X_FORWARDED_FOR.clone(), v);
    }
    let proto = if https { "https" } else { "http" };
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
    if let Some(host) = host {
        headers.insert(X_FORWARDED_HOST.clone(), host.clone());
    }
    if !headers.contains_key(&X_REQUEST_ID) {
        headers.insert(X_REQUEST_ID.clone(), request_id());
    }
}

/// A random 128-bit request id, 32 hex digits.
fn request_id() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n: u128 = rand::random();
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = HEX[((n >> (4 * (31 - i))) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&out).expect("hex is a valid header value")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn strips_connection_named_and_fixed_hop_by_hop() {
        let mut h = map(&[
            ("connection", "keep-alive, x-secret, Host"),
            ("x-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "gzip"),
            ("trailer", "x"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "basic"),
            ("proxy-foo", "1"),
            ("host", "example.com"),
            ("x-kept", "1"),
        ]);
        strip_hop_by_hop(&mut h, false);
        let mut left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, vec!["host", "x-kept"]);
    }

    #[test]
    fn keeps_upgrade_and_te_trailers() {
        let mut h = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
        ]);
        assert!(is_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
        assert_eq!(h["te"], "trailers");
    }

    #[test]
    fn forwarding_headers() {
        let mut h = map(&[("x-forwarded-for", "10.1.1.1"), ("x-request-id", "abc")]);
        add_forwarding(
            &mut h,
            &client_address("127.0.0.1".parse().unwrap()),
            false,
            Some(&"ex.com".parse().unwrap()),
        );
        assert_eq!(h["x-forwarded-for"], "10.1.1.1, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "ex.com");
        assert_eq!(h["x-request-id"], "abc");
        let mut h = HeaderMap::new();
        add_forwarding(&mut h, &client_address("::1".parse().unwrap()), true, None);
        assert_eq!(h["x-forwarded-for"], "::1");
        assert_eq!(h["x-request-id"].len(), 32);
    }
}
