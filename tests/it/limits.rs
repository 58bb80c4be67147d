//! Limits and timeouts on the client side: a client that stops reading is
//! cut off after `send_timeout` and its upstream connection released.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

fn with_proxy_keys(toml: String, keys: &str) -> String {
    toml.replacen(
        "idle_timeout = \"5s\"\n",
        &format!("idle_timeout = \"5s\"\n{keys}"),
        1,
    )
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_after_send_timeout() {
    let up = Upstream::start("up").await;
    let route = "[[route]]\nname = \"app\"\npool = \"app\"\n";
    let toml = with_proxy_keys(
        config(&[("app", &[up.addr])], route),
        "send_timeout = \"300ms\"\n",
    );
    let proxy = Proxy::start(&toml).await;
    let app = proxy.server.as_ref().unwrap();
    let stats = app.telemetry.stats("app", "app", "");

    let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    // 1 GiB, never read: the socket buffers fill and writes stop.
    let request = b"GET /bytes/1073741824 HTTP/1.1\r\nHost: x\r\n\r\n";
    stream.write_all(request).await.unwrap();
    eventually(Duration::from_secs(10), || stats.snapshot().in_flight == 1).await;
    let started = tokio::time::Instant::now();
    // Cut off: the response is dropped, so is the upstream exchange.
    eventually(Duration::from_secs(15), || stats.snapshot().in_flight == 0).await;
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
    let ep = endpoint(&proxy, "app", up.addr);
    eventually(Duration::from_secs(5), || ep.in_flight() == 0).await;

    // What the client gets is a closed connection, far short of 1 GiB.
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read_all)
        .await
        .expect("the connection was closed");
    assert!(got < 1 << 30, "{got}");
}

/// `max_connections = 2`: a third client waits in the accept queue until
/// one of the first two leaves; the admin listener, with its own budget,
/// answers meanwhile.
#[tokio::test]
async fn max_connections_queues_the_rest_and_admin_stays_reachable() {
    let up = Upstream::start("up").await;
    let route = "[[route]]\nname = \"app\"\npool = \"app\"\n";
    let toml = with_proxy_keys(
        config(&[("app", &[up.addr])], route),
        "max_connections = 2\n",
    );
    let dir = crate::support::admin::TempDir::new("max-connections");
    let veer = crate::support::admin::Veer::start(&dir, &toml, None).await;
    let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(veer.addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut buf = [0u8; 256];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        open.push(stream);
    }
    let mut third = tokio::net::TcpStream::connect(veer.addr).await.unwrap();
    third.write_all(request).await.unwrap();
    let mut buf = [0u8; 256];
    let waited = tokio::time::timeout(Duration::from_millis(300), third.read(&mut buf)).await;
    assert!(waited.is_err(), "the third connection is not served yet");
    let (status, _) = crate::support::admin::raw_get(&veer.admin_url("/healthz"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    drop(open.remove(0));
    let n = tokio::time::timeout(Duration::from_secs(10), third.read(&mut buf))
        .await
        .expect("served once a slot is free")
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    drop((open, third));
    veer.stop().await;
}

/// A client that connects and sends nothing is closed after
/// `header_timeout`, not `idle_timeout`.
#[tokio::test]
async fn a_silent_connection_is_closed_after_header_timeout() {
    let up = Upstream::start("up").await;
    let route = "[[route]]\nname = \"app\"\npool = \"app\"\n";
    let toml = config(&[("app", &[up.addr])], route)
        .replace("header_timeout = \"2s\"", "header_timeout = \"300ms\"")
        .replace("idle_timeout = \"5s\"", "idle_timeout = \"60s\"");
    let proxy = Proxy::start(&toml).await;
    for first in [&b""[..], b"GET / HT"] {
        let started = tokio::time::Instant::now();
        let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
        stream.write_all(first).await.unwrap();
        let mut buf = [0u8; 64];
        let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf)).await;
        assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "{read:?}");
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_secs(20),
            "{took:?}"
        );
    }
}
