//! `[cluster]`, validated: the fleet's etcd settings (SPEC §11).

use std::path::PathBuf;
use std::time::Duration;

/// `[cluster]` (SPEC §11).
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSpec {
    /// `http://host:port` of each etcd member.
    pub etcd: Vec<String>,
    /// Every key lives under it (no trailing slash).
    pub prefix: String,
    /// This replica's id; `None`: hostname and first listener address.
    pub replica: Option<String>,
    pub lease_ttl: Duration,
    /// TLS to etcd (`https://` endpoints).
    pub tls: Option<ClusterTls>,
}

/// `[cluster] ca`, `cert`, `key`: PEM files, read at each connection.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterTls {
    /// The CA etcd's certificate must chain to.
    pub ca: PathBuf,
    /// A client certificate and its key, for etcd's `--client-cert-auth`.
    pub identity: Option<(PathBuf, PathBuf)>,
}
