//! Watching the config file for changes.
//!
//! The watch is on the file's parent directory, not the file: editors save
//! by writing a new file and renaming it over the old one, and Kubernetes
//! updates a ConfigMap by swapping the `..data` symlink, so the file's own
//! inode is replaced and a watch on it would go quiet. Any event in the
//! directory counts; the reader compares the file's text to skip noise.
//! Events are debounced on the trailing edge: one reload after the
//! directory has been quiet for the debounce period.

use std::path::Path;
use std::time::Duration;

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Quiet time after the last event before a reload.
pub const DEBOUNCE: Duration = Duration::from_millis(200);

/// A live directory watch; dropping it stops watching.
pub struct ConfigWatcher {
    _watcher: RecommendedWatcher,
    events: mpsc::UnboundedReceiver<()>,
}

impl ConfigWatcher {
    /// Watches the directory that holds `path`.
    pub fn start(path: &Path) -> notify::Result<ConfigWatcher> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        Self::start_dirs(&[dir])
    }

    /// Watches every directory in `dirs` (e.g. those holding certificates).
    pub fn start_dirs(dirs: &[impl AsRef<Path>]) -> notify::Result<ConfigWatcher> {
        let (tx, events) = mpsc::unbounded_channel();
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
                Ok(event) if matches!(event.kind, EventKind::Access(_)) => {}
                Ok(_) => {
                    let _ = tx.send(());
                }
                Err(e) => tracing::warn!(error = %e, "config watch error"),
            })?;
        for dir in dirs {
            watcher.watch(dir.as_ref(), RecursiveMode::NonRecursive)?;
        }
        Ok(ConfigWatcher {
            _watcher: watcher,
            events,
        })
    }

    /// Resolves once something changed in the directory and it has then
    /// been quiet for `quiet`. `None` when the watch has ended.
    pub async fn changed(&mut self, quiet: Duration) -> Option<()> {
        self.events.recv().await?;
        loop {
            match tokio::time::timeout(quiet, self.events.recv()).await {
                Ok(Some(())) => continue,
                Ok(None) => return None,
                Err(_) => return Some(()),
            }
        }
    }
}
