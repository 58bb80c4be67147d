//! Shutdown, one way for the whole process: a [`CancellationToken`] tree
//! and a [`TaskTracker`]. `app::start` owns the root; every
//! long-running task (listeners, connections, health checks, drains, the
//! controller) takes a clone and finishes its work once it is cancelled;
//! each listener gets a child token, so a reload can stop one listener
//! alone. Readiness (`/readyz`) turns false first. What is in flight to
//! upstreams (requests, streaming bodies, tunnels) is drained by
//! `drain::Drains::shutdown` up to `shutdown_grace`, then cut.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
pub use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

#[derive(Debug)]
pub struct Shutdown {
    /// Cancelled to stop accepting and close connections gracefully.
    pub token: CancellationToken,
    /// Listener, connection and background tasks, awaited on the way out.
    pub tracker: TaskTracker,
    /// True while serving, false from the start of shutdown.
    ready: watch::Sender<bool>,
    /// Set when the listening sockets went to a new process.
    pub handover: HandOver,
}

/// Whether this shutdown handed the listening sockets to a new process
/// (`veer run --upgrade`). Then the new process accepts and serves every
/// next request, so connections here do not close while idle: an idle
/// HTTP/1 one answers its next request with `Connection: close`, and a
/// connection just accepted still gets its handshake and first request.
#[derive(Debug, Clone, Default)]
pub struct HandOver(Arc<AtomicBool>);

impl HandOver {
    pub fn start(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn started(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// Resolves when a connection that is idle (or not yet talking)
    /// should close: at shutdown, unless the sockets were handed over.
    pub async fn closing(&self, token: &CancellationToken) {
        token.cancelled().await;
        if self.started() {
            std::future::pending::<()>().await;
        }
    }
}

impl Default for Shutdown {
    fn default() -> Shutdown {
        Shutdown {
            token: CancellationToken::new(),
            tracker: TaskTracker::new(),
            ready: watch::Sender::new(false),
            handover: HandOver::default(),
        }
    }
}

impl Shutdown {
    /// Readiness as `/readyz` reports it.
    pub fn readiness(&self) -> watch::Receiver<bool> {
        self.ready.subscribe()
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.send_replace(ready);
    }

    /// Runs `task` until it ends; shutdown waits for it.
    pub fn spawn<F>(&self, task: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tracker.spawn(task);
    }

    /// Readiness turns false; after `delay` (for load balancers in front to
    /// notice) every task is cancelled: listeners stop accepting and
    /// connections close gracefully.
    pub async fn begin(&self, delay: Duration) {
        self.set_ready(false);
        tokio::time::sleep(delay).await;
        self.token.cancel();
        self.tracker.close();
    }

    /// Waits up to `limit` for every task to finish; false when some were
    /// still running then.
    pub async fn wait(&self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.tracker.wait())
            .await
            .is_ok()
    }
}
