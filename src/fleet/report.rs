//! What a replica tells the fleet besides applying its state: its
//! membership (the revision it applied, a hash of each route's config) and
//! its cumulative counters of routes in a rollout, which the leader adds
//! to its own for analysis.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use etcd_client::{Client, PutOptions};

use crate::control::sense::Peer;

use super::replica::Replica;
use super::FleetError;

/// A replica's membership value.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub(super) struct Member {
    pub generation: i64,
    /// Upstream attempts this replica proxied since it started.
    pub requests: u64,
    /// Route name -> hash of its config.
    pub routes: BTreeMap<String, String>,
}

/// Per route, the peers whose config of it differs from `mine`.
pub(super) fn drift(
    mine: &BTreeMap<String, String>,
    peers: &BTreeMap<String, Peer>,
) -> BTreeMap<String, Vec<String>> {
    let mut drift: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (route, hash) in mine {
        for (id, peer) in peers.iter().filter(|(_, p)| p.live) {
            if peer.routes.get(route).is_some_and(|h| h != hash) {
                drift.entry(route.clone()).or_default().push(id.clone());
            }
        }
    }
    drift
}

/// FNV-1a of a route's config as written out (stable across replicas of
/// the same build).
fn hash_route(spec: &crate::config::RouteSpec) -> String {
    let text = format!("{spec:?}");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// How often a replica publishes its counters of routes in a rollout.
pub(super) const REPORT_EVERY: Duration = Duration::from_millis(250);

impl Replica {
    /// Upstream attempts this replica proxied since it started.
    pub(super) fn requests(&self) -> u64 {
        self.data
            .telemetry
            .all()
            .iter()
            .map(|s| s.snapshot().attempts)
            .sum()
    }

    /// A hash of each route's config as this replica has it now.
    /// Worked out once per config (asked every 250 ms and per membership
    /// event).
    pub(super) fn hashes(&self) -> BTreeMap<String, String> {
        let config = self.data.routing.load().config.clone();
        let mut cached = self.hashed.lock().unwrap();
        match &*cached {
            Some((seen, hashes)) if Arc::ptr_eq(seen, &config) => hashes.clone(),
            _ => {
                let hashes: BTreeMap<_, _> = config
                    .routes
                    .iter()
                    .map(|r| (r.name.clone(), hash_route(r)))
                    .collect();
                *cached = Some((config, hashes.clone()));
                hashes
            }
        }
    }

    /// Publishes this replica's cumulative counters of every route with a
    /// rollout in progress, for the leader to add to its own.
    pub(super) async fn publish(&self, client: &mut Client, lease: i64) -> Result<(), FleetError> {
        let views = self.controller.views();
        let snapshot = self.data.routing.load();
        let mut routes = BTreeMap::new();
        for (route, view) in &views {
            let Some(r) = &view.record.rollout else {
                continue;
            };
            let mut pools = BTreeMap::new();
            for pool in [&r.stable, &r.candidate] {
                let Some(p) = snapshot.pool(pool) else {
                    continue;
                };
                let version = p.version.as_deref().unwrap_or("");
                let stats = self.data.telemetry.stats(route, pool, version).snapshot();
                pools.insert(pool.clone(), stats);
            }
            routes.insert(route.clone(), pools);
        }
        if routes.is_empty() {
            return Ok(());
        }
        let report = crate::control::sense::PeerReport {
            epoch: self.epoch,
            at: crate::control::sense::unix_ms(),
            routes,
        };
        let body = serde_json::to_vec(&report).expect("reports serialise");
        let options = PutOptions::new().with_lease(lease);
        client
            .put(self.key(&format!("stats/{}", self.id)), body, Some(options))
            .await?;
        Ok(())
    }
}
