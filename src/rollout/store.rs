//! Rollout state on disk: written atomically (temp file, fsync, rename,
//! fsync of the directory) on every change, read at start so a restart
//! resumes the same step, weights and remaining interval.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::plan::Rollout;

pub const FILE: &str = "rollouts.json";

/// What is persisted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    /// The latest rollout of each route (active or finished).
    pub rollouts: Vec<Rollout>,
    /// `route.pool` as the config file said when this was written, so a
    /// file edited while veer was down still triggers a rollout.
    pub file_pools: HashMap<String, String>,
}

/// Rollout state errors are the state directory's errors.
pub type StoreError = crate::state::StateError;

/// Reads the saved state; a missing file is an empty state. A corrupt file
/// is moved aside (never silently ignored) and reported.
pub fn load(dir: &Path) -> Result<Saved, StoreError> {
    crate::state::load_json(dir, FILE)
}

/// Writes the state atomically.
pub fn save(dir: &Path, saved: &Saved) -> Result<(), StoreError> {
    crate::state::save_json(dir, FILE, saved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Strategy;

    fn dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("veer-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn round_trip_and_missing() {
        let d = dir("rt");
        assert_eq!(load(&d).unwrap(), Saved::default());
        let saved = Saved {
            rollouts: vec![Rollout::new("app", Strategy::Canary, "blue", "green", 7)],
            file_pools: [("app".to_string(), "green".to_string())].into(),
        };
        save(&d, &saved).unwrap();
        assert_eq!(load(&d).unwrap(), saved);
    }

    #[test]
    fn corrupt_file_is_moved_aside_and_reported() {
        let d = dir("corrupt");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(FILE), b"{ not json").unwrap();
        let err = load(&d).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(!d.join(FILE).exists());
        let moved = std::fs::read_dir(&d)
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().contains(".corrupt-"));
        assert!(moved);
    }
}
