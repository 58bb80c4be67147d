//! Rollout state on disk: written atomically (temp file, fsync, rename,
//! fsync of the directory) on every change, read at start so a restart
//! resumes the same step, weights and remaining interval.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

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

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: corrupt rollout state ({source}); moved aside to {moved}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
        moved: PathBuf,
    },
}

/// Reads the saved state; a missing file is an empty state. A corrupt file
/// is moved aside (never silently ignored) and reported.
pub fn load(dir: &Path) -> Result<Saved, StoreError> {
    let path = dir.join(FILE);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Saved::default()),
        Err(source) => return Err(StoreError::Io { path, source }),
    };
    serde_json::from_slice(&text).map_err(|source| {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let moved = dir.join(format!("{FILE}.corrupt-{stamp}"));
        let _ = std::fs::rename(&path, &moved);
        StoreError::Corrupt {
            path: path.clone(),
            source,
            moved,
        }
    })
}

/// Writes the state atomically.
pub fn save(dir: &Path, saved: &Saved) -> Result<(), StoreError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(FILE);
    let tmp = dir.join(format!(".{FILE}.tmp"));
    let text = serde_json::to_vec_pretty(saved).expect("rollout state serialises");
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(&text).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Strategy;

    fn dir(name: &str) -> PathBuf {
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
