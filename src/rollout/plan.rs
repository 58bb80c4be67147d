//! The rollout state machine shared by every strategy: the persisted
//! [`Rollout`], what can happen to it ([`Input`]), and the transitions
//! common to all strategies (operator commands, rollback, timeouts).
//!
//! Planning is pure: `(spec, rollout, input, now) -> rollout`. The
//! controller feeds inputs, persists the result and publishes the traffic
//! it asks for. Time is milliseconds since the UNIX epoch, so timeouts
//! (`ready_timeout`, `max_duration`, blue-green's rollback window) carry
//! across a restart; the analysis interval clock is the controller's.

use serde::{Deserialize, Serialize};

use crate::config::{RolloutSpec, Strategy};

use super::analysis::{Outcome, Verdict};
pub use super::phase::Phase;
use super::strategy;

/// The traffic a rollout asks for now; the controller publishes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traffic {
    /// Candidate share of the route's unmatched traffic, percent.
    pub candidate_weight: u32,
    /// Requests carrying the preview header go to the candidate (blue-green).
    pub preview: bool,
    /// Requests matching the A/B `match` go to the candidate.
    pub ab_match: bool,
    /// Rolling: how many endpoints of each pool are in rotation (the
    /// first N in config order); `None` = all.
    pub stable_endpoints: Option<usize>,
    pub candidate_endpoints: Option<usize>,
}

/// One route's rollout, as persisted in `state_dir`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub route: String,
    pub strategy: Strategy,
    pub stable: String,
    pub candidate: String,
    pub phase: Phase,
    /// Where `resume` returns to.
    pub paused_from: Option<Phase>,
    /// Canary step index; rolling batch number.
    pub step: usize,
    pub traffic: Traffic,
    /// Failed analyses so far; `threshold` of them roll back.
    pub failed_checks: u32,
    /// Passing analyses so far (blue-green, A/B iterations).
    pub passes: u32,
    /// When the current interval (or wait) began.
    pub since_ms: u64,
    /// When the switch to 100% happened (blue-green rollback window).
    pub promoted_at_ms: Option<u64>,
    /// When the current readiness wait began (rolling batch, recreate):
    /// `ready_timeout` counts from here, independent of analysis intervals.
    #[serde(default)]
    pub wait_since_ms: u64,
    /// Why the last transition happened, for events and status.
    pub reason: String,
    /// Counts the rollouts of this route; answers from gates and checks
    /// carry it, so a late answer never acts on a newer rollout.
    #[serde(default)]
    pub generation: u64,
    /// Waiting for a healthy candidate endpoint before any user is sent
    /// to it (canary, blue-green preview, A/B); `ready_timeout` applies.
    #[serde(default)]
    pub waiting: bool,
    /// When the rollout began (`max_duration` counts from here).
    #[serde(default)]
    pub started_ms: u64,
    /// In the shadow stage (`[route.rollout.shadow]`): the candidate
    /// gets mirrored copies only, no user yet.
    #[serde(default)]
    pub shadow: bool,
}

/// Pool sizes a planner needs (rolling batch arithmetic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sizes {
    pub stable_endpoints: usize,
    pub candidate_endpoints: usize,
}

/// Operator commands of SPEC §6: `POST /api/v1/routes/{route}/{command}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    Promote,
    Abort,
    Pause,
    Resume,
    Rollback,
}

impl Command {
    pub const ALL: [Command; 5] = [
        Command::Promote,
        Command::Abort,
        Command::Pause,
        Command::Resume,
        Command::Rollback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Command::Promote => "promote",
            Command::Abort => "abort",
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::Rollback => "rollback",
        }
    }
}

impl std::str::FromStr for Command {
    type Err = String;

    fn from_str(s: &str) -> Result<Command, String> {
        Command::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown command {s:?}"))
    }
}

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Input<'a> {
    /// An analysis interval ended with this verdict.
    Interval(&'a Verdict),
    /// `tripwire` consecutive candidate failures: roll back now.
    Tripwire(u32),
    /// Healthy candidate endpoints now (rolling, recreate).
    Ready(usize),
    /// Time passed: timeouts and windows are checked.
    Tick,
    /// The confirm-promotion gate answered 2xx.
    GateOpened,
    Command(Command),
}

impl Rollout {
    /// A rollout of `route` from `stable` to `candidate`, before it starts.
    pub fn new(
        route: &str,
        strategy: Strategy,
        stable: &str,
        candidate: &str,
        now: u64,
    ) -> Rollout {
        Rollout {
            route: route.into(),
            strategy,
            stable: stable.into(),
            candidate: candidate.into(),
            phase: Phase::Idle,
            paused_from: None,
            step: 0,
            traffic: Traffic::default(),
            failed_checks: 0,
            passes: 0,
            since_ms: now,
            promoted_at_ms: None,
            wait_since_ms: now,
            reason: String::new(),
            generation: 0,
            waiting: false,
            started_ms: now,
            shadow: false,
        }
    }

    pub(super) fn with(mut self, phase: Phase, reason: impl Into<String>, now: u64) -> Rollout {
        self.phase = phase;
        self.reason = reason.into();
        self.since_ms = now;
        self
    }

    /// Back to stable: all traffic to the stable pool at once.
    pub(super) fn roll_back(mut self, reason: impl Into<String>, now: u64) -> Rollout {
        self.traffic = Traffic::default();
        self.paused_from = None;
        self.waiting = false;
        self.shadow = false;
        self.with(Phase::RollingBack, reason, now)
    }

    /// Ended by the operator or by the config (candidate pool gone,
    /// superseded): stable serves everything, nothing left to watch.
    pub fn aborted(self, reason: impl Into<String>, now: u64) -> Rollout {
        let mut r = self.roll_back(reason, now);
        r.phase = Phase::RolledBack;
        r
    }

    /// The candidate takes all traffic.
    pub fn promote(mut self, reason: impl Into<String>, now: u64) -> Rollout {
        self.traffic = Traffic {
            candidate_weight: 100,
            ..Traffic::default()
        };
        self.paused_from = None;
        self.waiting = false;
        self.shadow = false;
        self.promoted_at_ms = Some(now);
        self.with(Phase::Promoted, reason, now)
    }

    /// Counts a failed analysis; rolls back at `threshold`.
    pub(super) fn failed(mut self, spec: &RolloutSpec, verdict: &Verdict, now: u64) -> Rollout {
        self.failed_checks += 1;
        let why = verdict.reasons.join("; ");
        if verdict.settled_fail() {
            let confidence = spec.analysis.confidence;
            let reason = format!("sequential analysis failed at {confidence}% confidence: {why}");
            return self.roll_back(reason, now);
        }
        if self.failed_checks >= spec.threshold {
            let reason = format!(
                "{} failed analyses (threshold {}): {why}",
                self.failed_checks, spec.threshold
            );
            return self.roll_back(reason, now);
        }
        let reason = format!(
            "analysis failed ({}/{}): {why}",
            self.failed_checks, spec.threshold
        );
        let phase = self.phase;
        self.with(phase, reason, now)
    }

    /// Holds the current step for another interval.
    pub(super) fn hold(self, reason: impl Into<String>, now: u64) -> Rollout {
        let phase = self.phase;
        self.with(phase, reason, now)
    }

    /// `on_timeout = "hold"`: paused where it is for an operator; a
    /// resume gives it another `max_duration` from now.
    fn hold_at_timeout(mut self, max: std::time::Duration, now: u64) -> Rollout {
        self.paused_from = Some(self.phase);
        self.started_ms = now;
        let reason = format!(
            "not promoted within max_duration {}; holding (on_timeout = hold): resume, promote or roll back",
            humantime::format_duration(max)
        );
        self.with(Phase::Paused, reason, now)
    }

    /// Promotion, or a wait at the confirm-promotion gate first.
    pub(super) fn ready_to_promote(self, gated: bool, reason: &str, now: u64) -> Rollout {
        if gated {
            self.with(
                Phase::AwaitingPromotion,
                format!("{reason}; awaiting promotion"),
                now,
            )
        } else {
            self.promote(reason.to_string(), now)
        }
    }

    /// True when `ready_timeout` has passed since the readiness wait began.
    pub(super) fn ready_timed_out(&self, spec: &RolloutSpec, now: u64) -> bool {
        now.saturating_sub(self.wait_since_ms) >= spec.ready_timeout.as_millis() as u64
    }

    /// True when `max_duration` has passed since the rollout began.
    pub(super) fn out_of_time(&self, spec: &RolloutSpec, now: u64) -> bool {
        spec.max_duration
            .is_some_and(|max| now.saturating_sub(self.started_ms) >= max.as_millis() as u64)
    }

    /// Candidate traffic is live: what analysis and the tripwire judge.
    pub fn judged(&self) -> bool {
        !self.waiting
            && matches!(
                self.phase,
                Phase::Progressing | Phase::Paused | Phase::AwaitingPromotion | Phase::Promoted
            )
    }
}

/// The one entry point: what `input` does to `rollout`.
///
/// Safety never sleeps: the tripwire and failed analyses act in every
/// phase where the candidate serves users, paused and gated included.
pub fn plan(
    spec: &RolloutSpec,
    sizes: Sizes,
    gated: bool,
    rollout: &Rollout,
    input: Input<'_>,
    now: u64,
) -> Rollout {
    let r = rollout.clone();
    match (r.phase, input) {
        (Phase::Idle, _) => strategy::start(spec, sizes, r, now),
        (Phase::RolledBack, _) => r,
        (Phase::RollingBack, Input::Tick) => {
            let reason = format!("rolled back, stable serves all traffic ({})", r.reason);
            r.with(Phase::RolledBack, reason, now)
        }
        (Phase::RollingBack, _) => r,
        (_, Input::Command(command)) => on_command(r, command, now),
        (_, Input::Tripwire(n)) if r.judged() => {
            r.roll_back(format!("tripwire: {n} consecutive candidate failures"), now)
        }
        (Phase::Promoted, input) => strategy::after_promotion(spec, r, input, now),
        (_, Input::Interval(v)) if v.outcome == Outcome::Fail && r.judged() => {
            r.failed(spec, v, now)
        }
        (Phase::Progressing | Phase::AwaitingPromotion, Input::Tick)
            if r.out_of_time(spec, now) =>
        {
            let max = spec.max_duration.unwrap_or_default();
            if spec.on_timeout == crate::config::OnTimeout::Hold {
                return r.hold_at_timeout(max, now);
            }
            r.roll_back(
                format!(
                    "not promoted within max_duration {}",
                    humantime::format_duration(max)
                ),
                now,
            )
        }
        (Phase::AwaitingPromotion, Input::GateOpened) => r.promote("promotion confirmed", now),
        (Phase::Paused | Phase::AwaitingPromotion, _) => r,
        (Phase::Progressing, _) if r.waiting => strategy::ready_wait(spec, sizes, r, input, now),
        (Phase::Progressing, Input::Interval(v)) if v.outcome == Outcome::Inconclusive => r.hold(
            format!("inconclusive, holding: {}", v.reasons.join("; ")),
            now,
        ),
        (Phase::Progressing, _) if r.shadow && spec.shadow.is_none() => {
            super::shadow::removed(spec, r, now)
        }
        (Phase::Progressing, Input::Interval(v)) if r.shadow => {
            super::shadow::passed(spec, v, r, now)
        }
        (Phase::Progressing, _) if r.shadow => r,
        (Phase::Progressing, input) => strategy::progress(spec, sizes, gated, r, input, now),
    }
}

/// An operator command on an active rollout. The controller refuses
/// commands that do not apply (409) before calling this.
fn on_command(r: Rollout, command: Command, now: u64) -> Rollout {
    r.command(command, now)
}

impl Rollout {
    /// What an operator command does to this rollout.
    pub fn command(mut self, command: Command, now: u64) -> Rollout {
        match command {
            Command::Pause if self.phase != Phase::Paused => {
                self.paused_from = Some(self.phase);
                self.with(Phase::Paused, "paused by operator", now)
            }
            Command::Resume if self.phase == Phase::Paused => {
                let back = self.paused_from.take().unwrap_or(Phase::Progressing);
                self.with(back, "resumed by operator", now)
            }
            Command::Promote if self.phase != Phase::Promoted => {
                self.promote("promoted by operator", now)
            }
            Command::Abort if self.phase != Phase::Promoted => {
                self.aborted("aborted by operator", now)
            }
            Command::Rollback => self.roll_back("rolled back by operator", now),
            _ => self,
        }
    }
}
