//! The controller's time: milliseconds on the runtime's monotonic clock,
//! anchored to the wall clock once at start (persisted times stay
//! meaningful across a restart; a wall-clock jump changes nothing). Under
//! `tokio::time::pause()` it is the test's paused clock.

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct Clock {
    wall_ms: u64,
    start: Instant,
}

impl Clock {
    pub fn new() -> Clock {
        let wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Clock {
            wall_ms,
            start: Instant::now(),
        }
    }

    /// Unix milliseconds, advancing with the runtime's clock.
    pub fn now_ms(&self) -> u64 {
        self.wall_ms + self.start.elapsed().as_millis() as u64
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new()
    }
}
