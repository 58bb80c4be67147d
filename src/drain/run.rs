//! One drain's task: wait, woken by the guards, until nothing is in flight
//! and no connection is open to its endpoints; at the deadline cut what is
//! left and wait for it to be closed; then report `drained`.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::upstream::EndpointState;

use super::registry::Still;
use super::{Drains, CLOSE_WAIT};

pub(super) async fn run(
    drains: Arc<Drains>,
    id: u64,
    endpoints: Vec<Arc<EndpointState>>,
    mut deadline: watch::Receiver<Instant>,
    stop: CancellationToken,
    still: Option<Still>,
) {
    // Watching until this task ends (drained, forgotten or replaced).
    let _watching: Vec<_> = endpoints.iter().map(|e| e.flight().watch()).collect();
    endpoints.iter().for_each(|e| e.conns.clear());
    // Set once cut: the moment by which the closed connections must be gone.
    let mut closing: Option<Instant> = None;
    loop {
        let limit = *deadline.borrow_and_update();
        tokio::select! {
            () = settled(&endpoints) => break,
            () = tokio::time::sleep_until(limit), if closing.is_none() => {
                let back = || still.as_ref().is_some_and(|still| !still());
                if back() {
                    // Serving again: the follower forgets this drain.
                    stop.cancelled().await;
                    return;
                }
                if drains.cut(id).is_none() {
                    return;
                }
                if back() {
                    // Brought back while cutting: serve again at once.
                    endpoints.iter().for_each(|e| e.flight().serve());
                    stop.cancelled().await;
                    return;
                }
                closing = Some(Instant::now() + CLOSE_WAIT);
            }
            () = sleep_until_some(closing) => {
                tracing::warn!(id, "connections cut by a drain still open after {CLOSE_WAIT:?}; reporting drained anyway");
                break;
            }
            changed = deadline.changed(), if closing.is_none() => {
                if changed.is_err() {
                    return;
                }
            }
            () = stop.cancelled() => return,
        }
    }
    drains.finish(id);
}

/// Resolves once every endpoint is closed: nothing in flight and no
/// connection open (after a cut: no connection or tunnel open). Idle
/// connections that finished responses give back are closed on the way.
async fn settled(endpoints: &[Arc<EndpointState>]) {
    let closed = |e: &EndpointState| {
        e.conns.clear();
        e.flight().is_closed()
    };
    loop {
        let Some(open) = endpoints.iter().find(|e| !closed(e)) else {
            return;
        };
        open.flight().until(|_| closed(open)).await;
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
