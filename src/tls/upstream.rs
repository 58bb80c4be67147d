//! TLS to `https://` upstreams: verify against the system roots (the
//! platform bundle, else the compiled-in Mozilla roots) or the pool's
//! `ca`, SNI from the endpoint's host (or `server_name`), and `h2` offered
//! by ALPN when the pool asks for it.

use std::io;
use std::sync::{Arc, OnceLock};

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::{pem, provider, TlsError, VERSIONS};
use crate::config::{Endpoint, UpstreamTls};

/// How to open TLS to one endpoint. Cheap to clone.
#[derive(Clone)]
pub struct UpstreamConnector {
    /// ALPN as the pool says (`h2` first when enabled).
    connector: TlsConnector,
    /// ALPN `http/1.1` only: health checks speak HTTP/1.1.
    http1: TlsConnector,
    server_name: ServerName<'static>,
    /// `h2` is offered.
    pub h2: bool,
}

impl std::fmt::Debug for UpstreamConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConnector")
            .field("server_name", &self.server_name)
            .field("h2", &self.h2)
            .finish()
    }
}

impl UpstreamConnector {
    /// Reads the pool's CA (or the system roots, once per process).
    pub fn new(endpoint: &Endpoint, tls: &UpstreamTls) -> Result<UpstreamConnector, TlsError> {
        let roots = match &tls.ca {
            Some(ca) => Arc::new(pem::roots(ca)?),
            None => system_roots(),
        };
        let host = tls.server_name.as_deref().unwrap_or(&endpoint.host);
        let server_name = ServerName::try_from(host.to_owned())
            .map_err(|e| TlsError::Verifier(format!("server name {host:?}: {e}")))?;
        let config = |alpn: &[&[u8]]| -> Result<TlsConnector, TlsError> {
            let mut config = ClientConfig::builder_with_provider(provider())
                .with_protocol_versions(VERSIONS)
                .map_err(|source| TlsError::Rejected {
                    what: "protocol versions".into(),
                    source,
                })?
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Ok(TlsConnector::from(Arc::new(config)))
        };
        let http1 = config(&[b"http/1.1"])?;
        let connector = if tls.h2 {
            config(&[b"h2", b"http/1.1"])?
        } else {
            http1.clone()
        };
        Ok(UpstreamConnector {
            connector,
            http1,
            server_name,
            h2: tls.h2,
        })
    }

    /// The client handshake. Returns the stream and whether the upstream
    /// chose `h2`.
    pub async fn connect(&self, tcp: TcpStream) -> io::Result<(TlsStream<TcpStream>, bool)> {
        let tls = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        Ok((tls, h2))
    }

    /// The client handshake offering HTTP/1.1 only (health checks).
    pub async fn connect_http1(&self, tcp: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        self.http1.connect(self.server_name.clone(), tcp).await
    }
}

/// The platform's CA bundle (`/etc/ssl/certs` on Debian), read once; the
/// compiled-in Mozilla roots when it has none.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                tracing::warn!("no system CA certificates found; using the built-in Mozilla roots");
                store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            Arc::new(store)
        })
        .clone()
}
