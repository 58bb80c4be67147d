//! Bounded load test on loopback: continuous requests while the config
//! file is replaced 100 times and the weights are changed 100 times. Not
//! one request may fail. Run with `--nocapture` to see the figures.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::admin::*;
use crate::support::*;
use http::{Method, Request};

const CLIENTS: usize = 8;
const CHANGES: usize = 100;
/// Every loop below is bounded by count and by this.
const LIMIT: Duration = Duration::from_secs(120);
const MAX_REQUESTS_PER_CLIENT: u64 = 1_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_request_fails_while_config_and_weights_change() {
    let (blue, blue2, green) = (
        Upstream::start("blue").await,
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("load");
    let variant = |i: usize| {
        let toml = two_pools(
            blue.addr,
            green.addr,
            "blue",
            &format!("timeout = \"{}s\"\n", 5 + i % 3),
        );
        match i % 2 {
            // Every other version adds a second blue endpoint.
            0 => toml,
            _ => toml.replace(
                &format!("endpoints = [\"{}\"]", blue.addr),
                &format!("endpoints = [\"{}\", \"{}\"]", blue.addr, blue2.addr),
            ),
        }
    };
    let veer = Veer::start(&dir, &variant(0), None).await;
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let url = veer.url(if c % 2 == 0 { "/" } else { "/sleep/2" });
        clients.push(tokio::spawn(async move {
            let client = client();
            for _ in 0..MAX_REQUESTS_PER_CLIENT {
                if stop.load(Ordering::Relaxed) || started.elapsed() > LIMIT {
                    break;
                }
                let req = Request::get(&url).body(empty()).unwrap();
                let sent = tokio::time::timeout(Duration::from_secs(10), client.request(req)).await;
                let good = match sent {
                    Ok(Ok(resp)) => {
                        let status = resp.status();
                        use http_body_util::BodyExt;
                        resp.into_body().collect().await.is_ok() && status == 200
                    }
                    _ => false,
                };
                let counter = if good { &ok } else { &failed };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    let mut reloads = 0;
    let mut weight_changes = 0;
    for i in 1..=CHANGES {
        assert!(started.elapsed() < LIMIT, "changes took too long");
        replace_file(&veer.config_path, &variant(i));
        let (code, json) = veer.api(Method::POST, "/api/v1/reload", None, None).await;
        assert_eq!(code, 200, "reload {i}: {json}");
        reloads += 1;
        let green = (i * 37) % 101;
        let body = format!("{{\"blue\": {}, \"green\": {green}}}", 100 - green);
        let (code, json) = veer
            .api(Method::PUT, "/api/v1/routes/app/weights", Some(&body), None)
            .await;
        assert_eq!(code, 200, "weights {i}: {json}");
        weight_changes += 1;
        // Let traffic flow between changes.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        tokio::time::timeout(Duration::from_secs(15), client)
            .await
            .expect("client did not finish")
            .unwrap();
    }
    let elapsed = started.elapsed();
    let status = veer.status().await;
    veer.stop().await;

    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    println!(
        "load: {} requests ({ok} ok, {failed} failed) from {CLIENTS} clients in {:.2}s ({:.0} req/s); \
         config replaced {reloads} times (reloads ok {}, error {}), weights changed {weight_changes} times; \
         requests to blue {}+{}, green {}",
        ok + failed,
        elapsed.as_secs_f64(),
        (ok + failed) as f64 / elapsed.as_secs_f64(),
        status["reloads"]["ok"],
        status["reloads"]["error"],
        blue.requests().len(),
        blue2.requests().len(),
        green.requests().len(),
    );
    assert_eq!(
        failed, 0,
        "requests failed during reloads and weight changes"
    );
    assert!(ok >= 1000, "too little traffic to show anything: {ok}");
    assert!(status["reloads"]["ok"].as_u64().unwrap() >= CHANGES as u64);
    assert_eq!(status["reloads"]["error"], 0);
}
