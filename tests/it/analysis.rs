//! `compare = "sequential"` end to end: real upstreams, paced load, the
//! proxy's own counters; and `veer plan` against a live instance.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::admin::*;
use crate::support::*;
use veer::rollout::{Outcome, Phase};

/// One client sending `per_second` requests a second until dropped.
struct Paced(Arc<AtomicBool>);

impl Paced {
    fn start(url: String, per_second: u64) -> Paced {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        tokio::spawn(async move {
            let client = client();
            let mut tick = tokio::time::interval(Duration::from_millis(1000 / per_second));
            while !s.load(Ordering::Relaxed) {
                tick.tick().await;
                let req = http::Request::get(&url).body(empty()).unwrap();
                let _ = send(&client, req).await;
            }
        });
        Paced(stop)
    }
}

impl Drop for Paced {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

fn canary(blue: std::net::SocketAddr, green: std::net::SocketAddr, analysis: &str) -> String {
    config(
        &[("blue", &[blue]), ("green", &[green])],
        &format!(
            "[[route]]\nname = \"app\"\npool = \"blue\"\nretries = 0\n[route.rollout]\nstrategy = \"canary\"\nsteps = [20, 50, 100]\ninterval = \"1s\"\nthreshold = 2\n[route.rollout.analysis]\n{analysis}"
        ),
    )
}

async fn until_phase(proxy: &Proxy, want: &[Phase], limit: Duration) -> Option<Duration> {
    let controller = &proxy.server.as_ref().unwrap().controller;
    let began = tokio::time::Instant::now();
    while began.elapsed() < limit {
        if want.contains(&controller.phase("app")) {
            return Some(began.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// At 5 requests a second, 20% to the candidate: one candidate request a
/// second. A candidate failing 1 request in 20 passes fixed bounds that
/// accept one request as enough evidence, on noise; the sequential tests
/// never pass it, and say how much more traffic and time they need.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_requests_a_second_never_promote_on_noise() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::flaky("green", 20).await,
    );
    let fixed = "min_requests = 1\nsuccess_rate = 99.0\n";
    let proxy = Proxy::start(&canary(blue.addr, green.addr, fixed)).await;
    let _load = Paced::start(proxy.url("/"), 5);
    let controller = proxy.server.as_ref().unwrap().controller.clone();
    controller.start("app", "green", None).await.unwrap();
    let promoted = until_phase(&proxy, &[Phase::Promoted], Duration::from_secs(15)).await;
    assert!(
        promoted.is_some(),
        "fixed bounds promote on one request an interval"
    );

    let sequential = "min_requests = 1\ncompare = \"sequential\"\n";
    let proxy = Proxy::start(&canary(blue.addr, green.addr, sequential)).await;
    let _load = Paced::start(proxy.url("/"), 5);
    let controller = proxy.server.as_ref().unwrap().controller.clone();
    controller.start("app", "green", None).await.unwrap();
    let moved = until_phase(&proxy, &[Phase::Promoted], Duration::from_secs(6)).await;
    assert_eq!(moved, None, "no promotion on noise");
    let view = controller.latest("app").unwrap();
    assert_eq!(view.traffic.candidate_weight, 20, "the first step holds");
    let verdict = controller.view("app").unwrap().record.verdict.unwrap();
    let seq = verdict.sequential.expect("sequential figures");
    assert_eq!(seq.outcome, Outcome::Inconclusive, "{:?}", verdict.reasons);
    let (n, secs) = (seq.needs_requests.unwrap(), seq.needs_seconds.unwrap());
    // About one candidate request a second (at most 5 in any second):
    // the time follows the count.
    assert!(n >= 50 && secs >= n as f64 / 6.0, "{n} requests, {secs} s");
    println!("{}", verdict.reasons.join("\n"));
    assert!(
        verdict.reasons.iter().any(|r| r.starts_with("needs about")),
        "{:?}",
        verdict.reasons
    );
}

/// Same traffic (20 requests a second, 20% to a candidate failing every
/// request), same config but `compare`: fixed bounds need `threshold` (2)
/// failed intervals; the sequential tests fail within the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_candidate_fails_sooner_than_with_fixed_bounds() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::flaky("green", 1).await,
    );
    let mut took = Vec::new();
    for compare in ["fixed", "sequential"] {
        let analysis = format!("min_requests = 3\nsuccess_rate = 99.0\ncompare = \"{compare}\"\n");
        let toml = canary(blue.addr, green.addr, &analysis).replace("\"1s\"", "\"2s\"");
        let proxy = Proxy::start(&toml).await;
        let _load = Paced::start(proxy.url("/"), 20);
        let controller = proxy.server.as_ref().unwrap().controller.clone();
        controller.start("app", "green", None).await.unwrap();
        let back = [Phase::RollingBack, Phase::RolledBack];
        let t = until_phase(&proxy, &back, Duration::from_secs(20)).await;
        took.push(t.unwrap_or_else(|| panic!("{compare}: no rollback")));
    }
    println!(
        "time to roll back: fixed {:?}, sequential {:?}",
        took[0], took[1]
    );
    assert!(took[0] >= Duration::from_secs(4), "fixed {:?}", took[0]);
    assert!(took[1] < took[0], "{took:?}");
}

/// `veer ARGS` against `admin`, without a token.
async fn veer_cli(admin: &str, args: &[&str]) -> (bool, String, String) {
    crate::cli::veer_cli(admin, None, args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn veer_plan_previews_a_rollout() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let rollout =
        "[route.rollout]\nstrategy = \"canary\"\nsteps = [5, 25, 50, 100]\ninterval = \"1m\"\n\
                   max_duration = \"30m\"\n[route.rollout.analysis]\nmin_requests = 50\n";
    let dir = TempDir::new("plan");
    let veer = Veer::start(
        &dir,
        &two_pools(blue.addr, green.addr, "blue", rollout),
        None,
    )
    .await;
    let admin = format!("http://{}", veer.admin);

    let (ok, out, err) = veer_cli(&admin, &["plan", "app", "green", "--rate", "5"]).await;
    assert!(ok, "{err}");
    println!("{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "plan for app: blue -> green: canary every 1m, analysis fixed"
    );
    assert_eq!(
        lines[1],
        "traffic: 5.00 req/s on the route, stable failing 0.00%"
    );
    assert!(
        lines[2].starts_with("STEP  WEIGHT  CANDIDATE REQ/INTERVAL"),
        "{out}"
    );
    // 5% of 5 req/s for a minute: 15 candidate requests, below 50.
    let step1: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(step1, ["1", "5%", "15.0", "never", "-"], "{out}");
    assert!(
        out.contains("earliest promotion: never at this traffic"),
        "{out}"
    );
    assert!(
        out.contains("warning: step 1 (5%) gets about 15 candidate requests per interval, below min_requests 50"),
        "{out}"
    );

    // At 100 req/s every step passes in one interval.
    let (ok, out, err) = veer_cli(&admin, &["plan", "app", "green", "--rate", "100"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("earliest promotion: after 3m ("), "{out}");
    assert!(!out.contains("warning"), "{out}");

    // Sequential analysis at 5 req/s: slower than max_duration allows.
    let (ok, out, err) = veer_cli(&admin, &["plan", "app", "green", "--rate", "5", "--json"]).await;
    assert!(ok, "{err}");
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["candidate"], "green");
    assert_eq!(answer["preview"]["steps"][1]["candidate_requests"], 75.0);

    let (ok, out, err) = veer_cli(
        &admin,
        &["plan", "app", "green", "--strategy", "blue_green"],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        out.contains("note: blue_green: the candidate gets only requests with x-veer-preview"),
        "{out}"
    );

    let (ok, _, err) = veer_cli(&admin, &["plan", "nope", "green"]).await;
    assert!(!ok && err.contains("unknown route \"nope\""), "{err}");
    let (ok, _, err) = veer_cli(&admin, &["plan", "app"]).await;
    assert!(!ok && err.contains("name the pool"), "{err}");
    veer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn veer_plan_warns_when_sequential_analysis_outlasts_max_duration() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let rollout = "[route.rollout]\nstrategy = \"canary\"\nsteps = [5, 25, 50, 100]\ninterval = \"1m\"\n\
                   max_duration = \"30m\"\non_timeout = \"hold\"\n[route.rollout.analysis]\ncompare = \"sequential\"\n";
    let dir = TempDir::new("plan-seq");
    let veer = Veer::start(
        &dir,
        &two_pools(blue.addr, green.addr, "blue", rollout),
        None,
    )
    .await;
    let admin = format!("http://{}", veer.admin);
    let (ok, out, err) = veer_cli(&admin, &["plan", "app", "green", "--rate", "5"]).await;
    assert!(ok, "{err}");
    println!("{out}");
    assert!(out.contains("analysis sequential (95% confidence"), "{out}");
    assert!(
        out.contains("note: the sequential tests pass a candidate as good as stable after about"),
        "{out}"
    );
    assert!(
        out.contains("but max_duration is 30m: the rollout would hold"),
        "{out}"
    );
    veer.stop().await;
}

/// A daily UTC window from an hour ago to two hours ahead.
fn freeze_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let hhmm = |t: u64| format!("{:02}:{:02}", (t / 3600) % 24, (t / 60) % 60);
    format!("{}-{} UTC", hhmm(now - 3600), hhmm(now + 7200))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freeze_defers_a_rollout_and_status_says_until_when() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let window = freeze_now();
    let extra = format!("[route.rollout]\nstrategy = \"canary\"\nfreeze = [\"{window}\"]\n");
    let dir = TempDir::new("freeze");
    let veer = Veer::start(
        &dir,
        &two_pools(blue.addr, green.addr, "blue", &extra),
        None,
    )
    .await;
    let admin = format!("http://{}", veer.admin);
    let (ok, out, err) = veer_cli(&admin, &["rollout", "app", "green"]).await;
    assert!(ok, "{err}");
    assert_eq!(out, "app: green=0 blue=100 (phase idle)\n");
    let status = veer.status().await;
    let route = &status["routes"][0];
    assert_eq!(route["freeze"]["window"], window.as_str());
    let until = route["freeze"]["until_ms"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        until > now + 3_600_000 && until <= now + 7_260_000,
        "{route}"
    );
    let (ok, out, err) = veer_cli(&admin, &["status"]).await;
    assert!(ok, "{err}");
    let line = format!("app: deployment freeze ({window}): next allowed ");
    assert!(out.contains(&line), "{out}");
    // Nothing reaches green while frozen.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(who(&veer.url("/")).await, "blue");
    veer.stop().await;
}
