//! Draining: when a pool stops receiving new requests (its weight drops
//! to 0 or it leaves the config), an endpoint leaves its pool, or veer
//! shuts down, what is already in flight finishes: requests, the response
//! bodies streaming back, and upgraded connections (WebSocket tunnels).
//! Idle upstream connections close at once.
//!
//! `drained` is a promise a deploy script can act on: nothing to that pool
//! (or endpoint) is in flight and no connection to it is open. A drain is
//! woken by the in-flight guard that drops last, as linkerd2-proxy's drain
//! signal resolves when its last watcher drops; it never polls. At its
//! deadline (`drain_timeout`, or `shutdown_grace` at shutdown) whatever is
//! still in flight is cut: connections and tunnels to the upstream close,
//! streaming bodies end with an error, and the count is kept. The
//! [`DrainEvent::Drained`] that says how many were cut is sent only once
//! they are closed.
//!
//! [`follow`] watches the snapshots and starts drains; [`Drains`] holds
//! each drain's state (`GET /api/v1/pools/{pool}/drain`, metrics) and runs
//! one task per drain (`run`); `report` answers the API.

mod diff;
mod registry;
mod report;
mod run;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::routing::Routing;

pub use crate::upstream::Cut;
pub use diff::{leaving, routes_to, serving, still_leaving, Leaving};
pub use registry::{DrainMetrics, Drains};
pub use report::{DrainReport, LookupError, ReportState};

/// Drained entries kept for status, beyond those still draining.
const KEEP_DRAINED: usize = 32;
/// After a cut, how long a drain waits at most for the connections it
/// closed to be gone before it reports anyway (they close at once; this
/// only bounds a bug).
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// Why something drains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrainReason {
    /// No route sends it traffic any more (weight 0, rolling limit).
    Shift,
    /// It left the config, DNS or the API registrations (a pool, or an
    /// endpoint of a pool).
    Removed,
    /// veer is shutting down.
    Shutdown,
    /// Put in maintenance (admin API): kept in its pool, out of rotation.
    Maintenance,
}

impl DrainReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DrainReason::Shift => "shift",
            DrainReason::Removed => "removed",
            DrainReason::Shutdown => "shutdown",
            DrainReason::Maintenance => "maintenance",
        }
    }

    /// The setting whose deadline cuts what is left.
    pub fn deadline_setting(self) -> &'static str {
        match self {
            DrainReason::Shutdown => "shutdown_grace",
            _ => "drain_timeout",
        }
    }
}

/// Where one drain stands, for status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainStatus {
    pub pool: String,
    /// `None` for a whole pool, else the endpoint that left it.
    pub endpoint: Option<String>,
    pub reason: DrainReason,
    pub state: DrainState,
    /// Requests (with their response bodies) and upgraded connections
    /// in flight now.
    pub in_flight: usize,
    pub since: Instant,
    pub started_at: SystemTime,
    pub finished_at: Option<SystemTime>,
    pub took: Option<Duration>,
    /// The routes that sent it traffic when it started.
    pub routes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainState {
    Draining,
    /// Nothing in flight and no connection open any more; `cut` says what
    /// had to be closed at the deadline (empty when everything finished).
    Drained {
        cut: Cut,
    },
}

/// Broadcast as drains start and finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainEvent {
    Draining {
        pool: String,
        endpoint: Option<String>,
    },
    Drained {
        pool: String,
        endpoint: Option<String>,
        took: Duration,
        cut: Cut,
        reason: DrainReason,
        routes: Vec<String>,
    },
}

/// Follows the routing snapshots and drains what leaves traffic, until
/// `stop` is cancelled. Woken only by published snapshots; it sees every
/// snapshot published after this call, even before it first runs.
pub fn follow(
    routing: Arc<Routing>,
    drains: Arc<Drains>,
    stop: CancellationToken,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let published = routing.subscribe();
    let previous = routing.load_full();
    follow_from(routing, drains, stop, published, previous)
}

async fn follow_from(
    routing: Arc<Routing>,
    drains: Arc<Drains>,
    stop: CancellationToken,
    mut published: tokio::sync::watch::Receiver<()>,
    mut previous: Arc<crate::routing::Snapshot>,
) {
    loop {
        tokio::select! {
            changed = published.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            () = stop.cancelled() => return,
        }
        let current = routing.load_full();
        drains.resume(&current);
        let deadline = Instant::now() + current.config.proxy.drain_timeout;
        for leaving in leaving(&previous, &current) {
            // Checked again just before a cut: a snapshot published since
            // may have brought it back (then this drain is forgotten).
            let (routing, pool) = (routing.clone(), leaving.pool.clone());
            let endpoint = leaving
                .endpoint
                .as_ref()
                .map(|_| leaving.endpoints[0].clone());
            let still = move || still_leaving(&routing.load(), &pool, endpoint.as_deref());
            drains.start(leaving, deadline, Some(Box::new(still)));
        }
        previous = current;
    }
}

#[cfg(test)]
mod tests;
