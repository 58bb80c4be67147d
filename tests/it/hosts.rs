//! One Host, checked: routing and forwarding use the same host; absolute
//! form, duplicate, missing or malformed hosts and h2 `:authority`
//! disagreements, with raw bytes and raw h2 frames.

use std::time::Duration;

use tokio::net::TcpStream;

use crate::support::*;

const ROUTES: &str = "[[route]]\nname = \"a\"\nhost = \"a.example\"\npool = \"a\"\n\
                      [[route]]\nname = \"other\"\npool = \"b\"\n";

async fn start() -> (Upstream, Upstream, Proxy) {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let proxy = Proxy::start(&config(&[("a", &[a.addr]), ("b", &[b.addr])], ROUTES)).await;
    (a, b, proxy)
}

async fn exchange(proxy: &Proxy, head: &str) -> String {
    let request = format!("{head}Connection: close\r\n\r\n");
    raw_exchange(proxy.addr, request.as_bytes(), Duration::from_secs(5)).await
}

#[tokio::test]
async fn absolute_form_authority_is_routed_and_replaces_host() {
    let (a, b, proxy) = start().await;
    let reply = exchange(
        &proxy,
        "GET http://a.example/headers HTTP/1.1\r\nHost: b.example\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("x-upstream: a"), "{reply}");
    assert!(
        reply.contains("host: a.example\n"),
        "the upstream got the routed host: {reply}"
    );
    assert!(!reply.contains("b.example"), "{reply}");
    assert!(b.requests().is_empty());
    assert_eq!(a.requests(), ["GET /headers"]);
}

#[tokio::test]
async fn bad_hosts_are_400_and_never_forwarded() {
    let (a, b, proxy) = start().await;
    let heads = [
        "GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n",
        "GET / HTTP/1.1\r\nHost: a.example\r\nHost: a.example\r\n",
        "GET / HTTP/1.1\r\n",
        "GET / HTTP/1.1\r\nHost: a.example/admin\r\n",
        "GET / HTTP/1.1\r\nHost: user@a.example\r\n",
        "GET / HTTP/1.1\r\nHost: a.example:80:80\r\n",
        "GET / HTTP/1.1\r\nHost: a\\example\r\n",
    ];
    for head in heads {
        let reply = exchange(&proxy, head).await;
        assert!(reply.starts_with("HTTP/1.1 400"), "{head:?}: {reply}");
    }
    assert!(a.requests().is_empty() && b.requests().is_empty());
    // HTTP/1.0 needs no Host; a port is fine.
    let reply = exchange(&proxy, "GET / HTTP/1.0\r\n").await;
    assert!(
        reply.starts_with("HTTP/1.0 200") && reply.contains("x-upstream: b"),
        "{reply}"
    );
    let reply = exchange(&proxy, "GET / HTTP/1.1\r\nHost: A.example:8080\r\n").await;
    assert!(reply.contains("x-upstream: a"), "{reply}");
}

#[tokio::test]
async fn h2_authority_and_host_must_agree() {
    let (a, b, proxy) = start().await;
    let tcp = TcpStream::connect(proxy.addr).await.unwrap();
    let (h2, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(conn);
    let send = |host: Option<&'static str>| {
        let h2 = h2.clone();
        async move {
            let mut req = http::Request::get("http://a.example/");
            if let Some(host) = host {
                req = req.header("host", host);
            }
            let mut h2 = h2.ready().await.unwrap();
            let (resp, _) = h2.send_request(req.body(()).unwrap(), true).unwrap();
            let resp = tokio::time::timeout(Duration::from_secs(5), resp)
                .await
                .unwrap();
            resp.unwrap().status().as_u16()
        }
    };
    assert_eq!(send(Some("b.example")).await, 400);
    assert!(a.requests().is_empty() && b.requests().is_empty());
    assert_eq!(send(Some("A.example")).await, 200);
    assert_eq!(send(None).await, 200);
    assert_eq!(a.requests().len(), 2);
    assert!(b.requests().is_empty());
}
