//! What a pool is made of before it has run-time state: each endpoint,
//! where it came from (file, DNS, admin API), its weight and whether it is
//! in maintenance; and the weighted pick over the endpoints in rotation.

use serde::{Deserialize, Serialize};

use crate::config::Endpoint;

/// Where an endpoint of a pool comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The pool's `endpoints` in the config file.
    File,
    /// The pool's `dns` or `srv` answer.
    Dns,
    /// Registered through the admin API (`POST .../endpoints`).
    Api,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::File => "file",
            Source::Dns => "dns",
            Source::Api => "api",
        }
    }
}

/// One endpoint a pool should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub endpoint: Endpoint,
    pub placement: Placement,
    /// Kept out of rotation (and drained) without being removed.
    pub maintenance: bool,
}

/// Where an endpoint came from and the share of requests it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub source: Source,
    /// Relative to the pool's other endpoints (1 unless written).
    pub weight: u32,
}

/// Running sums of the weights of the endpoints in rotation: endpoint
/// `i` owns the slots `[sums[i-1], sums[i])`.
#[derive(Debug, Default)]
pub(super) struct Shares {
    sums: Vec<u64>,
}

impl Shares {
    pub(super) fn new(weights: impl Iterator<Item = u32>) -> Shares {
        let mut total = 0u64;
        let sums = weights
            .map(|w| {
                total += u64::from(w.max(1));
                total
            })
            .collect();
        Shares { sums }
    }

    /// Slots taken by the first `n` endpoints.
    pub(super) fn total(&self, n: usize) -> u64 {
        n.checked_sub(1).map_or(0, |last| self.sums[last])
    }

    /// The endpoint owning `slot` (below `total(n)`).
    pub(super) fn owner(&self, slot: u64) -> usize {
        self.sums.partition_point(|&sum| sum <= slot)
    }

    /// The weight of endpoint `i`.
    pub(super) fn weight(&self, i: usize) -> u64 {
        self.sums[i] - i.checked_sub(1).map_or(0, |p| self.sums[p])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_weights() {
        let shares = Shares::new([1, 3, 2].into_iter());
        assert_eq!(shares.total(3), 6);
        assert_eq!(shares.total(2), 4);
        assert_eq!(shares.total(0), 0);
        let owners: Vec<usize> = (0..6).map(|s| shares.owner(s)).collect();
        assert_eq!(owners, [0, 1, 1, 1, 2, 2]);
        assert_eq!((shares.weight(0), shares.weight(1)), (1, 3));
    }
}
