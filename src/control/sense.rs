//! Sensing: what the controller reads from the data plane to drive a
//! rollout, taken at once from the routing snapshot and the counters; in a
//! fleet, with every other live replica's counters added. Tests replace it
//! with scripted figures.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::observe::{StatsSnapshot, Telemetry};
use crate::rollout::{Rollout, Sizes};
use crate::routing::Routing;

/// One reading for one rollout.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sensed {
    /// Cumulative counters of the candidate and the stable pool on this
    /// route; an analysis window is the difference of two readings.
    pub candidate: StatsSnapshot,
    pub stable: StatsSnapshot,
    /// Candidate failures in a row (the tripwire).
    pub consecutive_failures: u64,
    /// Healthy candidate endpoints among those the rollout put in rotation.
    pub ready: usize,
    pub sizes: Sizes,
    /// In a fleet: every live replica's counters are in, fresh. An
    /// interval that misses one is inconclusive.
    pub missing: Vec<String>,
    /// In a fleet: the replicas counted, with the start of their counters
    /// (a replica that restarted mid-interval makes it inconclusive).
    pub sources: BTreeMap<String, u64>,
    /// In a fleet: live replicas that have not applied the route's latest
    /// desired state yet; the interval starts once none is left.
    pub lagging: Vec<String>,
    /// In a fleet: replicas whose config of this route differs.
    pub drift: Vec<String>,
    /// The shadow stage's comparisons so far (this replica's own).
    pub shadow: crate::observe::ShadowSnapshot,
}

/// One replica's counters as it publishes them to the fleet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerReport {
    /// When this process's counters started (Unix ms): changes on restart.
    pub epoch: u64,
    /// When the report was made (Unix ms).
    pub at: u64,
    /// Cumulative counters per route and pool, for routes with a rollout.
    pub routes: BTreeMap<String, BTreeMap<String, StatsSnapshot>>,
}

/// What a fleet's leader knows of the other replicas, and of its writes.
#[derive(Debug, Default)]
pub struct FleetView {
    pub peers: BTreeMap<String, Peer>,
    /// The etcd revision each route's desired state was last written at.
    pub written: BTreeMap<String, i64>,
    /// Per route, the replicas whose route config differs from the
    /// leader's (by hash).
    pub drift: BTreeMap<String, Vec<String>>,
}

/// Another replica of the fleet.
#[derive(Debug, Clone, Default)]
pub struct Peer {
    /// Its membership key (lease) exists.
    pub live: bool,
    /// The revision of the desired state it applied last.
    pub applied: i64,
    pub report: Option<PeerReport>,
    /// Route name -> hash of its config on that replica.
    pub routes: BTreeMap<String, String>,
}

pub type Peers = Arc<Mutex<FleetView>>;

/// A report older than this is not counted (replicas publish every 250
/// ms; the margin covers a loaded machine).
pub const STALE: Duration = Duration::from_secs(3);

pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub trait Sensor: Send + 'static {
    fn sense(&self, rollout: &Rollout) -> Sensed;
}

/// Reads the live routing state (and, in a fleet, the peers' reports).
pub struct RoutingSensor {
    pub routing: Arc<Routing>,
    pub telemetry: Arc<Telemetry>,
    pub peers: Option<Peers>,
}

impl Sensor for RoutingSensor {
    fn sense(&self, r: &Rollout) -> Sensed {
        let snapshot = self.routing.load();
        let stats = |pool: &str| {
            let version = snapshot.pool(pool)?.version.clone().unwrap_or_default();
            Some(self.telemetry.stats(&r.route, pool, &version))
        };
        let candidate = stats(&r.candidate);
        let count = |name: &str| snapshot.pool(name).map_or(0, |p| p.endpoints.len());
        let limit = r.traffic.candidate_endpoints.unwrap_or(usize::MAX);
        let ready = snapshot.pool(&r.candidate).map_or(0, |pool| {
            pool.endpoints
                .iter()
                .take(limit)
                .filter(|e| e.is_healthy())
                .count()
        });
        let mut sensed = Sensed {
            candidate: candidate.as_ref().map(|s| s.snapshot()).unwrap_or_default(),
            stable: stats(&r.stable).map(|s| s.snapshot()).unwrap_or_default(),
            consecutive_failures: candidate.map_or(0, |s| s.consecutive_failures()),
            ready,
            sizes: Sizes {
                stable_endpoints: count(&r.stable),
                candidate_endpoints: count(&r.candidate),
            },
            ..Sensed::default()
        };
        if r.shadow {
            sensed.shadow = self
                .telemetry
                .shadow
                .stats(&r.route, &r.candidate)
                .snapshot();
        }
        if let Some(peers) = &self.peers {
            add_peers(&mut sensed, &peers.lock().unwrap(), r);
        }
        sensed
    }
}

/// Adds every live peer's fresh counters; names the live peers without,
/// those behind the route's latest write, and those whose route differs.
fn add_peers(sensed: &mut Sensed, view: &FleetView, r: &Rollout) {
    let now = unix_ms();
    let written = view.written.get(&r.route).copied().unwrap_or(0);
    sensed.drift = view.drift.get(&r.route).cloned().unwrap_or_default();
    for (id, peer) in &view.peers {
        if !peer.live {
            continue;
        }
        if peer.applied < written {
            sensed.lagging.push(id.clone());
        }
        let fresh = peer
            .report
            .as_ref()
            .filter(|p| now.saturating_sub(p.at) <= STALE.as_millis() as u64);
        let Some(report) = fresh else {
            sensed.missing.push(id.clone());
            continue;
        };
        sensed.sources.insert(id.clone(), report.epoch);
        let Some(pools) = report.routes.get(&r.route) else {
            continue;
        };
        if let Some(c) = pools.get(&r.candidate) {
            sensed.candidate.add(c);
        }
        if let Some(s) = pools.get(&r.stable) {
            sensed.stable.add(s);
        }
    }
}
