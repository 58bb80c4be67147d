//! Weighted split of a route's traffic over its pools, and sticky buckets.
//!
//! Traffic is cut into 10,000 buckets. Pools take consecutive bucket
//! ranges: candidates first from bucket 0, the stable pool last. A sticky
//! user hashes to a fixed bucket, so raising a candidate's weight only ever
//! moves users from stable to the candidate, never back (monotone).

use rand::Rng;

use super::Target;

pub const BUCKETS: u32 = 10_000;

#[derive(Debug, Clone)]
pub struct Split {
    /// Pools with a non-zero weight and the end (exclusive) of their bucket
    /// range; the last end is `BUCKETS`.
    ranges: Vec<(Target, u32)>,
}

impl Split {
    /// `weights` in percent, ordered candidates first and stable last; they
    /// sum to 100 (validated before).
    pub fn new(weights: &[(Target, u32)]) -> Split {
        let mut end = 0;
        let mut ranges = Vec::with_capacity(weights.len());
        for (pool, percent) in weights {
            if *percent == 0 {
                continue;
            }
            end += percent * (BUCKETS / 100);
            ranges.push((pool.clone(), end.min(BUCKETS)));
        }
        if let Some(last) = ranges.last_mut() {
            last.1 = BUCKETS;
        }
        Split { ranges }
    }

    /// The pool owning `bucket` (0..BUCKETS).
    pub fn pick_bucket(&self, bucket: u32) -> Option<&Target> {
        match self.ranges.as_slice() {
            [] => None,
            [(only, _)] => Some(only),
            ranges => ranges.iter().find(|(_, end)| bucket < *end).map(|(p, _)| p),
        }
    }

    /// The targets with a non-zero share.
    pub fn targets(&self) -> impl Iterator<Item = &Target> {
        self.ranges.iter().map(|(t, _)| t)
    }

    /// An independent draw, for requests without a sticky key.
    pub fn pick_random(&self) -> Option<&Target> {
        match self.ranges.as_slice() {
            [] => None,
            [(only, _)] => Some(only),
            _ => self.pick_bucket(rand::rng().random_range(0..BUCKETS)),
        }
    }
}

/// The sticky bucket of a user key: stable across processes and restarts
/// (FNV-1a, then a splitmix64 finaliser to spread short keys).
pub fn bucket_of(key: &[u8]) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    (h % u64::from(BUCKETS)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Balance, Endpoint, PoolSpec};
    use crate::observe::Telemetry;
    use crate::upstream::Pool;
    use std::sync::Arc;
    use std::time::Duration;

    fn pool(name: &str) -> Target {
        let spec = PoolSpec {
            name: name.into(),
            version: None,
            endpoints: vec![Endpoint {
                authority: "127.0.0.1:1".into(),
                host: "127.0.0.1".into(),
                port: 1,
                tls: false,
            }],
            weights: vec![1],
            dns: None,
            balance: Balance::RoundRobin,
            connect_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            health: None,
            outlier: None,
            tls: Default::default(),
        };
        let stats = Telemetry::default().stats("r", name, "");
        Target {
            pool: Arc::new(Pool::new(
                &spec,
                &crate::routing::members::merge(&spec, None),
                |_| None,
            )),
            stats,
            limit: usize::MAX,
        }
    }

    #[test]
    fn buckets_are_monotone_as_candidate_grows() {
        let (green, blue) = (pool("green"), pool("blue"));
        let users: Vec<u32> = (0..5000)
            .map(|i| bucket_of(format!("user-{i}").as_bytes()))
            .collect();
        let mut previous: Vec<bool> = vec![false; users.len()];
        for w in [0, 5, 10, 25, 50, 75, 100] {
            let split = Split::new(&[(green.clone(), w), (blue.clone(), 100 - w)]);
            let now: Vec<bool> = users
                .iter()
                .map(|&b| split.pick_bucket(b).unwrap().pool.name == "green")
                .collect();
            for (before, after) in previous.iter().zip(&now) {
                assert!(
                    !before || *after,
                    "a user left the candidate when its weight grew to {w}"
                );
            }
            let share = now.iter().filter(|&&g| g).count() as f64 / users.len() as f64;
            assert!(
                (share - w as f64 / 100.0).abs() < 0.03,
                "weight {w}: share {share}"
            );
            previous = now;
        }
    }

    #[test]
    fn zero_weights_are_skipped() {
        let (green, blue) = (pool("green"), pool("blue"));
        let split = Split::new(&[(green, 0), (blue, 100)]);
        for b in [0, 1, 9_999] {
            assert_eq!(split.pick_bucket(b).unwrap().pool.name, "blue");
        }
    }
}
