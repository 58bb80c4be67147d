//! The access log: off by default, one structured line per request when
//! `[proxy] access_log = true`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn one_line_per_request_when_enabled() {
    let captured = Captured::default();
    let writer = captured.clone();
    // This thread's subscriber, not the process's: every test module runs
    // in one process, and a global one could be set only once. The test
    // runtime is current-thread, so the proxy's tasks log on this thread.
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("veer::access=info")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _subscriber = tracing::subscriber::set_default(subscriber);
    let up = Upstream::start("up").await;
    let lines = |c: &Captured| -> Vec<String> {
        String::from_utf8_lossy(&c.0.lock().unwrap())
            .lines()
            .map(str::to_string)
            .collect()
    };

    // Off by default.
    let proxy = Proxy::start(&config(
        &[("app", &[up.addr])],
        "[[route]]\nname = \"app\"\npool = \"app\"\n",
    ))
    .await;
    get(&proxy.url("/"), &[]).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(lines(&captured).is_empty(), "{:?}", lines(&captured));

    let toml = config(
        &[("app", &[up.addr])],
        "[[route]]\nname = \"app\"\npool = \"app\"\n",
    )
    .replace("[proxy]\n", "[proxy]\naccess_log = true\n");
    let proxy = Proxy::start(&toml).await;
    get(&proxy.url("/"), &[("x-request-id", "req-1")]).await;
    get(&proxy.url("/status/503"), &[("x-request-id", "req-2")]).await;
    eventually(Duration::from_secs(5), || lines(&captured).len() >= 2).await;
    let lines = lines(&captured);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    let endpoint = format!("endpoint={}", up.addr);
    for (line, status, id) in [
        (&lines[0], "status=200", "request_id=req-1"),
        (&lines[1], "status=503", "request_id=req-2"),
    ] {
        for part in [
            "route=app",
            "pool=app",
            &endpoint,
            "method=GET",
            status,
            id,
            "duration_ms=",
        ] {
            assert!(line.contains(part), "{part} missing in {line}");
        }
    }
}
