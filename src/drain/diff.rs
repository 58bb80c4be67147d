//! Which pools and endpoints stopped receiving traffic between two routing
//! snapshots. Pure: two snapshots in, a list out.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::routing::Snapshot;
use crate::upstream::EndpointState;

use super::DrainReason;

/// Something that left traffic and must be drained.
#[derive(Debug)]
pub struct Leaving {
    pub pool: String,
    /// `None`: the whole pool (weight to 0, or removed); `Some`: one
    /// endpoint removed from (or replaced in) a pool that still serves.
    pub endpoint: Option<String>,
    pub endpoints: Vec<Arc<EndpointState>>,
    pub reason: DrainReason,
    /// The routes that sent it traffic (whose `drained` webhooks apply).
    pub routes: Vec<String>,
}

/// The routes of `snapshot` that send new requests to `pool`.
pub fn routes_to(snapshot: &Snapshot, pool: &str) -> Vec<String> {
    snapshot
        .routes
        .iter()
        .filter(|r| r.reachable().any(|t| t.pool.name == pool))
        .map(|r| r.name.clone())
        .collect()
}

/// Whether what a drain names still gets no new requests in `snapshot`:
/// the pool serves nowhere, or the endpoint is out of reach.
pub fn still_leaving(snapshot: &Snapshot, pool: &str, endpoint: Option<&EndpointState>) -> bool {
    match endpoint {
        None => !serving(snapshot).contains(pool),
        Some(endpoint) => !snapshot
            .reachable_endpoints()
            .any(|e| std::ptr::eq(Arc::as_ptr(e), endpoint)),
    }
}

/// Pools that new requests can reach: a weight above 0 in some route, or
/// the target of some rule.
pub fn serving(snapshot: &Snapshot) -> HashSet<&str> {
    let mut out = HashSet::new();
    for route in &snapshot.routes {
        for (pool, weight) in &route.weights.percent {
            if *weight > 0 {
                out.insert(pool.as_str());
            }
        }
    }
    for route in &snapshot.routes {
        out.extend(route.rule_pools());
    }
    out
}

/// How many of each serving pool's endpoints (the first N) new requests
/// can reach: a rolling rollout narrows this per route.
fn reach(snapshot: &Snapshot) -> HashMap<&str, usize> {
    let mut out: HashMap<&str, usize> = HashMap::new();
    for target in snapshot.routes.iter().flat_map(|r| r.reachable()) {
        let limit = out.entry(target.pool.name.as_str()).or_default();
        *limit = (*limit).max(target.limit);
    }
    out
}

/// What serves in `old` and no longer does in `new`.
pub fn leaving(old: &Snapshot, new: &Snapshot) -> Vec<Leaving> {
    let (was, is) = (serving(old), serving(new));
    let (reached, reaches) = (reach(old), reach(new));
    let mut out = Vec::new();
    for pool in &old.pools {
        let name = pool.name.as_str();
        if !was.contains(name) {
            continue;
        }
        let routes = || routes_to(old, name);
        let Some(next) = new.pool(name).filter(|_| is.contains(name)) else {
            let reason = match new.pool(name) {
                Some(_) => DrainReason::Shift,
                None => DrainReason::Removed,
            };
            out.push(Leaving {
                pool: pool.name.clone(),
                endpoint: None,
                endpoints: pool.endpoints.clone(),
                reason,
                routes: routes(),
            });
            continue;
        };
        let old_limit = reached.get(name).copied().unwrap_or(usize::MAX);
        let new_limit = reaches.get(name).copied().unwrap_or(usize::MAX);
        for endpoint in pool.endpoints.iter().take(old_limit) {
            let still = next
                .endpoints
                .iter()
                .take(new_limit)
                .any(|e| Arc::ptr_eq(e, endpoint));
            if !still {
                let kept = next.endpoints.iter().any(|e| Arc::ptr_eq(e, endpoint));
                let parked = next.parked.iter().any(|(e, _)| Arc::ptr_eq(e, endpoint));
                out.push(Leaving {
                    pool: pool.name.clone(),
                    endpoint: Some(endpoint.spec.authority.clone()),
                    endpoints: vec![endpoint.clone()],
                    reason: match (kept, parked) {
                        (true, _) => DrainReason::Shift,
                        (false, true) => DrainReason::Maintenance,
                        (false, false) => DrainReason::Removed,
                    },
                    routes: routes(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::observe::Telemetry;
    use crate::routing::{RouteTraffic, Weights};

    fn config(blue: &str) -> Arc<crate::config::Config> {
        let text = format!(
            "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:1\"\n\
             [[pool]]\nname = \"blue\"\nendpoints = [{blue}]\n\
             [[pool]]\nname = \"green\"\nendpoints = [\"127.0.0.1:3\"]\n\
             [[pool]]\nname = \"beta\"\nendpoints = [\"127.0.0.1:4\"]\n\
             [[route]]\nname = \"r\"\npool = \"blue\"\n\
             [[route.rule]]\nheaders = {{ x = \"1\" }}\npool = \"beta\"\n"
        );
        Arc::new(crate::config::parse(&text, Path::new("t.toml")).unwrap())
    }

    fn weights(blue: u32) -> HashMap<String, RouteTraffic> {
        let percent = vec![("blue".into(), blue), ("green".into(), 100 - blue)];
        let stable = "blue".to_string();
        let traffic = RouteTraffic::from(Weights { stable, percent });
        HashMap::from([("r".to_string(), traffic)])
    }

    fn names(list: &[Leaving]) -> Vec<(String, Option<String>)> {
        list.iter()
            .map(|l| (l.pool.clone(), l.endpoint.clone()))
            .collect()
    }

    #[test]
    fn a_pool_shifted_to_zero_leaves_and_rule_targets_stay() {
        let c = config("\"127.0.0.1:2\"");
        let r = Telemetry::default();
        let before = Snapshot::build(c.clone(), &weights(100), None, &r);
        let after = Snapshot::build(c.clone(), &weights(0), Some(&before), &r);
        assert_eq!(names(&leaving(&before, &after)), [("blue".into(), None)]);
        assert!(leaving(&after, &after).is_empty());
        assert_eq!(names(&leaving(&after, &before)), [("green".into(), None)]);
    }

    #[test]
    fn a_removed_endpoint_leaves_alone() {
        let (r, none) = (Telemetry::default(), HashMap::new());
        let before = Snapshot::build(config("\"127.0.0.1:2\", \"127.0.0.1:5\""), &none, None, &r);
        let after = Snapshot::build(config("\"127.0.0.1:2\""), &none, Some(&before), &r);
        assert_eq!(
            names(&leaving(&before, &after)),
            [("blue".into(), Some("127.0.0.1:5".into()))]
        );
    }

    #[test]
    fn endpoints_a_rolling_limit_drops_leave() {
        let c = config("\"127.0.0.1:2\", \"127.0.0.1:5\"");
        let r = Telemetry::default();
        let limited = |n: usize| {
            let mut w = weights(100);
            w.get_mut("r").unwrap().endpoint_limits = vec![("blue".into(), n)];
            w
        };
        let before = Snapshot::build(c.clone(), &limited(2), None, &r);
        let after = Snapshot::build(c.clone(), &limited(1), Some(&before), &r);
        assert_eq!(
            names(&leaving(&before, &after)),
            [("blue".into(), Some("127.0.0.1:5".into()))]
        );
        assert!(
            leaving(&after, &before).is_empty(),
            "an endpoint joining is no drain"
        );
    }
}
