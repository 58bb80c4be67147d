//! The control plane. One task, the controller, owns every route's
//! traffic: manual weights, operator commands, rollouts and config
//! reloads all reach it as messages, and it alone publishes what routes
//! serve, persists it (one file in `state_dir`) and records events.
//!
//! - [`record`]: a route's control state; traffic and phase follow from it.
//! - [`commands`]: operator calls as pure edits of a record.
//! - [`task`], `drive`, `reconcile`: the controller task, driving
//!   rollouts on its timer, and config changes.
//! - [`sense`] (what it reads), [`effects`] (what it does), [`clock`]:
//!   the seams tests replace.
//! - [`store`]: the persisted records; [`events`]: the event log.
//! - `reload`, `listeners`, `certs`: reading the config file, the
//!   listener set and certificates; [`status`]: `GET /api/v1/status`.

mod certs;
pub mod clock;
pub mod commands;
mod commit;
mod drive;
pub mod effects;
mod error;
pub mod events;
mod listeners;
mod query;
mod reconcile;
pub mod record;
mod reload;
mod restore;
pub mod sense;
pub mod status;
pub mod store;
pub mod task;
mod webhook;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Strategy};
use crate::observe::Telemetry;
use crate::rollout::{Command, Phase};
use crate::routing::Routing;

pub use error::ControlError;
pub use events::{Event, EventKind, Events};
pub use listeners::{Bind, ListenerSet};
pub use status::{EndpointStatus, PoolStatus, PoolTotals, RouteStatus, Status};
pub use task::{Msg, View, Views};

use effects::{Effects, LiveEffects};
use sense::{RoutingSensor, Sensor};
use store::Store;
use task::Task;

/// A handle on the controller task; cheap to clone.
#[derive(Debug, Clone)]
pub struct Controller {
    tx: mpsc::UnboundedSender<Msg>,
    views: Views,
    pub events: Arc<Events>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

impl Controller {
    /// Starts the controller of `routing`, resuming what `state_dir`
    /// holds, until `stop` is cancelled. Must run inside a Tokio runtime.
    pub fn spawn(
        routing: Arc<Routing>,
        telemetry: Arc<Telemetry>,
        state_dir: Option<PathBuf>,
        events: Arc<Events>,
        stop: CancellationToken,
    ) -> (Controller, tokio::task::JoinHandle<()>) {
        let config = routing.load().config.clone();
        let mut loaded = Store::new(state_dir.clone()).load();
        restore::validate(&mut loaded, &config, state_dir.as_deref());
        let store = Store::new(state_dir);
        let sensor = RoutingSensor {
            routing: routing.clone(),
            telemetry,
        };
        let effects = |answers| LiveEffects {
            routing,
            events: events.clone(),
            store,
            webhooks: Default::default(),
            answers,
        };
        Controller::spawn_with(config, effects, sensor, loaded, events.clone(), stop)
    }

    /// [`Controller::spawn`] with the effects and sensing given (tests).
    pub fn spawn_with<E: Effects, S: Sensor>(
        config: Arc<Config>,
        effects: impl FnOnce(mpsc::UnboundedSender<Msg>) -> E,
        sensor: S,
        loaded: store::Loaded,
        events: Arc<Events>,
        stop: CancellationToken,
    ) -> (Controller, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let views = Views::default();
        let effects = effects(tx.clone());
        let mut task = Task::new(config, effects, sensor, clock::Clock::new(), views.clone());
        task.restore(loaded);
        let handle = tokio::spawn(task.run(rx, stop));
        (Controller { tx, views, events }, handle)
    }

    async fn ask(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<(), ControlError>>) -> Msg,
    ) -> Result<(), ControlError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .map_err(|_| ControlError::Stopped)?;
        rx.await.map_err(|_| ControlError::Stopped)?
    }

    /// `POST .../rollout`: 409 while a rollout runs or when `pool` is
    /// already stable.
    pub async fn start(
        &self,
        route: &str,
        pool: &str,
        strategy: Option<Strategy>,
    ) -> Result<(), ControlError> {
        let (route, pool) = (route.to_string(), pool.to_string());
        self.ask(|reply| Msg::Start {
            route,
            pool,
            strategy,
            reply,
        })
        .await
    }

    /// `PUT .../weights`: a manual split, effective on the next request;
    /// pauses the route (and its rollout).
    pub async fn set_weights(
        &self,
        route: &str,
        percent: Vec<(String, u32)>,
    ) -> Result<(), ControlError> {
        let route = route.to_string();
        self.ask(|reply| Msg::Weights {
            route,
            percent,
            reply,
        })
        .await
    }

    /// promote / abort / pause / resume / rollback.
    pub async fn command(&self, route: &str, command: Command) -> Result<(), ControlError> {
        let route = route.to_string();
        self.ask(|reply| Msg::Command {
            route,
            command,
            reply,
        })
        .await
    }

    /// Publishes a new, validated config with every route's traffic; a
    /// changed `pool` starts a rollout. Returns once published.
    pub async fn reconfigure(&self, config: Arc<Config>) -> Result<(), ControlError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Config { config, reply })
            .map_err(|_| ControlError::Stopped)?;
        rx.await.map_err(|_| ControlError::Stopped)
    }

    /// Every route's record and latest verdict.
    pub fn views(&self) -> std::collections::BTreeMap<String, View> {
        self.views.lock().unwrap().clone()
    }

    pub fn view(&self, route: &str) -> Option<View> {
        self.views.lock().unwrap().get(route).cloned()
    }

    /// The route's rollout in progress, else its latest finished one.
    pub fn latest(&self, route: &str) -> Option<crate::rollout::Rollout> {
        let record = self.view(route)?.record;
        record.rollout.or(record.finished)
    }

    /// The route's phase (`idle` for an unknown route).
    pub fn phase(&self, route: &str) -> Phase {
        self.views
            .lock()
            .unwrap()
            .get(route)
            .map_or(Phase::Idle, |v| v.record.phase())
    }
}

/// What the admin API works through: the controller, and the config file
/// with the listeners a reload changes.
pub struct Control {
    pub routing: Arc<Routing>,
    pub telemetry: Arc<Telemetry>,
    pub controller: Controller,
    pub events: Arc<Events>,
    /// The config file reloads read.
    path: PathBuf,
    /// Serialises reloads.
    inner: tokio::sync::Mutex<Inner>,
}

struct Inner {
    listeners: ListenerSet,
    /// The file text last read by a reload, so the watcher can skip
    /// events that did not change it.
    last_text: Option<String>,
}

impl Control {
    pub fn new(
        config: &Config,
        routing: Arc<Routing>,
        telemetry: Arc<Telemetry>,
        controller: Controller,
        listeners: ListenerSet,
    ) -> Control {
        Control {
            events: controller.events.clone(),
            routing,
            telemetry,
            controller,
            path: config.source.clone(),
            inner: tokio::sync::Mutex::new(Inner {
                listeners,
                last_text: std::fs::read_to_string(&config.source).ok(),
            }),
        }
    }

    /// Serves an already bound listener.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        spec: &crate::config::ListenerSpec,
    ) {
        self.inner.lock().await.listeners.serve(listener, spec);
    }
}
