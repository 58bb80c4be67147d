//! Hot reload against a live veer: by rename, in-place write, Kubernetes
//! symlink swap and the API; invalid configs kept out; overrides held
//! until the file changes the same field; listeners added and removed
//! without dropping connections.

use std::time::Duration;

use crate::support::admin::*;
use crate::support::*;
use http::{Method, StatusCode};

const WITHIN: Duration = Duration::from_secs(10);

async fn serves(veer: &Veer, pool: &str) {
    let url = veer.url("/");
    until(WITHIN, &format!("serving {pool}"), || {
        let url = url.clone();
        async move { who(&url).await == pool }
    })
    .await;
}

#[tokio::test]
async fn reload_by_rename_and_in_place_write() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("rename");
    let veer = Veer::start(&dir, &two_pools(blue.addr, green.addr, "blue", ""), None).await;
    assert_eq!(who(&veer.url("/")).await, "blue");
    replace_file(
        &veer.config_path,
        &two_pools(blue.addr, green.addr, "green", ""),
    );
    serves(&veer, "green").await;
    std::fs::write(
        &veer.config_path,
        two_pools(blue.addr, green.addr, "blue", ""),
    )
    .unwrap();
    serves(&veer, "blue").await;
    let status = veer.status().await;
    assert_eq!(status["reloads"]["ok"], 2, "{status}");
    assert_eq!(status["reloads"]["error"], 0);
    veer.stop().await;
}

#[tokio::test]
async fn reload_by_kubernetes_symlink_swap() {
    use std::os::unix::fs::symlink;
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("k8s");
    let root = dir.path();
    // The ConfigMap layout: veer.toml -> ..data/veer.toml, ..data -> ..v1.
    std::fs::create_dir(root.join("..v1")).unwrap();
    std::fs::write(
        root.join("..v1/veer.toml"),
        two_pools(blue.addr, green.addr, "blue", ""),
    )
    .unwrap();
    symlink("..v1", root.join("..data")).unwrap();
    symlink("..data/veer.toml", root.join("veer.toml")).unwrap();
    let veer = Veer::start_at(&root.join("veer.toml"), None).await;
    assert_eq!(who(&veer.url("/")).await, "blue");

    std::fs::create_dir(root.join("..v2")).unwrap();
    std::fs::write(
        root.join("..v2/veer.toml"),
        two_pools(blue.addr, green.addr, "green", ""),
    )
    .unwrap();
    symlink("..v2", root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    std::fs::remove_dir_all(root.join("..v1")).unwrap();
    serves(&veer, "green").await;
    veer.stop().await;
}

#[tokio::test]
async fn invalid_config_is_kept_out_and_reported() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("invalid");
    let path = dir.path().join("veer.toml");
    std::fs::write(&path, two_pools(blue.addr, green.addr, "blue", "")).unwrap();
    let veer = Veer::start_with(&path, None, false).await;

    let bad = two_pools(
        blue.addr,
        green.addr,
        "green",
        "weights = { blue = 50, green = 40 }\n",
    );
    replace_file(&path, &bad);
    let (code, json) = veer.api(Method::POST, "/api/v1/reload", None, None).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    let error = json["error"].as_str().unwrap();
    assert!(
        error.contains("veer.toml:") && error.contains("weights"),
        "{error}"
    );
    for _ in 0..5 {
        assert_eq!(
            who(&veer.url("/")).await,
            "blue",
            "old config keeps serving"
        );
    }
    let (_, _, metrics) = get(&veer.admin_url("/metrics"), &[]).await;
    assert!(
        metrics.contains("veer_config_reloads_total{result=\"error\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("veer_config_reloads_total{result=\"ok\"} 0"),
        "{metrics}"
    );
    let (_, events) = veer.api(Method::GET, "/api/v1/events", None, None).await;
    let last = events["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "reload-error", "{last}");

    replace_file(&path, "this is = not [toml");
    let (code, _) = veer.api(Method::POST, "/api/v1/reload", None, None).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    std::fs::remove_file(&path).unwrap();
    let (code, json) = veer.api(Method::POST, "/api/v1/reload", None, None).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        json["error"].as_str().unwrap().contains("cannot read"),
        "{json}"
    );

    replace_file(&path, &two_pools(blue.addr, green.addr, "green", ""));
    let (code, json) = veer.api(Method::POST, "/api/v1/reload", None, None).await;
    assert_eq!(code, StatusCode::OK, "{json}");
    assert_eq!(
        who(&veer.url("/")).await,
        "green",
        "effective on the next request"
    );
    let status = veer.status().await;
    assert_eq!(status["reloads"]["error"], 3);
    assert_eq!(status["reloads"]["ok"], 1);
    veer.stop().await;
}

#[tokio::test]
async fn manual_weights_hold_until_the_file_changes_them() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("override");
    let path = dir.path().join("veer.toml");
    std::fs::write(&path, two_pools(blue.addr, green.addr, "blue", "")).unwrap();
    let veer = Veer::start_with(&path, None, false).await;
    let put = veer
        .api(
            Method::PUT,
            "/api/v1/routes/app/weights",
            Some(r#"{"green":100}"#),
            None,
        )
        .await;
    assert_eq!(put.0, 200);
    // A reload that changes another field keeps the override.
    replace_file(
        &path,
        &two_pools(blue.addr, green.addr, "blue", "timeout = \"5s\"\n"),
    );
    assert_eq!(
        veer.api(Method::POST, "/api/v1/reload", None, None).await.0,
        200
    );
    assert_eq!(who(&veer.url("/")).await, "green");
    // One that changes the route's weights drops it.
    let fixed = "weights = { blue = 100, green = 0 }\n";
    replace_file(&path, &two_pools(blue.addr, green.addr, "blue", fixed));
    assert_eq!(
        veer.api(Method::POST, "/api/v1/reload", None, None).await.0,
        200
    );
    assert_eq!(who(&veer.url("/")).await, "blue");
    let status = veer.status().await;
    assert_eq!(status["routes"][0]["manual"], false);
    assert_eq!(status["routes"][0]["phase"], "idle");
    let (_, events) = veer.api(Method::GET, "/api/v1/events", None, None).await;
    assert!(events["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "override-dropped"));
    veer.stop().await;
}

#[tokio::test]
async fn listener_changes_keep_existing_connections() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("listeners");
    let path = dir.path().join("veer.toml");
    std::fs::write(&path, two_pools(blue.addr, green.addr, "blue", "")).unwrap();
    let veer = Veer::start_with(&path, None, false).await;
    let mut kept = KeepAlive::open(veer.addr).await;
    assert_eq!(kept.get("/").await, (200, "blue".to_string()));

    let port = free_port();
    let second = format!("[[listener]]\nname = \"second\"\nlisten = \"127.0.0.1:{port}\"\n\n");
    let with_second = two_pools(blue.addr, green.addr, "green", "").replacen(
        "[[pool]]",
        &format!("{second}[[pool]]"),
        1,
    );
    replace_file(&path, &with_second);
    assert_eq!(
        veer.api(Method::POST, "/api/v1/reload", None, None).await.0,
        200
    );
    assert_eq!(who(&format!("http://127.0.0.1:{port}/")).await, "green");
    assert_eq!(
        kept.get("/").await,
        (200, "green".to_string()),
        "same connection, new routing"
    );

    // Removing it stops the new listener; the first keeps its socket.
    replace_file(&path, &two_pools(blue.addr, green.addr, "green", ""));
    assert_eq!(
        veer.api(Method::POST, "/api/v1/reload", None, None).await.0,
        200
    );
    let url = format!("http://127.0.0.1:{port}/");
    until(WITHIN, "removed listener closed", || {
        let url = url.clone();
        async move { raw_get(&url).await.is_err() }
    })
    .await;
    assert_eq!(kept.get("/").await, (200, "green".to_string()));
    veer.stop().await;
}

/// The deploy path of SPEC §4: editing `route.pool` in the file starts the
/// route's canary; status and events show its steps and verdicts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_changing_the_pool_starts_the_canary() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let rollout =
        "[route.rollout]\nstrategy = \"canary\"\nsteps = [30, 100]\ninterval = \"300ms\"\n\
                   [route.rollout.analysis]\nmin_requests = 5\nsuccess_rate = 99.0\n";
    let dir = TempDir::new("deploy");
    let veer = Veer::start(
        &dir,
        &two_pools(blue.addr, green.addr, "blue", rollout),
        None,
    )
    .await;
    // Some traffic, so analysis has data.
    let url = veer.url("/");
    let load = tokio::spawn(async move {
        for _ in 0..3000 {
            who(&url).await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    replace_file(
        &veer.config_path,
        &two_pools(blue.addr, green.addr, "green", rollout),
    );
    let mut saw_progressing = false;
    let start = tokio::time::Instant::now();
    loop {
        let status = veer.status().await;
        let route = &status["routes"][0];
        if route["phase"] == "progressing" {
            saw_progressing = true;
            assert_eq!(route["weights"]["green"], 30, "{status}");
        }
        if route["phase"] == "promoted" {
            assert_eq!(route["verdict"]["outcome"], "pass", "{status}");
            break;
        }
        assert!(start.elapsed() < WITHIN, "no promotion: {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(saw_progressing, "the canary walked its first step");
    let (_, json) = veer.api(Method::GET, "/api/v1/events", None, None).await;
    let transitions: Vec<&serde_json::Value> = json["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "transition")
        .collect();
    assert!(
        transitions
            .iter()
            .any(|e| e["verdict"]["candidate"]["requests"].as_u64() > Some(0)),
        "{json}"
    );
    load.abort();
    veer.stop().await;
}
