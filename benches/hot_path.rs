//! Micro benchmarks of the per-request hot path: route match + weighted
//! pick at 1, 100 and 10,000 routes, histogram recording alone and with
//! two threads contending on the same route×pool, and the host and path
//! checks before routing.
//!
//! `cargo bench --bench hot_path`

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use veer::observe::Telemetry;
use veer::routing::Routing;

fn config(routes: usize) -> String {
    let mut toml = String::from(
        "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"blue\"\nendpoints = [\"127.0.0.1:9001\"]\n\
         [[pool]]\nname = \"green\"\nendpoints = [\"127.0.0.1:9002\"]\n",
    );
    for i in 0..routes {
        toml.push_str(&format!(
            "[[route]]\nname = \"r{i}\"\nhost = \"svc{i}.example.com\"\npath_prefix = \"/api\"\npool = \"blue\"\nweights = {{ blue = 90, green = 10 }}\n"
        ));
    }
    toml
}

fn route_and_pick(c: &mut Criterion) {
    let mut group = c.benchmark_group("route_match_and_pick");
    for routes in [1usize, 100, 10_000] {
        let config =
            Arc::new(veer::config::parse(&config(routes), Path::new("bench.toml")).unwrap());
        let routing = Routing::new(config, Default::default());
        let host = format!("svc{}.example.com", routes / 2);
        let (parts, ()) = http::Request::get("/api/users/42")
            .header("host", host)
            .body(())
            .unwrap()
            .into_parts();
        group.bench_function(format!("{routes}_routes"), |b| {
            b.iter(|| {
                let snapshot = routing.load();
                let host = veer::routing::request_host(&parts);
                let route = snapshot.route(host.as_deref(), parts.uri.path()).unwrap();
                black_box(route.select(&parts).unwrap().pool.name.len())
            })
        });
    }
    group.finish();
}

fn histogram_record(c: &mut Criterion) {
    let registry = Telemetry::default();
    let stats = registry.stats("route", "pool", "v1");
    let mut group = c.benchmark_group("histogram_record");
    group.bench_function("one_thread", |b| {
        let mut us = 0u64;
        b.iter(|| {
            us = (us + 37) % 50_000;
            stats.record_response(http::StatusCode::OK, Duration::from_micros(us));
        })
    });
    // Two threads record into the same route×pool at once; the figure is
    // wall time per recording per thread.
    group.bench_function("two_threads_contending", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for t in 0..2u64 {
                    let stats = &stats;
                    s.spawn(move || {
                        for i in 0..iters {
                            let us = (i * 37 + t) % 50_000;
                            stats.record_response(http::StatusCode::OK, Duration::from_micros(us));
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    group.finish();
}

/// The checks every request passes before routing: host and path
/// normalization, on a request that needs no change (the common case:
/// no allocation) and on one that does.
fn request_checks(c: &mut Criterion) {
    let mut group = c.benchmark_group("request_checks");
    let (parts, ()) = http::Request::get("/api/users/42?page=2")
        .header("host", "svc1.example.com")
        .body(())
        .unwrap()
        .into_parts();
    group.bench_function("host_and_path_clean", |b| {
        b.iter(|| {
            let mut parts = parts.clone();
            veer::proxy::host::check(&mut parts).unwrap();
            black_box(
                veer::proxy::path::normalize(parts.uri.path())
                    .unwrap()
                    .len(),
            )
        })
    });
    group.bench_function("path_needing_change", |b| {
        b.iter(|| {
            black_box(
                veer::proxy::path::normalize("/api/./v1/%61b/../users")
                    .unwrap()
                    .len(),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, route_and_pick, histogram_record, request_checks);
criterion_main!(benches);
