//! Which endpoints are health-checked: [`run`] follows the routing
//! snapshots and keeps one checker task (`upstream::health::check`) per
//! health-checked endpoint state, started when the endpoint appears and
//! stopped when it leaves. An endpoint unchanged by a reload keeps its
//! state and its checker.

use std::collections::HashMap;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::HealthSpec;
use crate::upstream::health::check;
use crate::upstream::EndpointState;

use super::{Routing, Snapshot};

/// A running checker, keyed by its endpoint state's address.
struct Checker {
    /// Keeps the state (and so the key) alive while the checker runs.
    _endpoint: Arc<EndpointState>,
    spec: HealthSpec,
    stop: CancellationToken,
}

/// Keeps one checker per health-checked endpoint of the current snapshot,
/// until `shutdown` turns true. Checkers run on `tracker`.
pub async fn run(routing: Arc<Routing>, shutdown: CancellationToken, tracker: TaskTracker) {
    let mut published = routing.subscribe();
    let root = CancellationToken::new();
    let mut checkers = HashMap::new();
    loop {
        reconcile(&routing.load_full(), &mut checkers, &root, &tracker);
        tokio::select! {
            changed = published.changed() => if changed.is_err() { break },
            () = shutdown.cancelled() => break,
        }
    }
    root.cancel();
}

/// Starts checkers for new endpoint states (or changed settings) and
/// stops those of endpoint states no longer in `snapshot`.
fn reconcile(
    snapshot: &Snapshot,
    checkers: &mut HashMap<usize, Checker>,
    root: &CancellationToken,
    tracker: &TaskTracker,
) {
    let mut wanted = HashMap::new();
    for pool in &snapshot.pools {
        let Some(spec) = &pool.health else { continue };
        for (endpoint, _, _) in pool.members() {
            wanted.insert(Arc::as_ptr(endpoint) as usize, (&pool.name, endpoint, spec));
        }
    }
    checkers.retain(|key, checker| {
        let keep = wanted
            .get(key)
            .is_some_and(|(_, _, spec)| **spec == checker.spec);
        if !keep {
            checker.stop.cancel();
        }
        keep
    });
    for (key, (pool, endpoint, spec)) in wanted {
        if checkers.contains_key(&key) {
            continue;
        }
        let stop = root.child_token();
        tracker.spawn(check(
            pool.clone(),
            endpoint.clone(),
            spec.clone(),
            stop.clone(),
        ));
        let checker = Checker {
            _endpoint: endpoint.clone(),
            spec: spec.clone(),
            stop,
        };
        checkers.insert(key, checker);
    }
}
