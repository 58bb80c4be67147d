//! `tls` on listeners (certificates by SNI, client CA, handshake timeout)
//! and `[pool.tls]` for `https://` endpoints. Only shapes are checked
//! here; the PEM files are read by the `tls` module.

use std::time::Duration;

use toml::Spanned;

use super::address::parse_host;
use super::Check;
use crate::config::file::{CertsFile, PoolTlsFile, TlsFile};
use crate::config::model::{CertSpec, Endpoint, HostMatch, TlsSpec, UpstreamTls};

/// Default `handshake_timeout`.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl Check<'_> {
    /// A listener's `tls`; `label` is e.g. `listener "public"`.
    pub(super) fn listener_tls(&mut self, tls: &TlsFile, label: &str) -> TlsSpec {
        let key = format!("{label}.tls");
        let certs = match (tls.cert.get_ref(), &tls.key) {
            (CertsFile::Path(cert), Some(k)) => {
                let at = Spanned::new(tls.cert.span(), cert.clone());
                vec![CertSpec {
                    names: Vec::new(),
                    cert: self.file_path(&at, &format!("{key}.cert")),
                    key: self.file_path(k, &format!("{key}.key")),
                }]
            }
            (CertsFile::Path(_), None) => {
                let msg = "needs key = \"...\" beside cert (the PEM private key)";
                self.err(tls.cert.span(), format!("{key}.cert"), msg);
                Vec::new()
            }
            (CertsFile::List(list), key_beside) => {
                if let Some(k) = key_beside {
                    let msg = "with [[listener.tls.cert]] each cert has its own key";
                    self.err(k.span(), format!("{key}.key"), msg);
                }
                if list.is_empty() {
                    self.err(
                        tls.cert.span(),
                        format!("{key}.cert"),
                        "needs a certificate",
                    );
                }
                list.iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let at = format!("{key}.cert[{i}]");
                        CertSpec {
                            names: self.sni_names(&c.names, &format!("{at}.names")),
                            cert: self.file_path(&c.cert, &format!("{at}.cert")),
                            key: self.file_path(&c.key, &format!("{at}.key")),
                        }
                    })
                    .collect()
            }
        };
        TlsSpec {
            certs,
            client_ca: tls
                .client_ca
                .as_ref()
                .map(|ca| self.file_path(ca, &format!("{key}.client_ca"))),
            handshake_timeout: self.nonzero_duration(
                &tls.handshake_timeout,
                &format!("{key}.handshake_timeout"),
                HANDSHAKE_TIMEOUT,
            ),
        }
    }

    fn sni_names(
        &mut self,
        names: &Option<Spanned<Vec<Spanned<String>>>>,
        key: &str,
    ) -> Vec<String> {
        let Some(names) = names else {
            return Vec::new();
        };
        if names.get_ref().is_empty() {
            let msg = "list at least one name, or leave names out to use the certificate's";
            self.err(names.span(), key, msg);
        }
        let mut out = Vec::new();
        for name in names.get_ref() {
            match parse_host(name.get_ref()) {
                Ok(HostMatch::Exact(host)) => out.push(host),
                Ok(HostMatch::Suffix(suffix)) => out.push(format!("*{suffix}")),
                Err(msg) => self.err(name.span(), key, msg),
            }
        }
        out
    }

    /// A pool's `[pool.tls]`; only meaningful with `https://` endpoints.
    pub(super) fn pool_tls(
        &mut self,
        tls: &Option<Spanned<PoolTlsFile>>,
        endpoints: &[Endpoint],
        label: &str,
    ) -> UpstreamTls {
        let Some(tls) = tls else {
            return UpstreamTls::default();
        };
        if !endpoints.is_empty() && !endpoints.iter().any(|e| e.tls) {
            let msg = "no endpoint is written https://host:port, so [pool.tls] would not apply";
            self.err(tls.span(), format!("{label}.tls"), msg);
        }
        let file = tls.get_ref();
        let server_name =
            file.server_name
                .as_ref()
                .and_then(|name| match parse_host(name.get_ref()) {
                    Ok(HostMatch::Exact(host)) => Some(host),
                    _ => {
                        let msg = format!("{:?} is not a host name", name.get_ref());
                        self.err(name.span(), format!("{label}.tls.server_name"), msg);
                        None
                    }
                });
        UpstreamTls {
            ca: file
                .ca
                .as_ref()
                .map(|ca| self.file_path(ca, &format!("{label}.tls.ca"))),
            server_name,
            h2: file.h2.unwrap_or(false),
        }
    }
}
