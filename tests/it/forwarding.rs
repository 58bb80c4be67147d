//! What veer does to a request and response on the way through: headers,
//! streamed bodies, HTTP/2 downstream, upgrades, connection reuse, retries.

use std::time::Duration;

use crate::support::*;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;

fn one_pool(addr: std::net::SocketAddr, route_extra: &str) -> String {
    config(
        &[("app", &[addr])],
        &format!("[[route]]\nname = \"app\"\npool = \"app\"\n{route_extra}"),
    )
}

#[tokio::test]
async fn forwarding_headers_and_host_kept() {
    let up = Upstream::start("up").await;
    let proxy = Proxy::start(&one_pool(up.addr, "")).await;
    let (status, _, body) = get(
        &proxy.url("/headers"),
        &[
            ("host", "app.example.com"),
            ("x-forwarded-for", "203.0.113.9"),
        ],
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("host: app.example.com\n"), "{body}");
    assert!(
        body.contains("x-forwarded-for: 203.0.113.9, 127.0.0.1\n"),
        "{body}"
    );
    assert!(body.contains("x-forwarded-proto: http\n"), "{body}");
    assert!(
        body.contains("x-forwarded-host: app.example.com\n"),
        "{body}"
    );
    let id = body
        .lines()
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .expect("x-request-id added");
    assert_eq!(id.len(), 32);
    // A request id the client sent is kept.
    let (_, _, body) = get(&proxy.url("/headers"), &[("x-request-id", "abc-123")]).await;
    assert!(body.contains("x-request-id: abc-123\n"), "{body}");
}

#[tokio::test]
async fn hop_by_hop_headers_are_stripped_both_ways() {
    let up = Upstream::start("up").await;
    let proxy = Proxy::start(&one_pool(up.addr, "")).await;
    let (_, _, body) = get(
        &proxy.url("/headers"),
        &[
            ("connection", "x-client-secret"),
            ("x-client-secret", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "gzip"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("upgrade", "h2c-not-really"),
            ("x-client-kept", "1"),
        ],
    )
    .await;
    for gone in [
        "x-client-secret",
        "keep-alive",
        "te:",
        "proxy-authorization",
        "upgrade",
    ] {
        assert!(!body.contains(gone), "{gone} reached the upstream:\n{body}");
    }
    assert!(body.contains("x-client-kept: 1"), "{body}");
    let (_, headers, _) = get(&proxy.url("/hop"), &[]).await;
    for gone in ["x-up-secret", "keep-alive", "proxy-authenticate"] {
        assert!(
            !headers.contains_key(gone),
            "{gone} reached the client: {headers:?}"
        );
    }
    assert_eq!(headers["x-up-kept"], "1");
}

/// 1 MiB up and 1 MiB down, sent in chunks as they are produced: the
/// request body reaches the upstream and comes back while still streaming.
#[tokio::test]
async fn one_mebibyte_streams_both_ways() {
    let up = Upstream::start("up").await;
    let proxy = Proxy::start(&one_pool(up.addr, "")).await;
    let chunk = Bytes::from(vec![7u8; 64 * 1024]);
    let chunks =
        (0..16).map(move |_| Ok::<_, std::convert::Infallible>(Frame::data(chunk.clone())));
    let body = BodyExt::boxed(StreamBody::new(futures_util::stream::iter(chunks)));
    let req = http::Request::post(proxy.url("/echo")).body(body).unwrap();
    let resp = client().request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(bytes.len(), 1 << 20);
    assert!(bytes.iter().all(|&b| b == 7));

    let resp = client()
        .request(
            http::Request::get(proxy.url("/bytes/1048576"))
                .body(empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = resp.into_body();
    let (mut frames, mut total) = (0, 0);
    while let Some(frame) = body.frame().await {
        total += frame.unwrap().into_data().unwrap().len();
        frames += 1;
    }
    assert_eq!(total, 1 << 20);
    assert!(
        frames > 1,
        "response arrived in one piece: was it buffered?"
    );
}

/// A request body that never ends still reaches the upstream: nothing
/// waits for the whole body before forwarding.
#[tokio::test]
async fn request_body_is_not_buffered_whole() {
    let up = Upstream::start("up").await;
    let proxy = Proxy::start(&one_pool(up.addr, "")).await;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(Frame::data(b)), rx))
    });
    let body = BodyExt::boxed(StreamBody::new(stream));
    let req = http::Request::post(proxy.url("/echo")).body(body).unwrap();
    tx.send(Bytes::from_static(b"first")).await.unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), client().request(req))
        .await
        .unwrap()
        .unwrap();
    let mut body = resp.into_body();
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.into_data().unwrap(), "first");
    tx.send(Bytes::from_static(b"second")).await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(second.into_data().unwrap(), "second");
}

#[tokio::test]
async fn h2c_prior_knowledge_on_the_same_port() {
    let up = Upstream::start("up").await;
    let proxy = Proxy::start(&one_pool(up.addr, "")).await;
    let h2 = h2c_client();
    let req = http::Request::get(proxy.url("/headers"))
        .body(empty())
        .unwrap();
    let resp = h2.request(req).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let body = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(
        body.contains(&format!("host: {}", proxy.addr)),
        "h2 :authority becomes Host: {body}"
    );
    // And HTTP/1.1 on the same listener.
    let (status, _, _) = get(&proxy.url("/"), &[]).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn h2c_preface_split_across_writes_is_still_h2() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = Upstream::start("up").await;
    let proxy = Proxy::start(&one_pool(up.addr, "")).await;
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream.write_all(&preface[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stream.write_all(&preface[10..]).await.unwrap();
    // An empty SETTINGS frame: length 0, type 4, flags 0, stream 0.
    stream
        .write_all(&[0, 0, 0, 4, 0, 0, 0, 0, 0])
        .await
        .unwrap();
    // The server's first frame is its SETTINGS (an HTTP/1.1 server would
    // answer 400 with a status line instead).
    let mut head = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut head))
        .await
        .expect("an answer in time")
        .unwrap();
    assert_eq!(head[3], 4, "frame type SETTINGS, got {head:?}");
}

#[tokio::test]
async fn many_listeners_serve_the_same_routes() {
    let up = Upstream::start("up").await;
    let toml =
        one_pool(up.addr, "") + "[[listener]]\nname = \"second\"\nlisten = \"127.0.0.2:0\"\n";
    let proxy = Proxy::start(&toml).await;
    assert_eq!(proxy.addrs.len(), 2);
    for addr in &proxy.addrs {
        let (status, _, body) = get(&format!("http://{addr}/"), &[]).await;
        assert_eq!((status.as_u16(), body.as_str()), (200, "up"));
    }
}

#[tokio::test]
async fn websocket_echo_passes_through() {
    let up = Upstream::start("up").await;
    let proxy = Proxy::start(&one_pool(up.addr, "")).await;
    let url = format!("ws://{}/ws", proxy.addr);
    let (mut ws, resp) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(resp.status(), 101);
    for i in 0..3 {
        ws.send(format!("hello {i}").into()).await.unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(
            reply.into_text().unwrap().as_str(),
            format!("up: hello {i}")
        );
    }
    ws.close(None).await.unwrap();
}

#[tokio::test]
async fn upstream_connections_are_reused() {
    let up = Upstream::start("up").await;
    let proxy = Proxy::start(&one_pool(up.addr, "")).await;
    let client = client();
    for _ in 0..200 {
        let (status, _, _) = send(
            &client,
            http::Request::get(proxy.url("/")).body(empty()).unwrap(),
        )
        .await;
        assert_eq!(status, 200);
    }
    let conns = up.connections.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        conns, 1,
        "200 sequential requests used {conns} upstream connections"
    );
}

/// An idempotent request that could not reach a dead endpoint goes to the
/// next one; a POST is not retried.
#[tokio::test]
async fn retries_only_idempotent_requests_that_never_left() {
    let up = Upstream::start("up").await;
    let dead = dead_addr().await;
    let toml = format!(
        "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:0\"\n[[pool]]\nname = \"p\"\nendpoints = [\"{dead}\", \"{}\"]\nbalance = \"round_robin\"\n[[route]]\nname = \"r\"\npool = \"p\"\nretries = 1\n",
        up.addr
    );
    let proxy = Proxy::start(&toml).await;
    for _ in 0..10 {
        let (status, _, body) = get(&proxy.url("/"), &[]).await;
        assert_eq!((status.as_u16(), body.as_str()), (200, "up"));
    }
    let client = client();
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let req = http::Request::post(proxy.url("/")).body(empty()).unwrap();
        statuses.push(send(&client, req).await.0.as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|&&s| s == 502).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        5,
        "{statuses:?}"
    );
}

/// The upstream closes an idle pooled connection; the next request still
/// succeeds (nothing was sent on the dead connection, so veer resends).
#[tokio::test]
async fn closed_pooled_connection_is_not_an_error() {
    let up = Upstream::start("up").await;
    let proxy = Proxy::start(&one_pool(up.addr, "retries = 0")).await;
    let (status, _, _) = get(&proxy.url("/"), &[]).await;
    assert_eq!(status, 200);
    // Restart the upstream on the same port: every pooled connection dies.
    let addr = up.addr;
    drop(up);
    let listener = loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => break l,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let _up = Upstream::serve("up2", listener);
    for _ in 0..5 {
        let (status, _, body) = get(&proxy.url("/"), &[]).await;
        assert_eq!((status.as_u16(), body.as_str()), (200, "up2"));
    }
}
