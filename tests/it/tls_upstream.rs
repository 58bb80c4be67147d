//! TLS to upstreams: `https://` endpoints verified against a private CA,
//! SNI from the host or `server_name`, a wrong CA refused, and a
//! gRPC-style h2 exchange with trailers through TLS on both sides.

use crate::support::tls::{connector, get_over, https_upstream, open, Pki};
use crate::support::{get, temp_dir, Proxy};
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::PKCS_ECDSA_P256_SHA256;

fn config(listener_tls: &str, endpoint: &str, pool_tls: &str) -> String {
    format!(
        "[[listener]]\nname = \"public\"\nlisten = \"127.0.0.1:0\"\n{listener_tls}\n\
         [[pool]]\nname = \"api\"\nendpoints = [\"{endpoint}\"]\n{pool_tls}\n\
         [[route]]\nname = \"app\"\npool = \"api\"\n"
    )
}

#[tokio::test]
async fn https_upstream_verified_against_a_private_ca() {
    let dir = temp_dir("tls-up");
    let pki = Pki::new(&dir, "upstream");
    let cert = pki.issue(
        "api",
        &["localhost", "api.internal"],
        &PKCS_ECDSA_P256_SHA256,
    );
    let (addr, _task) = https_upstream("api", &cert, false).await;
    let ca = pki.ca_path("upstream");

    // SNI and verification from the endpoint's host name.
    let endpoint = format!("https://localhost:{}", addr.port());
    let pool_tls = format!("[pool.tls]\nca = {ca:?}\n");
    let proxy = Proxy::start(&config("", &endpoint, &pool_tls)).await;
    let (status, headers, body) = get(&proxy.url("/"), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-upstream"], "api");
    assert_eq!(headers["x-protocol"], "HTTP/1.1");
    assert_eq!(headers["x-forwarded-proto-seen"], "http");

    // An IP endpoint verified as `server_name`.
    let endpoint = format!("https://{addr}");
    let pool_tls = format!("[pool.tls]\nca = {ca:?}\nserver_name = \"api.internal\"\n");
    let proxy = Proxy::start(&config("", &endpoint, &pool_tls)).await;
    let (status, headers, _) = get(&proxy.url("/"), &[]).await;
    assert_eq!(
        (status.as_u16(), headers["x-upstream"].to_str().unwrap()),
        (200, "api")
    );

    // Trusting another CA (and so also the system roots): refused, 502.
    let other = Pki::new(&dir, "other");
    let pool_tls = format!("[pool.tls]\nca = {:?}\n", other.ca_path("other"));
    let endpoint = format!("https://localhost:{}", addr.port());
    let proxy = Proxy::start(&config("", &endpoint, &pool_tls)).await;
    let (status, _, _) = get(&proxy.url("/"), &[]).await;
    assert_eq!(status, 502);
}

#[tokio::test]
async fn grpc_style_h2_with_trailers_through_tls_end_to_end() {
    let dir = temp_dir("tls-grpc");
    let pki = Pki::new(&dir, "test");
    let front = pki.issue("front", &["grpc.test"], &PKCS_ECDSA_P256_SHA256);
    let back = pki.issue("back", &["localhost"], &PKCS_ECDSA_P256_SHA256);
    let (addr, _task) = https_upstream("grpc", &back, true).await;
    let listener_tls = format!("tls = {{ cert = {:?}, key = {:?} }}", front.cert, front.key);
    let pool_tls = format!("[pool.tls]\nca = {:?}\nh2 = true\n", pki.ca_path("test"));
    let endpoint = format!("https://localhost:{}", addr.port());
    let proxy = Proxy::start(&config(&listener_tls, &endpoint, &pool_tls)).await;

    let client = connector(pki.ca_der(), &[b"h2"], None);
    let tls = open(&client, proxy.addr, "grpc.test").await.unwrap();
    let (mut tx, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    for i in 0..3 {
        // A gRPC frame: not compressed, 5-byte length, payload.
        let payload = format!("hello {i}");
        let mut frame = vec![0u8];
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(payload.as_bytes());
        let req = Request::post("https://grpc.test/echo.Echo/Say")
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(Bytes::from(frame.clone())))
            .unwrap();
        let resp = tx.send_request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["x-protocol"],
            "HTTP/2.0",
            "h2 to the upstream"
        );
        assert_eq!(resp.headers()["x-authority"], "grpc.test");
        let collected = resp.into_body().collect().await.unwrap();
        let trailers = collected
            .trailers()
            .cloned()
            .expect("trailers came through");
        assert_eq!(trailers["grpc-status"], "0");
        assert_eq!(trailers["grpc-message"], "te=trailers");
        assert_eq!(collected.to_bytes(), Bytes::from(frame));
    }

    // HTTP/1.1 clients reach the same h2 upstream.
    let h1 = connector(pki.ca_der(), &[b"http/1.1"], None);
    let tls = open(&h1, proxy.addr, "grpc.test").await.unwrap();
    let (status, headers, body) = get_over(tls, "grpc.test", "/").await;
    assert_eq!((status, body.as_str()), (200, "grpc"));
    assert_eq!(headers["x-protocol"], "HTTP/2.0");
    assert_eq!(headers["x-forwarded-proto-seen"], "https");
}
