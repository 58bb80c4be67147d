//! One upstream endpoint: its address, health and load, and its idle
//! connections. Shared (by `Arc`) across routing snapshots so that health
//! state and warm connections survive a reload.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::Endpoint;

use super::client::ConnPool;

#[derive(Debug)]
pub struct EndpointState {
    pub spec: Endpoint,
    /// Resolved once when the endpoint is an IP literal, so connecting
    /// never goes through the blocking resolver.
    pub addr: Option<SocketAddr>,
    /// In rotation. Health checking (active and passive) flips this.
    healthy: AtomicBool,
    /// Requests sent and not yet finished: the load `least_request` compares.
    in_flight: AtomicUsize,
    pub conns: ConnPool,
}

impl EndpointState {
    pub fn new(spec: Endpoint, connect_timeout: Duration, idle_timeout: Duration) -> Arc<Self> {
        let addr = spec
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()
            .map(|ip| SocketAddr::new(ip, spec.port));
        Arc::new(EndpointState {
            spec,
            addr,
            healthy: AtomicBool::new(true),
            in_flight: AtomicUsize::new(0),
            conns: ConnPool::new(connect_timeout, idle_timeout),
        })
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts one request against this endpoint until the guard drops.
    pub fn start_request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

/// A request in flight on an endpoint; dropping it ends the count.
#[derive(Debug)]
pub struct InFlight(Arc<EndpointState>);

impl InFlight {
    pub fn endpoint(&self) -> &Arc<EndpointState> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
