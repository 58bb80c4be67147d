//! Operating veer itself, with the real binary: `veer run --upgrade`
//! takes the listening sockets and the rollouts from the running veer
//! (SPEC §14) while clients keep sending, and systemd socket activation
//! (`LISTEN_FDS`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::Method;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::support::admin::{api_call, free_port, raw_get, two_pools, until, TempDir};
use crate::support::stream::stream_get;
use crate::support::*;

const WAIT: Duration = Duration::from_secs(30);

/// `veer run` on `config` (with `--upgrade` when `upgrade`).
fn spawn_veer(config: &Path, upgrade: bool) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_veer"));
    command.args(["run", "--no-watch", "-c"]).arg(config);
    if upgrade {
        command.arg("--upgrade");
    }
    command
        .env(
            "VEER_LOG",
            std::env::var("VEER_TEST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// A veer config in `dir` in front of blue and green, on fixed ports.
struct Setup {
    dir: TempDir,
    config: PathBuf,
    addr: SocketAddr,
    admin: String,
}

impl Setup {
    fn new(blue: SocketAddr, green: SocketAddr, extra: &str) -> Setup {
        let dir = TempDir::new("handover");
        let (port, admin) = (free_port(), free_port());
        let toml = two_pools(blue, green, "blue", extra)
            .replace(
                "listen = \"127.0.0.1:0\"",
                &format!("listen = \"127.0.0.1:{port}\""),
            )
            .replace("[proxy]\n", "[proxy]\nshutdown_grace = \"60s\"\n")
            + &format!("\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n");
        let config = dir.path().join("veer.toml");
        std::fs::write(&config, toml).unwrap();
        Setup {
            config,
            addr: format!("127.0.0.1:{port}").parse().unwrap(),
            admin: format!("http://127.0.0.1:{admin}"),
            dir,
        }
    }

    fn upgrade_socket(&self) -> PathBuf {
        self.dir.path().join("state").join("veer.sock")
    }

    /// Waits until the veer with `pid` answers on the admin API and
    /// serves upgrades.
    async fn serving_as(&self, pid: u32) {
        until(WAIT, "the new process answering", || async {
            let url = format!("{}/api/v1/status", self.admin);
            let (code, json) = api_call(&url, Method::GET, None, None).await;
            code == 200 && json["process"]["pid"] == pid
        })
        .await;
        self.serving().await;
    }

    /// Waits until a veer serves on the upgrade socket and the admin API.
    async fn serving(&self) {
        let socket = self.upgrade_socket();
        until(WAIT, "upgrade socket answering", || {
            let socket = socket.clone();
            async move { std::os::unix::net::UnixStream::connect(&socket).is_ok() }
        })
        .await;
        until(WAIT, "admin ready", || async {
            matches!(
                raw_get(&format!("{}/readyz", self.admin)).await,
                Ok((http::StatusCode::OK, _))
            )
        })
        .await;
    }

    async fn route(&self) -> Value {
        let url = format!("{}/api/v1/status", self.admin);
        let (code, json) = api_call(&url, Method::GET, None, None).await;
        assert_eq!(code, 200, "{json}");
        json["routes"][0].clone()
    }
}

/// Client-side tally of a load loop.
#[derive(Default)]
struct Tally {
    ok: AtomicUsize,
    failed: AtomicUsize,
    /// Connections the server closed after a response (`Connection:
    /// close`), so the next request went on a new one.
    reconnects: AtomicUsize,
    /// The slowest answer, in microseconds (connect included).
    slowest_us: std::sync::atomic::AtomicU64,
    errors: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    fn answered(&self, since: tokio::time::Instant) {
        self.ok.fetch_add(1, Ordering::SeqCst);
        let took = since.elapsed().as_micros() as u64;
        self.slowest_us.fetch_max(took, Ordering::SeqCst);
    }

    fn slowest(&self) -> Duration {
        Duration::from_micros(self.slowest_us.load(Ordering::SeqCst))
    }

    fn fail(&self, why: String) {
        self.failed.fetch_add(1, Ordering::SeqCst);
        let mut errors = self.errors.lock().unwrap();
        if errors.len() < 10 {
            errors.push(why);
        }
    }
}

/// Reads one response (head and `Content-Length` body) from `stream`;
/// returns the status and whether the server closes the connection.
async fn read_response(stream: &mut TcpStream) -> Result<(u16, bool), String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!("closed after {} bytes", buf.len()));
        }
        buf.extend_from_slice(&chunk[..n]);
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap_or(0));
        if buf.len() < end + 4 + len {
            continue;
        }
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let close = head.lines().any(|l| l == "connection: close");
        return Ok((status, close));
    }
}

/// GETs `/` over one keep-alive connection after another (a new one
/// only when the server closes the last), until `stop` or `max`.
async fn keep_alive_load(addr: SocketAddr, stop: Arc<AtomicBool>, tally: Arc<Tally>, max: usize) {
    let mut conn: Option<TcpStream> = None;
    for _ in 0..max {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let since = tokio::time::Instant::now();
        let mut stream = match conn.take() {
            Some(stream) => stream,
            None => match TcpStream::connect(addr).await {
                Ok(stream) => stream,
                Err(e) => {
                    tally.fail(format!("connect: {e}"));
                    continue;
                }
            },
        };
        let sent = stream
            .write_all(b"GET / HTTP/1.1\r\nhost: app\r\n\r\n")
            .await;
        match (sent, read_response(&mut stream).await) {
            (Ok(()), Ok((200, close))) => {
                tally.answered(since);
                match close {
                    true => {
                        tally.reconnects.fetch_add(1, Ordering::SeqCst);
                    }
                    false => conn = Some(stream),
                }
            }
            (Err(e), _) => tally.fail(format!("keep-alive write: {e}")),
            (_, Ok((status, _))) => tally.fail(format!("keep-alive status {status}")),
            (_, Err(e)) => tally.fail(format!("keep-alive: {e}")),
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// GETs `/` on a new connection each time, until `stop` or `max`.
async fn new_connection_load(
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
    max: usize,
) {
    for _ in 0..max {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let since = tokio::time::Instant::now();
        let outcome = async {
            let mut stream = TcpStream::connect(addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            stream
                .write_all(b"GET / HTTP/1.1\r\nhost: app\r\nconnection: close\r\n\r\n")
                .await
                .map_err(|e| format!("write: {e}"))?;
            read_response(&mut stream).await
        };
        match outcome.await {
            Ok((200, _)) => tally.answered(since),
            Ok((status, _)) => tally.fail(format!("new connection status {status}")),
            Err(e) => tally.fail(format!("new connection {e}")),
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn exit_code(child: &mut Child) -> Option<i32> {
    tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("veer exits in time")
        .unwrap()
        .code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_upgrades_under_load_drop_nothing_and_a_canary_carries_on() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let canary = "retries = 0\n[route.rollout]\nstrategy = \"canary\"\n\
                  steps = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]\ninterval = \"3s\"\n\
                  [route.rollout.analysis]\nmin_requests = 5\nsuccess_rate = 99.0\n";
    let setup = Setup::new(blue.addr, green.addr, canary);
    let mut first = spawn_veer(&setup.config, false);
    setup.serving().await;

    // One long streaming response, held open across every upgrade.
    let stream = stream_get(format!("http://{}/drip/5/hold", setup.addr), WAIT * 4);
    eventually(WAIT, || {
        (0..blue.drips.len()).any(|i| blue.drips.get(i).sent >= 4)
    })
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let (kept, fresh) = (Arc::new(Tally::default()), Arc::new(Tally::default()));
    let mut load = Vec::new();
    for _ in 0..2 {
        load.push(tokio::spawn(keep_alive_load(
            setup.addr,
            stop.clone(),
            kept.clone(),
            200_000,
        )));
        load.push(tokio::spawn(new_connection_load(
            setup.addr,
            stop.clone(),
            fresh.clone(),
            200_000,
        )));
    }
    let url = format!("{}/api/v1/routes/app/rollout", setup.admin);
    let (code, json) = api_call(&url, Method::POST, Some(r#"{"pool":"green"}"#), None).await;
    assert_eq!(code, 200, "{json}");

    let mut step = 0;
    let mut children = Vec::new();
    let mut took = Vec::new();
    for round in 0..10 {
        let before = kept.ok.load(Ordering::SeqCst) + fresh.ok.load(Ordering::SeqCst);
        let started = tokio::time::Instant::now();
        let child = spawn_veer(&setup.config, true);
        setup.serving_as(child.id().unwrap()).await;
        took.push(started.elapsed());
        children.push(child);
        // Both kinds of client got answers since this upgrade started.
        eventually(WAIT, || {
            kept.ok.load(Ordering::SeqCst) + fresh.ok.load(Ordering::SeqCst) > before + 20
        })
        .await;
        let route = setup.route().await;
        assert_eq!(route["phase"], "progressing", "upgrade {round}: {route}");
        assert_eq!(route["candidate"], "green", "upgrade {round}: {route}");
        let now = route["step"].as_u64().unwrap();
        assert!(
            now >= step,
            "upgrade {round}: step went back from {step}: {route}"
        );
        step = now;
    }

    // The rollout goes on in the last process and promotes.
    until(WAIT * 2, "canary promoted", || async {
        setup.route().await["phase"] == "promoted"
    })
    .await;
    blue.drips.release();
    let received = stream.await.unwrap();
    assert!(received.clean, "the long stream was cut: {received:?}");
    assert_eq!(received.bytes, 5 * crate::support::stream::CHUNK);

    stop.store(true, Ordering::SeqCst);
    for task in load {
        task.await.unwrap();
    }
    let (ok, reconnects) = (
        kept.ok.load(Ordering::SeqCst),
        kept.reconnects.load(Ordering::SeqCst),
    );
    let errors = [
        kept.errors.lock().unwrap().clone(),
        fresh.errors.lock().unwrap().clone(),
    ];
    assert_eq!(
        (
            kept.failed.load(Ordering::SeqCst),
            fresh.failed.load(Ordering::SeqCst)
        ),
        (0, 0),
        "failed requests: {errors:?}"
    );
    took.sort();
    eprintln!(
        "upgrades: keep-alive {ok} ok, {reconnects} reconnects, slowest {:?}; \
         new connections {} ok, slowest {:?}; \
         upgrade to serving: min {:?}, median {:?}, max {:?}",
        kept.slowest(),
        fresh.ok.load(Ordering::SeqCst),
        fresh.slowest(),
        took[0],
        took[took.len() / 2],
        took[took.len() - 1]
    );
    // Each upgrade closed the keep-alive connections after a response.
    assert!(
        reconnects >= 10,
        "keep-alive reconnects {reconnects} of {ok}"
    );
    assert!(fresh.ok.load(Ordering::SeqCst) > 100);

    // Every old process drained and exited 0; the last one serves on.
    assert_eq!(exit_code(&mut first).await, Some(0));
    let mut last = children.pop().unwrap();
    for child in &mut children {
        assert_eq!(exit_code(child).await, Some(0));
    }
    assert_eq!(get(&format!("http://{}/", setup.addr), &[]).await.0, 200);
    let _ = last.start_kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_process_that_cannot_start_leaves_the_old_one_serving() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let setup = Setup::new(blue.addr, green.addr, "");
    let mut old = spawn_veer(&setup.config, false);
    setup.serving().await;
    let good = std::fs::read_to_string(&setup.config).unwrap();

    // A config that does not validate: refused before anything is taken.
    let bad = setup.dir.path().join("bad.toml");
    std::fs::write(&bad, good.replace("pool = \"blue\"\n", "pool = \"nope\"\n")).unwrap();
    let mut new = spawn_veer(&bad, true);
    assert_eq!(exit_code(&mut new).await, Some(1));
    // A listener on a port that is taken: the old one keeps serving.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let extra = format!(
        "[[listener]]\nname = \"more\"\nlisten = \"{}\"\n",
        taken.local_addr().unwrap()
    );
    let busy = setup.dir.path().join("busy.toml");
    let with_more = good.replacen("[[pool]]", &format!("{extra}\n[[pool]]"), 1);
    std::fs::write(&busy, with_more).unwrap();
    let mut new = spawn_veer(&busy, true);
    assert_eq!(exit_code(&mut new).await, Some(1));

    let (code, _, body) = get(&format!("http://{}/", setup.addr), &[]).await;
    assert_eq!((code.as_u16(), body.as_str()), (200, "blue"));
    let route = setup.route().await;
    assert_eq!(route["pool"], "blue", "{route}");
    // A good one still takes over afterwards.
    let new = spawn_veer(&setup.config, true);
    assert_eq!(exit_code(&mut old).await, Some(0));
    setup.serving_as(new.id().unwrap()).await;
    assert_eq!(get(&format!("http://{}/", setup.addr), &[]).await.0, 200);
}

/// A second `veer run` on the same state_dir is refused with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_veer_on_the_same_state_dir_is_refused() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let setup = Setup::new(blue.addr, green.addr, "");
    let _old = spawn_veer(&setup.config, false);
    setup.serving().await;
    let out = Command::new(env!("CARGO_BIN_EXE_veer"))
        .args(["run", "-c"])
        .arg(&setup.config)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("another veer is running on this state_dir"),
        "{stderr}"
    );
}

/// systemd socket activation: veer serves on the sockets it was given
/// (matched by `FileDescriptorName`), and binds nothing itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_on_sockets_passed_by_systemd() {
    use command_fds::{CommandFdExt, FdMapping};
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let setup = Setup::new(blue.addr, green.addr, "");
    let public = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let admin = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (public_addr, admin_addr) = (public.local_addr().unwrap(), admin.local_addr().unwrap());
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_veer"));
    command
        .args(["run", "--no-watch", "-c"])
        .arg(&setup.config)
        .env("LISTEN_FDS", "2")
        .env("LISTEN_FDNAMES", "public:admin")
        .env("VEER_LOG", "warn")
        .stdout(Stdio::null());
    command
        .fd_mappings(vec![
            FdMapping {
                parent_fd: public.into(),
                child_fd: 3,
            },
            FdMapping {
                parent_fd: admin.into(),
                child_fd: 4,
            },
        ])
        .unwrap();
    let child = Command::from(command).kill_on_drop(true).spawn().unwrap();
    until(WAIT, "admin on the passed socket", || async {
        matches!(
            raw_get(&format!("http://{admin_addr}/readyz")).await,
            Ok((http::StatusCode::OK, _))
        )
    })
    .await;
    let (code, _, body) = get(&format!("http://{public_addr}/"), &[]).await;
    assert_eq!((code.as_u16(), body.as_str()), (200, "blue"));
    // The configured addresses were never bound.
    assert!(TcpStream::connect(setup.addr).await.is_err());
    drop(child);
}
