//! `[route.rollout]`: strategy, canary steps, analysis and webhooks.

use std::collections::HashSet;
use std::time::Duration;

use http::HeaderName;
use toml::Spanned;

use super::route::Conditions;
use super::{Check, SECOND};
use crate::config::file::{AnalysisFile, RolloutFile};
use crate::config::model::{AnalysisSpec, QuerySpec, RolloutSpec, Strategy};

/// Canary steps when neither `steps` nor `step_weight` is given (SPEC §2).
const DEFAULT_STEPS: [u32; 4] = [5, 25, 50, 100];

impl Check<'_> {
    pub(super) fn rollout(&mut self, r: &RolloutFile, route: &str) -> Option<RolloutSpec> {
        let key = format!("{route}.rollout");
        let k = |name: &str| format!("{key}.{name}");
        let strategy = match r.strategy.get_ref().parse::<Strategy>() {
            Ok(strategy) => Some(strategy),
            Err(msg) => {
                self.err(r.strategy.span(), k("strategy"), msg);
                None
            }
        };
        let interval = self.nonzero_duration(&r.interval, &k("interval"), 60 * SECOND);
        let threshold = self
            .at_least_one(r.threshold.as_ref(), &k("threshold"))
            .unwrap_or(3);
        let tripwire = self.at_least_one(r.tripwire.as_ref(), &k("tripwire"));
        let iterations = self
            .at_least_one(r.iterations.as_ref(), &k("iterations"))
            .unwrap_or(10);
        let steps = self.steps(r, &key);
        let max_surge = r.max_surge.as_ref().map_or(1, |n| *n.get_ref());
        let max_unavailable = r.max_unavailable.as_ref().map_or(0, |n| *n.get_ref());
        if let (0, 0, Some(at)) = (
            max_surge,
            max_unavailable,
            r.max_surge.as_ref().or(r.max_unavailable.as_ref()),
        ) {
            self.err(
                at.span(),
                key.clone(),
                "max_surge and max_unavailable cannot both be 0",
            );
        }
        let preview_header = match &r.preview_header {
            Some(h) => self.header_name(h, &k("preview_header")),
            None => Some(HeaderName::from_static("x-veer-preview")),
        };
        let ab_match = r.ab_match.as_ref().map(|m| {
            let c = Conditions {
                headers: &m.get_ref().headers,
                cookies: &m.get_ref().cookies,
                query: &m.get_ref().query,
            };
            self.match_spec(c, m.span(), &k("match"))
        });
        if strategy == Some(Strategy::AbTest) && ab_match.is_none() {
            let msg =
                "ab_test needs `match` (headers, cookies or query): the traffic the candidate gets";
            self.err(r.strategy.span(), k("match"), msg);
        }
        let analysis = match &r.analysis {
            Some(a) => self.analysis(a, &k("analysis")),
            None => AnalysisSpec::defaults(),
        };
        let webhooks = r
            .webhook
            .iter()
            .enumerate()
            .filter_map(|(i, w)| self.webhook(w, &k(&format!("webhook[{i}]"))))
            .collect();
        let shadow = r
            .shadow
            .as_ref()
            .and_then(|s| self.shadow(s, strategy, &k("shadow")));
        let mut spec = RolloutSpec {
            strategy: strategy?,
            interval,
            threshold,
            tripwire,
            steps,
            hold: self.duration(&r.hold, &k("hold"), Duration::ZERO),
            max_surge,
            max_unavailable,
            ready_timeout: self.nonzero_duration(
                &r.ready_timeout,
                &k("ready_timeout"),
                60 * SECOND,
            ),
            preview_header: preview_header?,
            auto_promote: r.auto_promote.unwrap_or(true),
            rollback_window: self.duration(&r.rollback_window, &k("rollback_window"), 600 * SECOND),
            ab_match,
            iterations,
            max_duration: match &r.max_duration {
                Some(_) => {
                    Some(self.nonzero_duration(&r.max_duration, &k("max_duration"), interval))
                }
                None if strategy == Some(Strategy::AbTest) => {
                    Some(interval.saturating_mul(iterations.saturating_mul(3)))
                }
                None => None,
            },
            on_timeout: Default::default(),
            freeze: Vec::new(),
            verify_window: None,
            analysis,
            webhooks,
            shadow,
        };
        self.guards(r, &key, &mut spec);
        Some(spec)
    }

    fn at_least_one(&mut self, value: Option<&Spanned<u32>>, key: &str) -> Option<u32> {
        let value = value?;
        if *value.get_ref() == 0 {
            self.err(value.span(), key, "must be at least 1");
            return None;
        }
        Some(*value.get_ref())
    }

    /// Canary steps from `steps`, or `step_weight` up to `max_weight`, each
    /// ending at 100.
    fn steps(&mut self, r: &RolloutFile, key: &str) -> Vec<u32> {
        match (&r.steps, &r.step_weight, &r.max_weight) {
            (Some(_), Some(sw), _) => {
                let msg = "use either steps or step_weight + max_weight, not both";
                self.err(sw.span(), format!("{key}.step_weight"), msg);
                Vec::from(DEFAULT_STEPS)
            }
            (Some(_), None, Some(mw)) => {
                let msg = "max_weight goes with step_weight, not with steps";
                self.err(mw.span(), format!("{key}.max_weight"), msg);
                Vec::from(DEFAULT_STEPS)
            }
            (Some(steps), None, None) => self.explicit_steps(steps, key),
            (None, Some(sw), Some(mw)) => {
                let (step, max) = (*sw.get_ref(), *mw.get_ref());
                if !(1..=100).contains(&step) {
                    self.err(sw.span(), format!("{key}.step_weight"), "must be 1..=100");
                    return Vec::from(DEFAULT_STEPS);
                }
                if !(step..=100).contains(&max) {
                    let msg = format!("must be between step_weight ({step}) and 100");
                    self.err(mw.span(), format!("{key}.max_weight"), msg);
                    return Vec::from(DEFAULT_STEPS);
                }
                expand_steps(step as u32, max as u32)
            }
            (None, Some(sw), None) => {
                self.err(
                    sw.span(),
                    format!("{key}.step_weight"),
                    "step_weight needs max_weight",
                );
                Vec::from(DEFAULT_STEPS)
            }
            (None, None, Some(mw)) => {
                self.err(
                    mw.span(),
                    format!("{key}.max_weight"),
                    "max_weight needs step_weight",
                );
                Vec::from(DEFAULT_STEPS)
            }
            (None, None, None) => Vec::from(DEFAULT_STEPS),
        }
    }

    fn explicit_steps(&mut self, steps: &Spanned<Vec<Spanned<i64>>>, key: &str) -> Vec<u32> {
        if steps.get_ref().is_empty() {
            self.err(steps.span(), format!("{key}.steps"), "must not be empty");
        }
        let mut out: Vec<u32> = Vec::new();
        for (i, step) in steps.get_ref().iter().enumerate() {
            let w = *step.get_ref();
            let k = format!("{key}.steps[{i}]");
            if !(1..=100).contains(&w) {
                self.err(step.span(), k, format!("step {w} must be 1..=100"));
            } else if out.last().is_some_and(|&last| w <= i64::from(last)) {
                let last = out.last().copied().unwrap_or_default();
                self.err(
                    step.span(),
                    k,
                    format!("steps must increase: {w} after {last}"),
                );
            } else {
                out.push(w as u32);
            }
        }
        if out.last() != Some(&100) {
            out.push(100);
        }
        out
    }

    fn analysis(&mut self, a: &AnalysisFile, key: &str) -> AnalysisSpec {
        let mut percent = |value: &Option<Spanned<f64>>, name: &str| {
            let value = value.as_ref()?;
            let v = *value.get_ref();
            if !(0.0..=100.0).contains(&v) {
                self.err(
                    value.span(),
                    format!("{key}.{name}"),
                    format!("{v} must be a percent, 0..=100"),
                );
                return None;
            }
            Some(v)
        };
        let success_rate = percent(&a.success_rate, "success_rate");
        let max_success_rate_drop = percent(&a.max_success_rate_drop, "max_success_rate_drop");
        let mut latency = |value: &Option<_>, name: &str| {
            value.as_ref()?;
            Some(self.duration(value, &format!("{key}.{name}"), Duration::ZERO))
        };
        let (p50, p95, p99) = (
            latency(&a.p50, "p50"),
            latency(&a.p95, "p95"),
            latency(&a.p99, "p99"),
        );
        let mut names = HashSet::new();
        let mut queries = Vec::new();
        for (i, q) in a.query.iter().enumerate() {
            let k = format!("{key}.query[{i}]");
            let name = q.name.get_ref();
            if name.is_empty() || !names.insert(name.clone()) {
                let msg = format!("query name {name:?} must be non-empty and unique");
                self.err(q.name.span(), format!("{k}.name"), msg);
            }
            self.url(&q.prometheus, &format!("{k}.prometheus"));
            if q.query.get_ref().trim().is_empty() {
                self.err(q.query.span(), format!("{k}.query"), "must not be empty");
            }
            match (q.min, q.max) {
                (None, None) => self.err(q.name.span(), k.clone(), "set min, max or both"),
                (Some(min), Some(max)) if min > max => self.err(
                    q.name.span(),
                    k.clone(),
                    format!("min {min} is above max {max}"),
                ),
                _ => {}
            }
            queries.push(QuerySpec {
                name: name.clone(),
                prometheus: q.prometheus.get_ref().clone(),
                query: q.query.get_ref().clone(),
                min: q.min,
                max: q.max,
            });
        }
        let mut spec = AnalysisSpec {
            min_requests: a.min_requests.unwrap_or(50),
            success_rate,
            p50,
            p95,
            p99,
            max_success_rate_drop,
            queries,
            ..AnalysisSpec::defaults()
        };
        self.comparison(a, key, &mut spec);
        spec
    }
}

/// `step, 2*step, ...` while at most `max`, then 100.
fn expand_steps(step: u32, max: u32) -> Vec<u32> {
    let mut out: Vec<u32> = (1..).map(|n| n * step).take_while(|&w| w <= max).collect();
    if out.last() != Some(&100) {
        out.push(100);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::expand_steps;

    #[test]
    fn step_weight_expands_then_ends_at_100() {
        assert_eq!(expand_steps(10, 50), [10, 20, 30, 40, 50, 100]);
        assert_eq!(expand_steps(30, 100), [30, 60, 90, 100]);
        assert_eq!(expand_steps(25, 100), [25, 50, 75, 100]);
        assert_eq!(expand_steps(100, 100), [100]);
    }
}
