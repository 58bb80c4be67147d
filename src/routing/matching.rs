//! Reading the parts of a request that routing looks at: host, headers,
//! cookies, query parameters.

use std::borrow::Cow;

use http::request::Parts;
use http::{header, HeaderMap};

use crate::config::MatchSpec;

/// The request's host, lowercase and without port: the `Host` header on
/// HTTP/1, the `:authority` on HTTP/2.
pub fn request_host(parts: &Parts) -> Option<Cow<'_, str>> {
    let raw = match parts.uri.authority() {
        Some(a) => a.as_str(),
        None => parts.headers.get(header::HOST)?.to_str().ok()?,
    };
    let host = strip_port(raw);
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Some(Cow::Owned(host.to_ascii_lowercase()))
    } else {
        Some(Cow::Borrowed(host))
    }
}

fn strip_port(authority: &str) -> &str {
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    if authority.starts_with('[') {
        // IPv6 literal: keep the brackets, drop ":port".
        return match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        };
    }
    match authority.rfind(':') {
        Some(colon) => &authority[..colon],
        None => authority,
    }
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// The raw value of query parameter `name`, if present.
fn query_param<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// True when every condition of `spec` holds for the request.
pub fn matches(spec: &MatchSpec, parts: &Parts) -> bool {
    spec.headers.iter().all(|(name, want)| {
        parts
            .headers
            .get_all(name)
            .iter()
            .any(|v| v.as_bytes() == want.as_bytes())
    }) && spec
        .cookies
        .iter()
        .all(|(name, want)| cookie(&parts.headers, name) == Some(want))
        && spec
            .query
            .iter()
            .all(|(name, want)| query_param(parts.uri.query(), name) == Some(want))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(req: http::Request<()>) -> Parts {
        req.into_parts().0
    }

    #[test]
    fn host_from_header_or_authority() {
        let p = parts(
            http::Request::get("/")
                .header("host", "Shop.Example.com:8080")
                .body(())
                .unwrap(),
        );
        assert_eq!(request_host(&p).as_deref(), Some("shop.example.com"));
        let p = parts(http::Request::get("http://[::1]:80/x").body(()).unwrap());
        assert_eq!(request_host(&p).as_deref(), Some("[::1]"));
    }

    #[test]
    fn rule_conditions() {
        let spec = MatchSpec {
            headers: vec![(http::HeaderName::from_static("user-type"), "beta".into())],
            cookies: vec![("canary".into(), "yes".into())],
            query: vec![("v".into(), "2".into())],
        };
        let p = parts(
            http::Request::get("/a?x=1&v=2")
                .header("user-type", "beta")
                .header("cookie", "a=b; canary=yes")
                .body(())
                .unwrap(),
        );
        assert!(matches(&spec, &p));
        let p = parts(
            http::Request::get("/a?v=3")
                .header("user-type", "beta")
                .body(())
                .unwrap(),
        );
        assert!(!matches(&spec, &p));
    }
}
