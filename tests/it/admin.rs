//! The admin API against a live veer: token rules, every error status,
//! weights effective on the next request, actions, probes, events.

use std::time::Duration;

use crate::support::admin::*;
use crate::support::*;
use http::{Method, StatusCode};

#[tokio::test]
async fn token_rules() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("token");
    let veer = Veer::start(
        &dir,
        &two_pools(blue.addr, green.addr, "blue", ""),
        Some("s3cret"),
    )
    .await;
    let status = "/api/v1/status";
    let (code, body) = veer.api(Method::GET, status, None, None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(body["error"].as_str().unwrap().contains("token"), "{body}");
    let (code, _) = veer.api(Method::GET, status, None, Some("wrong")).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = veer.api(Method::GET, status, None, Some("s3cre")).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let (code, _) = veer
        .api(
            Method::PUT,
            "/api/v1/routes/app/weights",
            Some(r#"{"green":100}"#),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(
        who(&veer.url("/")).await,
        "blue",
        "a refused call changed nothing"
    );
    let (code, body) = veer.api(Method::GET, status, None, Some("s3cret")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["routes"][0]["name"], "app");
    // Probes and metrics need no token.
    assert_eq!(raw_get(&veer.admin_url("/healthz")).await.unwrap().0, 200);
    assert_eq!(raw_get(&veer.admin_url("/readyz")).await.unwrap().0, 200);
    veer.stop().await;

    // No token configured (loopback): no header needed.
    let dir = TempDir::new("notoken");
    let veer = Veer::start(&dir, &two_pools(blue.addr, green.addr, "blue", ""), None).await;
    let (code, _) = veer.api(Method::GET, status, None, None).await;
    assert_eq!(code, StatusCode::OK);
    veer.stop().await;
}

#[tokio::test]
async fn every_error_status() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("errors");
    let veer = Veer::start(&dir, &two_pools(blue.addr, green.addr, "blue", ""), None).await;
    let cases: &[(Method, &str, Option<&str>, StatusCode)] = &[
        (
            Method::PUT,
            "/api/v1/routes/nope/weights",
            Some(r#"{"blue":100}"#),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::PUT,
            "/api/v1/routes/app/weights",
            Some(r#"{"red":100}"#),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::PUT,
            "/api/v1/routes/app/weights",
            Some(r#"{"blue":90}"#),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            "/api/v1/routes/app/weights",
            Some(r#"{"blue":90,"green":20}"#),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            "/api/v1/routes/app/weights",
            Some(r#"{"blue":-1}"#),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            "/api/v1/routes/app/weights",
            Some("{not json"),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::PUT,
            "/api/v1/routes/app/weights",
            Some("{}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/api/v1/routes/app/weights",
            None,
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::POST,
            "/api/v1/routes/app/rollout",
            Some(r#"{"pool":"red"}"#),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/api/v1/routes/nope/rollout",
            Some(r#"{"pool":"green"}"#),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/api/v1/routes/app/rollout",
            Some(r#"{"pol":"green"}"#),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/v1/routes/app/rollout",
            Some(r#"{"pool":"green","strategy":"yolo"}"#),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/api/v1/routes/nope/promote",
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/api/v1/routes/app/explode",
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            "/api/v1/routes/app/pause",
            None,
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::POST,
            "/api/v1/routes/app/rollback",
            None,
            StatusCode::CONFLICT,
        ),
        (
            Method::POST,
            "/api/v1/status",
            None,
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            Method::GET,
            "/api/v1/reload",
            None,
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (Method::GET, "/api/v1/nothing", None, StatusCode::NOT_FOUND),
        (Method::GET, "/nothing", None, StatusCode::NOT_FOUND),
    ];
    for (method, path, body, want) in cases {
        let (code, json) = veer.api(method.clone(), path, *body, None).await;
        assert_eq!(code, *want, "{method} {path} {body:?}: {json}");
        assert!(
            json["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{json}"
        );
    }
    assert_eq!(
        who(&veer.url("/")).await,
        "blue",
        "refused calls changed nothing"
    );
    veer.stop().await;
}

#[tokio::test]
async fn weights_are_effective_on_the_next_request() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("weights");
    let veer = Veer::start(&dir, &two_pools(blue.addr, green.addr, "blue", ""), None).await;
    assert_eq!(who(&veer.url("/")).await, "blue");
    for (body, want) in [
        (r#"{"blue":0,"green":100}"#, "green"),
        (r#"{"blue":100,"green":0}"#, "blue"),
        (r#"{"green":100}"#, "green"),
    ] {
        let (code, json) = veer
            .api(Method::PUT, "/api/v1/routes/app/weights", Some(body), None)
            .await;
        assert_eq!(code, StatusCode::OK, "{json}");
        assert_eq!(
            json["route"]["phase"], "paused",
            "manual weights pause the route"
        );
        for _ in 0..5 {
            assert_eq!(who(&veer.url("/")).await, want, "after {body}");
        }
    }
    let status = veer.status().await;
    let route = &status["routes"][0];
    assert_eq!(route["weights"]["green"], 100);
    assert_eq!(route["stable"], "blue");
    assert_eq!(route["candidate"], "green");
    assert_eq!(route["manual"], true);
    let pools = status["pools"].as_array().unwrap();
    assert_eq!(pools[0]["endpoints"][0]["healthy"], true);
    assert_eq!(pools[0]["endpoints"][0]["in_flight"], 0);

    // Resume clears the pause; promote makes the candidate stable.
    let (_, json) = veer
        .api(Method::POST, "/api/v1/routes/app/resume", None, None)
        .await;
    assert_eq!(json["route"]["phase"], "idle");
    let (_, json) = veer
        .api(Method::POST, "/api/v1/routes/app/promote", None, None)
        .await;
    assert_eq!(json["route"]["phase"], "promoted");
    assert_eq!(json["route"]["stable"], "green");
    let (_, json) = veer
        .api(Method::POST, "/api/v1/routes/app/rollback", None, None)
        .await;
    assert_eq!(json["route"]["phase"], "rolled-back");
    assert_eq!(json["route"]["stable"], "blue");
    assert_eq!(who(&veer.url("/")).await, "blue");

    let (code, json) = veer.api(Method::GET, "/api/v1/events", None, None).await;
    assert_eq!(code, 200);
    let kinds: Vec<&str> = json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    // Each shift away from a pool drains it; drains are events too.
    assert!(kinds.contains(&"drained"), "{kinds:?}");
    let actions: Vec<&str> = kinds
        .into_iter()
        .filter(|k| !k.starts_with("drain") && *k != "transition")
        .collect();
    assert_eq!(
        actions,
        ["weights", "weights", "weights", "resume", "promote", "rollback"]
    );
    veer.stop().await;
}

#[tokio::test]
async fn rollout_goes_to_the_controller() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("rollout");
    let veer = Veer::start(&dir, &two_pools(blue.addr, green.addr, "blue", ""), None).await;
    let (code, json) = veer
        .api(
            Method::POST,
            "/api/v1/routes/app/rollout",
            Some(r#"{"pool":"green"}"#),
            None,
        )
        .await;
    assert_eq!(code, 200, "{json}");
    // No [route.rollout]: the controller switches at once.
    let url = veer.url("/");
    until(Duration::from_secs(10), "switched to green", || {
        let url = url.clone();
        async move { who(&url).await == "green" }
    })
    .await;
    let status = veer.status().await;
    assert_eq!(status["routes"][0]["stable"], "green", "{status}");
    let (code, json) = veer
        .api(
            Method::POST,
            "/api/v1/routes/app/rollout",
            Some(r#"{"pool":"green"}"#),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::CONFLICT, "already serving: {json}");
    veer.stop().await;
}

#[tokio::test]
async fn probes_and_metrics() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("probes");
    let veer = Veer::start(&dir, &two_pools(blue.addr, green.addr, "blue", ""), None).await;
    let (status, headers, body) = get(&veer.admin_url("/metrics"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/plain; version=0.0.4");
    assert!(
        body.contains("veer_config_reloads_total{result=\"error\"} 0"),
        "{body}"
    );
    let put = r#"{"blue":40,"green":60}"#;
    let (code, _) = veer
        .api(Method::PUT, "/api/v1/routes/app/weights", Some(put), None)
        .await;
    assert_eq!(code, 200);
    let (_, _, body) = get(&veer.admin_url("/metrics"), &[]).await;
    assert!(
        body.contains("veer_rollout_phase{route=\"app\",phase=\"paused\"} 1"),
        "{body}"
    );
    assert!(
        body.contains("veer_route_weight{route=\"app\",pool=\"green\"} 60"),
        "{body}"
    );
    let (code, _) = veer.api(Method::POST, "/healthz", None, None).await;
    assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED);
    let admin = veer.admin_url("/readyz");
    veer.stop().await;
    // Stopped: nothing answers any more.
    tokio::time::timeout(Duration::from_secs(2), async {
        while raw_get(&admin).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("admin still answering after stop");
}
