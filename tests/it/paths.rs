//! Path normalization before routing: a request is routed and forwarded by
//! its normalized path, over HTTP/1.1 (raw bytes) and HTTP/2 (`:path`).

use std::time::Duration;

use crate::support::*;

const ROUTES: &str = "[[route]]\nname = \"api\"\npath_prefix = \"/api\"\npool = \"api\"\n\
                      [[route]]\nname = \"web\"\npool = \"web\"\n";

/// (sent, status, upstream that answers, path it receives)
const CASES: [(&str, u16, &str, &str); 12] = [
    ("/api/../secret", 200, "web", "/secret"),
    ("/api/%2e%2e/secret", 200, "web", "/secret"),
    ("/api/%2E%2e/secret?q=/../x", 200, "web", "/secret?q=/../x"),
    ("/api/./.%2E/secret", 200, "web", "/secret"),
    ("/%61pi/x", 200, "api", "/api/x"),
    ("//api//x/", 200, "api", "/api/x/"),
    ("/public/../api/x", 200, "api", "/api/x"),
    ("/api/a%20b", 200, "api", "/api/a%20b"),
    ("/api/..%2fsecret", 400, "", ""),
    ("/api/..%5csecret", 400, "", ""),
    ("/api/%zz", 400, "", ""),
    ("/../secret", 400, "", ""),
];

fn last_path(up: &Upstream) -> String {
    let log = up.requests();
    let last = log.last().expect("a request");
    last.split_once(' ').unwrap().1.to_string()
}

#[tokio::test]
async fn paths_are_normalized_before_routing_http1() {
    let (api, web) = (Upstream::start("api").await, Upstream::start("web").await);
    let proxy = Proxy::start(&config(
        &[("api", &[api.addr]), ("web", &[web.addr])],
        ROUTES,
    ))
    .await;
    for (sent, status, who, received) in CASES {
        let before = (api.requests().len(), web.requests().len());
        let request = format!("GET {sent} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        let reply = raw_exchange(proxy.addr, request.as_bytes(), Duration::from_secs(5)).await;
        assert!(
            reply.starts_with(&format!("HTTP/1.1 {status}")),
            "{sent}: {reply}"
        );
        if status != 200 {
            assert_eq!(
                (api.requests().len(), web.requests().len()),
                before,
                "{sent}"
            );
            continue;
        }
        assert!(
            reply.contains(&format!("x-upstream: {who}")),
            "{sent}: {reply}"
        );
        let up = if who == "api" { &api } else { &web };
        assert_eq!(last_path(up), received, "{sent}");
    }
    // A raw backslash never reaches an upstream either.
    let reply = raw_exchange(
        proxy.addr,
        b"GET /api\\..\\secret HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
}

#[tokio::test]
async fn paths_are_normalized_before_routing_h2() {
    let (api, web) = (Upstream::start("api").await, Upstream::start("web").await);
    let proxy = Proxy::start(&config(
        &[("api", &[api.addr]), ("web", &[web.addr])],
        ROUTES,
    ))
    .await;
    let client = h2c_client();
    for (sent, status, who, received) in CASES {
        let before = (api.requests().len(), web.requests().len());
        let req = http::Request::get(proxy.url(sent)).body(empty()).unwrap();
        let (got, headers, _) = send(&client, req).await;
        assert_eq!(got.as_u16(), status, "{sent}");
        if status != 200 {
            assert_eq!(
                (api.requests().len(), web.requests().len()),
                before,
                "{sent}"
            );
            continue;
        }
        assert_eq!(headers["x-upstream"], who, "{sent}");
        let up = if who == "api" { &api } else { &web };
        assert_eq!(last_path(up), received, "{sent}");
    }
}
