//! [`Drains`]: every drain in progress or recently finished, what was cut
//! per pool, and the events. Each drain runs as a task of its own (see
//! `run`); this is where they start, are forgotten, cut and finish, all
//! under one lock so a drain forgotten (its pool serves again) is never cut.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::routing::Snapshot;
use crate::upstream::EndpointState;

use super::{
    routes_to, still_leaving, Cut, DrainEvent, DrainReason, DrainState, DrainStatus, Leaving,
    KEEP_DRAINED,
};

/// Whether a drain still applies just before it cuts (the pool or
/// endpoint gets no new requests in the snapshot serving now).
pub(super) type Still = Box<dyn Fn() -> bool + Send + Sync>;

#[derive(Debug)]
pub(super) struct Entry {
    pub(super) id: u64,
    pub(super) status: DrainStatus,
    pub(super) endpoints: Vec<Arc<EndpointState>>,
    /// Cancelled when the drain is forgotten or replaced.
    stop: CancellationToken,
    /// When what is left gets cut; shutdown may bring it forward.
    deadline: watch::Sender<Instant>,
    cut: Cut,
}

#[derive(Debug, Default)]
pub(super) struct Registry {
    next: u64,
    pub(super) entries: Vec<Entry>,
    /// Everything cut so far, per pool (for `veer_drain_cut_total`).
    pub(super) cut: BTreeMap<String, Cut>,
}

/// What `/metrics` shows of drains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainMetrics {
    /// Per pool draining now: requests, bodies and tunnels in flight.
    pub in_flight: Vec<(String, usize)>,
    /// Per pool that ever drained: what was cut.
    pub cut: Vec<(String, Cut)>,
}

/// Every drain in progress or recently finished, and the event channel.
#[derive(Debug)]
pub struct Drains {
    pub(super) registry: Mutex<Registry>,
    events: broadcast::Sender<DrainEvent>,
    /// Bumped whenever a drain starts, finishes or is forgotten.
    pub(super) changed: watch::Sender<u64>,
    tasks: TaskTracker,
}

impl Default for Drains {
    fn default() -> Drains {
        Drains {
            registry: Mutex::default(),
            events: broadcast::channel(256).0,
            changed: watch::Sender::new(0),
            tasks: TaskTracker::new(),
        }
    }
}

impl Drains {
    /// Drain events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DrainEvent> {
        self.events.subscribe()
    }

    /// Every drain in progress, then the recently drained, oldest first.
    pub fn status(&self) -> Vec<DrainStatus> {
        let registry = self.registry.lock().unwrap();
        registry.entries.iter().map(Entry::status).collect()
    }

    /// Whether some drain is still in progress.
    pub fn active(&self) -> bool {
        let registry = self.registry.lock().unwrap();
        registry.entries.iter().any(Entry::draining)
    }

    /// Starts draining what `leaving` names until `deadline`, replacing an
    /// older drain of the same pool or endpoint. Must run in a runtime.
    pub fn start(self: &Arc<Self>, leaving: Leaving, deadline: Instant, still: Option<Still>) {
        let Leaving {
            pool,
            endpoint,
            endpoints,
            reason,
            routes,
        } = leaving;
        let stop = CancellationToken::new();
        let deadline = watch::Sender::new(deadline);
        let watching = deadline.subscribe();
        let mut registry = self.registry.lock().unwrap();
        registry.next += 1;
        let id = registry.next;
        let status = DrainStatus {
            pool,
            endpoint,
            reason,
            state: DrainState::Draining,
            in_flight: 0,
            since: Instant::now(),
            started_at: SystemTime::now(),
            finished_at: None,
            took: None,
            routes,
        };
        let key = (status.pool.clone(), status.endpoint.clone());
        registry.entries.retain(|e| {
            let same = (&e.status.pool, &e.status.endpoint) == (&key.0, &key.1);
            if same {
                e.stop.cancel();
            }
            !same
        });
        registry.cut.entry(key.0.clone()).or_default();
        let entry = Entry {
            id,
            status,
            endpoints: endpoints.clone(),
            stop: stop.clone(),
            deadline,
            cut: Cut::default(),
        };
        let in_flight = entry.status().in_flight;
        tracing::info!(pool = %key.0, endpoint = ?key.1, reason = reason.as_str(), in_flight, "draining");
        registry.entries.push(entry);
        drop(registry);
        let _ = self.events.send(DrainEvent::Draining {
            pool: key.0,
            endpoint: key.1,
        });
        self.changed.send_modify(|n| *n += 1);
        let run = super::run::run(self.clone(), id, endpoints, watching, stop, still);
        self.tasks.spawn(run);
    }

    /// Forgets the drains of pools and endpoints that `snapshot` sends
    /// traffic to again (shutdown drains excepted).
    pub fn resume(&self, snapshot: &Snapshot) {
        let mut registry = self.registry.lock().unwrap();
        let before = registry.entries.len();
        registry.entries.retain(|e| {
            let endpoint = e.status.endpoint.as_ref().map(|_| &*e.endpoints[0]);
            let back = e.status.reason != DrainReason::Shutdown
                && !still_leaving(snapshot, &e.status.pool, endpoint);
            if back {
                e.stop.cancel();
                tracing::info!(pool = %e.status.pool, endpoint = ?e.status.endpoint, "serving again: drain forgotten");
            }
            !back
        });
        if registry.entries.len() != before {
            drop(registry);
            snapshot
                .reachable_endpoints()
                .for_each(|e| e.flight().serve());
            self.changed.send_modify(|n| *n += 1);
        }
    }

    /// Shutdown: every pool of `snapshot` drains, and drains in progress
    /// are cut by `deadline` at the latest. Returns once none is in
    /// progress, with what had to be cut.
    pub async fn shutdown(self: &Arc<Self>, snapshot: &Snapshot, deadline: Instant) -> Cut {
        let before = self.cut_total();
        let mut fresh = Vec::new();
        {
            let registry = self.registry.lock().unwrap();
            for e in registry.entries.iter().filter(|e| e.draining()) {
                e.deadline.send_if_modified(|d| {
                    let later = *d > deadline;
                    *d = (*d).min(deadline);
                    later
                });
            }
            for pool in &snapshot.pools {
                let draining = registry.entries.iter().any(|e| {
                    e.status.pool == pool.name && e.status.endpoint.is_none() && e.draining()
                });
                if !draining {
                    fresh.push(Leaving {
                        pool: pool.name.clone(),
                        endpoint: None,
                        endpoints: pool.endpoints.clone(),
                        reason: DrainReason::Shutdown,
                        routes: routes_to(snapshot, &pool.name),
                    });
                }
            }
        }
        for leaving in fresh {
            self.start(leaving, deadline, None);
        }
        let mut changed = self.changed.subscribe();
        while self.active() {
            let _ = changed.changed().await;
        }
        let mut cut = self.cut_total();
        cut.streams -= before.streams;
        cut.tunnels -= before.tunnels;
        cut
    }

    /// Ends every drain task (after shutdown): those still running stop.
    pub async fn close(&self) {
        {
            let registry = self.registry.lock().unwrap();
            registry.entries.iter().for_each(|e| e.stop.cancel());
        }
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// For `/metrics`: requests, bodies and tunnels in flight per pool
    /// draining now (each endpoint counted once), and what was cut per
    /// pool so far.
    pub fn metrics(&self) -> DrainMetrics {
        let registry = self.registry.lock().unwrap();
        let mut in_flight: BTreeMap<&str, Vec<&Arc<EndpointState>>> = BTreeMap::new();
        for e in registry.entries.iter().filter(|e| e.draining()) {
            let seen = in_flight.entry(&e.status.pool).or_default();
            for endpoint in &e.endpoints {
                if !seen.iter().any(|s| Arc::ptr_eq(s, endpoint)) {
                    seen.push(endpoint);
                }
            }
        }
        let in_flight = in_flight
            .into_iter()
            .map(|(pool, eps)| (pool.to_string(), eps.iter().map(|e| e.in_flight()).sum()))
            .collect();
        let cut = registry.cut.iter().map(|(p, c)| (p.clone(), *c)).collect();
        DrainMetrics { in_flight, cut }
    }

    fn cut_total(&self) -> Cut {
        let registry = self.registry.lock().unwrap();
        let mut total = Cut::default();
        registry.cut.values().for_each(|c| total += *c);
        total
    }

    /// Cuts what drain `id` still has in flight; `None` when the drain was
    /// forgotten meanwhile (then nothing is cut).
    pub(super) fn cut(&self, id: u64) -> Option<Cut> {
        let mut registry = self.registry.lock().unwrap();
        let entry = registry.entries.iter_mut().find(|e| e.id == id)?;
        if entry.stop.is_cancelled() || !entry.draining() {
            return None;
        }
        let mut cut = Cut::default();
        entry.endpoints.iter().for_each(|e| cut += e.flight().cut());
        entry.cut = cut;
        let (pool, endpoint) = (entry.status.pool.clone(), entry.status.endpoint.clone());
        let setting = entry.status.reason.deadline_setting();
        *registry.cut.entry(pool.clone()).or_default() += cut;
        tracing::info!(%pool, ?endpoint, streams = cut.streams, tunnels = cut.tunnels, "{setting} reached: cutting what is still in flight");
        Some(cut)
    }

    /// Drain `id` has nothing in flight and no connection open: drained.
    pub(super) fn finish(&self, id: u64) {
        let mut registry = self.registry.lock().unwrap();
        let Some(entry) = registry.entries.iter_mut().find(|e| e.id == id) else {
            return;
        };
        if entry.stop.is_cancelled() || !entry.draining() {
            return;
        }
        let took = entry.status.since.elapsed();
        entry.status.state = DrainState::Drained { cut: entry.cut };
        entry.status.took = Some(took);
        entry.status.finished_at = Some(SystemTime::now());
        let s = &entry.status;
        tracing::info!(pool = %s.pool, endpoint = ?s.endpoint, ?took, streams_cut = entry.cut.streams, tunnels_cut = entry.cut.tunnels, "drained");
        let event = DrainEvent::Drained {
            pool: s.pool.clone(),
            endpoint: s.endpoint.clone(),
            took,
            cut: entry.cut,
            reason: s.reason,
            routes: s.routes.clone(),
        };
        let finished = registry.entries.iter().filter(|e| !e.draining()).count();
        let mut extra = finished.saturating_sub(KEEP_DRAINED);
        registry.entries.retain(|e| {
            let drop = extra > 0 && !e.draining();
            extra -= usize::from(drop);
            !drop
        });
        drop(registry);
        let _ = self.events.send(event);
        self.changed.send_modify(|n| *n += 1);
    }
}

impl Entry {
    pub(super) fn draining(&self) -> bool {
        self.status.state == DrainState::Draining
    }

    /// The status with the in-flight count as it is now.
    pub(super) fn status(&self) -> DrainStatus {
        let mut status = self.status.clone();
        status.in_flight = self.endpoints.iter().map(|e| e.in_flight()).sum();
        status
    }
}
