//! `[cluster]`: the etcd endpoints, the key prefix, this replica's id and
//! the lease TTL.

use std::time::Duration;

use toml::Spanned;

use super::Check;
use crate::config::file::ClusterFile;
use crate::config::model::{ClusterSpec, ClusterTls};

impl Check<'_> {
    pub(super) fn cluster(&mut self, c: &Spanned<ClusterFile>) -> ClusterSpec {
        let file = c.get_ref();
        if file.etcd.is_empty() {
            self.err(
                c.span(),
                "cluster.etcd",
                "at least one etcd endpoint, e.g. \"http://127.0.0.1:2379\"",
            );
        }
        let tls_wanted = file
            .etcd
            .iter()
            .any(|u| u.get_ref().starts_with("https://"));
        let etcd = file
            .etcd
            .iter()
            .filter_map(|url| {
                let text = url.get_ref();
                let rest = text
                    .strip_prefix("http://")
                    .or(text.strip_prefix("https://"));
                if text.starts_with("https://") != tls_wanted {
                    let msg = "all endpoints http:// or all https://";
                    self.err(url.span(), "cluster.etcd", msg);
                }
                match rest.map(|r| r.parse::<std::net::SocketAddr>().is_ok() || r.contains(':')) {
                    Some(true) => Some(text.clone()),
                    _ => {
                        let msg =
                            format!("{text:?}: expected http://host:port or https://host:port");
                        self.err(url.span(), "cluster.etcd", msg);
                        None
                    }
                }
            })
            .collect();
        let ca = file.ca.as_ref().map(|p| self.file_path(p, "cluster.ca"));
        let cert = file
            .cert
            .as_ref()
            .map(|p| self.file_path(p, "cluster.cert"));
        let key = file.key.as_ref().map(|p| self.file_path(p, "cluster.key"));
        if cert.is_some() != key.is_some() {
            let at = file
                .cert
                .as_ref()
                .or(file.key.as_ref())
                .expect("one is set");
            self.err(at.span(), "cluster.cert", "cert and key go together");
        }
        let tls = match (tls_wanted, ca) {
            (true, Some(ca)) => Some(ClusterTls {
                ca,
                identity: cert.zip(key),
            }),
            (true, None) => {
                self.err(
                    c.span(),
                    "cluster.ca",
                    "https:// endpoints need ca (the CA etcd's certificate chains to)",
                );
                None
            }
            (false, _) => {
                if let Some(at) = file.ca.as_ref().or(file.cert.as_ref()) {
                    self.err(
                        at.span(),
                        "cluster.ca",
                        "ca, cert and key are for https:// endpoints",
                    );
                }
                None
            }
        };
        let prefix = match &file.prefix {
            Some(p) if !p.get_ref().starts_with('/') || p.get_ref().len() < 2 => {
                self.err(
                    p.span(),
                    "cluster.prefix",
                    "a key prefix such as \"/veer/prod\"",
                );
                "/veer".to_string()
            }
            Some(p) => p.get_ref().trim_end_matches('/').to_string(),
            None => "/veer".to_string(),
        };
        let replica = file.replica.as_ref().and_then(|r| {
            let id = r.get_ref();
            let ok = !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
            if !ok {
                self.err(
                    r.span(),
                    "cluster.replica",
                    "letters, digits and - _ . : only",
                );
            }
            ok.then(|| id.clone())
        });
        let lease_ttl =
            self.nonzero_duration(&file.lease_ttl, "cluster.lease_ttl", Duration::from_secs(5));
        if lease_ttl < Duration::from_secs(1) {
            if let Some(at) = &file.lease_ttl {
                self.err(
                    at.span(),
                    "cluster.lease_ttl",
                    "at least 1s (etcd leases count whole seconds)",
                );
            }
        }
        ClusterSpec {
            etcd,
            prefix,
            replica,
            lease_ttl,
            tls,
        }
    }
}
