//! TLS test material and clients: a private CA made with rcgen, leaf
//! certificates for listeners, upstreams and clients written as PEM files,
//! a rustls client, and an HTTPS upstream (HTTP/1.1 and h2) that echoes
//! gRPC-style trailers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SignatureAlgorithm,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::BoxBody;

/// A private CA that issues certificates into `dir`.
pub struct Pki {
    pub dir: PathBuf,
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// Paths of an issued certificate and its key.
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path, name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} CA"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(format!("{name}-ca.pem")), ca.pem()).unwrap();
        Pki {
            dir: dir.to_path_buf(),
            ca,
        }
    }

    pub fn ca_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}-ca.pem"))
    }

    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.ca.der().clone()
    }

    /// A leaf for `names` with a key of `alg`, written as `file.pem` and
    /// `file.key`.
    pub fn issue(&self, file: &str, names: &[&str], alg: &'static SignatureAlgorithm) -> Issued {
        self.issue_with(file, names, KeyPair::generate_for(alg).unwrap())
    }

    /// A leaf for `names` with an RSA 2048 key. ring cannot generate RSA
    /// keys, so `openssl` makes one; `None` when it is not installed.
    pub fn issue_rsa(&self, file: &str, names: &[&str]) -> Option<Issued> {
        let path = self.dir.join(format!("{file}.rsa-input.key"));
        let ok = std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&path)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            return None;
        }
        let pem = std::fs::read_to_string(&path).unwrap();
        let key = KeyPair::from_pem_and_sign_algo(&pem, &rcgen::PKCS_RSA_SHA256).unwrap();
        Some(self.issue_with(file, names, key))
    }

    fn issue_with(&self, file: &str, names: &[&str], key: KeyPair) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let issued = Issued {
            cert: self.dir.join(format!("{file}.pem")),
            key: self.dir.join(format!("{file}.key")),
        };
        std::fs::write(&issued.cert, cert.pem()).unwrap();
        std::fs::write(&issued.key, key.serialize_pem()).unwrap();
        issued
    }
}

/// A rustls client trusting `ca`, offering `alpn`, with an optional
/// client certificate.
pub fn connector(
    ca: CertificateDer<'static>,
    alpn: &[&[u8]],
    client: Option<&Issued>,
) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some(issued) => {
            let (chain, key) = read(issued);
            builder.with_client_auth_cert(chain, key).unwrap()
        }
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

fn read(issued: &Issued) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    use rustls::pki_types::pem::PemObject;
    let chain = CertificateDer::pem_file_iter(&issued.cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    (chain, PrivateKeyDer::from_pem_file(&issued.key).unwrap())
}

/// Opens TLS to `addr` asking for `sni`.
pub async fn open(
    connector: &TlsConnector,
    addr: SocketAddr,
    sni: &str,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.to_string()).unwrap();
    connector.connect(name, tcp).await
}

/// The leaf certificate the server presented.
pub fn peer_leaf(tls: &tokio_rustls::client::TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// One GET over an open TLS stream with HTTP/1.1 or h2 (by the ALPN the
/// server chose). Returns status, headers and body.
pub async fn get_over(
    tls: tokio_rustls::client::TlsStream<TcpStream>,
    authority: &str,
    path: &str,
) -> (u16, http::HeaderMap, String) {
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let req = Request::get(format!("https://{authority}{path}"))
        .header(http::header::HOST, authority)
        .body(super::empty())
        .unwrap();
    let resp = if h2 {
        let (mut tx, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .unwrap();
        tokio::spawn(conn);
        let mut req = req;
        req.headers_mut().remove(http::header::HOST);
        tx.send_request(req).await.unwrap()
    } else {
        let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .unwrap();
        tokio::spawn(conn);
        let (mut parts, body) = req.into_parts();
        parts.uri = path.parse().unwrap();
        tx.send_request(Request::from_parts(parts, body))
            .await
            .unwrap()
    };
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// An HTTPS upstream on 127.0.0.1:0 serving HTTP/1.1 and h2 (by ALPN):
/// it answers `name`, the protocol and the `:authority`/Host it saw in
/// headers, and echoes a request body back with a `grpc-status: 0`
/// trailer (and `grpc-message` repeating the request's `te`).
pub async fn https_upstream(
    name: &'static str,
    cert: &Issued,
    h2: bool,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let (chain, key) = read(cert);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = if h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(move |req| echo(name, req));
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (addr, task)
}

async fn echo(name: &'static str, req: Request<Incoming>) -> Result<Response<BoxBody>, Infallible> {
    let authority = req
        .uri()
        .authority()
        .map(|a| a.to_string())
        .or_else(|| {
            req.headers()
                .get("host")
                .map(|h| h.to_str().unwrap().to_string())
        })
        .unwrap_or_default();
    let te = req
        .headers()
        .get("te")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let builder = Response::builder()
        .header("x-upstream", name)
        .header("x-protocol", format!("{:?}", req.version()))
        .header("x-authority", authority)
        .header(
            "x-forwarded-proto-seen",
            req.headers()
                .get("x-forwarded-proto")
                .cloned()
                .unwrap_or(http::HeaderValue::from_static("")),
        );
    if req.method() != http::Method::POST {
        return Ok(builder.body(Full::new(Bytes::from(name)).boxed()).unwrap());
    }
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", "0".parse().unwrap());
    trailers.insert("grpc-message", format!("te={te}").parse().unwrap());
    let frames = vec![
        Ok::<_, Infallible>(Frame::data(body)),
        Ok(Frame::trailers(trailers)),
    ];
    let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
    Ok(builder
        .header("content-type", "application/grpc")
        .body(BodyExt::boxed(body))
        .unwrap())
}
