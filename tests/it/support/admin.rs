//! Harness for the control plane: a whole veer (data plane, admin API,
//! config watcher) run in-process from a config file in a temp directory,
//! and small admin API clients.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use tokio::net::TcpListener;

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!(
            "veer-test-{tag}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Replaces `path` the way editors do: write a sibling, rename it over.
pub fn replace_file(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A whole veer run in-process: `veer::app::run` with the config file
/// at `config_path`, listeners and admin on 127.0.0.1:0.
pub struct Veer {
    pub config_path: PathBuf,
    /// The first listener.
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Veer {
    /// Writes `toml` to `dir/veer.toml` and starts on it.
    pub async fn start(dir: &TempDir, toml: &str, token: Option<&str>) -> Veer {
        let path = dir.path().join("veer.toml");
        std::fs::write(&path, toml).unwrap();
        Veer::start_at(&path, token).await
    }

    /// Starts on the config file already at `path`.
    pub async fn start_at(path: &Path, token: Option<&str>) -> Veer {
        Veer::start_with(path, token, true).await
    }

    /// Starts on `path`, watching its directory only when `watch`.
    pub async fn start_with(path: &Path, token: Option<&str>, watch: bool) -> Veer {
        let config = veer::config::load(path).unwrap_or_else(|e| panic!("{e}"));
        let config = Arc::new(config);
        let mut listeners = Vec::new();
        for spec in &config.listeners {
            listeners.push(TcpListener::bind(spec.listen).await.unwrap());
        }
        let addr = listeners[0].local_addr().unwrap();
        let admin = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let admin_addr = admin.local_addr().unwrap();
        let bind: veer::control::Bind = Arc::new(|spec: &veer::config::ListenerSpec| {
            let l = std::net::TcpListener::bind(spec.listen)?;
            l.set_nonblocking(true)?;
            Ok(l)
        });
        let mut options = veer::app::Options::new(config, listeners);
        options.admin = Some(admin);
        options.token = token.map(str::to_string);
        options.bind = Some(bind);
        let reload = Arc::new(tokio::sync::Notify::new());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(veer::app::run(options, reload, watch, async move {
            let _ = stopped.await;
        }));
        let veer = Veer {
            config_path: path.to_path_buf(),
            addr,
            admin: admin_addr,
            stop: Some(stop),
            task,
        };
        // Ready once /readyz says so.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok((StatusCode::OK, _)) = raw_get(&veer.admin_url("/readyz")).await {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "veer not ready");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        veer
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    /// An admin call; returns the status and the JSON body.
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        token: Option<&str>,
    ) -> (StatusCode, serde_json::Value) {
        api_call(&self.admin_url(path), method, body, token).await
    }

    /// `GET /api/v1/status` (no token).
    pub async fn status(&self) -> serde_json::Value {
        let (code, body) = self.api(Method::GET, "/api/v1/status", None, None).await;
        assert_eq!(code, StatusCode::OK, "{body}");
        body
    }

    /// Stops gracefully and waits for the run to end.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("veer did not stop")
            .unwrap();
    }
}

/// One request to the admin API.
pub async fn api_call(
    url: &str,
    method: Method,
    body: Option<&str>,
    token: Option<&str>,
) -> (StatusCode, serde_json::Value) {
    // As the CLI and the dashboard do: mutating calls need it.
    let mut req = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let body = Full::new(Bytes::from(body.unwrap_or("").to_string())).boxed();
    let (status, _, text) = super::send(&super::client(), req.body(body).unwrap()).await;
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
    (status, json)
}

/// GET returning status and body text, or an error instead of panicking.
pub async fn raw_get(url: &str) -> Result<(StatusCode, String), String> {
    let req = Request::get(url).body(super::empty()).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), super::client().request(req))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok((
        status,
        String::from_utf8_lossy(&body.to_bytes()).into_owned(),
    ))
}

/// Which upstream answered `url` (its `x-upstream`).
pub async fn who(url: &str) -> String {
    let (status, headers, body) = super::get(url, &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    headers["x-upstream"].to_str().unwrap().to_string()
}

/// Polls `probe` until it returns true or `deadline` passes.
pub async fn until<F, Fut>(deadline: Duration, what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = tokio::time::Instant::now();
    while !probe().await {
        assert!(
            start.elapsed() < deadline,
            "{what}: not within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A config for `blue` and `green` (one endpoint each), one route `app`
/// serving `pool`, state in `state/` beside the file, and `extra` appended.
pub fn two_pools(blue: SocketAddr, green: SocketAddr, pool: &str, extra: &str) -> String {
    format!(
        "[proxy]\nstate_dir = \"state\"\nheader_timeout = \"2s\"\nidle_timeout = \"5s\"\n\n\
         [[listener]]\nname = \"public\"\nlisten = \"127.0.0.1:0\"\n\n\
         [[pool]]\nname = \"blue\"\nversion = \"1.0\"\nendpoints = [\"{blue}\"]\n\n\
         [[pool]]\nname = \"green\"\nversion = \"2.0\"\nendpoints = [\"{green}\"]\n\n\
         [[route]]\nname = \"app\"\npool = \"{pool}\"\n{extra}"
    )
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A keep-alive HTTP/1.1 connection driven by hand, to show that one
/// connection survives what happens around it.
pub struct KeepAlive(tokio::net::TcpStream);

impl KeepAlive {
    pub async fn open(addr: SocketAddr) -> KeepAlive {
        KeepAlive(tokio::net::TcpStream::connect(addr).await.unwrap())
    }

    /// GET `path` on this connection; returns status and `x-upstream`.
    pub async fn get(&mut self, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let req = format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n");
        self.0.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        let read = async {
            loop {
                let mut chunk = [0u8; 4096];
                let n = self.0.read(&mut chunk).await.unwrap();
                assert!(n > 0, "connection closed");
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let head = text[..end].to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .map_or(0, |v| v.trim().parse().unwrap());
                    if buf.len() >= end + 4 + len {
                        return head;
                    }
                }
            }
        };
        let head = tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .expect("no response on the kept-alive connection");
        let status = head[9..12].parse().unwrap();
        let upstream = head
            .lines()
            .find_map(|l| l.strip_prefix("x-upstream:"))
            .map_or(String::new(), |v| v.trim().to_string());
        (status, upstream)
    }
}
