//! Wires bound listeners to the routing state and runs until shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use crate::config::{Config, ListenerSpec};
use crate::drain::{DrainEvent, Drains};
use crate::events::Events;
use crate::rollout::Controller;
use crate::routing::Routing;
use crate::workers::Workers;

/// Length of the rolling per-pool analysis window shown by status (the
/// rollout controller keeps its own, aligned with its steps).
pub const ANALYSIS_WINDOW: Duration = Duration::from_secs(10);

/// A running data plane: the routing state and every listener serving it.
#[derive(Debug)]
pub struct Server {
    pub routing: Arc<Routing>,
    /// The rollout controller driving this routing state.
    pub controller: Controller,
    /// Turns true to stop accepting and close connections gracefully.
    shutdown: watch::Sender<bool>,
    /// Listener and connection tasks, awaited on shutdown.
    tracker: TaskTracker,
    /// Pools and endpoints draining or drained, and their events.
    pub drains: Arc<Drains>,
    /// The event log `GET /api/v1/events` shows.
    pub events: Arc<Events>,
    /// True once serving, false from the start of shutdown (`/readyz`).
    ready: watch::Sender<bool>,
    /// Where accepted connections are served (`workers = N`).
    workers: Workers,
}

/// Copies drain events into the event log, so a deploy script polling
/// `/api/v1/events` learns when old instances can be stopped.
async fn record_drains(
    drains: Arc<Drains>,
    events: Arc<Events>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut rx = drains.subscribe();
    loop {
        let event = tokio::select! {
            event = rx.recv() => event,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let event = match event {
            Ok(event) => event,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(_) => return,
        };
        let what = |pool: &str, endpoint: &Option<String>| match endpoint {
            Some(e) => format!("endpoint {e} of pool {pool}"),
            None => format!("pool {pool}"),
        };
        match event {
            DrainEvent::Draining { pool, endpoint } => {
                events.record(
                    "draining",
                    None,
                    format!("{} draining", what(&pool, &endpoint)),
                );
            }
            DrainEvent::Drained {
                pool,
                endpoint,
                took,
                forced,
            } => {
                let forced = if forced {
                    ", upgraded connections closed at drain_timeout"
                } else {
                    ""
                };
                let message = format!(
                    "{} drained in {:.1}s{forced}",
                    what(&pool, &endpoint),
                    took.as_secs_f64()
                );
                events.record("drained", None, message);
            }
        }
    }
}

impl Server {
    /// Builds the routing state and starts the tasks that follow it: the
    /// rollout controller (which resumes what `state_dir` holds), health
    /// checks and drains. Must run inside a Tokio runtime.
    pub fn new(config: Arc<Config>) -> Server {
        let routing = Arc::new(Routing::new(config.clone()));
        let shutdown = watch::channel(false).0;
        let tracker = TaskTracker::new();
        let state_dir = Some(config.proxy.state_dir.clone());
        let events = Arc::new(Events::default());
        let (controller, task) = Controller::spawn(
            routing.clone(),
            state_dir,
            events.clone(),
            shutdown.subscribe(),
        );
        tracker.spawn(async move {
            let _ = task.await;
        });
        let drains = Arc::new(Drains::default());
        tracker.spawn(record_drains(
            drains.clone(),
            events.clone(),
            shutdown.subscribe(),
        ));
        let checks =
            crate::routing::health::run(routing.clone(), shutdown.subscribe(), tracker.clone());
        tracker.spawn(checks);
        let follow = crate::drain::follow(routing.clone(), drains.clone(), shutdown.subscribe());
        tracker.spawn(follow);
        Server {
            routing,
            controller,
            events,
            shutdown,
            tracker,
            drains,
            ready: watch::Sender::new(false),
            workers: Workers::default(),
        }
    }

    /// Serves connections on `workers` (started by the caller, stopped by
    /// [`Server::shutdown`]) instead of the calling runtime alone.
    pub fn with_workers(mut self, workers: Workers) -> Server {
        self.workers = workers;
        self
    }

    /// The workers connections are served on.
    pub fn workers(&self) -> &Workers {
        &self.workers
    }

    /// Publishes a new, already validated config: routing first, then the
    /// controller, which starts rollouts for routes whose pool changed.
    pub fn set_config(&self, config: Arc<Config>) {
        self.routing.set_config(config.clone());
        self.controller.config_changed(config);
    }

    /// The Prometheus exposition of everything this server measures.
    pub fn metrics(&self) -> String {
        let snapshot = self.routing.load();
        crate::admin::metrics::render(&self.routing.registry, &snapshot, |route| {
            self.controller.phase(route)
        })
    }

    /// Every `every`, closes the current analysis window of each route×pool
    /// (what `GET /api/v1/status` shows as the last analysis per pool).
    pub fn roll_windows(&self, every: Duration) {
        let registry = self.routing.registry.clone();
        let mut shutdown = self.shutdown.subscribe();
        self.tracker.spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tokio::select! {
                    _ = tick.tick() => registry.roll_windows(),
                    _ = shutdown.wait_for(|stop| *stop) => return,
                }
            }
        });
    }

    /// Marks the server ready (listeners bound elsewhere, e.g. by a
    /// [`crate::control::ListenerSet`]).
    pub fn mark_ready(&self) {
        self.ready.send_replace(true);
    }

    /// Readiness as `/readyz` reports it: true while serving, false once
    /// shutdown has begun.
    pub fn readiness(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    /// Starts serving an already bound listener.
    /// A TLS listener whose certificates cannot be read is not served
    /// (the error is logged; `veer run` checks them before this).
    pub fn serve(&self, listener: TcpListener, spec: &ListenerSpec) {
        let tls = match crate::tls::ServerTls::for_listener(spec, &self.routing.registry) {
            Ok(tls) => tls,
            Err(e) => {
                tracing::error!(error = %e, "listener not served");
                return;
            }
        };
        let task = crate::proxy::serve(
            listener,
            self.routing.clone(),
            tls,
            self.shutdown.subscribe(),
            self.tracker.clone(),
            self.workers.clone(),
        );
        self.tracker.spawn(task);
        self.ready.send_replace(true);
    }

    /// Turns true when shutdown starts (listeners started elsewhere, e.g.
    /// by a reload, watch it too).
    pub fn shutdown_receiver(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Where listener and connection tasks are spawned, so shutdown waits
    /// for them.
    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// [`Server::stop`] with the `shutdown_delay` and `shutdown_grace` of the
    /// config serving now; logs when connections outlive the grace period.
    pub async fn stop_as_configured(self) {
        let settings = self.routing.load().config.proxy.clone();
        tracing::info!(delay = ?settings.shutdown_delay, grace = ?settings.shutdown_grace, "shutting down");
        if !self
            .stop(settings.shutdown_delay, settings.shutdown_grace)
            .await
        {
            tracing::warn!("shutdown grace period ended with connections still open");
        }
    }

    /// Graceful shutdown as SPEC §10 has it: readiness turns false, then
    /// after `delay` (for load balancers in front to notice) the listeners
    /// close and connections get up to `grace` to finish.
    pub async fn stop(self, delay: Duration, grace: Duration) -> bool {
        self.ready.send_replace(false);
        tokio::time::sleep(delay).await;
        self.shutdown(grace).await
    }

    /// Stops accepting, lets connections finish for up to `grace`: idle
    /// HTTP/1 connections close, busy ones answer with `Connection: close`,
    /// h2 ones get GOAWAY. Returns false when some were still open at the
    /// deadline.
    pub async fn shutdown(self, grace: Duration) -> bool {
        self.ready.send_replace(false);
        let _ = self.shutdown.send(true);
        self.tracker.close();
        let finished = tokio::time::timeout(grace, self.tracker.wait())
            .await
            .is_ok();
        self.workers.stop();
        finished
    }
}
