//! Deployment windows (`freeze`, per route and in `[proxy]`): inside one
//! no rollout starts or moves forward; a rollback, a failed analysis and
//! an operator's command always act. A rollout asked for during a freeze
//! waits, idle, and starts when the freeze ends.

use serde::{Deserialize, Serialize};

use crate::config::freeze::{frozen_until, FreezeWindow};
use crate::config::{Config, RolloutSpec};
use crate::rollout::{Phase, Rollout};

use super::effects::Effects;
use super::sense::Sensor;
use super::task::{payload, start_now, ticket, Live, Task};
use super::webhook::kind_name;

/// `"freeze"` of a route in `GET /api/v1/status`, present while frozen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FreezeStatus {
    /// The window that holds it, as written.
    pub window: String,
    /// When rollouts may move again: Unix ms and RFC 3339 (UTC).
    pub until_ms: u64,
    pub until: String,
}

/// The freeze holding `route` at `now_ms`, if any.
pub fn freeze_status(config: &Config, route: &str, now_ms: u64) -> Option<FreezeStatus> {
    let own = config
        .routes
        .iter()
        .find(|r| r.name == route)
        .and_then(|r| r.rollout.as_ref())
        .map_or(&[][..], |r: &RolloutSpec| &r.freeze[..]);
    let all: Vec<FreezeWindow> = config.proxy.freeze.iter().chain(own).cloned().collect();
    let (until_ms, window) = frozen_until(&all, now_ms)?;
    Some(FreezeStatus {
        window: window.text.clone(),
        until_ms,
        until: rfc3339(until_ms),
    })
}

/// `2026-12-07T08:00:00Z`.
pub fn rfc3339(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(ms as i64).map_or_else(|_| ms.to_string(), |t| t.to_string())
}

/// Why a rollout holds: `deployment freeze (WINDOW) until TIME`.
fn held(f: &FreezeStatus) -> String {
    format!("deployment freeze ({}) until {}", f.window, f.until)
}

/// The planner moved the rollout forward: started it, raised the
/// candidate's share, switched or promoted. Backwards is never held.
fn advances(before: &Rollout, next: &Rollout) -> bool {
    if matches!(
        next.phase,
        Phase::RollingBack | Phase::RolledBack | Phase::Paused
    ) {
        return false;
    }
    before.phase != next.phase
        || before.traffic != next.traffic
        || before.step != next.step
        || (before.waiting && !next.waiting)
}

impl<E: Effects, S: Sensor> Task<E, S> {
    pub(super) fn frozen(&self, route: &str, now: u64) -> Option<FreezeStatus> {
        freeze_status(&self.config, route, now)
    }

    /// `next` as planned, or `before` held where it is during a freeze.
    pub(super) fn hold_if_frozen(
        &self,
        route: &str,
        before: Option<&Rollout>,
        next: Rollout,
        now: u64,
    ) -> Rollout {
        let Some(before) = before.filter(|b| b.generation == next.generation) else {
            return next;
        };
        if !advances(before, &next) {
            return next;
        }
        let Some(freeze) = self.frozen(route, now) else {
            return next;
        };
        let mut r = before.clone();
        r.failed_checks = next.failed_checks;
        r.reason = format!("{}: holding", held(&freeze));
        r
    }

    /// Starting `r` now would break a freeze: it waits, idle, instead.
    pub(super) fn defer_start(&self, route: &str, r: &mut Rollout, now: u64) -> bool {
        let Some(freeze) = self.frozen(route, now) else {
            return false;
        };
        r.reason = format!("{}: the rollout starts then", held(&freeze));
        true
    }

    /// A rollout deferred by a freeze starts once the freeze is over (as
    /// `begin` would have: the pre-rollout gate first, if any).
    pub(super) fn start_deferred(&mut self, route: &str, spec: &RolloutSpec, r: Rollout) {
        let now = self.clock.now_ms();
        let mut next = r.clone();
        if self.defer_start(route, &mut next, now) {
            if next != r {
                self.apply(route, next, None);
            }
            return;
        }
        // max_duration counts from the real start.
        next.started_ms = now;
        let sensed = self.sensor.sense(&next);
        let mut live = Live::new(sensed.clone(), now);
        let pre = crate::config::WebhookKind::PreRollout;
        if spec.webhooks.iter().any(|h| h.on == pre) {
            next.reason = "waiting for the pre-rollout webhook".into();
            live.gate = Some(pre);
            let payload = payload(&next, kind_name(pre), None);
            self.effects
                .ask_gate(spec.webhooks.clone(), pre, payload, ticket(&next));
        } else {
            next = start_now(spec, &sensed, next, now);
        }
        self.live.insert(route.into(), live);
        self.apply(route, next, None);
    }
}
