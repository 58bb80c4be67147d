//! Differential test of veer's HTTP/1.1 request framing
//! (`veer::proxy::h1`) against hyper's server: generated request heads
//! and bodies (valid, borderline and malformed: chunk sizes, extensions,
//! whitespace, bare LF, duplicate and conflicting framing headers), each
//! followed by a second request, go to both. It fails on any message veer
//! accepts that hyper does not, or frames differently (a different body,
//! or a different next request: the stuff of smuggling). veer refusing
//! what hyper accepts is allowed (it is stricter on purpose) and counted.
//!
//! `cargo test --test it h1_differential` runs 3,000 cases; a longer run:
//! `VEER_DIFF_CASES=200000 cargo test --release --test it h1_differential -- --nocapture`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use veer::proxy::h1::response::{parse_response, ResponseBody};
use veer::proxy::h1::{chunked::Decoder, parse_head, BodyFraming};

/// One request as a server saw it: method, target, body (or `None` when
/// reading the body failed).
type Seen = (String, String, Option<Vec<u8>>);

const NEXT: &str = "GET /next HTTP/1.1\r\nhost: h\r\n\r\n";

/// What veer's framing makes of `bytes`: every request it accepts, in
/// order, until one is refused or incomplete.
fn veer_frames(bytes: &[u8]) -> Vec<Seen> {
    let mut seen = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let Ok(Some(head)) = parse_head(&bytes[at..], 64 * 1024) else {
            break;
        };
        at += head.len;
        let body = match head.framing {
            BodyFraming::Empty => Vec::new(),
            BodyFraming::Length(n) => {
                let n = n as usize;
                if bytes.len() - at < n {
                    break;
                }
                at += n;
                bytes[at - n..at].to_vec()
            }
            BodyFraming::Chunked => {
                let mut body = Vec::new();
                let mut decoder = Decoder::default();
                match decoder.decode(&bytes[at..], |d| body.extend_from_slice(d)) {
                    Ok((used, true)) => at += used,
                    _ => break,
                }
                body
            }
        };
        seen.push((head.method, head.target, Some(body)));
        if !head.keep_alive {
            break;
        }
    }
    seen
}

/// What hyper's HTTP/1 server makes of `bytes` sent on one connection
/// (then closed for writing).
async fn hyper_frames(bytes: Vec<u8>) -> Vec<Seen> {
    let (mut client, server) = tokio::io::duplex(1 << 20);
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let record = seen.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let record = record.clone();
        async move {
            let method = req.method().to_string();
            let target = req.uri().to_string();
            let body = req.into_body().collect().await.ok();
            let body = body.map(|b| b.to_bytes().to_vec());
            record.lock().unwrap().push((method, target, body));
            Ok::<_, std::convert::Infallible>(hyper::Response::new(Empty::<Bytes>::new()))
        }
    });
    // Half-close: the client's end of input must not stop hyper from
    // serving the requests already sent.
    let conn = hyper::server::conn::http1::Builder::new()
        .half_close(true)
        .serve_connection(TokioIo::new(server), service);
    let task = tokio::spawn(conn);
    client.write_all(&bytes).await.unwrap();
    client.shutdown().await.unwrap();
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut sink)).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    let seen = seen.lock().unwrap().clone();
    // Stop at the first body hyper could not read, as veer does.
    let end = seen
        .iter()
        .position(|s| s.2.is_none())
        .unwrap_or(seen.len());
    seen[..end].to_vec()
}

fn pick<'a>(rng: &mut SmallRng, from: &[&'a str]) -> &'a str {
    from[rng.random_range(0..from.len())]
}

/// A generated first request (head and body), valid or not.
fn generate(rng: &mut SmallRng) -> Vec<u8> {
    let eol = if rng.random_bool(0.1) { "\n" } else { "\r\n" };
    let line = pick(
        rng,
        &[
            "POST /p HTTP/1.1",
            "POST /p HTTP/1.1",
            "GET / HTTP/1.1",
            "POST /p HTTP/1.0",
            "post /p HTTP/1.1",
            "POST  /p HTTP/1.1",
            "POST /p HTTP/1.1 ",
            "POST /p HTTP/1.2",
            "POST http://h/p HTTP/1.1",
            "POST /p\tHTTP/1.1",
            "POST /p?a=%20 HTTP/1.1",
        ],
    );
    let n = rng.random_range(0..12usize);
    let lengths = [
        format!("content-length: {n}"),
        format!("Content-Length: 0{n}"),
        format!("content-length: {n}, {n}"),
        format!("content-length: +{n}"),
        format!("content-length: {n} "),
        format!("content-length:{n}"),
        format!("content-length: {}", n + 1),
        "content-length: -1".to_string(),
        "content-length: 1_0".to_string(),
        format!("content-length: 0x{n}"),
        "content-length: 99999999999999999999999".to_string(),
    ];
    let codings = [
        "transfer-encoding: chunked",
        "Transfer-Encoding: Chunked",
        "transfer-encoding: chunked ",
        "transfer-encoding: gzip, chunked",
        "transfer-encoding: chunked, gzip",
        "transfer-encoding: xchunked",
        "transfer-encoding:\tchunked",
        "Transfer-Encoding : chunked",
        "transfer-encoding: chunked, chunked",
        "transfer-encoding: identity",
    ];
    let others = [
        "host: h",
        "connection: close",
        "connection: keep-alive",
        "x-a: \u{1}",
        "bad header",
        "x:y",
        " x: folded",
        "x-b: a\r\n b",
        ": empty",
    ];
    let mut headers: Vec<String> = Vec::new();
    for _ in 0..rng.random_range(0..4) {
        let header = match rng.random_range(0..3) {
            0 => lengths[rng.random_range(0..lengths.len())].clone(),
            1 => pick(rng, &codings).to_string(),
            _ => pick(rng, &others).to_string(),
        };
        headers.push(header);
    }
    let mut text = format!("{line}{eol}");
    for header in &headers {
        text.push_str(header);
        text.push_str(eol);
    }
    text.push_str(eol);
    let chunked = headers
        .iter()
        .any(|h| h.to_ascii_lowercase().contains("chunked"));
    let mut bytes = text.into_bytes();
    match (chunked, rng.random_bool(0.8)) {
        (true, true) | (false, false) => bytes.extend(chunked_body(rng)),
        (false, true) => bytes.extend(std::iter::repeat_n(b'b', n)),
        (true, false) => bytes.extend(std::iter::repeat_n(b'b', rng.random_range(0..8))),
    }
    bytes
}

/// A chunked body, usually well formed, sometimes not.
fn chunked_body(rng: &mut SmallRng) -> Vec<u8> {
    let mut body = Vec::new();
    for _ in 0..rng.random_range(0..3) {
        let size = rng.random_range(1..20usize);
        let size_text = match rng.random_range(0..8) {
            0 => format!("{size:X}"),
            1 => format!("000{size:x}"),
            2 => format!("{size:x} "),
            3 => format!("{size:x};ext=1"),
            4 => format!("{size:x} ;ext"),
            5 => format!("{:x}", size + 1),
            6 => format!(" {size:x}"),
            _ => format!("{size:x}"),
        };
        let eol = match rng.random_range(0..10) {
            0 => "\n",
            1 => "\r",
            _ => "\r\n",
        };
        body.extend_from_slice(size_text.as_bytes());
        body.extend_from_slice(eol.as_bytes());
        body.extend(std::iter::repeat_n(b'c', size));
        body.extend_from_slice(pick(rng, &["\r\n", "\r\n", "\r\n", "\n", "", "x\r\n"]).as_bytes());
    }
    let last = pick(
        rng,
        &[
            "0\r\n\r\n",
            "0\r\n\r\n",
            "0;e\r\n\r\n",
            "0\r\nx-sum: 1\r\n\r\n",
            "0\r\nx-sum 1\r\n\r\n",
            "0\n\n",
            "0\r\n",
            "00\r\n\r\n",
            "",
        ],
    );
    body.extend_from_slice(last.as_bytes());
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn veer_never_accepts_or_frames_what_hyper_would_not() {
    let cases: usize = std::env::var("VEER_DIFF_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3000);
    let mut rng = SmallRng::seed_from_u64(0x005e_ed0f_f4a3);
    let (mut both, mut stricter, mut refused_by_both) = (0, 0, 0);
    for case in 0..cases {
        let mut bytes = generate(&mut rng);
        bytes.extend_from_slice(NEXT.as_bytes());
        let ours = veer_frames(&bytes);
        let theirs = hyper_frames(bytes.clone()).await;
        for (i, seen) in ours.iter().enumerate() {
            assert_eq!(
                Some(seen),
                theirs.get(i),
                "case {case}: request {i} framed differently\nbytes: {:?}\nveer: {ours:?}\nhyper: {theirs:?}",
                String::from_utf8_lossy(&bytes)
            );
        }
        match (ours.len(), theirs.len()) {
            (0, 0) => refused_by_both += 1,
            (a, b) if a < b => stricter += 1,
            _ => both += 1,
        }
    }
    eprintln!(
        "h1 differential: {cases} cases; same framing {both}, refused by both {refused_by_both}, \
         refused by veer only {stricter}"
    );
    assert!(
        both > cases / 10 && refused_by_both > cases / 10,
        "generator too one-sided"
    );
}

/// What veer's response framing makes of `bytes` answering `method`:
/// the status and body, or `None` if it refuses them.
fn veer_response(bytes: &[u8], method: &str) -> Option<(u16, Vec<u8>)> {
    let mut at = 0;
    let head = loop {
        let head = parse_response(&bytes[at..], 64 * 1024, method, false).ok()??;
        at += head.len;
        // Interim responses come before the final one.
        if !(100..200).contains(&head.status) {
            break head;
        }
    };
    let rest = &bytes[at..];
    let body = match head.body {
        ResponseBody::None => Vec::new(),
        ResponseBody::Length(n) => rest.get(..usize::try_from(n).ok()?)?.to_vec(),
        ResponseBody::UntilClose => rest.to_vec(),
        ResponseBody::Chunked => {
            let mut body = Vec::new();
            let mut decoder = Decoder::default();
            match decoder.decode(rest, |d| body.extend_from_slice(d)) {
                Ok((_, true)) => body,
                _ => return None,
            }
        }
        ResponseBody::Tunnel => return None,
    };
    Some((head.status, body))
}

/// What hyper's HTTP/1 client makes of `bytes` sent by a server (which
/// then closes) in answer to `method /`.
async fn hyper_response(bytes: Vec<u8>, method: &str) -> Option<(u16, Vec<u8>)> {
    let (client, mut server) = tokio::io::duplex(1 << 20);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(client))
        .await
        .ok()?;
    let driver = tokio::spawn(conn);
    let serve = tokio::spawn(async move {
        let mut request = [0u8; 1024];
        let _ = server.read(&mut request).await;
        let _ = server.write_all(&bytes).await;
        let _ = server.shutdown().await;
        // Hold the other half until the client is done.
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), server.read_to_end(&mut sink)).await;
    });
    let req = hyper::Request::builder()
        .method(method)
        .uri("/")
        .header("host", "h")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let outcome = async {
        let resp = sender.send_request(req).await.ok()?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await.ok()?.to_bytes().to_vec();
        Some((status, body))
    };
    let outcome = tokio::time::timeout(Duration::from_secs(5), outcome)
        .await
        .ok()?;
    drop(sender);
    let _ = tokio::time::timeout(Duration::from_secs(5), driver).await;
    serve.abort();
    outcome
}

/// A generated upstream response, valid or not.
fn generate_response(rng: &mut SmallRng) -> Vec<u8> {
    let eol = if rng.random_bool(0.1) { "\n" } else { "\r\n" };
    let line = pick(
        rng,
        &[
            "HTTP/1.1 200 OK",
            "HTTP/1.1 200 OK",
            "HTTP/1.0 200 OK",
            "HTTP/1.1 204 No Content",
            "HTTP/1.1 304 Not Modified",
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK",
            "HTTP/1.1 200",
            "HTTP/1.1 599 Odd",
            "HTTP/1.1 20 OK",
            "HTTP/1.2 200 OK",
            "http/1.1 200 OK",
            "HTTP/1.1  200 OK",
        ],
    );
    let mut text = format!("{line}{eol}");
    let n = rng.random_range(0..12usize);
    for _ in 0..rng.random_range(0..4) {
        let header = match rng.random_range(0..4) {
            0 => pick(
                rng,
                &[
                    "content-length: N",
                    "content-length: N, N",
                    "content-length: +N",
                    "content-length: 1N",
                    "content-length: -1",
                    "content-length: N ",
                ],
            )
            .replace('N', &n.to_string()),
            1 => pick(
                rng,
                &[
                    "transfer-encoding: chunked",
                    "Transfer-Encoding: CHUNKED",
                    "transfer-encoding: gzip, chunked",
                    "transfer-encoding: chunked, gzip",
                    "transfer-encoding: gzip",
                    "transfer-encoding: chunked ",
                ],
            )
            .to_string(),
            2 => pick(
                rng,
                &["connection: close", "connection: keep-alive", "x: y"],
            )
            .to_string(),
            _ => pick(rng, &["bad header", "x : y", " folded: x", "x: \u{1}"]).to_string(),
        };
        text.push_str(&header);
        text.push_str(eol);
    }
    text.push_str(eol);
    let mut bytes = text.into_bytes();
    match rng.random_range(0..3) {
        0 => bytes.extend(chunked_body(rng)),
        _ => bytes.extend(std::iter::repeat_n(b'r', rng.random_range(0..14))),
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn veer_never_accepts_a_response_hyper_would_not() {
    let cases: usize = std::env::var("VEER_DIFF_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(2000);
    let mut rng = SmallRng::seed_from_u64(0x0007_e570_0a5e);
    let (mut both, mut stricter, mut neither) = (0, 0, 0);
    for case in 0..cases {
        let bytes = generate_response(&mut rng);
        let method = if rng.random_bool(0.2) { "HEAD" } else { "GET" };
        let ours = veer_response(&bytes, method);
        let theirs = hyper_response(bytes.clone(), method).await;
        match (&ours, &theirs) {
            (Some(a), Some(b)) => {
                assert_eq!(
                    a,
                    b,
                    "case {case}: {method} response framed differently: {:?}",
                    String::from_utf8_lossy(&bytes)
                );
                both += 1;
            }
            (Some(_), None) => panic!(
                "case {case}: veer accepts a response to {method} hyper refuses: {:?} as {ours:?}",
                String::from_utf8_lossy(&bytes)
            ),
            (None, Some(_)) => stricter += 1,
            (None, None) => neither += 1,
        }
    }
    eprintln!(
        "h1 response differential: {cases} cases; same {both}, refused by both {neither}, \
         refused by veer only {stricter}"
    );
    assert!(
        both > cases / 10 && neither > cases / 10,
        "generator too one-sided"
    );
}
