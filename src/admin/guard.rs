//! What the admin listener refuses before any token is looked at, so a
//! browser cannot be used against it (cross-site requests, DNS rebinding):
//!
//! - a `Host` that is not an IP literal, `localhost` or one of `[admin]
//!   names` (a rebound attacker's domain): 421;
//! - on `/api` and `/metrics`, a browser `Origin` other than the admin
//!   listener's own (`http(s)://<Host>`), or `Sec-Fetch-Site` other than
//!   `same-origin`/`none`: 403;
//! - a mutating `/api` call (`POST`, `PUT`, `DELETE`, `PATCH`) without
//!   `Content-Type: application/json` (which a plain HTML form or a
//!   "simple" cross-site fetch cannot send): 415.
//!
//! The dashboard (same origin, JSON calls) and the CLI pass all three.

use http::{header, HeaderMap, Method, StatusCode};

const UNKNOWN_HOST: &str =
    "unknown Host: use an IP address or localhost, or add the name to [admin] names";

/// A refusal: status and reason.
pub type Refused = (StatusCode, &'static str);

/// Checks one request to the admin listener; `names` are the extra host
/// names it answers to (lowercase).
pub fn check(
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    names: &[String],
) -> Result<(), Refused> {
    let host = match headers.get(header::HOST).map(|h| h.to_str()) {
        Some(Ok(host)) => Some(host),
        Some(Err(_)) => return Err((StatusCode::MISDIRECTED_REQUEST, UNKNOWN_HOST)),
        None => None,
    };
    if let Some(host) = host {
        if !known_host(host, names) {
            return Err((StatusCode::MISDIRECTED_REQUEST, UNKNOWN_HOST));
        }
    }
    let guarded = path == "/metrics" || path == "/api" || path.starts_with("/api/");
    if !guarded {
        return Ok(());
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let own = host.is_some_and(|host| {
            let origin = origin.as_bytes();
            [&b"http://"[..], b"https://"].iter().any(|scheme| {
                origin.len() == scheme.len() + host.len()
                    && origin.starts_with(scheme)
                    && origin[scheme.len()..].eq_ignore_ascii_case(host.as_bytes())
            })
        });
        if !own {
            return Err((StatusCode::FORBIDDEN, "cross-origin request refused"));
        }
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return Err((StatusCode::FORBIDDEN, "cross-site request refused"));
        }
    }
    let mutating = matches!(
        *method,
        Method::POST | Method::PUT | Method::DELETE | Method::PATCH
    );
    if mutating && path != "/metrics" && !json(headers) {
        let why = "mutating calls need Content-Type: application/json";
        return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, why));
    }
    Ok(())
}

fn json(headers: &HeaderMap) -> bool {
    let Some(Ok(value)) = headers.get(header::CONTENT_TYPE).map(|v| v.to_str()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// An IP literal, `localhost`, or a configured name; any port.
fn known_host(host: &str, names: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => {
            return rest
                .split(']')
                .next()
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
        }
        None => host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                host
            }
        }),
    };
    name.parse::<std::net::Ipv4Addr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || names.iter().any(|n| n.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn hosts() {
        let names = ["veer.internal".to_string()];
        for ok in [
            "127.0.0.1:9901",
            "localhost:9901",
            "[::1]:9901",
            "10.0.0.5",
            "VEER.internal:1",
        ] {
            assert!(known_host(ok, &names), "{ok}");
        }
        for bad in [
            "evil.example:9901",
            "evil.example",
            "127.0.0.1.evil:80",
            "[zz]:1",
        ] {
            assert!(!known_host(bad, &names), "{bad}");
        }
    }

    #[test]
    fn origins_sites_and_content_types() {
        let post = |pairs: &[(&'static str, &'static str)]| {
            check(&Method::POST, "/api/v1/reload", &headers(pairs), &[]).map_err(|e| e.0.as_u16())
        };
        let host = ("host", "127.0.0.1:9901");
        let json = ("content-type", "application/json; charset=utf-8");
        assert_eq!(post(&[host, json]), Ok(()));
        assert_eq!(
            post(&[host, json, ("origin", "http://127.0.0.1:9901")]),
            Ok(())
        );
        assert_eq!(
            post(&[host, json, ("origin", "http://evil.example")]),
            Err(403)
        );
        assert_eq!(post(&[host, json, ("origin", "null")]), Err(403));
        assert_eq!(
            post(&[host, json, ("sec-fetch-site", "cross-site")]),
            Err(403)
        );
        assert_eq!(post(&[host, ("content-type", "text/plain")]), Err(415));
        assert_eq!(post(&[host]), Err(415));
        assert_eq!(post(&[("host", "evil.example:9901"), json]), Err(421));
        // The dashboard page itself may be reached from a link.
        let page = headers(&[host, ("sec-fetch-site", "cross-site")]);
        assert_eq!(check(&Method::GET, "/", &page, &[]), Ok(()));
    }
}
