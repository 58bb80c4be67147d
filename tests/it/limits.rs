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
