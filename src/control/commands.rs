//! What operators do to a route, as pure edits of its [`Record`]: manual
//! weights and the five commands. Each either does what its name says or
//! is refused with the reason (409), and a refused call changes nothing.
//!
//! | command | rollout in progress | no rollout |
//! |---|---|---|
//! | `weights` | pauses it; the split wins until `resume`, `promote`, `abort`, `rollback` | the split serves, route paused |
//! | `pause` | holds the step (analysis and tripwire keep watching) | marks the route paused; weights unchanged |
//! | `resume` | continues from the rollout's own step; a manual split ends | clears the pause; weights unchanged |
//! | `promote` | candidate to 100% | the manual split's candidate to 100%, else 409 |
//! | `abort` | stable to 100%, rolled back | the manual split back to stable, else 409 |
//! | `rollback` | stable to 100% (also after a blue-green switch) | as `abort`, else back to the previous pool, else 409 |

use crate::config::{Config, Strategy};
use crate::rollout::{Command, Phase, Rollout};
use crate::routing::{MirrorChoice, Weights};

use super::record::Record;
use super::ControlError;

/// `PUT .../weights`: validated whole before anything changes.
pub fn set_weights(
    rec: &mut Record,
    config: &Config,
    percent: Vec<(String, u32)>,
    now: u64,
) -> Result<String, ControlError> {
    check_weights(config, &percent)?;
    let stable = rec.stable_pool().to_string();
    match rec.rollout.take() {
        Some(r) if r.phase == Phase::RollingBack => {
            rec.rollout = Some(r);
            return Err(ControlError::conflict(
                "the rollout is rolling back; set weights once it has rolled back",
            ));
        }
        Some(r) => rec.rollout = Some(r.command(Command::Pause, now)),
        None => rec.paused = true,
    }
    let message = format!("weights set to {} (route paused)", show(&percent));
    rec.manual = Some(Weights { stable, percent });
    Ok(message)
}

/// `PUT`/`DELETE .../mirror`: a mirror checked like the file's, off, or
/// back to the file's `[route.mirror]`.
pub fn set_mirror(
    rec: &mut Record,
    config: &Config,
    mirror: MirrorChoice,
) -> Result<String, ControlError> {
    let message = match &mirror {
        MirrorChoice::On(spec) => {
            let pools: Vec<&str> = config.pools.iter().map(|p| p.name.as_str()).collect();
            spec.check(&pools, rec.stable_pool())
                .map_err(ControlError::BadRequest)?;
            format!(
                "mirror to {:?} ({}% of {})",
                spec.pool,
                spec.percent,
                spec.methods.join(", ")
            )
        }
        MirrorChoice::Off => "mirror off".to_string(),
        MirrorChoice::File => "mirror as the config file says".to_string(),
    };
    rec.mirror = match mirror {
        MirrorChoice::File => None,
        other => Some(other),
    };
    Ok(message)
}

/// `promote`, `abort`, `pause`, `resume`, `rollback`.
pub fn command(
    rec: &mut Record,
    config: &Config,
    route: &str,
    command: Command,
    now: u64,
) -> Result<String, ControlError> {
    match rec.rollout.clone() {
        Some(r) => on_rollout(rec, config, r, command, now),
        None => on_route(rec, route, command, now),
    }
}

fn on_rollout(
    rec: &mut Record,
    config: &Config,
    r: Rollout,
    command: Command,
    now: u64,
) -> Result<String, ControlError> {
    let refuse = |why: String| {
        Err(ControlError::Conflict(format!(
            "{}: {why}",
            command.as_str()
        )))
    };
    match (command, r.phase) {
        (Command::Rollback, Phase::RollingBack) => return refuse("already rolling back".into()),
        (_, Phase::RollingBack) => return refuse("the rollout is rolling back".into()),
        (Command::Pause, Phase::Paused) => return refuse("already paused".into()),
        (Command::Resume, phase) if phase != Phase::Paused => {
            return refuse(format!("the rollout is {phase}, not paused"))
        }
        (Command::Promote | Command::Abort, Phase::Promoted) => {
            return refuse("already promoted; rollback returns to stable".into())
        }
        (Command::Promote, _) if !config.pools.iter().any(|p| p.name == r.candidate) => {
            return refuse(format!("pool {:?} is no longer in the config", r.candidate))
        }
        _ => {}
    }
    if command != Command::Pause {
        // The controller takes the traffic back from a manual split.
        rec.manual = None;
    }
    let after = r.command(command, now);
    let message = after.reason.clone();
    rec.rollout = Some(after);
    Ok(message)
}

fn on_route(
    rec: &mut Record,
    route: &str,
    command: Command,
    now: u64,
) -> Result<String, ControlError> {
    let refuse = |why: &str| {
        Err(ControlError::Conflict(format!(
            "{}: {why}",
            command.as_str()
        )))
    };
    let stable = rec.stable_pool().to_string();
    let candidate = rec
        .manual
        .as_ref()
        .and_then(Weights::candidate)
        .map(str::to_string);
    match command {
        Command::Pause if rec.paused => refuse("already paused"),
        Command::Pause => {
            rec.paused = true;
            Ok("paused; weights unchanged".into())
        }
        Command::Resume if !rec.paused => refuse("not paused"),
        Command::Resume => {
            rec.paused = false;
            Ok("resumed; weights unchanged".into())
        }
        Command::Promote => match candidate {
            Some(c) => Ok(switch(rec, route, &stable, &c, true, now)),
            None => refuse("no rollout in progress and no candidate in the manual split"),
        },
        Command::Abort => match candidate {
            Some(c) => Ok(switch(rec, route, &stable, &c, false, now)),
            None => refuse("no rollout in progress and no candidate in the manual split"),
        },
        Command::Rollback => match (candidate, rec.previous.clone()) {
            (Some(c), _) => Ok(switch(rec, route, &stable, &c, false, now)),
            (None, Some(previous)) => {
                rec.previous = None;
                Ok(switch(rec, route, &previous, &stable, false, now))
            }
            (None, None) => refuse("nothing to roll back: no candidate and no previous pool"),
        },
    }
}

/// An instant switch, recorded as a finished rollout: `promote` moves all
/// traffic to `candidate` (which becomes stable), otherwise to `stable`.
pub fn switch(
    rec: &mut Record,
    route: &str,
    stable: &str,
    candidate: &str,
    promote: bool,
    now: u64,
) -> String {
    let r = Rollout::new(route, Strategy::Recreate, stable, candidate, now);
    let r = if promote {
        r.promote(format!("switched 100% to {candidate:?}"), now)
    } else {
        r.aborted(format!("switched 100% back to {stable:?}"), now)
    };
    let message = r.reason.clone();
    rec.manual = None;
    rec.paused = false;
    rec.rollout = Some(r);
    rec.retire();
    message
}

/// A split as the API and a restored state must give it: known pools, each
/// once, each 0..=100, summing to 100. Checked before anything changes.
pub fn check_weights(config: &Config, percent: &[(String, u32)]) -> Result<(), ControlError> {
    if percent.is_empty() {
        return Err(ControlError::BadRequest("no weights given".into()));
    }
    for (i, (pool, weight)) in percent.iter().enumerate() {
        known_pool(config, pool)?;
        if *weight > 100 {
            let msg = format!("weight of {pool:?} must be 0..=100");
            return Err(ControlError::BadRequest(msg));
        }
        if percent[..i].iter().any(|(p, _)| p == pool) {
            let msg = format!("pool {pool:?} given twice");
            return Err(ControlError::BadRequest(msg));
        }
    }
    let sum: u64 = percent.iter().map(|(_, w)| u64::from(*w)).sum();
    if sum != 100 {
        let msg = format!("weights sum to {sum}, not 100");
        return Err(ControlError::BadRequest(msg));
    }
    Ok(())
}

pub(super) fn known_pool(config: &Config, pool: &str) -> Result<(), ControlError> {
    match config.pools.iter().any(|p| p.name == pool) {
        true => Ok(()),
        false => Err(ControlError::UnknownPool(pool.to_string())),
    }
}

/// Checks that a rollout of the route to `pool` may start now.
pub fn check_start(
    rec: &Record,
    config: &Config,
    route: &str,
    pool: &str,
    strategy: Option<Strategy>,
) -> Result<(), ControlError> {
    known_pool(config, pool)?;
    if let Some(r) = &rec.rollout {
        return Err(ControlError::Conflict(format!(
            "route {route:?} has a rollout to {:?} in progress (phase {}); abort it first",
            r.candidate, r.phase
        )));
    }
    if rec.stable_pool() == pool {
        return Err(ControlError::Conflict(format!(
            "route {route:?} already serves pool {pool:?} as stable; `abort` sends all traffic back to it"
        )));
    }
    let spec = config.routes.iter().find(|r| r.name == route);
    let strategy = strategy.or(spec.and_then(|s| s.rollout.as_ref()).map(|r| r.strategy));
    let checked = config
        .pools
        .iter()
        .any(|p| p.name == pool && p.health.is_some());
    if let Some(strategy) = strategy.filter(|s| s.needs_health() && !checked) {
        return Err(ControlError::Conflict(format!(
            "strategy {strategy} needs [pool.health] on pool {pool:?}: it moves traffic only to endpoints that pass health checks"
        )));
    }
    Ok(())
}

/// `blue=90 green=10`.
pub fn show(percent: &[(String, u32)]) -> String {
    let parts: Vec<String> = percent.iter().map(|(p, w)| format!("{p}={w}")).collect();
    parts.join(" ")
}
