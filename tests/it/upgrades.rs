//! Upgrades by allowlist: only `websocket` unless a route allows more;
//! `Upgrade: h2c` is never tunneled. A refused upgrade is forwarded as a
//! plain request, without `Upgrade`.

use std::time::Duration;

use crate::support::*;

async fn headers_seen(proxy: &Proxy, upgrade: &str) -> String {
    let request = format!(
        "GET /headers HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: {upgrade}\r\n\
         HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
    );
    // The upstream answers 200 at once (no 101); keep-alive, so read a bit.
    let reply = raw_exchange(proxy.addr, request.as_bytes(), Duration::from_millis(500)).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{upgrade}: {reply}");
    reply.to_ascii_lowercase()
}

#[tokio::test]
async fn only_allowed_upgrades_are_forwarded() {
    let up = Upstream::start("up").await;
    let routes = "[[route]]\nname = \"plain\"\npool = \"app\"\n\
                  [[route]]\nname = \"extra\"\npath_prefix = \"/headers\"\npool = \"app\"\n\
                  upgrades = [\"websocket\", \"Foo\"]\n";
    let proxy = Proxy::start(&config(&[("app", &[up.addr])], routes)).await;
    for refused in ["h2c", "bar", "foo, h2c", "websocket, bar"] {
        let seen = headers_seen(&proxy, refused).await;
        assert!(!seen.contains("\nupgrade:"), "{refused}: {seen}");
        assert!(!seen.contains("http2-settings"), "{seen}");
    }
    let seen = headers_seen(&proxy, "foo").await;
    assert!(seen.contains("\nupgrade: foo"), "{seen}");
}

#[tokio::test]
async fn h2c_is_never_an_allowed_upgrade() {
    let up = Upstream::start("up").await;
    let route = "[[route]]\nname = \"r\"\npool = \"app\"\nupgrades = [\"h2c\"]\n";
    let toml = config(&[("app", &[up.addr])], route);
    let err = veer::config::parse(&toml, std::path::Path::new("veer.toml")).unwrap_err();
    assert!(err.to_string().contains("h2c is never tunneled"), "{err}");
}
