//! A pool of endpoints running one version, and how a request picks one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rand::Rng;

use crate::config::{Balance, HealthSpec, OutlierSpec, PoolSpec};

use super::endpoint::EndpointState;
use super::member::{Member, Placement, Shares};
use super::outlier::Attempt;

#[derive(Debug)]
pub struct Pool {
    pub name: String,
    pub version: Option<String>,
    /// The endpoints in rotation (or waiting on a health check), file
    /// endpoints first: a rolling rollout's limit takes the first N.
    pub endpoints: Vec<Arc<EndpointState>>,
    /// Source and weight of each of `endpoints`, same order.
    pub placements: Vec<Placement>,
    /// Endpoints in maintenance: kept (state, health checks) but out of
    /// rotation, so drained.
    pub parked: Vec<(Arc<EndpointState>, Placement)>,
    /// Active checks; their tasks follow the snapshots (see [`super::health`]).
    pub health: Option<HealthSpec>,
    pub outlier: Option<OutlierSpec>,
    balance: Balance,
    /// The weighted slots of `endpoints`.
    shares: Shares,
    /// Round-robin cursor.
    next: AtomicUsize,
    /// Held while deciding an ejection, so two endpoints failing at once
    /// cannot both slip under the floor.
    ejecting: Mutex<()>,
}

impl Pool {
    /// Builds a pool of `members`, reusing the endpoint states (health,
    /// warm connections) that `previous` gives for endpoints that were
    /// already there: as they are when the connection settings are
    /// unchanged (`true`), else a new state that keeps the old one's
    /// health. New endpoints of a pool with `[pool.health]` start out of
    /// rotation until a check passes.
    pub fn new(
        spec: &PoolSpec,
        members: &[Member],
        previous: impl Fn(&str) -> Option<(Arc<EndpointState>, bool)>,
    ) -> Pool {
        let (mut endpoints, mut placements, mut parked) = (Vec::new(), Vec::new(), Vec::new());
        for member in members {
            let ep = &member.endpoint;
            let tls = ep.tls.then_some(&spec.tls);
            let same = |old: &Arc<EndpointState>| old.spec == *ep && old.tls.as_ref() == tls;
            let state = match previous(&ep.authority) {
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
            };
            if member.maintenance {
                parked.push((state, member.placement));
            } else {
                endpoints.push(state);
                placements.push(member.placement);
            }
        }
        Pool {
            name: spec.name.clone(),
            version: spec.version.clone(),
            shares: Shares::new(placements.iter().map(|p: &Placement| p.weight)),
            endpoints,
            placements,
            parked,
            health: spec.health.clone(),
            outlier: spec.outlier.clone(),
            balance: spec.balance,
            next: AtomicUsize::new(0),
            ejecting: Mutex::new(()),
        }
    }

    /// The endpoint written `authority`, in rotation or in maintenance.
    pub fn endpoint(&self, authority: &str) -> Option<&Arc<EndpointState>> {
        self.endpoints
            .iter()
            .chain(self.parked.iter().map(|(e, _)| e))
            .find(|e| e.spec.authority == authority)
    }

    /// Every endpoint with its placement and whether it is in
    /// maintenance: those in rotation first.
    pub fn members(&self) -> impl Iterator<Item = (&Arc<EndpointState>, Placement, bool)> {
        let active = self.endpoints.iter().zip(&self.placements);
        let active = active.map(|(e, p)| (e, *p, false));
        active.chain(self.parked.iter().map(|(e, p)| (e, *p, true)))
    }

    /// Picks a healthy endpoint among the first `limit`, skipping those in
    /// `tried` (a bit set of endpoint indexes already attempted by this
    /// request), each in proportion to its weight. `None` when no healthy
    /// endpoint is left.
    pub fn pick(&self, tried: u64, limit: usize) -> Option<(usize, &Arc<EndpointState>)> {
        let n = self.endpoints.len().min(limit);
        if n == 0 {
            return None;
        }
        let total = self.shares.total(n);
        let usable =
            |i: usize| (i >= 64 || tried & (1 << i) == 0) && self.endpoints[i].is_healthy();
        let scan = |start: usize| (0..n).map(|k| (start + k) % n).find(|&i| usable(i));
        match self.balance {
            Balance::RoundRobin => {
                let slot = self.next.fetch_add(1, Ordering::Relaxed) as u64 % total;
                scan(self.shares.owner(slot))
            }
            Balance::Random => scan(self.shares.owner(rand::rng().random_range(0..total))),
            Balance::LeastRequest => {
                // Power of two choices: two candidates drawn by weight, the
                // less loaded for its weight wins. Falls back to a scan
                // when both are unusable.
                let mut rng = rand::rng();
                let a = self.shares.owner(rng.random_range(0..total));
                let mut b = self.shares.owner(rng.random_range(0..total));
                if b == a && n > 1 {
                    b = (a + 1 + rng.random_range(0..n - 1)) % n;
                }
                let load = |i: usize, other: usize| {
                    self.endpoints[i].in_flight() as u64 * self.shares.weight(other)
                };
                match (usable(a), usable(b)) {
                    (true, true) => Some(if load(b, a) < load(a, b) { b } else { a }),
                    (true, false) => Some(a),
                    (false, true) => Some(b),
                    (false, false) => scan(a),
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::upstream::Source;

    /// Pool `p` of three endpoints weighted 1, 2 and 5, balanced by `mode`.
    fn pool(mode: &str) -> Pool {
        let text = format!(
            "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:1\"\n\
             [[pool]]\nname = \"p\"\nbalance = \"{mode}\"\nendpoints = [\"127.0.0.1:1\", \
             {{ address = \"127.0.0.1:2\", weight = 2 }}, {{ address = \"127.0.0.1:3\", weight = 5 }}]\n\
             [[route]]\nname = \"r\"\npool = \"p\"\n"
        );
        let config = crate::config::parse(&text, Path::new("t.toml")).unwrap();
        let spec = &config.pools[0];
        Pool::new(spec, &crate::routing::members::merge(spec, None), |_| None)
    }

    fn shares(pool: &Pool, n: usize) -> [usize; 3] {
        let mut counts = [0; 3];
        for _ in 0..n {
            counts[pool.pick(0, usize::MAX).unwrap().0] += 1;
        }
        counts
    }

    #[test]
    fn round_robin_follows_weights_exactly() {
        let pool = pool("round_robin");
        assert_eq!(shares(&pool, 800), [100, 200, 500]);
        assert!(pool.placements.iter().all(|p| p.source == Source::File));
    }

    #[test]
    fn random_and_least_request_follow_weights_within_bounds() {
        for mode in ["random", "least_request"] {
            let n = 8000;
            let counts = shares(&pool(mode), n);
            for (count, weight) in counts.iter().zip([1.0, 2.0, 5.0]) {
                let p: f64 = weight / 8.0;
                let sd = (n as f64 * p * (1.0 - p)).sqrt();
                let off = (*count as f64 - n as f64 * p).abs();
                assert!(off < 5.0 * sd, "{mode}: {counts:?}");
            }
        }
    }

    #[test]
    fn a_limit_and_tried_endpoints_are_honoured() {
        let pool = pool("round_robin");
        for _ in 0..20 {
            assert_eq!(pool.pick(0, 1).unwrap().0, 0);
            assert_ne!(pool.pick(0b100, usize::MAX).unwrap().0, 2);
        }
    }
}
