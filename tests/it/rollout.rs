//! The rollout controller end to end: real upstreams, real load, the
//! proxy's own measurements deciding.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;
use veer::rollout::{Command, Phase};

/// Synthetic load: 4 clients, each bounded in count and time, tallying
/// (upstream, status) until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<HashMap<(String, u16), usize>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(url: String, headers: &'static [(&'static str, &'static str)]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Arc<Mutex<HashMap<(String, u16), usize>>> = Arc::default();
        let tasks = (0..4)
            .map(|_| {
                let (stop, seen, url) = (stop.clone(), seen.clone(), url.clone());
                tokio::spawn(async move {
                    let client = client();
                    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
                    for _ in 0..20_000 {
                        if stop.load(Ordering::Relaxed) || tokio::time::Instant::now() > deadline {
                            return;
                        }
                        let mut req = http::Request::get(&url);
                        for (k, v) in headers {
                            req = req.header(*k, *v);
                        }
                        let (status, h, _) = send(&client, req.body(empty()).unwrap()).await;
                        let who = h
                            .get("x-upstream")
                            .map_or("-".into(), |v| v.to_str().unwrap().to_string());
                        *seen
                            .lock()
                            .unwrap()
                            .entry((who, status.as_u16()))
                            .or_default() += 1;
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                })
            })
            .collect();
        Load { stop, seen, tasks }
    }

    async fn finish(self) -> HashMap<(String, u16), usize> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        Arc::try_unwrap(self.seen).unwrap().into_inner().unwrap()
    }
}

fn count(seen: &HashMap<(String, u16), usize>, who: &str, status: u16) -> usize {
    seen.get(&(who.to_string(), status)).copied().unwrap_or(0)
}

async fn wait_phase(proxy: &Proxy, route: &str, want: &[Phase], limit: Duration) -> Phase {
    let controller = &proxy.server.as_ref().unwrap().controller;
    let start = tokio::time::Instant::now();
    loop {
        let phase = Some(controller.phase(route));
        if let Some(phase) = phase.filter(|p| want.contains(p)) {
            return phase;
        }
        assert!(
            start.elapsed() < limit,
            "{route}: phase {phase:?}, wanted {want:?}; events {:#?}",
            controller.events.transitions()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn canary(blue: std::net::SocketAddr, green: std::net::SocketAddr, extra: &str) -> String {
    config(
        &[("blue", &[blue]), ("green", &[green])],
        &format!(
            "[[route]]\nname = \"app\"\npool = \"blue\"\nretries = 0\n[route.rollout]\nstrategy = \"canary\"\nsteps = [20, 50, 100]\ninterval = \"400ms\"\nthreshold = 2\n{extra}[route.rollout.analysis]\nmin_requests = 10\nsuccess_rate = 99.0\n"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_promotes_a_healthy_candidate() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let proxy = Proxy::start(&canary(blue.addr, green.addr, "")).await;
    let load = Load::start(proxy.url("/"), &[]);
    let controller = proxy.server.as_ref().unwrap().controller.clone();
    controller.start("app", "green", None).await.unwrap();
    wait_phase(&proxy, "app", &[Phase::Promoted], Duration::from_secs(15)).await;
    let seen = load.finish().await;
    assert_eq!(count(&seen, "blue", 500) + count(&seen, "green", 500), 0);
    assert!(count(&seen, "green", 200) > 0);
    let after = tally(&proxy.url("/"), 20, &[]).await;
    assert_eq!(
        after.get("green"),
        Some(&20),
        "promoted: all traffic on green"
    );
    let events = controller.events.transitions();
    let weights: Vec<u32> = events
        .iter()
        .filter_map(|e| {
            e.weights
                .iter()
                .flatten()
                .find(|(p, _)| p == "green")
                .map(|(_, w)| *w)
        })
        .collect();
    assert!(
        weights.windows(2).all(|w| w[0] <= w[1]),
        "weights only grow: {weights:?}"
    );
    assert!(
        weights.contains(&20) && weights.contains(&50) && weights.contains(&100),
        "{weights:?}"
    );
    assert!(
        events.iter().any(|e| e.verdict.is_some()),
        "verdicts are recorded"
    );
}

/// 20% errors: rolled back after `threshold` failed analyses; the errors
/// clients saw are bounded by what the first steps exposed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canary_rolls_back_a_failing_candidate() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::flaky("green", 5).await,
    );
    let proxy = Proxy::start(&canary(blue.addr, green.addr, "")).await;
    let load = Load::start(proxy.url("/"), &[]);
    let controller = proxy.server.as_ref().unwrap().controller.clone();
    controller.start("app", "green", None).await.unwrap();
    wait_phase(&proxy, "app", &[Phase::RolledBack], Duration::from_secs(15)).await;
    let seen = load.finish().await;
    let errors = count(&seen, "green", 500);
    let total: usize = seen.values().sum();
    assert!(errors > 0, "the candidate did serve some traffic");
    // At most two intervals at ≤ 50% of traffic with 20% failing: well
    // under 10% of all requests.
    assert!(errors * 10 < total, "{errors} errors of {total}");
    let after = tally(&proxy.url("/"), 20, &[]).await;
    assert_eq!(
        after.get("blue"),
        Some(&20),
        "rolled back: all traffic on blue"
    );
    let last = controller.view("app").unwrap();
    assert!(
        last.record.verdict.unwrap().reasons[0].contains("success rate"),
        "the failed bound is named"
    );
    // A rolled-back route does not retry by itself.
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(controller.phase("app").as_str(), "rolled-back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tripwire_rolls_back_before_the_interval_ends() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::flaky("green", 1).await,
    );
    let toml = canary(blue.addr, green.addr, "tripwire = 3\n")
        .replace("interval = \"400ms\"", "interval = \"30s\"");
    let proxy = Proxy::start(&toml).await;
    let load = Load::start(proxy.url("/"), &[]);
    let started = tokio::time::Instant::now();
    proxy
        .server
        .as_ref()
        .unwrap()
        .controller
        .start("app", "green", None)
        .await
        .unwrap();
    wait_phase(
        &proxy,
        "app",
        &[Phase::RollingBack, Phase::RolledBack],
        Duration::from_secs(10),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(10));
    let seen = load.finish().await;
    assert!(count(&seen, "green", 500) < 50, "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn low_traffic_is_inconclusive_and_never_promotes() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let toml =
        canary(blue.addr, green.addr, "").replace("min_requests = 10", "min_requests = 1000");
    let proxy = Proxy::start(&toml).await;
    let load = Load::start(proxy.url("/"), &[]);
    let controller = proxy.server.as_ref().unwrap().controller.clone();
    controller.start("app", "green", None).await.unwrap();
    // Several intervals pass: the weight stays at the first step.
    eventually(Duration::from_secs(10), || {
        controller
            .events
            .transitions()
            .iter()
            .filter(|e| e.message.starts_with("inconclusive"))
            .count()
            >= 3
    })
    .await;
    let view = controller.latest("app").unwrap();
    assert_eq!(
        (view.phase, view.traffic.candidate_weight),
        (Phase::Progressing, 20)
    );
    load.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_and_errors() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let toml =
        canary(blue.addr, green.addr, "").replace("interval = \"400ms\"", "interval = \"1h\"");
    let proxy = Proxy::start(&toml).await;
    let controller = proxy.server.as_ref().unwrap().controller.clone();
    assert!(controller.start("nope", "green", None).await.is_err());
    assert!(controller.start("app", "nope", None).await.is_err());
    assert!(
        controller.start("app", "blue", None).await.is_err(),
        "already serving blue"
    );
    assert!(
        controller.command("app", Command::Promote).await.is_err(),
        "no rollout yet"
    );
    controller.start("app", "green", None).await.unwrap();
    controller.command("app", Command::Pause).await.unwrap();
    assert_eq!(controller.phase("app").as_str(), "paused");
    controller.command("app", Command::Resume).await.unwrap();
    assert_eq!(controller.phase("app").as_str(), "progressing");
    controller.command("app", Command::Abort).await.unwrap();
    assert_eq!(controller.phase("app").as_str(), "rolled-back");
    assert_eq!(tally(&proxy.url("/"), 10, &[]).await.get("blue"), Some(&10));
    controller.start("app", "green", None).await.unwrap();
    controller.command("app", Command::Promote).await.unwrap();
    assert_eq!(controller.phase("app").as_str(), "promoted");
    assert_eq!(
        tally(&proxy.url("/"), 10, &[]).await.get("green"),
        Some(&10)
    );
}

/// A restart mid-canary resumes the same step and weights.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_resumes_mid_canary() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let toml =
        canary(blue.addr, green.addr, "").replace("interval = \"400ms\"", "interval = \"1h\"");
    let dir = temp_dir("restart");
    let proxy = Proxy::start_in(&toml, &dir).await;
    let controller = proxy.server.as_ref().unwrap().controller.clone();
    controller.start("app", "green", None).await.unwrap();
    let before = controller.latest("app").unwrap();
    assert_eq!(before.traffic.candidate_weight, 20);
    drop(proxy);

    let proxy = Proxy::start_in(&toml, &dir).await;
    let controller = proxy.server.as_ref().unwrap().controller.clone();
    let after = controller.latest("app").unwrap();
    assert_eq!(
        (after.phase, after.step, after.traffic.candidate_weight),
        (Phase::Progressing, 0, 20)
    );
    assert_eq!(
        after.since_ms, before.since_ms,
        "the remaining interval is kept"
    );
    let counts = tally(&proxy.url("/"), 400, &[]).await;
    let green = counts.get("green").copied().unwrap_or(0) as f64;
    assert!(
        (green - 80.0).abs() < 4.5 * (400.0f64 * 0.2 * 0.8).sqrt(),
        "{counts:?}"
    );
}

/// A stand-in Prometheus answering every instant query with `value`.
async fn fake_prometheus(value: &'static str) -> std::net::SocketAddr {
    use bytes::Bytes;
    use http_body_util::Full;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: http::Request<hyper::body::Incoming>| async move {
                        assert!(
                            req.uri().path() == "/api/v1/query"
                                && req.uri().query().unwrap().starts_with("query=")
                        );
                        let body = format!(
                            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{}},"value":[1700000000,"{value}"]}}]}}}}"#
                        );
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from(body),
                        )))
                    },
                );
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    });
    addr
}

/// The seed's go/no-go rule includes CPU, which only an external metric
/// knows: a Prometheus check over its bound rolls back a candidate whose
/// own traffic looks healthy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_check_over_its_bound_rolls_back() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let prometheus = fake_prometheus("0.93").await;
    let query = format!(
        "[[route.rollout.analysis.query]]\nname = \"cpu\"\nprometheus = \"http://{prometheus}\"\nquery = 'avg(rate(process_cpu_seconds_total{{pool=\"green\"}}[1m]))'\nmax = 0.8\n"
    );
    let proxy = Proxy::start(&(canary(blue.addr, green.addr, "") + &query)).await;
    let load = Load::start(proxy.url("/"), &[]);
    let controller = proxy.server.as_ref().unwrap().controller.clone();
    controller.start("app", "green", None).await.unwrap();
    wait_phase(&proxy, "app", &[Phase::RolledBack], Duration::from_secs(15)).await;
    load.finish().await;
    let verdict = controller.view("app").unwrap().record.verdict.unwrap();
    assert!(
        verdict
            .reasons
            .iter()
            .any(|r| r == "query cpu: 0.93 > max 0.8"),
        "{verdict:?}"
    );
    assert_eq!(
        verdict.candidate.failures, 0,
        "the candidate's own traffic was healthy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blue_green_preview_switch_and_rollback_within_the_window() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let rollout = "[route.rollout]\nstrategy = \"blue_green\"\ninterval = \"400ms\"\nthreshold = 1\nrollback_window = \"1h\"\nauto_promote = false\n[route.rollout.analysis]\nmin_requests = 10\nsuccess_rate = 99.0\n";
    let toml = config(
        &[("blue", &[blue.addr]), ("green", &[green.addr])],
        &format!("[[route]]\nname = \"app\"\npool = \"blue\"\n{rollout}"),
    );
    let proxy = Proxy::start(&toml).await;
    let preview_load = Load::start(proxy.url("/"), &[("x-veer-preview", "1")]);
    let controller = proxy.server.as_ref().unwrap().controller.clone();
    controller.start("app", "green", None).await.unwrap();
    // Preview: only requests with the header reach green.
    assert_eq!(tally(&proxy.url("/"), 20, &[]).await.get("blue"), Some(&20));
    assert_eq!(
        tally(&proxy.url("/"), 20, &[("x-veer-preview", "1")])
            .await
            .get("green"),
        Some(&20)
    );
    wait_phase(
        &proxy,
        "app",
        &[Phase::AwaitingPromotion],
        Duration::from_secs(10),
    )
    .await;
    preview_load.finish().await;
    controller.command("app", Command::Promote).await.unwrap();
    assert_eq!(
        tally(&proxy.url("/"), 20, &[]).await.get("green"),
        Some(&20),
        "one switch to 100%"
    );
    // Within the rollback window the stable pool is still there: instant rollback.
    controller.command("app", Command::Rollback).await.unwrap();
    assert_eq!(tally(&proxy.url("/"), 20, &[]).await.get("blue"), Some(&20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ab_test_only_exposes_matched_users() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let rollout = "[route.rollout]\nstrategy = \"ab_test\"\ninterval = \"1s\"\niterations = 2\nmatch = { headers = { \"x-group\" = \"b\" } }\n[route.rollout.analysis]\nmin_requests = 5\nsuccess_rate = 99.0\n";
    let toml = config(
        &[("blue", &[blue.addr]), ("green", &[green.addr])],
        &format!("[[route]]\nname = \"app\"\npool = \"blue\"\n{rollout}"),
    );
    let proxy = Proxy::start(&toml).await;
    let matched = Load::start(proxy.url("/"), &[("x-group", "b")]);
    let others = Load::start(proxy.url("/"), &[("x-group", "a")]);
    let controller = proxy.server.as_ref().unwrap().controller.clone();
    controller.start("app", "green", None).await.unwrap();
    // Promotion needs two passing 1 s intervals: while they run, only
    // matched users reach green.
    let unmatched = tally(&proxy.url("/"), 20, &[("x-group", "a")]).await;
    let matched_now = tally(&proxy.url("/"), 20, &[("x-group", "b")]).await;
    assert_eq!(
        controller.phase("app").as_str(),
        "progressing",
        "checked during the test phase"
    );
    assert_eq!(unmatched.get("blue"), Some(&20));
    assert_eq!(matched_now.get("green"), Some(&20));
    wait_phase(&proxy, "app", &[Phase::Promoted], Duration::from_secs(10)).await;
    let (matched, others) = (matched.finish().await, others.finish().await);
    assert!(count(&matched, "green", 200) > 0 && count(&others, "blue", 200) > 0);
    assert_eq!(
        tally(&proxy.url("/"), 20, &[("x-group", "a")])
            .await
            .get("green"),
        Some(&20)
    );
}

/// A candidate slower than the p95 bound rolls back even though it
/// answers every request successfully.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_candidate_fails_the_p95_bound() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    green
        .delay_ms
        .store(150, std::sync::atomic::Ordering::SeqCst);
    let toml = canary(blue.addr, green.addr, "")
        .replace("steps = [20, 50, 100]", "steps = [50, 100]")
        .replace(
            "success_rate = 99.0\n",
            "success_rate = 99.0\np95 = \"80ms\"\n",
        );
    let proxy = Proxy::start(&toml).await;
    let load = Load::start(proxy.url("/"), &[]);
    let controller = proxy.server.as_ref().unwrap().controller.clone();
    controller.start("app", "green", None).await.unwrap();
    wait_phase(&proxy, "app", &[Phase::RolledBack], Duration::from_secs(15)).await;
    let seen = load.finish().await;
    assert_eq!(count(&seen, "green", 500), 0, "no request failed");
    let verdict = controller.view("app").unwrap().record.verdict.unwrap();
    assert!(
        verdict
            .reasons
            .iter()
            .any(|r| r.starts_with("p95 ") && r.ends_with("> 80.0ms")),
        "{verdict:?}"
    );
}

/// Rolling: candidate endpoints join in batches, each only once healthy;
/// an endpoint that is not ready never gets a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_never_sends_to_an_unready_endpoint() {
    let (b1, b2) = (Upstream::start("b1").await, Upstream::start("b2").await);
    let (g1, g2) = (Upstream::start("g1").await, Upstream::start("g2").await);
    g2.ready.store(false, std::sync::atomic::Ordering::SeqCst);
    let health = "[pool.health]\npath = \"/ready\"\ninterval = \"50ms\"\ntimeout = \"1s\"\n";
    let toml = format!(
        "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:0\"\n{}{}[[route]]\nname = \"app\"\npool = \"blue\"\nretries = 0\n[route.rollout]\nstrategy = \"rolling\"\ninterval = \"1h\"\nmax_surge = 1\nready_timeout = \"20s\"\n",
        pool_toml("blue", &[b1.addr, b2.addr], &format!("balance = \"round_robin\"\n{health}")),
        pool_toml("green", &[g1.addr, g2.addr], &format!("balance = \"round_robin\"\n{health}")),
    );
    let proxy = Proxy::start(&toml).await;
    // Stable's endpoints serve once their first check passes.
    eventually(Duration::from_secs(10), || {
        [b1.addr, b2.addr]
            .iter()
            .all(|a| endpoint(&proxy, "blue", *a).is_healthy())
    })
    .await;
    let load = Load::start(proxy.url("/"), &[]);
    let controller = proxy.server.as_ref().unwrap().controller.clone();
    controller.start("app", "green", None).await.unwrap();
    // Batch 1 (g1) becomes ready and serves; batch 2 (g2) waits for health.
    eventually(Duration::from_secs(10), || !g1.requests().is_empty()).await;
    let view = controller.latest("app").unwrap();
    assert_eq!(
        (view.phase, view.traffic.candidate_endpoints),
        (Phase::Progressing, Some(2)),
        "{view:?}"
    );
    assert!(view.traffic.candidate_weight > 0 && view.traffic.candidate_weight < 100);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        g2.requests().is_empty(),
        "the unready endpoint got traffic: {:?}",
        g2.requests()
    );
    g2.ready.store(true, std::sync::atomic::Ordering::SeqCst);
    wait_phase(&proxy, "app", &[Phase::Promoted], Duration::from_secs(10)).await;
    let seen = load.finish().await;
    assert!(seen.keys().all(|(_, status)| *status == 200), "{seen:?}");
    let after = tally(&proxy.url("/"), 20, &[]).await;
    assert_eq!(
        after.get("g1").unwrap_or(&0) + after.get("g2").unwrap_or(&0),
        20,
        "{after:?}"
    );
}

/// Recreate with `hold`: stable drained at once, requests in the gap wait
/// for the candidate to come up, and none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreate_with_hold_loses_no_request() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    green
        .ready
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let health = "[pool.health]\npath = \"/ready\"\ninterval = \"50ms\"\ntimeout = \"1s\"\n";
    let toml = format!(
        "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:0\"\n{}{}[[route]]\nname = \"app\"\npool = \"blue\"\nretries = 0\ntimeout = \"10s\"\n[route.rollout]\nstrategy = \"recreate\"\nhold = \"5s\"\nready_timeout = \"20s\"\n",
        pool_toml("blue", &[blue.addr], ""),
        pool_toml("green", &[green.addr], health),
    );
    let proxy = Proxy::start(&toml).await;
    let load = Load::start(proxy.url("/"), &[]);
    let controller = proxy.server.as_ref().unwrap().controller.clone();
    eventually(Duration::from_secs(5), || blue.requests().len() > 20).await;
    controller.start("app", "green", None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        controller.phase("app").as_str(),
        "progressing",
        "waiting for a healthy candidate"
    );
    green.ready.store(true, std::sync::atomic::Ordering::SeqCst);
    wait_phase(&proxy, "app", &[Phase::Promoted], Duration::from_secs(10)).await;
    eventually(Duration::from_secs(5), || green.requests().len() > 20).await;
    let seen = load.finish().await;
    assert!(
        seen.keys().all(|(_, status)| *status == 200),
        "a request failed: {seen:?}"
    );
    assert!(count(&seen, "green", 200) > 0 && count(&seen, "blue", 200) > 0);
}

/// A confirm-promotion gate holds the rollout until its URL answers 2xx;
/// every transition is also POSTed to the `event` webhook.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirm_promotion_gate_holds_until_2xx() {
    use std::sync::atomic::AtomicBool;
    let open = Arc::new(AtomicBool::new(false));
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let hook = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (open, received) = (open.clone(), received.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (open, received) = (open.clone(), received.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: http::Request<hyper::body::Incoming>| {
                            let (open, received) = (open.clone(), received.clone());
                            async move {
                                use http_body_util::BodyExt;
                                let path = req.uri().path().to_string();
                                let body = req.into_body().collect().await.unwrap().to_bytes();
                                let json: serde_json::Value =
                                    serde_json::from_slice(&body).unwrap();
                                received
                                    .lock()
                                    .unwrap()
                                    .push(format!("{path} {} {}", json["event"], json["phase"]));
                                let status = if path == "/gate" && !open.load(Ordering::SeqCst) {
                                    403
                                } else {
                                    200
                                };
                                let resp = http::Response::builder()
                                    .status(status)
                                    .body(http_body_util::Empty::<bytes::Bytes>::new());
                                Ok::<_, std::convert::Infallible>(resp.unwrap())
                            }
                        },
                    );
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                });
            }
        });
        addr
    };
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let hooks = format!(
        "[[route.rollout.webhook]]\non = \"confirm-promotion\"\nurl = \"http://{hook}/gate\"\n[[route.rollout.webhook]]\non = \"event\"\nurl = \"http://{hook}/event\"\n"
    );
    let toml = canary(blue.addr, green.addr, "")
        .replace("steps = [20, 50, 100]", "steps = [50, 100]")
        + &hooks;
    let proxy = Proxy::start(&toml).await;
    let load = Load::start(proxy.url("/"), &[]);
    let controller = proxy.server.as_ref().unwrap().controller.clone();
    controller.start("app", "green", None).await.unwrap();
    wait_phase(
        &proxy,
        "app",
        &[Phase::AwaitingPromotion],
        Duration::from_secs(10),
    )
    .await;
    // The gate refuses: the rollout holds at its last step, asking again each interval.
    eventually(Duration::from_secs(10), || {
        received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.starts_with("/gate"))
            .count()
            >= 2
    })
    .await;
    assert_eq!(controller.phase("app").as_str(), "awaiting-promotion");
    open.store(true, Ordering::SeqCst);
    wait_phase(&proxy, "app", &[Phase::Promoted], Duration::from_secs(10)).await;
    load.finish().await;
    // The event webhook is called off the controller task: wait for it.
    eventually(Duration::from_secs(5), || {
        received
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.starts_with("/event") && r.ends_with("\"promoted\""))
    })
    .await;
    let received = received.lock().unwrap().clone();
    assert!(
        received
            .iter()
            .any(|r| r.starts_with("/gate \"confirm-promotion\"")),
        "{received:?}"
    );
    assert!(
        received
            .iter()
            .any(|r| r.starts_with("/event") && r.ends_with("\"promoted\"")),
        "{received:?}"
    );
}
