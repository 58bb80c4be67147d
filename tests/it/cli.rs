//! The `veer` binary: admin client commands against a live instance, their
//! errors, and `veer run` reloading on SIGHUP.

use std::process::Stdio;
use std::time::Duration;

use crate::support::admin::*;
use crate::support::*;

/// Runs `veer ARGS` with `VEER_ADMIN` set; returns (success, stdout, stderr).
pub(crate) async fn veer_cli(
    admin: &str,
    token: Option<&str>,
    args: &[&str],
) -> (bool, String, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_veer"));
    cmd.args(args)
        .env("VEER_ADMIN", admin)
        .env_remove("VEER_ADMIN_TOKEN")
        .env("VEER_LOG", "warn")
        .stdin(Stdio::null());
    if let Some(t) = token {
        cmd.env("VEER_ADMIN_TOKEN", t);
    }
    let out = tokio::time::timeout(Duration::from_secs(20), cmd.output())
        .await
        .expect("veer cli hung")
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_commands_against_a_live_instance() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("cli");
    let veer = Veer::start(
        &dir,
        &two_pools(blue.addr, green.addr, "blue", ""),
        Some("tok"),
    )
    .await;
    let admin = format!("http://{}", veer.admin);

    let (ok, out, err) = veer_cli(
        &admin,
        Some("tok"),
        &["weights", "app", "blue=90", "green=10"],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out, "app: green=10 blue=90 (manual) (phase paused)\n");

    let (ok, out, err) = veer_cli(&admin, Some("tok"), &["status"]).await;
    assert!(ok, "{err}");
    println!("{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("ROUTE") && lines[0].contains("WEIGHTS"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("app") && lines[1].contains("paused"),
        "{out}"
    );
    assert!(lines[1].contains("green=10 blue=90 (manual)"), "{out}");
    assert!(
        out.contains("POOL") && out.contains(&blue.addr.to_string()),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("green") && l.contains("2.0") && l.contains("yes")),
        "{out}"
    );

    let (ok, out, _) = veer_cli(&admin, Some("tok"), &["status", "--json"]).await;
    assert!(ok);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["routes"][0]["weights"]["green"], 10);

    let (ok, out, _) = veer_cli(&admin, Some("tok"), &["resume", "app"]).await;
    assert!(ok);
    assert!(out.contains("phase idle"), "{out}");
    let (ok, out, _) = veer_cli(&admin, Some("tok"), &["rollout", "app", "green"]).await;
    assert!(ok);
    assert_eq!(out, "app: green=100 (phase promoted)\n");
    assert_eq!(who(&veer.url("/")).await, "green");
    for cmd in ["pause", "promote", "abort", "rollback"] {
        let (ok, out, err) = veer_cli(&admin, Some("tok"), &[cmd, "app"]).await;
        // Acted on, or refused by the controller with a reason.
        assert!(
            ok && out.starts_with("app: ") || err.contains("409"),
            "{cmd}: {out} {err}"
        );
    }
    let (ok, out, _) = veer_cli(&admin, Some("tok"), &["reload"]).await;
    assert!(ok);
    assert_eq!(out, "config reloaded\n");

    // Refusals say why.
    let (ok, _, err) = veer_cli(&admin, None, &["status"]).await;
    assert!(!ok);
    assert!(
        err.contains("refused the token") && err.contains("VEER_ADMIN_TOKEN"),
        "{err}"
    );
    let (ok, _, err) = veer_cli(
        &admin,
        Some("tok"),
        &["weights", "app", "blue=90", "green=20"],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("400") && err.contains("sum to 110"), "{err}");
    let (ok, _, err) = veer_cli(&admin, Some("tok"), &["promote", "nope"]).await;
    assert!(!ok);
    assert!(
        err.contains("404") && err.contains("unknown route"),
        "{err}"
    );
    let (ok, _, err) = veer_cli(&admin, Some("tok"), &["weights", "app", "blue"]).await;
    assert!(!ok);
    assert!(err.contains("POOL=PERCENT"), "{err}");
    std::fs::write(&veer.config_path, "[[route]]\nname = 1\n").unwrap();
    let (ok, _, err) = veer_cli(&admin, Some("tok"), &["reload"]).await;
    assert!(!ok);
    assert!(err.contains("veer.toml:"), "{err}");
    veer.stop().await;

    let dead = format!("http://{}", dead_addr().await);
    let (ok, _, err) = veer_cli(&dead, None, &["status"]).await;
    assert!(!ok);
    assert!(
        err.contains("cannot reach the admin API") && err.contains("refused"),
        "{err}"
    );
    let (ok, _, err) = veer_cli("localhost:9901", None, &["status"]).await;
    assert!(!ok);
    assert!(err.contains("bad admin address"), "{err}");
}

/// `veer run` as a child process: SIGHUP reloads (the watcher is off, so
/// only the signal can have done it); a missing token variable is fatal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reloads_on_sighup() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("sighup");
    let (port, admin_port) = (free_port(), free_port());
    let toml = |pool: &str| {
        two_pools(blue.addr, green.addr, pool, "")
            .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"))
            .replace("[proxy]\n", &format!("[admin]\nlisten = \"127.0.0.1:{admin_port}\"\ntoken_env = \"VEER_TEST_TOKEN\"\n\n[proxy]\n"))
    };
    let path = dir.path().join("veer.toml");
    std::fs::write(&path, toml("blue")).unwrap();

    let run = |token: Option<&str>| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_veer"));
        cmd.args(["run", "--no-watch", "-c"])
            .arg(&path)
            .env("VEER_LOG", "warn")
            .env_remove("VEER_TEST_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(t) = token {
            cmd.env("VEER_TEST_TOKEN", t);
        }
        cmd
    };
    let out = tokio::time::timeout(Duration::from_secs(10), run(None).output())
        .await
        .unwrap()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("VEER_TEST_TOKEN") && err.contains("not set"),
        "{err}"
    );

    let mut child = run(Some("tok")).spawn().unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    until(Duration::from_secs(10), "veer run serving", || {
        let url = url.clone();
        async move { raw_get(&url).await.is_ok() }
    })
    .await;
    assert_eq!(who(&url).await, "blue");
    replace_file(&path, &toml("green"));
    let pid = child.id().unwrap().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    until(Duration::from_secs(10), "reloaded on SIGHUP", || {
        let url = url.clone();
        async move { who(&url).await == "green" }
    })
    .await;
    let admin = format!("http://127.0.0.1:{admin_port}");
    let (ok, out, err) = veer_cli(&admin, Some("tok"), &["status", "--json"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("\"ok\": 1"), "{out}");

    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(term.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("veer did not exit on SIGTERM")
        .unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_wait_exit_statuses() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("cli-drain");
    let veer = Veer::start(&dir, &two_pools(blue.addr, green.addr, "blue", ""), None).await;
    let admin = format!("http://{}", veer.admin);
    let run = |args: &'static [&'static str]| {
        let run = crate::support::stream::veer_cli(admin.clone(), args, Duration::from_secs(20));
        async move { run.await.unwrap() }
    };
    // Green gets no traffic and has nothing in flight: drained.
    let out = run(&["drain", "wait", "green"]).await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "pool green drained\n"),
        "{out:?}"
    );
    // Blue still serves: the wait times out, status 2.
    let out = run(&["drain", "wait", "blue", "--timeout", "1s"]).await;
    assert_eq!(out.code, Some(2), "{out:?}");
    assert!(
        out.stderr
            .contains("pool blue still serving after 1s: 0 in flight"),
        "{out:?}"
    );
    // No such pool or endpoint: status 1.
    let out = run(&["drain", "wait", "nope"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("no pool \"nope\""), "{out:?}");
    let out = run(&["drain", "wait", "blue", "--endpoint", "127.0.0.1:1"]).await;
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("has no endpoint"), "{out:?}");
    veer.stop().await;
}

/// Shell completions and the man page come from the CLI definition.
#[tokio::test]
async fn completions_and_man_page() {
    for (shell, marker) in [
        ("bash", "_veer()"),
        ("zsh", "#compdef veer"),
        ("fish", "complete -c veer"),
    ] {
        let (ok, out, err) = veer_cli("http://127.0.0.1:1", None, &["completions", shell]).await;
        assert!(ok && out.contains(marker), "{shell}: {err}");
        assert!(out.contains("rollout") && out.contains("drain"), "{shell}");
    }
    let (ok, out, err) = veer_cli("http://127.0.0.1:1", None, &["man"]).await;
    assert!(
        ok && out.contains(".TH veer 1") && out.contains("rollout"),
        "{err}"
    );
}

/// `[proxy] log_format`: JSON lines for shippers; text without colour
/// codes when stderr is not a terminal.
#[tokio::test]
async fn logs_are_json_or_plain_text_off_a_terminal() {
    let dir = TempDir::new("logs");
    for format in ["json", "text"] {
        let (port, admin) = (free_port(), free_port());
        let toml = format!(
            "[proxy]\nlog_format = \"{format}\"\nstate_dir = \"state\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n\
             [[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:{port}\"\n[[pool]]\nname = \"p\"\nendpoints = [\"127.0.0.1:1\"]\n\
             [[route]]\nname = \"r\"\npool = \"p\"\n"
        );
        let path = dir.path().join(format!("{format}.toml"));
        std::fs::write(&path, toml).unwrap();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_veer"))
            .args(["run", "--no-watch", "-c"])
            .arg(&path)
            .env("VEER_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        until(Duration::from_secs(20), "ready", || async {
            raw_get(&format!("http://127.0.0.1:{admin}/readyz"))
                .await
                .is_ok()
        })
        .await;
        child.start_kill().unwrap();
        let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        let first = log.lines().next().unwrap_or_default().to_string();
        assert!(!log.contains('\x1b'), "{format}: colour codes in {log:?}");
        match format {
            "json" => {
                let line: serde_json::Value = serde_json::from_str(&first).unwrap();
                assert!(line["fields"]["message"].is_string(), "{first}");
            }
            _ => assert!(first.contains("INFO") && !first.starts_with('{'), "{first}"),
        }
    }
}

/// Under systemd (`Type=notify`): READY once serving, RELOADING then READY
/// around a SIGHUP reload, STOPPING on SIGTERM.
#[tokio::test]
async fn tells_systemd_ready_reloading_and_stopping() {
    let dir = TempDir::new("notify");
    let socket_path = dir.path().join("notify.sock");
    let socket = tokio::net::UnixDatagram::bind(&socket_path).unwrap();
    let (port, admin) = (free_port(), free_port());
    let toml = format!(
        "[proxy]\nstate_dir = \"state\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n\
         [[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:{port}\"\n[[pool]]\nname = \"p\"\nendpoints = [\"127.0.0.1:1\"]\n\
         [[route]]\nname = \"r\"\npool = \"p\"\n"
    );
    let path = dir.path().join("veer.toml");
    std::fs::write(&path, toml).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_veer"))
        .args(["run", "--no-watch", "-c"])
        .arg(&path)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("VEER_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let next = || {
        let socket = &socket;
        async move {
            let mut buf = [0u8; 512];
            let n = tokio::time::timeout(Duration::from_secs(20), socket.recv(&mut buf))
                .await
                .expect("a notification")
                .unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        }
    };
    assert!(next().await.contains("READY=1"));
    let pid = child.id().unwrap().to_string();
    let signal = |s: &str| {
        std::process::Command::new("kill")
            .args([s, &pid])
            .status()
            .unwrap()
    };
    assert!(signal("-HUP").success());
    assert!(next().await.contains("RELOADING=1"));
    assert!(next().await.contains("READY=1"));
    assert!(signal("-TERM").success());
    assert!(next().await.contains("STOPPING=1"));
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}

/// `dist/veer.service` passes `systemd-analyze verify` (where systemd is
/// installed), pointed at the binary under test.
#[test]
fn the_systemd_units_verify() {
    let Ok(found) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        eprintln!("systemd-analyze not installed; unit not verified");
        return;
    };
    assert!(found.status.success());
    let unit =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/dist/veer.service")).unwrap();
    assert!(unit.contains("Type=notify") && unit.contains("ExecReload=/bin/kill -HUP $MAINPID"));
    let dir = TempDir::new("unit");
    let path = dir.path().join("veer.service");
    let unit = unit
        .replace("/usr/local/bin/veer", env!("CARGO_BIN_EXE_veer"))
        .replace("Documentation=man:veer(1)", "");
    std::fs::write(&path, unit).unwrap();
    let socket = dir.path().join("veer.socket");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/dist/veer.socket"),
        &socket,
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .arg(&socket)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}

/// `veer status --watch` off a terminal prints the table, then every
/// table that differs, until it is stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_watch_prints_each_change() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("watch");
    let veer = Veer::start(&dir, &two_pools(blue.addr, green.addr, "blue", ""), None).await;
    let mut watch = tokio::process::Command::new(env!("CARGO_BIN_EXE_veer"))
        .args(["status", "--watch", "--every", "100ms"])
        .env("VEER_ADMIN", format!("http://{}", veer.admin))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = watch.stdout.take().unwrap();
    let mut seen = String::new();
    read_until(&mut stdout, &mut seen, "blue=100").await;
    let (code, json) = veer
        .api(
            http::Method::PUT,
            "/api/v1/routes/app/weights",
            Some(r#"{"blue":70,"green":30}"#),
            None,
        )
        .await;
    assert_eq!(code, 200, "{json}");
    read_until(&mut stdout, &mut seen, "green=30").await;
    // Unchanged tables are not printed again.
    let tables = seen.matches("ROUTE").count();
    assert!((2..=3).contains(&tables), "{tables} tables: {seen}");
    assert!(
        !seen.contains('\x1b'),
        "escape codes off a terminal: {seen:?}"
    );
    watch.kill().await.unwrap();
}

/// Reads `stdout` into `seen` until it contains `want` (20 s at most).
async fn read_until(stdout: &mut tokio::process::ChildStdout, seen: &mut String, want: &str) {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.contains(want) {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, stdout.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("{want:?} not printed; got:\n{seen}"))
            .unwrap();
        assert!(n > 0, "watch ended; printed:\n{seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}
