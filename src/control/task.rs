//! The controller task: the one writer of every route's traffic. It owns
//! the [`Record`]s, takes operator calls and config changes as messages,
//! drives rollouts on a timer, and commits every change the same way:
//! persist, publish, record, notify.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, RolloutSpec, Strategy, WebhookKind};
use crate::rollout::{plan, Input, Rollout, Verdict};

use super::clock::Clock;
use super::commands;
use super::effects::Effects;
use super::events::EventKind;
use super::record::Record;
use super::sense::{Sensed, Sensor};
use super::webhook::kind_name;
use super::ControlError;

/// How often active rollouts are looked at (tripwire, readiness, due
/// intervals). Analysis itself runs once per `interval`.
pub const TICK: Duration = Duration::from_millis(100);

pub(super) use super::effects::ticket;
pub use super::msg::{Msg, Reply};
pub(super) use super::webhook::payload;
pub use super::webhook::weights;

/// What status shows of a route: its record (the latest verdict is in it).
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub record: Record,
}

pub type Views = Arc<Mutex<BTreeMap<String, View>>>;

/// In-memory companions of an active rollout.
#[derive(Debug)]
pub(super) struct Live {
    /// The reading the current analysis window started from.
    pub start: Sensed,
    /// When the current analysis window began: one interval clock for
    /// every phase, reset only by a verdict or a change of traffic.
    pub since: u64,
    /// A gate call in flight.
    pub gate: Option<WebhookKind>,
    /// When the confirm-promotion gate was last asked.
    pub gate_asked: Option<u64>,
    /// The interval's own verdict while its external checks run.
    pub checks: Option<Verdict>,
    /// The candidate's cumulative failures when this rollout began (or
    /// this process first drove it): the tripwire counts only failures
    /// after it, never a streak left over from before the rollout.
    pub failures_at_start: u64,
    /// The reading the sequential tests count from (`compare =
    /// "sequential"`), and when it was taken: every request since.
    pub origin: Sensed,
    pub origin_at: u64,
}

impl Live {
    pub fn new(start: Sensed, now: u64) -> Live {
        Live {
            failures_at_start: start.candidate.failures,
            origin: start.clone(),
            origin_at: now,
            start,
            since: now,
            gate: None,
            gate_asked: None,
            checks: None,
        }
    }
}

pub struct Task<E, S> {
    pub(super) config: Arc<Config>,
    pub(super) records: BTreeMap<String, Record>,
    pub(super) live: HashMap<String, Live>,
    pub(super) effects: E,
    pub(super) sensor: S,
    pub(super) clock: Clock,
    pub(super) views: Views,
    /// False while a fleet replica follows: it drives nothing and takes
    /// records from the leader.
    pub(super) deciding: bool,
    /// A fleet leader decides only until this instant (its lease).
    pub(super) until: Option<Until>,
    /// Stable pools watched after a rollback (`verify_window`).
    pub(super) verify: HashMap<String, super::verify::Watch>,
}

/// The instant a fleet leader's right to decide runs out.
pub type Until = Arc<Mutex<tokio::time::Instant>>;

impl<E: Effects, S: Sensor> Task<E, S> {
    pub fn new(config: Arc<Config>, effects: E, sensor: S, clock: Clock, views: Views) -> Self {
        Task {
            config,
            records: BTreeMap::new(),
            live: HashMap::new(),
            effects,
            sensor,
            clock,
            views,
            deciding: true,
            until: None,
            verify: HashMap::new(),
        }
    }

    /// Deciding now: not following, and (in a fleet) the leader's lease
    /// has not run out, even if the fleet task has not noticed yet (a
    /// process resumed after a pause acts on nothing stale).
    pub(super) fn deciding_now(&self) -> bool {
        self.deciding
            && self
                .until
                .as_ref()
                .is_none_or(|u| tokio::time::Instant::now() < *u.lock().unwrap())
    }

    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Msg>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => self.handle(msg),
                    None => break,
                },
                _ = tick.tick(), if self.deciding => {
                    if self.deciding_now() {
                        self.drive_all();
                    }
                }
                () = stop.cancelled() => break,
            }
        }
        let _ = self.effects.persist(&self.records);
    }

    pub(super) fn handle(&mut self, msg: Msg) {
        let operator = matches!(
            msg,
            Msg::Start { .. } | Msg::Weights { .. } | Msg::Command { .. } | Msg::Mirror { .. }
        );
        if operator && !self.deciding_now() {
            let refused = || ControlError::NoLeader("this replica does not lead the fleet".into());
            match msg {
                Msg::Start { reply, .. }
                | Msg::Weights { reply, .. }
                | Msg::Command { reply, .. }
                | Msg::Mirror { reply, .. } => {
                    let _ = reply.send(Err(refused()));
                }
                _ => unreachable!("operator messages only"),
            }
            return;
        }
        match msg {
            Msg::Start {
                route,
                pool,
                strategy,
                reply,
            } => {
                let _ = reply.send(self.start(&route, &pool, strategy));
            }
            Msg::Weights {
                route,
                percent,
                reply,
            } => {
                let result = self.change(&route, EventKind::Weights, |rec, config, now| {
                    commands::set_weights(rec, config, percent, now)
                });
                let _ = reply.send(result);
            }
            Msg::Command {
                route,
                command,
                reply,
            } => {
                let name = route.clone();
                let result = self.change(&route, command.into(), |rec, config, now| {
                    commands::command(rec, config, &name, command, now)
                });
                let _ = reply.send(result);
            }
            Msg::Mirror {
                route,
                mirror,
                reply,
            } => {
                let result = self.change(&route, EventKind::Mirror, |rec, config, _| {
                    commands::set_mirror(rec, config, mirror)
                });
                let _ = reply.send(result);
            }
            Msg::Config { config, reply } => {
                self.reconfigure(config);
                let _ = reply.send(());
            }
            Msg::Gate {
                ticket,
                kind,
                answer,
            } => self.gate_answered(ticket, kind, answer),
            Msg::Checks { ticket, reasons } => self.checks_done(ticket, reasons),
            Msg::Role { deciding, until } => {
                self.deciding = deciding;
                self.until = until;
                if deciding {
                    // A new leader: edits of the file it has not acted on
                    // (a changed pool) start now.
                    self.reconfigure(self.config.clone());
                }
            }
            Msg::Replicate { route, record } => self.replicate(&route, record.map(|r| *r)),
        }
    }

    /// An operator change: edited off to the side, persisted, then
    /// published; a refusal or a failed save changes nothing.
    fn change(
        &mut self,
        route: &str,
        kind: EventKind,
        edit: impl FnOnce(&mut Record, &Config, u64) -> Result<String, ControlError>,
    ) -> Result<(), ControlError> {
        let now = self.clock.now_ms();
        let before = self
            .records
            .get(route)
            .cloned()
            .ok_or_else(|| ControlError::UnknownRoute(route.into()))?;
        let mut after = before.clone();
        let message = edit(&mut after, &self.config, now)?;
        self.settle(&mut after, now);
        let mut next = self.records.clone();
        next.insert(route.into(), after);
        self.effects.persist(&next)?;
        self.records = next;
        self.effects.event(kind, Some(route), message);
        self.commit(route, &before, None);
        Ok(())
    }

    /// Serves the leader's record of `route` as is (following only).
    fn replicate(&mut self, route: &str, record: Option<Record>) {
        if self.deciding {
            return;
        }
        let Some(spec) = self.config.routes.iter().find(|r| r.name == route) else {
            return;
        };
        let record = record.unwrap_or_else(|| Record::fresh(spec));
        let before = self
            .records
            .get(route)
            .cloned()
            .unwrap_or_else(|| Record::fresh(spec));
        if before == record {
            return;
        }
        self.records.insert(route.into(), record);
        let _ = self.effects.persist(&self.records);
        self.commit(route, &before, None);
    }

    /// Starts a rollout (`POST .../rollout`): 409 while one runs.
    fn start(
        &mut self,
        route: &str,
        pool: &str,
        strategy: Option<Strategy>,
    ) -> Result<(), ControlError> {
        let rec = self
            .records
            .get(route)
            .ok_or_else(|| ControlError::UnknownRoute(route.into()))?;
        commands::check_start(rec, &self.config, route, pool, strategy)?;
        let before = rec.clone();
        self.begin(route, pool, strategy);
        if let Err(e) = self.effects.persist(&self.records) {
            self.records.insert(route.into(), before);
            self.live.remove(route);
            return Err(e.into());
        }
        let message = format!("rollout to {pool:?} started");
        self.effects.event(EventKind::Rollout, Some(route), message);
        self.commit(route, &before, None);
        Ok(())
    }

    /// Moves `route` towards `pool` from the pool it serves now: a rollout
    /// with the route's strategy, or an instant switch without one.
    pub(super) fn begin(&mut self, route: &str, pool: &str, strategy: Option<Strategy>) {
        let now = self.clock.now_ms();
        let spec = self.spec(route).cloned();
        let Some(rec) = self.records.get_mut(route) else {
            return;
        };
        let stable = rec.stable_pool().to_string();
        rec.generation += 1;
        rec.verdict = None;
        rec.shadow = None;
        rec.manual = None;
        rec.paused = false;
        rec.stable = Some(stable.clone());
        let Some(mut spec) = spec else {
            commands::switch(rec, route, &stable, pool, true, now);
            return;
        };
        if let Some(strategy) = strategy {
            spec.strategy = strategy;
        }
        let mut r = Rollout::new(route, spec.strategy, &stable, pool, now);
        r.generation = rec.generation;
        let sensed = self.sensor.sense(&r);
        let mut live = Live::new(sensed.clone(), now);
        if self.defer_start(route, &mut r, now) {
            // Starts when the freeze ends (`start_deferred`).
        } else if spec
            .webhooks
            .iter()
            .any(|h| h.on == WebhookKind::PreRollout)
        {
            r.reason = "waiting for the pre-rollout webhook".into();
            live.gate = Some(WebhookKind::PreRollout);
            let ticket = ticket(&r);
            let payload = payload(&r, kind_name(WebhookKind::PreRollout), None);
            let hooks = spec.webhooks.clone();
            self.effects
                .ask_gate(hooks, WebhookKind::PreRollout, payload, ticket);
        } else {
            r = start_now(&spec, &sensed, r, now);
        }
        self.live.insert(route.into(), live);
        if let Some(rec) = self.records.get_mut(route) {
            rec.rollout = Some(r);
        }
    }

    /// The route's `[route.rollout]`, if it has one.
    pub(super) fn spec(&self, route: &str) -> Option<&RolloutSpec> {
        self.config
            .routes
            .iter()
            .find(|r| r.name == route)?
            .rollout
            .as_ref()
    }
}

/// Starts a rollout at once: its first step, or (canary, blue-green, A/B)
/// its first step as soon as a candidate endpoint is healthy, which it
/// usually already is.
pub(super) fn start_now(spec: &RolloutSpec, sensed: &Sensed, r: Rollout, now: u64) -> Rollout {
    let gated = gated(spec);
    let r = plan(spec, sensed.sizes, gated, &r, Input::Tick, now);
    if !r.waiting {
        return r;
    }
    plan(
        spec,
        sensed.sizes,
        gated,
        &r,
        Input::Ready(sensed.ready),
        now,
    )
}

pub(super) fn gated(spec: &RolloutSpec) -> bool {
    spec.webhooks
        .iter()
        .any(|h| h.on == WebhookKind::ConfirmPromotion)
}
