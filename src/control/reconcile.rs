//! A new config (a reload, or the file as found at start) against the
//! records: overrides hold until the file changes the field they shadow,
//! rollouts end when their route or pools leave, a changed `pool` starts
//! a rollout. The config and every route's traffic are then published in
//! one snapshot, so weights never point at a pool the config lacks.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{Config, RouteSpec};

use super::commands::show;
use super::effects::Effects;
use super::events::EventKind;
use super::record::{Basis, Record};
use super::sense::Sensor;
use super::store::Loaded;
use super::task::{Live, Task};

/// What reconciling one route left to do.
struct Outcome {
    notes: Vec<(EventKind, String)>,
    /// The file names a new pool: start moving to it.
    start: Option<String>,
}

impl<E: Effects, S: Sensor> Task<E, S> {
    /// Publishes the config with every route's traffic, in one snapshot.
    fn publish_config(&mut self) {
        let config = self.config.clone();
        let traffic: HashMap<_, _> = config
            .routes
            .iter()
            .filter_map(|spec| {
                let rec = self.records.get(&spec.name)?;
                Some((spec.name.clone(), rec.traffic(spec.rollout.as_ref())?))
            })
            .collect();
        self.effects.publish_config(config, traffic);
    }

    /// Resumes what the store held, reconciled with the config as found
    /// now (the file may have changed while veer was stopped).
    pub fn restore(&mut self, loaded: Loaded) {
        for (kind, route, message) in loaded.notes {
            self.effects.event(kind, route.as_deref(), message);
        }
        let now = self.clock.now_ms();
        for (name, mut rec) in loaded.routes {
            if let Some(w) = &rec.manual {
                let message = format!("run-time weights restored: {}", show(&w.percent));
                self.effects
                    .event(EventKind::Restored, Some(&name), message);
            }
            if let Some(r) = &mut rec.rollout {
                if r.started_ms == 0 {
                    r.started_ms = now;
                }
                // The first analysis waits a full interval of fresh data.
                let sensed = self.sensor.sense(r);
                self.live.insert(name.clone(), Live::new(sensed, now));
                let message = format!(
                    "rollout to {:?} resumed at {}: {}",
                    r.candidate, r.phase, r.reason
                );
                self.effects
                    .event(EventKind::Restored, Some(&name), message);
            }
            let lost = rec.rollout.is_none() && rec.finished.is_none();
            if let Some(stable) = rec.stable.clone().filter(|s| lost && *s != rec.basis.pool) {
                let message = format!(
                    "no rollout recorded, but the file named pool {:?}: serving the last known stable pool {stable:?}; `veer rollout {name} {}` starts the rollout again",
                    rec.basis.pool, rec.basis.pool
                );
                self.effects
                    .event(EventKind::StateError, Some(&name), message);
            }
            self.records.insert(name, rec);
        }
        let config = self.config.clone();
        self.reconfigure(config);
    }

    /// Applies a new, validated config.
    pub(super) fn reconfigure(&mut self, config: Arc<Config>) {
        let now = self.clock.now_ms();
        self.config = config.clone();
        if !self.deciding {
            // A fleet follower serves the leader's records as they are.
            for spec in &config.routes {
                let fresh = || Record::fresh(spec);
                self.records.entry(spec.name.clone()).or_insert_with(fresh);
            }
            self.publish_config();
            let mut views = self.views.lock().unwrap();
            views.retain(|name, _| config.routes.iter().any(|r| r.name == *name));
            for spec in &config.routes {
                let record = self.records[&spec.name].clone();
                views.insert(spec.name.clone(), super::task::View { record });
            }
            return;
        }
        let before = std::mem::take(&mut self.records);
        let mut starts = Vec::new();
        let mut notes = Vec::new();
        for (name, rec) in &before {
            if config.routes.iter().any(|r| r.name == *name) {
                continue;
            }
            if let Some(r) = &rec.rollout {
                let message = format!(
                    "route removed from the config: rollout to {:?} ended",
                    r.candidate
                );
                notes.push((EventKind::RolloutEnded, name.clone(), message));
            }
            self.live.remove(name);
        }
        for spec in &config.routes {
            let mut rec = before
                .get(&spec.name)
                .cloned()
                .unwrap_or_else(|| Record::fresh(spec));
            let outcome = reconcile(&config, spec, &mut rec, now);
            self.settle(&mut rec, now);
            notes.extend(
                outcome
                    .notes
                    .into_iter()
                    .map(|(k, m)| (k, spec.name.clone(), m)),
            );
            starts.extend(outcome.start.map(|pool| (spec.name.clone(), pool)));
            self.records.insert(spec.name.clone(), rec);
        }
        self.publish_config();
        for (kind, route, message) in notes {
            self.effects.event(kind, Some(&route), message);
        }
        self.views
            .lock()
            .unwrap()
            .retain(|name, _| config.routes.iter().any(|r| r.name == *name));
        for spec in &config.routes {
            let old = before
                .get(&spec.name)
                .cloned()
                .unwrap_or_else(|| Record::fresh(spec));
            // Published above with the config.
            self.record_change(&spec.name, &old, None);
        }
        for (route, pool) in starts {
            let before = self.records[&route].clone();
            self.begin(&route, &pool, None);
            let message = format!("config file changed route.pool to {pool:?}: rollout started");
            self.effects
                .event(EventKind::Rollout, Some(&route), message);
            self.commit(&route, &before, None);
        }
        let _ = self.effects.persist(&self.records);
    }
}

/// One route against the new config. Pure: edits `rec`, says what else
/// to do.
fn reconcile(config: &Config, spec: &RouteSpec, rec: &mut Record, now: u64) -> Outcome {
    let mut out = Outcome {
        notes: Vec::new(),
        start: None,
    };
    let known = |pool: &str| config.pools.iter().any(|p| p.name == pool);
    if let Some(gone) = rec
        .manual
        .as_ref()
        .and_then(|w| w.pools().find(|p| !known(p)))
    {
        let message = format!("manual weights dropped: pool {gone:?} is no longer in the config");
        out.notes.push((EventKind::OverrideDropped, message));
        rec.manual = None;
        rec.paused = false;
    }
    if let Some(r) = rec.rollout.clone() {
        if !known(&r.candidate) {
            let why = format!("candidate pool {:?} left the config", r.candidate);
            out.notes
                .push((EventKind::RolloutEnded, format!("rollout aborted: {why}")));
            rec.rollout = Some(r.aborted(why, now));
            rec.manual = None;
            rec.retire();
        } else if !known(&r.stable) {
            let why = format!("stable pool {:?} left the config", r.stable);
            out.notes.push((
                EventKind::RolloutEnded,
                format!("rollout ended: {why}; the file's split serves"),
            ));
            rec.rollout = Some(r.aborted(why, now));
            rec.retire();
            rec.stable = None;
        }
    }
    if rec.stable.as_deref().is_some_and(|p| !known(p)) {
        rec.stable = None;
    }
    if rec.previous.as_deref().is_some_and(|p| !known(p)) {
        rec.previous = None;
    }
    let file = Basis::of(spec);
    if file.pool != rec.basis.pool {
        if rec.manual.take().is_some() {
            let message = format!(
                "manual weights dropped: config file changed route.pool to {:?}",
                file.pool
            );
            out.notes.push((EventKind::OverrideDropped, message));
        }
        rec.paused = false;
        match rec.rollout.clone() {
            Some(r) if r.stable == file.pool => {
                let why = format!(
                    "config file returned route.pool to the stable pool {:?}",
                    file.pool
                );
                out.notes
                    .push((EventKind::RolloutEnded, format!("rollout aborted: {why}")));
                rec.rollout = Some(r.aborted(why, now));
                rec.retire();
            }
            Some(r) => {
                let why = format!(
                    "superseded: config file changed route.pool to {:?}",
                    file.pool
                );
                out.notes.push((
                    EventKind::RolloutEnded,
                    format!("rollout to {:?} aborted: {why}", r.candidate),
                ));
                rec.rollout = Some(r.aborted(why, now));
                rec.retire();
                out.start = Some(file.pool.clone());
            }
            None if rec.stable_pool() != file.pool => {
                // What serves now stays stable; the basis moves below.
                rec.stable = Some(rec.stable_pool().to_string());
                out.start = Some(file.pool.clone());
            }
            None => {}
        }
    } else if file.weights != rec.basis.weights {
        if rec.manual.take().is_some() {
            out.notes.push((
                EventKind::OverrideDropped,
                "manual weights dropped: config file changed route.weights".into(),
            ));
        }
        rec.paused = false;
        if rec.rollout.is_none() {
            rec.stable = None;
            rec.finished = None;
        }
    }
    if file.mirror != rec.basis.mirror && rec.mirror.take().is_some() {
        let message = "mirror set by the admin API dropped: config file changed [route.mirror]";
        out.notes
            .push((EventKind::OverrideDropped, message.to_string()));
    }
    rec.basis = file;
    out
}
