//! Per route×pool counters, resolved once when a routing snapshot is
//! built and then updated lock-free by every request.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;

use super::histogram::{Histogram, HistogramSnapshot};
use super::window::Window;
use super::UpstreamErrorKind;

/// How one upstream attempt ended, for failure accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response came back; `failed` when it counts as a failure (5xx, or
    /// a non-zero `grpc-status`).
    Response { failed: bool },
    /// No usable response: connect error, timeout, reset, protocol error.
    Error(UpstreamErrorKind),
}

impl Outcome {
    pub fn is_failure(self) -> bool {
        !matches!(self, Outcome::Response { failed: false })
    }
}

/// Counters of one route×pool.
#[derive(Debug)]
pub struct RoutePoolStats {
    pub route: String,
    pub pool: String,
    pub version: String,
    /// Responses sent to clients by status class: 1xx..5xx.
    codes: [AtomicU64; 5],
    /// Upstream attempts and failed attempts: a failure hidden from the
    /// client by a retry on another endpoint still counts here.
    attempts: AtomicU64,
    failures: AtomicU64,
    upstream_errors: [AtomicU64; 4],
    /// Failed attempts in a row, reset by a success: the rollout tripwire.
    consecutive_failures: AtomicU64,
    in_flight: AtomicI64,
    latency: Histogram,
    /// Counters at the start of the current interval, and the last
    /// completed interval's window (see [`RoutePoolStats::roll_window`]).
    window: Mutex<(StatsSnapshot, Option<Window>)>,
}

/// A copy of one route×pool's counters at one instant.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatsSnapshot {
    pub codes: [u64; 5],
    pub attempts: u64,
    pub failures: u64,
    /// Failed attempts by kind, in [`UpstreamErrorKind::ALL`] order.
    pub upstream_errors: [u64; 4],
    pub in_flight: i64,
    pub latency: HistogramSnapshot,
}

impl StatsSnapshot {
    /// Adds another replica's counters of the same route×pool.
    pub fn add(&mut self, other: &StatsSnapshot) {
        for (mine, theirs) in self.codes.iter_mut().zip(other.codes) {
            *mine += theirs;
        }
        self.attempts += other.attempts;
        self.failures += other.failures;
        for (mine, theirs) in self.upstream_errors.iter_mut().zip(other.upstream_errors) {
            *mine += theirs;
        }
        self.in_flight += other.in_flight;
        self.latency.add(&other.latency);
    }
}

impl RoutePoolStats {
    fn new(route: &str, pool: &str, version: &str) -> RoutePoolStats {
        RoutePoolStats {
            route: route.into(),
            pool: pool.into(),
            version: version.into(),
            codes: Default::default(),
            attempts: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            upstream_errors: Default::default(),
            consecutive_failures: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            latency: Histogram::default(),
            window: Mutex::default(),
        }
    }

    /// Ends the current interval: its window becomes the last one, and a
    /// new interval starts now. Recorders are never stopped.
    pub fn roll_window(&self) -> Window {
        let now = self.snapshot();
        let mut window = self.window.lock().unwrap();
        let last = Window::between(&window.0, &now);
        *window = (now, Some(last.clone()));
        last
    }

    /// The last completed interval, if one was rolled.
    pub fn last_window(&self) -> Option<Window> {
        self.window.lock().unwrap().1.clone()
    }

    /// One upstream attempt ended.
    pub fn record_attempt(&self, outcome: Outcome) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        if outcome.is_failure() {
            self.failures.fetch_add(1, Ordering::Relaxed);
            self.consecutive_failures.fetch_add(1, Ordering::Relaxed);
        } else if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
            self.consecutive_failures.store(0, Ordering::Relaxed);
        }
        if let Outcome::Error(kind) = outcome {
            self.upstream_errors[kind.index()].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A request found no endpoint to try: a failure with no attempt.
    pub fn record_unavailable(&self) {
        self.attempts.fetch_add(1, Ordering::Relaxed);
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The client got its response (fully sent, or abandoned) after `elapsed`.
    pub fn record_response(&self, status: StatusCode, elapsed: Duration) {
        let class = (status.as_u16() / 100).clamp(1, 5) as usize - 1;
        self.codes[class].fetch_add(1, Ordering::Relaxed);
        self.latency.record(elapsed);
    }

    /// Failed attempts in a row since the last success.
    pub fn consecutive_failures(&self) -> u64 {
        self.consecutive_failures.load(Ordering::Relaxed)
    }

    pub fn enter(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            codes: std::array::from_fn(|i| load(&self.codes[i])),
            attempts: load(&self.attempts),
            failures: load(&self.failures),
            upstream_errors: std::array::from_fn(|i| load(&self.upstream_errors[i])),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            latency: self.latency.snapshot(),
        }
    }
}

/// Everything veer measures: every route×pool's counters (kept across
/// routing snapshots, so a weight change or reload never resets one),
/// unrouted requests, reloads, TLS. Created once by `app::start` and
/// handed explicitly to whatever records or reads it.
#[derive(Debug, Default)]
pub struct Telemetry {
    stats: Mutex<HashMap<(String, String, String), Arc<RoutePoolStats>>>,
    /// Requests that matched no route (404), which have no route×pool.
    unrouted: AtomicU64,
    /// Config reloads: [ok, error].
    reloads: [AtomicU64; 2],
    /// Failed TLS handshakes and certificate reloads.
    pub tls: super::TlsCounters,
    /// Mirrored requests and their comparisons (SPEC §12).
    pub shadow: super::ShadowRegistry,
}

impl Telemetry {
    /// The counters of `route`×`pool` (created on first use).
    pub fn stats(&self, route: &str, pool: &str, version: &str) -> Arc<RoutePoolStats> {
        let mut stats = self.stats.lock().unwrap();
        let key = (route.to_string(), pool.to_string(), version.to_string());
        stats
            .entry(key)
            .or_insert_with(|| Arc::new(RoutePoolStats::new(route, pool, version)))
            .clone()
    }

    /// Rolls every route×pool's analysis window (see
    /// [`RoutePoolStats::roll_window`]).
    pub fn roll_windows(&self) {
        for stats in self.all() {
            stats.roll_window();
        }
    }

    /// All counters, sorted by route, pool, version.
    pub fn all(&self) -> Vec<Arc<RoutePoolStats>> {
        let mut all: Vec<_> = self.stats.lock().unwrap().values().cloned().collect();
        all.sort_by(|a, b| (&a.route, &a.pool, &a.version).cmp(&(&b.route, &b.pool, &b.version)));
        all
    }

    pub fn record_unrouted(&self) {
        self.unrouted.fetch_add(1, Ordering::Relaxed);
    }

    pub fn unrouted(&self) -> u64 {
        self.unrouted.load(Ordering::Relaxed)
    }

    pub fn record_reload(&self, ok: bool) {
        self.reloads[usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
    }

    /// Config reloads so far: (ok, error).
    pub fn reloads(&self) -> (u64, u64) {
        (
            self.reloads[0].load(Ordering::Relaxed),
            self.reloads[1].load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_roll_without_resetting_counters() {
        let registry = Telemetry::default();
        let stats = registry.stats("r", "p", "v");
        for _ in 0..3 {
            stats.record_attempt(Outcome::Response { failed: false });
            stats.record_response(StatusCode::OK, Duration::from_millis(2));
        }
        stats.record_attempt(Outcome::Error(UpstreamErrorKind::Reset));
        stats.record_response(StatusCode::BAD_GATEWAY, Duration::from_millis(1));
        assert_eq!(stats.last_window(), None);
        let first = stats.roll_window();
        assert_eq!(
            (first.requests, first.failures, first.success_rate),
            (4, 1, 75.0)
        );
        stats.record_attempt(Outcome::Response { failed: false });
        stats.record_response(StatusCode::OK, Duration::from_millis(2));
        registry.roll_windows();
        let second = stats.last_window().unwrap();
        assert_eq!((second.requests, second.failures), (1, 0));
        // The cumulative counters kept counting.
        assert_eq!(stats.snapshot().attempts, 5);
    }
}
