//! Recent events (weights changed, reloads, rollout transitions with their
//! verdicts, gates, drains), kept in one bounded ring for
//! `GET /api/v1/events`, oldest first.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::rollout::{Phase, Verdict};

/// How many events are kept; older ones are dropped.
pub const CAPACITY: usize = 256;

/// What an event is about; serialized as its kebab-case name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// Manual weights set (`PUT .../weights`).
    Weights,
    /// A rollout started (admin API or a changed `pool` in the file).
    Rollout,
    Promote,
    Abort,
    Pause,
    Resume,
    Rollback,
    /// A rollout ended without promotion or rollback: its route or its
    /// pools left the config, or a newer rollout superseded it.
    RolloutEnded,
    /// Every step the rollout controller takes (phase, weights, verdict).
    Transition,
    /// A gate webhook (pre-rollout, confirm-promotion) refused, failed or
    /// timed out.
    Gate,
    Reload,
    ReloadError,
    /// An operator override ended because the file changed the field it
    /// shadowed, or a pool it named left the config.
    OverrideDropped,
    /// State resumed from `state_dir` at start.
    Restored,
    StateError,
    Draining,
    Drained,
    CertsReloaded,
    CertReloadError,
    /// The route's mirror set or cleared (`PUT`/`DELETE .../mirror`).
    Mirror,
    /// A rollout's shadow interval judged: its diff summary.
    Shadow,
    /// `verify_window` after a rollback: stable is back to normal.
    Recovered,
    /// `verify_window` after a rollback: stable still fails.
    StillFailing,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Weights => "weights",
            EventKind::Rollout => "rollout",
            EventKind::Promote => "promote",
            EventKind::Abort => "abort",
            EventKind::Pause => "pause",
            EventKind::Resume => "resume",
            EventKind::Rollback => "rollback",
            EventKind::RolloutEnded => "rollout-ended",
            EventKind::Transition => "transition",
            EventKind::Gate => "gate",
            EventKind::Reload => "reload",
            EventKind::ReloadError => "reload-error",
            EventKind::OverrideDropped => "override-dropped",
            EventKind::Restored => "restored",
            EventKind::StateError => "state-error",
            EventKind::Draining => "draining",
            EventKind::Drained => "drained",
            EventKind::CertsReloaded => "certs-reloaded",
            EventKind::CertReloadError => "cert-reload-error",
            EventKind::Mirror => "mirror",
            EventKind::Shadow => "shadow",
            EventKind::Recovered => "recovered",
            EventKind::StillFailing => "still-failing",
        }
    }
}

impl From<crate::rollout::Command> for EventKind {
    fn from(command: crate::rollout::Command) -> EventKind {
        use crate::rollout::Command;
        match command {
            Command::Promote => EventKind::Promote,
            Command::Abort => EventKind::Abort,
            Command::Pause => EventKind::Pause,
            Command::Resume => EventKind::Resume,
            Command::Rollback => EventKind::Rollback,
        }
    }
}

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Increases by one per event, so a client can tell what it missed.
    pub seq: u64,
    /// Unix milliseconds.
    pub at: u64,
    pub kind: EventKind,
    pub route: Option<String>,
    pub message: String,
    /// Transitions: the rollout phase after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Transitions: percent per pool after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<(String, u32)>>,
    /// The analysis verdict (figures, thresholds, failed bounds) that
    /// caused the transition, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
}

#[derive(Debug, Default)]
pub struct Events {
    ring: Mutex<(u64, VecDeque<Event>)>,
}

impl Events {
    pub fn record(&self, kind: EventKind, route: Option<&str>, message: impl Into<String>) {
        self.push(kind, route, message.into(), None, None, None);
    }

    /// A rollout transition: its phase, weights, reason and verdict.
    pub fn transition(
        &self,
        route: &str,
        phase: Phase,
        weights: Vec<(String, u32)>,
        reason: String,
        verdict: Option<Verdict>,
    ) {
        self.push(
            EventKind::Transition,
            Some(route),
            reason,
            Some(phase),
            Some(weights),
            verdict,
        );
    }

    fn push(
        &self,
        kind: EventKind,
        route: Option<&str>,
        message: String,
        phase: Option<Phase>,
        weights: Option<Vec<(String, u32)>>,
        verdict: Option<Verdict>,
    ) {
        tracing::info!(
            kind = kind.as_str(),
            route,
            phase = phase.map(Phase::as_str),
            "{message}"
        );
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut ring = self.ring.lock().unwrap();
        ring.0 += 1;
        let event = Event {
            seq: ring.0,
            at,
            kind,
            route: route.map(str::to_string),
            message,
            phase,
            weights,
            verdict,
        };
        if ring.1.len() == CAPACITY {
            ring.1.pop_front();
        }
        ring.1.push_back(event);
    }

    /// The rollout transitions kept, newest last.
    pub fn transitions(&self) -> Vec<Event> {
        self.ring
            .lock()
            .unwrap()
            .1
            .iter()
            .filter(|e| e.kind == EventKind::Transition)
            .cloned()
            .collect()
    }

    /// Every kept event, newest last.
    pub fn recent(&self) -> Vec<Event> {
        self.ring.lock().unwrap().1.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_is_bounded_and_ordered() {
        let events = Events::default();
        for i in 0..CAPACITY + 10 {
            events.record(EventKind::Weights, Some("app"), format!("{i}"));
        }
        let recent = events.recent();
        assert_eq!(recent.len(), CAPACITY);
        assert_eq!(recent[0].seq, 11);
        assert_eq!(recent.last().unwrap().message, format!("{}", CAPACITY + 9));
    }
}
