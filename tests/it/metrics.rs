//! Per route×pool measurements after known traffic, their Prometheus
//! exposition (checked by promtool when installed), and analysis windows.

use std::time::Duration;

use crate::support::*;
use veer::admin::metrics::render;
use veer::observe::{StatsSnapshot, Window};

fn stats(proxy: &Proxy, route: &str, pool: &str) -> StatsSnapshot {
    let all = proxy.server.as_ref().unwrap().telemetry.all();
    let s = all
        .iter()
        .find(|s| s.route == route && s.pool == pool)
        .expect("stats exist");
    s.snapshot()
}

/// Counts settle when the response body has been sent; wait for them.
async fn settled(proxy: &Proxy, route: &str, pool: &str, responses: u64) -> StatsSnapshot {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let snap = stats(proxy, route, pool);
        if snap.codes.iter().sum::<u64>() >= responses || tokio::time::Instant::now() > deadline {
            return snap;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn counts_and_classes_after_known_traffic() {
    let up = Upstream::start("up").await;
    let dead = dead_addr().await;
    let extra = "[[route]]\nname = \"app\"\npool = \"app\"\ntimeout = \"300ms\"\nretries = 0\n\
                 [[route]]\nname = \"down\"\npath_prefix = \"/down\"\npool = \"dead\"\nretries = 0\n";
    let proxy = Proxy::start(&config(&[("app", &[up.addr]), ("dead", &[dead])], extra)).await;
    for _ in 0..10 {
        assert_eq!(get(&proxy.url("/"), &[]).await.0, 200);
    }
    for _ in 0..3 {
        assert_eq!(get(&proxy.url("/status/404"), &[]).await.0, 404);
    }
    for _ in 0..2 {
        assert_eq!(get(&proxy.url("/status/503"), &[]).await.0, 503);
    }
    assert_eq!(get(&proxy.url("/sleep/2000"), &[]).await.0, 504);
    assert_eq!(get(&proxy.url("/down"), &[]).await.0, 502);

    let app = settled(&proxy, "app", "app", 16).await;
    assert_eq!(app.codes, [0, 10, 0, 3, 3]);
    assert_eq!(app.attempts, 16);
    // 2 upstream 503s and 1 timeout fail; 404s do not.
    assert_eq!(app.failures, 3);
    assert_eq!(app.upstream_errors, [0, 1, 0, 0]);
    let down = settled(&proxy, "down", "dead", 1).await;
    assert_eq!(
        (down.codes[4], down.failures, down.upstream_errors[0]),
        (1, 1, 1)
    );
    assert_eq!(down.in_flight, 0);
}

/// A failure a retry hid from the client still counts against the pool.
#[tokio::test]
async fn hidden_failures_are_attributed() {
    let up = Upstream::start("up").await;
    let dead = dead_addr().await;
    let toml = format!(
        "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:0\"\n[[pool]]\nname = \"p\"\nendpoints = [\"{dead}\", \"{}\"]\nbalance = \"round_robin\"\n[[route]]\nname = \"r\"\npool = \"p\"\nretries = 1\n",
        up.addr
    );
    let proxy = Proxy::start(&toml).await;
    for _ in 0..10 {
        assert_eq!(get(&proxy.url("/"), &[]).await.0, 200);
    }
    let snap = settled(&proxy, "r", "p", 10).await;
    assert_eq!(snap.codes[1], 10, "the client saw only successes");
    // Round robin sends first attempts to the dead endpoint; each failure
    // is counted, and every request then succeeded on the live one.
    let hidden = snap.upstream_errors[0];
    assert!(hidden >= 1, "{snap:?}");
    assert_eq!((snap.attempts, snap.failures), (10 + hidden, hidden));
    // And against the endpoint that produced them.
    assert_eq!(endpoint(&proxy, "p", dead).counts(), (hidden, hidden));
    assert_eq!(endpoint(&proxy, "p", up.addr).counts(), (10, 0));
    let text = proxy.server.as_ref().unwrap().metrics();
    let line = format!("veer_endpoint_failures_total{{pool=\"p\",endpoint=\"{dead}\"}} {hidden}");
    assert!(text.contains(&line), "{text}");
}

#[tokio::test]
async fn grpc_status_in_trailers_or_headers_is_a_failure() {
    let up = Upstream::start("up").await;
    let proxy = Proxy::start(&config(
        &[("app", &[up.addr])],
        "[[route]]\nname = \"app\"\npool = \"app\"\n",
    ))
    .await;
    let te = [("te", "trailers")];
    assert_eq!(get(&proxy.url("/grpc/0"), &te).await.0, 200);
    assert_eq!(get(&proxy.url("/grpc/13"), &te).await.0, 200);
    assert_eq!(get(&proxy.url("/grpc-header/14"), &[]).await.0, 200);
    assert_eq!(get(&proxy.url("/grpc-header/0"), &[]).await.0, 200);
    let snap = settled(&proxy, "app", "app", 4).await;
    assert_eq!((snap.attempts, snap.failures), (4, 2));
}

#[tokio::test]
async fn latency_window_quantiles() {
    let up = Upstream::start("up").await;
    let proxy = Proxy::start(&config(
        &[("app", &[up.addr])],
        "[[route]]\nname = \"app\"\npool = \"app\"\n",
    ))
    .await;
    let before = stats(&proxy, "app", "app");
    // 18 fast requests and 2 of 300 ms: p50 is fast, p99 is slow.
    for _ in 0..18 {
        get(&proxy.url("/"), &[]).await;
    }
    for _ in 0..2 {
        get(&proxy.url("/sleep/300"), &[]).await;
    }
    let after = settled(&proxy, "app", "app", 20).await;
    let w = Window::between(&before, &after);
    assert_eq!((w.requests, w.failures, w.success_rate), (20, 0, 100.0));
    assert!(w.p50.unwrap() < Duration::from_millis(100), "{w:?}");
    let p99 = w.p99.unwrap();
    assert!(
        p99 >= Duration::from_millis(300) && p99 < Duration::from_millis(400),
        "{w:?}"
    );
}

#[tokio::test]
async fn exposition_has_every_metric_and_passes_promtool() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let extra = "[[route]]\nname = \"app\"\npool = \"blue\"\nweights = { blue = 90, green = 10 }\n";
    let proxy = Proxy::start(&config(
        &[("blue", &[blue.addr]), ("green", &[green.addr])],
        extra,
    ))
    .await;
    tally(&proxy.url("/"), 50, &[]).await;
    get(&proxy.url("/status/500"), &[]).await;
    let text = render(
        &proxy.server.as_ref().unwrap().telemetry,
        &proxy.routing().load(),
        |_| veer::rollout::Phase::Idle,
    );
    for name in [
        "veer_requests_total{route=\"app\",pool=\"blue\",version=\"\",code=\"2xx\"}",
        "veer_request_duration_seconds_bucket{",
        "veer_request_duration_seconds_sum{",
        "veer_upstream_errors_total{route=\"app\",pool=\"blue\",kind=\"connect\"} 0",
        "veer_in_flight{route=\"app\",pool=\"blue\"}",
        "veer_route_weight{route=\"app\",pool=\"green\"} 10",
        "veer_rollout_phase{route=\"app\",phase=\"idle\"} 1",
        "veer_endpoint_healthy{pool=\"blue\",endpoint=",
        "veer_config_reloads_total{result=\"error\"} 0",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
    promtool_check(&text);
}

/// Runs `promtool check metrics` on the text when promtool is installed
/// (CI installs it; `CI=true` makes its absence a failure).
pub fn promtool_check(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(_) if std::env::var("CI").is_err() => {
            eprintln!("promtool not installed: exposition not checked");
            return;
        }
        Err(e) => panic!("promtool is required in CI: {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool rejected the exposition:\n{report}"
    );
    assert!(report.trim().is_empty(), "promtool warnings:\n{report}");
}
