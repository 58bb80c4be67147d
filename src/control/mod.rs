//! The control plane: the run-time state operators change (manual weights,
//! admin-started rollouts, pauses), config reloads, and the events both
//! leave behind. The admin API and the config watcher call into
//! [`Control`]; it persists every change before publishing it.
//!
//! Rollouts and the commands on them go to the rollout controller; on a
//! route with no rollout in progress, `promote`, `abort`, `rollback`,
//! `pause` and `resume` act on the manual weights.

mod actions;
mod certs;
mod listeners;
mod reload;
mod run;
mod status;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

pub use crate::events::{Event, Events};
pub use actions::Action;
pub use listeners::{Bind, ListenerSet};
pub use run::{run, RunOptions};
pub use status::{EndpointStatus, PoolStatus, PoolTotals, RouteStatus, Status};

use crate::config::{Config, ConfigError};
use crate::rollout::Controller;
use crate::routing::{Routing, Weights};
use crate::state::{RuntimeState, SavedWeights, StateError, StateStore};

/// Why an admin action or a reload was refused. Each maps to one HTTP
/// status in the admin API.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("unknown route {0:?}")]
    UnknownRoute(String),
    #[error("unknown pool {0:?}")]
    UnknownPool(String),
    #[error("{0}")]
    BadRequest(String),
    /// The action does not apply in the route's current state.
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Listener(std::io::Error),
    #[error("saving runtime state: {0}")]
    State(#[from] StateError),
    #[error("{0}")]
    Rollout(#[from] crate::rollout::ControlError),
}

/// The control plane of one running veer.
pub struct Control {
    pub routing: Arc<Routing>,
    /// The rollout controller: reloads tell it about the new config, and
    /// rollouts and commands go to it.
    pub controller: Option<Controller>,
    /// The config file reloads read.
    path: PathBuf,
    store: StateStore,
    /// Serialises writers: actions and reloads build on the state they saw.
    inner: Mutex<Inner>,
    pub events: Arc<Events>,
}

struct Inner {
    state: RuntimeState,
    listeners: ListenerSet,
    /// The file text last read by a reload, so the watcher can skip
    /// events that did not change it.
    last_text: Option<String>,
}

impl Control {
    /// Takes over `routing` (built from `config`), restores the persisted
    /// state from `proxy.state_dir` and applies its overrides. A corrupt
    /// state file is moved aside and reported as an event.
    pub fn new(
        config: &Config,
        routing: Arc<Routing>,
        controller: Option<Controller>,
        listeners: ListenerSet,
        events: Arc<Events>,
    ) -> Control {
        let store = StateStore::new(&config.proxy.state_dir);
        let state = match store.load() {
            Ok(state) => state,
            Err(e) => {
                tracing::error!(error = %e, "runtime state not restored");
                events.record("state-error", None, e.to_string());
                RuntimeState::default()
            }
        };
        let control = Control {
            routing,
            controller,
            path: config.source.clone(),
            store,
            inner: Mutex::new(Inner {
                state,
                listeners,
                last_text: std::fs::read_to_string(&config.source).ok(),
            }),
            events,
        };
        let mut inner = control.inner.lock().unwrap();
        let dropped = control.drop_stale(&mut inner.state, config);
        if !dropped.is_empty() {
            control.save(&inner.state);
        }
        for (name, route) in &inner.state.routes {
            if let Some(w) = &route.weights {
                control.routing.set_weights(name, Some(to_weights(w)));
                let shown = actions::show(&w.percent);
                let message = format!("run-time weights restored: {shown}");
                control.events.record("restored", Some(name), message);
            }
        }
        drop(inner);
        control
    }

    /// The route's rollout phase, as one of [`crate::observe::PHASES`].
    pub fn phase(&self, route: &str) -> &'static str {
        if let Some(phase) = self.controller.as_ref().map(|c| c.phase(route)) {
            if phase != "idle" {
                return phase;
            }
        }
        let inner = self.inner.lock().unwrap();
        let phase = inner.state.routes.get(route).map(|r| r.phase.as_str());
        crate::observe::PHASES
            .iter()
            .find(|p| Some(**p) == phase)
            .unwrap_or(&"idle")
    }

    /// Persists `state`, logging (and recording) a failure.
    fn save(&self, state: &RuntimeState) -> bool {
        match self.store.save(state) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "saving runtime state");
                self.events.record("state-error", None, e.to_string());
                false
            }
        }
    }

    /// Drops the run-time state of routes whose file fields (`pool`,
    /// `weights`) changed since the override was made, or which refer to
    /// routes or pools that no longer exist. Returns the dropped routes.
    fn drop_stale(&self, state: &mut RuntimeState, config: &Config) -> Vec<String> {
        let mut dropped = Vec::new();
        state.routes.retain(|name, route| {
            let why = match config.routes.iter().find(|r| r.name == *name) {
                None => Some("route no longer in the config".to_string()),
                Some(spec) if spec.pool != route.basis.pool => {
                    Some(format!("config file changed route.pool to {:?}", spec.pool))
                }
                Some(spec) if spec.weights != route.basis.weights => {
                    Some("config file changed route.weights".to_string())
                }
                Some(_) => route.weights.as_ref().and_then(|w| {
                    w.percent
                        .iter()
                        .map(|(p, _)| p)
                        .chain([&w.stable])
                        .find(|p| !config.pools.iter().any(|c| c.name == **p))
                        .map(|p| format!("pool {p:?} no longer in the config"))
                }),
            };
            match why {
                Some(why) => {
                    self.events.record(
                        "override-dropped",
                        Some(name),
                        format!("run-time state dropped: {why}"),
                    );
                    dropped.push(name.clone());
                    false
                }
                None => true,
            }
        });
        dropped
    }
}

pub(crate) fn to_weights(saved: &SavedWeights) -> Weights {
    Weights {
        stable: saved.stable.clone(),
        percent: saved.percent.clone(),
    }
}
