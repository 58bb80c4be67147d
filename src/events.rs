//! Recent events (weights changed, reloads, rollout transitions with their
//! verdicts, drains), kept in one bounded ring for `GET /api/v1/events`,
//! oldest first. The control plane and the rollout controller both write
//! here.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::rollout::Verdict;

/// How many events are kept; older ones are dropped.
pub const CAPACITY: usize = 256;

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// Increases by one per event, so a client can tell what it missed.
    pub seq: u64,
    /// Unix milliseconds.
    pub at: u64,
    /// `weights`, `rollout`, `promote`, `abort`, `pause`, `resume`,
    /// `rollback`, `reload`, `reload-error`, `override-dropped`, `restored`,
    /// `state-error`, `drained`; `transition` for every step the rollout
    /// controller takes.
    pub kind: String,
    pub route: Option<String>,
    pub message: String,
    /// Transitions: the rollout phase after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Transitions: percent per pool after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<(String, u32)>>,
    /// The analysis verdict (figures, thresholds, failed bounds) that
    /// caused the transition, if one did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
}

/// The kind of the events the rollout controller records.
pub const TRANSITION: &str = "transition";

#[derive(Debug, Default)]
pub struct Events {
    ring: Mutex<(u64, VecDeque<Event>)>,
}

impl Events {
    pub fn record(&self, kind: &str, route: Option<&str>, message: impl Into<String>) {
        self.push(kind, route, message.into(), None, None, None);
    }

    /// A rollout transition: its phase, weights, reason and verdict.
    pub fn transition(
        &self,
        route: &str,
        phase: &str,
        weights: Vec<(String, u32)>,
        reason: String,
        verdict: Option<Verdict>,
    ) {
        self.push(
            TRANSITION,
            Some(route),
            reason,
            Some(phase.to_string()),
            Some(weights),
            verdict,
        );
    }

    fn push(
        &self,
        kind: &str,
        route: Option<&str>,
        message: String,
        phase: Option<String>,
        weights: Option<Vec<(String, u32)>>,
        verdict: Option<Verdict>,
    ) {
        tracing::info!(kind, route, phase = phase.as_deref(), "{message}");
        let at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut ring = self.ring.lock().unwrap();
        ring.0 += 1;
        let event = Event {
            seq: ring.0,
            at,
            kind: kind.to_string(),
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
            .filter(|e| e.kind == TRANSITION)
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
            events.record("weights", Some("app"), format!("{i}"));
        }
        let recent = events.recent();
        assert_eq!(recent.len(), CAPACITY);
        assert_eq!(recent[0].seq, 11);
        assert_eq!(recent.last().unwrap().message, format!("{}", CAPACITY + 9));
    }
}
