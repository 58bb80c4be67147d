//! A pool's endpoints through the admin API (SPEC §13): register (health
//! gated), list with source, maintenance, remove (drained), bad input,
//! persistence across restarts and reloads, weights; and replacing every
//! endpoint of a pool under load without a failed request.

use std::net::SocketAddr;
use std::time::Duration;

use http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::admin::*;
use crate::support::load::Load;
use crate::support::*;

const WAIT: Duration = Duration::from_secs(20);
const CHECKS: &str = "[pool.health]\npath = \"/ready\"\ninterval = \"50ms\"\ntimeout = \"500ms\"\n\
                      healthy_threshold = 1\nunhealthy_threshold = 2\n";

/// Pool `app` with `endpoints` (TOML list), health checks, route `app`.
fn app(endpoints: &str) -> String {
    format!(
        "[proxy]\nstate_dir = \"state\"\nheader_timeout = \"2s\"\nidle_timeout = \"5s\"\n\
         drain_timeout = \"5s\"\n\n\
         [[listener]]\nname = \"public\"\nlisten = \"127.0.0.1:0\"\n\n\
         [[pool]]\nname = \"app\"\nendpoints = [{endpoints}]\n{CHECKS}\n\
         [[route]]\nname = \"app\"\npool = \"app\"\n"
    )
}

const BASE: &str = "/api/v1/pools/app/endpoints";

async fn list(veer: &Veer) -> Vec<Value> {
    let (code, body) = veer.api(Method::GET, BASE, None, None).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body["endpoints"].as_array().unwrap().clone()
}

fn find(list: &[Value], addr: SocketAddr) -> Option<Value> {
    let addr = addr.to_string();
    list.iter().find(|e| e["address"] == json!(addr)).cloned()
}

async fn add(veer: &Veer, addr: SocketAddr, weight: u32) -> Value {
    let body = json!({ "address": addr.to_string(), "weight": weight }).to_string();
    let path = format!("{BASE}?wait=15s");
    let (code, answer) = veer.api(Method::POST, &path, Some(&body), None).await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    answer
}

async fn call(veer: &Veer, method: Method, addr: SocketAddr, body: Option<&str>) -> Value {
    let path = format!("{BASE}/{addr}");
    let (code, answer) = veer.api(method, &path, body, None).await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    answer
}

#[tokio::test]
async fn register_list_maintenance_remove_and_refusals() {
    let dir = TempDir::new("endpoints-api");
    let (file, api) = (Upstream::start("file").await, Upstream::start("api").await);
    api.ready.store(false, std::sync::atomic::Ordering::SeqCst);
    let veer = Veer::start(&dir, &app(&format!("\"{}\"", file.addr)), None).await;

    // Registered, but out of rotation until a health check passes.
    let body = json!({ "address": api.addr.to_string(), "weight": 2 }).to_string();
    let (code, answer) = veer.api(Method::POST, BASE, Some(&body), None).await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    let entry = find(&list(&veer).await, api.addr).unwrap();
    assert_eq!(
        (&entry["source"], &entry["weight"], &entry["healthy"]),
        (&json!("api"), &json!(2), &json!(false))
    );
    assert_eq!(
        find(&list(&veer).await, file.addr).unwrap()["source"],
        json!("file")
    );
    let counts = tally(&veer.url("/"), 20, &[]).await;
    assert_eq!(counts.get("api"), None, "{counts:?}");
    api.ready.store(true, std::sync::atomic::Ordering::SeqCst);
    until(WAIT, "api endpoint healthy", || async {
        find(&list(&veer).await, api.addr).unwrap()["healthy"] == json!(true)
    })
    .await;
    // Expected 100 vs 50; the bound is over four standard deviations away.
    let counts = tally(&veer.url("/"), 150, &[]).await;
    assert!(counts["api"] > 75, "weight 2 vs 1: {counts:?}");

    // Status and metrics say where each endpoint came from.
    let status = veer.status().await;
    let pool = &status["pools"][0]["endpoints"];
    assert!(
        pool.as_array()
            .unwrap()
            .iter()
            .any(|e| e["source"] == json!("api")),
        "{pool}"
    );
    let (_, metrics) = raw_get(&veer.admin_url("/metrics")).await.unwrap();
    let line = format!(
        "veer_endpoint_weight{{pool=\"app\",endpoint=\"{}\",source=\"api\"}} 2",
        api.addr
    );
    assert!(metrics.contains(&line), "{metrics}");

    // Maintenance: drained and out of rotation, still listed; then back.
    call(
        &veer,
        Method::PUT,
        file.addr,
        Some(r#"{"maintenance": true}"#),
    )
    .await;
    let entry = find(&list(&veer).await, file.addr).unwrap();
    assert_eq!(
        (&entry["maintenance"], &entry["healthy"]),
        (&json!(true), &json!(false))
    );
    let counts = tally(&veer.url("/"), 20, &[]).await;
    assert_eq!(counts.get("file"), None, "{counts:?}");
    let drain = format!("/api/v1/pools/app/drain?endpoint={}&wait=10s", file.addr);
    let (code, report) = veer.api(Method::GET, &drain, None, None).await;
    assert_eq!(
        (code, &report["state"]),
        (StatusCode::OK, &json!("drained")),
        "{report}"
    );
    call(
        &veer,
        Method::PUT,
        file.addr,
        Some(r#"{"maintenance": false}"#),
    )
    .await;
    until(WAIT, "file endpoint back", || async {
        find(&list(&veer).await, file.addr).unwrap()["healthy"] == json!(true)
    })
    .await;

    // Refusals say why.
    let refusals: [(Method, String, Option<&str>, StatusCode, &str); 6] = [
        (
            Method::POST,
            BASE.into(),
            Some(r#"{"address": "10.0.0.1"}"#),
            StatusCode::BAD_REQUEST,
            "host:port",
        ),
        (
            Method::POST,
            BASE.into(),
            Some(r#"{"address": "a:1", "weight": 0}"#),
            StatusCode::BAD_REQUEST,
            "weight",
        ),
        (
            Method::POST,
            "/api/v1/pools/nope/endpoints".into(),
            Some(r#"{"address": "a:1"}"#),
            StatusCode::NOT_FOUND,
            "unknown pool",
        ),
        (
            Method::DELETE,
            format!("{BASE}/{}", file.addr),
            None,
            StatusCode::CONFLICT,
            "config file",
        ),
        (
            Method::DELETE,
            format!("{BASE}/127.0.0.1:9"),
            None,
            StatusCode::NOT_FOUND,
            "no endpoint",
        ),
        (
            Method::PUT,
            format!("{BASE}/{}", file.addr),
            Some("{}"),
            StatusCode::BAD_REQUEST,
            "maintenance",
        ),
    ];
    for (method, path, body, want, says) in refusals {
        let (code, answer) = veer.api(method, &path, body, None).await;
        assert_eq!(code, want, "{path}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains(says), "{path}: {error}");
    }

    // Removed: leaves the pool, drains (the `drained` event says so).
    call(&veer, Method::DELETE, api.addr, None).await;
    assert_eq!(find(&list(&veer).await, api.addr), None);
    until(WAIT, "drained event", || async {
        let (_, events) = veer.api(Method::GET, "/api/v1/events", None, None).await;
        let text = events.to_string();
        text.contains(&format!("endpoint {} of pool app drained", api.addr))
    })
    .await;
    veer.stop().await;
}

#[tokio::test]
async fn registrations_survive_restarts_and_reloads() {
    let dir = TempDir::new("endpoints-persist");
    let (one, two, three) = (
        Upstream::start("one").await,
        Upstream::start("two").await,
        Upstream::start("three").await,
    );
    let veer = Veer::start(&dir, &app(&format!("\"{}\"", one.addr)), None).await;
    let answer = add(&veer, two.addr, 3).await;
    assert_eq!(answer["healthy"], json!(true), "{answer}");
    call(
        &veer,
        Method::PUT,
        one.addr,
        Some(r#"{"maintenance": true}"#),
    )
    .await;
    veer.stop().await;

    // A restart: the registration and the maintenance are back.
    let veer = Veer::start_at(&dir.path().join("veer.toml"), None).await;
    let entry = find(&list(&veer).await, two.addr).expect("restored");
    assert_eq!(
        (&entry["source"], &entry["weight"]),
        (&json!("api"), &json!(3))
    );
    assert_eq!(
        find(&list(&veer).await, one.addr).unwrap()["maintenance"],
        json!(true)
    );

    // A reload replaces the file's list; the registration stays.
    replace_file(&veer.config_path, &app(&format!("\"{}\"", three.addr)));
    let (code, body) = veer.api(Method::POST, "/api/v1/reload", None, None).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let now = list(&veer).await;
    assert!(find(&now, one.addr).is_none(), "{now:?}");
    assert_eq!(find(&now, three.addr).unwrap()["source"], json!("file"));
    assert_eq!(find(&now, two.addr).unwrap()["source"], json!("api"));
    veer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_every_endpoint_through_the_api_under_load_fails_nothing() {
    let dir = TempDir::new("endpoints-replace");
    let ups = [
        Upstream::start("a1").await,
        Upstream::start("a2").await,
        Upstream::start("b1").await,
        Upstream::start("b2").await,
    ];
    let veer = Veer::start(&dir, &app(""), None).await;
    for up in &ups[..2] {
        assert_eq!(add(&veer, up.addr, 1).await["healthy"], json!(true));
    }
    let load = Load::start(&veer.url("/"), 4);
    load.wait_for(200).await;

    // The deploy script: add the new VMs, each once healthy; then remove
    // the old ones and wait until they are drained.
    let started = tokio::time::Instant::now();
    for up in &ups[2..] {
        assert_eq!(add(&veer, up.addr, 1).await["healthy"], json!(true));
    }
    load.wait_for(200).await;
    for up in &ups[..2] {
        call(&veer, Method::DELETE, up.addr, None).await;
    }
    for up in &ups[..2] {
        let drain = format!("/api/v1/pools/app/drain?endpoint={}&wait=15s", up.addr);
        let (code, report) = veer.api(Method::GET, &drain, None, None).await;
        assert_eq!(
            (code, &report["state"]),
            (StatusCode::OK, &json!("drained")),
            "{report}"
        );
    }
    load.wait_for(200).await;
    let took = started.elapsed();
    let (ok, failed, errors) = load.stop().await;
    eprintln!("replaced 2 endpoints through the API in {took:?}: {ok} ok, {failed} failed");
    assert_eq!(failed, 0, "{errors:?}");
    let names: Vec<String> = list(&veer)
        .await
        .iter()
        .map(|e| e["address"].to_string())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(!ups[2].requests().is_empty() && !ups[3].requests().is_empty());
    veer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_adds_drains_and_removes() {
    let dir = TempDir::new("endpoints-cli");
    let (file, api, down) = (
        Upstream::start("file").await,
        Upstream::start("api").await,
        Upstream::start("down").await,
    );
    down.ready.store(false, std::sync::atomic::Ordering::SeqCst);
    let veer = Veer::start(&dir, &app(&format!("\"{}\"", file.addr)), None).await;
    let admin = format!("http://{}", veer.admin);
    let run = |args: &[&str]| {
        let run = crate::support::stream::veer_cli(admin.clone(), args, Duration::from_secs(30));
        async move { run.await.unwrap() }
    };
    let (a, d, f) = (
        api.addr.to_string(),
        down.addr.to_string(),
        file.addr.to_string(),
    );

    let out = run(&[
        "endpoints",
        "app",
        "add",
        &a,
        "--weight",
        "3",
        "--wait",
        "15s",
    ])
    .await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with(&format!("{a}: added\n")), "{out:?}");
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{a} ")))
        .unwrap()
        .to_string();
    let cells: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cells[1..4], ["api", "3", "yes"], "{line}");

    // Never healthy: exit 2 after --wait, registered all the same.
    let out = run(&["endpoints", "app", "add", &d, "--wait", "1s"]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(out.stderr.contains("not healthy within 1s"), "{out:?}");

    let out = run(&["endpoints", "app", "drain", &f]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("in maintenance"), "{out:?}");
    let out = run(&["endpoints", "app"]).await;
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&f))
        .unwrap()
        .to_string();
    assert!(
        line.contains("file") && line.contains("maintenance"),
        "{line}"
    );
    let out = run(&["endpoints", "app", "undrain", &f]).await;
    assert_eq!(out.code, Some(0), "{out:?}");

    let out = run(&["endpoints", "app", "remove", &d]).await;
    assert_eq!(out.code, Some(0), "{out:?}");
    let listed = out.stdout.lines().skip(1).any(|l| l.starts_with(&d));
    assert!(!listed, "{out:?}");
    let out = run(&["endpoints", "app", "remove", &f]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("409") && out.stderr.contains("config file"),
        "{out:?}"
    );
    let out = run(&["endpoints", "app", "add", "10.0.0.1"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("400") && out.stderr.contains("host:port"),
        "{out:?}"
    );
    veer.stop().await;
}
