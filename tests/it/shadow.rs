//! Shadow traffic (SPEC §12) end to end: JSON upstreams on 127.0.0.1, a
//! real veer in front, the mirror comparing; the rollout's shadow stage
//! deciding before any user reaches the candidate.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::metrics::promtool_check;
use crate::support::*;
use veer::control::EventKind;
use veer::rollout::Phase;

/// What a JSON upstream answers to its n-th request.
type Body = fn(u64) -> String;

/// One request a JSON upstream received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    shadow: bool,
}

/// An upstream answering JSON made by `body`, saying who it is in
/// `x-upstream`; with `gate`, every answer first waits for a permit.
struct JsonUpstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JsonUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl JsonUpstream {
    async fn start(name: &'static str, body: Body, gate: Option<Arc<Semaphore>>) -> JsonUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let count = Arc::new(AtomicU64::new(0));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (log, count, gate) = (log.clone(), count.clone(), gate.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (log, count, gate) = (log.clone(), count.clone(), gate.clone());
                        async move {
                            log.lock().unwrap().push(Seen {
                                method: req.method().to_string(),
                                shadow: req
                                    .headers()
                                    .get("x-veer-shadow")
                                    .is_some_and(|v| v == "1"),
                            });
                            if let Some(gate) = gate {
                                gate.acquire().await.unwrap().forget();
                            }
                            let n = count.fetch_add(1, Ordering::SeqCst);
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .header("x-upstream", name)
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(body(n))))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        JsonUpstream { addr, seen, task }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn v1(n: u64) -> String {
    format!(
        r#"{{"id":7,"price":10,"name":"widget","timestamp":{n},"nonce":"{}"}}"#,
        nonce()
    )
}

/// Differs from v1 in one field's type: `price` is a string.
fn v2_bad(n: u64) -> String {
    format!(
        r#"{{"id":7,"price":"10","name":"widget","timestamp":{n},"nonce":"{}"}}"#,
        nonce()
    )
}

/// Differs from v1 only in the timestamp (ignored) and the nonce (noise).
fn v2_same(n: u64) -> String {
    format!(
        r#"{{"id":7,"price":10,"name":"widget","timestamp":{},"nonce":"{}"}}"#,
        n + 1_000_000,
        nonce()
    )
}

/// Different on every call, on every version: what only noise removes.
fn nonce() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("n{}", NEXT.fetch_add(1, Ordering::SeqCst))
}

/// GETs to `url` until stopped (bounded in count and time), counting the
/// answers per upstream.
struct Load {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl Load {
    fn start(url: String) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let task = tokio::spawn(async move {
            let client = client();
            let mut who = Vec::new();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
            for _ in 0..20_000 {
                if s.load(Ordering::Relaxed) || tokio::time::Instant::now() > deadline {
                    break;
                }
                let req = Request::get(&url).body(empty()).unwrap();
                let (status, h, _) = send(&client, req).await;
                assert_eq!(status, 200);
                who.push(h.get("x-upstream").unwrap().to_str().unwrap().to_string());
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            who
        });
        Load { stop, task }
    }

    async fn finish(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.unwrap()
    }
}

async fn wait_phase(proxy: &Proxy, want: &[Phase], limit: Duration) -> Phase {
    let controller = &proxy.server.as_ref().unwrap().controller;
    let start = tokio::time::Instant::now();
    loop {
        let phase = controller.phase("app");
        if want.contains(&phase) {
            return phase;
        }
        assert!(
            start.elapsed() < limit,
            "phase {phase:?}, wanted {want:?}; events {:#?}",
            controller.events.transitions()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn rollout(blue: SocketAddr, green: SocketAddr, compare: &str) -> String {
    config(
        &[("blue", &[blue]), ("green", &[green])],
        &format!(
            "[[route]]\nname = \"app\"\npool = \"blue\"\nretries = 0\n\
             [route.rollout]\nstrategy = \"canary\"\nsteps = [50, 100]\ninterval = \"500ms\"\nthreshold = 1\n\
             [route.rollout.analysis]\nmin_requests = 5\n\
             [route.rollout.shadow]\niterations = 2\nmin_compared = 10\nmax_mismatch_rate = 1.0\n\
             [route.rollout.shadow.compare]\n{compare}"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_catches_a_differing_field_before_any_user_reaches_the_candidate() {
    let blue = JsonUpstream::start("blue", v1, None).await;
    let green = JsonUpstream::start("green", v2_bad, None).await;
    let toml = rollout(
        blue.addr,
        green.addr,
        "ignore = [\"$.timestamp\", \"$.nonce\"]\n",
    );
    let proxy = Proxy::start(&toml).await;
    let load = Load::start(proxy.url("/item"));
    let controller = proxy.server.as_ref().unwrap().controller.clone();
    controller.start("app", "green", None).await.unwrap();
    wait_phase(&proxy, &[Phase::RolledBack], Duration::from_secs(20)).await;
    let served = load.finish().await;
    assert!(
        served.iter().all(|who| who == "blue"),
        "no client answer from green"
    );
    let at_green = green.seen();
    assert!(!at_green.is_empty(), "green got copies");
    assert!(
        at_green.iter().all(|s| s.shadow),
        "every request green saw is a copy (0 client requests): {at_green:?}"
    );

    let record = controller.view("app").unwrap().record;
    let verdict = record.verdict.unwrap();
    assert!(
        verdict.reasons[0].contains("$.price"),
        "{:?}",
        verdict.reasons
    );
    let shadow = record.shadow.expect("the shadow interval's summary");
    assert_eq!(shadow.fields[0].field, "$.price");
    assert_eq!(shadow.fields[0].count, shadow.mismatched);
    assert!(!shadow.samples.is_empty() && shadow.samples.len() <= 5);
    for sample in &shadow.samples {
        assert!(
            sample.contains("GET /item: $.price number -> string"),
            "{sample}"
        );
        assert!(
            !sample.contains("10") && !sample.contains("widget"),
            "no values: {sample}"
        );
    }
    let events = controller.events.transitions();
    assert!(
        events
            .iter()
            .any(|e| e.message.contains("shadow mismatch rate")),
        "{events:#?}"
    );
    let recent = controller.events.recent();
    assert!(
        recent.iter().any(|e| e.kind == EventKind::Shadow
            && e.message.contains("fields: $.price x")
            && e.message
                .contains("e.g. GET /item: $.price number -> string")),
        "{recent:#?}"
    );
    // What `veer status` prints of it.
    let control = proxy.server.as_ref().unwrap().control.clone();
    let table = veer::admin::table::render(&control.status());
    eprintln!("{table}");
    assert!(table.contains("app: shadow interval to green: "), "{table}");
    assert!(table.contains("  - $.price x"), "{table}");
    assert!(
        table.contains("  e.g. GET /item: $.price number -> string"),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_and_noisy_fields_pass_and_the_canary_proceeds() {
    let blue = JsonUpstream::start("blue", v1, None).await;
    let green = JsonUpstream::start("green", v2_same, None).await;
    let toml = rollout(
        blue.addr,
        green.addr,
        "ignore = [\"$.timestamp\"]\nnoise = true\nheaders = [\"content-type\"]\n",
    );
    let proxy = Proxy::start(&toml).await;
    let load = Load::start(proxy.url("/item"));
    let controller = proxy.server.as_ref().unwrap().controller.clone();
    controller.start("app", "green", None).await.unwrap();
    wait_phase(
        &proxy,
        &[Phase::Promoted, Phase::RolledBack],
        Duration::from_secs(25),
    )
    .await;
    let served = load.finish().await;
    assert_eq!(
        controller.phase("app"),
        Phase::Promoted,
        "{:#?}",
        controller.events.transitions()
    );
    assert!(
        served.iter().any(|w| w == "green"),
        "the canary sent users to green"
    );
    let events = controller.events.transitions();
    let passed = events
        .iter()
        .position(|e| e.message.starts_with("shadow passed"));
    let first_user = events.iter().position(|e| {
        e.weights
            .iter()
            .flatten()
            .any(|(p, w)| p == "green" && *w > 0)
    });
    assert!(passed.is_some() && passed <= first_user, "{events:#?}");
    let shadow = controller.view("app").unwrap().record.shadow.unwrap();
    assert_eq!(shadow.mismatched, 0, "{shadow:?}");
    assert!(shadow.noise.contains(&"$.nonce".to_string()), "{shadow:?}");
}

fn dark_launch(blue: SocketAddr, green: SocketAddr, mirror: &str) -> String {
    config(
        &[("blue", &[blue]), ("green", &[green])],
        &format!("[[route]]\nname = \"app\"\npool = \"blue\"\n[route.mirror]\npool = \"green\"\n{mirror}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_is_not_mirrored_by_default_and_copies_are_marked() {
    let blue = JsonUpstream::start("blue", v1, None).await;
    let green = JsonUpstream::start("green", v2_bad, None).await;
    let proxy = Proxy::start(&dark_launch(blue.addr, green.addr, "")).await;
    let client = client();
    for method in ["POST", "DELETE", "GET", "POST", "GET"] {
        let req = Request::builder()
            .method(method)
            .uri(proxy.url("/item"))
            .body(empty())
            .unwrap();
        let (status, h, _) = send(&client, req).await;
        assert_eq!(
            (
                status.as_u16(),
                h.get("x-upstream").unwrap().to_str().unwrap()
            ),
            (200, "blue")
        );
    }
    let telemetry = proxy.server.as_ref().unwrap().telemetry.clone();
    let stats = telemetry.shadow.stats("app", "green");
    eventually(Duration::from_secs(10), || stats.snapshot().mismatched == 2).await;
    let seen = green.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen.iter().all(|s| s.method == "GET" && s.shadow),
        "{seen:?}"
    );
    assert_eq!(blue.seen().len(), 5);

    let text = veer::admin::metrics::render(&telemetry, &proxy.routing().load(), |_| Phase::Idle);
    assert!(
        text.contains(
            "veer_shadow_requests_total{route=\"app\",pool=\"green\",result=\"mismatch\"} 2"
        ),
        "{text}"
    );
    promtool_check(&text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_copies_and_clients_never_wait() {
    let blue = JsonUpstream::start("blue", v1, None).await;
    // Green answers nothing until the test lets it: every copy stays in
    // the queue while clients are served.
    let gate = Arc::new(Semaphore::new(0));
    let green = JsonUpstream::start("green", v1, Some(gate.clone())).await;
    let toml = dark_launch(
        blue.addr,
        green.addr,
        "queue = 4\n[route.mirror.compare]\nbody = \"none\"\n",
    );
    let proxy = Proxy::start(&toml).await;
    let stats = proxy
        .server
        .as_ref()
        .unwrap()
        .telemetry
        .shadow
        .stats("app", "green");
    let client = client();
    for _ in 0..40 {
        let req = Request::get(proxy.url("/item")).body(empty()).unwrap();
        let (status, h, _) = send(&client, req).await;
        assert_eq!(
            (
                status.as_u16(),
                h.get("x-upstream").unwrap().to_str().unwrap()
            ),
            (200, "blue")
        );
    }
    // All 40 answered while green has answered none.
    let snap = stats.snapshot();
    assert_eq!(snap.matched + snap.mismatched + snap.errors, 0);
    assert_eq!((snap.dropped, stats.outstanding()), (36, 4));
    gate.add_permits(1000);
    eventually(Duration::from_secs(10), || stats.outstanding() == 0).await;
    let snap = stats.snapshot();
    assert_eq!((snap.matched, snap.dropped), (4, 36));
}
