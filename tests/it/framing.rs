//! Message framing on both sides: every pipelined request gets the same
//! smuggling checks as the first, and upstream responses with ambiguous
//! or broken framing never reach a client as a silently wrong body.

use std::time::Duration;

use crate::support::*;

fn route_to(addr: std::net::SocketAddr) -> String {
    config(
        &[("app", &[addr])],
        "[[route]]\nname = \"app\"\npool = \"app\"\nretries = 0\n",
    )
}

/// Each pipeline: good requests (with bodies of every framing), then one
/// with both `Content-Length` and `Transfer-Encoding` hiding `/smuggled`.
/// The good ones are answered, the ambiguous one is 400 and never
/// forwarded, nothing after it is read.
#[tokio::test]
async fn pipelined_requests_get_the_same_framing_checks() {
    let up = Upstream::start("up").await;
    let proxy = Proxy::start(&route_to(up.addr)).await;
    let smuggle = "POST /bad HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let firsts = [
        "GET /first HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 27\r\n\r\nTransfer-Encoding: chunked\n",
        "POST /first HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nX-Trailer: 1\r\n\r\n",
    ];
    for first in firsts {
        let before = up.requests().len();
        let pipeline = format!("{first}GET /second HTTP/1.1\r\nHost: x\r\n\r\n{smuggle}");
        let reply = raw_exchange(proxy.addr, pipeline.as_bytes(), Duration::from_secs(5)).await;
        let statuses: Vec<&str> = reply
            .match_indices("HTTP/1.1 ")
            .map(|(at, _)| &reply[at + 9..at + 12])
            .collect();
        assert_eq!(statuses, ["200", "200", "400"], "{first:?}: {reply}");
        let seen = up.requests()[before..].to_vec();
        let paths: Vec<&str> = seen.iter().map(|r| r.split(' ').nth(1).unwrap()).collect();
        assert_eq!(paths, ["/first", "/second"], "{first:?}");
    }
    // A clean pipeline is served whole.
    let clean = "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let reply = raw_exchange(proxy.addr, clean.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(reply.matches("HTTP/1.1 200").count(), 3, "{reply}");
}

/// Reads until the peer closes; `None` if it is still open after `limit`.
async fn read_until_closed(addr: std::net::SocketAddr, request: &[u8]) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    read.ok()
        .map(|_| String::from_utf8_lossy(&out).into_owned())
}

/// An upstream response with both `Content-Length` and
/// `Transfer-Encoding` is decoded as chunked and sent on without the
/// length, so the client gets the whole body, correctly framed.
#[tokio::test]
async fn upstream_content_length_beside_chunked_is_dropped() {
    let upstream = raw_upstream(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nabcdefgh\r\n0\r\n\r\n").await;
    let proxy = Proxy::start(&route_to(upstream)).await;
    let request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let reply = read_until_closed(proxy.addr, request)
        .await
        .expect("closed");
    let lower = reply.to_ascii_lowercase();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(!lower.contains("content-length"), "{reply}");
    assert!(lower.contains("transfer-encoding: chunked"), "{reply}");
    assert!(reply.ends_with("8\r\nabcdefgh\r\n0\r\n\r\n"), "{reply}");
}

/// An upstream that dies mid-body: the client's connection is closed
/// before the declared length, never kept open with a short body.
#[tokio::test]
async fn a_truncated_upstream_body_closes_the_client_connection() {
    let upstream =
        raw_upstream(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-part-of-it").await;
    let proxy = Proxy::start(&route_to(upstream)).await;
    let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    let reply = read_until_closed(proxy.addr, request)
        .await
        .expect("the keep-alive connection is closed, not left open");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let body = &reply[reply.find("\r\n\r\n").unwrap() + 4..];
    assert!(body.len() < 100, "{reply}");
}
