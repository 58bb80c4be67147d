//! `[cluster]`: the etcd endpoints, the key prefix, this replica's id and
//! the lease TTL.

use std::time::Duration;

use toml::Spanned;

use super::Check;
use crate::config::file::ClusterFile;
use crate::config::model::ClusterSpec;

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
        let etcd = file
            .etcd
            .iter()
            .filter_map(|url| {
                let text = url.get_ref();
                let rest = text.strip_prefix("http://");
                if text.starts_with("https://") {
                    let msg = "TLS to etcd is not supported yet; use http:// on a private network";
                    self.err(url.span(), "cluster.etcd", msg);
                    return None;
                }
                match rest.map(|r| r.parse::<std::net::SocketAddr>().is_ok() || r.contains(':')) {
                    Some(true) => Some(text.clone()),
                    _ => {
                        let msg = format!("{text:?}: expected http://host:port");
                        self.err(url.span(), "cluster.etcd", msg);
                        None
                    }
                }
            })
            .collect();
        for (value, key) in [(&file.ca, "ca"), (&file.cert, "cert"), (&file.key, "key")] {
            if let Some(value) = value {
                let msg = "TLS to etcd is not supported yet";
                self.err(value.span(), format!("cluster.{key}"), msg);
            }
        }
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
        }
    }
}
