//! The `drained` signal with streaming responses, after a weight shift and
//! after an endpoint is removed: a stream that ends in time is waited for
//! (drained comes after its last byte), one that outlasts `drain_timeout`
//! is cut and counted (drained comes after the cut), and `veer drain
//! wait`, the drain API, events, webhooks and metrics all say so.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use http::Method;
use tokio::time::Instant;
use veer::drain::{Cut, DrainEvent};

use crate::support::admin::*;
use crate::support::stream::*;
use crate::support::*;

const WAIT: Duration = Duration::from_secs(20);
const LIMIT: Duration = Duration::from_secs(60);

fn with_keys(toml: String, keys: &str) -> String {
    toml.replacen("[proxy]\n", &format!("[proxy]\n{keys}"), 1)
}

/// Sets blue's share of route `app` (green gets the rest).
async fn shift(veer: &Veer, blue: u32) {
    let body = format!(r#"{{"blue":{blue},"green":{}}}"#, 100 - blue);
    let path = "/api/v1/routes/app/weights";
    let (code, json) = veer.api(Method::PUT, path, Some(&body), None).await;
    assert_eq!(code, 200, "{json}");
}

async fn drain_report(veer: &Veer, query: &str) -> serde_json::Value {
    let path = format!("/api/v1/pools/{query}");
    let (code, json) = veer.api(Method::GET, &path, None, None).await;
    assert_eq!(code, 200, "{json}");
    json
}

/// The index of the drip with `total` chunks, once it has sent `sent`.
async fn drip_at(drips: &Drips, total: usize, sent: usize) -> usize {
    let find =
        || (0..drips.len()).find(|&i| drips.get(i).total == total && drips.get(i).sent >= sent);
    eventually(WAIT, || find().is_some()).await;
    find().unwrap()
}

/// `veer drain wait ARGS` against `veer`, through a relay; returns once
/// its request has reached veer.
async fn drain_wait(admin: std::net::SocketAddr, args: &[&str]) -> tokio::task::JoinHandle<CliRun> {
    let (relay, mut through) = relay(admin).await;
    let mut all = vec!["drain", "wait"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--timeout", "60s"]);
    let run = veer_cli(format!("http://{relay}"), &all, LIMIT);
    tokio::time::timeout(WAIT, through.wait_for(|t| *t))
        .await
        .expect("veer drain wait reached the API")
        .unwrap();
    run
}

async fn next(events: &mut tokio::sync::broadcast::Receiver<DrainEvent>) -> DrainEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("a drain event")
        .unwrap()
}

async fn drained_event_message(veer: &Veer) -> String {
    let (_, json) = veer.api(Method::GET, "/api/v1/events", None, None).await;
    let events = json["events"].as_array().unwrap();
    let drained = events.iter().rev().find(|e| e["kind"] == "drained");
    drained.expect("a drained event")["message"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_shift_drained_comes_after_the_last_byte_of_a_stream() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("drain-last-byte");
    let toml = with_keys(
        two_pools(blue.addr, green.addr, "blue", ""),
        "drain_timeout = \"60s\"\n",
    );
    let veer = Veer::start(&dir, &toml, None).await;
    let stream = stream_get(veer.url("/drip/20/hold"), LIMIT);
    drip_at(&blue.drips, 20, 19).await;

    shift(&veer, 0).await;
    let wait = drain_wait(veer.admin, &["blue"]).await;
    // The last byte is held back: the drain (and the wait) must be too.
    let report = drain_report(&veer, "blue/drain").await;
    assert_eq!(
        (&report["state"], &report["in_flight"]),
        (&"draining".into(), &1.into()),
        "{report}"
    );
    assert!(
        !wait.is_finished(),
        "drain wait returned before the last byte"
    );

    blue.drips.release();
    let received = stream.await.unwrap();
    assert!(
        received.clean && received.bytes == 20 * CHUNK,
        "{received:?}"
    );
    let cli = wait.await.unwrap();
    assert_eq!(cli.code, Some(0), "{cli:?}");
    assert!(cli.stdout.starts_with("pool blue drained in "), "{cli:?}");
    assert!(!cli.stdout.contains("cut"), "{cli:?}");
    let (last_at, last_wall) = blue.drips.get(0).last_chunk.unwrap();
    assert!(cli.exited > last_at);

    let report = drain_report(&veer, "blue/drain").await;
    assert_eq!(report["state"], "drained", "{report}");
    assert_eq!(
        (&report["cut"], &report["reason"]),
        (&0.into(), &"shift".into())
    );
    let finished = report["finished"].as_u64().unwrap();
    assert!(finished >= unix_ms(last_wall), "{report}");
    eprintln!(
        "figure: shift, stream ending in time: drained {} ms after the upstream's last byte; \
         veer drain wait exited {:?} after it",
        finished - unix_ms(last_wall),
        cli.exited - last_at
    );
    let message = drained_event_message(&veer).await;
    assert!(message.starts_with("pool blue drained in "), "{message}");
    assert!(!message.contains("cut"), "{message}");
    veer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_shift_a_stream_and_a_tunnel_outlasting_drain_timeout_are_cut_and_counted() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let (hook, hooks) = hook_server().await;
    let dir = TempDir::new("drain-cut");
    let extra = format!(
        "[route.rollout]\nstrategy = \"canary\"\n\
         [[route.rollout.webhook]]\non = \"drained\"\nurl = \"http://{hook}/route\"\n\
         [[webhook]]\non = \"drained\"\nurl = \"http://{hook}/global\"\n"
    );
    let toml = with_keys(
        two_pools(blue.addr, green.addr, "blue", &extra),
        "drain_timeout = \"4s\"\n",
    );
    let veer = Veer::start(&dir, &toml, None).await;
    let short = stream_get(veer.url("/drip/10/hold"), LIMIT);
    let long = stream_get(veer.url("/drip/600/50"), LIMIT);
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", veer.addr))
        .await
        .unwrap();
    ws.send("hi".into()).await.unwrap();
    let reply = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply.into_text().unwrap().as_str(), "blue: hi");
    let long_index = drip_at(&blue.drips, 600, 1).await;
    drip_at(&blue.drips, 10, 9).await;

    let shifted = Instant::now();
    shift(&veer, 0).await;
    let wait = drain_wait(veer.admin, &["blue"]).await;
    let metrics = veer.admin_url("/metrics");
    until(WAIT, "veer_drain_in_flight while draining", || {
        let metrics = metrics.clone();
        async move {
            let (_, text) = raw_get(&metrics).await.unwrap();
            text.contains("veer_drain_in_flight{pool=\"blue\"} 3\n")
        }
    })
    .await;
    blue.drips.release();
    let short = short.await.unwrap();
    assert!(short.clean && short.bytes == 10 * CHUNK, "{short:?}");

    // The tunnel stays open until drain_timeout, then closes.
    let closed = tokio::time::timeout(WAIT, async {
        while let Some(Ok(msg)) = ws.next().await {
            assert!(msg.is_close(), "unexpected {msg:?}");
        }
        Instant::now()
    })
    .await
    .expect("tunnel closed in time");
    let long = long.await.unwrap();
    assert!(!long.clean && long.bytes < 600 * CHUNK, "{long:?}");
    for (what, at) in [("tunnel", closed), ("stream", long.ended)] {
        let after = at - shifted;
        assert!(
            after >= Duration::from_secs(4) && after < WAIT,
            "{what} closed after {after:?}"
        );
    }
    let cli = wait.await.unwrap();
    assert_eq!(cli.code, Some(0), "{cli:?}");
    assert!(
        cli.stdout
            .contains("cut at drain_timeout: 1 stream, 1 tunnel"),
        "{cli:?}"
    );
    assert!(cli.exited - shifted >= Duration::from_secs(4));

    let report = drain_report(&veer, "blue/drain").await;
    assert_eq!(report["state"], "drained", "{report}");
    assert_eq!(
        (&report["cut_streams"], &report["cut_tunnels"]),
        (&1.into(), &1.into())
    );
    let (started, finished) = (
        report["started"].as_u64().unwrap(),
        report["finished"].as_u64().unwrap(),
    );
    assert!(finished >= started + 4000, "{report}");
    eprintln!(
        "figure: shift, stream and tunnel outlasting drain_timeout = 4s: drained {} ms after the \
         drain began ({} ms after the cut); the client saw the stream end {:?} after the shift",
        finished - started,
        finished - started - 4000,
        long.ended - shifted
    );
    let message = drained_event_message(&veer).await;
    assert!(
        message.contains("cut at drain_timeout: 1 stream, 1 tunnel"),
        "{message}"
    );
    // The upstream stopped sending: veer closed its connection.
    eventually(WAIT, || blue.drips.get(long_index).dropped.is_some()).await;
    assert!(blue.drips.get(long_index).sent < 600);

    let (_, text) = raw_get(&metrics).await.unwrap();
    for line in [
        "veer_drain_cut_total{pool=\"blue\",kind=\"stream\"} 1\n",
        "veer_drain_cut_total{pool=\"blue\",kind=\"tunnel\"} 1\n",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
    assert!(!text.contains("veer_drain_in_flight{"), "{text}");
    crate::metrics::promtool_check(&text);

    eventually(WAIT, || hooks.lock().unwrap().len() >= 2).await;
    let mut got = hooks.lock().unwrap().clone();
    got.sort_by(|a, b| a.0.cmp(&b.0));
    for ((path, body), (want_path, route)) in
        got.iter().zip([("/global", None), ("/route", Some("app"))])
    {
        assert_eq!(path, want_path);
        assert_eq!(body["event"], "drained", "{body}");
        assert_eq!(body["route"].as_str(), route, "{body}");
        assert_eq!(
            (&body["pool"], &body["reason"]),
            (&"blue".into(), &"shift".into())
        );
        assert_eq!(
            (&body["cut_streams"], &body["cut_tunnels"]),
            (&1.into(), &1.into())
        );
    }
    veer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_endpoint_is_drained_after_the_last_byte_of_its_stream() {
    let (blue, green, blue2) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
        Upstream::start("blue2").await,
    );
    let dir = TempDir::new("drain-endpoint");
    let toml = |endpoint| {
        with_keys(
            two_pools(endpoint, green.addr, "blue", ""),
            "drain_timeout = \"60s\"\n",
        )
    };
    let veer = Veer::start_with(
        &{
            let path = dir.path().join("veer.toml");
            std::fs::write(&path, toml(blue.addr)).unwrap();
            path
        },
        None,
        false,
    )
    .await;
    let stream = stream_get(veer.url("/drip/20/hold"), LIMIT);
    drip_at(&blue.drips, 20, 19).await;

    replace_file(&veer.config_path, &toml(blue2.addr));
    let (code, json) = veer.api(Method::POST, "/api/v1/reload", None, None).await;
    assert_eq!(code, 200, "{json}");
    let endpoint = blue.addr.to_string();
    let wait = drain_wait(veer.admin, &["blue", "--endpoint", &endpoint]).await;
    assert_eq!(who(&veer.url("/")).await, "blue2");
    let report = drain_report(&veer, &format!("blue/drain?endpoint={endpoint}")).await;
    assert_eq!(report["state"], "draining", "{report}");
    assert!(
        !wait.is_finished(),
        "drain wait returned before the last byte"
    );

    blue.drips.release();
    let received = stream.await.unwrap();
    assert!(
        received.clean && received.bytes == 20 * CHUNK,
        "{received:?}"
    );
    let cli = wait.await.unwrap();
    assert_eq!(cli.code, Some(0), "{cli:?}");
    assert!(
        cli.stdout
            .starts_with(&format!("endpoint {endpoint} of pool blue drained in ")),
        "{cli:?}"
    );
    let (last_at, last_wall) = blue.drips.get(0).last_chunk.unwrap();
    assert!(cli.exited > last_at);
    let report = drain_report(&veer, &format!("blue/drain?endpoint={endpoint}")).await;
    assert_eq!(
        (&report["state"], &report["reason"], &report["cut"]),
        (&"drained".into(), &"removed".into(), &0.into())
    );
    let finished = report["finished"].as_u64().unwrap();
    assert!(finished >= unix_ms(last_wall), "{report}");
    eprintln!(
        "figure: endpoint removed, stream ending in time: drained {} ms after the upstream's last byte",
        finished - unix_ms(last_wall)
    );
    // The pool itself still serves.
    assert_eq!(drain_report(&veer, "blue/drain").await["state"], "serving");
    let (code, _) = veer
        .api(Method::GET, "/api/v1/pools/nope/drain", None, None)
        .await;
    assert_eq!(code, 404);
    veer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_endpoint_streaming_past_drain_timeout_is_cut_then_drained() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let text = |eps: &[std::net::SocketAddr]| {
        let toml = config(
            &[("app", eps)],
            "[[route]]\nname = \"app\"\npool = \"app\"\n",
        );
        with_keys(toml, "drain_timeout = \"4s\"\n")
    };
    let proxy = Proxy::start(&text(&[b.addr])).await;
    let server = proxy.server.as_ref().unwrap();
    let mut events = server.drains.subscribe();
    let short = stream_get(proxy.url("/drip/10/hold"), LIMIT);
    let long = stream_get(proxy.url("/drip/600/50"), LIMIT);
    drip_at(&b.drips, 10, 9).await;
    let long_index = drip_at(&b.drips, 600, 1).await;
    let leaving = endpoint(&proxy, "app", b.addr);

    let reloaded = Instant::now();
    let config = veer::config::parse(&text(&[a.addr]), "test.toml".as_ref()).unwrap();
    proxy.routing().set_config(Arc::new(config));
    assert_eq!(
        next(&mut events).await,
        DrainEvent::Draining {
            pool: "app".into(),
            endpoint: Some(b.addr.to_string())
        }
    );
    b.drips.release();
    let short = short.await.unwrap();
    assert!(short.clean && short.bytes == 10 * CHUNK, "{short:?}");
    let drained = match next(&mut events).await {
        DrainEvent::Drained { cut, took, .. } => {
            // Sent only once what was cut is closed: no connection to b.
            let flight = leaving.flight();
            assert_eq!((flight.conns(), flight.tunnels()), (0, 0));
            assert_eq!(
                cut,
                Cut {
                    streams: 1,
                    tunnels: 0
                }
            );
            assert!(took >= Duration::from_secs(4), "{took:?}");
            Instant::now()
        }
        other => panic!("unexpected {other:?}"),
    };
    let long = long.await.unwrap();
    assert!(!long.clean && long.bytes < 600 * CHUNK, "{long:?}");
    assert!(drained - reloaded >= Duration::from_secs(4));
    eprintln!(
        "figure: endpoint removed, stream outlasting drain_timeout = 4s: drained event {:?} after \
         the reload",
        drained - reloaded
    );
    eventually(WAIT, || b.drips.get(long_index).dropped.is_some()).await;
    assert!(b.drips.get(long_index).sent < 600);
    let counts = tally(&proxy.url("/"), 5, &[]).await;
    assert_eq!(counts["a"], 5);
}
