//! Endpoints leave and rejoin rotation: active health checks and passive
//! outlier detection, through a real veer to real upstreams.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::*;

const CHECKS: &str = "[pool.health]\npath = \"/ready\"\ninterval = \"50ms\"\ntimeout = \"500ms\"\n\
                      healthy_threshold = 2\nunhealthy_threshold = 2\n";
const ROUTE: &str = "[[route]]\nname = \"app\"\npool = \"app\"\n";
const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn failing_check_leaves_rotation_and_recovery_returns() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let pool = pool_toml("app", &[a.addr, b.addr], CHECKS);
    let proxy = Proxy::start(&config(&[], &format!("{pool}{ROUTE}"))).await;
    let (ea, eb) = (
        endpoint(&proxy, "app", a.addr),
        endpoint(&proxy, "app", b.addr),
    );
    eventually(WAIT, || ea.is_healthy() && eb.is_healthy()).await;
    let both = tally(&proxy.url("/"), 40, &[]).await;
    assert!(both["a"] > 0 && both["b"] > 0, "{both:?}");

    b.ready.store(false, Ordering::SeqCst);
    eventually(WAIT, || !eb.is_healthy()).await;
    assert!(eb.conns.idle_count() == 0, "idle connections to b closed");
    let only_a = tally(&proxy.url("/"), 40, &[]).await;
    assert_eq!(only_a.get("b"), None, "{only_a:?}");

    b.ready.store(true, Ordering::SeqCst);
    eventually(WAIT, || eb.is_healthy()).await;
    let back = tally(&proxy.url("/"), 40, &[]).await;
    assert!(back["b"] > 0, "{back:?}");
}

#[tokio::test]
async fn new_endpoints_get_traffic_only_once_a_check_passed() {
    let (a, late) = (Upstream::start("a").await, Upstream::start("late").await);
    late.ready.store(false, Ordering::SeqCst);
    let dead = dead_addr().await;
    let pool = pool_toml("app", &[a.addr, late.addr, dead], CHECKS);
    let proxy = Proxy::start(&config(&[], &format!("{pool}{ROUTE}"))).await;
    eventually(WAIT, || endpoint(&proxy, "app", a.addr).is_healthy()).await;
    let counts = tally(&proxy.url("/"), 40, &[]).await;
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert!(late.requests().is_empty(), "{:?}", late.requests());
    assert!(!endpoint(&proxy, "app", dead).is_healthy());

    late.ready.store(true, Ordering::SeqCst);
    eventually(WAIT, || endpoint(&proxy, "app", late.addr).is_healthy()).await;
    let counts = tally(&proxy.url("/"), 40, &[]).await;
    assert!(counts["late"] > 0, "{counts:?}");
}

#[tokio::test]
async fn unchanged_endpoints_keep_health_across_a_reload() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let text = |eps: &[std::net::SocketAddr]| {
        config(&[], &format!("{}{ROUTE}", pool_toml("app", eps, CHECKS)))
    };
    let proxy = Proxy::start(&text(&[a.addr])).await;
    let ea = endpoint(&proxy, "app", a.addr);
    eventually(WAIT, || ea.is_healthy()).await;
    let reloaded = veer::config::parse(&text(&[a.addr, b.addr]), "test.toml".as_ref()).unwrap();
    proxy.routing().set_config(std::sync::Arc::new(reloaded));
    // Same state, still healthy: no request fails meanwhile (`tally`
    // asserts 200 for each), and b joins once checked.
    assert!(std::sync::Arc::ptr_eq(
        &ea,
        &endpoint(&proxy, "app", a.addr)
    ));
    assert!(ea.is_healthy());
    tally(&proxy.url("/"), 20, &[]).await;
    eventually(WAIT, || endpoint(&proxy, "app", b.addr).is_healthy()).await;
    let counts = tally(&proxy.url("/"), 40, &[]).await;
    assert!(counts["b"] > 0, "{counts:?}");
}

#[tokio::test]
async fn failing_endpoint_is_ejected_then_returns() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let outlier = "balance = \"round_robin\"\n[pool.outlier]\nconsecutive_failures = 3\n\
                   base_ejection = \"500ms\"\nmax_ejected_percent = 50\n";
    let pool = pool_toml("app", &[a.addr, b.addr], outlier);
    let proxy = Proxy::start(&config(&[], &format!("{pool}{ROUTE}"))).await;
    let eb = endpoint(&proxy, "app", b.addr);

    b.failing.store(true, Ordering::SeqCst);
    let client = client();
    let mut failed = 0;
    for _ in 0..20 {
        let req = http::Request::get(proxy.url("/")).body(empty()).unwrap();
        let (status, _, _) = send(&client, req).await;
        failed += usize::from(status == 500);
        if eb.is_ejected() {
            break;
        }
    }
    assert!(eb.is_ejected(), "b ejected");
    assert_eq!(failed, 3, "ejected after exactly 3 failures in a row");
    let ejected_at = tokio::time::Instant::now();
    let counts = tally(&proxy.url("/"), 20, &[]).await;
    assert_eq!(counts["a"], 20, "{counts:?}");

    b.failing.store(false, Ordering::SeqCst);
    eventually(WAIT, || !eb.is_ejected()).await;
    assert!(ejected_at.elapsed() >= Duration::from_millis(400));
    let counts = tally(&proxy.url("/"), 20, &[]).await;
    assert!(counts["b"] > 0, "b back in rotation: {counts:?}");
}

#[tokio::test]
async fn the_last_endpoint_is_never_ejected() {
    let a = Upstream::start("a").await;
    a.failing.store(true, Ordering::SeqCst);
    let outlier = "[pool.outlier]\nconsecutive_failures = 2\nmax_ejected_percent = 100\n";
    let pool = pool_toml("app", &[a.addr], outlier);
    let proxy = Proxy::start(&config(&[], &format!("{pool}{ROUTE}"))).await;
    for _ in 0..10 {
        let (status, _, _) = get(&proxy.url("/"), &[]).await;
        assert_eq!(status, 500, "the upstream's own answer, not 503");
    }
    assert!(!endpoint(&proxy, "app", a.addr).is_ejected());
}

#[tokio::test]
async fn connect_failures_eject_before_clients_see_them() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let dead = dead_addr().await;
    let outlier = "balance = \"round_robin\"\n[pool.outlier]\nconsecutive_failures = 2\n";
    let pool = pool_toml("app", &[a.addr, b.addr, dead], outlier);
    let proxy = Proxy::start(&config(&[], &format!("{pool}{ROUTE}"))).await;
    // Connect errors are retried on another endpoint (retries = 1), so no
    // client sees them; the dead endpoint is ejected after two.
    let counts = tally(&proxy.url("/"), 30, &[]).await;
    assert_eq!(counts.values().sum::<usize>(), 30);
    assert!(endpoint(&proxy, "app", dead).is_ejected());
}

#[tokio::test]
async fn a_check_needs_only_the_status() {
    // A large body on the check path is not read, and does not stall it.
    let a = Upstream::start("a").await;
    let checks =
        "[pool.health]\npath = \"/bytes/4000000\"\ninterval = \"50ms\"\ntimeout = \"1s\"\n";
    let pool = pool_toml("app", &[a.addr], checks);
    let proxy = Proxy::start(&config(&[], &format!("{pool}{ROUTE}"))).await;
    let ea = endpoint(&proxy, "app", a.addr);
    eventually(WAIT, || ea.is_healthy()).await;
    // Checks keep their 50ms pace: none waits for the body or times out.
    let seen = a.requests().len();
    eventually(Duration::from_millis(900), || {
        a.requests().len() >= seen + 5
    })
    .await;
    assert!(ea.is_healthy());
}
