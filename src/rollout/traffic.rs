//! Turning what a rollout asks for ([`Traffic`]) into what the data plane
//! serves ([`RouteTraffic`]).

use crate::config::{MatchSpec, RolloutSpec, Strategy};
use crate::routing::{MirrorChoice, RouteTraffic, Weights};

use super::plan::{Phase, Rollout};

/// Header values that select the blue-green preview.
pub const PREVIEW_VALUES: [&str; 2] = ["1", "true"];

/// The route traffic for `rollout` now.
pub fn route_traffic(spec: Option<&RolloutSpec>, rollout: &Rollout) -> RouteTraffic {
    let t = &rollout.traffic;
    let (stable, candidate) = (rollout.stable.clone(), rollout.candidate.clone());
    let weight = t.candidate_weight.min(100);
    let settled = matches!(rollout.phase, Phase::Promoted) && weight == 100;
    let weights = if settled {
        // Promoted: the candidate is the stable pool from now on.
        Weights {
            stable: candidate.clone(),
            percent: vec![(candidate.clone(), 100)],
        }
    } else {
        Weights {
            stable: stable.clone(),
            percent: vec![(candidate.clone(), weight), (stable.clone(), 100 - weight)],
        }
    };
    let mut rules = Vec::new();
    if let Some(spec) = spec {
        if t.preview {
            for value in PREVIEW_VALUES {
                let m = MatchSpec {
                    headers: vec![(spec.preview_header.clone(), value.into())],
                    ..MatchSpec::default()
                };
                rules.push((m, candidate.clone()));
            }
        }
        if t.ab_match {
            if let Some(m) = &spec.ab_match {
                rules.push((m.clone(), candidate.clone()));
            }
        }
    }
    let mut endpoint_limits = Vec::new();
    if let Some(n) = t.stable_endpoints {
        endpoint_limits.push((stable, n));
    }
    if let Some(n) = t.candidate_endpoints {
        endpoint_limits.push((candidate, n));
    }
    let hold = match spec {
        Some(spec)
            if spec.strategy == Strategy::Recreate && rollout.phase == Phase::Progressing =>
        {
            spec.hold
        }
        _ => std::time::Duration::ZERO,
    };
    // The shadow stage: copies to the candidate, compared.
    let mirror = match spec.and_then(|s| s.shadow.as_ref()) {
        Some(shadow) if rollout.shadow => MirrorChoice::On(shadow.mirror_to(&rollout.candidate)),
        _ => MirrorChoice::File,
    };
    RouteTraffic {
        weights,
        rules,
        endpoint_limits,
        hold,
        mirror,
    }
}
