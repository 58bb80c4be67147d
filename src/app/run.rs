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

/// Serves until `signal` resolves, then shuts down gracefully. `reload`
/// is notified to reload the config (SIGHUP); `watch` also reloads when
/// the file's directory changes.
pub async fn run(
    options: Options,
    reload: Arc<Notify>,
    watch: bool,
    signal: impl Future<Output = ()>,
) {
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
    signal.await;
    tell(Stage::Stopping);
    stopped.cancel();
    let _ = reloading.await;
    app.stop_as_configured().await;
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
