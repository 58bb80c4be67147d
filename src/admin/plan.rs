//! `GET /api/v1/routes/{route}/plan[?pool=P][&strategy=S][&rate=R]`:
//! `veer plan`, a dry run of a rollout at the route's current traffic.
//! Nothing is started or changed.

use serde::{Deserialize, Serialize};

use crate::control::freeze::{freeze_status, rfc3339, FreezeStatus};
use crate::control::sense::unix_ms;
use crate::control::Control;
use crate::rollout::preview::{preview, render, with_freezes, Preview, Traffic};

/// The answer, as `veer plan` reads it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanAnswer {
    pub route: String,
    pub stable: String,
    pub candidate: String,
    /// When it would start (Unix ms): now, or when a freeze ends.
    pub start_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freeze: Option<FreezeStatus>,
    pub preview: Preview,
}

impl PlanAnswer {
    /// What `veer plan` prints.
    pub fn text(&self) -> String {
        let title = format!(
            "plan for {}: {} -> {}",
            self.route, self.stable, self.candidate
        );
        let mut out = render(&self.preview, &title, self.start_ms, rfc3339);
        if let Some(f) = &self.freeze {
            out.push_str(&format!(
                "note: deployment freeze ({}) until {}: the rollout would start then\n",
                f.window, f.until
            ));
        }
        out
    }
}

/// Why no plan: (HTTP status, message).
pub type Refused = (http::StatusCode, String);

/// Works out the plan; `window` is how long the per-pool windows that
/// measure the current traffic are.
pub fn plan(
    control: &Control,
    route: &str,
    query: Option<&str>,
    window: std::time::Duration,
) -> Result<PlanAnswer, Refused> {
    use http::StatusCode;
    let bad = |m: String| (StatusCode::BAD_REQUEST, m);
    let (mut pool, mut strategy, mut rate) = (None, None, None);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("pool", p)) => pool = Some(p.to_string()),
            Some(("strategy", s)) => strategy = Some(s.parse().map_err(bad)?),
            Some(("rate", r)) => {
                let r: f64 = r
                    .parse()
                    .ok()
                    .filter(|r: &f64| r.is_finite() && *r >= 0.0)
                    .ok_or_else(|| bad(format!("rate={r:?}: requests per second, e.g. 5")))?;
                rate = Some(r);
            }
            _ => {
                return Err(bad(format!(
                    "unknown query parameter {pair:?}; expected pool=, strategy= or rate="
                )))
            }
        }
    }
    let snapshot = control.routing.load();
    let config = &snapshot.config;
    let not_found = |m: String| (StatusCode::NOT_FOUND, m);
    let spec = config
        .routes
        .iter()
        .find(|r| r.name == route)
        .ok_or_else(|| not_found(format!("unknown route {route:?}")))?;
    let mut rollout = spec.rollout.clone().ok_or_else(|| {
        bad(format!(
            "route {route:?} has no [route.rollout]: a change of pool switches at once"
        ))
    })?;
    if let Some(s) = strategy {
        rollout.strategy = s;
    }
    let stable = control
        .controller
        .view(route)
        .map_or_else(|| spec.pool.clone(), |v| v.record.stable_pool().to_string());
    let candidate = pool
        .or_else(|| (spec.pool != stable).then(|| spec.pool.clone()))
        .ok_or_else(|| {
            bad(format!(
                "route {route:?} already serves {stable:?}: name the pool to plan a rollout to (veer plan {route} POOL)"
            ))
        })?;
    if !config.pools.iter().any(|p| p.name == candidate) {
        return Err(not_found(format!("unknown pool {candidate:?}")));
    }
    let (mut requests, mut stable_requests, mut stable_failures) = (0, 0, 0);
    for s in control.telemetry.all().iter().filter(|s| s.route == route) {
        let Some(w) = s.last_window() else { continue };
        requests += w.requests;
        if s.pool == stable {
            stable_requests += w.requests;
            stable_failures += w.failures;
        }
    }
    let traffic = Traffic {
        rate: rate.unwrap_or(requests as f64 / window.as_secs_f64().max(0.001)),
        stable_failures: stable_failures as f64 / stable_requests.max(1) as f64,
    };
    let now = unix_ms();
    let freeze = freeze_status(config, route, now);
    let start_ms = freeze.as_ref().map_or(now, |f| f.until_ms);
    let mut preview = preview(&rollout, traffic);
    with_freezes(&mut preview, start_ms, |at| {
        freeze_status(config, route, at).map(|f| (f.until_ms, f.window))
    });
    let late = rollout
        .max_duration
        .zip(preview.earliest_promotion_secs)
        .filter(|(max, t)| *t > max.as_secs_f64());
    if late.is_some() && !preview.warnings.iter().any(|w| w.contains("max_duration")) {
        let msg = "deployment freezes push promotion past max_duration: the rollout would time out while held";
        preview.warnings.push(msg.into());
    }
    Ok(PlanAnswer {
        route: route.to_string(),
        stable,
        candidate,
        start_ms,
        freeze,
        preview,
    })
}
