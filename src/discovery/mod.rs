//! Endpoints that follow the infrastructure (SPEC §13): a pool's `dns` or
//! `srv` re-resolved by TTL ([`run`]), and endpoints registered through
//! the admin API ([`Registrations`], persisted in `state_dir`).
//!
//! Both write a pool's run-time endpoints into the routing state
//! ([`Routing::update_members`]); the next snapshot is built as a diff of
//! the last: unchanged endpoints keep their state (health, outlier,
//! connections), new ones of a pool with `[pool.health]` wait for a
//! passing check, and the drain follower drains those that left. A DNS
//! answer that swaps old endpoints for new ones is applied
//! make-before-break: the old ones leave once the new ones pass a check. Route
//! traffic stays the controller's: nothing here touches weights.
//!
//! - `hold`: the pure rules for each DNS outcome (hold_empty, back-off).
//! - `dns`: the resolver and one round of lookups.
//! - `registrations`: the admin API's endpoints and maintenance.

mod dns;
mod hold;
mod registrations;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::DnsSpec;
use crate::routing::{DnsReport, Routing};

pub use hold::{Answer, Hold, Outcome, Step};
pub use registrations::{EndpointError, EndpointView, Registrations};

/// A pool's running discovery: what it was started with.
struct Running {
    spec: DnsSpec,
    servers: Vec<SocketAddr>,
    stop: CancellationToken,
}

/// Keeps one discovery task per pool with `dns`/`srv` in the config
/// serving now (restarted when its settings or `[proxy] resolvers`
/// change), until `shutdown`. A pool that loses its `dns` loses the
/// endpoints DNS gave it.
pub async fn run(routing: Arc<Routing>, shutdown: CancellationToken, tracker: TaskTracker) {
    let mut published = routing.subscribe();
    let mut running: HashMap<String, Running> = HashMap::new();
    loop {
        let config = routing.load().config.clone();
        let wanted: HashMap<&str, &DnsSpec> = config
            .pools
            .iter()
            .filter_map(|p| Some((p.name.as_str(), p.dns.as_ref()?)))
            .collect();
        let servers = &config.proxy.resolvers;
        let mut gone = Vec::new();
        running.retain(|pool, r| {
            let keep = wanted.get(pool.as_str()) == Some(&&r.spec) && r.servers == *servers;
            if !keep {
                r.stop.cancel();
                gone.push(pool.clone());
            }
            keep
        });
        for pool in gone.iter().filter(|p| !wanted.contains_key(p.as_str())) {
            routing.set_dns_report(pool, None);
            routing.update_members(pool, |d| d.dns.clear());
        }
        for (pool, spec) in wanted {
            if running.contains_key(pool) {
                continue;
            }
            let stop = shutdown.child_token();
            let (pool, spec) = (pool.to_string(), spec.clone());
            tracker.spawn(follow(
                routing.clone(),
                pool.clone(),
                spec.clone(),
                servers.clone(),
                stop.clone(),
            ));
            let servers = servers.clone();
            running.insert(
                pool,
                Running {
                    spec,
                    servers,
                    stop,
                },
            );
        }
        tokio::select! {
            changed = published.changed() => if changed.is_err() { break },
            () = shutdown.cancelled() => break,
        }
    }
    running.values().for_each(|r| r.stop.cancel());
}

/// How long endpoints DNS dropped stay at least while those it added
/// wait for their first passing health check (`hold_empty` when longer).
const MIN_JOIN_WAIT: Duration = Duration::from_secs(10);
/// How often the new endpoints' health is looked at meanwhile.
const JOIN_POLL: Duration = Duration::from_millis(50);

/// Applies a new DNS set to `pool`, make-before-break: when the pool has
/// `[pool.health]` and the set both adds and drops endpoints, the dropped
/// ones stay until every added one has passed a check (or `bound` has
/// passed), so a record that flips from old VMs to new ones at once never
/// leaves the pool without an endpoint in rotation. False when stopped.
async fn replace(
    routing: &Routing,
    pool: &str,
    set: Answer,
    bound: Duration,
    stop: &CancellationToken,
) -> bool {
    let old = routing.members(pool).dns;
    let checked = routing
        .load()
        .pool(pool)
        .is_some_and(|p| p.health.is_some());
    let joining: Vec<String> = set
        .iter()
        .filter(|(e, _)| !old.iter().any(|(o, _)| o == e))
        .map(|(e, _)| e.authority.clone())
        .collect();
    let leaving = old.iter().any(|(o, _)| !set.iter().any(|(e, _)| e == o));
    if checked && leaving && !joining.is_empty() {
        let mut both = set.clone();
        both.extend(
            old.into_iter()
                .filter(|(o, _)| !set.iter().any(|(e, _)| e == o)),
        );
        routing.update_members(pool, |d| d.dns = both);
        let deadline = Instant::now() + bound;
        let ready = || {
            let snapshot = routing.load();
            let Some(p) = snapshot.pool(pool) else {
                return true;
            };
            let ready = joining
                .iter()
                .all(|a| p.endpoint(a).is_none_or(|e| e.passes_checks()));
            ready
        };
        while !ready() && Instant::now() < deadline {
            tokio::select! {
                () = tokio::time::sleep(JOIN_POLL) => {}
                () = stop.cancelled() => return false,
            }
        }
        if !ready() {
            tracing::warn!(%pool, waited = ?bound, "new DNS endpoints not healthy yet; dropping the old ones anyway");
        }
    }
    routing.update_members(pool, |d| d.dns = set);
    true
}

/// Resolves `spec` for `pool` round after round until `stop`, applying
/// what [`Hold`] decides.
async fn follow(
    routing: Arc<Routing>,
    pool: String,
    spec: DnsSpec,
    servers: Vec<SocketAddr>,
    stop: CancellationToken,
) {
    let mut hold = Hold::resume(spec.clone(), routing.members(&pool).dns);
    let mut resolver = None;
    let mut report = DnsReport {
        query: spec.query.to_string(),
        endpoints: 0,
        resolved_at: None,
        error: None,
    };
    loop {
        let round = async {
            if resolver.is_none() {
                match dns::resolver(&servers) {
                    Ok(r) => resolver = Some(r),
                    Err(e) => return Outcome::Failed(e),
                }
            }
            dns::lookup(resolver.as_ref().expect("set above"), &spec.query).await
        };
        let outcome = tokio::select! {
            outcome = round => outcome,
            () = stop.cancelled() => return,
        };
        let answered = matches!(&outcome, Outcome::Records(a, _) if !a.is_empty());
        let step = hold.observe(outcome, Instant::now(), rand::random());
        if let Some(set) = step.apply {
            tracing::info!(%pool, query = %report.query, endpoints = set.len(), "DNS endpoints changed");
            report.endpoints = set.len();
            let bound = spec.hold_empty.max(MIN_JOIN_WAIT);
            if !replace(&routing, &pool, set, bound, &stop).await {
                return;
            }
        }
        if answered {
            report.resolved_at = Some(SystemTime::now());
        }
        if step.error != report.error {
            match &step.error {
                Some(e) => {
                    tracing::warn!(%pool, query = %report.query, error = %e, "DNS discovery")
                }
                None => tracing::info!(%pool, query = %report.query, "DNS discovery answers again"),
            }
            report.error = step.error;
        }
        routing.set_dns_report(&pool, Some(report.clone()));
        tokio::select! {
            () = tokio::time::sleep(step.next) => {}
            () = stop.cancelled() => return,
        }
    }
}
