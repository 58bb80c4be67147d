//! Run-time state across restarts: manual weights resume exactly, a
//! corrupt state file is moved aside and reported, and a file changed
//! while stopped wins over the old override.

use crate::support::admin::*;
use crate::support::*;
use http::Method;

/// 30/70 over `n` requests: green within 4.5 standard deviations of 70%.
async fn assert_split_30_70(veer: &Veer) {
    let n = 2000;
    let counts = tally(&veer.url("/"), n, &[]).await;
    let green = counts.get("green").copied().unwrap_or(0) as f64;
    let (mean, sd) = (n as f64 * 0.7, (n as f64 * 0.7 * 0.3).sqrt());
    assert!((green - mean).abs() < 4.5 * sd, "green {green} of {n}");
}

#[tokio::test]
async fn restart_resumes_weights_30_70() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("restart");
    let toml = two_pools(blue.addr, green.addr, "blue", "");
    let veer = Veer::start(&dir, &toml, None).await;
    let (code, json) = veer
        .api(
            Method::PUT,
            "/api/v1/routes/app/weights",
            Some(r#"{"blue":30,"green":70}"#),
            None,
        )
        .await;
    assert_eq!(code, 200, "{json}");
    assert_split_30_70(&veer).await;
    let saved = std::fs::read_to_string(dir.path().join("state/control.json")).unwrap();
    assert!(
        saved.contains("\"green\"") && saved.contains("70"),
        "{saved}"
    );
    veer.stop().await;

    let veer = Veer::start(&dir, &toml, None).await;
    let status = veer.status().await;
    let route = &status["routes"][0];
    assert_eq!(route["weights"]["blue"], 30, "{route}");
    assert_eq!(route["weights"]["green"], 70);
    assert_eq!(route["phase"], "paused");
    assert_eq!(route["stable"], "blue");
    let (_, events) = veer.api(Method::GET, "/api/v1/events", None, None).await;
    assert_eq!(events["events"][0]["kind"], "restored", "{events}");
    assert_split_30_70(&veer).await;
    veer.stop().await;

    // Changed in the file while stopped: the file wins.
    let toml = two_pools(blue.addr, green.addr, "green", "");
    let veer = Veer::start(&dir, &toml, None).await;
    assert_eq!(who(&veer.url("/")).await, "green");
    let status = veer.status().await;
    assert_eq!(status["routes"][0]["manual"], false);
    veer.stop().await;
}

#[tokio::test]
async fn corrupt_state_is_moved_aside_and_reported() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("corrupt");
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    std::fs::write(
        dir.path().join("state/control.json"),
        "{\"routes\": {\"app\": [",
    )
    .unwrap();
    let veer = Veer::start(&dir, &two_pools(blue.addr, green.addr, "blue", ""), None).await;
    assert_eq!(who(&veer.url("/")).await, "blue");
    let (_, events) = veer.api(Method::GET, "/api/v1/events", None, None).await;
    let first = &events["events"][0];
    assert_eq!(first["kind"], "state-error", "{events}");
    assert!(first["message"].as_str().unwrap().contains("corrupt"));
    let moved: Vec<String> = std::fs::read_dir(dir.path().join("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        moved.iter().any(|n| n.starts_with("control.json.corrupt-")),
        "{moved:?}"
    );
    // A change after that writes a fresh, valid file.
    let put = veer
        .api(
            Method::PUT,
            "/api/v1/routes/app/weights",
            Some(r#"{"green":100}"#),
            None,
        )
        .await;
    assert_eq!(put.0, 200);
    let saved = std::fs::read_to_string(dir.path().join("state/control.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&saved).unwrap();
    veer.stop().await;
}

/// A rejected `PUT .../weights` changes nothing: not the split, not the
/// phase, not the state file.
#[tokio::test]
async fn a_rejected_weights_put_changes_nothing() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("rejected-put");
    let veer = Veer::start(&dir, &two_pools(blue.addr, green.addr, "blue", ""), None).await;
    let put =
        |body: &'static str| veer.api(Method::PUT, "/api/v1/routes/app/weights", Some(body), None);
    let bad = [
        r#"{"blue":90,"green":20}"#,
        r#"{"blue":100,"red":0}"#,
        r#"{"blue":4294967295,"green":101}"#,
        r#"{}"#,
    ];
    let before = veer.status().await;
    for body in bad {
        let (code, _) = put(body).await;
        assert!(code == 400 || code == 404, "{body}: {code}");
        assert_eq!(veer.status().await["routes"], before["routes"], "{body}");
    }
    assert!(
        !dir.path().join("state/control.json").exists() || {
            let saved = std::fs::read_to_string(dir.path().join("state/control.json")).unwrap();
            !saved.contains("manual\":{")
        }
    );
    let (code, _) = put(r#"{"blue":30,"green":70}"#).await;
    assert_eq!(code, 200);
    let saved = std::fs::read(dir.path().join("state/control.json")).unwrap();
    let before = veer.status().await;
    for body in bad {
        put(body).await;
        assert_eq!(veer.status().await["routes"], before["routes"], "{body}");
    }
    assert_eq!(
        std::fs::read(dir.path().join("state/control.json")).unwrap(),
        saved
    );
    veer.stop().await;
}

/// A state file whose weights the API would refuse is not restored: the
/// route serves its file's pool, the event says why, the file is kept
/// aside.
#[tokio::test]
async fn invalid_restored_state_is_dropped_and_reported() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("invalid-state");
    let toml = two_pools(blue.addr, green.addr, "blue", "");
    let veer = Veer::start(&dir, &toml, None).await;
    let body = Some(r#"{"blue":30,"green":70}"#);
    let (code, _) = veer
        .api(Method::PUT, "/api/v1/routes/app/weights", body, None)
        .await;
    assert_eq!(code, 200);
    veer.stop().await;

    let path = dir.path().join("state/control.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let manual = &mut state["routes"]["app"]["manual"];
    assert!(manual.is_object(), "{state}");
    manual["percent"] = serde_json::json!([["blue", 30], ["green", 60]]);
    std::fs::write(&path, state.to_string()).unwrap();
    let _ = std::fs::remove_file(dir.path().join("state/control.json.prev"));

    let veer = Veer::start(&dir, &toml, None).await;
    assert_eq!(who(&veer.url("/")).await, "blue");
    let status = veer.status().await;
    assert_eq!(status["routes"][0]["manual"], false, "{status}");
    let (_, events) = veer.api(Method::GET, "/api/v1/events", None, None).await;
    let invalid = events["events"].as_array().unwrap().iter().any(|e| {
        e["kind"] == "state-error" && e["message"].as_str().unwrap().contains("sum to 90")
    });
    assert!(invalid, "{events}");
    let names: Vec<String> = std::fs::read_dir(dir.path().join("state"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("control.json.invalid-")),
        "{names:?}"
    );
    veer.stop().await;
}
