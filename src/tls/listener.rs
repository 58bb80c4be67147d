//! A TLS listener's live configuration: its rustls `ServerConfig`, built
//! off to the side from the PEM files and swapped in whole, so a reload
//! never disturbs a handshake in progress and a bad new certificate leaves
//! the old one serving.

use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::sni::{SniCert, SniResolver};
use super::{pem, provider, TlsError, VERSIONS};
use crate::config::{ListenerSpec, TlsSpec};
use crate::observe::Telemetry;

/// What a listener's handshakes use now.
#[derive(Debug)]
pub struct Live {
    pub spec: TlsSpec,
    config: Arc<ServerConfig>,
    /// Digest of the files it was built from, to skip no-op reloads.
    digest: u64,
}

/// One TLS listener's certificates, reloadable while serving.
#[derive(Debug)]
pub struct ServerTls {
    pub listener: String,
    live: ArcSwap<Live>,
    /// `veer_tls_handshake_errors_total{listener}`.
    errors: Arc<AtomicU64>,
}

impl ServerTls {
    /// Reads the listener's certificates; `None` for a plain listener.
    pub fn for_listener(
        spec: &ListenerSpec,
        telemetry: &Telemetry,
    ) -> Result<Option<Arc<ServerTls>>, TlsError> {
        let Some(tls) = &spec.tls else {
            return Ok(None);
        };
        let live = build(tls).map_err(|e| super::in_listener(&spec.name, e))?;
        Ok(Some(Arc::new(ServerTls {
            listener: spec.name.clone(),
            live: ArcSwap::from_pointee(live),
            errors: telemetry.tls.handshake_errors(&spec.name),
        })))
    }

    pub fn spec(&self) -> TlsSpec {
        self.live.load().spec.clone()
    }

    /// Installs material built by [`build`]. Returns false when it is the
    /// same as what already serves.
    pub fn install(&self, live: Live) -> bool {
        let current = self.live.load();
        if current.digest == live.digest && current.spec == live.spec {
            return false;
        }
        self.live.store(Arc::new(live));
        true
    }

    /// Re-reads the current files (they changed on disk). On error the
    /// old certificates keep serving.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let live = build(&self.spec()).map_err(|e| super::in_listener(&self.listener, e))?;
        Ok(self.install(live))
    }

    /// Completes the server handshake within the configured timeout. A
    /// failure is counted and logged at debug level (scanners and health
    /// checkers of load balancers fail handshakes all day).
    pub async fn accept(&self, stream: TcpStream) -> Option<TlsStream<TcpStream>> {
        let (acceptor, timeout) = {
            let live = self.live.load();
            (
                TlsAcceptor::from(live.config.clone()),
                live.spec.handshake_timeout,
            )
        };
        let peer = stream.peer_addr().ok();
        match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => Some(tls),
            Ok(Err(e)) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(listener = %self.listener, ?peer, error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(listener = %self.listener, ?peer, ?timeout, "TLS handshake timed out");
                None
            }
        }
    }

    pub fn handshake_timeout(&self) -> Duration {
        self.live.load().spec.handshake_timeout
    }
}

/// Builds a listener's rustls config from its files: every chain and key
/// (the key must match its certificate), the client CA for mTLS, ALPN
/// `h2` then `http/1.1`.
pub fn build(spec: &TlsSpec) -> Result<Live, TlsError> {
    let provider = provider();
    let mut digest = std::collections::hash_map::DefaultHasher::new();
    let mut certs = Vec::new();
    for c in &spec.certs {
        let chain = pem::chain(&c.cert)?;
        let key = pem::key(&c.key)?;
        chain.hash(&mut digest);
        key.secret_der().hash(&mut digest);
        let key =
            CertifiedKey::from_der(chain, key, &provider).map_err(|source| TlsError::Rejected {
                what: format!("{} with {}", c.cert.display(), c.key.display()),
                source,
            })?;
        certs.push(SniCert {
            names: c.names.clone(),
            key: Arc::new(key),
        });
    }
    if certs.is_empty() {
        return Err(TlsError::Verifier("no certificate configured".into()));
    }
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(VERSIONS)
        .map_err(|source| TlsError::Rejected {
            what: "protocol versions".into(),
            source,
        })?;
    let builder = match &spec.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let roots = pem::roots(ca)?;
            for root in roots.roots.iter() {
                root.subject.as_ref().hash(&mut digest);
                root.subject_public_key_info.as_ref().hash(&mut digest);
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::Verifier(format!("client_ca {}: {e}", ca.display())))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(Arc::new(SniResolver::new(certs)));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Live {
        spec: spec.clone(),
        config: Arc::new(config),
        digest: digest.finish(),
    })
}
