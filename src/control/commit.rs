//! Committing a change to a route's record: retiring what is finished,
//! publishing the route's traffic when it changed, recording transitions,
//! calling webhooks and updating what status shows. Every path that
//! changes a record (commands, ticks, gates, reloads) ends here.

use crate::config::WebhookKind;
use crate::rollout::{strategy, Phase, Rollout, Verdict};

use super::effects::Effects;
use super::record::Record;
use super::sense::Sensor;
use super::task::{payload, Live, Task, View};
use super::webhook::kind_name;

impl<E: Effects, S: Sensor> Task<E, S> {
    /// Retires a rollout that needs nothing more; a rollback takes the
    /// traffic back from any manual split.
    pub(super) fn settle(&self, rec: &mut Record, now: u64) {
        let Some(r) = &rec.rollout else { return };
        if matches!(r.phase, Phase::RollingBack | Phase::RolledBack) {
            rec.manual = None;
        }
        let done = match r.phase {
            Phase::RolledBack => true,
            Phase::Promoted => self
                .spec(&r.route)
                .is_none_or(|spec| strategy::finished(spec, r, now)),
            _ => false,
        };
        if done {
            rec.retire();
        }
    }

    /// Makes a committed change visible: publishes the route's traffic if
    /// it changed, then [`Task::record_change`].
    pub(super) fn commit(&mut self, route: &str, before: &Record, verdict: Option<Verdict>) {
        let Some(after) = self.records.get(route) else {
            return;
        };
        let spec = self.spec(route);
        let traffic = after.traffic(spec);
        if before.traffic(spec) != traffic {
            self.effects.publish(route, traffic);
        }
        self.record_change(route, before, verdict);
    }

    /// Records the rollout's transition, calls webhooks, restarts the
    /// analysis window on a new split, and updates what status shows.
    pub(super) fn record_change(&mut self, route: &str, before: &Record, verdict: Option<Verdict>) {
        let Some(after) = self.records.get(route).cloned() else {
            return;
        };
        let spec = self.spec(route).cloned();
        if before.traffic(spec.as_ref()) != after.traffic(spec.as_ref()) {
            if let Some(r) = &after.rollout {
                // A new split starts a new analysis window.
                let now = self.clock.now_ms();
                let sensed = self.sensor.sense(r);
                let live = self.live.entry(route.into());
                let live = live.or_insert_with(|| Live::new(sensed.clone(), now));
                (live.start, live.since) = (sensed, now);
            }
        }
        let latest = |rec: &Record| rec.rollout.clone().or_else(|| rec.finished.clone());
        let (old, new) = (latest(before), latest(&after));
        if let Some(r) = new
            .as_ref()
            .filter(|r| old.as_ref() != Some(*r) || verdict.is_some())
        {
            self.effects.transition(r, verdict.clone());
            let moved = old.as_ref().is_none_or(|o| {
                o.phase != r.phase || o.traffic != r.traffic || o.generation != r.generation
            });
            if moved {
                let kind = match r.phase {
                    Phase::RollingBack | Phase::RolledBack => WebhookKind::Rollback,
                    Phase::Promoted => WebhookKind::PostRollout,
                    _ => WebhookKind::Rollout,
                };
                self.notify(r, kind, verdict.clone());
                let back = |p: Phase| matches!(p, Phase::RollingBack | Phase::RolledBack);
                if back(r.phase) && old.as_ref().is_some_and(|o| !back(o.phase)) {
                    self.watch_stable(route, r);
                }
            }
        }
        if after.rollout.is_none() {
            self.live.remove(route);
        }
        let mut views = self.views.lock().unwrap();
        views.insert(route.into(), View { record: after });
    }

    /// Fire-and-forget webhooks of `kind` (and `event` for every change).
    pub(super) fn notify(&mut self, r: &Rollout, kind: WebhookKind, verdict: Option<Verdict>) {
        let Some(spec) = self.spec(&r.route) else {
            return;
        };
        let hooks: Vec<_> = spec
            .webhooks
            .iter()
            .filter(|h| h.on == kind || h.on == WebhookKind::Event)
            .cloned()
            .collect();
        if !hooks.is_empty() {
            self.effects
                .notify(hooks, payload(r, kind_name(kind), verdict));
        }
    }
}
