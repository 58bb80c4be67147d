//! `veer status` as readable tables: routes, then pools and endpoints.

use crate::control::{RouteStatus, Status};
use crate::rollout::Outcome;

/// Routes (weights, phase), then pools with endpoint health.
pub fn render(status: &Status) -> String {
    let mut routes = vec![row(&[
        "ROUTE",
        "PHASE",
        "STABLE",
        "CANDIDATE",
        "WEIGHTS",
        "STEP",
    ])];
    for r in &status.routes {
        routes.push(vec![
            r.name.clone(),
            r.phase.to_string(),
            r.stable.clone(),
            r.candidate.clone().unwrap_or_else(|| "-".into()),
            weights(r),
            r.step.map_or("-".into(), |s| s.to_string()),
        ]);
    }
    let mut pools = vec![row(&[
        "POOL",
        "VERSION",
        "ENDPOINT",
        "SOURCE",
        "WEIGHT",
        "HEALTHY",
        "IN-FLIGHT",
    ])];
    let mut dns_lines = String::new();
    for p in &status.pools {
        for e in &p.endpoints {
            pools.push(vec![
                p.name.clone(),
                p.version.clone().unwrap_or_else(|| "-".into()),
                e.address.clone(),
                e.source.as_str().into(),
                e.weight.to_string(),
                health(e.maintenance, e.healthy).into(),
                e.in_flight.to_string(),
            ]);
        }
        if let Some(dns) = &p.dns {
            let state = dns.error.as_deref().unwrap_or("ok");
            dns_lines.push_str(&format!(
                "pool {} dns {}: {} endpoint(s), {state}\n",
                p.name, dns.query, dns.endpoints
            ));
        }
    }
    format!(
        "{}{}{}\n{}{dns_lines}{}",
        columns(&routes),
        verdicts(status),
        shadows(status),
        columns(&pools),
        cluster(status)
    )
}

/// An endpoint's HEALTHY column.
fn health(maintenance: bool, healthy: bool) -> &'static str {
    match (maintenance, healthy) {
        (true, _) => "maintenance",
        (false, true) => "yes",
        (false, false) => "no",
    }
}

/// `veer endpoints POOL`: one line per endpoint.
pub fn endpoints(list: &[crate::discovery::EndpointView]) -> String {
    let mut rows = vec![row(&[
        "ENDPOINT",
        "SOURCE",
        "WEIGHT",
        "HEALTHY",
        "IN-FLIGHT",
    ])];
    for e in list {
        rows.push(vec![
            e.address.clone(),
            e.source.as_str().into(),
            e.weight.to_string(),
            health(e.maintenance, e.healthy).into(),
            e.in_flight.to_string(),
        ]);
    }
    columns(&rows)
}

/// `cluster: replica r1, leader r2, connected; replicas r1@42 (9 req) r2@42 (7 req)`.
fn cluster(status: &Status) -> String {
    let Some(c) = &status.cluster else {
        return String::new();
    };
    let replicas: Vec<String> = c
        .replicas
        .iter()
        .map(|r| format!("{}@{} ({} req)", r.id, r.generation, r.requests))
        .collect();
    format!(
        "\ncluster: replica {}, leader {}, {}; replicas {}\n",
        c.replica,
        c.leader.as_deref().unwrap_or("none"),
        if c.connected {
            "connected"
        } else {
            "disconnected"
        },
        replicas.join(" ")
    )
}

/// The controller's last verdict per route, with its figures and every
/// failed bound, so an operator can check the decision.
fn verdicts(status: &Status) -> String {
    let mut out = String::new();
    for r in &status.routes {
        let Some(v) = &r.verdict else { continue };
        let c = &v.candidate;
        let ms = |d: Option<std::time::Duration>| {
            d.map_or("-".into(), |d| format!("{:.1}ms", d.as_secs_f64() * 1000.0))
        };
        let outcome = outcome_name(v.outcome);
        out.push_str(&format!(
            "{}: last analysis {outcome} (failed checks {}): candidate {} req, {:.2}% ok, p50 {} p95 {} p99 {}\n",
            r.name,
            r.failed_checks,
            c.requests,
            c.success_rate,
            ms(c.p50),
            ms(c.p95),
            ms(c.p99),
        ));
        if let Some(s) = &v.sequential {
            out.push_str(&format!(
                "  sequential {} at {}% confidence over {} candidate and {} stable requests\n",
                outcome_name(s.outcome),
                s.confidence,
                s.candidate_requests,
                s.stable_requests
            ));
        }
        for reason in &v.reasons {
            out.push_str(&format!("  - {reason}\n"));
        }
    }
    for r in &status.routes {
        if let Some(f) = &r.freeze {
            out.push_str(&format!(
                "{}: deployment freeze ({}): next allowed {}\n",
                r.name, f.window, f.until
            ));
        }
    }
    out
}

/// Each route's mirror since start and its latest shadow-stage interval:
/// counts, the differing fields, redacted samples.
fn shadows(status: &Status) -> String {
    let mut out = String::new();
    for r in &status.routes {
        let labelled = [("mirror", &r.mirror), ("shadow interval", &r.shadow)];
        for (label, summary) in labelled {
            let Some(s) = summary else { continue };
            let ratio = s.latency_ratio.map_or("-".into(), |x| format!("x{x:.2}"));
            out.push_str(&format!(
                "{}: {label} to {}: {} compared, {} differ ({:.2}%), {} dropped, {} errors, latency {ratio}\n",
                r.name, s.pool, s.compared, s.mismatched, s.mismatch_rate, s.dropped, s.errors
            ));
            for f in s.fields.iter().take(10) {
                out.push_str(&format!("  - {} x{}\n", f.field, f.count));
            }
            if !s.noise.is_empty() {
                out.push_str(&format!("  noise (left out): {}\n", s.noise.join(", ")));
            }
            for sample in &s.samples {
                out.push_str(&format!("  e.g. {sample}\n"));
            }
        }
    }
    out
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "pass",
        Outcome::Fail => "fail",
        Outcome::Inconclusive => "inconclusive",
    }
}

/// `blue=90 green=10`, stable last, with `(manual)` for admin overrides.
pub fn weights(r: &RouteStatus) -> String {
    let mut parts: Vec<String> = r
        .weights
        .iter()
        .filter(|(p, _)| **p != r.stable)
        .chain(r.weights.iter().filter(|(p, _)| **p == r.stable))
        .map(|(p, w)| format!("{p}={w}"))
        .collect();
    if r.manual {
        parts.push("(manual)".into());
    }
    parts.join(" ")
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Left-aligned columns, two spaces apart.
fn columns(rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, String::len))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_show_the_sequential_tests_and_the_freeze() {
        let status: Status = serde_json::from_value(serde_json::json!({
            "routes": [{
                "name": "app", "phase": "progressing", "pool": "green", "stable": "blue",
                "candidate": "green", "weights": {"blue": 95, "green": 5}, "step": 0,
                "failed_checks": 0, "analysis": {}, "manual": false, "paused": false,
                "verdict": {
                    "outcome": "inconclusive",
                    "candidate": {"requests": 15, "failures": 0, "success_rate": 100.0, "p50": 1.0, "p95": 2.0, "p99": 3.0},
                    "stable": null,
                    "reasons": ["needs about 1837 more candidate requests (about 30m 43s at the current rate)"],
                    "sequential": {
                        "outcome": "inconclusive", "confidence": 95.0,
                        "candidate_requests": 5, "stable_requests": 25, "tests": [],
                        "needs_requests": 1837, "needs_seconds": 1843.0
                    }
                },
                "freeze": {"window": "Fri 15:00-Mon 09:00 Europe/Berlin", "until_ms": 0, "until": "2026-12-07T08:00:00Z"}
            }],
            "pools": [],
            "reloads": {"ok": 0, "error": 0}
        }))
        .unwrap();
        let out = render(&status);
        assert!(
            out.contains("  sequential inconclusive at 95% confidence over 5 candidate and 25 stable requests\n"),
            "{out}"
        );
        assert!(
            out.contains("  - needs about 1837 more candidate requests"),
            "{out}"
        );
        assert!(
            out.contains("app: deployment freeze (Fri 15:00-Mon 09:00 Europe/Berlin): next allowed 2026-12-07T08:00:00Z\n"),
            "{out}"
        );
    }
}
