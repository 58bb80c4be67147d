//! The rollout controller: one task that feeds each route's rollout its
//! inputs (analysis intervals from the proxy's own counters, readiness,
//! tripwire, gates, operator commands), applies the pure planners, and
//! publishes the traffic they ask for, persisting every change.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::{Config, Strategy, WebhookKind};
use crate::events::{Event, Events};
use crate::routing::Routing;

use super::analysis::Verdict;
use super::plan::{Command, Rollout};

/// How often the controller looks at its rollouts (tripwire, readiness,
/// due intervals).
const TICK: Duration = Duration::from_millis(100);

/// Why a request to the controller was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("unknown route {0:?}")]
    UnknownRoute(String),
    #[error("unknown pool {0:?}")]
    UnknownPool(String),
    #[error("route {0:?} has no rollout in progress")]
    NoRollout(String),
    #[error("route {0:?} already serves pool {1:?}")]
    AlreadyServing(String, String),
    #[error("the controller has stopped")]
    Stopped,
}

/// What status shows of a route's rollout.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutView {
    #[serde(flatten)]
    pub rollout: Rollout,
    pub phase_name: &'static str,
    /// The latest verdict, with its figures.
    pub last_verdict: Option<Verdict>,
}

#[derive(Debug, Default)]
pub(super) struct Shared {
    views: Mutex<HashMap<String, RolloutView>>,
}

pub(super) enum Msg {
    Start {
        route: String,
        pool: String,
        strategy: Option<Strategy>,
        reply: oneshot::Sender<Result<(), ControlError>>,
    },
    Command {
        route: String,
        command: Command,
        reply: oneshot::Sender<Result<(), ControlError>>,
    },
    Config(Arc<Config>),
    Gate {
        route: String,
        kind: WebhookKind,
        ok: bool,
    },
    /// External checks finished: one reason per failed check.
    Checks {
        route: String,
        reasons: Vec<String>,
    },
}

/// A handle on the controller task.
#[derive(Debug, Clone)]
pub struct Controller {
    tx: mpsc::UnboundedSender<Msg>,
    shared: Arc<Shared>,
    events: Arc<Events>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Msg")
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Controller {
    /// Starts the controller for `routing`, resuming what `state_dir` holds.
    pub fn spawn(
        routing: Arc<Routing>,
        state_dir: Option<PathBuf>,
        events: Arc<Events>,
        shutdown: watch::Receiver<bool>,
    ) -> (Controller, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::default());
        let config = routing.load().config.clone();
        let mut task = Task::new(
            routing,
            shared.clone(),
            config,
            state_dir,
            events.clone(),
            tx.clone(),
        );
        task.restore();
        let handle = tokio::spawn(task.run(rx, shutdown));
        (Controller { tx, shared, events }, handle)
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

    /// Starts a rollout of `route` to `pool` (`POST .../rollout`).
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

    /// A new config was published: routes whose `pool` changed in the file
    /// start rolling out.
    pub fn config_changed(&self, config: Arc<Config>) {
        let _ = self.tx.send(Msg::Config(config));
    }

    /// The latest rollout of every route that had one.
    pub fn rollouts(&self) -> Vec<RolloutView> {
        let mut all: Vec<_> = self
            .shared
            .views
            .lock()
            .unwrap()
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.rollout.route.cmp(&b.rollout.route));
        all
    }

    /// Recent rollout transitions, newest last.
    pub fn events(&self) -> Vec<Event> {
        self.events.transitions()
    }

    /// The current phase of a route's rollout (`idle` without one).
    pub fn phase(&self, route: &str) -> &'static str {
        self.shared
            .views
            .lock()
            .unwrap()
            .get(route)
            .map_or("idle", |v| v.rollout.phase.as_str())
    }
}

mod task;

use task::Task;
