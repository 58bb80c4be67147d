//! The dashboard at `GET /`: one page, its script and its stylesheet,
//! embedded in the binary. The page holds no data: its script asks for
//! the token, keeps it in memory only, and polls the token-protected
//! `/api/v1` like any other client.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

const PAGE: &str = include_str!("dashboard/index.html");
const SCRIPT: &str = include_str!("dashboard/dashboard.js");
const CHARTS: &str = include_str!("dashboard/charts.js");
const STYLE: &str = include_str!("dashboard/dashboard.css");

/// Everything the page needs comes from this listener; no inline script
/// or style, no other origin, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                   connect-src 'self'; img-src 'self' data:; base-uri 'none'; \
                   form-action 'none'; frame-ancestors 'none'";

/// The asset at `path` (`/`, `/dashboard.js`, `/charts.js`, `/dashboard.css`), if it is one.
pub(super) fn asset(path: &str) -> Option<Response<Full<Bytes>>> {
    let (body, content_type) = match path {
        "/" | "/index.html" => (PAGE, "text/html; charset=utf-8"),
        "/dashboard.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "/charts.js" => (CHARTS, "text/javascript; charset=utf-8"),
        "/dashboard.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return None,
    };
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = StatusCode::OK;
    let headers = resp.headers_mut();
    let fixed = |v: &'static str| HeaderValue::from_static(v);
    headers.insert(header::CONTENT_TYPE, fixed(content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, fixed(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, fixed("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, fixed("DENY"));
    headers.insert(header::REFERRER_POLICY, fixed("no-referrer"));
    headers.insert(header::CACHE_CONTROL, fixed("no-cache"));
    Some(resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_served_with_a_strict_policy() {
        for path in ["/", "/dashboard.js", "/charts.js", "/dashboard.css"] {
            let resp = asset(path).unwrap();
            let csp = resp.headers()[header::CONTENT_SECURITY_POLICY].to_str();
            assert!(csp.unwrap().contains("script-src 'self';"));
        }
        assert!(asset("/other").is_none());
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere_and_stores_no_token() {
        for text in [PAGE, SCRIPT, CHARTS, STYLE] {
            assert!(!text.contains("http://") && !text.contains("https://"));
            assert!(!text.contains("localStorage") && !text.contains("sessionStorage"));
            assert!(!text.contains("document.cookie"));
        }
        assert!(!PAGE.contains("<script>") && !PAGE.contains("style="));
    }
}
