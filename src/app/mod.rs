//! One way to start the process: [`start`] builds the routing state, the
//! controller (which resumes what `state_dir` holds), health checks,
//! drains, the listeners and the admin API from already bound sockets.
//! `veer run`, `veer demo` and every test harness start veer through it
//! and serve through the same listener path; [`App::stop`] shuts it down
//! as SPEC §10 has it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::shutdown::{CancellationToken, Shutdown};

use crate::admin::{AdminApi, MetricsRenderer};
use crate::config::Config;
use crate::control::{Bind, Control, Controller, EventKind, Events, ListenerSet};
use crate::drain::{DrainEvent, Drains};
use crate::observe::Telemetry;
use crate::routing::Routing;
use crate::workers::Workers;

mod run;

pub use run::run;

/// Length of the rolling per-pool analysis window status shows (the
/// controller keeps its own, aligned with its intervals).
pub const ANALYSIS_WINDOW: Duration = Duration::from_secs(10);

/// What the caller hands in: everything already bound and read (the
/// library never binds or reads the environment on its own).
pub struct Options {
    pub config: Arc<Config>,
    /// Bound in the order of `config.listeners`.
    pub listeners: Vec<TcpListener>,
    /// The admin listener (`[admin] listen`), if served.
    pub admin: Option<TcpListener>,
    /// The bearer token `/api` calls need.
    pub token: Option<String>,
    /// Binds listeners a reload adds; without it such a reload is refused.
    pub bind: Option<Bind>,
    /// Where connections are served (`workers = N`).
    pub workers: Workers,
    /// How often status' per-pool analysis window closes.
    pub analysis_window: Duration,
}

impl Options {
    pub fn new(config: Arc<Config>, listeners: Vec<TcpListener>) -> Options {
        Options {
            config,
            listeners,
            admin: None,
            token: None,
            bind: None,
            workers: Workers::default(),
            analysis_window: ANALYSIS_WINDOW,
        }
    }
}

/// A running veer.
pub struct App {
    pub routing: Arc<Routing>,
    /// Everything veer measures.
    pub telemetry: Arc<Telemetry>,
    pub controller: Controller,
    pub control: Arc<Control>,
    pub drains: Arc<Drains>,
    pub events: Arc<Events>,
    /// The listeners' local addresses, in config order.
    pub addrs: Vec<SocketAddr>,
    pub admin_addr: Option<SocketAddr>,
    shutdown: Shutdown,
    /// Stops the admin API last, so it answers while connections drain.
    stop_admin: CancellationToken,
    workers: Workers,
    admin: Option<tokio::task::JoinHandle<()>>,
}

/// Starts veer on `options`. Must run inside a Tokio runtime.
pub async fn start(options: Options) -> App {
    let config = options.config;
    let telemetry = Arc::new(Telemetry::default());
    let routing = Arc::new(Routing::new(config.clone(), telemetry.clone()));
    let shutdown = Shutdown::default();
    let (stop, tracker) = (shutdown.token.clone(), shutdown.tracker.clone());
    let stop_admin = CancellationToken::new();
    let events = Arc::new(Events::default());
    let (controller, task) = Controller::spawn(
        routing.clone(),
        telemetry.clone(),
        Some(config.proxy.state_dir.clone()),
        events.clone(),
        stop.clone(),
    );
    tracker.spawn(async move {
        let _ = task.await;
    });
    let drains = Arc::new(Drains::default());
    tracker.spawn(record_drains(drains.clone(), events.clone(), stop.clone()));
    let checks = crate::routing::health::run(routing.clone(), stop.clone(), tracker.clone());
    tracker.spawn(checks);
    tracker.spawn(crate::drain::follow(
        routing.clone(),
        drains.clone(),
        stop.clone(),
    ));
    let windows = telemetry.clone();
    let every = options.analysis_window;
    let token = stop.clone();
    tracker.spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        loop {
            tokio::select! {
                _ = tick.tick() => windows.roll_windows(),
                () = token.cancelled() => return,
            }
        }
    });

    let listeners = ListenerSet::new(
        routing.clone(),
        telemetry.clone(),
        stop.clone(),
        tracker.clone(),
        options.workers.clone(),
        options.bind,
    );
    let control = Arc::new(Control::new(
        &config,
        routing.clone(),
        telemetry.clone(),
        controller.clone(),
        listeners,
    ));
    let mut addrs = Vec::new();
    for (listener, spec) in options.listeners.into_iter().zip(&config.listeners) {
        addrs.extend(listener.local_addr().ok());
        control.serve(listener, spec).await;
    }
    let admin_addr = options.admin.as_ref().and_then(|l| l.local_addr().ok());
    let admin = options.admin.map(|listener| {
        let api = AdminApi {
            control: control.clone(),
            token: options.token,
            ready: shutdown.readiness(),
            metrics: metrics_renderer(&control),
            names: config.admin.names.clone(),
            metrics_token: config.admin.metrics_token,
        };
        tracing::info!(addr = ?admin_addr, "admin API serving");
        tokio::spawn(crate::admin::serve(
            listener,
            Arc::new(api),
            stop_admin.clone(),
        ))
    });
    shutdown.set_ready(true);
    App {
        routing,
        telemetry,
        controller,
        control,
        drains,
        events,
        addrs,
        admin_addr,
        shutdown,
        stop_admin,
        workers: options.workers,
        admin,
    }
}

/// `/metrics`: every veer metric, phases from the controller.
fn metrics_renderer(control: &Arc<Control>) -> MetricsRenderer {
    let control = control.clone();
    Arc::new(move || {
        let snapshot = control.routing.load();
        crate::admin::metrics::render(&control.telemetry, &snapshot, |route| {
            control.controller.phase(route).as_str()
        })
    })
}

impl App {
    /// The Prometheus exposition of everything this veer measures.
    pub fn metrics(&self) -> String {
        (metrics_renderer(&self.control))()
    }

    /// Readiness as `/readyz` reports it.
    pub fn readiness(&self) -> watch::Receiver<bool> {
        self.shutdown.readiness()
    }

    /// [`App::stop`] with the `shutdown_delay` and `shutdown_grace` of the
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

    /// Graceful shutdown (SPEC §10): readiness turns false, then after
    /// `delay` the listeners close and connections get up to `grace` to
    /// finish: idle HTTP/1 connections close, busy ones answer with
    /// `Connection: close`, h2 ones get GOAWAY. Returns false when some
    /// were still open at the deadline. The controller persists its state
    /// on the way out; the admin API stops last.
    pub async fn stop(self, delay: Duration, grace: Duration) -> bool {
        let finished = self.shutdown.run(delay, grace).await;
        self.workers.stop();
        self.stop_admin.cancel();
        if let Some(admin) = self.admin {
            let _ = admin.await;
        }
        finished
    }

    /// [`App::stop`] at once.
    pub async fn shutdown(self, grace: Duration) -> bool {
        self.stop(Duration::ZERO, grace).await
    }
}

/// Copies drain events into the event log, so a deploy script polling
/// `/api/v1/events` learns when old instances can be stopped.
async fn record_drains(drains: Arc<Drains>, events: Arc<Events>, stop: CancellationToken) {
    let mut rx = drains.subscribe();
    loop {
        let event = tokio::select! {
            event = rx.recv() => event,
            () = stop.cancelled() => return,
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
                let message = format!("{} draining", what(&pool, &endpoint));
                events.record(EventKind::Draining, None, message);
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
                events.record(EventKind::Drained, None, message);
            }
        }
    }
}
