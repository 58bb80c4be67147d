//! The endpoints a pool has at run time besides its file's list: what its
//! `dns`/`srv` answered and what the admin API registered, and which
//! endpoints are in maintenance. The routing snapshot is built from the
//! config and these ([`merge`]); the discovery tasks and the admin API are
//! their writers, through [`super::Routing::update_members`].

use std::collections::{BTreeSet, HashMap};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::config::{Endpoint, PoolSpec};
use crate::upstream::{Member, Placement, Source};

/// One pool's run-time endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dynamic {
    /// The last answer DNS gave that veer applies, with weights.
    pub dns: Vec<(Endpoint, u32)>,
    /// Registered through the admin API, in registration order.
    pub api: Vec<(Endpoint, u32)>,
    /// Authorities kept out of rotation, whatever their source.
    pub maintenance: BTreeSet<String>,
}

/// Every pool's run-time endpoints, by pool name.
pub type Members = HashMap<String, Dynamic>;

/// The members of pool `spec`: the file's endpoints, then those
/// registered through the API, then DNS's. An address listed by two
/// sources is one endpoint, with the first source's weight.
pub fn merge(spec: &PoolSpec, extra: Option<&Dynamic>) -> Vec<Member> {
    let file = spec
        .endpoints
        .iter()
        .zip(spec.weights.iter().copied().chain(std::iter::repeat(1)))
        .map(|(e, w)| (e, w, Source::File));
    let (api, dns) = match extra {
        Some(d) => (d.api.as_slice(), d.dns.as_slice()),
        None => (&[][..], &[][..]),
    };
    let api = api.iter().map(|(e, w)| (e, *w, Source::Api));
    let dns = dns.iter().map(|(e, w)| (e, *w, Source::Dns));
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (endpoint, weight, source) in file.chain(api).chain(dns) {
        if !seen.insert(endpoint.authority.to_ascii_lowercase()) {
            continue;
        }
        let maintenance = extra.is_some_and(|d| d.maintenance.contains(&endpoint.authority));
        out.push(Member {
            endpoint: endpoint.clone(),
            placement: Placement { source, weight },
            maintenance,
        });
    }
    out
}

/// What a pool's DNS discovery last saw, for status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsReport {
    /// What is asked, e.g. `app.internal:8080 (A/AAAA)`.
    pub query: String,
    /// Endpoints in the last answer applied.
    pub endpoints: usize,
    /// When an answer was last applied.
    #[serde(with = "humantime_serde_opt")]
    pub resolved_at: Option<SystemTime>,
    /// The last failure (SERVFAIL, timeout, empty answer), until an
    /// answer with endpoints comes.
    pub error: Option<String>,
}

/// `Option<SystemTime>` as RFC 3339 text.
mod humantime_serde_opt {
    use std::time::SystemTime;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_some(&humantime::format_rfc3339_seconds(*t).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| humantime::parse_rfc3339(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}
