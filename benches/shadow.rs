//! Does mirroring slow clients down? The same route with and without a
//! `[route.mirror]` to a pool that takes 2 s to answer, under the same
//! closed-loop load, in alternating rounds: client latency p50/p99 per
//! mode, and what the mirror counted (most copies dropped: its queue of
//! 64 stays full while the slow pool holds them).
//!
//! `cargo bench --bench shadow` (ROUNDS, REQUESTS per round and client,
//! CLIENTS; defaults 3, 500, 4). Everything on 127.0.0.1.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A JSON upstream that waits `delay` before answering.
async fn upstream(delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req: Request<Incoming>| async move {
                    tokio::time::sleep(delay).await;
                    let body = Bytes::from_static(br#"{"id":7,"price":10,"name":"widget"}"#);
                    Ok::<_, Infallible>(
                        Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(body))
                            .unwrap(),
                    )
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

async fn proxy(blue: SocketAddr, green: SocketAddr, mirror: bool) -> veer::app::App {
    let mirror = if mirror {
        "[route.mirror]\npool = \"green\"\n"
    } else {
        ""
    };
    let toml = format!(
        "[proxy]\nworkers = 1\n[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"blue\"\nendpoints = [\"{blue}\"]\n\
         [[pool]]\nname = \"green\"\nendpoints = [\"{green}\"]\n\
         [[route]]\nname = \"app\"\npool = \"blue\"\n{mirror}"
    );
    let mut config = veer::config::parse(&toml, Path::new("bench.toml")).unwrap();
    let dir = std::env::temp_dir().join(format!(
        "veer-shadow-bench-{}-{mirror:?}",
        std::process::id()
    ));
    config.proxy.state_dir = dir;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    veer::app::start(veer::app::Options::new(Arc::new(config), vec![listener])).await
}

/// `clients` closed-loop clients, `requests` each: every latency.
async fn load(addr: SocketAddr, clients: usize, requests: usize) -> Vec<Duration> {
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            tokio::spawn(async move {
                let client: Client<_, Empty<Bytes>> =
                    Client::builder(TokioExecutor::new()).build_http();
                let url: http::Uri = format!("http://{addr}/item").parse().unwrap();
                let mut took = Vec::with_capacity(requests);
                for _ in 0..requests {
                    let start = Instant::now();
                    let resp = client.get(url.clone()).await.unwrap();
                    assert_eq!(resp.status(), 200);
                    resp.into_body().collect().await.unwrap();
                    took.push(start.elapsed());
                }
                took
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (rounds, requests, clients) = (env("ROUNDS", 3), env("REQUESTS", 500), env("CLIENTS", 4));
        let blue = upstream(Duration::ZERO).await;
        let green = upstream(Duration::from_secs(2)).await;
        let off = proxy(blue, green, false).await;
        let on = proxy(blue, green, true).await;
        // Warm both (connections, allocator).
        load(off.addrs[0], clients, 50).await;
        load(on.addrs[0], clients, 50).await;
        let (mut without, mut with) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            without.extend(load(off.addrs[0], clients, requests).await);
            with.extend(load(on.addrs[0], clients, requests).await);
        }
        without.sort();
        with.sort();
        println!("shadow bench: {rounds} rounds x {clients} clients x {requests} requests per mode; mirror pool answers after 2 s");
        println!("| mode | requests | p50 ms | p99 ms | max ms |");
        println!("|---|---|---|---|---|");
        for (name, d) in [("mirror off", &without), ("mirror on", &with)] {
            println!(
                "| {name} | {} | {} | {} | {} |",
                d.len(),
                ms(quantile(d, 0.5)),
                ms(quantile(d, 0.99)),
                ms(*d.last().unwrap())
            );
        }
        let ratio = quantile(&with, 0.99).as_secs_f64() / quantile(&without, 0.99).as_secs_f64();
        println!("p99 on/off: {ratio:.3} ({})", if ratio <= 1.10 { "within 10%" } else { "NOT within 10%" });
        let s = on.telemetry.shadow.stats("app", "green").snapshot();
        println!(
            "mirror counted: match {} mismatch {} dropped {} error {} (outstanding {})",
            s.matched,
            s.mismatched,
            s.dropped,
            s.errors,
            on.telemetry.shadow.stats("app", "green").outstanding()
        );
    });
}
