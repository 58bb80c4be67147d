//! The controller's state on disk: one file, `STATE_DIR/control.json`,
//! with a [`Record`] per route. Written atomically (temp file, fsync,
//! rename, fsync of the directory) on every change; the copy it replaced
//! is kept as `control.json.prev`.
//!
//! Reading never loses more than it must: a file that does not parse is
//! moved aside (`control.json.corrupt-<unix seconds>`) and the previous
//! copy is read instead; a route whose rollout cannot be read keeps its
//! last known stable pool. The two files of veer 0.1 (`state.json`,
//! `rollouts.json`) are migrated on first start and kept as `.bak`.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::rollout::{Phase, Rollout};
use crate::routing::Weights;

use super::events::EventKind;
use super::record::{Basis, Record};

pub const FILE: &str = "control.json";
const PREVIOUS: &str = "control.json.prev";

/// The file's shape.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub version: u32,
    pub routes: BTreeMap<String, Record>,
}

/// What a load found, and what it had to say about it (events).
#[derive(Debug, Default)]
pub struct Loaded {
    pub routes: BTreeMap<String, Record>,
    pub notes: Vec<(EventKind, Option<String>, String)>,
}

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
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

/// Where the state lives; `None` keeps nothing (tests of the planner).
#[derive(Debug, Clone)]
pub struct Store {
    dir: Option<PathBuf>,
}

impl Store {
    pub fn new(dir: Option<PathBuf>) -> Store {
        Store { dir }
    }

    pub fn path(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(FILE))
    }

    pub fn save(&self, routes: &BTreeMap<String, Record>) -> Result<(), StoreError> {
        let Some(dir) = &self.dir else { return Ok(()) };
        let stored = Stored {
            version: 1,
            routes: routes.clone(),
        };
        let current = dir.join(FILE);
        if current.exists() {
            // Hard to lose: the last good copy stays beside the new one.
            let _ = std::fs::copy(&current, dir.join(PREVIOUS));
        }
        save_json(dir, FILE, &stored)
    }

    pub fn load(&self) -> Loaded {
        let Some(dir) = &self.dir else {
            return Loaded::default();
        };
        let mut loaded = Loaded::default();
        let mut note = |kind, text: String| loaded.notes.push((kind, None, text));
        let value = match read_value(dir, FILE) {
            Ok(Some(value)) => Some(value),
            Ok(None) => None,
            Err(e) => {
                note(EventKind::StateError, e.to_string());
                None
            }
        };
        let value = match value {
            Some(value) => Some(value),
            None => match read_value(dir, PREVIOUS) {
                Ok(Some(value)) => {
                    let msg = format!("{FILE} missing or unreadable: restored from {PREVIOUS}");
                    note(EventKind::StateError, msg);
                    Some(value)
                }
                Ok(None) => None,
                Err(e) => {
                    note(EventKind::StateError, e.to_string());
                    None
                }
            },
        };
        match value {
            Some(value) => routes(value, &mut loaded),
            None => migrate(dir, &mut loaded),
        }
        loaded
    }
}

/// Reads each route's record on its own: one unreadable route, or an
/// unreadable rollout, costs only that much.
fn routes(value: serde_json::Value, loaded: &mut Loaded) {
    let serde_json::Value::Object(mut top) = value else {
        return;
    };
    let Some(serde_json::Value::Object(routes)) = top.remove("routes") else {
        return;
    };
    for (name, value) in routes {
        match serde_json::from_value::<Record>(value.clone()) {
            Ok(record) => {
                loaded.routes.insert(name, record);
            }
            Err(e) => {
                let record = salvage(&value);
                let msg = format!(
                    "state of route {name:?} unreadable ({e}); kept its last known stable pool {:?}",
                    record.stable_pool()
                );
                loaded
                    .notes
                    .push((EventKind::StateError, Some(name.clone()), msg));
                loaded.routes.insert(name, record);
            }
        }
    }
}

/// The parts of a damaged record that still read: what the file said and
/// the last known stable pool. Rollout and overrides are dropped.
fn salvage(value: &serde_json::Value) -> Record {
    let field = |name: &str| value.get(name).cloned().unwrap_or_default();
    Record {
        basis: serde_json::from_value(field("basis")).unwrap_or_default(),
        stable: serde_json::from_value(field("stable")).unwrap_or_default(),
        previous: serde_json::from_value(field("previous")).unwrap_or_default(),
        generation: serde_json::from_value(field("generation")).unwrap_or_default(),
        ..Record::default()
    }
}

/// veer 0.1's manual state (`state.json`), the fields still meaningful.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LegacyState {
    routes: BTreeMap<String, LegacyRoute>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LegacyRoute {
    weights: Option<Weights>,
    paused: bool,
    previous: Option<String>,
    basis: Basis,
}

/// veer 0.1's rollout state (`rollouts.json`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LegacyRollouts {
    rollouts: Vec<Rollout>,
    file_pools: HashMap<String, String>,
}

/// First start after veer 0.1: both files become one, kept as `.bak`.
fn migrate(dir: &Path, loaded: &mut Loaded) {
    let mut found = Vec::new();
    let rollouts: LegacyRollouts = legacy(dir, "rollouts.json", &mut found, loaded);
    let state: LegacyState = legacy(dir, "state.json", &mut found, loaded);
    if found.is_empty() {
        return;
    }
    for mut r in rollouts.rollouts {
        let rec = loaded.routes.entry(r.route.clone()).or_default();
        rec.basis.pool = rollouts
            .file_pools
            .get(&r.route)
            .cloned()
            .unwrap_or_default();
        if r.started_ms == 0 {
            r.started_ms = r.since_ms;
        }
        rec.stable = Some(r.stable.clone());
        let active = r.phase.is_active()
            || r.phase == Phase::Promoted && r.strategy == crate::config::Strategy::BlueGreen;
        rec.rollout = Some(r);
        if !active {
            rec.retire();
        }
    }
    for (name, old) in state.routes {
        let rec = loaded.routes.entry(name).or_default();
        if !old.basis.pool.is_empty() {
            rec.basis = old.basis;
        }
        rec.manual = old.weights;
        rec.paused = old.paused && rec.rollout.is_none();
        rec.previous = rec.previous.take().or(old.previous);
        if let (Some(r), Some(_)) = (&mut rec.rollout, &rec.manual) {
            if r.phase != Phase::Paused {
                r.paused_from = Some(r.phase);
                r.phase = Phase::Paused;
            }
        }
    }
    let saved = Store::new(Some(dir.to_path_buf())).save(&loaded.routes);
    for name in &found {
        if saved.is_ok() {
            let _ = std::fs::rename(dir.join(name), dir.join(format!("{name}.bak")));
        }
    }
    let msg = match saved {
        Ok(()) => format!(
            "migrated {} to {FILE}; the old files are kept as .bak",
            found.join(" and ")
        ),
        Err(e) => format!("migrating {}: {e}", found.join(" and ")),
    };
    loaded.notes.push((EventKind::Restored, None, msg));
}

fn legacy<T: DeserializeOwned + Default>(
    dir: &Path,
    name: &'static str,
    found: &mut Vec<&'static str>,
    loaded: &mut Loaded,
) -> T {
    if !dir.join(name).exists() {
        return T::default();
    }
    found.push(name);
    load_json(dir, name).unwrap_or_else(|e| {
        found.pop();
        loaded
            .notes
            .push((EventKind::StateError, None, e.to_string()));
        T::default()
    })
}

/// `dir/name` as JSON; `None` when missing; moved aside when it is not JSON.
fn read_value(dir: &Path, name: &str) -> Result<Option<serde_json::Value>, StoreError> {
    if !dir.join(name).exists() {
        return Ok(None);
    }
    load_json::<Option<serde_json::Value>>(dir, name)
}

/// Reads `dir/name`; a missing file is the default value. A file that does
/// not parse is moved aside (`name.corrupt-<unix seconds>`) and reported.
pub fn load_json<T: DeserializeOwned + Default>(dir: &Path, name: &str) -> Result<T, StoreError> {
    let path = dir.join(name);
    let text = match std::fs::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
        Err(source) => return Err(StoreError::Io { path, source }),
    };
    serde_json::from_slice(&text).or_else(|e| {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let moved_to = dir.join(format!("{name}.corrupt-{stamp}"));
        std::fs::rename(&path, &moved_to).map_err(|source| StoreError::Io {
            path: path.clone(),
            source,
        })?;
        Err(StoreError::Corrupt {
            path,
            reason: e.to_string(),
            moved_to,
        })
    })
}

/// Writes `value` to `dir/name` atomically: temp file, fsync, rename, fsync
/// of the directory.
pub fn save_json<T: Serialize>(dir: &Path, name: &str, value: &T) -> Result<(), StoreError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Io { path, source }
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
mod tests;
