//! `veer demo`: a complete local show with nothing else installed.
//!
//! Two built-in upstreams (v1 healthy; v2 with an error rate and added
//! latency), the real data plane in front of them, synthetic load, and a
//! canary from v1 to v2 run by the real rollout controller: it walks the
//! steps, judges v2 on each interval from what the proxy measured
//! (success rate, p95, minimum requests) and promotes or rolls back.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::time::Instant;

use crate::app::App;
use crate::control::Event;
use crate::observe::Window;
use crate::rollout::{Command, Phase};

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
    /// Also send a live status line (weights, per-version rate, success
    /// rate, p95 over the last second) twice a second, as a line starting
    /// with `\r` that the caller redraws in place (stdout is a terminal).
    pub live: bool,
}

/// How the canary ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Promoted,
    RolledBack,
}

/// The demo's analysis: SPEC §2's example bounds.
const ANALYSIS: &str = "min_requests = 20\nsuccess_rate = 99.0\np95 = \"500ms\"\n";

fn config(v1: SocketAddr, v2: SocketAddr, options: &DemoOptions) -> String {
    let steps: Vec<String> = options.steps.iter().map(u32::to_string).collect();
    format!(
        "[[listener]]\nname = \"demo\"\nlisten = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"v1\"\nversion = \"1.0.0\"\nendpoints = [\"{v1}\"]\n\
         [[pool]]\nname = \"v2\"\nversion = \"2.0.0\"\nendpoints = [\"{v2}\"]\n\
         [[route]]\nname = \"demo\"\npool = \"v1\"\nretries = 0\n\
         [route.rollout]\nstrategy = \"canary\"\nsteps = [{}]\ninterval = \"{}ms\"\nthreshold = 2\n\
         [route.rollout.analysis]\n{ANALYSIS}",
        steps.join(", "),
        options.interval.as_millis()
    )
}

/// Runs the demo and reports each step through `out`.
pub async fn run(options: DemoOptions, out: impl FnMut(String)) -> anyhow::Result<Outcome> {
    run_and_keep(options, out, std::future::ready(())).await
}

/// [`run`], then keeps the proxy and the dashboard serving until `keep`
/// resolves (`veer demo --keep`).
pub async fn run_and_keep(
    options: DemoOptions,
    mut out: impl FnMut(String),
    keep: impl std::future::Future<Output = ()>,
) -> anyhow::Result<Outcome> {
    let v1 = spawn_upstream("v1", 0.0, Duration::ZERO).await?;
    let v2 = spawn_upstream("v2", options.v2_error_rate, options.v2_latency).await?;
    let mut config =
        crate::config::parse(&config(v1, v2, &options), std::path::Path::new("demo.toml"))?;
    // The demo keeps no state between runs: its own directory, removed at the end.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let state_dir = std::env::temp_dir().join(format!("veer-demo-{}-{run}", std::process::id()));
    config.proxy.state_dir = state_dir.clone();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let proxy = listener.local_addr()?;
    let admin = TcpListener::bind("127.0.0.1:0").await?;
    let dashboard = admin.local_addr()?;
    // No token: the admin listener is on loopback only.
    let mut app_options = crate::app::Options::new(config, vec![listener]);
    app_options.admin = Some(admin);
    app_options.analysis_window = DASHBOARD_WINDOW;
    let app = crate::app::start(app_options).await;
    out(format!(
        "proxy on http://{proxy}  v1 on {v1}  v2 on {v2} (error rate {}%, +{:?})",
        options.v2_error_rate, options.v2_latency
    ));
    out(format!("dashboard: http://{dashboard}/"));
    out(format!("canary v1 -> v2: steps {:?}, interval {:?}, pass = success rate >= 99%, p95 <= 500ms, >= 20 requests", options.steps, options.interval));

    // Bounded even if every step holds on inconclusive intervals for a while.
    let deadline = Instant::now() + options.interval * (options.steps.len() as u32 + 2) * 6;
    let load: Vec<_> = (0..options.clients)
        .map(|_| tokio::spawn(generate_load(proxy, deadline)))
        .collect();
    app.controller.start("demo", "v2", None).await?;

    let mut printed = 0;
    let mut live = Live::default();
    let outcome = loop {
        if options.live {
            if let Some(line) = live.line(&app, &options.steps) {
                out(line);
            }
        }
        let events = app.events.transitions();
        for event in &events[printed.min(events.len())..] {
            out(describe(event, &options.steps));
        }
        printed = events.len();
        match events.last().and_then(|e| e.phase) {
            Some(Phase::Promoted) => break Some(Outcome::Promoted),
            Some(Phase::RolledBack) => break Some(Outcome::RolledBack),
            _ if Instant::now() > deadline => break None,
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    };
    for task in load {
        task.abort();
    }
    let outcome = match outcome {
        Some(outcome) => outcome,
        None => {
            out("the canary did not finish in time: rolling back".into());
            let _ = app.controller.command("demo", Command::Rollback).await;
            Outcome::RolledBack
        }
    };
    let mut keep = std::pin::pin!(keep);
    if futures_ready(&mut keep).await.is_none() {
        let verb = match outcome {
            Outcome::Promoted => "promoted",
            Outcome::RolledBack => "rolled back",
        };
        out(format!("{verb}; still serving until interrupted (Ctrl-C)"));
        keep.await;
    }
    app.shutdown(Duration::from_secs(1)).await;
    let _ = std::fs::remove_dir_all(&state_dir);
    Ok(outcome)
}

/// How often the status' per-pool analysis window (what the dashboard's
/// p95 chart shows) closes during the demo.
const DASHBOARD_WINDOW: Duration = Duration::from_secs(2);

/// `Some` when `future` is already done, without waiting for it.
async fn futures_ready<F: std::future::Future + Unpin>(future: &mut F) -> Option<F::Output> {
    tokio::select! {
        biased;
        v = future => Some(v),
        () = std::future::ready(()) => None,
    }
}

/// The live status line: per-version figures over the last second.
#[derive(Default)]
struct Live {
    last: Option<(Instant, [crate::observe::StatsSnapshot; 2])>,
}

impl Live {
    fn line(&mut self, app: &App, steps: &[u32]) -> Option<String> {
        let now = Instant::now();
        if self
            .last
            .as_ref()
            .is_some_and(|(at, _)| now.duration_since(*at) < Duration::from_millis(500))
        {
            return None;
        }
        let snapshot = app.routing.load();
        let route = snapshot.route_named("demo")?;
        let v2 = route
            .weights
            .percent
            .iter()
            .find(|(p, _)| p == "v2")
            .map_or(0, |(_, w)| *w);
        let stats =
            |pool: &str, version: &str| app.telemetry.stats("demo", pool, version).snapshot();
        let current = [stats("v1", "1.0.0"), stats("v2", "2.0.0")];
        let line = self.last.as_ref().map(|(at, before)| {
            let secs = now.duration_since(*at).as_secs_f64().max(0.001);
            let figures = |i: usize| {
                let w = Window::between(&before[i], &current[i]);
                let p95 = w
                    .p95
                    .map_or("-".into(), |d| format!("{:.1}ms", d.as_secs_f64() * 1000.0));
                format!(
                    "{:>4.0} req/s {:5.1}% ok p95 {p95:>7}",
                    w.requests as f64 / secs,
                    w.success_rate
                )
            };
            let done = steps.iter().filter(|&&s| s <= v2).count();
            let bar: String = (0..steps.len())
                .map(|i| if i < done { '#' } else { '.' })
                .collect();
            format!(
                "\r[{bar}] v1 {:>3}% v2 {v2:>3}% | v1 {} | v2 {}",
                100 - v2,
                figures(0),
                figures(1)
            )
        });
        self.last = Some((now, current));
        line
    }
}

/// One event as a line: a progress bar, the weights, and the figures of
/// the verdict (if this event carried one).
fn describe(event: &Event, steps: &[u32]) -> String {
    let v2 = event
        .weights
        .iter()
        .flatten()
        .find(|(p, _)| p == "v2")
        .map_or(0, |(_, w)| *w);
    let done = steps.iter().filter(|&&s| s <= v2).count();
    let bar: String = (0..steps.len())
        .map(|i| if i < done { '#' } else { '.' })
        .collect();
    let mut line = format!(
        "[{bar}] {:<18} v1 {:>3}%  v2 {:>3}%  {}",
        event.phase.map_or("-", Phase::as_str),
        100 - v2,
        v2,
        event.message
    );
    if let Some(verdict) = &event.verdict {
        let fmt = |w: &Window| {
            let p95 = w
                .p95
                .map_or("-".into(), |d| format!("{:.1}ms", d.as_secs_f64() * 1000.0));
            format!("{} req {:.1}% ok p95 {p95}", w.requests, w.success_rate)
        };
        line.push_str(&format!("\n        v2: {}", fmt(&verdict.candidate)));
        if let Some(stable) = &verdict.stable {
            line.push_str(&format!("  |  v1: {}", fmt(stable)));
        }
    }
    line
}

async fn generate_load(proxy: SocketAddr, deadline: Instant) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let uri: http::Uri = format!("http://{proxy}/").parse().expect("a valid URI");
    while Instant::now() < deadline {
        let req = Request::get(uri.clone())
            .body(Empty::new())
            .expect("a valid request");
        if let Ok(Ok(resp)) =
            tokio::time::timeout(Duration::from_secs(5), client.request(req)).await
        {
            let _ = resp.into_body().collect().await;
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
                    let body = Full::new(Bytes::from(format!("hello from {name}\n")));
                    let resp = Response::builder()
                        .status(status)
                        .header("x-version", name)
                        .body(body);
                    Ok::<_, Infallible>(resp.expect("a valid response"))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(addr)
}
