//! A pool's `dns` or `srv` (SPEC §13), validated: what is asked and how
//! often, and how long an empty answer is held.

use std::time::Duration;

/// A pool's `dns` or `srv` and how often it is asked again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSpec {
    pub query: DnsQuery,
    /// A record's TTL is clamped to `[min_ttl, max_ttl]` (then up to 10%
    /// jitter is added) to decide when to ask again.
    pub min_ttl: Duration,
    pub max_ttl: Duration,
    /// An empty answer or NXDOMAIN empties the pool only once it has
    /// lasted this long (one bad answer must not take a version down).
    pub hold_empty: Duration,
}

/// What a pool asks DNS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsQuery {
    /// `dns = "name:port"`: every A and AAAA record of `name`, at `port`.
    Host { name: String, port: u16 },
    /// `srv = "_service._proto.name"`: each target of the SRV records with
    /// the lowest priority, at its port, with its weight.
    Srv { name: String },
}

impl std::fmt::Display for DnsQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DnsQuery::Host { name, port } => write!(f, "{name}:{port} (A/AAAA)"),
            DnsQuery::Srv { name } => write!(f, "{name} (SRV)"),
        }
    }
}
