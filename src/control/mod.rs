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
pub mod freeze;
mod listeners;
mod msg;
mod query;
mod reconcile;
pub mod record;
mod reload;
mod restore;
pub mod sense;
mod sequential;
mod shadow;
pub mod status;
pub mod store;
pub mod task;
mod verify;
pub mod webhook;

#[cfg(test)]
mod tests;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Strategy};
use crate::observe::Telemetry;
use crate::rollout::{Command, Phase};
use crate::routing::Routing;

pub use error::ControlError;
pub use events::{Event, EventKind, Events};
pub use listeners::{Bind, ListenerSet, Socket};
pub use status::{
    ClusterStatus, EndpointStatus, PoolStatus, PoolTotals, ReplicaStatus, RouteStatus, Status,
};
pub use task::{Msg, View, Views};
pub use webhook::Webhooks;

use effects::{Effects, LiveEffects};
use sense::{RoutingSensor, Sensor};
use store::Store;
use task::Task;

/// An operator call, as the admin API makes it; in a fleet it travels
/// through etcd to the leader.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "call", rename_all = "kebab-case")]
pub enum Call {
    Start {
        route: String,
        pool: String,
        strategy: Option<Strategy>,
    },
    Weights {
        route: String,
        percent: Vec<(String, u32)>,
    },
    Command {
        route: String,
        command: Command,
    },
    Mirror {
        route: String,
        mirror: crate::routing::MirrorChoice,
    },
}

/// Where operator calls go in a fleet (written to etcd, carried out by
/// the leader), instead of this replica's own controller.
pub trait Relay: Send + Sync {
    fn submit(
        &self,
        call: Call,
    ) -> Pin<Box<dyn Future<Output = Result<(), ControlError>> + Send + '_>>;
}

/// A handle on the controller task; cheap to clone.
#[derive(Clone)]
pub struct Controller {
    tx: mpsc::UnboundedSender<Msg>,
    views: Views,
    pub events: Arc<Events>,
    /// Set in a fleet: operator calls go to the leader through it.
    relay: Option<Arc<dyn Relay>>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("relayed", &self.relay.is_some())
            .finish()
    }
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

/// The records the controller persisted, for a fleet's leader to write
/// to etcd.
pub type Outbox = mpsc::UnboundedSender<std::collections::BTreeMap<String, record::Record>>;

impl Controller {
    /// Starts the controller of `routing`, resuming what `state_dir`
    /// holds, until `stop` is cancelled. Must run inside a Tokio runtime.
    /// With `outbox`, every persisted state is also sent there (a fleet).
    ///
    /// A fleet replica (`outbox` given) starts following: it decides only
    /// once it leads ([`Controller::set_deciding`]).
    pub fn spawn(
        routing: Arc<Routing>,
        telemetry: Arc<Telemetry>,
        state_dir: Option<PathBuf>,
        events: Arc<Events>,
        stop: CancellationToken,
        outbox: Option<Outbox>,
        peers: Option<sense::Peers>,
    ) -> (Controller, tokio::task::JoinHandle<()>) {
        let deciding = outbox.is_none();
        let config = routing.load().config.clone();
        let mut loaded = Store::new(state_dir.clone()).load();
        restore::validate(&mut loaded, &config, state_dir.as_deref());
        let store = Store::new(state_dir);
        let sensor = RoutingSensor {
            routing: routing.clone(),
            telemetry,
            peers,
        };
        let effects = |answers| LiveEffects {
            routing,
            events: events.clone(),
            store,
            webhooks: Default::default(),
            answers,
            outbox,
        };
        Controller::spawn_with(
            config,
            effects,
            sensor,
            loaded,
            events.clone(),
            stop,
            deciding,
        )
    }

    /// [`Controller::spawn`] with the effects and sensing given (tests).
    pub fn spawn_with<E: Effects, S: Sensor>(
        config: Arc<Config>,
        effects: impl FnOnce(mpsc::UnboundedSender<Msg>) -> E,
        sensor: S,
        loaded: store::Loaded,
        events: Arc<Events>,
        stop: CancellationToken,
        deciding: bool,
    ) -> (Controller, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let views = Views::default();
        let effects = effects(tx.clone());
        let mut task = Task::new(config, effects, sensor, clock::Clock::new(), views.clone());
        task.deciding = deciding;
        task.restore(loaded);
        let handle = tokio::spawn(task.run(rx, stop));
        let controller = Controller {
            tx,
            views,
            events,
            relay: None,
        };
        (controller, handle)
    }

    /// This handle with operator calls sent through `relay` (a fleet).
    pub fn relayed(&self, relay: Arc<dyn Relay>) -> Controller {
        Controller {
            relay: Some(relay),
            ..self.clone()
        }
    }

    /// An operator call: to the fleet's leader when relayed, else here.
    pub async fn call(&self, call: Call) -> Result<(), ControlError> {
        match &self.relay {
            Some(relay) => relay.submit(call).await,
            None => self.local(call).await,
        }
    }

    /// An operator call carried out by this replica's controller.
    pub async fn local(&self, call: Call) -> Result<(), ControlError> {
        let (reply, rx) = oneshot::channel();
        let msg = match call {
            Call::Start {
                route,
                pool,
                strategy,
            } => Msg::Start {
                route,
                pool,
                strategy,
                reply,
            },
            Call::Weights { route, percent } => Msg::Weights {
                route,
                percent,
                reply,
            },
            Call::Command { route, command } => Msg::Command {
                route,
                command,
                reply,
            },
            Call::Mirror { route, mirror } => Msg::Mirror {
                route,
                mirror,
                reply,
            },
        };
        self.tx.send(msg).map_err(|_| ControlError::Stopped)?;
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
        self.call(Call::Start {
            route,
            pool,
            strategy,
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
        self.call(Call::Weights { route, percent }).await
    }

    /// `PUT .../mirror` (a mirror, or off) and `DELETE .../mirror` (the
    /// file's `[route.mirror]` again).
    pub async fn set_mirror(
        &self,
        route: &str,
        mirror: crate::routing::MirrorChoice,
    ) -> Result<(), ControlError> {
        let route = route.to_string();
        self.call(Call::Mirror { route, mirror }).await
    }

    /// promote / abort / pause / resume / rollback.
    pub async fn command(&self, route: &str, command: Command) -> Result<(), ControlError> {
        let route = route.to_string();
        self.call(Call::Command { route, command }).await
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

    /// In a fleet: whether this replica decides (leads, until the instant
    /// `until` holds) or follows.
    pub fn set_deciding(&self, deciding: bool, until: Option<task::Until>) {
        let _ = self.tx.send(Msg::Role { deciding, until });
    }

    /// In a fleet, following: serve the leader's record of `route`.
    pub fn replicate(&self, route: &str, record: Option<record::Record>) {
        let route = route.to_string();
        let record = record.map(Box::new);
        let _ = self.tx.send(Msg::Replicate { route, record });
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
    /// The fleet as this replica sees it, with `[cluster]`.
    pub cluster: Option<Arc<std::sync::Mutex<ClusterStatus>>>,
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
            cluster: None,
        }
    }
}
