//! The admin API refuses cross-site and rebinding requests, even without
//! a token, with raw requests as a browser would send them; the dashboard
//! and the CLI keep working; `/metrics` may ask for the token.

use std::time::Duration;

use crate::support::admin::*;
use crate::support::*;

async fn raw(veer: &Veer, request: String) -> u16 {
    let reply = raw_exchange(veer.admin, request.as_bytes(), Duration::from_secs(5)).await;
    reply
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{reply}"))
}

fn post(host: &str, extra: &str) -> String {
    format!(
        "POST /api/v1/routes/app/pause HTTP/1.1\r\nHost: {host}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
}

#[tokio::test]
async fn cross_site_and_rebinding_requests_are_refused() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("admin-guard");
    let toml = two_pools(blue.addr, green.addr, "blue", "").replacen(
        "[[listener]]",
        "[admin]\nnames = [\"veer.internal\"]\n\n[[listener]]",
        1,
    );
    let veer = Veer::start(&dir, &toml, None).await;
    let own = veer.admin.to_string();
    let json = "Content-Type: application/json\r\n";
    let cases = [
        (post("evil.example", json), 421),
        (post(&format!("evil.example:{}", veer.admin.port()), json), 421),
        (post(&own, &format!("{json}Origin: http://evil.example\r\n")), 403),
        (post(&own, &format!("{json}Origin: null\r\n")), 403),
        (post(&own, &format!("{json}Sec-Fetch-Site: cross-site\r\n")), 403),
        (post(&own, "Content-Type: text/plain\r\n"), 415),
        (post(&own, "Content-Type: application/x-www-form-urlencoded\r\n"), 415),
        (post(&own, ""), 415),
        (format!("GET /api/v1/status HTTP/1.1\r\nHost: rebound.example:{}\r\nConnection: close\r\n\r\n", veer.admin.port()), 421),
        (format!("GET /metrics HTTP/1.1\r\nHost: {own}\r\nSec-Fetch-Site: cross-site\r\nConnection: close\r\n\r\n"), 403),
    ];
    for (request, want) in &cases {
        assert_eq!(raw(&veer, request.clone()).await, *want, "{request}");
    }
    assert_eq!(
        veer.status().await["routes"][0]["phase"],
        "idle",
        "nothing changed"
    );
    // Same origin, JSON: accepted, as the dashboard sends it.
    let dashboard = format!("{json}Origin: http://{own}\r\nSec-Fetch-Site: same-origin\r\n");
    assert_eq!(raw(&veer, post(&own, &dashboard)).await, 200);
    let named = post(&format!("veer.internal:{}", veer.admin.port()), json);
    assert_eq!(raw(&veer, named.replace("pause", "resume")).await, 200);
    // The dashboard page itself, reached from a link.
    let page = format!("GET / HTTP/1.1\r\nHost: localhost:{}\r\nSec-Fetch-Site: cross-site\r\nConnection: close\r\n\r\n", veer.admin.port());
    assert_eq!(raw(&veer, page).await, 200);
    veer.stop().await;
}

#[tokio::test]
async fn metrics_can_require_the_token() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("metrics-token");
    let toml = two_pools(blue.addr, green.addr, "blue", "").replacen(
        "[[listener]]",
        "[admin]\ntoken_env = \"VEER_TEST_TOKEN\"\nmetrics_token = true\n\n[[listener]]",
        1,
    );
    let veer = Veer::start(&dir, &toml, Some("s3cret")).await;
    let get = |auth: &str| {
        format!("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n")
    };
    assert_eq!(raw(&veer, get("")).await, 401);
    assert_eq!(raw(&veer, get("Authorization: Bearer nope\r\n")).await, 401);
    assert_eq!(
        raw(&veer, get("Authorization: Bearer s3cret\r\n")).await,
        200
    );
    veer.stop().await;
}
