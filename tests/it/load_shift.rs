//! A bounded load test on loopback: weights shift 0 <-> 100 between two
//! pools fifty times while every upstream endpoint is restarted one at a
//! time behind health checks (a rolling restart). No client request may
//! fail. Every loop is bounded in count and time; figures are printed:
//!
//! `cargo test --release --test it load_shift:: -- --nocapture`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;
use tokio::time::Instant;
use veer::routing::Weights;

const CLIENTS: usize = 16;
const SHIFTS: usize = 50;
const SHIFT_EVERY: Duration = Duration::from_millis(25);
/// Per client; the test ends long before in practice.
const MAX_REQUESTS: u64 = 1_000_000;
const DEADLINE: Duration = Duration::from_secs(60);
const WAIT: Duration = Duration::from_secs(10);
const CHECKS: &str = "[pool.health]\npath = \"/ready\"\ninterval = \"50ms\"\ntimeout = \"500ms\"\n\
                      healthy_threshold = 1\nunhealthy_threshold = 2\n";

#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    /// The first few failures, for the assertion message.
    errors: Mutex<Vec<String>>,
    /// Latencies in microseconds, one per request.
    micros: Mutex<Vec<u32>>,
}

impl Tally {
    fn done(&self) -> u64 {
        self.ok.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }
}

async fn load(url: String, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let client = client();
    let mut micros = Vec::new();
    for _ in 0..MAX_REQUESTS {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let started = Instant::now();
        let req = http::Request::get(&url).body(empty()).unwrap();
        let outcome = tokio::time::timeout(WAIT, client.request(req)).await;
        let result = match outcome {
            Err(_) => Err("timed out".to_string()),
            Ok(Err(e)) => Err(format!("{e:?}")),
            Ok(Ok(resp)) if resp.status() != 200 => Err(format!("status {}", resp.status())),
            Ok(Ok(resp)) => {
                use http_body_util::BodyExt;
                resp.into_body()
                    .collect()
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("body: {e}"))
            }
        };
        micros.push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
        match result {
            Ok(()) => tally.ok.fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                let mut errors = tally.errors.lock().unwrap();
                if errors.len() < 10 {
                    errors.push(e);
                }
                tally.failed.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
    tally.micros.lock().unwrap().extend(micros);
}

/// Moves all traffic to the other pool `SHIFTS` times, each once at least
/// 100 more requests have completed, at most one per `SHIFT_EVERY` so that
/// the shifts span the rolling restart.
async fn shift(proxy: &Proxy, tally: &Tally) {
    let mut pace = tokio::time::interval(SHIFT_EVERY);
    for i in 0..SHIFTS {
        pace.tick().await;
        let v1 = if i % 2 == 0 { 0 } else { 100 };
        let weights = Weights {
            stable: "v1".into(),
            percent: vec![("v1".into(), v1), ("v2".into(), 100 - v1)],
        };
        proxy.routing().set_weights("app", Some(weights));
        let target = tally.done() + 100;
        eventually(WAIT, || tally.done() >= target).await;
    }
}

/// Restarts each upstream in turn: fail its readiness check, wait until
/// veer took it out of rotation and nothing is in flight to it, restart
/// it, wait until it is back in rotation.
async fn roll(proxy: &Proxy, upstreams: &mut [(&str, Upstream)]) -> usize {
    let mut restarted = 0;
    for (pool, up) in upstreams.iter_mut() {
        let state = endpoint(proxy, pool, up.addr);
        up.ready.store(false, Ordering::SeqCst);
        eventually(WAIT, || !state.is_healthy()).await;
        // Requests picked just before the flip are counted by now.
        tokio::time::sleep(Duration::from_millis(20)).await;
        eventually(WAIT, || state.in_flight() == 0).await;
        up.restart().await;
        eventually(WAIT, || state.is_healthy()).await;
        restarted += 1;
    }
    restarted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shifts_and_rolling_restart_under_load_lose_nothing() {
    let mut upstreams = Vec::new();
    for pool in ["v1", "v2"] {
        for _ in 0..3 {
            upstreams.push((pool, Upstream::start(pool).await));
        }
    }
    let addrs = |pool: &str| -> Vec<_> {
        upstreams
            .iter()
            .filter(|(p, _)| *p == pool)
            .map(|(_, u)| u.addr)
            .collect()
    };
    let text = format!(
        "{}{}[[route]]\nname = \"app\"\npool = \"v1\"\n",
        pool_toml("v1", &addrs("v1"), CHECKS),
        pool_toml("v2", &addrs("v2"), CHECKS)
    );
    let proxy = Proxy::start(&config(&[], &text)).await;
    for (pool, up) in &upstreams {
        let state = endpoint(&proxy, pool, up.addr);
        eventually(WAIT, || state.is_healthy()).await;
    }

    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| tokio::spawn(load(proxy.url("/"), stop.clone(), tally.clone())))
        .collect();
    let work = async { tokio::join!(shift(&proxy, &tally), roll(&proxy, &mut upstreams)) };
    let ((), restarted) = tokio::time::timeout(DEADLINE, work)
        .await
        .expect("shifts and restarts finish within the deadline");
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        tokio::time::timeout(WAIT, client).await.unwrap().unwrap();
    }
    let elapsed = started.elapsed();

    let (ok, failed) = (
        tally.ok.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    let mut micros = std::mem::take(&mut *tally.micros.lock().unwrap());
    micros.sort_unstable();
    let pct = |p: f64| micros[((micros.len() - 1) as f64 * p) as usize] as f64 / 1000.0;
    println!(
        "load: {} requests in {:.2}s ({:.0} req/s) from {CLIENTS} clients; {SHIFTS} shifts; \
         {restarted} endpoint restarts; failed {failed}; latency p50 {:.2}ms p99 {:.2}ms max {:.2}ms",
        ok + failed,
        elapsed.as_secs_f64(),
        (ok + failed) as f64 / elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        pct(1.0),
    );
    assert_eq!(restarted, 6);
    assert_eq!(failed, 0, "{:?}", tally.errors.lock().unwrap());
    assert!(ok >= (SHIFTS * 100) as u64);
}
