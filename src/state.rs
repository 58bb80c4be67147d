//! Runtime state that must survive a restart: manual weights, admin-started
//! rollouts, rollout phase and step, per route.
//!
//! Stored as `state.json` in `proxy.state_dir`, written atomically (temp
//! file, fsync, rename, fsync of the directory) on every change, and read
//! at start. A file that cannot be parsed is moved aside
//! (`state.json.corrupt-<unix seconds>`) and reported, never ignored.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Everything persisted, per route name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeState {
    pub routes: BTreeMap<String, RouteState>,
}

/// One route's run-time state. Fields the rollout controller will drive
/// (`phase`, `step`, `failed_checks`, `candidate`) are kept here already so
/// that a restart resumes where it was.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RouteState {
    /// The weights set at run time, overriding the file's; `None` = the
    /// file's weights apply.
    pub weights: Option<SavedWeights>,
    /// `idle`, `progressing`, `paused`, `awaiting-promotion`, `promoted`,
    /// `rolling-back`, `rolled-back` (SPEC §3).
    pub phase: String,
    /// Manually paused (by `PUT .../weights` or `pause`) until `resume`,
    /// `promote` or `abort`.
    pub paused: bool,
    /// The pool the route served before the last admin-started rollout.
    pub previous: Option<String>,
    pub candidate: Option<String>,
    /// Index into the strategy's steps, when a rollout is walking them.
    pub step: Option<usize>,
    pub failed_checks: u32,
    /// The last `rollout` asked for through the admin API.
    pub rollout: Option<RolloutRequest>,
    /// What the config file said (`pool`, `weights`) when this override was
    /// made: an override holds until the file changes that same field.
    pub basis: Basis,
}

/// A route's split as persisted: the stable pool and percent per pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedWeights {
    pub stable: String,
    pub percent: Vec<(String, u32)>,
}

/// `POST .../rollout` as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutRequest {
    pub pool: String,
    pub strategy: Option<String>,
    /// Unix milliseconds.
    pub at: u64,
}

/// The file's values for the fields an override shadows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Basis {
    pub pool: String,
    pub weights: Option<Vec<(String, u32)>>,
}

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: corrupt state file ({reason}); moved aside to {}", path.display(), moved_to.display())]
    Corrupt {
        path: PathBuf,
        reason: String,
        moved_to: PathBuf,
    },
}

/// Where the state lives on disk.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
}

impl StateStore {
    pub fn new(dir: impl Into<PathBuf>) -> StateStore {
        StateStore { dir: dir.into() }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// Reads the saved state; a missing file is an empty state. A corrupt
    /// one is renamed aside and reported as [`StateError::Corrupt`].
    pub fn load(&self) -> Result<RuntimeState, StateError> {
        load_json(&self.dir, "state.json")
    }

    /// Writes `state` atomically: a reader (or a crash) sees the old file
    /// or the new one, never a mix.
    pub fn save(&self, state: &RuntimeState) -> Result<(), StateError> {
        save_json(&self.dir, "state.json", state)
    }
}

/// Reads `dir/name`; a missing file is the default value. A file that does
/// not parse is moved aside (`name.corrupt-<unix seconds>`) and reported.
pub fn load_json<T: DeserializeOwned + Default>(dir: &Path, name: &str) -> Result<T, StateError> {
    let path = dir.join(name);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
        Err(source) => return Err(StateError::Io { path, source }),
    };
    serde_json::from_slice(&text).or_else(|e| {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let moved_to = dir.join(format!("{name}.corrupt-{stamp}"));
        std::fs::rename(&path, &moved_to).map_err(|source| StateError::Io {
            path: path.clone(),
            source,
        })?;
        Err(StateError::Corrupt {
            path,
            reason: e.to_string(),
            moved_to,
        })
    })
}

/// Writes `value` to `dir/name` atomically: temp file, fsync, rename, fsync
/// of the directory.
pub fn save_json<T: Serialize>(dir: &Path, name: &str, value: &T) -> Result<(), StateError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StateError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let text = serde_json::to_vec_pretty(value).expect("state serialises");
    let mut file = std::fs::File::create(&tmp).map_err(io(&tmp))?;
    file.write_all(&text).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    let path = dir.join(name);
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("veer-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn round_trips_and_missing_is_empty() {
        let store = StateStore::new(temp_dir("round"));
        assert_eq!(store.load().unwrap(), RuntimeState::default());
        let mut state = RuntimeState::default();
        state.routes.insert(
            "app".into(),
            RouteState {
                weights: Some(SavedWeights {
                    stable: "blue".into(),
                    percent: vec![("green".into(), 70), ("blue".into(), 30)],
                }),
                phase: "paused".into(),
                paused: true,
                step: Some(2),
                ..RouteState::default()
            },
        );
        store.save(&state).unwrap();
        assert_eq!(store.load().unwrap(), state);
    }

    #[test]
    fn corrupt_file_is_moved_aside() {
        let dir = temp_dir("corrupt");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("state.json"), "{not json").unwrap();
        let store = StateStore::new(&dir);
        let err = store.load().unwrap_err();
        let StateError::Corrupt { moved_to, .. } = &err else {
            panic!("{err}");
        };
        assert!(moved_to.exists());
        assert!(!store.path().exists());
        assert!(err.to_string().contains("corrupt"));
        assert_eq!(store.load().unwrap(), RuntimeState::default());
    }
}
