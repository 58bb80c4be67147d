//! The routing snapshot: routes, pools and current weights, immutable once
//! built, published through one `ArcSwap`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;

use crate::config::{Config, MatchSpec, StickyKey};
use crate::observe::{RoutePoolStats, Telemetry};
use crate::upstream::{EndpointState, Pool};

use super::matching::{cookie, matches};
use super::members::{merge, Members};
pub use super::mirror::MirrorChoice;
use super::split::{bucket_of, Split};
use super::table::RouteTable;

/// A route's split as set at run time (admin API, rollout controller).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Weights {
    /// The pool that owns the upper buckets (sticky users stay here until
    /// a candidate's weight covers their bucket).
    pub stable: String,
    /// Percent per pool; sums to 100.
    pub percent: Vec<(String, u32)>,
}

impl Weights {
    /// Everything to `pool`.
    pub fn all_to(pool: &str) -> Weights {
        Weights {
            stable: pool.to_string(),
            percent: vec![(pool.to_string(), 100)],
        }
    }

    /// The pool other than stable with the largest share above 0.
    pub fn candidate(&self) -> Option<&str> {
        self.percent
            .iter()
            .filter(|(p, pct)| *p != self.stable && *pct > 0)
            .max_by_key(|(_, pct)| *pct)
            .map(|(p, _)| p.as_str())
    }

    /// Every pool named (stable included).
    pub fn pools(&self) -> impl Iterator<Item = &str> {
        self.percent
            .iter()
            .map(|(p, _)| p.as_str())
            .chain([self.stable.as_str()])
    }
}

/// Everything run-time state (admin API, rollout controller) says about a
/// route's traffic. Built from [`Weights`] alone for a manual split.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RouteTraffic {
    pub weights: Weights,
    /// Checked before the route's own rules: a blue-green preview header,
    /// an A/B match. Each sends matching requests to the named pool.
    pub rules: Vec<(MatchSpec, String)>,
    /// Endpoints in rotation for this route, per pool: the first N in
    /// config order (rolling). Pools not listed use all their endpoints.
    pub endpoint_limits: Vec<(String, usize)>,
    /// A request finding no healthy endpoint waits up to this long for
    /// one (recreate's `hold`); zero answers 503 at once.
    pub hold: Duration,
    /// The route's mirror: the file's, none, or one set at run time (a
    /// rollout's shadow stage, the admin API).
    pub mirror: MirrorChoice,
}

impl From<Weights> for RouteTraffic {
    fn from(weights: Weights) -> Self {
        RouteTraffic {
            weights,
            ..RouteTraffic::default()
        }
    }
}

/// Where a request goes: a pool, and the counters of this route×pool
/// (resolved when the snapshot is built, never looked up per request).
#[derive(Debug, Clone)]
pub struct Target {
    pub pool: Arc<Pool>,
    pub stats: Arc<RoutePoolStats>,
    /// Only the first `limit` endpoints of the pool serve this route.
    pub limit: usize,
}

/// One route as the data plane uses it.
#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub timeout: Duration,
    pub retries: u32,
    /// `Upgrade` protocols tunneled (lowercase).
    pub upgrades: Vec<String>,
    /// How long a request may wait for a healthy endpoint.
    pub hold: Duration,
    /// The weights this snapshot applies, stable last.
    pub weights: Weights,
    rules: Vec<(MatchSpec, Target)>,
    sticky: Option<StickyKey>,
    split: Split,
    /// Copies of this route's requests go here (SPEC §12).
    pub mirror: Option<Arc<crate::mirror::Mirror>>,
}

impl Route {
    /// The pools this route's rules (file and run-time) send requests to,
    /// whatever the weights say.
    pub fn rule_pools(&self) -> impl Iterator<Item = &str> {
        self.rules
            .iter()
            .map(|(_, target)| target.pool.name.as_str())
    }

    /// Every target new requests can reach (a share above 0, or a rule),
    /// with the endpoint limit it applies.
    pub fn reachable(&self) -> impl Iterator<Item = &Target> {
        self.split
            .targets()
            .chain(self.rules.iter().map(|(_, t)| t))
    }

    /// The pool a request goes to: the first matching rule, else the
    /// weighted split (by sticky bucket when the request has a sticky key).
    pub fn select(&self, parts: &Parts) -> Option<&Target> {
        if let Some((_, target)) = self.rules.iter().find(|(m, _)| matches(m, parts)) {
            return Some(target);
        }
        let key = match &self.sticky {
            Some(StickyKey::Header(name)) => parts.headers.get(name).map(|v| v.as_bytes()),
            Some(StickyKey::Cookie(name)) => cookie(&parts.headers, name).map(str::as_bytes),
            None => None,
        };
        match key {
            Some(key) => self.split.pick_bucket(bucket_of(key)),
            None => self.split.pick_random(),
        }
    }
}

/// Everything a request needs to be routed, built at once.
#[derive(Debug)]
pub struct Snapshot {
    pub config: Arc<Config>,
    pub routes: Vec<Arc<Route>>,
    pub pools: Vec<Arc<Pool>>,
    table: RouteTable,
}

impl Snapshot {
    /// Builds a snapshot from a validated config and the run-time weight
    /// overrides. Endpoint state (health, warm connections) is carried over
    /// from `previous` for endpoints that did not change.
    pub fn build(
        config: Arc<Config>,
        overrides: &HashMap<String, RouteTraffic>,
        previous: Option<&Snapshot>,
        telemetry: &Telemetry,
    ) -> Snapshot {
        Snapshot::build_with(config, overrides, &Members::new(), previous, telemetry)
    }

    /// [`Snapshot::build`] with each pool's run-time endpoints (DNS, admin
    /// API, maintenance) added to the file's.
    pub fn build_with(
        config: Arc<Config>,
        overrides: &HashMap<String, RouteTraffic>,
        members: &Members,
        previous: Option<&Snapshot>,
        telemetry: &Telemetry,
    ) -> Snapshot {
        let pools: Vec<Arc<Pool>> = config
            .pools
            .iter()
            .map(|spec| {
                let old = previous.and_then(|p| p.pool(&spec.name));
                let old_spec =
                    old.and_then(|_| previous?.config.pools.iter().find(|p| p.name == spec.name));
                let same_settings = old_spec.is_some_and(|o| {
                    o.connect_timeout == spec.connect_timeout && o.idle_timeout == spec.idle_timeout
                });
                let members = merge(spec, members.get(&spec.name));
                Arc::new(Pool::new(spec, &members, |authority| {
                    old?.endpoint(authority).map(|e| (e.clone(), same_settings))
                }))
            })
            .collect();
        let by_name: HashMap<&str, &Arc<Pool>> =
            pools.iter().map(|p| (p.name.as_str(), p)).collect();

        let mut table = RouteTable::default();
        let mut routes = Vec::with_capacity(config.routes.len());
        for (index, spec) in config.routes.iter().enumerate() {
            let traffic = overrides.get(&spec.name).cloned().unwrap_or_else(|| {
                RouteTraffic::from(Weights {
                    stable: spec.pool.clone(),
                    percent: spec
                        .weights
                        .clone()
                        .unwrap_or_else(|| vec![(spec.pool.clone(), 100)]),
                })
            });
            let weights = ordered(traffic.weights);
            let target = |name: &str| {
                by_name.get(name).map(|pool| Target {
                    pool: (*pool).clone(),
                    stats: telemetry.stats(&spec.name, name, pool.version.as_deref().unwrap_or("")),
                    limit: traffic
                        .endpoint_limits
                        .iter()
                        .find(|(pool, _)| pool == name)
                        .map_or(usize::MAX, |(_, limit)| *limit),
                })
            };
            let resolved: Vec<(Target, u32)> = weights
                .percent
                .iter()
                .filter_map(|(name, w)| target(name).map(|t| (t, *w)))
                .collect();
            let run_time_rules = traffic.rules.iter().map(|(m, pool)| (m, pool.as_str()));
            let file_rules = spec.rules.iter().map(|r| (&r.matches, r.pool.as_str()));
            let rules = run_time_rules
                .chain(file_rules)
                .filter_map(|(m, pool)| target(pool).map(|t| (m.clone(), t)))
                .collect();
            table.insert(spec.host.as_ref(), &spec.path_prefix, index);
            let mirror =
                super::mirror::resolve(spec, &weights.stable, &traffic.mirror, &by_name, telemetry);
            routes.push(Arc::new(Route {
                name: spec.name.clone(),
                timeout: spec.timeout,
                retries: spec.retries,
                upgrades: spec.upgrades.clone(),
                hold: traffic.hold,
                split: Split::new(&resolved),
                weights,
                rules,
                sticky: spec.sticky.clone(),
                mirror,
            }));
        }
        Snapshot {
            config,
            routes,
            pools,
            table,
        }
    }

    /// The route for a request's host (lowercase, no port) and path.
    pub fn route(&self, host: Option<&str>, path: &str) -> Option<&Arc<Route>> {
        self.table.lookup(host, path).map(|i| &self.routes[i])
    }

    pub fn route_named(&self, name: &str) -> Option<&Arc<Route>> {
        self.routes.iter().find(|r| r.name == name)
    }

    pub fn pool(&self, name: &str) -> Option<&Arc<Pool>> {
        self.pools.iter().find(|p| p.name == name)
    }

    /// Every endpoint new requests can reach: of a pool with a share above
    /// 0 or a rule, within the route's endpoint limit (may repeat).
    pub fn reachable_endpoints(&self) -> impl Iterator<Item = &Arc<EndpointState>> {
        self.routes
            .iter()
            .flat_map(|r| r.reachable())
            .flat_map(|t| t.pool.endpoints.iter().take(t.limit))
    }

    /// Endpoints this snapshot sends traffic to are not cut (a drained
    /// pool brought back), before any request can reach them.
    pub(super) fn readmit(&self) {
        self.reachable_endpoints().for_each(|e| e.flight().serve());
    }
}

/// Puts the stable pool last (it takes the upper buckets) and drops
/// duplicate names.
fn ordered(mut weights: Weights) -> Weights {
    let mut seen = Vec::new();
    weights.percent.retain(|(name, _)| {
        let fresh = !seen.contains(name);
        seen.push(name.clone());
        fresh
    });
    let stable = weights.stable.clone();
    weights.percent.sort_by_key(|(name, _)| *name == stable);
    if !weights.percent.iter().any(|(name, _)| *name == stable) {
        weights.percent.push((stable, 0));
    }
    weights
}
