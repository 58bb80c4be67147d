//! A client's fault is never an upstream's failure: malformed request
//! bodies are 400, aborted uploads 499, and neither counts against the
//! endpoint, the outlier detector, the tripwire or the analysis. A new
//! rollout starts with a clean failure streak.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use veer::rollout::Phase;

use crate::support::*;

const MALFORMED: [&[u8]; 4] = [
    b"0x5\r\nhello\r\n0\r\n\r\n",
    b" 5\r\nhello\r\n0\r\n\r\n",
    b"fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
    b"5\nhello\r\n0\r\n\r\n",
];

const OUTLIER: &str = "[pool.outlier]\nconsecutive_failures = 3\nmax_ejected_percent = 100\n";

fn canary(blue: std::net::SocketAddr, green: std::net::SocketAddr, outlier: &str) -> String {
    format!(
        "{}{}{}[[route]]\nname = \"app\"\npool = \"blue\"\nretries = 0\n\
         [route.rollout]\nstrategy = \"canary\"\nsteps = [50, 100]\ninterval = \"400ms\"\n\
         threshold = 1\ntripwire = 5\n[route.rollout.analysis]\nmin_requests = 5\n\
         success_rate = 99.0\n",
        config(&[], ""),
        pool_toml("blue", &[blue], outlier),
        pool_toml("green", &[green], outlier),
    )
}

fn candidate_weight(proxy: &Proxy) -> u32 {
    let controller = &proxy.server.as_ref().unwrap().controller;
    controller
        .latest("app")
        .map_or(0, |r| r.traffic.candidate_weight)
}

/// Good traffic until the rollout is promoted (bounded in count and time).
async fn drive_to_promotion(proxy: &Proxy) {
    let controller = proxy.server.as_ref().unwrap().controller.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for _ in 0..20_000 {
        let phase = controller.phase("app");
        if phase == Phase::Promoted {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline && phase != Phase::RolledBack,
            "phase {phase:?}: {:#?}",
            controller.events.transitions()
        );
        let (status, _, _) = get(&proxy.url("/"), &[]).await;
        assert_eq!(status, 200);
    }
    panic!("not promoted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_faults_never_blame_the_upstream() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let proxy = Proxy::start(&canary(blue.addr, green.addr, OUTLIER)).await;
    let app = proxy.server.as_ref().unwrap();
    app.controller.start("app", "green", None).await.unwrap();
    let weight = || candidate_weight(&proxy);
    eventually(Duration::from_secs(10), || weight() == 50).await;

    for i in 0..100 {
        let mut request =
            b"POST /consume HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        request.extend_from_slice(MALFORMED[i % MALFORMED.len()]);
        let reply = raw_exchange(proxy.addr, &request, Duration::from_secs(5)).await;
        assert!(reply.starts_with("HTTP/1.1 400"), "{i}: {reply}");
    }
    for _ in 0..50 {
        let seen = blue.requests().len() + green.requests().len();
        let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
        let head = b"POST /consume HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n0123456789";
        stream.write_all(head).await.unwrap();
        // The upload reached an upstream; then the client goes away.
        let forwarded = || blue.requests().len() + green.requests().len() > seen;
        eventually(Duration::from_secs(5), forwarded).await;
        drop(stream);
    }
    let stats = |pool: &str| app.telemetry.stats("app", pool, "");
    eventually(Duration::from_secs(10), || {
        stats("blue").snapshot().in_flight == 0 && stats("green").snapshot().in_flight == 0
    })
    .await;
    for pool in ["blue", "green"] {
        let snap = stats(pool).snapshot();
        assert_eq!(snap.failures, 0, "{pool}: {snap:?}");
        assert_eq!(snap.upstream_errors, [0; 4], "{pool}");
        assert_eq!(stats(pool).consecutive_failures(), 0, "{pool}");
        assert_eq!(snap.codes[4], 0, "{pool}: no 5xx");
    }
    assert!(!green.requests().is_empty(), "the candidate got its share");
    assert!(!endpoint(&proxy, "green", green.addr).is_ejected());
    assert!(!endpoint(&proxy, "blue", blue.addr).is_ejected());
    assert_eq!(app.controller.phase("app"), Phase::Progressing);
    drive_to_promotion(&proxy).await;
}

/// Failures of the candidate pool from before the rollout (here: while an
/// operator split sent it traffic) never trip the new rollout's tripwire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_rollout_starts_with_a_clean_streak() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let proxy = Proxy::start(&canary(blue.addr, green.addr, "")).await;
    let app = proxy.server.as_ref().unwrap();
    let weights = |g: u32| vec![("blue".to_string(), 100 - g), ("green".to_string(), g)];
    app.controller
        .set_weights("app", weights(100))
        .await
        .unwrap();
    green
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    for _ in 0..10 {
        let (status, _, _) = get(&proxy.url("/"), &[]).await;
        assert_eq!(status, 500);
    }
    let green_stats = app.telemetry.stats("app", "green", "");
    assert!(green_stats.consecutive_failures() >= 10);
    app.controller.set_weights("app", weights(0)).await.unwrap();
    green
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);

    app.controller.start("app", "green", None).await.unwrap();
    // No traffic until the first analysis interval has been judged: the
    // controller drove the rollout many times with the old streak present.
    let controller = app.controller.clone();
    eventually(Duration::from_secs(10), || {
        controller.phase("app") == Phase::RolledBack
            || controller
                .view("app")
                .is_some_and(|v| v.record.verdict.is_some())
    })
    .await;
    assert_eq!(controller.phase("app"), Phase::Progressing);
    drive_to_promotion(&proxy).await;
    let rolled_back = app
        .controller
        .events
        .transitions()
        .iter()
        .any(|e| e.phase == Some(Phase::RolledBack));
    assert!(!rolled_back);
}

/// Over an h2 (TLS, ALPN) upstream too: a broken upload is the client's
/// fault (hyper resets the upstream stream itself; veer answers 499, as it
/// cannot tell which fault it was), never counted against the endpoint.
#[tokio::test]
async fn client_faults_over_an_h2_upstream() {
    use crate::support::tls::{https_upstream, Pki};
    use rcgen::PKCS_ECDSA_P256_SHA256;
    let dir = temp_dir("client-fault-h2");
    let pki = Pki::new(&dir, "ca");
    let back = pki.issue("back", &["localhost"], &PKCS_ECDSA_P256_SHA256);
    let (addr, _task) = https_upstream("grpc", &back, true).await;
    let toml = format!(
        "{}[[pool]]\nname = \"api\"\nendpoints = [\"https://localhost:{}\"]\n\
         [pool.tls]\nca = {:?}\nh2 = true\n\
         [pool.outlier]\nconsecutive_failures = 2\nmax_ejected_percent = 100\n\
         [[route]]\nname = \"app\"\npool = \"api\"\nretries = 0\n",
        config(&[], ""),
        addr.port(),
        pki.ca_path("ca"),
    );
    let proxy = Proxy::start(&toml).await;
    let app = proxy.server.as_ref().unwrap();
    // Warm the shared h2 connection first.
    let (status, _, _) = get(&proxy.url("/"), &[]).await;
    assert_eq!(status, 200);
    for (i, bad) in MALFORMED.iter().enumerate() {
        // A good chunk, then a bad one (in a second write).
        let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
        let head =
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n";
        stream.write_all(head).await.unwrap();
        stream.write_all(bad).await.unwrap();
        let mut reply = Vec::new();
        let read = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut reply);
        let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
        let reply = String::from_utf8_lossy(&reply);
        assert!(
            reply.starts_with("HTTP/1.1 400") || reply.starts_with("HTTP/1.1 499"),
            "{i}: {reply}"
        );
    }
    let stats = app.telemetry.stats("app", "api", "");
    eventually(Duration::from_secs(10), || stats.snapshot().in_flight == 0).await;
    assert_eq!(stats.snapshot().failures, 0, "{:?}", stats.snapshot());
    let ep = proxy.routing().load().pools[0].endpoints[0].clone();
    assert!(!ep.is_ejected());
}
