//! Passive outlier detection, after Envoy's: an endpoint whose real
//! requests fail `consecutive_failures` times in a row (connect error,
//! reset, 5xx) leaves rotation for a back-off period that grows with each
//! ejection (`base_ejection` times the count, capped at `max_ejection`)
//! and shrinks again while it behaves.
//!
//! The request path only touches one atomic counter per response; the
//! ejection decision itself is rare and takes the pool's lock (see
//! [`super::Pool::record`]), which enforces the ejection floor.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use http::StatusCode;
use tokio::time::Instant;

use crate::config::OutlierSpec;

/// How one request to an endpoint went, as outlier detection counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Success,
    /// Connect error, reset, or a 5xx response.
    Failure,
}

impl Attempt {
    pub fn of_status(status: StatusCode) -> Attempt {
        if status.is_server_error() {
            Attempt::Failure
        } else {
            Attempt::Success
        }
    }
}

/// An endpoint's ejection history, as the back-off sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ejections {
    /// The back-off multiplier: ejections not yet forgiven.
    pub count: u32,
    /// When the latest ejection ends (or ended).
    pub until: Option<Instant>,
}

impl Ejections {
    /// The next ejection starting `now`: one `base_ejection` is forgiven
    /// per `base_ejection` spent in rotation since the last one ended.
    pub fn next(self, now: Instant, spec: &OutlierSpec) -> Ejections {
        let base = spec.base_ejection;
        let quiet = self
            .until
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        let forgiven = (quiet.as_nanos() / base.as_nanos().max(1)).min(u32::MAX as u128) as u32;
        let count = self.count.saturating_sub(forgiven).saturating_add(1);
        let length = base.saturating_mul(count).min(spec.max_ejection);
        Ejections {
            count,
            until: Some(now + length),
        }
    }
}

/// Per-endpoint outlier state.
#[derive(Debug)]
pub struct Outlier {
    /// Failures in a row.
    failures: AtomicU32,
    /// Milliseconds after `epoch` when the current ejection ends; 0 = not
    /// ejected. Read on every pick, so it is an atomic, not a lock.
    ejected_until: AtomicU64,
    epoch: Instant,
    history: Mutex<Ejections>,
}

impl Default for Outlier {
    fn default() -> Outlier {
        Outlier {
            failures: AtomicU32::new(0),
            ejected_until: AtomicU64::new(0),
            epoch: Instant::now(),
            history: Mutex::default(),
        }
    }
}

impl Outlier {
    /// Counts one attempt; true when `threshold` failures in a row were
    /// reached (the caller decides whether to eject).
    pub fn record(&self, attempt: Attempt, threshold: u32) -> bool {
        match attempt {
            Attempt::Success => {
                if self.failures.load(Ordering::Relaxed) != 0 {
                    self.failures.store(0, Ordering::Relaxed);
                }
                false
            }
            Attempt::Failure => self.failures.fetch_add(1, Ordering::Relaxed) + 1 >= threshold,
        }
    }

    /// Out of rotation now. An ejection that has run out ends here.
    pub fn is_ejected(&self) -> bool {
        let until = self.ejected_until.load(Ordering::Acquire);
        if until == 0 {
            return false;
        }
        if self.millis(Instant::now()) < until {
            return true;
        }
        if self
            .ejected_until
            .compare_exchange(until, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.failures.store(0, Ordering::Relaxed);
        }
        false
    }

    /// Ejects the endpoint; returns how long for.
    pub fn eject(&self, spec: &OutlierSpec) -> Duration {
        let now = Instant::now();
        let mut history = self.history.lock().unwrap();
        *history = history.next(now, spec);
        let until = history.until.unwrap_or(now);
        self.failures.store(0, Ordering::Relaxed);
        self.ejected_until
            .store(self.millis(until).max(1), Ordering::Release);
        until - now
    }

    fn millis(&self, at: Instant) -> u64 {
        // Rounded up so an ejection never ends early.
        let d = at.saturating_duration_since(self.epoch);
        d.as_millis() as u64 + u64::from(!d.subsec_nanos().is_multiple_of(1_000_000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> OutlierSpec {
        OutlierSpec {
            consecutive_failures: 3,
            base_ejection: Duration::from_secs(10),
            max_ejection: Duration::from_secs(25),
            max_ejected_percent: 50,
        }
    }

    #[test]
    fn failures_in_a_row_reach_the_threshold_and_success_resets() {
        let o = Outlier::default();
        assert!(!o.record(Attempt::Failure, 3));
        assert!(!o.record(Attempt::Failure, 3));
        assert!(!o.record(Attempt::Success, 3));
        assert!(!o.record(Attempt::Failure, 3));
        assert!(!o.record(Attempt::Failure, 3));
        assert!(o.record(Attempt::Failure, 3));
        assert_eq!(
            Attempt::of_status(StatusCode::BAD_GATEWAY),
            Attempt::Failure
        );
        assert_eq!(Attempt::of_status(StatusCode::NOT_FOUND), Attempt::Success);
    }

    #[tokio::test(start_paused = true)]
    async fn back_off_grows_is_capped_and_is_forgiven() {
        let s = Duration::from_secs;
        let o = Outlier::default();
        assert_eq!(o.eject(&spec()), s(10));
        assert!(o.is_ejected());
        tokio::time::advance(s(10) - Duration::from_millis(1)).await;
        assert!(o.is_ejected());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!o.is_ejected());
        // Ejected again at once: twice as long.
        assert_eq!(o.eject(&spec()), s(20));
        tokio::time::advance(s(20)).await;
        assert!(!o.is_ejected());
        // Third time: 30s, capped at 25s.
        assert_eq!(o.eject(&spec()), s(25));
        tokio::time::advance(s(25)).await;
        // 20s in rotation forgive two ejections: back to 2 x base.
        tokio::time::advance(s(20)).await;
        assert_eq!(o.eject(&spec()), s(20));
    }

    #[tokio::test(start_paused = true)]
    async fn an_ended_ejection_resets_the_failure_count() {
        let o = Outlier::default();
        for _ in 0..5 {
            o.record(Attempt::Failure, 3);
        }
        o.eject(&spec());
        o.record(Attempt::Failure, 3);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(!o.is_ejected());
        assert!(!o.record(Attempt::Failure, 3));
    }
}
