//! `veer run`: [`super::start`], then reloads (file watch, SIGHUP,
//! certificate directories) until a shutdown signal.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::watch::{ConfigWatcher, DEBOUNCE};
use crate::config::Config;
use crate::control::Control;

use super::{Options, Stage};

/// Serves until `signal` resolves, then shuts down gracefully, or until
/// a new process takes the listening sockets (`options.upgrades`), then
/// hands over. `reload` is notified to reload the config (SIGHUP);
/// `watch` also reloads when the file's directory changes.
pub async fn run(
    mut options: Options,
    reload: Arc<Notify>,
    watch: bool,
    signal: impl Future<Output = ()>,
) {
    let upgrades = options.upgrades.take().and_then(|listener| {
        let path = listener.local_addr().ok()?.as_pathname()?.to_path_buf();
        match tokio::net::UnixListener::from_std(listener) {
            Ok(listener) => Some((listener, path)),
            Err(e) => {
                tracing::warn!(error = %e, "not serving upgrades");
                None
            }
        }
    });
    let config = options.config.clone();
    let lifecycle = options.lifecycle.clone();
    let tell = move |stage| {
        if let Some(tell) = &lifecycle {
            tell(stage);
        }
    };
    let app = super::start(options).await;
    tell(Stage::Ready);
    let watcher = match watch {
        false => None,
        true => match ConfigWatcher::start(&config.source) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "not watching the config file; SIGHUP still reloads");
                None
            }
        },
    };
    let certs = watch.then(|| CertWatch::start(&config));
    let stopped = CancellationToken::new();
    let reloading = tokio::spawn(reloads(
        app.control.clone(),
        watcher,
        certs,
        reload,
        stopped.clone(),
        tell.clone(),
    ));
    let taker = async {
        match &upgrades {
            Some((listener, _)) => upgrade_requests(listener, &app).await,
            None => std::future::pending().await,
        }
    };
    let taker = tokio::select! {
        () = signal => None,
        taker = taker => Some(taker),
    };
    stopped.cancel();
    let _ = reloading.await;
    match taker {
        None => {
            tell(Stage::Stopping);
            if let Some((_, path)) = upgrades {
                let _ = std::fs::remove_file(path);
            }
            app.stop_as_configured().await;
        }
        // The service goes on in the new process (which tells systemd its
        // pid): this one does not say STOPPING.
        Some(taker) => {
            drop(upgrades);
            tracing::info!(
                "upgrade: a new process took the listening sockets; draining and exiting"
            );
            let done = app
                .hand_over(move || {
                    if let Err(e) = taker.released() {
                        tracing::warn!(error = %e, "upgrade: telling the new process it may start");
                    }
                })
                .await;
            if !done {
                tracing::warn!("shutdown grace period ended with requests, responses or tunnels still open; they were cut");
            }
        }
    }
}

/// Serves upgrade requests until a new process says `take`; one that
/// gives up (its config failed, a port could not be bound) leaves this
/// process serving.
async fn upgrade_requests(
    listener: &tokio::net::UnixListener,
    app: &super::App,
) -> super::upgrade::Taker {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream.into_std(),
            Err(e) => {
                tracing::warn!(error = %e, "upgrade socket: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let offered = match (stream, app.sockets().await) {
            (Ok(stream), Ok(sockets)) => {
                let offer = move || super::upgrade::offer(stream, sockets);
                tokio::task::spawn_blocking(offer)
                    .await
                    .unwrap_or_else(|e| Err(std::io::Error::other(e)))
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        match offered {
            Ok(taker) => return taker,
            // A connection that says nothing (a probe) is not worth a warning.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                tracing::debug!(error = %e, "upgrade socket: connection closed without a request")
            }
            Err(e) => tracing::warn!(error = %e, "upgrade abandoned; still serving"),
        }
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
    stopped: CancellationToken,
    tell: impl Fn(Stage),
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
            () = stopped.cancelled() => return,
            () = requested.notified() => {
                tell(Stage::Reloading);
                let _ = control.reload().await;
                tell(Stage::Ready);
            }
            seen = changed => match seen {
                Some(()) => {
                    let _ = control.reload_if_changed().await;
                }
                None => watcher = None,
            },
            seen = certs_changed => match seen {
                Some(()) => {
                    control.reload_certs().await;
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
