//! Asking DNS with `hickory-resolver`: the resolver (the system's
//! configuration, or `[proxy] resolvers`), one round of A/AAAA or SRV
//! lookups for a pool, and what each answer means ([`Outcome`]).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{LookupIpStrategy, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{ResolveError, Resolver, TokioResolver};

use crate::config::{DnsQuery, Endpoint};

use super::hold::{Answer, Outcome};

/// How long one query waits for a server, and how many times it is sent.
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
const ATTEMPTS: usize = 2;

/// A resolver asking `servers` (UDP), or the system's servers when empty.
pub fn resolver(servers: &[SocketAddr]) -> Result<TokioResolver, String> {
    let mut builder = if servers.is_empty() {
        Resolver::builder_tokio().map_err(|e| format!("reading the system's DNS config: {e}"))?
    } else {
        let mut config = ResolverConfig::new();
        for addr in servers {
            config.add_name_server(NameServerConfig::new(*addr, Protocol::Udp));
        }
        Resolver::builder_with_config(config, TokioConnectionProvider::default())
    };
    let options: &mut ResolverOpts = builder.options_mut();
    options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    options.timeout = QUERY_TIMEOUT;
    options.attempts = ATTEMPTS;
    Ok(builder.build())
}

/// One round: every address `query` names now, with the shortest TTL of
/// the records that said so.
pub async fn lookup(resolver: &TokioResolver, query: &DnsQuery) -> Outcome {
    // veer decides when to ask again; a cached answer would hide changes.
    resolver.clear_cache();
    let result = match query {
        DnsQuery::Host { name, port } => addresses(resolver, name, *port, 1).await,
        DnsQuery::Srv { name } => services(resolver, name).await,
    };
    match result {
        Ok((answer, _)) if answer.is_empty() => Outcome::Empty("no usable records".into()),
        Ok((answer, ttl)) => Outcome::Records(answer, ttl),
        Err(outcome) => outcome,
    }
}

type Found = Result<(Answer, Duration), Outcome>;

async fn addresses(resolver: &TokioResolver, name: &str, port: u16, weight: u32) -> Found {
    let found = resolver
        .lookup_ip(name)
        .await
        .map_err(|e| classify(name, e))?;
    let ttl = found
        .valid_until()
        .saturating_duration_since(std::time::Instant::now());
    let mut ips: Vec<IpAddr> = found.iter().collect();
    ips.sort();
    ips.dedup();
    let answer = ips.into_iter().map(|ip| (endpoint(ip, port), weight));
    Ok((answer.collect(), ttl))
}

/// The targets of the SRV records with the lowest priority, each at its
/// port with its weight (0 counts as 1).
async fn services(resolver: &TokioResolver, name: &str) -> Found {
    let found = resolver
        .srv_lookup(name)
        .await
        .map_err(|e| classify(name, e))?;
    let mut ttl = found
        .as_lookup()
        .valid_until()
        .saturating_duration_since(std::time::Instant::now());
    let records: Vec<_> = found.iter().cloned().collect();
    let Some(priority) = records.iter().map(|r| r.priority()).min() else {
        return Ok((Vec::new(), ttl));
    };
    let mut answer: Answer = Vec::new();
    for record in records.iter().filter(|r| r.priority() == priority) {
        let target = record.target().to_utf8();
        let weight = u32::from(record.weight()).max(1);
        match addresses(resolver, &target, record.port(), weight).await {
            Ok((found, t)) => {
                ttl = ttl.min(t);
                answer.extend(found);
            }
            // A target without addresses is skipped; a failing one fails
            // the round (the last good set stays).
            Err(Outcome::Empty(_)) => continue,
            Err(failed) => return Err(failed),
        }
    }
    answer.sort_by(|a, b| a.0.authority.cmp(&b.0.authority));
    answer.dedup_by(|a, b| a.0 == b.0);
    Ok((answer, ttl))
}

/// NXDOMAIN and "no records" say the name has nothing; everything else
/// (SERVFAIL, REFUSED, timeouts, no server) says DNS is unwell.
fn classify(name: &str, e: ResolveError) -> Outcome {
    if let Some(ProtoErrorKind::NoRecordsFound { response_code, .. }) = e.proto().map(|p| p.kind())
    {
        match *response_code {
            ResponseCode::NXDomain => return Outcome::Empty(format!("{name}: NXDOMAIN")),
            ResponseCode::NoError => return Outcome::Empty(format!("{name}: no records")),
            ResponseCode::ServFail => return Outcome::Failed(format!("{name}: SERVFAIL")),
            ResponseCode::Refused => return Outcome::Failed(format!("{name}: REFUSED")),
            code => return Outcome::Failed(format!("{name}: {code}")),
        }
    }
    let why = e.proto().map_or_else(|| e.to_string(), |p| p.to_string());
    Outcome::Failed(format!("{name}: {why}"))
}

fn endpoint(ip: IpAddr, port: u16) -> Endpoint {
    Endpoint {
        authority: SocketAddr::new(ip, port).to_string(),
        host: ip.to_string(),
        port,
        tls: false,
    }
}
