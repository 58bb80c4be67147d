//! Driving a rollout on the timer: sense, then feed the planner its inputs
//! (tripwire, readiness, a due analysis interval, gates, time), then
//! commit what changed. Safety never sleeps: the tripwire and failing
//! analyses are judged in every phase where the candidate serves users,
//! paused and gated included.

use crate::config::{RolloutSpec, Strategy, WebhookKind};
use crate::observe::Window;
use crate::rollout::{judge, plan, Input, Outcome, Phase, Rollout, Verdict};

use super::effects::{Effects, Ticket};
use super::events::EventKind;
use super::sense::Sensor;
use super::sequential;
use super::task::{gated, payload, start_now, ticket, Live, Task};
use super::webhook::kind_name;

impl<E: Effects, S: Sensor> Task<E, S> {
    pub(super) fn drive_all(&mut self) {
        let active: Vec<String> = self
            .records
            .iter()
            .filter(|(_, rec)| rec.rollout.is_some())
            .map(|(name, _)| name.clone())
            .collect();
        for route in active {
            self.drive(&route);
        }
        self.verify_all();
    }

    fn drive(&mut self, route: &str) {
        let Some(r) = self.records.get(route).and_then(|rec| rec.rollout.clone()) else {
            return;
        };
        let now = self.clock.now_ms();
        let spec = self.spec_or_default(route, r.strategy);
        let gate = gated(&spec);
        let sensed = self.sensor.sense(&r);
        let live = self
            .live
            .entry(route.into())
            .or_insert_with(|| Live::new(sensed.clone(), now));
        if live.gate == Some(WebhookKind::PreRollout) {
            // Not started: no user reaches the candidate yet.
            return;
        }
        if r.phase == Phase::Idle {
            // Deferred by a deployment freeze.
            return self.start_deferred(route, &spec, r);
        }
        let sizes = sensed.sizes;
        let mut next = r.clone();
        if let Some(n) = spec.tripwire {
            // The streak, but never more than the failures since the
            // rollout began: a streak from before it does not count.
            let since_start = sensed
                .candidate
                .failures
                .saturating_sub(live.failures_at_start);
            let failures = sensed.consecutive_failures.min(since_start);
            if next.judged() && failures >= u64::from(n) {
                let input = Input::Tripwire(failures.min(u64::from(u32::MAX)) as u32);
                next = plan(&spec, sizes, gate, &next, input, now);
            }
        }
        let readiness =
            next.waiting || matches!(next.strategy, Strategy::Rolling | Strategy::Recreate);
        if next.phase == Phase::Progressing && readiness {
            next = plan(&spec, sizes, gate, &next, Input::Ready(sensed.ready), now);
        }
        let mut verdict = None;
        let mut shadow_summary = None;
        if !sensed.lagging.is_empty() {
            // A fleet's interval starts once every replica serves the step.
            (live.start, live.since) = (sensed.clone(), now);
        }
        sequential::keep_origin(live, &sensed, now);
        let due = now.saturating_sub(live.since) >= spec.interval.as_millis() as u64;
        let early =
            !due && next.judged() && sequential::fails_early(&spec.analysis, live, &sensed, now);
        if next.judged() && live.checks.is_none() && (due || early) {
            let candidate = Window::between(&live.start.candidate, &sensed.candidate);
            let stable = Window::between(&live.start.stable, &sensed.stable);
            let stable = (stable.requests > 0).then_some(stable);
            let mut v = match (&spec.shadow, next.shadow) {
                (Some(shadow), true) => {
                    let (v, summary) = super::shadow::judge(shadow, &next, &live.start, &sensed);
                    shadow_summary = Some(summary);
                    v
                }
                _ => {
                    let fixed = judge(&spec.analysis, &candidate, stable.as_ref());
                    sequential::verdict(&spec.analysis, live, &sensed, fixed, now)
                }
            };
            if let Some(why) = incomplete(&live.start, &sensed) {
                // A fleet interval counts only when every replica's is in.
                v.outcome = Outcome::Inconclusive;
                v.reasons = vec![why];
            }
            (live.start, live.since) = (sensed, now);
            let own = spec.analysis.queries.is_empty() || next.shadow;
            if own || v.outcome == Outcome::Inconclusive {
                next = plan(&spec, sizes, gate, &next, Input::Interval(&v), now);
                verdict = Some(v);
            } else {
                live.checks = Some(v);
                self.effects
                    .check(spec.analysis.queries.clone(), ticket(&next));
            }
        }
        let live = self.live.get_mut(route).expect("inserted above");
        let ask_again = live
            .gate_asked
            .is_none_or(|at| now.saturating_sub(at) >= spec.interval.as_millis() as u64);
        if next.phase == Phase::AwaitingPromotion && gate && live.gate.is_none() && ask_again {
            live.gate = Some(WebhookKind::ConfirmPromotion);
            live.gate_asked = Some(now);
            let kind = WebhookKind::ConfirmPromotion;
            let payload = payload(&next, kind_name(kind), None);
            self.effects
                .ask_gate(spec.webhooks.clone(), kind, payload, ticket(&next));
        }
        // Time passing acts only when nothing else did this round, so every
        // phase (rolling-back included) is seen and recorded.
        if next == r {
            next = plan(&spec, sizes, gate, &next, Input::Tick, now);
        }
        if let (Some(summary), Some(rec)) = (shadow_summary, self.records.get_mut(route)) {
            let line = summary.describe();
            rec.shadow = Some(summary);
            self.effects.event(EventKind::Shadow, Some(route), line);
        }
        self.apply(route, next, verdict);
    }

    /// Records what the planner decided.
    pub(super) fn apply(&mut self, route: &str, next: Rollout, verdict: Option<Verdict>) {
        let now = self.clock.now_ms();
        let Some(before) = self.records.get(route).cloned() else {
            return;
        };
        let next = self.hold_if_frozen(route, before.rollout.as_ref(), next, now);
        let mut after = before.clone();
        after.rollout = Some(next);
        if verdict.is_some() {
            after.verdict.clone_from(&verdict);
        }
        self.settle(&mut after, now);
        if after == before && verdict.is_none() {
            return;
        }
        self.records.insert(route.into(), after);
        let _ = self.effects.persist(&self.records);
        self.commit(route, &before, verdict);
    }

    pub(super) fn gate_answered(
        &mut self,
        ticket: Ticket,
        kind: WebhookKind,
        answer: Result<(), String>,
    ) {
        let route = ticket.route.as_str();
        let name = kind_name(kind);
        let current = self.records.get(route).and_then(|rec| rec.rollout.clone());
        let Some(r) = current.filter(|r| r.generation == ticket.generation) else {
            let msg = format!("{name} webhook answered for an earlier rollout; ignored");
            self.effects.event(EventKind::Gate, Some(route), msg);
            return;
        };
        if let Some(live) = self.live.get_mut(route) {
            live.gate = None;
        }
        let now = self.clock.now_ms();
        let spec = self.spec_or_default(route, r.strategy);
        let sizes = self.sensor.sense(&r).sizes;
        let next = match (kind, answer) {
            (WebhookKind::PreRollout, Ok(())) => {
                let sensed = self.sensor.sense(&r);
                start_now(&spec, &sensed, r, now)
            }
            (WebhookKind::ConfirmPromotion, Ok(())) => {
                plan(&spec, sizes, true, &r, Input::GateOpened, now)
            }
            (WebhookKind::PreRollout, Err(why)) => {
                let msg = format!("pre-rollout webhook: {why}; rollout not started");
                self.effects.event(EventKind::Gate, Some(route), msg);
                r.aborted(format!("pre-rollout webhook refused: {why}"), now)
            }
            (_, Err(why)) => {
                let again = humantime::format_duration(spec.interval);
                let msg = format!("{name} webhook: {why}; asking again in {again}");
                self.effects.event(EventKind::Gate, Some(route), msg);
                return;
            }
            (_, Ok(())) => return,
        };
        self.apply(route, next, None);
    }

    pub(super) fn checks_done(&mut self, ticket: Ticket, reasons: Vec<String>) {
        let route = ticket.route.as_str();
        let current = self.records.get(route).and_then(|rec| rec.rollout.clone());
        let Some(r) = current.filter(|r| r.generation == ticket.generation) else {
            return;
        };
        let Some(mut verdict) = self.live.get_mut(route).and_then(|l| l.checks.take()) else {
            return;
        };
        if !reasons.is_empty() {
            verdict.outcome = Outcome::Fail;
            verdict.reasons.extend(reasons);
        }
        let now = self.clock.now_ms();
        let spec = self.spec_or_default(route, r.strategy);
        let sizes = self.sensor.sense(&r).sizes;
        let next = plan(
            &spec,
            sizes,
            gated(&spec),
            &r,
            Input::Interval(&verdict),
            now,
        );
        self.apply(route, next, Some(verdict));
    }

    /// The route's `[route.rollout]`, or defaults for commands on a route
    /// whose table was removed while its rollout ran.
    pub(super) fn spec_or_default(&self, route: &str, strategy: Strategy) -> RolloutSpec {
        self.spec(route)
            .cloned()
            .unwrap_or_else(|| default_spec(strategy))
    }
}

/// Why a fleet's interval cannot be judged: a live replica's counters are
/// missing, or a replica restarted (or joined) during it.
fn incomplete(start: &super::sense::Sensed, end: &super::sense::Sensed) -> Option<String> {
    if !end.drift.is_empty() {
        let who = end.drift.join(", ");
        return Some(format!(
            "the route's config differs on replica {who}; holding"
        ));
    }
    if !end.missing.is_empty() {
        return Some(format!(
            "no counters from replica {}",
            end.missing.join(", ")
        ));
    }
    (start.sources != end.sources)
        .then(|| "the fleet's replicas changed during the interval".to_string())
}

/// Commands still act on a rollout whose `[route.rollout]` was removed:
/// one step, no window, no evidence needed.
fn default_spec(strategy: Strategy) -> RolloutSpec {
    let mut spec = RolloutSpec::defaults(strategy);
    spec.steps = vec![100];
    spec.rollback_window = std::time::Duration::ZERO;
    spec.analysis.min_requests = 0;
    spec
}
