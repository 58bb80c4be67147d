//! TLS with rustls (the `ring` provider): termination on listeners and
//! connections to `https://` upstreams.
//!
//! - [`pem`]: reading certificate chains, keys and CA bundles.
//! - [`sni`]: picking a listener certificate by the client's SNI.
//! - [`listener`]: [`ServerTls`], a listener's live rustls config
//!   (swapped whole on reload) and the handshake with its timeout.
//! - [`reload`]: the directories whose changes reload certificates.
//! - [`upstream`]: [`UpstreamConnector`], TLS (and h2 by ALPN) to upstreams.
//!
//! Both sides speak TLS 1.3 and 1.2 with the provider's suites only
//! (ECDHE with AES-GCM or ChaCha20-Poly1305: no CBC, no RSA key exchange).

pub mod listener;
pub mod pem;
pub mod reload;
pub mod sni;
pub mod upstream;

use std::path::PathBuf;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;

pub use listener::ServerTls;
pub use upstream::UpstreamConnector;

use crate::config::Config;

/// Why TLS material could not be used. The old material keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file missing, unreadable or without the expected item.
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    /// rustls refused the material (key does not match certificate, ...).
    #[error("{what}: {source}")]
    Rejected {
        what: String,
        #[source]
        source: rustls::Error,
    },
    #[error("{0}")]
    Verifier(String),
}

/// The protocol versions veer speaks, newest first.
pub(crate) static VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The crypto provider, built once.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: std::sync::OnceLock<Arc<CryptoProvider>> = std::sync::OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// Reads every certificate, key and CA file `config` names, so that
/// `veer run`/`veer check` and reloads fail before serving bad material.
pub fn preflight(config: &Config) -> Result<(), TlsError> {
    for listener in &config.listeners {
        if let Some(spec) = &listener.tls {
            listener::build(spec).map_err(|e| in_listener(&listener.name, e))?;
        }
    }
    for pool in &config.pools {
        if let Some(endpoint) = pool.endpoints.iter().find(|e| e.tls) {
            UpstreamConnector::new(endpoint, &pool.tls).map_err(|e| match e {
                TlsError::File { path, message } => TlsError::File {
                    path,
                    message: format!("pool {:?}: {message}", pool.name),
                },
                other => other,
            })?;
        }
    }
    Ok(())
}

fn in_listener(name: &str, e: TlsError) -> TlsError {
    match e {
        TlsError::File { path, message } => TlsError::File {
            path,
            message: format!("listener {name:?}: {message}"),
        },
        TlsError::Rejected { what, source } => TlsError::Rejected {
            what: format!("listener {name:?}: {what}"),
            source,
        },
        TlsError::Verifier(m) => TlsError::Verifier(format!("listener {name:?}: {m}")),
    }
}
