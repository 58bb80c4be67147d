//! A controller operators can trust, end to end: a whole veer with real
//! upstreams, driven through the admin API and config reloads. Each test
//! checks what clients received (no request to a candidate that should
//! have none, no 5xx from a dead pool) and what status and events say.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::admin::*;
use crate::support::*;
use http::Method;
use serde_json::Value;

const WITHIN: Duration = Duration::from_secs(15);

/// A canary of `steps` every `interval`, judged on 10 requests at 99%.
fn canary(steps: &str, interval: &str, extra: &str) -> String {
    format!(
        "[route.rollout]\nstrategy = \"canary\"\nsteps = [{steps}]\ninterval = \"{interval}\"\nthreshold = 1\n{extra}\
         [route.rollout.analysis]\nmin_requests = 10\nsuccess_rate = 99.0\n"
    )
}

async fn post(veer: &Veer, route: &str, action: &str, body: Option<&str>) -> (u16, Value) {
    let path = format!("/api/v1/routes/{route}/{action}");
    let method = if action == "weights" {
        Method::PUT
    } else {
        Method::POST
    };
    let (code, json) = veer.api(method, &path, body, None).await;
    (code.as_u16(), json)
}

async fn route(veer: &Veer) -> Value {
    veer.status().await["routes"][0].clone()
}

async fn wait_phase(veer: &Veer, phase: &str) -> Value {
    let start = tokio::time::Instant::now();
    loop {
        let r = route(veer).await;
        if r["phase"] == phase {
            return r;
        }
        assert!(start.elapsed() < WITHIN, "phase {phase} not reached: {r}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn events(veer: &Veer) -> Vec<Value> {
    let (_, json) = veer.api(Method::GET, "/api/v1/events", None, None).await;
    json["events"].as_array().unwrap().clone()
}

/// Background load for the analysis to judge, stopped on drop.
struct Background(tokio::task::JoinHandle<()>);

impl Background {
    fn start(url: String) -> Background {
        Background(tokio::spawn(async move {
            let client = client();
            for _ in 0..20_000 {
                let req = http::Request::get(&url).body(empty()).unwrap();
                let _ = send(&client, req).await;
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        }))
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Item 1: after a rollback, pause and resume leave stable serving; a
/// command that does not apply is a 409; promote and abort racing: one wins.
#[tokio::test]
async fn commands_outside_a_rollout_never_move_traffic() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::flaky("green", 2).await,
    );
    let dir = TempDir::new("commands");
    let toml = two_pools(
        blue.addr,
        green.addr,
        "blue",
        &canary("20, 100", "300ms", ""),
    );
    let veer = Veer::start(&dir, &toml, None).await;
    let bg = Background::start(veer.url("/"));
    assert_eq!(
        post(&veer, "app", "rollout", Some(r#"{"pool":"green"}"#))
            .await
            .0,
        200
    );
    wait_phase(&veer, "rolled-back").await;
    drop(bg);
    let before = green.requests().len();
    for action in ["pause", "resume"] {
        let (code, json) = post(&veer, "app", action, None).await;
        assert_eq!(code, 200, "{json}");
        let r = &json["route"];
        assert_eq!(r["weights"]["blue"], 100, "{action}: {r}");
        assert_eq!(r["paused"], r["phase"] == "paused");
        let seen = outcomes(&veer.url("/"), 30, &[]).await;
        assert_eq!(
            seen.get(&("blue".into(), 200)),
            Some(&30),
            "{action}: {seen:?}"
        );
    }
    assert_eq!(
        green.requests().len(),
        before,
        "the failed candidate got no request"
    );
    for action in ["promote", "abort", "resume"] {
        let (code, json) = post(&veer, "app", action, None).await;
        assert_eq!(code, 409, "{action}: {json}");
        assert!(
            json["error"].as_str().unwrap().starts_with(action),
            "{json}"
        );
    }

    // A new rollout; promote and abort at once: exactly one wins.
    green.flaky.store(0, Ordering::SeqCst);
    assert_eq!(
        post(&veer, "app", "rollout", Some(r#"{"pool":"green"}"#))
            .await
            .0,
        200
    );
    let (a, b) = tokio::join!(
        post(&veer, "app", "promote", None),
        post(&veer, "app", "abort", None)
    );
    assert!((a.0 == 200) != (b.0 == 200), "{a:?} {b:?}");
    assert!([a.0, b.0].contains(&409));
    veer.stop().await;
}

/// Item 2: a reload that does not touch the route keeps the operator's
/// weights on a paused rollout.
#[tokio::test]
async fn a_reload_keeps_manual_weights_on_a_paused_rollout() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("reload-manual");
    let rollout = canary("10, 100", "1h", "");
    let path = dir.path().join("veer.toml");
    std::fs::write(&path, two_pools(blue.addr, green.addr, "blue", &rollout)).unwrap();
    let veer = Veer::start_with(&path, None, false).await;
    assert_eq!(
        post(&veer, "app", "rollout", Some(r#"{"pool":"green"}"#))
            .await
            .0,
        200
    );
    let (code, _) = post(&veer, "app", "weights", Some(r#"{"blue":30,"green":70}"#)).await;
    assert_eq!(code, 200);
    let other = format!(
        "{rollout}[[route]]\nname = \"other\"\npath_prefix = \"/other\"\npool = \"blue\"\n"
    );
    replace_file(&path, &two_pools(blue.addr, green.addr, "blue", &other));
    assert_eq!(
        veer.api(Method::POST, "/api/v1/reload", None, None).await.0,
        200
    );
    let r = route(&veer).await;
    assert_eq!(
        (r["phase"].as_str(), r["paused"].as_bool()),
        (Some("paused"), Some(true))
    );
    assert_eq!(
        (r["manual"].as_bool(), r["weights"]["green"].as_u64()),
        (Some(true), Some(70))
    );
    let seen = outcomes(&veer.url("/"), 1000, &[]).await;
    let g = *seen.get(&("green".into(), 200)).unwrap_or(&0) as f64;
    let sd = (1000.0f64 * 0.7 * 0.3).sqrt();
    assert!((g - 700.0).abs() < 4.5 * sd, "green {g} of 1000");
    veer.stop().await;
}

/// Item 3: steps changed mid-canary apply from the current weight: the
/// next is the first new step above it, and sticky users never flip.
#[tokio::test]
async fn changed_steps_apply_from_the_current_weight() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("steps");
    let sticky = "[route.sticky]\ncookie = \"session\"\n";
    let path = dir.path().join("veer.toml");
    let file = |steps: &str| {
        two_pools(
            blue.addr,
            green.addr,
            "blue",
            &format!("{sticky}{}", canary(steps, "500ms", "")),
        )
    };
    std::fs::write(&path, file("10, 50, 90, 100")).unwrap();
    let veer = Veer::start_with(&path, None, false).await;
    let bg = Background::start(veer.url("/"));
    assert_eq!(
        post(&veer, "app", "rollout", Some(r#"{"pool":"green"}"#))
            .await
            .0,
        200
    );
    until(WITHIN, "weight 50", || async {
        route(&veer).await["weights"]["green"] == 50
    })
    .await;
    assert_eq!(post(&veer, "app", "pause", None).await.0, 200);
    let users = |n: usize| {
        (0..n)
            .map(|i| format!("session=user{i}"))
            .collect::<Vec<_>>()
    };
    let mut on_green = Vec::new();
    for cookie in users(200) {
        let (_, h, _) = get(&veer.url("/"), &[("cookie", &cookie)]).await;
        if h["x-upstream"] == "green" {
            on_green.push(cookie);
        }
    }
    replace_file(&path, &file("20, 40, 60, 100"));
    assert_eq!(
        veer.api(Method::POST, "/api/v1/reload", None, None).await.0,
        200
    );
    assert_eq!(
        route(&veer).await["weights"]["green"],
        50,
        "the reload moved nothing"
    );
    assert_eq!(post(&veer, "app", "resume", None).await.0, 200);
    until(WITHIN, "next step", || async {
        route(&veer).await["weights"]["green"] != 50
    })
    .await;
    assert_eq!(route(&veer).await["weights"]["green"], 60);
    drop(bg);
    for cookie in &on_green {
        let (_, h, _) = get(&veer.url("/"), &[("cookie", cookie.as_str())]).await;
        assert_eq!(h["x-upstream"], "green", "{cookie} flipped back to stable");
    }
    veer.stop().await;
}

/// Item 4: a rollout whose candidate pool leaves the config is aborted at
/// once, traffic on stable; promote is then refused.
#[tokio::test]
async fn a_rollout_whose_candidate_pool_leaves_is_aborted() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("pool-gone");
    let rollout = canary("20, 100", "1h", "");
    let path = dir.path().join("veer.toml");
    std::fs::write(&path, two_pools(blue.addr, green.addr, "blue", &rollout)).unwrap();
    let veer = Veer::start_with(&path, None, false).await;
    assert_eq!(
        post(&veer, "app", "rollout", Some(r#"{"pool":"green"}"#))
            .await
            .0,
        200
    );
    assert_eq!(route(&veer).await["weights"]["green"], 20);
    let without = two_pools(blue.addr, green.addr, "blue", &rollout).replace(
        &format!(
            "[[pool]]\nname = \"green\"\nversion = \"2.0\"\nendpoints = [\"{}\"]\n\n",
            green.addr
        ),
        "",
    );
    replace_file(&path, &without);
    assert_eq!(
        veer.api(Method::POST, "/api/v1/reload", None, None).await.0,
        200
    );
    let r = route(&veer).await;
    assert_eq!(
        (r["phase"].as_str(), r["weights"]["blue"].as_u64()),
        (Some("rolled-back"), Some(100)),
        "{r}"
    );
    assert_eq!(r["weights"].as_object().unwrap().len(), 1, "{r}");
    let seen = outcomes(&veer.url("/"), 30, &[]).await;
    assert_eq!(seen.get(&("blue".into(), 200)), Some(&30), "{seen:?}");
    assert!(events(&veer)
        .await
        .iter()
        .any(|e| e["kind"] == "rollout-ended"));
    assert_eq!(post(&veer, "app", "promote", None).await.0, 409);
    veer.stop().await;
}

/// Item 5: a canary to a pool with no healthy endpoint sends it no user,
/// waits `ready_timeout`, then fails; rolling needs `[pool.health]`.
#[tokio::test]
async fn readiness_comes_before_weight() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    green.ready.store(false, Ordering::SeqCst);
    let dir = TempDir::new("ready");
    let health = "[pool.health]\npath = \"/ready\"\ninterval = \"50ms\"\n";
    let toml = two_pools(
        blue.addr,
        green.addr,
        "blue",
        &canary("20, 100", "300ms", "ready_timeout = \"1s\"\n"),
    )
    .replace(
        &format!("endpoints = [\"{}\"]\n", green.addr),
        &format!("endpoints = [\"{}\"]\n{health}", green.addr),
    );
    let veer = Veer::start(&dir, &toml, None).await;
    assert_eq!(
        post(&veer, "app", "rollout", Some(r#"{"pool":"green"}"#))
            .await
            .0,
        200
    );
    let r = route(&veer).await;
    assert_eq!(
        (r["phase"].as_str(), r["weights"]["green"].as_u64()),
        (Some("progressing"), Some(0))
    );
    let seen = outcomes(&veer.url("/"), 40, &[]).await;
    assert_eq!(seen.get(&("blue".into(), 200)), Some(&40), "{seen:?}");
    wait_phase(&veer, "rolled-back").await;
    assert!(green.requests().is_empty(), "{:?}", green.requests());
    let last = events(&veer)
        .await
        .into_iter()
        .rev()
        .find(|e| e["kind"] == "transition")
        .unwrap();
    assert!(
        last["message"].as_str().unwrap().contains("ready_timeout"),
        "{last}"
    );
    veer.stop().await;
    // Rolling to a pool without health checks: refused, by the API and by check.
    let dir = TempDir::new("ready-rolling");
    let plain = two_pools(blue.addr, green.addr, "blue", &canary("20, 100", "1h", ""));
    let veer = Veer::start(&dir, &plain, None).await;
    let body = r#"{"pool":"green","strategy":"rolling"}"#;
    let (code, json) = post(&veer, "app", "rollout", Some(body)).await;
    assert_eq!(code, 409, "{json}");
    assert!(
        json["error"].as_str().unwrap().contains("[pool.health]"),
        "{json}"
    );
    veer.stop().await;
    let rolling = two_pools(
        blue.addr,
        green.addr,
        "green",
        "[route.rollout]\nstrategy = \"rolling\"\n",
    );
    let err = veer::config::parse(&rolling, std::path::Path::new("veer.toml")).unwrap_err();
    assert!(err.to_string().contains("needs [pool.health]"), "{err}");
}

/// Item 6: a paused canary whose candidate fails is rolled back by the
/// tripwire.
#[tokio::test]
async fn safety_never_sleeps_while_paused() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("tripwire");
    let toml = two_pools(
        blue.addr,
        green.addr,
        "blue",
        &canary("50, 100", "1h", "tripwire = 5\n"),
    )
    .replace("name = \"app\"\n", "name = \"app\"\nretries = 0\n");
    let veer = Veer::start(&dir, &toml, None).await;
    assert_eq!(
        post(&veer, "app", "rollout", Some(r#"{"pool":"green"}"#))
            .await
            .0,
        200
    );
    assert_eq!(post(&veer, "app", "pause", None).await.0, 200);
    green.failing.store(true, Ordering::SeqCst);
    let bg = Background::start(veer.url("/"));
    let r = wait_phase(&veer, "rolled-back").await;
    drop(bg);
    assert_eq!(r["weights"]["blue"], 100);
    let seen = outcomes(&veer.url("/"), 30, &[]).await;
    assert_eq!(seen.get(&("blue".into(), 200)), Some(&30), "{seen:?}");
    veer.stop().await;
}

/// Item 7: a route removed ends its rollout; re-added, it starts clean.
#[tokio::test]
async fn a_route_that_leaves_and_comes_back_starts_clean() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("route-gone");
    let path = dir.path().join("veer.toml");
    let with = two_pools(blue.addr, green.addr, "blue", &canary("20, 100", "1h", ""));
    std::fs::write(&path, &with).unwrap();
    let veer = Veer::start_with(&path, None, false).await;
    assert_eq!(
        post(&veer, "app", "rollout", Some(r#"{"pool":"green"}"#))
            .await
            .0,
        200
    );
    let other = with.replace("name = \"app\"", "name = \"web\"");
    replace_file(&path, &other);
    assert_eq!(
        veer.api(Method::POST, "/api/v1/reload", None, None).await.0,
        200
    );
    let ended = events(&veer).await;
    assert!(
        ended
            .iter()
            .any(|e| e["kind"] == "rollout-ended" && e["route"] == "app"),
        "{ended:?}"
    );
    replace_file(&path, &with);
    assert_eq!(
        veer.api(Method::POST, "/api/v1/reload", None, None).await.0,
        200
    );
    let status = veer.status().await;
    let app = status["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "app")
        .unwrap()
        .clone();
    assert_eq!(
        (app["phase"].as_str(), app["weights"]["blue"].as_u64()),
        (Some("idle"), Some(100)),
        "{app}"
    );
    let seen = outcomes(&veer.url("/"), 30, &[]).await;
    assert_eq!(seen.get(&("blue".into(), 200)), Some(&30), "{seen:?}");
    veer.stop().await;
}

/// Item 8: after a blue-green switch, analysis runs once per interval
/// (not every tick).
#[tokio::test]
async fn analysis_runs_once_per_interval_after_the_switch() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("interval");
    let rollout = "[route.rollout]\nstrategy = \"blue_green\"\ninterval = \"500ms\"\nrollback_window = \"1h\"\n\
                   [route.rollout.analysis]\nmin_requests = 5\nsuccess_rate = 99.0\n";
    let veer = Veer::start(
        &dir,
        &two_pools(blue.addr, green.addr, "blue", rollout),
        None,
    )
    .await;
    let bg = Background::start(veer.url("/"));
    let preview = veer.url("/");
    let previews =
        tokio::spawn(async move { outcomes(&preview, 200, &[("x-veer-preview", "1")]).await });
    assert_eq!(
        post(&veer, "app", "rollout", Some(r#"{"pool":"green"}"#))
            .await
            .0,
        200
    );
    wait_phase(&veer, "promoted").await;
    let _ = previews.await;
    let judged = |events: &[Value]| events.iter().filter(|e| !e["verdict"].is_null()).count();
    let before = judged(&events(&veer).await);
    let start = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let elapsed = start.elapsed().as_secs_f64();
    drop(bg);
    let after = judged(&events(&veer).await) - before;
    let most = (elapsed / 0.5).ceil() as usize + 1;
    assert!(
        after <= most,
        "{after} verdicts in {elapsed:.1}s of 500ms intervals"
    );
    veer.stop().await;
}

/// Item 9: starting a rollout while one runs is a 409, and so is a
/// rollout to the stable pool (never recorded as promoted).
#[tokio::test]
async fn a_second_rollout_or_one_to_stable_is_refused() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("second");
    let veer = Veer::start(
        &dir,
        &two_pools(blue.addr, green.addr, "blue", &canary("20, 100", "1h", "")),
        None,
    )
    .await;
    let (code, json) = post(&veer, "app", "rollout", Some(r#"{"pool":"blue"}"#)).await;
    assert_eq!(code, 409, "{json}");
    assert_eq!(
        post(&veer, "app", "rollout", Some(r#"{"pool":"green"}"#))
            .await
            .0,
        200
    );
    for pool in ["green", "blue"] {
        let (code, json) = post(
            &veer,
            "app",
            "rollout",
            Some(&format!(r#"{{"pool":"{pool}"}}"#)),
        )
        .await;
        assert_eq!(code, 409, "{json}");
        assert!(
            json["error"].as_str().unwrap().contains("in progress"),
            "{json}"
        );
    }
    let r = route(&veer).await;
    assert_eq!(
        (r["phase"].as_str(), r["weights"]["green"].as_u64()),
        (Some("progressing"), Some(20))
    );
    assert!(!events(&veer).await.iter().any(|e| e["phase"] == "promoted"));
    veer.stop().await;
}

/// Item 10: recreate's held requests go to stable when the rollout rolls
/// back, and wait at most `hold`.
#[tokio::test]
async fn held_requests_go_to_stable_when_recreate_rolls_back() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    green.ready.store(false, Ordering::SeqCst);
    let dir = TempDir::new("hold");
    let health = "[pool.health]\npath = \"/ready\"\ninterval = \"50ms\"\n";
    let rollout =
        "[route.rollout]\nstrategy = \"recreate\"\nhold = \"5s\"\nready_timeout = \"1s\"\n";
    let toml = two_pools(blue.addr, green.addr, "blue", rollout).replace(
        &format!("endpoints = [\"{}\"]\n", green.addr),
        &format!("endpoints = [\"{}\"]\n{health}", green.addr),
    );
    let veer = Veer::start(&dir, &toml, None).await;
    assert_eq!(
        post(&veer, "app", "rollout", Some(r#"{"pool":"green"}"#))
            .await
            .0,
        200
    );
    let url = veer.url("/");
    let held: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let start = tokio::time::Instant::now();
                let (status, h, _) = get(&url, &[]).await;
                (
                    status.as_u16(),
                    h.get("x-upstream").map(|v| v.to_str().unwrap().to_string()),
                    start.elapsed(),
                )
            })
        })
        .collect();
    for task in held {
        let (status, who, took) = task.await.unwrap();
        assert_eq!(
            (status, who.as_deref()),
            (200, Some("blue")),
            "took {took:?}"
        );
        assert!(took < Duration::from_secs(5), "held {took:?}");
    }
    wait_phase(&veer, "rolled-back").await;
    veer.stop().await;
}

/// Item 11: a lost rollout fails closed to the last known stable pool;
/// ab_test with no matching traffic fails after `max_duration`.
#[tokio::test]
async fn lost_state_fails_closed_and_ab_test_ends() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("lost");
    let path = dir.path().join("veer.toml");
    let toml = two_pools(blue.addr, green.addr, "blue", &canary("20, 100", "1h", ""));
    std::fs::write(&path, &toml).unwrap();
    let veer = Veer::start_with(&path, None, false).await;
    replace_file(
        &path,
        &toml.replace(
            "pool = \"blue\"\n[route.rollout]",
            "pool = \"green\"\n[route.rollout]",
        ),
    );
    assert_eq!(
        veer.api(Method::POST, "/api/v1/reload", None, None).await.0,
        200
    );
    let r = route(&veer).await;
    assert_eq!(
        (r["weights"]["green"].as_u64(), r["stable"].as_str()),
        (Some(20), Some("blue")),
        "{r}"
    );
    veer.stop().await;
    let state = dir.path().join("state/control.json");
    let mut saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    saved["routes"]["app"]["rollout"] = serde_json::json!({"phase": "garbled"});
    std::fs::write(&state, saved.to_string()).unwrap();
    let veer = Veer::start_with(&path, None, false).await;
    let seen = outcomes(&veer.url("/"), 30, &[]).await;
    let why = (events(&veer).await, veer.status().await);
    assert_eq!(
        seen.get(&("blue".into(), 200)),
        Some(&30),
        "{seen:?} {why:#?}"
    );
    let reported = events(&veer).await;
    assert!(
        reported.iter().any(
            |e| e["kind"] == "state-error" && e["message"].as_str().unwrap().contains("stable")
        ),
        "{reported:?}"
    );
    veer.stop().await;

    let ab = "[route.rollout]\nstrategy = \"ab_test\"\ninterval = \"200ms\"\niterations = 2\nmax_duration = \"1s\"\n\
              match = { headers = { \"x-group\" = \"b\" } }\n[route.rollout.analysis]\nmin_requests = 5\n";
    let dir = TempDir::new("ab");
    let veer = Veer::start(&dir, &two_pools(blue.addr, green.addr, "blue", ab), None).await;
    assert_eq!(
        post(&veer, "app", "rollout", Some(r#"{"pool":"green"}"#))
            .await
            .0,
        200
    );
    let r = wait_phase(&veer, "rolled-back").await;
    assert_eq!(r["weights"]["blue"], 100);
    veer.stop().await;
}

/// Item 12: `paused` agrees with the phase, a new rollout starts without
/// the previous verdict, and a refusing gate is an event of its own.
#[tokio::test]
async fn status_tells_the_truth() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let gate =
        raw_upstream(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
    let dir = TempDir::new("truth");
    let hook = format!("[[route.rollout.webhook]]\non = \"confirm-promotion\"\nurl = \"http://{gate}/gate\"\nretries = 0\n");
    let veer = Veer::start(
        &dir,
        &two_pools(
            blue.addr,
            green.addr,
            "blue",
            &canary("50, 100", "300ms", &hook),
        ),
        None,
    )
    .await;
    let bg = Background::start(veer.url("/"));
    let agree = |r: &Value| assert_eq!(r["paused"], r["phase"] == "paused", "{r}");
    assert_eq!(
        post(&veer, "app", "rollout", Some(r#"{"pool":"green"}"#))
            .await
            .0,
        200
    );
    agree(&route(&veer).await);
    let (_, json) = post(&veer, "app", "pause", None).await;
    agree(&json["route"]);
    let (_, json) = post(&veer, "app", "resume", None).await;
    agree(&json["route"]);
    let r = wait_phase(&veer, "awaiting-promotion").await;
    agree(&r);
    assert!(!r["verdict"].is_null());
    until(WITHIN, "a gate event", || async {
        events(&veer)
            .await
            .iter()
            .any(|e| e["kind"] == "gate" && e["message"].as_str().unwrap().contains("403"))
    })
    .await;
    assert_eq!(post(&veer, "app", "abort", None).await.0, 200);
    agree(&route(&veer).await);
    drop(bg);
    let (_, json) = post(&veer, "app", "rollout", Some(r#"{"pool":"green"}"#)).await;
    assert!(json["route"]["verdict"].is_null(), "{json}");
    agree(&json["route"]);
    veer.stop().await;
}
