//! [`Routing`]: the published snapshot and its writers. Requests `load`
//! it; writers (the controller for route traffic, discovery and the admin
//! API for a pool's run-time endpoints) build a new snapshot from the
//! config and their inputs under one lock and `store` it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, Guard};
use tokio::sync::watch;

use crate::config::Config;
use crate::observe::Telemetry;

use super::members::{DnsReport, Dynamic, Members};
use super::snapshot::{RouteTraffic, Snapshot, Weights};

/// What a snapshot is built from besides the config.
#[derive(Debug, Default)]
struct Inputs {
    /// Each route's run-time traffic (the controller's).
    traffic: HashMap<String, RouteTraffic>,
    /// Each pool's run-time endpoints (discovery, admin API).
    members: Members,
}

/// The published routing state. Requests `load` it; writers build a new
/// snapshot and `publish` it. Writers are serialised by `write`.
#[derive(Debug)]
pub struct Routing {
    current: ArcSwap<Snapshot>,
    /// Held while a writer builds and stores a new snapshot, so two writers
    /// never overwrite each other's change.
    write: Mutex<Inputs>,
    /// What each pool's DNS discovery last saw (status only).
    dns: Mutex<HashMap<String, DnsReport>>,
    /// Counters outlive snapshots; each build resolves its handles here.
    telemetry: Arc<Telemetry>,
    /// Ticks after every publish, to wake background tasks (health
    /// checks, drains) that follow the snapshots.
    published: watch::Sender<()>,
}

impl Routing {
    pub fn new(config: Arc<Config>, telemetry: Arc<Telemetry>) -> Routing {
        let inputs = Inputs::default();
        let snapshot = Snapshot::build(config, &inputs.traffic, None, &telemetry);
        Routing {
            current: ArcSwap::from_pointee(snapshot),
            write: Mutex::new(inputs),
            dns: Mutex::default(),
            telemetry,
            published: watch::Sender::new(()),
        }
    }

    /// Changes once per snapshot published from now on.
    pub fn subscribe(&self) -> watch::Receiver<()> {
        self.published.subscribe()
    }

    /// The current snapshot, owned (for tasks that keep it across awaits).
    pub fn load_full(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// The current snapshot. Do not hold the guard across an `.await`.
    pub fn load(&self) -> Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// Replaces the config and every route's run-time traffic at once (a
    /// reload), so no snapshot pairs the new config with old overrides.
    pub fn replace(&self, config: Arc<Config>, traffic: HashMap<String, RouteTraffic>) {
        let mut inputs = self.write.lock().unwrap();
        inputs.traffic = traffic;
        self.publish(config, &inputs);
    }

    /// Builds a snapshot of `config` and `inputs` and publishes it; the
    /// caller holds the write lock.
    fn publish(&self, config: Arc<Config>, inputs: &Inputs) {
        let next = Snapshot::build_with(
            config,
            &inputs.traffic,
            &inputs.members,
            Some(&self.current.load()),
            &self.telemetry,
        );
        next.readmit();
        self.current.store(Arc::new(next));
        self.published.send_replace(());
    }

    /// Changes the run-time endpoints of `pool` (DNS answers, API
    /// registrations, maintenance) and publishes the result when that
    /// changed anything; true when it did.
    pub fn update_members(&self, pool: &str, change: impl FnOnce(&mut Dynamic)) -> bool {
        let mut inputs = self.write.lock().unwrap();
        let entry = inputs.members.entry(pool.to_string()).or_default();
        let before = entry.clone();
        change(entry);
        if *entry == before {
            return false;
        }
        let config = self.current.load().config.clone();
        self.publish(config, &inputs);
        true
    }

    /// The run-time endpoints of `pool`.
    pub fn members(&self, pool: &str) -> Dynamic {
        let inputs = self.write.lock().unwrap();
        inputs.members.get(pool).cloned().unwrap_or_default()
    }

    /// Records what `pool`'s DNS discovery saw (`None`: it has none).
    pub fn set_dns_report(&self, pool: &str, report: Option<DnsReport>) {
        let mut reports = self.dns.lock().unwrap();
        match report {
            Some(r) => reports.insert(pool.to_string(), r),
            None => reports.remove(pool),
        };
    }

    /// What `pool`'s DNS discovery last saw.
    pub fn dns_report(&self, pool: &str) -> Option<DnsReport> {
        self.dns.lock().unwrap().get(pool).cloned()
    }

    /// Replaces the config, keeping the run-time traffic (data-plane tests;
    /// veer itself reloads through the controller, [`Routing::replace`]).
    pub fn set_config(&self, config: Arc<Config>) {
        let inputs = self.write.lock().unwrap();
        self.publish(config, &inputs);
    }

    /// Sets (or with `None`, clears) a route's run-time weights.
    pub fn set_weights(&self, route: &str, weights: Option<Weights>) {
        self.set_traffic(route, weights.map(RouteTraffic::from));
    }

    /// Sets (or with `None`, clears) everything run-time state says about a
    /// route's traffic, and publishes the new snapshot.
    pub fn set_traffic(&self, route: &str, traffic: Option<RouteTraffic>) {
        let mut inputs = self.write.lock().unwrap();
        match traffic {
            Some(t) => inputs.traffic.insert(route.to_string(), t),
            None => inputs.traffic.remove(route),
        };
        let config = self.current.load().config.clone();
        self.publish(config, &inputs);
    }
}
