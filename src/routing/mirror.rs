//! Which mirror a route runs in a snapshot: the file's `[route.mirror]`
//! unless run-time state (a rollout's shadow stage, the admin API) says
//! otherwise.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{MirrorSpec, RouteSpec};
use crate::mirror::Mirror;
use crate::observe::Telemetry;
use crate::upstream::Pool;

/// A route's mirror as run-time state sets it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "mirror", content = "spec")]
pub enum MirrorChoice {
    /// `[route.mirror]` of the file, if any.
    #[default]
    File,
    /// No mirror, whatever the file says.
    Off,
    On(MirrorSpec),
}

/// The mirror `route` runs with `choice`, its pools resolved (noise
/// requests go to `stable`, the pool the route serves now); `None`
/// when there is none or its pool is unknown.
pub(super) fn resolve(
    route: &RouteSpec,
    stable: &str,
    choice: &MirrorChoice,
    pools: &HashMap<&str, &Arc<Pool>>,
    telemetry: &Telemetry,
) -> Option<Arc<Mirror>> {
    let spec = match choice {
        MirrorChoice::File => route.mirror.clone()?,
        MirrorChoice::Off => return None,
        MirrorChoice::On(spec) => spec.clone(),
    };
    let pool = (*pools.get(spec.pool.as_str())?).clone();
    let stable = pools.get(stable).map(|p| (*p).clone());
    let stats = telemetry.shadow.stats(&route.name, &spec.pool);
    Some(Arc::new(Mirror::new(
        spec,
        pool,
        stable,
        stats,
        route.timeout,
    )))
}
