//! `veer demo`: a complete local show with nothing else installed.
//!
//! Two built-in upstreams (v1 healthy; v2 with an error rate and added
//! latency), the real data plane in front of them, synthetic load, and a
//! canary from v1 to v2 that walks its steps, judges v2 on each interval
//! (success rate, p95, minimum requests) and promotes or rolls back.
//!
//! Until the rollout controller lands, the canary walk and its analysis
//! live here, measured from the load generator's side.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::routing::Weights;
use crate::server::Server;

/// What the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Percent of v2 responses that are 500s.
    pub v2_error_rate: f64,
    /// Added to every v2 response.
    pub v2_latency: Duration,
    /// Hold per canary step.
    pub interval: Duration,
    pub steps: Vec<u32>,
    /// Concurrent synthetic clients.
    pub clients: usize,
}

/// How the canary ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Promoted,
    RolledBack,
}

/// Per-version figures over one interval, seen by the load generator.
#[derive(Debug, Default, Clone)]
struct Tally {
    latencies: Vec<Duration>,
    failures: usize,
}

impl Tally {
    fn requests(&self) -> usize {
        self.latencies.len()
    }

    fn success_rate(&self) -> f64 {
        if self.latencies.is_empty() {
            return 100.0;
        }
        100.0 * (1.0 - self.failures as f64 / self.latencies.len() as f64)
    }

    fn p95(&self) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        sorted
            .get((sorted.len() * 95 / 100).min(sorted.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    }
}

const SUCCESS_RATE: f64 = 99.0;
const P95: Duration = Duration::from_millis(500);
const MIN_REQUESTS: usize = 20;
/// Inconclusive intervals a step may hold for before the demo gives up.
const MAX_HOLDS: u32 = 5;

/// Runs the demo and reports each step through `out`.
pub async fn run(options: DemoOptions, mut out: impl FnMut(String)) -> anyhow::Result<Outcome> {
    let v1 = spawn_upstream("v1", 0.0, Duration::ZERO).await?;
    let v2 = spawn_upstream("v2", options.v2_error_rate, options.v2_latency).await?;
    let toml = format!(
        "[[listener]]\nname = \"demo\"\nlisten = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"v1\"\nversion = \"1.0.0\"\nendpoints = [\"{v1}\"]\n\
         [[pool]]\nname = \"v2\"\nversion = \"2.0.0\"\nendpoints = [\"{v2}\"]\n\
         [[route]]\nname = \"demo\"\npool = \"v1\"\nretries = 0\n"
    );
    let mut config = crate::config::parse(&toml, std::path::Path::new("demo.toml"))?;
    // The demo keeps no state between runs.
    config.proxy.state_dir = std::env::temp_dir().join(format!("veer-demo-{}", std::process::id()));
    let config = Arc::new(config);
    let server = Server::new(config.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let proxy = listener.local_addr()?;
    server.serve(listener, &config.listeners[0]);
    out(format!(
        "proxy on http://{proxy}  v1 on {v1}  v2 on {v2} (error rate {}%, +{:?})",
        options.v2_error_rate, options.v2_latency
    ));

    let tallies: Arc<Mutex<[Tally; 2]>> = Arc::default();
    // Bounded even if the walk holds on inconclusive intervals.
    let stop =
        Instant::now() + options.interval * (options.steps.len() as u32 * (MAX_HOLDS + 1) + 1);
    let load: Vec<_> = (0..options.clients)
        .map(|_| tokio::spawn(generate_load(proxy, tallies.clone(), stop)))
        .collect();

    let mut outcome = Outcome::Promoted;
    for (i, &weight) in options.steps.iter().enumerate() {
        let weights = Weights {
            stable: "v1".into(),
            percent: vec![("v1".into(), 100 - weight), ("v2".into(), weight)],
        };
        server.routing.set_weights("demo", Some(weights));
        *tallies.lock().unwrap() = Default::default();
        let mut holds = 0;
        let [t1, t2] = loop {
            tokio::time::sleep(options.interval).await;
            let [t1, t2] = tallies.lock().unwrap().clone();
            // Too little data is inconclusive: hold the weight, never advance on it.
            if t2.requests() >= MIN_REQUESTS || holds == MAX_HOLDS {
                break [t1, t2];
            }
            holds += 1;
            out(format!(
                "step {}: only {} v2 requests (< {MIN_REQUESTS}), holding",
                i + 1,
                t2.requests()
            ));
        };
        let bar: String = options
            .steps
            .iter()
            .enumerate()
            .map(|(j, _)| if j <= i { '#' } else { '.' })
            .collect();
        out(format!(
            "step {}/{} [{bar}] weights v1={:>3}% v2={:>3}% | v1 {:>4} req {:5.1}% ok p95 {:>7} | v2 {:>4} req {:5.1}% ok p95 {:>7}",
            i + 1,
            options.steps.len(),
            100 - weight,
            weight,
            t1.requests(),
            t1.success_rate(),
            ms(t1.p95()),
            t2.requests(),
            t2.success_rate(),
            ms(t2.p95()),
        ));
        if t2.requests() < MIN_REQUESTS {
            out("v2 never received enough traffic to judge: rolling back".into());
            rollback(&server);
            outcome = Outcome::RolledBack;
            break;
        }
        if t2.success_rate() < SUCCESS_RATE || t2.p95() > P95 {
            out(format!("v2 failed analysis (success rate >= {SUCCESS_RATE}%, p95 <= {P95:?}): rolling back"));
            let weights = Weights {
                stable: "v1".into(),
                percent: vec![("v1".into(), 100), ("v2".into(), 0)],
            };
            server.routing.set_weights("demo", Some(weights));
            outcome = Outcome::RolledBack;
            break;
        }
    }
    for task in load {
        task.abort();
    }
    server.shutdown(Duration::from_secs(1)).await;
    Ok(outcome)
}

fn rollback(server: &Server) {
    let weights = Weights {
        stable: "v1".into(),
        percent: vec![("v1".into(), 100), ("v2".into(), 0)],
    };
    server.routing.set_weights("demo", Some(weights));
}

fn ms(d: Duration) -> String {
    format!("{:.1}ms", d.as_secs_f64() * 1000.0)
}

async fn generate_load(proxy: SocketAddr, tallies: Arc<Mutex<[Tally; 2]>>, stop: Instant) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let uri: http::Uri = format!("http://{proxy}/").parse().unwrap();
    while Instant::now() < stop {
        let started = Instant::now();
        let req = Request::get(uri.clone()).body(Empty::new()).unwrap();
        let result = tokio::time::timeout(Duration::from_secs(5), client.request(req)).await;
        let took = started.elapsed();
        let Ok(Ok(resp)) = result else { continue };
        let version = resp
            .headers()
            .get("x-version")
            .map(|v| v.as_bytes() == b"v2");
        let failed = resp.status().is_server_error();
        let _ = resp.into_body().collect().await;
        if let Some(is_v2) = version {
            let mut t = tallies.lock().unwrap();
            let tally = &mut t[is_v2 as usize];
            tally.latencies.push(took);
            tally.failures += failed as usize;
        }
        // Pace each client at about 100 requests per second.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A built-in upstream answering its name; `error_rate` percent are 500s.
async fn spawn_upstream(
    name: &'static str,
    error_rate: f64,
    latency: Duration,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| async move {
                    if !latency.is_zero() {
                        tokio::time::sleep(latency).await;
                    }
                    let fail = rand::random::<f64>() * 100.0 < error_rate;
                    let status = if fail {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    };
                    let resp = Response::builder()
                        .status(status)
                        .header("x-version", name)
                        .body(Full::new(Bytes::from(format!("hello from {name}\n"))))
                        .unwrap();
                    Ok::<_, Infallible>(resp)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(addr)
}
