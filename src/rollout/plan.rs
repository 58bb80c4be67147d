//! The rollout state machine shared by every strategy: the persisted
//! [`Rollout`], what can happen to it ([`Input`]), and the transitions
//! common to all strategies (operator commands, rollback, timeouts).
//!
//! Planning is pure: `(spec, rollout, input, now) -> rollout`. The
//! controller feeds inputs, persists the result and publishes the traffic
//! it asks for. Time is milliseconds since the UNIX epoch so a restart
//! resumes the remaining interval.

use serde::{Deserialize, Serialize};

use crate::config::{RolloutSpec, Strategy};

use super::analysis::{Outcome, Verdict};
use super::strategy;

/// Phases of SPEC §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Idle,
    Progressing,
    Paused,
    AwaitingPromotion,
    Promoted,
    RollingBack,
    RolledBack,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Progressing => "progressing",
            Phase::Paused => "paused",
            Phase::AwaitingPromotion => "awaiting-promotion",
            Phase::Promoted => "promoted",
            Phase::RollingBack => "rolling-back",
            Phase::RolledBack => "rolled-back",
        }
    }

    /// The rollout still moves on its own (or waits for a gate).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Phase::Progressing | Phase::Paused | Phase::AwaitingPromotion | Phase::RollingBack
        )
    }
}

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
}

/// Pool sizes a planner needs (rolling batch arithmetic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sizes {
    pub stable_endpoints: usize,
    pub candidate_endpoints: usize,
}

/// Operator commands of SPEC §6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Promote,
    Abort,
    Pause,
    Resume,
    Rollback,
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
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
        }
    }

    pub(super) fn with(mut self, phase: Phase, reason: impl Into<String>, now: u64) -> Rollout {
        self.phase = phase;
        self.reason = reason.into();
        self.since_ms = now;
        self
    }

    /// Back to stable at once, from outside the planners (a refused
    /// pre-rollout gate).
    pub fn roll_back_now(self, reason: impl Into<String>, now: u64) -> Rollout {
        self.roll_back(reason, now)
    }

    /// Back to stable: all traffic to the stable pool at once.
    pub(super) fn roll_back(mut self, reason: impl Into<String>, now: u64) -> Rollout {
        self.traffic = Traffic::default();
        self.paused_from = None;
        self.with(Phase::RollingBack, reason, now)
    }

    /// The candidate takes all traffic.
    pub(super) fn promote(mut self, reason: impl Into<String>, now: u64) -> Rollout {
        self.traffic = Traffic {
            candidate_weight: 100,
            ..Traffic::default()
        };
        self.promoted_at_ms = Some(now);
        self.with(Phase::Promoted, reason, now)
    }

    /// Counts a failed analysis; rolls back at `threshold`.
    pub(super) fn failed(mut self, spec: &RolloutSpec, verdict: &Verdict, now: u64) -> Rollout {
        self.failed_checks += 1;
        let why = verdict.reasons.join("; ");
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

    /// True when an analysis interval has elapsed since `since_ms`.
    pub fn interval_due(&self, spec: &RolloutSpec, now: u64) -> bool {
        now.saturating_sub(self.since_ms) >= spec.interval.as_millis() as u64
    }
}

/// The one entry point: what `input` does to `rollout`.
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
        (_, Input::Command(command)) => on_command(spec, sizes, r, command, now),
        (Phase::Paused, _) => r,
        (Phase::AwaitingPromotion, Input::GateOpened) => r.promote("promotion confirmed", now),
        (Phase::Progressing | Phase::AwaitingPromotion | Phase::Promoted, Input::Tripwire(n)) => {
            r.roll_back(format!("tripwire: {n} consecutive candidate failures"), now)
        }
        (Phase::Promoted, input) => strategy::after_promotion(spec, r, input, now),
        (Phase::AwaitingPromotion, _) => r,
        (Phase::Progressing, Input::Interval(v)) if v.outcome == Outcome::Inconclusive => r.hold(
            format!("inconclusive, holding: {}", v.reasons.join("; ")),
            now,
        ),
        (Phase::Progressing, Input::Interval(v)) if v.outcome == Outcome::Fail => {
            r.failed(spec, v, now)
        }
        (Phase::Progressing, input) => strategy::progress(spec, sizes, gated, r, input, now),
    }
}

fn on_command(
    spec: &RolloutSpec,
    sizes: Sizes,
    mut r: Rollout,
    command: Command,
    now: u64,
) -> Rollout {
    match command {
        Command::Pause if r.phase != Phase::Paused => {
            r.paused_from = Some(r.phase);
            r.with(Phase::Paused, "paused by operator", now)
        }
        Command::Resume if r.phase == Phase::Paused => {
            let back = r.paused_from.take().unwrap_or(Phase::Progressing);
            r.with(back, "resumed by operator", now)
        }
        Command::Promote if r.phase != Phase::Promoted => {
            let _ = (spec, sizes);
            r.promote("promoted by operator", now)
        }
        Command::Abort if r.phase != Phase::Promoted => {
            let mut r = r.roll_back("aborted by operator", now);
            r.phase = Phase::RolledBack;
            r
        }
        Command::Rollback => r.roll_back("rolled back by operator", now),
        _ => r,
    }
}
