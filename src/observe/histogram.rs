//! A latency histogram for the hot path: fixed log-linear buckets of
//! atomic counters. Recording is three relaxed atomic adds, with no lock
//! and no allocation; memory is fixed (no raw samples kept between
//! scrapes).
//!
//! Values are microseconds. Below 8 µs every value has its own bucket;
//! above, each power of two is cut into 8 equal sub-buckets, so a bucket
//! is at most 1/8 = 12.5% wide relative to its lower bound.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const SUB_BITS: u32 = 3;
const SUB: u64 = 1 << SUB_BITS;
/// Largest power of two tracked: 2^36 µs ≈ 19 hours; longer is clamped.
const MAX_POW: u32 = 36;
pub const BUCKETS: usize = (SUB + (MAX_POW as u64 - SUB_BITS as u64 + 1) * SUB) as usize;

#[derive(Debug)]
pub struct Histogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }
}

/// The bucket index of a value in microseconds.
pub fn index_of(micros: u64) -> usize {
    if micros < SUB {
        return micros as usize;
    }
    let pow = (63 - micros.leading_zeros()).min(MAX_POW);
    let micros = micros.min((1 << (MAX_POW + 1)) - 1);
    let shift = pow - SUB_BITS;
    let sub = (micros >> shift) & (SUB - 1);
    (SUB + u64::from(pow - SUB_BITS) * SUB + sub) as usize
}

/// The exclusive upper bound, in microseconds, of bucket `index`.
pub fn upper_bound(index: usize) -> u64 {
    let index = index as u64;
    if index < SUB {
        return index + 1;
    }
    let pow = (index - SUB) / SUB + u64::from(SUB_BITS);
    let sub = (index - SUB) % SUB;
    (SUB + sub + 1) << (pow - u64::from(SUB_BITS))
}

impl Histogram {
    pub fn record(&self, elapsed: Duration) {
        let micros = elapsed.as_micros().min(u128::from(u64::MAX)) as u64;
        self.buckets[index_of(micros)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// A copy of the counters, taken without stopping recorders.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            buckets: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            count: self.count.load(Ordering::Relaxed),
            sum_micros: self.sum_micros.load(Ordering::Relaxed),
        }
    }
}

/// Histogram counters at one instant; subtract two to get an interval,
/// add those of several replicas to get a fleet's (fixed buckets merge by
/// adding).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HistogramSnapshot {
    pub buckets: Vec<u64>,
    pub count: u64,
    pub sum_micros: u64,
}

impl HistogramSnapshot {
    /// Adds what `other` counted.
    pub fn add(&mut self, other: &HistogramSnapshot) {
        if self.buckets.len() < other.buckets.len() {
            self.buckets.resize(other.buckets.len(), 0);
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum_micros += other.sum_micros;
    }

    /// What was recorded after `earlier`.
    pub fn since(&self, earlier: &HistogramSnapshot) -> HistogramSnapshot {
        let bucket =
            |i: usize| self.buckets[i].saturating_sub(earlier.buckets.get(i).copied().unwrap_or(0));
        HistogramSnapshot {
            buckets: (0..self.buckets.len()).map(bucket).collect(),
            count: self.count.saturating_sub(earlier.count),
            sum_micros: self.sum_micros.saturating_sub(earlier.sum_micros),
        }
    }

    /// The `q` quantile (0..=1), reported as the upper bound of the bucket
    /// that holds it: never below the truth, at most one bucket above.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total: u64 = self.buckets.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(Duration::from_micros(upper_bound(i)));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_range() {
        let mut previous_upper = 0;
        for i in 0..BUCKETS {
            let upper = upper_bound(i);
            assert!(upper > previous_upper, "bucket {i}");
            // Every value in [previous_upper, upper) lands in bucket i.
            assert_eq!(index_of(previous_upper), i);
            assert_eq!(index_of(upper - 1), i);
            if previous_upper >= SUB {
                assert!((upper - previous_upper) as f64 / previous_upper as f64 <= 0.125 + 1e-9);
            }
            previous_upper = upper;
        }
        assert_eq!(index_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_within_one_bucket_of_the_truth() {
        // A known distribution: 1..=10_000 µs, uniform.
        let h = Histogram::default();
        for us in 1..=10_000u64 {
            h.record(Duration::from_micros(us));
        }
        let snap = h.snapshot();
        for (q, truth) in [(0.5, 5_000u64), (0.95, 9_500), (0.99, 9_900)] {
            let got = snap.quantile(q).unwrap().as_micros() as u64;
            assert!(got >= truth, "q{q}: {got} < {truth}");
            assert!(
                got as f64 <= truth as f64 * 1.125 + 1.0,
                "q{q}: {got} vs {truth}"
            );
        }
        assert_eq!(snap.count, 10_000);
        assert_eq!(snap.sum_micros, 10_000 * 10_001 / 2);
    }

    #[test]
    fn interval_is_the_difference() {
        let h = Histogram::default();
        h.record(Duration::from_millis(1));
        let first = h.snapshot();
        for _ in 0..10 {
            h.record(Duration::from_millis(100));
        }
        let interval = h.snapshot().since(&first);
        assert_eq!(interval.count, 10);
        let p50 = interval.quantile(0.5).unwrap();
        assert!(p50 >= Duration::from_millis(100) && p50 <= Duration::from_micros(112_500));
        assert_eq!(HistogramSnapshot::default().quantile(0.5), None);
    }
}
