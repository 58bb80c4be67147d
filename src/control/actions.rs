//! What operators do to a route at run time: set weights, start a rollout,
//! and act on it. Each action validates, persists, then publishes.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{Config, Strategy};
use crate::state::{Basis, RolloutRequest, RouteState, SavedWeights};

use super::{to_weights, Control, ControlError};

/// `POST /api/v1/routes/{route}/{action}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Promote,
    Abort,
    Pause,
    Resume,
    Rollback,
}

impl Action {
    pub fn parse(name: &str) -> Option<Action> {
        Some(match name {
            "promote" => Action::Promote,
            "abort" => Action::Abort,
            "pause" => Action::Pause,
            "resume" => Action::Resume,
            "rollback" => Action::Rollback,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Promote => "promote",
            Action::Abort => "abort",
            Action::Pause => "pause",
            Action::Resume => "resume",
            Action::Rollback => "rollback",
        }
    }
}

impl Control {
    /// `PUT .../weights`: a manual split, effective on the next request;
    /// pauses the route until `resume`, `promote` or `abort`.
    pub fn set_weights(
        &self,
        route: &str,
        percent: Vec<(String, u32)>,
    ) -> Result<(), ControlError> {
        self.change(route, "weights", |config, current, state| {
            if percent.is_empty() {
                return Err(ControlError::BadRequest("no weights given".into()));
            }
            for (pool, _) in &percent {
                known_pool(config, pool)?;
            }
            let sum: u32 = percent.iter().map(|(_, w)| *w).sum();
            if sum != 100 {
                return Err(ControlError::BadRequest(format!(
                    "weights sum to {sum}, not 100"
                )));
            }
            let w = SavedWeights {
                stable: current.stable.clone(),
                percent: percent.clone(),
            };
            state.candidate = candidate(&w);
            state.weights = Some(w);
            state.paused = true;
            state.phase = "paused".into();
            Ok(format!("weights set to {} (route paused)", show(&percent)))
        })
    }

    /// `POST .../rollout`. Without the controller: an instant switch of
    /// 100% to `pool`, which becomes stable.
    pub fn rollout(
        &self,
        route: &str,
        pool: &str,
        strategy: Option<&str>,
    ) -> Result<(), ControlError> {
        if let Some(s) = strategy {
            parse_strategy(s)?;
        }
        self.change(route, "rollout", |config, current, state| {
            known_pool(config, pool)?;
            let at = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            state.rollout = Some(RolloutRequest {
                pool: pool.to_string(),
                strategy: strategy.map(str::to_string),
                at,
            });
            if current.stable != pool {
                state.previous = Some(current.stable.clone());
            }
            switch_to(state, pool);
            state.phase = "promoted".into();
            Ok(format!(
                "rollout to {pool:?} requested: switched 100% to it"
            ))
        })
    }

    /// `promote`, `abort`, `pause`, `resume`, `rollback`.
    pub fn act(&self, route: &str, action: Action) -> Result<(), ControlError> {
        self.change(route, action.as_str(), |_, current, state| {
            let cand = candidate(&current);
            let message = match action {
                Action::Pause => {
                    state.paused = true;
                    state.phase = "paused".into();
                    "paused".to_string()
                }
                Action::Resume => {
                    state.paused = false;
                    state.phase = "idle".into();
                    "resumed".to_string()
                }
                Action::Promote => {
                    state.paused = false;
                    match cand {
                        Some(c) => {
                            state.previous = Some(current.stable.clone());
                            switch_to(state, &c);
                            state.phase = "promoted".into();
                            format!("promoted {c:?} to 100%")
                        }
                        None => {
                            state.phase = "idle".into();
                            "nothing to promote; pause cleared".to_string()
                        }
                    }
                }
                Action::Abort => {
                    state.paused = false;
                    switch_to(state, &current.stable);
                    state.phase = if cand.is_some() {
                        "rolled-back"
                    } else {
                        "idle"
                    }
                    .into();
                    format!("aborted: 100% to {:?}", current.stable)
                }
                Action::Rollback => {
                    let target = match (cand, &state.previous) {
                        (Some(_), _) => current.stable.clone(),
                        (None, Some(prev)) => prev.clone(),
                        (None, None) => {
                            return Err(ControlError::Conflict(
                                "nothing to roll back: no candidate and no previous pool".into(),
                            ))
                        }
                    };
                    state.paused = false;
                    state.previous = None;
                    switch_to(state, &target);
                    state.phase = "rolled-back".into();
                    format!("rolled back: 100% to {target:?}")
                }
            };
            Ok(message)
        })
    }

    /// Applies `edit` to `route`'s state, persists it, publishes the
    /// weights and records an event. `edit` sees the config and the split
    /// the route applies now.
    fn change(
        &self,
        route: &str,
        kind: &str,
        edit: impl FnOnce(&Config, SavedWeights, &mut RouteState) -> Result<String, ControlError>,
    ) -> Result<(), ControlError> {
        let mut inner = self.inner.lock().unwrap();
        let snapshot = std::sync::Arc::clone(&self.routing.load());
        let config = &snapshot.config;
        let spec = config
            .routes
            .iter()
            .find(|r| r.name == route)
            .ok_or_else(|| ControlError::UnknownRoute(route.to_string()))?;
        let current = snapshot
            .route_named(route)
            .map(|r| SavedWeights {
                stable: r.weights.stable.clone(),
                percent: r.weights.percent.clone(),
            })
            .ok_or_else(|| ControlError::UnknownRoute(route.to_string()))?;
        let mut next = inner.state.clone();
        let state = next.routes.entry(route.to_string()).or_default();
        if state.phase.is_empty() {
            state.phase = "idle".into();
        }
        state.basis = Basis {
            pool: spec.pool.clone(),
            weights: spec.weights.clone(),
        };
        let message = edit(config, current, state)?;
        let weights = state.weights.as_ref().map(to_weights);
        self.store.save(&next)?;
        inner.state = next;
        self.routing.set_weights(route, weights);
        self.events.record(kind, Some(route), message);
        Ok(())
    }
}

/// 100% to `pool`, which becomes stable.
fn switch_to(state: &mut RouteState, pool: &str) {
    state.weights = Some(SavedWeights {
        stable: pool.to_string(),
        percent: vec![(pool.to_string(), 100)],
    });
    state.candidate = None;
}

/// The non-stable pool with the largest weight above 0.
fn candidate(w: &SavedWeights) -> Option<String> {
    w.percent
        .iter()
        .filter(|(p, pct)| *p != w.stable && *pct > 0)
        .max_by_key(|(_, pct)| *pct)
        .map(|(p, _)| p.clone())
}

fn known_pool(config: &Config, pool: &str) -> Result<(), ControlError> {
    match config.pools.iter().any(|p| p.name == pool) {
        true => Ok(()),
        false => Err(ControlError::UnknownPool(pool.to_string())),
    }
}

fn parse_strategy(s: &str) -> Result<Strategy, ControlError> {
    Ok(match s {
        "recreate" => Strategy::Recreate,
        "rolling" => Strategy::Rolling,
        "blue_green" => Strategy::BlueGreen,
        "canary" => Strategy::Canary,
        "ab_test" => Strategy::AbTest,
        other => {
            return Err(ControlError::BadRequest(format!(
                "unknown strategy {other:?} (recreate, rolling, blue_green, canary, ab_test)"
            )))
        }
    })
}

pub(crate) fn show(percent: &[(String, u32)]) -> String {
    let parts: Vec<String> = percent.iter().map(|(p, w)| format!("{p}={w}")).collect();
    parts.join(" ")
}

impl Control {
    /// `POST .../rollout`: handed to the rollout controller when there is
    /// one (the route's strategy, or `strategy`); the route's manual
    /// override ends, the controller publishes from now on.
    pub async fn start_rollout(
        &self,
        route: &str,
        pool: &str,
        strategy: Option<&str>,
    ) -> Result<(), ControlError> {
        let Some(controller) = &self.controller else {
            return self.rollout(route, pool, strategy);
        };
        let parsed = strategy.map(parse_strategy).transpose()?;
        controller.start(route, pool, parsed).await?;
        self.forget(route);
        self.events.record(
            "rollout",
            Some(route),
            format!("rollout to {pool:?} started"),
        );
        Ok(())
    }

    /// promote / abort / pause / resume / rollback: the controller's
    /// rollout when the route has one, else the manual state here.
    pub async fn command(&self, route: &str, action: Action) -> Result<(), ControlError> {
        use crate::rollout::{Command, ControlError as Refused};
        let Some(controller) = &self.controller else {
            return self.act(route, action);
        };
        let command = match action {
            Action::Promote => Command::Promote,
            Action::Abort => Command::Abort,
            Action::Pause => Command::Pause,
            Action::Resume => Command::Resume,
            Action::Rollback => Command::Rollback,
        };
        match controller.command(route, command).await {
            Ok(()) => {
                if action != Action::Pause {
                    self.forget(route);
                }
                Ok(())
            }
            Err(Refused::NoRollout(_)) => self.act(route, action),
            Err(e) => Err(e.into()),
        }
    }

    /// Pauses the controller's rollout of `route`, if it has one (manual
    /// weights take over).
    pub async fn pause_rollout(&self, route: &str) {
        if let Some(controller) = &self.controller {
            let _ = controller
                .command(route, crate::rollout::Command::Pause)
                .await;
        }
    }

    /// Drops the manual state of `route` without publishing: the
    /// controller owns its traffic now.
    fn forget(&self, route: &str) {
        let mut inner = self.inner.lock().unwrap();
        let mut next = inner.state.clone();
        if next.routes.remove(route).is_some() && self.save(&next) {
            inner.state = next;
        }
    }
}
