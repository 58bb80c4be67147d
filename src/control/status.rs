//! `GET /api/v1/status`: what every route serves now and how its pools'
//! endpoints are doing. Also what `veer status` reads back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::Strategy;
use crate::observe::{ShadowSummary, Window};
use crate::rollout::{Phase, Verdict};
use crate::routing::DnsReport;
use crate::upstream::Source;

use super::Control;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub routes: Vec<RouteStatus>,
    pub pools: Vec<PoolStatus>,
    /// Config reloads since start: `{"ok": n, "error": n}`.
    pub reloads: BTreeMap<String, u64>,
    /// The fleet, with `[cluster]` (SPEC §11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterStatus>,
    /// The process answering: which one serves after an upgrade.
    #[serde(default)]
    pub process: ProcessStatus,
}

/// `"process"` of `GET /api/v1/status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessStatus {
    pub pid: u32,
    /// veer's version.
    pub version: String,
}

impl ProcessStatus {
    pub fn this() -> ProcessStatus {
        ProcessStatus {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// `"cluster"` of `GET /api/v1/status`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// This replica's id.
    pub replica: String,
    pub leader: Option<String>,
    /// Connected to etcd now.
    pub connected: bool,
    pub replicas: Vec<ReplicaStatus>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    pub id: String,
    /// Its lease is alive (listed replicas are).
    pub live: bool,
    /// The etcd revision of the last desired state it applied.
    pub generation: i64,
    /// Upstream attempts it proxied since it started (refreshed every
    /// couple of seconds).
    #[serde(default)]
    pub requests: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteStatus {
    pub name: String,
    /// SPEC §3 phases; `idle` when nothing is in progress.
    pub phase: Phase,
    /// The pool the config file asks this route to serve.
    pub pool: String,
    pub stable: String,
    pub candidate: Option<String>,
    /// Percent per pool, as applied now.
    pub weights: BTreeMap<String, u32>,
    pub step: Option<usize>,
    pub failed_checks: u32,
    /// The last closed analysis window per pool (requests, failures,
    /// success rate, latency quantiles).
    pub analysis: BTreeMap<String, Window>,
    /// The latest verdict of this route's rollout (figures, thresholds,
    /// failed bounds), if it has judged one; a new rollout starts without.
    #[serde(default)]
    pub verdict: Option<Verdict>,
    /// Weights come from the admin API, not the file.
    pub manual: bool,
    /// True exactly when `phase` is `paused`.
    pub paused: bool,
    /// The rollout's strategy (else the configured one) and the canary
    /// steps (candidate percent per step), for showing progress.
    #[serde(default)]
    pub strategy: Option<Strategy>,
    #[serde(default)]
    pub steps: Vec<u32>,
    /// Upstream attempts and failures per pool since start, so a client
    /// polling status can compute rates.
    #[serde(default)]
    pub totals: BTreeMap<String, PoolTotals>,
    /// The route's mirror now (a dark launch or a shadow stage): its
    /// comparisons since start (SPEC §12).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mirror: Option<ShadowSummary>,
    /// The diff summary of the latest shadow-stage interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowSummary>,
    /// While a deployment freeze holds the route: its window and when
    /// rollouts may move again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze: Option<super::freeze::FreezeStatus>,
}

/// Cumulative counters of one route×pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolTotals {
    pub requests: u64,
    pub failures: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolStatus {
    pub name: String,
    pub version: Option<String>,
    pub endpoints: Vec<EndpointStatus>,
    /// What the pool's `dns`/`srv` last saw (absent without one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointStatus {
    pub address: String,
    /// Where it came from: `file`, `dns` or `api`.
    #[serde(default = "file")]
    pub source: Source,
    #[serde(default = "one")]
    pub weight: u32,
    /// In maintenance (admin API): out of rotation, not removed.
    #[serde(default)]
    pub maintenance: bool,
    pub healthy: bool,
    pub in_flight: usize,
    /// Attempts and failed attempts sent to this endpoint since start.
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub failures: u64,
}

fn file() -> Source {
    Source::File
}

fn one() -> u32 {
    1
}

impl Control {
    pub fn status(&self) -> Status {
        let snapshot = self.routing.load();
        let views = self.controller.views();
        let windows = self.telemetry.all();
        let routes = snapshot
            .routes
            .iter()
            .map(|route| {
                let spec = snapshot.config.routes.iter().find(|r| r.name == route.name);
                let rollout_spec = spec.and_then(|s| s.rollout.as_ref());
                let view = views.get(&route.name);
                let record = view.map(|v| &v.record);
                let rollout = record.and_then(|r| r.rollout.as_ref());
                let phase = record.map_or(Phase::Idle, |r| r.phase());
                let w = &route.weights;
                let candidate = record.and_then(|r| r.candidate()).map(str::to_string);
                let strategy = rollout
                    .map(|r| r.strategy)
                    .or(rollout_spec.map(|r| r.strategy));
                RouteStatus {
                    name: route.name.clone(),
                    phase,
                    pool: spec.map(|s| s.pool.clone()).unwrap_or_default(),
                    stable: w.stable.clone(),
                    candidate: candidate.or_else(|| w.candidate().map(str::to_string)),
                    weights: w.percent.iter().cloned().collect(),
                    step: rollout.map(|r| r.step),
                    failed_checks: rollout.map_or(0, |r| r.failed_checks),
                    verdict: record.and_then(|r| r.verdict.clone()),
                    analysis: windows
                        .iter()
                        .filter(|s| s.route == route.name)
                        .filter_map(|s| Some((s.pool.clone(), s.last_window()?)))
                        .collect(),
                    manual: record.is_some_and(|r| r.manual.is_some()),
                    paused: phase == Phase::Paused,
                    strategy,
                    steps: rollout_spec
                        .filter(|_| strategy == Some(Strategy::Canary))
                        .map_or_else(Vec::new, |r| r.steps.clone()),
                    totals: totals(&windows, &route.name),
                    mirror: route.mirror.as_ref().map(|m| {
                        let now = m.stats.snapshot();
                        ShadowSummary::between(&m.pool.name, &Default::default(), &now)
                    }),
                    shadow: record.and_then(|r| r.shadow.clone()),
                    freeze: super::freeze::freeze_status(
                        &snapshot.config,
                        &route.name,
                        super::sense::unix_ms(),
                    ),
                }
            })
            .collect();
        let pools = snapshot
            .pools
            .iter()
            .map(|pool| PoolStatus {
                name: pool.name.clone(),
                version: pool.version.clone(),
                dns: self.routing.dns_report(&pool.name),
                endpoints: pool
                    .members()
                    .map(|(e, placement, maintenance)| EndpointStatus {
                        address: e.spec.authority.clone(),
                        source: placement.source,
                        weight: placement.weight,
                        maintenance,
                        healthy: e.is_healthy() && !maintenance,
                        in_flight: e.in_flight(),
                        requests: e.counts().0,
                        failures: e.counts().1,
                    })
                    .collect(),
            })
            .collect();
        let (ok, error) = self.telemetry.reloads();
        Status {
            routes,
            pools,
            reloads: [("ok".to_string(), ok), ("error".to_string(), error)].into(),
            cluster: self.cluster.as_ref().map(|c| c.lock().unwrap().clone()),
            process: ProcessStatus::this(),
        }
    }
}

/// `route`'s cumulative counters per pool (summed over pool versions).
fn totals(
    stats: &[std::sync::Arc<crate::observe::RoutePoolStats>],
    route: &str,
) -> BTreeMap<String, PoolTotals> {
    let mut totals = BTreeMap::<String, PoolTotals>::new();
    for s in stats.iter().filter(|s| s.route == route) {
        let now = s.snapshot();
        let t = totals.entry(s.pool.clone()).or_default();
        t.requests += now.attempts;
        t.failures += now.failures;
    }
    totals
}
