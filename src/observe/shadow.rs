//! Shadow traffic counters per route×mirror pool: compared pairs that
//! matched or differed, copies dropped (queue full) or failed, which
//! fields differed and how often, a few redacted samples, and latency
//! sums for the candidate/stable ratio. Cumulative, like the request
//! counters: an analysis interval is the difference of two snapshots.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Distinct differing fields kept per route×pool; more are counted
/// under [`OTHER_FIELDS`] (a label set that cannot grow without bound).
const MAX_FIELDS: usize = 64;
pub const OTHER_FIELDS: &str = "(other fields)";
/// Samples kept (and shown in a verdict).
pub const MAX_SAMPLES: usize = 5;

/// How one mirrored request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Compared {
    Match {
        stable: Duration,
        candidate: Duration,
    },
    /// `fields`: every differing field (`status`, `header:NAME`, a JSON
    /// path, `body`); `sample`: one redacted line describing them.
    Mismatch {
        stable: Duration,
        candidate: Duration,
        fields: Vec<String>,
        sample: String,
    },
    /// The candidate could not be asked or did not answer in time.
    Error,
}

#[derive(Debug)]
pub struct ShadowStats {
    pub route: String,
    pub pool: String,
    matched: AtomicU64,
    mismatched: AtomicU64,
    dropped: AtomicU64,
    errors: AtomicU64,
    /// Mirrored requests accepted and not finished (the queue).
    outstanding: AtomicUsize,
    /// Summed latencies of compared pairs, microseconds.
    stable_us: AtomicU64,
    candidate_us: AtomicU64,
    detail: Mutex<Detail>,
}

#[derive(Debug, Default)]
struct Detail {
    fields: BTreeMap<String, u64>,
    /// Fields the noise endpoint showed stable differing in against itself.
    noise: BTreeMap<String, u64>,
    /// (mismatch number, sample), the latest last.
    samples: VecDeque<(u64, String)>,
}

/// Cumulative figures at one instant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShadowSnapshot {
    pub matched: u64,
    pub mismatched: u64,
    pub dropped: u64,
    pub errors: u64,
    pub stable_us: u64,
    pub candidate_us: u64,
    pub fields: BTreeMap<String, u64>,
    pub noise: BTreeMap<String, u64>,
    pub samples: Vec<(u64, String)>,
}

/// A guard on one place in a route's mirror queue.
#[derive(Debug)]
pub struct Slot(Arc<ShadowStats>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Slot {
    pub fn stats(&self) -> &Arc<ShadowStats> {
        &self.0
    }
}

impl ShadowStats {
    fn new(route: &str, pool: &str) -> ShadowStats {
        ShadowStats {
            route: route.into(),
            pool: pool.into(),
            matched: AtomicU64::new(0),
            mismatched: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            outstanding: AtomicUsize::new(0),
            stable_us: AtomicU64::new(0),
            candidate_us: AtomicU64::new(0),
            detail: Mutex::default(),
        }
    }

    /// A place in the queue (at most `queue` outstanding), or `None`:
    /// the copy is dropped, and counted.
    pub fn try_enter(self: &Arc<Self>, queue: usize) -> Option<Slot> {
        let taken = self
            .outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Relaxed, |n| {
                (n < queue).then_some(n + 1)
            });
        match taken {
            Ok(_) => Some(Slot(self.clone())),
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    pub fn record(&self, result: Compared) {
        let timed = |stable: Duration, candidate: Duration| {
            self.stable_us
                .fetch_add(stable.as_micros() as u64, Ordering::Relaxed);
            self.candidate_us
                .fetch_add(candidate.as_micros() as u64, Ordering::Relaxed);
        };
        match result {
            Compared::Match { stable, candidate } => {
                timed(stable, candidate);
                self.matched.fetch_add(1, Ordering::Relaxed);
            }
            Compared::Mismatch {
                stable,
                candidate,
                fields,
                sample,
            } => {
                timed(stable, candidate);
                let mut detail = self.detail.lock().unwrap();
                let n = self.mismatched.fetch_add(1, Ordering::Relaxed) + 1;
                for field in fields {
                    bump(&mut detail.fields, field);
                }
                detail.samples.push_back((n, sample));
                if detail.samples.len() > MAX_SAMPLES {
                    detail.samples.pop_front();
                }
            }
            Compared::Error => {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Fields stable differed in against itself on one request.
    pub fn record_noise(&self, fields: &[String]) {
        let mut detail = self.detail.lock().unwrap();
        for field in fields {
            bump(&mut detail.noise, field.clone());
        }
    }

    /// Every field stable has been seen to differ in against itself.
    pub fn noise_fields(&self) -> Vec<String> {
        self.detail.lock().unwrap().noise.keys().cloned().collect()
    }

    pub fn snapshot(&self) -> ShadowSnapshot {
        let detail = self.detail.lock().unwrap();
        ShadowSnapshot {
            matched: self.matched.load(Ordering::Relaxed),
            mismatched: self.mismatched.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            stable_us: self.stable_us.load(Ordering::Relaxed),
            candidate_us: self.candidate_us.load(Ordering::Relaxed),
            fields: detail.fields.clone(),
            noise: detail.noise.clone(),
            samples: detail.samples.iter().cloned().collect(),
        }
    }
}

fn bump(map: &mut BTreeMap<String, u64>, field: String) {
    if map.len() >= MAX_FIELDS && !map.contains_key(&field) {
        *map.entry(OTHER_FIELDS.to_string()).or_default() += 1;
        return;
    }
    *map.entry(field).or_default() += 1;
}

/// One differing field and how many compared pairs it differed in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldCount {
    pub field: String,
    pub count: u64,
}

/// What the mirror showed over an interval (or since start): the diff
/// summary of status, events and verdicts. Never holds a value of a
/// header or body field: paths and value types only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShadowSummary {
    pub pool: String,
    /// Pairs compared (matched + mismatched).
    pub compared: u64,
    pub matched: u64,
    pub mismatched: u64,
    /// Percent of compared pairs that differed (0 with none compared).
    pub mismatch_rate: f64,
    pub dropped: u64,
    pub errors: u64,
    /// Mean candidate latency over mean stable latency, compared pairs.
    pub latency_ratio: Option<f64>,
    /// Differing fields, most frequent first.
    pub fields: Vec<FieldCount>,
    /// Fields left out because stable differs in them against itself.
    #[serde(default)]
    pub noise: Vec<String>,
    /// Up to 5 redacted examples, latest last.
    pub samples: Vec<String>,
}

impl ShadowSummary {
    pub fn between(pool: &str, earlier: &ShadowSnapshot, later: &ShadowSnapshot) -> ShadowSummary {
        let matched = later.matched.saturating_sub(earlier.matched);
        let mismatched = later.mismatched.saturating_sub(earlier.mismatched);
        let compared = matched + mismatched;
        let stable = later.stable_us.saturating_sub(earlier.stable_us);
        let candidate = later.candidate_us.saturating_sub(earlier.candidate_us);
        let mut fields: Vec<FieldCount> = later
            .fields
            .iter()
            .map(|(field, n)| FieldCount {
                field: field.clone(),
                count: n.saturating_sub(earlier.fields.get(field).copied().unwrap_or(0)),
            })
            .filter(|f| f.count > 0)
            .collect();
        fields.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.field.cmp(&b.field)));
        ShadowSummary {
            pool: pool.to_string(),
            compared,
            matched,
            mismatched,
            mismatch_rate: if compared == 0 {
                0.0
            } else {
                100.0 * mismatched as f64 / compared as f64
            },
            dropped: later.dropped.saturating_sub(earlier.dropped),
            errors: later.errors.saturating_sub(earlier.errors),
            latency_ratio: (stable > 0 && compared > 0).then(|| candidate as f64 / stable as f64),
            fields,
            noise: later.noise.keys().cloned().collect(),
            samples: later
                .samples
                .iter()
                .filter(|(n, _)| *n > earlier.mismatched)
                .map(|(_, s)| s.clone())
                .collect(),
        }
    }
}

impl ShadowSummary {
    /// One line for an event: counts, the differing fields, samples.
    pub fn describe(&self) -> String {
        let ratio = self
            .latency_ratio
            .map_or(String::new(), |r| format!(", latency x{r:.2}"));
        let mut out = format!(
            "shadow to {}: {} compared, {} differ ({:.2}%), {} dropped, {} errors{ratio}",
            self.pool,
            self.compared,
            self.mismatched,
            self.mismatch_rate,
            self.dropped,
            self.errors
        );
        if !self.fields.is_empty() {
            let fields: Vec<String> = self
                .fields
                .iter()
                .take(10)
                .map(|f| format!("{} x{}", f.field, f.count))
                .collect();
            out.push_str(&format!("; fields: {}", fields.join(", ")));
        }
        if !self.samples.is_empty() {
            out.push_str(&format!("; e.g. {}", self.samples.join(" | ")));
        }
        out
    }
}

/// Every route×pool's shadow counters, kept across routing snapshots.
#[derive(Debug, Default)]
pub struct ShadowRegistry {
    stats: Mutex<HashMap<(String, String), Arc<ShadowStats>>>,
}

impl ShadowRegistry {
    /// The counters of `route` mirrored to `pool` (created on first use).
    pub fn stats(&self, route: &str, pool: &str) -> Arc<ShadowStats> {
        let mut stats = self.stats.lock().unwrap();
        stats
            .entry((route.to_string(), pool.to_string()))
            .or_insert_with(|| Arc::new(ShadowStats::new(route, pool)))
            .clone()
    }

    /// All counters, sorted by route and pool.
    pub fn all(&self) -> Vec<Arc<ShadowStats>> {
        let mut all: Vec<_> = self.stats.lock().unwrap().values().cloned().collect();
        all.sort_by(|a, b| (&a.route, &a.pool).cmp(&(&b.route, &b.pool)));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_is_bounded_and_windows_subtract() {
        let registry = ShadowRegistry::default();
        let stats = registry.stats("r", "green");
        let a = stats.try_enter(2).unwrap();
        let _b = stats.try_enter(2).unwrap();
        assert!(stats.try_enter(2).is_none());
        drop(a);
        assert!(stats.try_enter(2).is_some());
        let start = stats.snapshot();
        let ms = Duration::from_millis;
        stats.record(Compared::Match {
            stable: ms(10),
            candidate: ms(20),
        });
        stats.record(Compared::Mismatch {
            stable: ms(10),
            candidate: ms(20),
            fields: vec!["$.price".into()],
            sample: "GET /x: $.price number -> string".into(),
        });
        stats.record(Compared::Error);
        let w = ShadowSummary::between("green", &start, &stats.snapshot());
        assert_eq!(
            (w.compared, w.mismatched, w.errors, w.dropped),
            (2, 1, 1, 0)
        );
        assert_eq!(w.mismatch_rate, 50.0);
        assert_eq!(w.latency_ratio, Some(2.0));
        assert_eq!(w.fields[0].field, "$.price");
        assert_eq!(w.samples.len(), 1);
        let total = ShadowSummary::between("green", &ShadowSnapshot::default(), &stats.snapshot());
        assert_eq!(total.dropped, 1);
    }
}
