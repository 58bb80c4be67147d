//! A pool of endpoints running one version, and how a request picks one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rand::Rng;

use crate::config::{Balance, HealthSpec, OutlierSpec, PoolSpec};

use super::endpoint::EndpointState;
use super::outlier::Attempt;

#[derive(Debug)]
pub struct Pool {
    pub name: String,
    pub version: Option<String>,
    pub endpoints: Vec<Arc<EndpointState>>,
    /// Active checks; their tasks follow the snapshots (see [`super::health`]).
    pub health: Option<HealthSpec>,
    pub outlier: Option<OutlierSpec>,
    balance: Balance,
    /// Round-robin cursor.
    next: AtomicUsize,
    /// Held while deciding an ejection, so two endpoints failing at once
    /// cannot both slip under the floor.
    ejecting: Mutex<()>,
}

impl Pool {
    /// Builds a pool, reusing the endpoint states (health, warm connections)
    /// that `previous` gives for endpoints that were already there: as they
    /// are when the connection settings are unchanged (`true`), else a new
    /// state that keeps the old one's health. New endpoints of a pool with
    /// `[pool.health]` start out of rotation until a check passes.
    pub fn new(
        spec: &PoolSpec,
        previous: impl Fn(&str) -> Option<(Arc<EndpointState>, bool)>,
    ) -> Pool {
        let endpoints = spec
            .endpoints
            .iter()
            .map(|ep| {
                let tls = ep.tls.then_some(&spec.tls);
                let same = |old: &Arc<EndpointState>| old.spec == *ep && old.tls.as_ref() == tls;
                match previous(&ep.authority) {
                    Some((old, true)) if same(&old) => old,
                    old => {
                        let state = EndpointState::in_pool(ep.clone(), spec);
                        let healthy = match old {
                            Some((old, _)) => old.passes_checks() || spec.health.is_none(),
                            None => spec.health.is_none(),
                        };
                        state.set_healthy(healthy);
                        state
                    }
                }
            })
            .collect();
        Pool {
            name: spec.name.clone(),
            version: spec.version.clone(),
            endpoints,
            health: spec.health.clone(),
            outlier: spec.outlier.clone(),
            balance: spec.balance,
            next: AtomicUsize::new(0),
            ejecting: Mutex::new(()),
        }
    }

    pub fn endpoint(&self, authority: &str) -> Option<&Arc<EndpointState>> {
        self.endpoints
            .iter()
            .find(|e| e.spec.authority == authority)
    }

    /// Picks a healthy endpoint among the first `limit`, skipping those in
    /// `tried` (a bit set of endpoint indexes already attempted by this
    /// request). `None` when no healthy endpoint is left.
    pub fn pick(&self, tried: u64, limit: usize) -> Option<(usize, &Arc<EndpointState>)> {
        let n = self.endpoints.len().min(limit);
        if n == 0 {
            return None;
        }
        let usable =
            |i: usize| (i >= 64 || tried & (1 << i) == 0) && self.endpoints[i].is_healthy();
        match self.balance {
            Balance::RoundRobin => {
                let start = self.next.fetch_add(1, Ordering::Relaxed);
                (0..n).map(|k| (start + k) % n).find(|&i| usable(i))
            }
            Balance::Random => {
                let start = rand::rng().random_range(0..n);
                (0..n).map(|k| (start + k) % n).find(|&i| usable(i))
            }
            Balance::LeastRequest => {
                // Power of two choices: two random candidates, the less
                // loaded wins. Falls back to a scan when both are unusable.
                let mut rng = rand::rng();
                let a = rng.random_range(0..n);
                let b = if n > 1 {
                    (a + 1 + rng.random_range(0..n - 1)) % n
                } else {
                    a
                };
                match (usable(a), usable(b)) {
                    (true, true) => Some(
                        if self.endpoints[b].in_flight() < self.endpoints[a].in_flight() {
                            b
                        } else {
                            a
                        },
                    ),
                    (true, false) => Some(a),
                    (false, true) => Some(b),
                    (false, false) => (0..n).map(|k| (a + k) % n).find(|&i| usable(i)),
                }
            }
        }
        .map(|i| (i, &self.endpoints[i]))
    }

    pub fn healthy_count(&self) -> usize {
        self.endpoints.iter().filter(|e| e.is_healthy()).count()
    }

    /// Reports how one request to `endpoint` went (outlier detection).
    /// Ejects it after too many failures in a row, unless that would put
    /// more than `max_ejected_percent` of the pool, or its last endpoint in
    /// rotation, out.
    pub fn record(&self, endpoint: &EndpointState, attempt: Attempt) {
        endpoint.count(attempt == Attempt::Failure);
        let Some(spec) = &self.outlier else { return };
        if !endpoint.outlier.record(attempt, spec.consecutive_failures) {
            return;
        }
        let _deciding = self.ejecting.lock().unwrap();
        if !endpoint.is_healthy() {
            return;
        }
        let ejected = self.endpoints.iter().filter(|e| e.is_ejected()).count();
        let allowed = self.endpoints.len() * spec.max_ejected_percent as usize / 100;
        if ejected >= allowed || self.healthy_count() <= 1 {
            return;
        }
        let length = endpoint.outlier.eject(spec);
        endpoint.conns.clear();
        tracing::warn!(
            pool = %self.name,
            endpoint = %endpoint.spec.authority,
            failures = spec.consecutive_failures,
            ?length,
            "endpoint ejected"
        );
    }
}
