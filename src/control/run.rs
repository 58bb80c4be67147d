//! Running veer: the data plane, the control plane, the admin API and the
//! config watcher, until a shutdown signal.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use crate::admin::{AdminApi, MetricsRenderer};
use crate::config::watch::{ConfigWatcher, DEBOUNCE};
use crate::config::Config;
use crate::server::{Server, ANALYSIS_WINDOW};

use super::{Bind, Control, ListenerSet};

/// What the binary hands the library: everything already bound and read.
pub struct RunOptions {
    pub config: Arc<Config>,
    /// Bound in the order of `config.listeners`.
    pub listeners: Vec<TcpListener>,
    /// The admin listener (`[admin] listen`).
    pub admin: Option<TcpListener>,
    /// The bearer token `/api` calls need, read from `token_env`.
    pub token: Option<String>,
    /// Binds listeners a reload adds.
    pub bind: Option<Bind>,
    /// Notified to reload the config (SIGHUP).
    pub reload: Arc<Notify>,
    /// Watch the config file's directory and reload on change.
    pub watch: bool,
    /// Renders `/metrics`; `None` renders every veer metric
    /// ([`crate::admin::metrics::render`]).
    pub metrics: Option<MetricsRenderer>,
    /// Where connections are served (`workers = N`, started by the binary).
    pub workers: crate::workers::Workers,
}

/// Serves until `signal` resolves, then shuts down gracefully.
pub async fn run(options: RunOptions, signal: impl Future<Output = ()>) {
    let config = options.config;
    let server = Server::new(config.clone()).with_workers(options.workers);
    server.roll_windows(ANALYSIS_WINDOW);
    let mut listeners = ListenerSet::new(&server, options.bind);
    for (listener, spec) in options.listeners.into_iter().zip(&config.listeners) {
        listeners.serve(listener, spec);
    }
    let control = Arc::new(Control::new(
        &config,
        server.routing.clone(),
        Some(server.controller.clone()),
        listeners,
        server.events.clone(),
    ));
    let (stop, stopped) = watch::channel(false);

    let watcher = match options.watch {
        false => None,
        true => match ConfigWatcher::start(&config.source) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "not watching the config file; SIGHUP still reloads");
                None
            }
        },
    };
    let certs = options.watch.then(|| CertWatch::start(&config));
    tokio::spawn(reloads(
        control.clone(),
        watcher,
        certs,
        options.reload,
        stopped.clone(),
    ));

    let admin = options.admin.map(|listener| {
        let metrics = options.metrics.unwrap_or_else(|| {
            let control = control.clone();
            Arc::new(move || {
                let snapshot = control.routing.load();
                crate::admin::metrics::render(&control.routing.registry, &snapshot, |route| {
                    control.phase(route)
                })
            })
        });
        let api = AdminApi {
            control: control.clone(),
            token: options.token,
            ready: server.readiness(),
            metrics,
        };
        tracing::info!(addr = ?listener.local_addr().ok(), "admin API serving");
        tokio::spawn(crate::admin::serve(
            listener,
            Arc::new(api),
            stopped.clone(),
        ))
    });

    server.mark_ready();
    signal.await;
    server.stop_as_configured().await;
    let _ = stop.send(true);
    if let Some(admin) = admin {
        let _ = admin.await;
    }
}

/// Reloads on directory changes (when the file's text changed) and on
/// every explicit request, and reloads certificates when their
/// directories change, until `stopped`.
async fn reloads(
    control: Arc<Control>,
    mut watcher: Option<ConfigWatcher>,
    mut certs: Option<CertWatch>,
    requested: Arc<Notify>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let changed = async {
            match &mut watcher {
                Some(w) => w.changed(DEBOUNCE).await,
                None => std::future::pending().await,
            }
        };
        let certs_changed = async {
            match certs.as_mut().and_then(|c| c.watcher.as_mut()) {
                Some(w) => w.changed(DEBOUNCE).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = crate::admin::stopped(&mut stopped) => return,
            () = requested.notified() => {
                let _ = control.reload();
            }
            seen = changed => match seen {
                Some(()) => {
                    let _ = control.reload_if_changed();
                }
                None => watcher = None,
            },
            seen = certs_changed => match seen {
                Some(()) => {
                    control.reload_certs();
                }
                None => certs = None,
            },
        }
        if let Some(certs) = &mut certs {
            certs.follow(&control.routing.load().config);
        }
    }
}

/// The watch on the directories holding listener certificates, moved
/// when a reload changes which directories those are.
struct CertWatch {
    dirs: Vec<std::path::PathBuf>,
    watcher: Option<ConfigWatcher>,
}

impl CertWatch {
    fn start(config: &Config) -> CertWatch {
        let mut watch = CertWatch {
            dirs: Vec::new(),
            watcher: None,
        };
        watch.follow(config);
        watch
    }

    fn follow(&mut self, config: &Config) {
        let dirs = crate::tls::reload::cert_dirs(config);
        if dirs == self.dirs && (self.watcher.is_some() || dirs.is_empty()) {
            return;
        }
        self.watcher = None;
        if !dirs.is_empty() {
            match ConfigWatcher::start_dirs(&dirs) {
                Ok(w) => self.watcher = Some(w),
                Err(e) => {
                    tracing::warn!(error = %e, ?dirs, "not watching certificate files; SIGHUP still reloads them")
                }
            }
        }
        self.dirs = dirs;
    }
}
