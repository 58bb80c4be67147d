//! The controller task: its state and how each input is handled.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};

use crate::config::{Config, RolloutSpec, Strategy, WebhookKind};
use crate::observe::{StatsSnapshot, Window};
use crate::rollout::analysis::{judge, Outcome, Verdict};
use crate::rollout::plan::{plan, Command, Input, Phase, Rollout, Sizes};
use crate::rollout::query;
use crate::rollout::store::{self, Saved};
use crate::rollout::strategy;
use crate::rollout::traffic::route_traffic;
use crate::rollout::webhook::{kind_name, Payload, Webhooks};
use crate::routing::Routing;

use super::{now_ms, ControlError, Msg, RolloutView, Shared, TICK};
use crate::events::Events;

/// A rollout being driven.
struct Active {
    rollout: Rollout,
    /// Candidate and stable counters when the current interval began.
    window_start: (StatsSnapshot, StatsSnapshot),
    /// A gate webhook call is in flight.
    gate_pending: bool,
    /// The interval's own verdict while its external checks (Prometheus
    /// queries) are being evaluated off the task.
    checks_pending: Option<Verdict>,
    last_verdict: Option<Verdict>,
}

pub(super) struct Task {
    routing: Arc<Routing>,
    shared: Arc<Shared>,
    active: HashMap<String, Active>,
    /// The pool each route serves when no rollout is active.
    serving: HashMap<String, String>,
    /// `route.pool` per the config file, to see which ones a reload changed.
    file_pools: HashMap<String, String>,
    config: Arc<Config>,
    webhooks: Webhooks,
    /// The shared event log: every transition, with its verdict.
    events: Arc<Events>,
    state_dir: Option<PathBuf>,
    tx: mpsc::UnboundedSender<Msg>,
}

type Reply = oneshot::Sender<Result<(), ControlError>>;

impl Task {
    pub(super) fn new(
        routing: Arc<Routing>,
        shared: Arc<Shared>,
        config: Arc<Config>,
        state_dir: Option<PathBuf>,
        events: Arc<Events>,
        tx: mpsc::UnboundedSender<Msg>,
    ) -> Task {
        let file_pools = config
            .routes
            .iter()
            .map(|r| (r.name.clone(), r.pool.clone()))
            .collect();
        let serving = config
            .routes
            .iter()
            .map(|r| (r.name.clone(), r.pool.clone()))
            .collect();
        Task {
            routing,
            shared,
            active: HashMap::new(),
            serving,
            file_pools,
            config,
            webhooks: Webhooks::default(),
            events,
            state_dir,
            tx,
        }
    }

    fn spec(&self, route: &str) -> Option<&RolloutSpec> {
        self.config
            .routes
            .iter()
            .find(|r| r.name == route)?
            .rollout
            .as_ref()
    }

    /// Resumes what the state directory holds: active rollouts continue at
    /// their step and remaining interval; finished ones keep serving what
    /// they ended on, until the config file changes that route's pool.
    pub(super) fn restore(&mut self) {
        let Some(dir) = self.state_dir.clone() else {
            return;
        };
        let saved = match store::load(&dir) {
            Ok(saved) => saved,
            Err(e) => {
                tracing::error!(error = %e, "rollout state not restored");
                self.events.record(
                    "state-error",
                    None,
                    format!("rollout state not restored: {e}"),
                );
                return;
            }
        };
        if saved.rollouts.is_empty() {
            return;
        }
        let config = self.config.clone();
        for rollout in saved.rollouts {
            let Some(route) = config.routes.iter().find(|r| r.name == rollout.route) else {
                continue;
            };
            let known = |p: &str| config.pools.iter().any(|pool| pool.name == p);
            if !known(&rollout.stable) || !known(&rollout.candidate) {
                continue;
            }
            let file_changed = saved
                .file_pools
                .get(&route.name)
                .is_some_and(|p| *p != route.pool);
            let name = rollout.route.clone();
            if rollout.phase.is_active()
                || rollout.phase == Phase::Promoted && !self.finished(&rollout)
            {
                tracing::info!(route = %name, phase = rollout.phase.as_str(), step = rollout.step, "resuming rollout");
                self.publish(&rollout);
                let window_start = self.window_snapshots(&rollout);
                let active = Active {
                    rollout,
                    window_start,
                    gate_pending: false,
                    checks_pending: None,
                    last_verdict: None,
                };
                self.active.insert(name.clone(), active);
            } else {
                let pool = if rollout.phase == Phase::Promoted {
                    &rollout.candidate
                } else {
                    &rollout.stable
                };
                self.serving.insert(name.clone(), pool.clone());
                self.publish(&rollout);
            }
            self.view(&name);
            if file_changed {
                let pool = route.pool.clone();
                self.start(&name, &pool, None);
            }
        }
        self.persist();
    }

    pub(super) async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Msg>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => self.handle(msg),
                    None => break,
                },
                _ = tick.tick() => self.step_all(),
                _ = shutdown.wait_for(|stop| *stop) => break,
            }
        }
        self.persist();
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Start {
                route,
                pool,
                strategy,
                reply,
            } => {
                let result = self
                    .check_start(&route, &pool)
                    .map(|()| self.start(&route, &pool, strategy));
                self.persist();
                let _ = reply.send(result);
            }
            Msg::Command {
                route,
                command,
                reply,
            } => self.command(&route, command, reply),
            Msg::Config(config) => self.config_changed(config),
            Msg::Gate { route, kind, ok } => self.gate_answered(&route, kind, ok),
            Msg::Checks { route, reasons } => self.checks_done(&route, reasons),
        }
    }

    fn check_start(&self, route: &str, pool: &str) -> Result<(), ControlError> {
        if !self.config.routes.iter().any(|r| r.name == route) {
            return Err(ControlError::UnknownRoute(route.into()));
        }
        if !self.config.pools.iter().any(|p| p.name == pool) {
            return Err(ControlError::UnknownPool(pool.into()));
        }
        let serving = self
            .active
            .get(route)
            .map(|a| &a.rollout.candidate)
            .or(self.serving.get(route));
        if serving.is_some_and(|s| s == pool) {
            return Err(ControlError::AlreadyServing(route.into(), pool.into()));
        }
        Ok(())
    }

    /// Starts moving `route` to `pool` from what it serves now.
    fn start(&mut self, route: &str, pool: &str, strategy: Option<Strategy>) {
        let now = now_ms();
        // A rollout in progress is superseded: it starts over from its stable.
        let stable = match self.active.remove(route) {
            Some(old) => old.rollout.stable,
            None => self.serving.get(route).cloned().unwrap_or_default(),
        };
        if stable == pool {
            self.serving.insert(route.into(), stable.clone());
            let r = Rollout::new(
                route,
                strategy.unwrap_or(Strategy::Canary),
                &stable,
                pool,
                now,
            );
            let r = r.promote("superseded rollout returned to the stable pool", now);
            self.publish(&r);
            self.record(&r, None);
            return;
        }
        let spec = self.spec(route).cloned();
        let Some(mut spec) = spec else {
            // No [route.rollout]: an instant switch (with drain).
            let r = Rollout::new(route, Strategy::Recreate, &stable, pool, now)
                .promote("instant switch", now);
            self.serving.insert(route.into(), pool.into());
            self.publish(&r);
            self.record(&r, None);
            self.hooks(&r, WebhookKind::PostRollout, None);
            return;
        };
        if let Some(strategy) = strategy {
            spec.strategy = strategy;
        }
        let mut r = Rollout::new(route, spec.strategy, &stable, pool, now);
        let gated = spec
            .webhooks
            .iter()
            .any(|h| h.on == WebhookKind::PreRollout);
        if gated {
            r.reason = "waiting for the pre-rollout webhook".into();
        } else {
            r = plan(&spec, self.sizes(&r), false, &r, Input::Tick, now);
        }
        let window_start = self.window_snapshots(&r);
        self.active.insert(
            route.into(),
            Active {
                rollout: r.clone(),
                window_start,
                gate_pending: gated,
                checks_pending: None,
                last_verdict: None,
            },
        );
        if gated {
            self.spawn_gate(&r, WebhookKind::PreRollout, &spec);
        }
        self.publish(&r);
        self.record(&r, None);
        self.hooks(&r, WebhookKind::Rollout, None);
    }

    fn command(&mut self, route: &str, command: Command, reply: Reply) {
        if !self.config.routes.iter().any(|r| r.name == route) {
            let _ = reply.send(Err(ControlError::UnknownRoute(route.into())));
            return;
        }
        let Some(active) = self.active.get(route) else {
            let _ = reply.send(Err(ControlError::NoRollout(route.into())));
            return;
        };
        let spec = self
            .spec(route)
            .cloned()
            .unwrap_or_else(|| default_spec(active.rollout.strategy));
        let before = active.rollout.clone();
        let after = plan(
            &spec,
            self.sizes(&before),
            gated(&spec),
            &before,
            Input::Command(command),
            now_ms(),
        );
        self.apply(route, after, None);
        let _ = reply.send(Ok(()));
    }

    fn config_changed(&mut self, config: Arc<Config>) {
        self.config = config.clone();
        let mut starts = Vec::new();
        for route in &config.routes {
            let before = self
                .file_pools
                .insert(route.name.clone(), route.pool.clone());
            if before.is_some_and(|p| p != route.pool) {
                starts.push((route.name.clone(), route.pool.clone()));
            }
            self.serving
                .entry(route.name.clone())
                .or_insert_with(|| route.pool.clone());
        }
        for (route, pool) in starts {
            if self.check_start(&route, &pool).is_ok() {
                tracing::info!(%route, %pool, "config changed the route's pool: starting a rollout");
                self.start(&route, &pool, None);
            }
        }
        // Republish active rollouts: the new snapshot must keep their traffic.
        let active: Vec<Rollout> = self.active.values().map(|a| a.rollout.clone()).collect();
        for r in &active {
            self.publish(r);
        }
        self.persist();
    }

    fn gate_answered(&mut self, route: &str, kind: WebhookKind, ok: bool) {
        let Some(active) = self.active.get_mut(route) else {
            return;
        };
        active.gate_pending = false;
        let before = active.rollout.clone();
        let spec = self
            .spec(route)
            .cloned()
            .unwrap_or_else(|| default_spec(before.strategy));
        let now = now_ms();
        let after = match (kind, ok) {
            (WebhookKind::PreRollout, true) => plan(
                &spec,
                self.sizes(&before),
                gated(&spec),
                &before,
                Input::Tick,
                now,
            ),
            (WebhookKind::PreRollout, false) => {
                let mut r = before
                    .clone()
                    .roll_back_now("pre-rollout webhook refused", now);
                r.phase = Phase::RolledBack;
                r
            }
            (WebhookKind::ConfirmPromotion, true) => plan(
                &spec,
                self.sizes(&before),
                true,
                &before,
                Input::GateOpened,
                now,
            ),
            _ => {
                let mut r = before.clone();
                r.since_ms = now;
                r
            }
        };
        self.apply(route, after, None);
    }

    /// One pass over every active rollout.
    fn step_all(&mut self) {
        let routes: Vec<String> = self.active.keys().cloned().collect();
        for route in routes {
            self.step(&route);
        }
    }

    fn step(&mut self, route: &str) {
        let Some(spec) = self.spec(route).cloned() else {
            return;
        };
        let Some(active) = self.active.get(route) else {
            return;
        };
        if active.gate_pending {
            return;
        }
        let now = now_ms();
        let mut r = active.rollout.clone();
        let sizes = self.sizes(&r);
        let gate = gated(&spec);
        if let Some(n) = spec.tripwire {
            let failures = self
                .candidate_stats(&r)
                .map_or(0, |s| s.consecutive_failures());
            if failures >= u64::from(n)
                && matches!(
                    r.phase,
                    Phase::Progressing | Phase::AwaitingPromotion | Phase::Promoted
                )
            {
                r = plan(
                    &spec,
                    sizes,
                    gate,
                    &r,
                    Input::Tripwire(failures as u32),
                    now,
                );
            }
        }
        if matches!(r.strategy, Strategy::Rolling | Strategy::Recreate)
            && r.phase == Phase::Progressing
        {
            r = plan(
                &spec,
                sizes,
                gate,
                &r,
                Input::Ready(self.ready_candidates(&r)),
                now,
            );
        }
        let mut verdict = None;
        let checking = self.active[route].checks_pending.is_some();
        if matches!(r.phase, Phase::Progressing | Phase::Promoted)
            && r.interval_due(&spec, now)
            && !checking
        {
            let v = self.analyse(route, &spec, &r);
            if spec.analysis.queries.is_empty() || v.outcome == Outcome::Inconclusive {
                r = plan(&spec, sizes, gate, &r, Input::Interval(&v), now);
                verdict = Some(v);
            } else {
                self.spawn_checks(route, &spec, v);
            }
        }
        if r.phase == Phase::AwaitingPromotion && gate && r.interval_due(&spec, now) {
            r.since_ms = now;
            if let Some(active) = self.active.get_mut(route) {
                active.gate_pending = true;
            }
            self.spawn_gate(&r, WebhookKind::ConfirmPromotion, &spec);
        }
        // Time passing acts only when nothing else did this round, so every
        // phase (rolling-back included) is seen and recorded.
        if r == self.active[route].rollout {
            r = plan(&spec, sizes, gate, &r, Input::Tick, now);
        }
        self.apply(route, r, verdict);
    }

    /// Records a transition: publishes its traffic, logs the event, calls
    /// webhooks, persists, and retires finished rollouts.
    fn apply(&mut self, route: &str, after: Rollout, verdict: Option<Verdict>) {
        let Some(active) = self.active.get_mut(route) else {
            return;
        };
        if let Some(v) = &verdict {
            active.last_verdict = Some(v.clone());
        }
        let before = std::mem::replace(&mut active.rollout, after.clone());
        let changed = before.phase != after.phase
            || before.traffic != after.traffic
            || before.reason != after.reason;
        if verdict.is_none() && !changed && before == after {
            return;
        }
        self.publish(&after);
        self.record(&after, verdict.clone());
        if before.phase != after.phase || before.traffic != after.traffic {
            let kind = match after.phase {
                Phase::RollingBack | Phase::RolledBack => WebhookKind::Rollback,
                Phase::Promoted => WebhookKind::PostRollout,
                _ => WebhookKind::Rollout,
            };
            self.hooks(&after, kind, verdict);
        }
        let done = after.phase == Phase::RolledBack
            || after.phase == Phase::Promoted && self.finished(&after);
        if done {
            let pool = if after.phase == Phase::Promoted {
                &after.candidate
            } else {
                &after.stable
            };
            self.serving.insert(route.into(), pool.clone());
            self.active.remove(route);
        }
        self.persist();
    }

    fn finished(&self, r: &Rollout) -> bool {
        match self.spec(&r.route) {
            Some(spec) => strategy::finished(spec, r, now_ms()),
            None => true,
        }
    }

    fn analyse(&mut self, route: &str, spec: &RolloutSpec, r: &Rollout) -> Verdict {
        let now = self.window_snapshots(r);
        let active = self
            .active
            .get_mut(route)
            .expect("analysed rollouts are active");
        let (c0, s0) = std::mem::replace(&mut active.window_start, now.clone());
        let candidate = Window::between(&c0, &now.0);
        let stable = Window::between(&s0, &now.1);
        let stable = (stable.requests > 0).then_some(stable);
        judge(&spec.analysis, &candidate, stable.as_ref())
    }

    fn window_snapshots(&self, r: &Rollout) -> (StatsSnapshot, StatsSnapshot) {
        let snap = |pool: &str| {
            self.stats(&r.route, pool)
                .map(|s| s.snapshot())
                .unwrap_or_default()
        };
        (snap(&r.candidate), snap(&r.stable))
    }

    fn stats(&self, route: &str, pool: &str) -> Option<Arc<crate::observe::RoutePoolStats>> {
        let snapshot = self.routing.load();
        let version = snapshot.pool(pool)?.version.clone().unwrap_or_default();
        Some(self.routing.registry.stats(route, pool, &version))
    }

    fn candidate_stats(&self, r: &Rollout) -> Option<Arc<crate::observe::RoutePoolStats>> {
        self.stats(&r.route, &r.candidate)
    }

    fn sizes(&self, r: &Rollout) -> Sizes {
        let snapshot = self.routing.load();
        let count = |name: &str| snapshot.pool(name).map_or(0, |p| p.endpoints.len());
        Sizes {
            stable_endpoints: count(&r.stable),
            candidate_endpoints: count(&r.candidate),
        }
    }

    /// Healthy candidate endpoints among those the rollout put in rotation.
    fn ready_candidates(&self, r: &Rollout) -> usize {
        let snapshot = self.routing.load();
        let Some(pool) = snapshot.pool(&r.candidate) else {
            return 0;
        };
        let limit = r.traffic.candidate_endpoints.unwrap_or(usize::MAX);
        pool.endpoints
            .iter()
            .take(limit)
            .filter(|e| e.is_healthy())
            .count()
    }

    fn publish(&self, r: &Rollout) {
        let traffic = route_traffic(self.spec(&r.route), r);
        self.routing.set_traffic(&r.route, Some(traffic));
    }

    fn view(&self, route: &str) {
        let Some(active) = self.active.get(route) else {
            return;
        };
        let view = RolloutView {
            rollout: active.rollout.clone(),
            phase_name: active.rollout.phase.as_str(),
            last_verdict: active.last_verdict.clone(),
        };
        self.shared.views.lock().unwrap().insert(route.into(), view);
    }

    fn record(&self, r: &Rollout, verdict: Option<Verdict>) {
        let mut views = self.shared.views.lock().unwrap();
        let last_verdict = verdict
            .clone()
            .or_else(|| views.get(&r.route).and_then(|v| v.last_verdict.clone()));
        views.insert(
            r.route.clone(),
            RolloutView {
                rollout: r.clone(),
                phase_name: r.phase.as_str(),
                last_verdict,
            },
        );
        drop(views);
        self.events.transition(
            &r.route,
            r.phase.as_str(),
            weights(r),
            r.reason.clone(),
            verdict,
        );
    }

    fn payload(r: &Rollout, event: &'static str, verdict: Option<Verdict>) -> Payload {
        Payload {
            event,
            route: r.route.clone(),
            phase: r.phase.as_str(),
            stable: r.stable.clone(),
            candidate: r.candidate.clone(),
            weights: weights(r),
            reason: r.reason.clone(),
            verdict,
        }
    }

    /// Fire-and-forget webhooks of `kind` (and `event` for every change).
    fn hooks(&self, r: &Rollout, kind: WebhookKind, verdict: Option<Verdict>) {
        let Some(spec) = self.spec(&r.route) else {
            return;
        };
        let hooks: Vec<_> = spec
            .webhooks
            .iter()
            .filter(|h| h.on == kind || h.on == WebhookKind::Event)
            .cloned()
            .collect();
        if hooks.is_empty() {
            return;
        }
        let payload = Self::payload(r, kind_name(kind), verdict);
        let webhooks = self.webhooks.clone();
        tokio::spawn(async move {
            for hook in hooks {
                webhooks.call(&hook, &payload).await;
            }
        });
    }

    /// Runs the interval's external checks off the task; the completed
    /// verdict comes back as a message.
    fn spawn_checks(&mut self, route: &str, spec: &RolloutSpec, verdict: Verdict) {
        if let Some(active) = self.active.get_mut(route) {
            active.checks_pending = Some(verdict);
        }
        let (queries, tx, route) = (
            spec.analysis.queries.clone(),
            self.tx.clone(),
            route.to_string(),
        );
        tokio::spawn(async move {
            let reasons = query::check_all(&queries).await;
            let _ = tx.send(Msg::Checks { route, reasons });
        });
    }

    fn checks_done(&mut self, route: &str, reasons: Vec<String>) {
        let Some(active) = self.active.get_mut(route) else {
            return;
        };
        let Some(mut verdict) = active.checks_pending.take() else {
            return;
        };
        if !reasons.is_empty() {
            verdict.outcome = Outcome::Fail;
            verdict.reasons.extend(reasons);
        }
        let before = active.rollout.clone();
        let spec = self
            .spec(route)
            .cloned()
            .unwrap_or_else(|| default_spec(before.strategy));
        let after = plan(
            &spec,
            self.sizes(&before),
            gated(&spec),
            &before,
            Input::Interval(&verdict),
            now_ms(),
        );
        self.apply(route, after, Some(verdict));
    }

    /// Calls the gate webhooks of `kind`; the answer comes back as a message.
    fn spawn_gate(&self, r: &Rollout, kind: WebhookKind, spec: &RolloutSpec) {
        let payload = Self::payload(r, kind_name(kind), None);
        let (webhooks, hooks, tx, route) = (
            self.webhooks.clone(),
            spec.webhooks.clone(),
            self.tx.clone(),
            r.route.clone(),
        );
        tokio::spawn(async move {
            let ok = webhooks.all(&hooks, kind, &payload).await;
            let _ = tx.send(Msg::Gate { route, kind, ok });
        });
    }

    fn persist(&self) {
        let Some(dir) = &self.state_dir else { return };
        let views = self.shared.views.lock().unwrap();
        let saved = Saved {
            rollouts: views.values().map(|v| v.rollout.clone()).collect(),
            file_pools: self.file_pools.clone(),
        };
        drop(views);
        if let Err(e) = store::save(dir, &saved) {
            tracing::error!(error = %e, "rollout state not saved");
        }
    }
}

fn gated(spec: &RolloutSpec) -> bool {
    spec.webhooks
        .iter()
        .any(|h| h.on == WebhookKind::ConfirmPromotion)
}

fn weights(r: &Rollout) -> Vec<(String, u32)> {
    let w = r.traffic.candidate_weight.min(100);
    if r.phase == Phase::Promoted && w == 100 {
        return vec![(r.candidate.clone(), 100), (r.stable.clone(), 0)];
    }
    vec![(r.candidate.clone(), w), (r.stable.clone(), 100 - w)]
}

/// The spec commands use on a route whose `[route.rollout]` is gone.
fn default_spec(strategy: Strategy) -> RolloutSpec {
    RolloutSpec {
        strategy,
        interval: std::time::Duration::from_secs(60),
        threshold: 3,
        tripwire: None,
        steps: vec![100],
        hold: std::time::Duration::ZERO,
        max_surge: 1,
        max_unavailable: 0,
        ready_timeout: std::time::Duration::from_secs(60),
        preview_header: http::HeaderName::from_static("x-veer-preview"),
        auto_promote: true,
        rollback_window: std::time::Duration::ZERO,
        ab_match: None,
        iterations: 1,
        analysis: crate::config::AnalysisSpec {
            min_requests: 0,
            success_rate: None,
            p50: None,
            p95: None,
            p99: None,
            max_success_rate_drop: None,
            queries: vec![],
        },
        webhooks: vec![],
    }
}
