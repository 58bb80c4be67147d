//! One way to start the process: [`start`] builds the routing state, the
//! controller (which resumes what `state_dir` holds), health checks,
//! drains, the listeners and the admin API from already bound sockets.
//! `veer run`, `veer demo` and every test harness start veer through it
//! and serve through the same listener path; [`App::stop`] shuts it down
//! as SPEC §10 has it.

use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::shutdown::{CancellationToken, Shutdown};

use crate::admin::{AdminApi, MetricsRenderer};
use crate::config::Config;
use crate::control::{Bind, Control, Controller, Events, ListenerSet};
use crate::discovery::Registrations;
use crate::drain::Drains;
use crate::observe::Telemetry;
use crate::routing::Routing;
use crate::workers::Workers;

mod drains;
mod run;
mod sockets;
mod stop;
pub mod upgrade;

pub use sockets::{acquire, Activated, Source};

pub use drains::DrainedPayload;
pub use run::run;

/// Length of the rolling per-pool analysis window status shows (the
/// controller keeps its own, aligned with its intervals).
pub const ANALYSIS_WINDOW: Duration = Duration::from_secs(10);

/// At shutdown, once nothing is in flight upstream, how long client
/// connections get at least to finish writing and close.
const SETTLE: Duration = Duration::from_secs(1);

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
    /// This machine's name: a fleet replica's default id is it and the
    /// first listener's address.
    pub hostname: Option<String>,
    /// Told when veer is ready, reloading and stopping (systemd's
    /// `sd_notify`, set by the binary).
    pub lifecycle: Option<Lifecycle>,
    /// `state_dir/veer.sock`, where a later `veer run --upgrade` asks for
    /// the listening sockets ([`upgrade`]); served by [`run`].
    pub upgrades: Option<std::os::unix::net::UnixListener>,
}

/// What the service manager hears about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Ready,
    Reloading,
    Stopping,
}

pub type Lifecycle = Arc<dyn Fn(Stage) + Send + Sync>;

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
            hostname: None,
            lifecycle: None,
            upgrades: None,
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
    /// Endpoints registered through the admin API, and maintenance.
    pub registrations: Arc<Registrations>,
    pub events: Arc<Events>,
    /// The listeners' local addresses, in config order.
    pub addrs: Vec<SocketAddr>,
    pub admin_addr: Option<SocketAddr>,
    shutdown: Shutdown,
    /// Stops the admin API last, so it answers while connections drain.
    stop_admin: CancellationToken,
    /// Stops following drains, once shutdown's own drains are done.
    stop_drains: CancellationToken,
    drain_tasks: Vec<tokio::task::JoinHandle<()>>,
    workers: Workers,
    admin: Option<tokio::task::JoinHandle<()>>,
    /// The admin listening socket (a duplicate), for an upgrade.
    admin_socket: Option<(SocketAddr, SocketAddr, OwnedFd)>,
    /// Cancelled once the controller stopped and saved its state.
    controller_stopped: CancellationToken,
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
    let (outbox, outgoing) = match config.cluster {
        Some(_) => {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            (Some(tx), Some(rx))
        }
        None => (None, None),
    };
    let peers: Option<crate::control::sense::Peers> =
        config.cluster.as_ref().map(|_| Default::default());
    let (controller, task) = Controller::spawn(
        routing.clone(),
        telemetry.clone(),
        Some(config.proxy.state_dir.clone()),
        events.clone(),
        stop.clone(),
        outbox,
        peers.clone(),
    );
    let controller_stopped = CancellationToken::new();
    let stopped = controller_stopped.clone();
    tracker.spawn(async move {
        let _ = task.await;
        stopped.cancel();
    });
    // In a fleet, operator calls go to the leader; this replica's own
    // controller decides only while it leads.
    let (controller, cluster) = match (&config.cluster, outgoing) {
        (Some(spec), Some(outgoing)) => {
            let id = spec.replica.clone().unwrap_or_else(|| {
                let addr = options.listeners.first().and_then(|l| l.local_addr().ok());
                let host = options.hostname.as_deref().unwrap_or("veer");
                addr.map_or(host.to_string(), |a| format!("{host}-{a}"))
            });
            let data = crate::fleet::Data {
                routing: routing.clone(),
                telemetry: telemetry.clone(),
                peers: peers.clone().unwrap_or_default(),
            };
            let (fleet, task) =
                crate::fleet::join(spec.clone(), id, controller, outgoing, data, stop.clone());
            tracker.spawn(async move {
                let _ = task.await;
            });
            (fleet.controller, Some(fleet.status))
        }
        _ => (controller, None),
    };
    // Drains outlive the listeners: shutdown drains what is in flight.
    let drains = Arc::new(Drains::default());
    let stop_drains = CancellationToken::new();
    let drain_tasks = vec![
        tokio::spawn(drains::record(
            drains.clone(),
            events.clone(),
            routing.clone(),
            stop_drains.clone(),
        )),
        tokio::spawn(crate::drain::follow(
            routing.clone(),
            drains.clone(),
            stop_drains.clone(),
        )),
    ];
    let checks = crate::routing::health::run(routing.clone(), stop.clone(), tracker.clone());
    tracker.spawn(checks);
    let registrations = Arc::new(Registrations::load(
        routing.clone(),
        Some(config.proxy.state_dir.clone()),
    ));
    let discovery = crate::discovery::run(routing.clone(), stop.clone(), tracker.clone());
    tracker.spawn(discovery);
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
        shutdown.handover.clone(),
    );
    let mut control = Control::new(
        &config,
        routing.clone(),
        telemetry.clone(),
        controller.clone(),
        listeners,
    );
    control.cluster = cluster;
    let control = Arc::new(control);
    let mut addrs = Vec::new();
    for (listener, spec) in options.listeners.into_iter().zip(&config.listeners) {
        addrs.extend(listener.local_addr().ok());
        control.serve(listener, spec).await;
    }
    let admin_addr = options.admin.as_ref().and_then(|l| l.local_addr().ok());
    let admin_socket = options.admin.as_ref().and_then(|l| {
        let fd = l.as_fd().try_clone_to_owned().ok()?;
        Some((config.admin.listen, l.local_addr().ok()?, fd))
    });
    let admin = options.admin.map(|listener| {
        let api = AdminApi {
            control: control.clone(),
            drains: drains.clone(),
            endpoints: registrations.clone(),
            token: options.token,
            ready: shutdown.readiness(),
            metrics: metrics_renderer(&control, &drains),
            names: config.admin.names.clone(),
            metrics_token: config.admin.metrics_token,
            analysis_window: every,
        };
        tracing::info!(addr = ?admin_addr, "admin API serving");
        tokio::spawn(crate::admin::serve(
            listener,
            Arc::new(api),
            stop_admin.clone(),
            shutdown.handover.clone(),
        ))
    });
    shutdown.set_ready(true);
    App {
        routing,
        telemetry,
        controller,
        control,
        drains,
        registrations,
        events,
        addrs,
        admin_addr,
        shutdown,
        stop_admin,
        stop_drains,
        drain_tasks,
        workers: options.workers,
        admin,
        admin_socket,
        controller_stopped,
    }
}

/// `/metrics`: every veer metric, phases from the controller, drains.
fn metrics_renderer(control: &Arc<Control>, drains: &Arc<Drains>) -> MetricsRenderer {
    let (control, drains) = (control.clone(), drains.clone());
    Arc::new(move || {
        let snapshot = control.routing.load();
        let mut out = crate::admin::metrics::render(&control.telemetry, &snapshot, |route| {
            control.controller.phase(route)
        });
        crate::admin::metrics::render_dns(&mut out, &snapshot, &control.routing);
        crate::admin::metrics::render_drains(&mut out, &drains);
        out
    })
}

impl App {
    /// The Prometheus exposition of everything this veer measures.
    pub fn metrics(&self) -> String {
        (metrics_renderer(&self.control, &self.drains))()
    }

    /// Readiness as `/readyz` reports it.
    pub fn readiness(&self) -> watch::Receiver<bool> {
        self.shutdown.readiness()
    }
}
