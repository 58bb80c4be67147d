//! Every error status of SPEC §8, request smuggling attempts, and slow or
//! idle clients, against real sockets.

use std::time::{Duration, Instant};

use crate::support::*;

fn route_to(addr: std::net::SocketAddr, route_extra: &str) -> String {
    config(
        &[("app", &[addr])],
        &format!("[[route]]\nname = \"app\"\npool = \"app\"\n{route_extra}"),
    )
}

#[tokio::test]
async fn refused_upstream_is_502() {
    let proxy = Proxy::start(&route_to(dead_addr().await, "")).await;
    let (status, _, body) = get(&proxy.url("/"), &[]).await;
    assert_eq!((status.as_u16(), body.as_str()), (502, "bad gateway\n"));
}

#[tokio::test]
async fn bad_upstream_response_is_502() {
    let garbage = raw_upstream(b"this is not http\r\n\r\n").await;
    let proxy = Proxy::start(&route_to(garbage, "retries = 0")).await;
    let (status, _, _) = get(&proxy.url("/"), &[]).await;
    assert_eq!(status, 502);
}

#[tokio::test]
async fn upstream_reset_mid_response_is_502() {
    // Closes after the request without answering.
    let silent = raw_upstream(b"").await;
    let proxy = Proxy::start(&route_to(silent, "retries = 0")).await;
    let (status, _, _) = get(&proxy.url("/"), &[]).await;
    assert_eq!(status, 502);
}

#[tokio::test]
async fn no_healthy_endpoint_is_503() {
    let up = Upstream::start("up").await;
    let proxy = Proxy::start(&route_to(up.addr, "")).await;
    for pool in &proxy.routing().load().pools {
        for endpoint in &pool.endpoints {
            endpoint.set_healthy(false);
        }
    }
    let (status, headers, body) = get(&proxy.url("/"), &[]).await;
    assert_eq!(
        (status.as_u16(), body.as_str()),
        (503, "no healthy upstream\n")
    );
    assert!(headers.contains_key("retry-after"));
    assert!(up.requests().is_empty());
}

#[tokio::test]
async fn slow_upstream_is_504_after_the_route_timeout() {
    let up = Upstream::start("up").await;
    let proxy = Proxy::start(&route_to(up.addr, "timeout = \"200ms\"")).await;
    let start = Instant::now();
    let (status, _, body) = get(&proxy.url("/sleep/3000"), &[]).await;
    assert_eq!(
        (status.as_u16(), body.as_str()),
        (504, "upstream timeout\n")
    );
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(2),
        "took {took:?}"
    );
}

#[tokio::test]
async fn malformed_request_is_400() {
    let up = Upstream::start("up").await;
    let proxy = Proxy::start(&route_to(up.addr, "")).await;
    let reply = raw_exchange(
        proxy.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    // obs-fold (a header continued on the next line) is rejected too.
    let folded = b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: a\r\n  b\r\n\r\n";
    let reply = raw_exchange(proxy.addr, folded, Duration::from_secs(5)).await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(up.requests().is_empty(), "{:?}", up.requests());
}

#[tokio::test]
async fn oversized_headers_are_431() {
    let up = Upstream::start("up").await;
    let proxy = Proxy::start(&route_to(up.addr, "")).await;
    let big = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(100 * 1024)
    );
    let reply = raw_exchange(proxy.addr, big.as_bytes(), Duration::from_secs(5)).await;
    assert!(
        reply.starts_with("HTTP/1.1 431"),
        "{}",
        &reply[..reply.len().min(200)]
    );
    assert!(up.requests().is_empty());
}

/// CL.TE / TE.CL smuggling: a body that hides a second request. Whatever
/// order the headers come in, the request is rejected with 400 and the
/// upstream sees neither it nor `/smuggled`.
#[tokio::test]
async fn content_length_with_transfer_encoding_never_smuggles() {
    let up = Upstream::start("up").await;
    let proxy = Proxy::start(&route_to(up.addr, "")).await;
    let attacks: [&[u8]; 3] = [
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    for attack in attacks {
        let reply = raw_exchange(proxy.addr, attack, Duration::from_secs(3)).await;
        assert!(reply.starts_with("HTTP/1.1 400"), "not rejected: {reply:?}");
        // At most one response, then the connection is closed.
        assert_eq!(reply.matches("HTTP/1.1 ").count(), 1, "{reply}");
    }
    // Give a smuggled request time to arrive, if one was sent.
    let _ = get(&proxy.url("/after"), &[]).await;
    let seen = up.requests();
    assert!(
        !seen.iter().any(|r| r.contains("smuggled")),
        "smuggled request reached upstream: {seen:?}"
    );
}

/// A client that sends headers one byte at a time is cut off after
/// `header_timeout`, and never reaches an upstream.
#[tokio::test]
async fn slowloris_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = Upstream::start("up").await;
    let toml =
        route_to(up.addr, "").replace("header_timeout = \"2s\"", "header_timeout = \"300ms\"");
    let proxy = Proxy::start(&toml).await;
    let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let start = Instant::now();
    let head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    let mut closed_after = None;
    'drip: for byte in head.iter().chain(std::iter::repeat(&b'a')).take(200) {
        if stream.write_all(&[*byte]).await.is_err() {
            closed_after = Some(start.elapsed());
            break;
        }
        let mut buf = [0u8; 64];
        match tokio::time::timeout(Duration::from_millis(50), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                closed_after = Some(start.elapsed());
                break 'drip;
            }
            _ => {}
        }
    }
    let closed_after = closed_after.expect("slow client was never cut off");
    assert!(
        closed_after >= Duration::from_millis(300),
        "cut after {closed_after:?}"
    );
    assert!(
        closed_after < Duration::from_secs(3),
        "cut after {closed_after:?}"
    );
    assert!(up.requests().is_empty());
}

/// An idle keep-alive connection is closed after `idle_timeout`, not after
/// the (shorter) header timeout.
#[tokio::test]
async fn idle_keepalive_connection_is_closed_after_idle_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = Upstream::start("up").await;
    let toml = route_to(up.addr, "")
        .replace("header_timeout = \"2s\"", "header_timeout = \"200ms\"")
        .replace("idle_timeout = \"5s\"", "idle_timeout = \"800ms\"");
    let proxy = Proxy::start(&toml).await;
    let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let idle_from = Instant::now();
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("never closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "expected close");
    let idle = idle_from.elapsed();
    assert!(
        idle >= Duration::from_millis(700) && idle < Duration::from_secs(3),
        "closed after {idle:?}"
    );
}

/// Read one HTTP/1.1 response with a Content-Length body from `stream`.
async fn read_response(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            if text[..end].contains("transfer-encoding: chunked") {
                if text[end..].contains("\r\n0\r\n\r\n") {
                    return text;
                }
                continue;
            }
            let length = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            if out.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

/// A keep-alive connection idle past the park delay (its HTTP/1 state let
/// go) serves its next requests on the same socket, a head arriving in
/// pieces and a request with a body included.
#[tokio::test]
async fn a_parked_keepalive_connection_serves_its_next_requests() {
    use tokio::io::AsyncWriteExt;
    let up = Upstream::start("up").await;
    let proxy = Proxy::start(&route_to(up.addr, "")).await;
    let mut stream = parked_connection(proxy.addr).await;

    // The next head comes in two pieces.
    stream.write_all(b"GET /hea").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream
        .write_all(b"ders HTTP/1.1\r\nHost: x\r\nX-Long: ")
        .await
        .unwrap();
    let long = "v".repeat(300);
    stream
        .write_all(format!("{long}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let second = read_response(&mut stream).await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    assert!(second.contains(&format!("x-long: {long}\n")), "{second}");

    tokio::time::sleep(Duration::from_millis(800)).await;
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        .await
        .unwrap();
    let third = read_response(&mut stream).await;
    assert!(third.starts_with("HTTP/1.1 200"), "{third}");
    assert!(third.contains("hello"), "{third}");
    assert_eq!(up.requests().len(), 3, "{:?}", up.requests());
}

/// A keep-alive connection to `proxy` that served one request, then sat
/// idle well past the park delay (250 ms), so the proxy has parked it.
async fn parked_connection(proxy: std::net::SocketAddr) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(proxy).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
        .write_all(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_response(&mut stream).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(800)).await;
    stream
}

/// Shutdown closes parked (idle) connections at once.
#[tokio::test]
async fn shutdown_closes_parked_connections() {
    use tokio::io::AsyncReadExt;
    let up = Upstream::start("up").await;
    let mut proxy = Proxy::start(&route_to(up.addr, "")).await;
    let mut stream = parked_connection(proxy.addr).await;
    let started = Instant::now();
    let server = proxy.server.take().unwrap();
    assert!(server.shutdown(Duration::from_secs(5)).await, "all closed");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0);
}
