//! Prometheus text exposition (format 0.0.4) of every veer metric for the
//! admin listener's `/metrics`, with help text, `_seconds` units and
//! bounded labels (route, pool, version, endpoint, status class: never raw
//! paths).

use std::fmt::Write;

use crate::drain::{DrainMetrics, Drains};
use crate::observe::histogram::{upper_bound, BUCKETS};
use crate::observe::{Telemetry, UpstreamErrorKind};
use crate::rollout::Phase;
use crate::routing::Snapshot;
use crate::upstream::EndpointState;

/// Histogram buckets exported: the internal bucket bounds at powers of two
/// from 128 µs to ~34 s (exact, since they are internal bounds).
fn exported_bounds() -> impl Iterator<Item = (usize, u64)> {
    (0..BUCKETS)
        .map(|i| (i, upper_bound(i)))
        .filter(|(_, us)| us.is_power_of_two() && (128..=1 << 25).contains(us))
}

/// Escapes a label value.
fn esc(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Renders all metrics. `phase` names the current rollout phase of a route.
pub fn render(telemetry: &Telemetry, snapshot: &Snapshot, phase: impl Fn(&str) -> Phase) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let all = telemetry.all();
    let snaps: Vec<_> = all.iter().map(|s| (s, s.snapshot())).collect();

    header(
        &mut out,
        "veer_requests_total",
        "counter",
        "Responses sent to clients, by route, pool, version and status class.",
    );
    for (s, snap) in &snaps {
        let (r, p, v) = (esc(&s.route), esc(&s.pool), esc(&s.version));
        for (i, n) in snap.codes.iter().enumerate() {
            let _ = writeln!(out, "veer_requests_total{{route=\"{r}\",pool=\"{p}\",version=\"{v}\",code=\"{}xx\"}} {n}", i + 1);
        }
    }

    header(
        &mut out,
        "veer_request_duration_seconds",
        "histogram",
        "Time from request received to response sent, by route, pool and version.",
    );
    for (s, snap) in &snaps {
        let labels = format!(
            "route=\"{}\",pool=\"{}\",version=\"{}\"",
            esc(&s.route),
            esc(&s.pool),
            esc(&s.version)
        );
        let mut cumulative = 0;
        let mut next = 0;
        for (index, bound) in exported_bounds() {
            cumulative += snap.latency.buckets[next..=index].iter().sum::<u64>();
            next = index + 1;
            let _ = writeln!(
                out,
                "veer_request_duration_seconds_bucket{{{labels},le=\"{}\"}} {cumulative}",
                bound as f64 / 1e6
            );
        }
        let count = snap.latency.count;
        let _ = writeln!(
            out,
            "veer_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "veer_request_duration_seconds_sum{{{labels}}} {}",
            snap.latency.sum_micros as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "veer_request_duration_seconds_count{{{labels}}} {count}"
        );
    }

    header(
        &mut out,
        "veer_upstream_errors_total",
        "counter",
        "Failed upstream attempts without a usable response, by route, pool and kind.",
    );
    for (s, snap) in &snaps {
        for (kind, n) in UpstreamErrorKind::ALL.iter().zip(snap.upstream_errors) {
            let _ = writeln!(
                out,
                "veer_upstream_errors_total{{route=\"{}\",pool=\"{}\",kind=\"{}\"}} {n}",
                esc(&s.route),
                esc(&s.pool),
                kind.as_str()
            );
        }
    }

    header(
        &mut out,
        "veer_in_flight",
        "gauge",
        "Requests being served now, by route and pool.",
    );
    let mut in_flight: Vec<((String, String), i64)> = Vec::new();
    for (s, snap) in &snaps {
        let key = (s.route.clone(), s.pool.clone());
        match in_flight.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += snap.in_flight,
            None => in_flight.push((key, snap.in_flight)),
        }
    }
    for ((route, pool), n) in in_flight {
        let _ = writeln!(
            out,
            "veer_in_flight{{route=\"{}\",pool=\"{}\"}} {}",
            esc(&route),
            esc(&pool),
            n.max(0)
        );
    }

    header(
        &mut out,
        "veer_unrouted_requests_total",
        "counter",
        "Requests that matched no route (answered 404).",
    );
    let _ = writeln!(out, "veer_unrouted_requests_total {}", telemetry.unrouted());

    header(
        &mut out,
        "veer_route_weight",
        "gauge",
        "Percent of a route's unmatched traffic each pool receives now.",
    );
    for route in &snapshot.routes {
        for (pool, percent) in &route.weights.percent {
            let _ = writeln!(
                out,
                "veer_route_weight{{route=\"{}\",pool=\"{}\"}} {percent}",
                esc(&route.name),
                esc(pool)
            );
        }
    }

    header(
        &mut out,
        "veer_rollout_phase",
        "gauge",
        "1 for the current rollout phase of each route, 0 for the others.",
    );
    for route in &snapshot.routes {
        let current = phase(&route.name);
        for p in Phase::ALL {
            let _ = writeln!(
                out,
                "veer_rollout_phase{{route=\"{}\",phase=\"{p}\"}} {}",
                esc(&route.name),
                u8::from(p == current)
            );
        }
    }

    header(
        &mut out,
        "veer_endpoint_healthy",
        "gauge",
        "1 when an endpoint is in rotation, 0 when out.",
    );
    for pool in &snapshot.pools {
        for (ep, _, maintenance) in pool.members() {
            let _ = writeln!(
                out,
                "veer_endpoint_healthy{{pool=\"{}\",endpoint=\"{}\"}} {}",
                esc(&pool.name),
                esc(&ep.spec.authority),
                u8::from(ep.is_healthy() && !maintenance)
            );
        }
    }
    header(
        &mut out,
        "veer_endpoint_weight",
        "gauge",
        "Each endpoint's weight in its pool, labelled with where it came from (file, dns, api).",
    );
    for pool in &snapshot.pools {
        for (ep, placement, _) in pool.members() {
            let (p, e, s) = (
                esc(&pool.name),
                esc(&ep.spec.authority),
                placement.source.as_str(),
            );
            let w = placement.weight;
            let _ = writeln!(
                out,
                "veer_endpoint_weight{{pool=\"{p}\",endpoint=\"{e}\",source=\"{s}\"}} {w}"
            );
        }
    }
    header(
        &mut out,
        "veer_endpoint_maintenance",
        "gauge",
        "1 while an endpoint is in maintenance (kept out of rotation through the admin API).",
    );
    for pool in &snapshot.pools {
        for (ep, _, maintenance) in pool.members() {
            let (p, e) = (esc(&pool.name), esc(&ep.spec.authority));
            let m = u8::from(maintenance);
            let _ = writeln!(
                out,
                "veer_endpoint_maintenance{{pool=\"{p}\",endpoint=\"{e}\"}} {m}"
            );
        }
    }

    type Count = fn(&EndpointState) -> u64;
    let per_endpoint: [(&str, &str, Count); 2] = [
        ("veer_endpoint_requests_total", "Upstream attempts sent to each endpoint.", |e| e.counts().0),
        (
            "veer_endpoint_failures_total",
            "Failed upstream attempts (connect error, reset, 5xx), by the endpoint that produced them.",
            |e| e.counts().1,
        ),
    ];
    for (name, help, count) in per_endpoint {
        header(&mut out, name, "counter", help);
        for pool in &snapshot.pools {
            for (ep, _, _) in pool.members() {
                let (p, e) = (esc(&pool.name), esc(&ep.spec.authority));
                let _ = writeln!(out, "{name}{{pool=\"{p}\",endpoint=\"{e}\"}} {}", count(ep));
            }
        }
    }

    header(
        &mut out,
        "veer_config_reloads_total",
        "counter",
        "Config reloads, by result.",
    );
    let (ok, error) = telemetry.reloads();
    let _ = writeln!(out, "veer_config_reloads_total{{result=\"ok\"}} {ok}\nveer_config_reloads_total{{result=\"error\"}} {error}");
    telemetry.tls.render(&mut out, esc);
    render_shadow(&mut out, telemetry);
    out
}

/// `veer_dns_ok{pool}`: 1 when the pool's last DNS round answered with
/// endpoints, 0 while it fails or answers empty (pools with `dns`/`srv`).
pub fn render_dns(out: &mut String, snapshot: &Snapshot, routing: &crate::routing::Routing) {
    let reports: Vec<_> = snapshot
        .pools
        .iter()
        .filter_map(|p| Some((p.name.as_str(), routing.dns_report(&p.name)?)))
        .collect();
    if reports.is_empty() {
        return;
    }
    header(
        out,
        "veer_dns_ok",
        "gauge",
        "1 when a pool's last DNS lookup answered with endpoints, 0 while it fails or is empty.",
    );
    for (pool, report) in reports {
        let ok = u8::from(report.error.is_none());
        let _ = writeln!(out, "veer_dns_ok{{pool=\"{}\"}} {ok}", esc(pool));
    }
}

/// The drain metrics: `veer_drain_in_flight{pool}` for pools draining now
/// (requests, streaming bodies and tunnels still in flight) and
/// `veer_drain_cut_total{pool,kind}` (what drains and shutdown had to cut,
/// `kind` = `stream` or `tunnel`), for every pool that has drained.
pub fn render_drains(out: &mut String, drains: &Drains) {
    let DrainMetrics { in_flight, cut } = drains.metrics();
    header(
        out,
        "veer_drain_in_flight",
        "gauge",
        "Requests, streaming response bodies and tunnels in flight to a pool that is draining.",
    );
    for (pool, n) in in_flight {
        let _ = writeln!(out, "veer_drain_in_flight{{pool=\"{}\"}} {n}", esc(&pool));
    }
    header(
        out,
        "veer_drain_cut_total",
        "counter",
        "In-flight streams and tunnels a drain closed at drain_timeout (or shutdown at shutdown_grace).",
    );
    for (pool, c) in cut {
        let p = esc(&pool);
        let _ = writeln!(
            out,
            "veer_drain_cut_total{{pool=\"{p}\",kind=\"stream\"}} {}",
            c.streams
        );
        let _ = writeln!(
            out,
            "veer_drain_cut_total{{pool=\"{p}\",kind=\"tunnel\"}} {}",
            c.tunnels
        );
    }
}

/// `veer_shadow_requests_total{route,pool,result}` (SPEC §12), for every
/// route×pool that has mirrored.
fn render_shadow(out: &mut String, telemetry: &Telemetry) {
    let all = telemetry.shadow.all();
    if all.is_empty() {
        return;
    }
    header(
        out,
        "veer_shadow_requests_total",
        "counter",
        "Mirrored requests, by route, mirror pool and result (match, mismatch, dropped, error).",
    );
    for s in all {
        let snap = s.snapshot();
        let (r, p) = (esc(&s.route), esc(&s.pool));
        for (result, n) in [
            ("match", snap.matched),
            ("mismatch", snap.mismatched),
            ("dropped", snap.dropped),
            ("error", snap.errors),
        ] {
            let _ = writeln!(
                out,
                "veer_shadow_requests_total{{route=\"{r}\",pool=\"{p}\",result=\"{result}\"}} {n}"
            );
        }
    }
}
