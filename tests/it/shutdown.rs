//! Graceful shutdown: the real binary on SIGTERM, and `Server::stop` in
//! process for HTTP/2. Streams and WebSocket tunnels in flight at SIGTERM
//! get up to `shutdown_grace`, then are cut; each pool's `drained` (and
//! `veer drain wait`) comes after their last byte or after the cut.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use crate::support::stream;
use crate::support::*;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

const WAIT: Duration = Duration::from_secs(10);

/// A port nothing listens on now (bound, then released).
async fn free_port() -> u16 {
    dead_addr().await.port()
}

/// Starts `veer run` on a temp config in front of `upstream`; returns the
/// child and the listener address once it accepts connections.
async fn start_veer(upstream: SocketAddr, proxy_keys: &str) -> (Child, SocketAddr) {
    let (child, listen, _) = start_veer_with_admin(upstream, proxy_keys).await;
    (child, listen)
}

/// [`start_veer`], also returning the admin API's address.
async fn start_veer_with_admin(
    upstream: SocketAddr,
    proxy_keys: &str,
) -> (Child, SocketAddr, SocketAddr) {
    let dir = std::env::temp_dir().join(format!(
        "veer-shutdown-{}-{}",
        std::process::id(),
        free_port().await
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let listen: SocketAddr = format!("127.0.0.1:{}", free_port().await).parse().unwrap();
    let admin = free_port().await;
    let text = format!(
        "[proxy]\n{proxy_keys}\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n\
         [[listener]]\nname = \"public\"\nlisten = \"{listen}\"\n\
         {}[[route]]\nname = \"app\"\npool = \"app\"\n",
        pool_toml("app", &[upstream], "")
    );
    let path = dir.join("veer.toml");
    std::fs::write(&path, text).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_veer"))
        .arg("run")
        .arg("-c")
        .arg(&path)
        .env("VEER_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    eventually_async(WAIT, || async { TcpStream::connect(listen).await.is_ok() }).await;
    let admin: SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();
    eventually_async(WAIT, || async { TcpStream::connect(admin).await.is_ok() }).await;
    (child, listen, admin)
}

fn signal(child: &Child, name: &str) {
    let pid = child.id().expect("still running").to_string();
    let ok = std::process::Command::new("kill")
        .args([name, &pid])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {name} {pid}");
}

#[tokio::test]
async fn sigterm_finishes_in_flight_refuses_new_and_exits_0() {
    let up = Upstream::start("up").await;
    let keys = "shutdown_delay = \"200ms\"\nshutdown_grace = \"10s\"\n";
    let (mut child, addr) = start_veer(up.addr, keys).await;
    let url = format!("http://{addr}/sleep/1500");
    let slow = tokio::spawn(async move { get(&url, &[]).await });
    eventually(WAIT, || !up.requests().is_empty()).await;

    signal(&child, "-TERM");
    let signalled = tokio::time::Instant::now();
    eventually_async(WAIT, || async { TcpStream::connect(addr).await.is_err() }).await;
    let refused_after = signalled.elapsed();
    assert!(
        !slow.is_finished(),
        "new connections refused while in flight"
    );

    let (status, headers, body) = slow.await.unwrap();
    assert_eq!((status.as_u16(), body.as_str()), (200, "up"));
    assert_eq!(headers["connection"], "close");
    let exit = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.code(), Some(0));
    assert!(
        refused_after >= Duration::from_millis(200),
        "{refused_after:?}"
    );
}

#[tokio::test]
async fn a_second_signal_exits_at_once() {
    let up = Upstream::start("up").await;
    let (mut child, addr) = start_veer(up.addr, "shutdown_grace = \"30s\"\n").await;
    let url = format!("http://{addr}/sleep/20000");
    let _slow = tokio::spawn(async move {
        let _ = client()
            .request(http::Request::get(url).body(empty()).unwrap())
            .await;
    });
    eventually(WAIT, || !up.requests().is_empty()).await;
    signal(&child, "-TERM");
    eventually_async(WAIT, || async { TcpStream::connect(addr).await.is_err() }).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "waiting for the request"
    );
    signal(&child, "-INT");
    let exit = tokio::time::timeout(Duration::from_secs(3), child.wait())
        .await
        .expect("exits at once")
        .unwrap();
    assert_eq!(exit.code(), Some(1));
}

#[tokio::test]
async fn stop_turns_unready_then_lets_h2_requests_finish() {
    let up = Upstream::start("up").await;
    let mut proxy = Proxy::start(&config(
        &[("app", &[up.addr])],
        "[[route]]\nname = \"app\"\npool = \"app\"\n",
    ))
    .await;
    let server = proxy.server.take().unwrap();
    let ready = server.readiness();
    assert!(*ready.borrow());

    // A raw h2 connection, so GOAWAY itself can be seen.
    let tcp = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut h2, conn) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(conn);
    let get = |path: &str| {
        http::Request::get(format!("http://{}{path}", proxy.addr))
            .body(())
            .unwrap()
    };
    let (slow, _) = h2.send_request(get("/sleep/800"), true).unwrap();
    eventually(WAIT, || !up.requests().is_empty()).await;
    let stopping = tokio::spawn(server.stop(Duration::from_millis(100), WAIT));
    eventually(WAIT, || !*ready.borrow()).await;

    let mut resp = tokio::time::timeout(WAIT, slow).await.unwrap().unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.body_mut().data().await.unwrap().unwrap();
    assert_eq!(&body[..], b"up");
    assert!(stopping.await.unwrap(), "all connections finished in grace");
    // GOAWAY: the client may not open new streams; the listener is closed.
    let refused = match h2.ready().await {
        Err(e) => e,
        Ok(mut h2) => match h2.send_request(get("/"), true) {
            Err(e) => e,
            Ok((resp, _)) => resp.await.expect_err("no new stream after GOAWAY"),
        },
    };
    assert!(refused.is_go_away(), "{refused:?}");
    let ended = tokio::time::timeout(WAIT, driver).await.unwrap().unwrap();
    assert!(ended.is_ok(), "{ended:?}");
    assert!(TcpStream::connect(proxy.addr).await.is_err());
}

#[tokio::test]
async fn sigterm_with_workers_finishes_in_flight_on_every_worker() {
    let up = Upstream::start("up").await;
    let keys = "workers = 3\nshutdown_delay = \"100ms\"\nshutdown_grace = \"10s\"\n";
    let (mut child, addr) = start_veer(up.addr, keys).await;
    // A fresh connection each: three in a row land on three workers.
    let slow: Vec<_> = (0..3)
        .map(|_| {
            let url = format!("http://{addr}/sleep/1000");
            tokio::spawn(async move { get(&url, &[]).await })
        })
        .collect();
    eventually(WAIT, || up.requests().len() >= 3).await;

    signal(&child, "-TERM");
    for request in slow {
        let (status, _, body) = request.await.unwrap();
        assert_eq!((status.as_u16(), body.as_str()), (200, "up"));
    }
    let exit = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.code(), Some(0));
}

/// `veer drain wait app` against `admin`, through a relay; returns once
/// its request has reached veer.
async fn drain_wait(admin: SocketAddr) -> tokio::task::JoinHandle<stream::CliRun> {
    let (relay, mut through) = stream::relay(admin).await;
    let args = ["drain", "wait", "app", "--timeout", "60s"];
    let run = stream::veer_cli(format!("http://{relay}"), &args, Duration::from_secs(60));
    tokio::time::timeout(WAIT, through.wait_for(|t| *t))
        .await
        .expect("veer drain wait reached the API")
        .unwrap();
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_waits_for_a_stream_and_drained_comes_after_its_last_byte() {
    let up = Upstream::start("up").await;
    let keys = "shutdown_grace = \"60s\"\n";
    let (mut child, addr, admin) = start_veer_with_admin(up.addr, keys).await;
    let limit = Duration::from_secs(60);
    let stream = stream::stream_get(format!("http://{addr}/drip/20/hold"), limit);
    eventually(WAIT, || up.drips.len() == 1 && up.drips.get(0).sent == 19).await;
    let wait = drain_wait(admin).await;

    signal(&child, "-TERM");
    eventually_async(WAIT, || async { TcpStream::connect(addr).await.is_err() }).await;
    // The last byte is held back: veer, its drain and the wait hold too.
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited with a stream in flight"
    );
    assert!(
        !wait.is_finished(),
        "drain wait returned before the last byte"
    );
    up.drips.release();
    let received = stream.await.unwrap();
    assert!(
        received.clean && received.bytes == 20 * stream::CHUNK,
        "{received:?}"
    );
    let cli = wait.await.unwrap();
    assert_eq!(cli.code, Some(0), "{cli:?}");
    assert!(cli.stdout.starts_with("pool app drained in "), "{cli:?}");
    assert!(!cli.stdout.contains("cut"), "{cli:?}");
    let (last_at, _) = up.drips.get(0).last_chunk.unwrap();
    assert!(cli.exited > last_at);
    eprintln!(
        "figure: SIGTERM, stream ending in time: veer drain wait exited {:?} after the upstream's last byte",
        cli.exited - last_at
    );
    let exit = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_a_websocket_and_a_stream_at_shutdown_grace() {
    use futures_util::{SinkExt, StreamExt};
    let up = Upstream::start("up").await;
    let keys = "shutdown_grace = \"4s\"\n";
    let (mut child, addr, admin) = start_veer_with_admin(up.addr, keys).await;
    let limit = Duration::from_secs(60);
    let long = stream::stream_get(format!("http://{addr}/drip/600/50"), limit);
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    ws.send("hi".into()).await.unwrap();
    let reply = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply.into_text().unwrap().as_str(), "up: hi");
    eventually(WAIT, || up.drips.len() == 1 && up.drips.get(0).sent >= 1).await;
    let wait = drain_wait(admin).await;

    let signalled = tokio::time::Instant::now();
    signal(&child, "-TERM");
    eventually_async(WAIT, || async { TcpStream::connect(addr).await.is_err() }).await;
    // Not closed at once: the tunnel still works after the listener closed.
    ws.send("still".into()).await.unwrap();
    let reply = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply.into_text().unwrap().as_str(), "up: still");
    // Nor never: closed at shutdown_grace.
    let closed = tokio::time::timeout(WAIT, async {
        while let Some(Ok(msg)) = ws.next().await {
            assert!(msg.is_close(), "unexpected {msg:?}");
        }
        tokio::time::Instant::now()
    })
    .await
    .expect("tunnel closed in time");
    let long = long.await.unwrap();
    assert!(!long.clean && long.bytes < 600 * stream::CHUNK, "{long:?}");
    for (what, at) in [("tunnel", closed), ("stream", long.ended)] {
        let after = at - signalled;
        assert!(
            after >= Duration::from_secs(4) && after < WAIT,
            "{what} closed {after:?} after SIGTERM"
        );
    }
    let cli = wait.await.unwrap();
    assert_eq!(cli.code, Some(0), "{cli:?}");
    assert!(
        cli.stdout
            .contains("cut at shutdown_grace: 1 stream, 1 tunnel"),
        "{cli:?}"
    );
    assert!(cli.exited - signalled >= Duration::from_secs(4));
    eprintln!(
        "figure: SIGTERM with shutdown_grace = 4s: tunnel closed {:?}, stream cut {:?}, veer drain wait exited {:?} after the signal",
        closed - signalled,
        long.ended - signalled,
        cli.exited - signalled
    );
    let exit = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.code(), Some(0));
    eventually(WAIT, || up.drips.get(0).dropped.is_some()).await;
    assert!(up.drips.get(0).sent < 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_keeps_a_lone_websocket_until_shutdown_grace_then_closes_it() {
    use futures_util::{SinkExt, StreamExt};
    let up = Upstream::start("up").await;
    let (mut child, addr) = start_veer(up.addr, "shutdown_grace = \"4s\"\n").await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    ws.send("hi".into()).await.unwrap();
    let reply = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply.into_text().unwrap().as_str(), "up: hi");

    let signalled = tokio::time::Instant::now();
    signal(&child, "-TERM");
    eventually_async(WAIT, || async { TcpStream::connect(addr).await.is_err() }).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "exited with a tunnel open"
    );
    ws.send("still".into()).await.unwrap();
    let reply = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply.into_text().unwrap().as_str(), "up: still");
    let closed = tokio::time::timeout(WAIT, async {
        while let Some(Ok(msg)) = ws.next().await {
            assert!(msg.is_close(), "unexpected {msg:?}");
        }
        tokio::time::Instant::now()
    })
    .await
    .expect("tunnel closed in time");
    let after = closed - signalled;
    assert!(
        after >= Duration::from_secs(4) && after < WAIT,
        "closed {after:?} after SIGTERM"
    );
    let exit = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(exit.code(), Some(0));
}
