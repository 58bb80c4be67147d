//! `GET /api/v1/pools/{pool}/drain`: where a pool's (or one endpoint's)
//! drain stands, from its drain record or, without one, from the snapshot
//! and the live counts; and waiting for it to be drained, woken by drain
//! and snapshot changes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::routing::{Routing, Snapshot};

use super::{still_leaving, DrainReason, DrainState, Drains};

/// What `veer drain wait` and scripts read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainReport {
    pub pool: String,
    pub endpoint: Option<String>,
    pub state: ReportState,
    /// Why it drains (none while serving, or drained without a record).
    pub reason: Option<DrainReason>,
    /// Requests (with their response bodies) and tunnels in flight now.
    pub in_flight: usize,
    /// Unix milliseconds.
    pub started: Option<u64>,
    pub finished: Option<u64>,
    pub took_ms: Option<u64>,
    /// Closed at the deadline (`drain_timeout` or `shutdown_grace`).
    pub cut: usize,
    pub cut_streams: usize,
    pub cut_tunnels: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportState {
    /// New requests still reach it.
    Serving,
    Draining,
    /// Nothing in flight, no connection open: its instances can be stopped.
    Drained,
}

/// A drain report asked for something that does not exist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("no pool {0:?} (and no drain of it)")]
    UnknownPool(String),
    #[error("pool {pool:?} has no endpoint {endpoint:?} (and no drain of it)")]
    UnknownEndpoint { pool: String, endpoint: String },
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Drains {
    /// Where `pool` (or its `endpoint`) stands now.
    pub fn report(
        &self,
        snapshot: &Snapshot,
        pool: &str,
        endpoint: Option<&str>,
    ) -> Result<DrainReport, LookupError> {
        let registry = self.registry.lock().unwrap();
        let newest = |want: Option<&str>| {
            registry
                .entries
                .iter()
                .rev()
                .find(|e| e.status.pool == pool && e.status.endpoint.as_deref() == want)
        };
        // An endpoint's own drain, else its pool's drain if it was in it.
        let entry = newest(endpoint).or_else(|| {
            let ep = endpoint?;
            newest(None).filter(|e| e.endpoints.iter().any(|x| x.spec.authority == ep))
        });
        if let Some(entry) = entry {
            let status = entry.status();
            let in_flight = match endpoint {
                Some(ep) => entry
                    .endpoints
                    .iter()
                    .filter(|e| e.spec.authority == ep)
                    .map(|e| e.in_flight())
                    .sum(),
                None => status.in_flight,
            };
            let (state, cut) = match status.state {
                DrainState::Draining => (ReportState::Draining, Default::default()),
                DrainState::Drained { cut } => (ReportState::Drained, cut),
            };
            return Ok(DrainReport {
                pool: pool.to_string(),
                endpoint: endpoint.map(str::to_string),
                state,
                reason: Some(status.reason),
                in_flight,
                started: Some(unix_ms(status.started_at)),
                finished: status.finished_at.map(unix_ms),
                took_ms: status.took.map(|t| t.as_millis() as u64),
                cut: cut.total(),
                cut_streams: cut.streams,
                cut_tunnels: cut.tunnels,
            });
        }
        drop(registry);
        // No drain record: from the snapshot and the live counts.
        let found = snapshot
            .pool(pool)
            .ok_or_else(|| LookupError::UnknownPool(pool.to_string()))?;
        let endpoints: Vec<_> = match endpoint {
            None => found.endpoints.iter().collect(),
            Some(ep) => {
                let e = found
                    .endpoint(ep)
                    .ok_or_else(|| LookupError::UnknownEndpoint {
                        pool: pool.to_string(),
                        endpoint: ep.to_string(),
                    })?;
                vec![e]
            }
        };
        let serving = match endpoint {
            None => !still_leaving(snapshot, pool, None),
            Some(_) => !still_leaving(snapshot, pool, Some(endpoints[0])),
        };
        let quiet = endpoints.iter().all(|e| e.flight().is_quiet());
        let state = match (serving, quiet) {
            (true, _) => ReportState::Serving,
            (false, true) => ReportState::Drained,
            // Left traffic a moment ago; its drain is about to start.
            (false, false) => ReportState::Draining,
        };
        Ok(DrainReport {
            pool: pool.to_string(),
            endpoint: endpoint.map(str::to_string),
            state,
            reason: None,
            in_flight: endpoints.iter().map(|e| e.in_flight()).sum(),
            started: None,
            finished: None,
            took_ms: None,
            cut: 0,
            cut_streams: 0,
            cut_tunnels: 0,
        })
    }

    /// [`Drains::report`] once drained, or after `wait` as it is then.
    /// Woken by drains starting, finishing or being forgotten and by new
    /// snapshots; never polls.
    pub async fn wait_report(
        &self,
        routing: &Routing,
        pool: &str,
        endpoint: Option<&str>,
        wait: Duration,
    ) -> Result<DrainReport, LookupError> {
        let until = Instant::now() + wait;
        loop {
            let mut changed = self.changed.subscribe();
            let mut published = routing.subscribe();
            let report = self.report(&routing.load(), pool, endpoint)?;
            if report.state == ReportState::Drained || Instant::now() >= until {
                return Ok(report);
            }
            tokio::select! {
                _ = changed.changed() => {}
                _ = published.changed() => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }
}
