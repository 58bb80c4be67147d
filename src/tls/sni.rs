//! Choosing a listener's certificate by the name the client asks for.
//!
//! Order: a certificate listing the exact name, then one listing a
//! matching `*.` wildcard, then one without `names` whose own subject
//! names cover it, else the first certificate (also for clients that send
//! no SNI, e.g. those connecting by IP).

use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::{DnsName, ServerName};

/// One certificate and the names it was configured for.
#[derive(Debug)]
pub struct SniCert {
    /// Lowercase; `*.example.com` for a wildcard. Empty: ask the cert.
    pub names: Vec<String>,
    pub key: Arc<CertifiedKey>,
}

/// A listener's certificates. Never empty.
#[derive(Debug)]
pub struct SniResolver {
    certs: Vec<SniCert>,
}

impl SniResolver {
    pub fn new(certs: Vec<SniCert>) -> SniResolver {
        assert!(!certs.is_empty(), "a TLS listener has a certificate");
        SniResolver { certs }
    }

    /// The certificate served for `name` (`None`: no SNI).
    pub fn pick(&self, name: Option<&str>) -> &Arc<CertifiedKey> {
        let first = &self.certs[0].key;
        let Some(name) = name.map(str::to_ascii_lowercase) else {
            return first;
        };
        if let Some(c) = self.certs.iter().find(|c| c.names.contains(&name)) {
            return &c.key;
        }
        if let Some((_, parent)) = name.split_once('.') {
            let wildcard = format!("*.{parent}");
            if let Some(c) = self.certs.iter().find(|c| c.names.contains(&wildcard)) {
                return &c.key;
            }
        }
        let Ok(dns) = DnsName::try_from(name.as_str()) else {
            return first;
        };
        let server_name = ServerName::DnsName(dns);
        self.certs
            .iter()
            .filter(|c| c.names.is_empty())
            .find(|c| covers(&c.key, &server_name))
            .map_or(first, |c| &c.key)
    }
}

/// Whether the leaf certificate is valid for `name` (its SANs).
fn covers(key: &CertifiedKey, name: &ServerName<'_>) -> bool {
    let Some(leaf) = key.cert.first() else {
        return false;
    };
    webpki::EndEntityCert::try_from(leaf)
        .and_then(|cert| cert.verify_is_valid_for_subject_name(name))
        .is_ok()
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.pick(hello.server_name()).clone())
    }
}
