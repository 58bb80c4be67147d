//! What to do with each DNS outcome, as a pure state machine: apply an
//! answer, keep the last good set through failures (with back-off), and
//! empty the pool only once empty answers have lasted `hold_empty`.
//! Time comes in as an argument, so the rules are tested without sleeps.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::{DnsSpec, Endpoint};

/// Endpoints with their weights, as DNS gave them.
pub type Answer = Vec<(Endpoint, u32)>;

/// One round of asking DNS.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Records, and the TTL they are valid for.
    Records(Answer, Duration),
    /// NXDOMAIN, or no records of the type asked: the name has nothing.
    Empty(String),
    /// SERVFAIL, refused, timeout, no server reachable: DNS is unwell,
    /// which says nothing about the endpoints.
    Failed(String),
}

/// What the caller does after an outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// A new set for the pool (`Some(vec![])` empties it).
    pub apply: Option<Answer>,
    /// Ask again after this long.
    pub next: Duration,
    /// What went wrong, for status; `None` after a good answer.
    pub error: Option<String>,
}

/// Where a pool's discovery stands between rounds.
#[derive(Debug)]
pub struct Hold {
    spec: DnsSpec,
    /// Failures in a row (for back-off).
    failures: u32,
    /// Since when every answer was empty.
    empty_since: Option<Instant>,
    /// The set applied now (empty at start).
    applied: Answer,
}

impl Hold {
    pub fn new(spec: DnsSpec) -> Hold {
        Hold {
            spec,
            failures: 0,
            empty_since: None,
            applied: Vec::new(),
        }
    }

    /// Starts from `applied`, the set DNS gave the pool before (a
    /// discovery restarted by a reload), so an empty answer holds it too.
    pub fn resume(spec: DnsSpec, applied: Answer) -> Hold {
        Hold {
            applied,
            ..Hold::new(spec)
        }
    }

    /// Decides on `outcome` seen at `now`; `jitter` in `[0, 1)` spreads
    /// the next round over 10% more of its delay.
    pub fn observe(&mut self, outcome: Outcome, now: Instant, jitter: f64) -> Step {
        let spread = |d: Duration| d + d.mul_f64(jitter.clamp(0.0, 1.0) * 0.1);
        let clamp = |ttl: Duration| ttl.clamp(self.spec.min_ttl, self.spec.max_ttl);
        match outcome {
            Outcome::Records(answer, ttl) if !answer.is_empty() => {
                self.failures = 0;
                self.empty_since = None;
                let apply = (answer != self.applied).then(|| answer.clone());
                self.applied = answer;
                Step {
                    apply,
                    next: spread(clamp(ttl)),
                    error: None,
                }
            }
            Outcome::Records(_, _) => self.empty("no records".into(), now, spread),
            Outcome::Empty(why) => self.empty(why, now, spread),
            Outcome::Failed(why) => {
                self.failures = self.failures.saturating_add(1);
                let backoff = self
                    .spec
                    .min_ttl
                    .saturating_mul(1 << (self.failures - 1).min(16));
                Step {
                    apply: None,
                    next: spread(backoff.min(self.spec.max_ttl)),
                    error: Some(why),
                }
            }
        }
    }

    fn empty(&mut self, why: String, now: Instant, spread: impl Fn(Duration) -> Duration) -> Step {
        self.failures = 0;
        let since = *self.empty_since.get_or_insert(now);
        let held = now.saturating_duration_since(since);
        if self.applied.is_empty() || held >= self.spec.hold_empty {
            let apply = (!self.applied.is_empty()).then(Vec::new);
            self.applied.clear();
            return Step {
                apply,
                next: spread(self.spec.min_ttl),
                error: Some(why),
            };
        }
        // Asked again at the latest when the hold ends, to act on time.
        let left = self.spec.hold_empty - held;
        let error = format!(
            "{why}; keeping the last {} endpoint(s) for {left:.1?} more (hold_empty)",
            self.applied.len()
        );
        Step {
            apply: None,
            next: spread(self.spec.min_ttl).min(left),
            error: Some(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DnsQuery;

    fn spec() -> DnsSpec {
        DnsSpec {
            query: DnsQuery::Host {
                name: "app".into(),
                port: 80,
            },
            min_ttl: Duration::from_secs(1),
            max_ttl: Duration::from_secs(60),
            hold_empty: Duration::from_secs(30),
        }
    }

    fn answer(ips: &[&str]) -> Answer {
        let endpoint = |ip: &str| crate::config::Endpoint {
            authority: format!("{ip}:80"),
            host: ip.into(),
            port: 80,
            tls: false,
        };
        ips.iter().map(|ip| (endpoint(ip), 1)).collect()
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn answers_apply_when_changed_and_ttl_is_clamped() {
        let (mut hold, t0) = (Hold::new(spec()), Instant::now());
        let a = answer(&["10.0.0.1"]);
        let step = hold.observe(Outcome::Records(a.clone(), secs(0)), t0, 0.0);
        assert_eq!((step.apply, step.next), (Some(a.clone()), secs(1)));
        let step = hold.observe(Outcome::Records(a.clone(), secs(600)), t0, 0.0);
        assert_eq!((step.apply, step.next), (None, secs(60)));
        let step = hold.observe(Outcome::Records(a, secs(10)), t0, 0.5);
        assert_eq!(step.next, Duration::from_millis(10_500));
    }

    #[test]
    fn failures_keep_the_set_and_back_off() {
        let (mut hold, t0) = (Hold::new(spec()), Instant::now());
        hold.observe(Outcome::Records(answer(&["10.0.0.1"]), secs(5)), t0, 0.0);
        let nexts: Vec<Duration> = (0..8)
            .map(|_| {
                let step = hold.observe(Outcome::Failed("SERVFAIL".into()), t0, 0.0);
                assert_eq!(step.apply, None);
                step.next
            })
            .collect();
        let want = [1, 2, 4, 8, 16, 32, 60, 60].map(secs);
        assert_eq!(nexts, want);
        let step = hold.observe(Outcome::Records(answer(&["10.0.0.1"]), secs(5)), t0, 0.0);
        assert_eq!((step.apply, step.next, step.error), (None, secs(5), None));
    }

    #[test]
    fn empty_answers_empty_the_pool_only_after_hold_empty() {
        let (mut hold, t0) = (Hold::new(spec()), Instant::now());
        hold.observe(Outcome::Records(answer(&["10.0.0.1"]), secs(5)), t0, 0.0);
        let step = hold.observe(Outcome::Empty("NXDOMAIN".into()), t0, 0.0);
        assert_eq!(step.apply, None);
        let step = hold.observe(Outcome::Empty("NXDOMAIN".into()), t0 + secs(29), 0.0);
        assert_eq!((step.apply, step.next), (None, secs(1)));
        // A failure in between does not restart the hold; records do.
        hold.observe(Outcome::Failed("timeout".into()), t0 + secs(29), 0.0);
        let step = hold.observe(Outcome::Empty("NXDOMAIN".into()), t0 + secs(30), 0.0);
        assert_eq!(step.apply, Some(vec![]));
        let step = hold.observe(Outcome::Records(answer(&["10.0.0.2"]), secs(5)), t0, 0.0);
        assert_eq!(step.apply, Some(answer(&["10.0.0.2"])));
        let step = hold.observe(Outcome::Empty("NXDOMAIN".into()), t0 + secs(31), 0.0);
        assert_eq!(step.apply, None, "the hold starts again");
    }

    #[test]
    fn a_restarted_discovery_holds_what_it_had() {
        let t0 = Instant::now();
        let mut hold = Hold::resume(spec(), answer(&["10.0.0.1"]));
        let step = hold.observe(Outcome::Empty("NXDOMAIN".into()), t0, 0.0);
        assert_eq!(step.apply, None);
        let step = hold.observe(Outcome::Empty("NXDOMAIN".into()), t0 + secs(30), 0.0);
        assert_eq!(step.apply, Some(vec![]));
    }

    #[test]
    fn nothing_to_hold_at_start() {
        let (mut hold, t0) = (Hold::new(spec()), Instant::now());
        let step = hold.observe(Outcome::Empty("NXDOMAIN".into()), t0, 0.0);
        assert_eq!(step.apply, None);
        assert!(step.error.unwrap().contains("NXDOMAIN"));
    }
}
