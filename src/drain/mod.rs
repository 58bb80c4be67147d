//! Draining: when a pool stops receiving new requests (its weight drops
//! to 0 or it leaves the config) or an endpoint leaves its pool, requests
//! already in flight finish (they hold the endpoint state), idle upstream
//! connections are closed at once, and upgraded connections (WebSocket
//! tunnels) are closed once `drain_timeout` has passed. When nothing is
//! left in flight the drain is `drained` and a [`DrainEvent::Drained`] is
//! broadcast, so a deploy script knows the old instances can be stopped.
//!
//! [`follow`] is the task that watches the snapshots; [`Drains`] holds the
//! state that status and subscribers read.

mod diff;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::routing::Routing;
use crate::upstream::EndpointState;

pub use diff::{leaving, serving, Leaving};

/// How often drains in progress look at their in-flight counts.
const POLL: Duration = Duration::from_millis(20);
/// Drained entries kept for status, beyond those still draining.
const KEEP_DRAINED: usize = 32;

/// Where one drain stands, for status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrainStatus {
    pub pool: String,
    /// `None` for a whole pool, else the endpoint that left it.
    pub endpoint: Option<String>,
    pub state: DrainState,
    /// Requests and upgraded connections still open.
    pub in_flight: usize,
    pub since: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DrainState {
    Draining,
    /// Nothing in flight any more; `forced` when upgraded connections had
    /// to be closed at `drain_timeout`.
    Drained {
        forced: bool,
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
        forced: bool,
    },
}

#[derive(Debug)]
struct Drain {
    status: DrainStatus,
    endpoints: Vec<Arc<EndpointState>>,
}

/// Every drain in progress or recently finished, and the event channel.
#[derive(Debug)]
pub struct Drains {
    drains: Mutex<Vec<Drain>>,
    events: broadcast::Sender<DrainEvent>,
}

impl Default for Drains {
    fn default() -> Drains {
        Drains {
            drains: Mutex::default(),
            events: broadcast::channel(256).0,
        }
    }
}

impl Drains {
    /// Drain events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<DrainEvent> {
        self.events.subscribe()
    }

    /// Every drain in progress, then the recently drained, oldest first.
    pub fn status(&self) -> Vec<DrainStatus> {
        let drains = self.drains.lock().unwrap();
        drains.iter().map(|d| d.status.clone()).collect()
    }

    /// Starts draining what `leaving` names, replacing an older drain of
    /// the same pool or endpoint.
    pub fn start(&self, leaving: Leaving, now: Instant) {
        for endpoint in &leaving.endpoints {
            endpoint.conns.clear();
        }
        let status = DrainStatus {
            pool: leaving.pool,
            endpoint: leaving.endpoint,
            state: DrainState::Draining,
            in_flight: in_flight(&leaving.endpoints),
            since: now,
        };
        tracing::info!(pool = %status.pool, endpoint = ?status.endpoint, in_flight = status.in_flight, "draining");
        let event = DrainEvent::Draining {
            pool: status.pool.clone(),
            endpoint: status.endpoint.clone(),
        };
        let mut drains = self.drains.lock().unwrap();
        drains.retain(|d| (&d.status.pool, &d.status.endpoint) != (&status.pool, &status.endpoint));
        drains.push(Drain {
            status,
            endpoints: leaving.endpoints,
        });
        let _ = self.events.send(event);
    }

    /// Forgets the drains of pools that serve again.
    pub fn resume(&self, serving: &dyn Fn(&str) -> bool) {
        let mut drains = self.drains.lock().unwrap();
        drains.retain(|d| d.status.endpoint.is_some() || !serving(&d.status.pool));
    }

    /// Updates in-flight counts; closes upgraded connections of drains
    /// older than `timeout`; finishes drains with nothing in flight.
    /// Returns true while some drain is still in progress.
    pub fn poll(&self, now: Instant, timeout: Duration) -> bool {
        let mut drains = self.drains.lock().unwrap();
        let mut active = false;
        for drain in drains.iter_mut() {
            let status = &mut drain.status;
            if status.state != DrainState::Draining {
                continue;
            }
            status.in_flight = in_flight(&drain.endpoints);
            let late = now.saturating_duration_since(status.since) >= timeout;
            if status.in_flight > 0 && !late {
                active = true;
                continue;
            }
            if status.in_flight > 0 {
                // Only upgraded connections outlive a drain: requests end
                // with their route's timeout.
                tracing::info!(pool = %status.pool, in_flight = status.in_flight, "drain timeout: closing upgraded connections");
                drain.endpoints.iter().for_each(|e| e.close_tunnels());
            }
            // Connections released by requests that finished meanwhile.
            drain.endpoints.iter().for_each(|e| e.conns.clear());
            let forced = status.in_flight > 0;
            status.state = DrainState::Drained { forced };
            let took = now.saturating_duration_since(status.since);
            tracing::info!(pool = %status.pool, endpoint = ?status.endpoint, ?took, forced, "drained");
            let _ = self.events.send(DrainEvent::Drained {
                pool: status.pool.clone(),
                endpoint: status.endpoint.clone(),
                took,
                forced,
            });
        }
        let finished = drains
            .iter()
            .filter(|d| d.status.state != DrainState::Draining)
            .count();
        if finished > KEEP_DRAINED {
            let mut extra = finished - KEEP_DRAINED;
            drains.retain(|d| {
                let drop = extra > 0 && d.status.state != DrainState::Draining;
                extra -= usize::from(drop);
                !drop
            });
        }
        active
    }
}

fn in_flight(endpoints: &[Arc<EndpointState>]) -> usize {
    endpoints.iter().map(|e| e.in_flight()).sum()
}

/// Follows the routing snapshots and drains what leaves traffic, until
/// `shutdown` turns true.
pub async fn follow(routing: Arc<Routing>, drains: Arc<Drains>, shutdown: CancellationToken) {
    let mut published = routing.subscribe();
    let mut previous = routing.load_full();
    let mut active = false;
    loop {
        tokio::select! {
            changed = published.changed() => {
                if changed.is_err() {
                    return;
                }
                let current = routing.load_full();
                let now = Instant::now();
                let is = serving(&current);
                drains.resume(&|pool| is.contains(pool));
                for leaving in leaving(&previous, &current) {
                    drains.start(leaving, now);
                }
                previous = current;
            }
            () = tokio::time::sleep(POLL), if active => {}
            () = shutdown.cancelled() => return,
        }
        let timeout = previous.config.proxy.drain_timeout;
        active = drains.poll(Instant::now(), timeout);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Endpoint;

    fn endpoint() -> Arc<EndpointState> {
        let spec = Endpoint {
            authority: "127.0.0.1:1".into(),
            host: "127.0.0.1".into(),
            port: 1,
            tls: false,
        };
        EndpointState::new(spec, Duration::from_secs(1), Duration::from_secs(1))
    }

    fn leaving(endpoints: &[Arc<EndpointState>]) -> Leaving {
        Leaving {
            pool: "v1".into(),
            endpoint: None,
            endpoints: endpoints.to_vec(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn drained_when_nothing_is_in_flight() {
        let (drains, ep) = (Drains::default(), endpoint());
        let mut events = drains.subscribe();
        let request = ep.start_request();
        drains.start(leaving(std::slice::from_ref(&ep)), Instant::now());
        assert!(matches!(events.try_recv(), Ok(DrainEvent::Draining { .. })));
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(drains.poll(Instant::now(), Duration::from_secs(30)));
        assert_eq!(drains.status()[0].in_flight, 1);
        drop(request);
        assert!(!drains.poll(Instant::now(), Duration::from_secs(30)));
        let state = drains.status()[0].state;
        assert_eq!(state, DrainState::Drained { forced: false });
        match events.try_recv() {
            Ok(DrainEvent::Drained { took, forced, .. }) => {
                assert_eq!((took, forced), (Duration::from_secs(1), false));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn upgraded_connections_are_closed_at_the_timeout() {
        let (drains, ep) = (Drains::default(), endpoint());
        let tunnel = ep.start_request();
        let closed = ep.tunnel_closed();
        drains.start(leaving(std::slice::from_ref(&ep)), Instant::now());
        tokio::time::advance(Duration::from_millis(499)).await;
        assert!(drains.poll(Instant::now(), Duration::from_millis(500)));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!drains.poll(Instant::now(), Duration::from_millis(500)));
        tokio::time::timeout(Duration::from_millis(1), closed)
            .await
            .expect("tunnel told to close");
        drop(tunnel);
        let state = drains.status()[0].state;
        assert_eq!(state, DrainState::Drained { forced: true });
    }

    #[tokio::test(start_paused = true)]
    async fn a_pool_serving_again_forgets_its_drain() {
        let drains = Drains::default();
        drains.start(leaving(&[endpoint()]), Instant::now());
        drains.resume(&|pool| pool == "v2");
        assert_eq!(drains.status().len(), 1);
        drains.resume(&|pool| pool == "v1");
        assert!(drains.status().is_empty());
    }
}
