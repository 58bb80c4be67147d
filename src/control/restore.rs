//! Restored state is input like any other: each route's record is checked
//! as the API checks a request (weights known pools, 0..=100, summing to
//! 100; a rollout's weight 0..=100 between two named pools). What fails is
//! dropped (the route keeps its last known stable pool), reported as a
//! `state-error` event, and the file is moved aside
//! (`control.json.invalid-<unix seconds>`) for a human to look at.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::Config;

use super::commands::{check_weights, known_pool};
use super::events::EventKind;
use super::record::Record;
use super::store::{Loaded, FILE};

/// Checks every restored record against `config`; `dir` is the state
/// directory (the file is moved aside there when anything was invalid).
pub fn validate(loaded: &mut Loaded, config: &Config, dir: Option<&Path>) {
    let mut invalid = Vec::new();
    for (name, rec) in &mut loaded.routes {
        if let Some(reason) = check(rec, config) {
            rec.manual = None;
            rec.rollout = None;
            rec.paused = false;
            if rec
                .stable
                .as_deref()
                .is_some_and(|p| known_pool(config, p).is_err())
            {
                rec.stable = None;
            }
            invalid.push((name.clone(), reason));
        }
    }
    if invalid.is_empty() {
        return;
    }
    let moved = dir.and_then(move_aside);
    for (name, reason) in invalid {
        let kept = moved
            .as_deref()
            .map_or(String::new(), |m| format!("; file kept as {m}"));
        let msg = format!("restored state of route {name:?} is invalid ({reason}): dropped{kept}");
        loaded.notes.push((EventKind::StateError, Some(name), msg));
    }
}

/// Why a record cannot be trusted, if it cannot.
fn check(rec: &Record, config: &Config) -> Option<String> {
    if let Some(w) = &rec.manual {
        if let Err(e) = check_weights(config, &w.percent) {
            return Some(format!("weights: {e}"));
        }
        if known_pool(config, &w.stable).is_err() {
            return Some(format!("weights: unknown stable pool {:?}", w.stable));
        }
    }
    if let Some(r) = &rec.rollout {
        if r.traffic.candidate_weight > 100 {
            let msg = format!(
                "rollout weight {} is not 0..=100",
                r.traffic.candidate_weight
            );
            return Some(msg);
        }
        if r.stable.is_empty() || r.candidate.is_empty() || r.stable == r.candidate {
            return Some("rollout pools missing or equal".into());
        }
    }
    None
}

/// Renames the state file to `control.json.invalid-<unix seconds>`.
fn move_aside(dir: &Path) -> Option<String> {
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = format!("{FILE}.invalid-{stamp}");
    std::fs::rename(dir.join(FILE), dir.join(&name)).ok()?;
    Some(name)
}
