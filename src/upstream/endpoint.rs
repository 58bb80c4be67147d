//! One upstream endpoint: its address, health and load, and its idle
//! connections. Shared (by `Arc`) across routing snapshots so that health
//! state and warm connections survive a reload.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Endpoint, PoolSpec, UpstreamTls};

use super::client::ConnPool;
use super::flight::Flight;
use super::outlier::Outlier;

#[derive(Debug)]
pub struct EndpointState {
    pub spec: Endpoint,
    /// Resolved once when the endpoint is an IP literal, so connecting
    /// never goes through the blocking resolver.
    pub addr: Option<SocketAddr>,
    /// Passes its active health checks (always, without `[pool.health]`).
    healthy: AtomicBool,
    /// Passive outlier detection: failures in a row, current ejection.
    pub outlier: Outlier,
    /// Attempts that ended, and those that failed (connect error, reset,
    /// 5xx): failures are attributed to the endpoint that produced them,
    /// also when a retry elsewhere hid them from the client.
    attempts: AtomicU64,
    failures: AtomicU64,
    pub conns: ConnPool,
    /// The pool's TLS settings this endpoint was built with (`https://`).
    pub tls: Option<UpstreamTls>,
}

impl EndpointState {
    /// An endpoint of `pool`, with TLS when written `https://`. TLS
    /// material that cannot be read (checked before any config is
    /// accepted, so only when files vanished since) fails its connects.
    pub fn in_pool(spec: Endpoint, pool: &PoolSpec) -> Arc<Self> {
        let mut conns = ConnPool::new(pool.connect_timeout, pool.idle_timeout);
        let tls = spec.tls.then(|| pool.tls.clone());
        if let Some(settings) = &tls {
            match crate::tls::UpstreamConnector::new(&spec, settings) {
                Ok(connector) => conns = conns.with_tls(connector),
                Err(e) => {
                    tracing::error!(pool = %pool.name, endpoint = %spec.authority, error = %e, "upstream TLS unusable")
                }
            }
        }
        Self::with_conns(spec, conns, tls)
    }

    pub fn new(spec: Endpoint, connect_timeout: Duration, idle_timeout: Duration) -> Arc<Self> {
        Self::with_conns(spec, ConnPool::new(connect_timeout, idle_timeout), None)
    }

    fn with_conns(spec: Endpoint, conns: ConnPool, tls: Option<UpstreamTls>) -> Arc<Self> {
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
            outlier: Outlier::default(),
            attempts: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            conns,
            tls,
        })
    }

    /// In rotation: passes its health checks and is not ejected. This is
    /// what `veer_endpoint_healthy` and the status report.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed) && !self.outlier.is_ejected()
    }

    /// Passes its active health checks, ejected or not.
    pub fn passes_checks(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// Ejected by outlier detection right now.
    pub fn is_ejected(&self) -> bool {
        self.outlier.is_ejected()
    }

    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    /// Counts one finished attempt.
    pub fn count(&self, failed: bool) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Attempts and failed attempts so far.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.attempts.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
        )
    }

    /// Requests sent and not yet finished (their response bodies
    /// included): the load `least_request` compares.
    pub fn in_flight(&self) -> usize {
        self.conns.flight().requests()
    }

    /// What is in flight here, for drains.
    pub fn flight(&self) -> &Arc<Flight> {
        self.conns.flight()
    }

    /// Counts one request against this endpoint until the guard drops.
    pub fn start_request(self: &Arc<Self>) -> InFlight {
        self.flight().start_request();
        InFlight(self.clone())
    }
}

/// A request in flight on an endpoint (held by its response body until
/// that is sent); dropping it ends the count.
#[derive(Debug)]
pub struct InFlight(Arc<EndpointState>);

impl InFlight {
    pub fn endpoint(&self) -> &Arc<EndpointState> {
        &self.0
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.flight().end_request();
    }
}
