use super::chunked::Decoder;
use super::*;

fn head(text: &str) -> Result<Option<RequestHead>, HeadError> {
    parse_head(text.as_bytes(), 8192)
}

#[test]
fn framing_of_common_heads() {
    let h = head("GET /a?b HTTP/1.1\r\nhost: x\r\n\r\nrest")
        .unwrap()
        .unwrap();
    assert_eq!(
        (h.method.as_str(), h.target.as_str(), h.minor),
        ("GET", "/a?b", 1)
    );
    assert_eq!(
        (h.framing, h.keep_alive, h.len),
        (BodyFraming::Empty, true, 30)
    );
    let h = head("POST / HTTP/1.1\r\ncontent-length: 12\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(h.framing, BodyFraming::Length(12));
    let h = head("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n")
        .unwrap()
        .unwrap();
    assert_eq!(h.framing, BodyFraming::Chunked);
    let h = head("GET / HTTP/1.0\r\nconnection: keep-alive\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(h.keep_alive);
    let h = head("GET / HTTP/1.1\r\nconnection: foo, close\r\n\r\n")
        .unwrap()
        .unwrap();
    assert!(!h.keep_alive);
    assert_eq!(head("GET / HTTP/1.1\r\nhost: x\r\n"), Ok(None));
}

#[test]
fn refuses_ambiguous_or_odd_framing() {
    for bad in [
        "POST / HTTP/1.1\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
        "POST / HTTP/1.1\r\ncontent-length: 5, 5\r\n\r\n",
        "POST / HTTP/1.1\r\ncontent-length: +5\r\n\r\n",
        "POST / HTTP/1.1\r\ncontent-length: 99999999999999999999\r\n\r\n",
        "POST / HTTP/1.1\r\ntransfer-encoding: gzip, chunked\r\n\r\n",
        "POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\ntransfer-encoding: chunked\r\n\r\n",
        "POST / HTTP/1.0\r\ntransfer-encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\ncontent-length : 5\r\n\r\n",
        "POST / HTTP/1.1\r\nx: a\r\n b\r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
    ] {
        assert!(head(bad).is_err(), "accepted {bad:?}");
    }
    let big = format!("GET / HTTP/1.1\r\nx: {}\r\n\r\n", "a".repeat(9000));
    assert_eq!(head(&big), Err(HeadError::TooLarge(8192)));
}

fn dechunk(body: &[u8]) -> Result<(Vec<u8>, usize, bool), super::chunked::ChunkError> {
    let mut out = Vec::new();
    let mut decoder = Decoder::default();
    let (used, done) = decoder.decode(body, |d| out.extend_from_slice(d))?;
    Ok((out, used, done))
}

#[test]
fn decodes_chunked_bodies_byte_by_byte_or_whole() {
    let body = b"5;ext=1\r\nhello\r\nA \r\n0123456789\r\n0\r\nx-sum: 1\r\n\r\nNEXT";
    assert_eq!(
        dechunk(body).unwrap(),
        (b"hello0123456789".to_vec(), body.len() - 4, true)
    );
    let mut decoder = Decoder::default();
    let mut out = Vec::new();
    for (i, b) in body.iter().enumerate() {
        let (used, done) = decoder
            .decode(std::slice::from_ref(b), |d| out.extend_from_slice(d))
            .unwrap();
        assert_eq!(used, usize::from(i < body.len() - 4));
        if done {
            break;
        }
    }
    assert_eq!(out, b"hello0123456789");
    assert!(decoder.is_done());
}

#[test]
fn refuses_malformed_chunks() {
    for bad in [
        &b"5\nhello\r\n0\r\n\r\n"[..],
        b"5\r\nhello\n0\r\n\r\n",
        b"5\r\nhelloX\r\n0\r\n\r\n",
        b"\r\n",
        b"-5\r\n",
        b"5 5\r\n",
        b"11111111111111111\r\n",
        b"5;a\x01b\r\n",
        b"0\r\nx-sum 1\r\n\r\n",
        b"0\r\nx-sum: 1\n\r\n",
    ] {
        assert!(
            dechunk(bad).is_err(),
            "accepted {:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn response_body_framing() {
    use super::response::{parse_response, ResponseBody};
    let framing = |text: &str, method: &str| {
        parse_response(text.as_bytes(), 8192, method, false)
            .unwrap()
            .map(|h| (h.body, h.reusable))
    };
    let ok = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n";
    assert_eq!(framing(ok, "GET"), Some((ResponseBody::Length(5), true)));
    assert_eq!(framing(ok, "HEAD"), Some((ResponseBody::None, true)));
    let chunked = "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n";
    assert_eq!(framing(chunked, "GET"), Some((ResponseBody::Chunked, true)));
    let gzip = "HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n";
    assert_eq!(
        framing(gzip, "GET"),
        Some((ResponseBody::UntilClose, false))
    );
    let old = "HTTP/1.0 200 OK\r\n\r\n";
    assert_eq!(framing(old, "GET"), Some((ResponseBody::UntilClose, false)));
    let none = "HTTP/1.1 304 Not Modified\r\ncontent-length: 9\r\n\r\n";
    assert_eq!(framing(none, "GET"), Some((ResponseBody::None, true)));
    assert_eq!(framing("HTTP/1.1 200 OK\r\n", "GET"), None);
    let both = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n";
    assert!(parse_response(both.as_bytes(), 8192, "GET", false).is_err());
    let switch = "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n";
    assert!(parse_response(switch.as_bytes(), 8192, "GET", false).is_err());
    let tunnel = parse_response(switch.as_bytes(), 8192, "GET", true)
        .unwrap()
        .unwrap();
    assert_eq!(
        (tunnel.body, tunnel.reusable),
        (ResponseBody::Tunnel, false)
    );
}
