//! TLS termination: HTTP/1.1 and h2 by ALPN, certificates by SNI, mTLS,
//! failed handshakes counted without stalling others, certificate hot
//! swap (a bad new one rejected, the old one kept).

use std::time::Duration;

use crate::support::admin::{raw_get, until, TempDir, Veer};
use crate::support::tls::{connector, get_over, open, peer_leaf, Issued, Pki};
use crate::support::{temp_dir, Proxy, Upstream};
use rcgen::{PKCS_ECDSA_P256_SHA256, PKCS_ECDSA_P384_SHA384, PKCS_ED25519};
use tokio::io::AsyncWriteExt;

const DEADLINE: Duration = Duration::from_secs(5);

fn der(issued: &Issued) -> Vec<u8> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    CertificateDer::from_pem_file(&issued.cert)
        .unwrap()
        .to_vec()
}

/// A config with one TLS listener (`tls` is its TOML table body) and
/// one pool at `upstream`.
fn tls_config(upstream: std::net::SocketAddr, tls: &str) -> String {
    format!(
        "[[listener]]\nname = \"public\"\nlisten = \"127.0.0.1:0\"\n{tls}\n\
         [[pool]]\nname = \"blue\"\nendpoints = [\"{upstream}\"]\n\
         [[route]]\nname = \"app\"\npool = \"blue\"\n"
    )
}

fn two_certs(a: &Issued, b: &Issued) -> String {
    format!(
        "[listener.tls]\nhandshake_timeout = \"300ms\"\n\
         [[listener.tls.cert]]\nnames = [\"a.test\"]\ncert = {:?}\nkey = {:?}\n\
         [[listener.tls.cert]]\nnames = [\"*.b.test\"]\ncert = {:?}\nkey = {:?}\n",
        a.cert, a.key, b.cert, b.key
    )
}

#[tokio::test]
async fn http1_and_h2_over_tls_with_sni() {
    let dir = temp_dir("tls-sni");
    let pki = Pki::new(&dir, "test");
    let a = pki.issue("a", &["a.test"], &PKCS_ECDSA_P256_SHA256);
    let b = pki.issue("b", &["*.b.test"], &PKCS_ED25519);
    let up = Upstream::start("blue").await;
    let proxy = Proxy::start(&tls_config(up.addr, &two_certs(&a, &b))).await;

    let h1 = connector(pki.ca_der(), &[b"http/1.1"], None);
    let tls = open(&h1, proxy.addr, "a.test").await.unwrap();
    assert_eq!(
        peer_leaf(&tls).to_vec(),
        der(&a),
        "SNI a.test gets a's cert"
    );
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (status, headers, body) = get_over(tls, "a.test", "/headers").await;
    assert_eq!(
        (status, headers["x-upstream"].to_str().unwrap()),
        (200, "blue")
    );
    assert!(body.contains("x-forwarded-proto: https"), "{body}");

    let h2 = connector(pki.ca_der(), &[b"h2", b"http/1.1"], None);
    let tls = open(&h2, proxy.addr, "www.b.test").await.unwrap();
    assert_eq!(
        peer_leaf(&tls).to_vec(),
        der(&b),
        "wildcard picks b's Ed25519 cert"
    );
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (status, _, body) = get_over(tls, "www.b.test", "/headers").await;
    assert_eq!(status, 200);
    assert!(body.contains("x-forwarded-proto: https"), "{body}");

    // An unknown name gets the first certificate, which the client refuses.
    assert!(open(&h1, proxy.addr, "other.test").await.is_err());
}

#[tokio::test]
async fn mtls_accepts_known_clients_and_refuses_others() {
    let dir = temp_dir("tls-mtls");
    let pki = Pki::new(&dir, "server");
    let clients = Pki::new(&dir, "clients");
    let strangers = Pki::new(&dir, "strangers");
    let cert = pki.issue("srv", &["app.test"], &PKCS_ECDSA_P384_SHA384);
    let alice = clients.issue("alice", &["alice"], &PKCS_ECDSA_P256_SHA256);
    let mallory = strangers.issue("mallory", &["mallory"], &PKCS_ECDSA_P256_SHA256);
    let up = Upstream::start("blue").await;
    let tls = format!(
        "tls = {{ cert = {:?}, key = {:?}, client_ca = {:?} }}",
        cert.cert,
        cert.key,
        clients.ca_path("clients")
    );
    let proxy = Proxy::start(&tls_config(up.addr, &tls)).await;

    let ok = connector(pki.ca_der(), &[b"h2"], Some(&alice));
    let stream = open(&ok, proxy.addr, "app.test").await.unwrap();
    let (status, headers, _) = get_over(stream, "app.test", "/").await;
    assert_eq!(
        (status, headers["x-upstream"].to_str().unwrap()),
        (200, "blue")
    );

    // Without a certificate, or with one from another CA: no exchange.
    for client in [None, Some(&mallory)] {
        let refused = connector(pki.ca_der(), &[b"http/1.1"], client);
        let outcome = async {
            let mut stream = open(&refused, proxy.addr, "app.test").await?;
            // TLS 1.3 clients learn of the refusal on their first read.
            stream
                .write_all(b"GET / HTTP/1.1\r\nhost: app.test\r\n\r\n")
                .await?;
            let mut buf = [0u8; 64];
            let n = tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await?;
            Ok::<usize, std::io::Error>(n)
        };
        match tokio::time::timeout(DEADLINE, outcome).await.unwrap() {
            Ok(0) | Err(_) => {}
            Ok(n) => panic!("refused client read {n} bytes"),
        }
    }
    let metrics = proxy.server.as_ref().unwrap().metrics();
    assert!(
        metrics.contains("veer_tls_handshake_errors_total{listener=\"public\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn failed_handshakes_are_counted_and_stall_nothing() {
    let dir = temp_dir("tls-stall");
    let pki = Pki::new(&dir, "test");
    let a = pki.issue("a", &["a.test"], &PKCS_ECDSA_P256_SHA256);
    let b = pki.issue("b", &["x.b.test"], &PKCS_ED25519);
    let up = Upstream::start("blue").await;
    let proxy = Proxy::start(&tls_config(up.addr, &two_certs(&a, &b))).await;

    // One client that never speaks, one that speaks plain HTTP.
    let _silent = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let mut plain = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
        .await
        .unwrap();

    // Meanwhile a real client is served at once.
    let h2 = connector(pki.ca_der(), &[b"h2"], None);
    let served = async {
        let tls = open(&h2, proxy.addr, "a.test").await.unwrap();
        get_over(tls, "a.test", "/").await
    };
    let (status, _, _) = tokio::time::timeout(Duration::from_millis(250), served)
        .await
        .expect("a stalled handshake held up another client");
    assert_eq!(status, 200);

    let server = proxy.server.as_ref().unwrap();
    let line = "veer_tls_handshake_errors_total{listener=\"public\"} 2";
    until(DEADLINE, "both failures counted", || async {
        server.metrics().contains(line)
    })
    .await;
}

/// Writes `from`'s files over `to`'s by rename, the way cert-manager and
/// editors replace files.
fn swap_in(from: &Issued, to: &Issued) {
    for (src, dst) in [(&from.key, &to.key), (&from.cert, &to.cert)] {
        let tmp = dst.with_extension("tmp");
        std::fs::copy(src, &tmp).unwrap();
        std::fs::rename(&tmp, dst).unwrap();
    }
}

#[tokio::test]
async fn certificates_hot_swap_and_a_bad_one_is_rejected() {
    let dir = TempDir::new("tls-reload");
    let certs = dir.path().join("certs");
    let pki = Pki::new(&certs, "test");
    let live = pki.issue("live", &["app.test"], &PKCS_ECDSA_P256_SHA256);
    let next = pki.issue("next", &["app.test"], &PKCS_ED25519);
    let up = Upstream::start("blue").await;
    let port = crate::support::admin::free_port();
    let toml = format!(
        "[proxy]\nstate_dir = \"state\"\n[[listener]]\nname = \"public\"\nlisten = \"127.0.0.1:{port}\"\n\
         tls = {{ cert = \"certs/live.pem\", key = \"certs/live.key\" }}\n\
         [[pool]]\nname = \"blue\"\nendpoints = [\"{}\"]\n[[route]]\nname = \"app\"\npool = \"blue\"\n",
        up.addr
    );
    let veer = Veer::start(&dir, &toml, None).await;
    let client = connector(pki.ca_der(), &[b"http/1.1"], None);
    let served = || async {
        let tls = open(&client, veer.addr, "app.test").await.unwrap();
        let leaf = peer_leaf(&tls).to_vec();
        let (status, _, _) = get_over(tls, "app.test", "/").await;
        assert_eq!(status, 200);
        leaf
    };
    assert_eq!(served().await, der(&live));

    let old = der(&live);
    swap_in(&next, &live);
    let new = der(&live);
    assert_ne!(old, new);
    until(DEADLINE, "new certificate served", || async {
        served().await == new
    })
    .await;

    // A broken certificate: rejected, counted, the last good one serves.
    std::fs::write(&live.cert, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    let metrics = veer.admin_url("/metrics");
    until(DEADLINE, "bad certificate rejected", || async {
        let (_, text) = raw_get(&metrics).await.unwrap();
        text.contains("veer_tls_cert_reloads_total{result=\"error\"} 1")
    })
    .await;
    assert_eq!(served().await, new);
    veer.stop().await;
}

/// An RSA certificate (key made by `openssl`, which CI has; skipped where
/// it is missing) serves like the ECDSA and Ed25519 ones.
#[tokio::test]
async fn rsa_certificate_serves() {
    let dir = temp_dir("tls-rsa");
    let pki = Pki::new(&dir, "rsa");
    let Some(rsa) = pki.issue_rsa("rsa", &["rsa.test"]) else {
        assert!(std::env::var("CI").is_err(), "openssl is required in CI");
        eprintln!("openssl not installed: RSA not checked");
        return;
    };
    let up = Upstream::start("blue").await;
    let tls = format!(
        "[listener.tls]\n[[listener.tls.cert]]\ncert = {:?}\nkey = {:?}\n",
        rsa.cert, rsa.key
    );
    let proxy = Proxy::start(&tls_config(up.addr, &tls)).await;
    let h1 = connector(pki.ca_der(), &[b"http/1.1"], None);
    let stream = open(&h1, proxy.addr, "rsa.test").await.unwrap();
    assert_eq!(peer_leaf(&stream).to_vec(), der(&rsa));
    let (status, _, body) = get_over(stream, "rsa.test", "/").await;
    assert_eq!((status, body.as_str()), (200, "blue"));
}
