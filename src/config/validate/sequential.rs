//! The analysis additions of SPEC §15: `compare`, `confidence`,
//! `tolerance`, `on_timeout`, `freeze`, `verify_window`.

use toml::Spanned;

use super::Check;
use crate::config::file::{AnalysisFile, RolloutFile, Str, ToleranceFile};
use crate::config::{
    AnalysisSpec, Compare, FreezeWindow, LatencyTolerance, OnTimeout, RolloutSpec, Tolerance,
};

impl Check<'_> {
    /// Fills `compare`, `confidence` and `tolerance` of `spec`.
    pub(super) fn comparison(&mut self, a: &AnalysisFile, key: &str, spec: &mut AnalysisSpec) {
        if let Some(compare) = &a.compare {
            match compare.get_ref().as_str() {
                "fixed" => spec.compare = Compare::Fixed,
                "sequential" => spec.compare = Compare::Sequential,
                other => self.err(
                    compare.span(),
                    format!("{key}.compare"),
                    format!("unknown comparison {other:?}; expected \"fixed\" or \"sequential\""),
                ),
            }
        }
        if let Some(c) = &a.confidence {
            let v = *c.get_ref();
            if (50.0..100.0).contains(&v) {
                spec.confidence = v;
            } else {
                let msg = format!("{v} must be a percent from 50 to below 100, e.g. 95.0");
                self.err(c.span(), format!("{key}.confidence"), msg);
            }
        }
        if let Some(t) = &a.tolerance {
            spec.tolerance = self.tolerance(t.get_ref(), &format!("{key}.tolerance"));
        }
        if spec.compare != Compare::Sequential {
            let given = [
                ("confidence", a.confidence.as_ref().map(Spanned::span)),
                ("tolerance", a.tolerance.as_ref().map(Spanned::span)),
            ];
            for (name, span) in given {
                if let Some(span) = span {
                    let msg = format!("{name} applies only with compare = \"sequential\"");
                    self.err(span, format!("{key}.{name}"), msg);
                }
            }
        }
    }

    fn tolerance(&mut self, t: &ToleranceFile, key: &str) -> Tolerance {
        let mut tolerance = Tolerance::default();
        if let Some(f) = &t.failure_rate {
            let v = *f.get_ref();
            if v > 0.0 && v <= 100.0 {
                tolerance.failure_rate = v;
            } else {
                let msg = format!("{v} must be percentage points above 0, e.g. 0.5");
                self.err(f.span(), format!("{key}.failure_rate"), msg);
            }
        }
        let quantiles = [
            ("p50", 0.50, &t.p50),
            ("p95", 0.95, &t.p95),
            ("p99", 0.99, &t.p99),
        ];
        for (name, quantile, value) in quantiles {
            let Some(value) = value else { continue };
            match percent(value.get_ref()) {
                Some(fraction) => tolerance.latency.push(LatencyTolerance {
                    name,
                    quantile,
                    fraction,
                }),
                None => self.err(
                    value.span(),
                    format!("{key}.{name}"),
                    format!(
                        "{:?} must be a percent above 0 of stable's {name}, e.g. \"10%\"",
                        value.get_ref()
                    ),
                ),
            }
        }
        tolerance
    }

    /// Fills `on_timeout`, `freeze` and `verify_window` of `spec`.
    pub(super) fn guards(&mut self, r: &RolloutFile, key: &str, spec: &mut RolloutSpec) {
        if let Some(on) = &r.on_timeout {
            match on.get_ref().as_str() {
                "rollback" => spec.on_timeout = OnTimeout::Rollback,
                "hold" => spec.on_timeout = OnTimeout::Hold,
                other => self.err(
                    on.span(),
                    format!("{key}.on_timeout"),
                    format!("unknown {other:?}; expected \"rollback\" or \"hold\""),
                ),
            }
            if spec.max_duration.is_none() {
                let msg = "on_timeout needs max_duration";
                self.err(on.span(), format!("{key}.on_timeout"), msg);
            }
        }
        spec.freeze = self.freeze(r.freeze.as_deref(), &format!("{key}.freeze"));
        if r.verify_window.is_some() {
            let k = format!("{key}.verify_window");
            let d = self.duration(&r.verify_window, &k, std::time::Duration::ZERO);
            spec.verify_window = (!d.is_zero()).then_some(d);
        }
    }

    /// `freeze = [...]` of a route or of `[proxy]`.
    pub(super) fn freeze(&mut self, windows: Option<&[Str]>, key: &str) -> Vec<FreezeWindow> {
        let mut out = Vec::new();
        for (i, w) in windows.unwrap_or_default().iter().enumerate() {
            match w.get_ref().parse::<FreezeWindow>() {
                Ok(window) => out.push(window),
                Err(msg) => self.err(w.span(), format!("{key}[{i}]"), msg),
            }
        }
        out
    }
}

/// `"10%"` (or `"10"`) as 0.10.
fn percent(text: &str) -> Option<f64> {
    let v: f64 = text.trim().trim_end_matches('%').trim().parse().ok()?;
    (v > 0.0 && v.is_finite()).then_some(v / 100.0)
}
