//! After a rollback: stable is watched for `verify_window`, then a
//! `recovered` or `still-failing` event (and `rollback` / `event`
//! webhooks) says whether it is back to normal, so the team knows the
//! rollback did its job (or that stable has a problem of its own).
//!
//! Normal means: stable within the fixed bounds of the analysis, and its
//! failure rate at most the tolerance (`tolerance.failure_rate`, else
//! `max_success_rate_drop`, else 0.5 points) above what stable showed
//! while the rollout ran.

use crate::config::{RolloutSpec, WebhookKind};
use crate::observe::{StatsSnapshot, Window};
use crate::rollout::{judge, Outcome, Rollout};

use super::effects::Effects;
use super::events::EventKind;
use super::sense::Sensor;
use super::task::{payload, Task};

/// One watched rollback.
#[derive(Debug, Clone)]
pub(super) struct Watch {
    rollout: Rollout,
    /// Stable's counters when the rollback happened.
    start: StatsSnapshot,
    since: u64,
    /// Stable's failure rate (percent) while the rollout ran.
    baseline: Option<f64>,
}

impl<E: Effects, S: Sensor> Task<E, S> {
    /// A rollout of `route` just rolled back: watch stable, if asked to.
    pub(super) fn watch_stable(&mut self, route: &str, r: &Rollout) {
        // A fleet's followers replicate the rollback; the leader watches.
        if !self.deciding || self.spec(route).and_then(|s| s.verify_window).is_none() {
            return;
        }
        let now = self.clock.now_ms();
        let sensed = self.sensor.sense(r);
        let baseline = self.live.get(route).and_then(|live| {
            let w = Window::between(&live.origin.stable, &sensed.stable);
            (w.requests > 0).then_some(100.0 - w.success_rate)
        });
        let watch = Watch {
            rollout: r.clone(),
            start: sensed.stable,
            since: now,
            baseline,
        };
        self.verify.insert(route.into(), watch);
    }

    /// Ends the watches whose window has passed.
    pub(super) fn verify_all(&mut self) {
        let now = self.clock.now_ms();
        let due: Vec<String> = self
            .verify
            .iter()
            .filter(|(route, w)| {
                let window = self.spec(route).and_then(|s| s.verify_window);
                window.is_none_or(|d| now.saturating_sub(w.since) >= d.as_millis() as u64)
            })
            .map(|(route, _)| route.clone())
            .collect();
        for route in due {
            let Some(watch) = self.verify.remove(&route) else {
                continue;
            };
            let Some(spec) = self.spec(&route).cloned() else {
                continue;
            };
            let stable = Window::between(&watch.start, &self.sensor.sense(&watch.rollout).stable);
            let (recovered, why) = verdict(&spec, &stable, watch.baseline);
            let (kind, name) = match recovered {
                true => (EventKind::Recovered, "recovered"),
                false => (EventKind::StillFailing, "still-failing"),
            };
            let message = format!(
                "{} {name} after the rollback: {} requests, {:.2}% ok over {}{why}",
                watch.rollout.stable,
                stable.requests,
                stable.success_rate,
                humantime::format_duration(spec.verify_window.unwrap_or_default()),
            );
            self.effects.event(kind, Some(&route), message.clone());
            let hooks: Vec<_> = spec
                .webhooks
                .iter()
                .filter(|h| matches!(h.on, WebhookKind::Rollback | WebhookKind::Event))
                .cloned()
                .collect();
            if !hooks.is_empty() {
                let mut body = payload(&watch.rollout, name, None);
                body.reason = message;
                self.effects.notify(hooks, body);
            }
        }
    }
}

/// Whether stable is back to normal, and what was wrong if not.
fn verdict(spec: &RolloutSpec, stable: &Window, baseline: Option<f64>) -> (bool, String) {
    let mut bounds = spec.analysis.clone();
    bounds.max_success_rate_drop = None;
    bounds.min_requests = 1;
    let mut wrong = Vec::new();
    if stable.requests == 0 {
        return (true, " (no requests to judge)".into());
    }
    let fixed = judge(&bounds, stable, None);
    if fixed.outcome == Outcome::Fail {
        wrong.extend(fixed.reasons);
    }
    let tolerance = match spec.analysis.compare {
        crate::config::Compare::Sequential => spec.analysis.tolerance.failure_rate,
        crate::config::Compare::Fixed => spec.analysis.max_success_rate_drop.unwrap_or(0.5),
    };
    if let Some(before) = baseline {
        let now = 100.0 - stable.success_rate;
        if now > before + tolerance {
            wrong.push(format!(
                "failure rate {now:.2}% is above the {before:.2}% stable showed during the rollout by more than {tolerance} points"
            ));
        }
    }
    match wrong.is_empty() {
        true => (true, String::new()),
        false => (false, format!(": {}", wrong.join("; "))),
    }
}
