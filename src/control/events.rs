//! Recent control-plane events (weights changed, reloads, rollouts), kept
//! in a bounded ring for `GET /api/v1/events`, oldest first.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// How many events are kept; older ones are dropped.
pub const CAPACITY: usize = 256;

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Increases by one per event, so a client can tell what it missed.
    pub seq: u64,
    /// Unix milliseconds.
    pub at: u64,
    /// `weights`, `rollout`, `promote`, `abort`, `pause`, `resume`,
    /// `rollback`, `reload`, `reload-error`, `override-dropped`, `restored`,
    /// `state-error`.
    pub kind: String,
    pub route: Option<String>,
    pub message: String,
}

#[derive(Debug, Default)]
pub struct Events {
    ring: Mutex<(u64, VecDeque<Event>)>,
}

impl Events {
    pub fn record(&self, kind: &str, route: Option<&str>, message: impl Into<String>) {
        let message = message.into();
        tracing::info!(kind, route, "{message}");
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
        };
        if ring.1.len() == CAPACITY {
            ring.1.pop_front();
        }
        ring.1.push_back(event);
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
