//! One route's control state, the controller's and nobody else's: what
//! the file said, the last known stable pool, the rollout in progress,
//! the operator's overrides. A route's traffic and phase follow from it
//! ([`Record::traffic`], [`Record::phase`]); it is persisted as is.

use serde::{Deserialize, Serialize};

use crate::config::{MirrorSpec, RolloutSpec, RouteSpec};
use crate::observe::ShadowSummary;
use crate::rollout::{route_traffic, Phase, Rollout, Verdict};
use crate::routing::{MirrorChoice, RouteTraffic, Weights};

/// The file's values for the fields run-time state shadows: an override
/// holds until the file changes that same field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Basis {
    pub pool: String,
    pub weights: Option<Vec<(String, u32)>>,
    /// `[route.mirror]`: a mirror set by the admin API holds until the
    /// file changes it.
    #[serde(default)]
    pub mirror: Option<MirrorSpec>,
}

impl Basis {
    pub fn of(spec: &RouteSpec) -> Basis {
        Basis {
            pool: spec.pool.clone(),
            weights: spec.weights.clone(),
            mirror: spec.mirror.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Record {
    /// `pool` and `weights` as the file said when last reconciled, so an
    /// edit made while veer was stopped is still seen.
    pub basis: Basis,
    /// 100% to this pool when no rollout or manual split says otherwise;
    /// `None`: the file's split. Set whenever a rollout starts or ends, so
    /// a lost rollout fails closed to the last known stable pool.
    pub stable: Option<String>,
    /// The pool served before the last completed switch (`rollback`
    /// outside a rollout returns to it).
    pub previous: Option<String>,
    /// The rollout in progress: it drives the traffic.
    pub rollout: Option<Rollout>,
    /// The latest finished rollout or switch, for status and phase.
    pub finished: Option<Rollout>,
    /// The operator's split (`PUT .../weights`): wins while set. On a
    /// rollout it pauses the rollout.
    pub manual: Option<Weights>,
    /// Paused by the operator with no rollout in progress.
    pub paused: bool,
    /// Rollouts started on this route; each rollout carries its number.
    pub generation: u64,
    /// The latest verdict of the rollout in progress (or the last one);
    /// a new rollout starts without one. In a fleet, every replica shows it.
    pub verdict: Option<Verdict>,
    /// The diff summary of the latest shadow-stage interval (SPEC §12).
    pub shadow: Option<ShadowSummary>,
    /// The operator's mirror (`PUT`/`DELETE .../mirror`); a rollout's
    /// shadow stage takes precedence while it runs.
    pub mirror: Option<MirrorChoice>,
}

impl Record {
    /// A route as the file declares it, with no run-time state.
    pub fn fresh(spec: &RouteSpec) -> Record {
        Record {
            basis: Basis::of(spec),
            ..Record::default()
        }
    }

    /// What the route serves now: the manual split, else the rollout's
    /// traffic, else all to the stable pool, else (`None`) the file's.
    pub fn traffic(&self, spec: Option<&RolloutSpec>) -> Option<RouteTraffic> {
        let traffic = self.split(spec);
        let Some(mirror) = &self.mirror else {
            return traffic;
        };
        // The operator's mirror over the file's split when nothing else
        // is set (the basis is what the file says).
        let mut traffic = traffic.unwrap_or_else(|| {
            let pool = self.basis.pool.clone();
            let percent = self.basis.weights.clone();
            RouteTraffic::from(Weights {
                percent: percent.unwrap_or_else(|| vec![(pool.clone(), 100)]),
                stable: pool,
            })
        });
        if traffic.mirror == MirrorChoice::File {
            traffic.mirror = mirror.clone();
        }
        Some(traffic)
    }

    fn split(&self, spec: Option<&RolloutSpec>) -> Option<RouteTraffic> {
        if let Some(manual) = &self.manual {
            return Some(manual.clone().into());
        }
        if let Some(r) = &self.rollout {
            return Some(route_traffic(spec, r));
        }
        let stable = self.stable.as_deref()?;
        Some(Weights::all_to(stable).into())
    }

    /// SPEC §3's phase: the rollout's while one runs (manual weights pause
    /// it), else `paused` while the operator paused the route, else how
    /// the last rollout ended, else `idle`.
    pub fn phase(&self) -> Phase {
        if let Some(r) = &self.rollout {
            return r.phase;
        }
        if self.paused {
            return Phase::Paused;
        }
        self.finished.as_ref().map_or(Phase::Idle, |r| r.phase)
    }

    /// The pool that serves as stable now (a rollout's stable while one
    /// runs).
    pub fn stable_pool(&self) -> &str {
        match (&self.rollout, &self.stable) {
            (Some(r), _) => &r.stable,
            (None, Some(stable)) => stable,
            (None, None) => &self.basis.pool,
        }
    }

    /// The pool being moved to, if any: the rollout's candidate, else the
    /// largest other share of the manual split.
    pub fn candidate(&self) -> Option<&str> {
        match (&self.rollout, &self.manual) {
            (Some(r), _) => Some(&r.candidate),
            (None, Some(manual)) => manual.candidate(),
            (None, None) => None,
        }
    }

    /// Every pool this record sends traffic to or may return to.
    pub fn pools(&self) -> Vec<&str> {
        let mut pools: Vec<&str> = self.stable.iter().map(String::as_str).collect();
        pools.extend(self.previous.as_deref());
        if let Some(r) = &self.rollout {
            pools.extend([r.stable.as_str(), r.candidate.as_str()]);
        }
        if let Some(manual) = &self.manual {
            pools.extend(manual.pools());
        }
        pools
    }

    /// Ends the rollout in progress (its last state is kept for status);
    /// the pool it ended on becomes stable.
    pub fn retire(&mut self) {
        let Some(r) = self.rollout.take() else { return };
        let promoted = r.phase == Phase::Promoted;
        let serving = if promoted { &r.candidate } else { &r.stable };
        if promoted {
            self.previous = Some(r.stable.clone());
        }
        self.stable = Some(serving.clone());
        self.finished = Some(r);
    }
}
