//! Test harness: real upstream servers and a real veer on 127.0.0.1
//! ephemeral ports, plus small clients.

pub mod admin;
pub mod dns;
pub mod etcd;
pub mod load;
pub mod stream;
pub mod tls;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// A real HTTP upstream on 127.0.0.1:0 that says who it is.
///
/// Paths: `/headers` lists the request headers; `/echo` streams the body
/// back; `/consume` reads the body, then answers its length; `/status/N`
/// answers N; `/sleep/MS` waits then answers; `/bytes/N` streams N bytes;
/// `/drip/N/MS` streams N chunks of [`stream::CHUNK`] bytes, one every MS
/// ms, recording each in `drips`; `/ws` is a WebSocket echo; `/ready` is 200
/// or 503 as `ready` says; anything else answers the upstream's name. While
/// `failing` is set, everything but `/ready` answers 500.
pub struct Upstream {
    pub name: String,
    pub addr: SocketAddr,
    /// Requests received (method and path), in order.
    pub log: Arc<Mutex<Vec<String>>>,
    /// TCP connections accepted.
    pub connections: Arc<AtomicUsize>,
    /// Every n-th request to `/` fails with 500 (0 = never).
    pub flaky: Arc<AtomicUsize>,
    /// What `/ready` (a health check path) answers: 200 when set, else 503.
    pub ready: Arc<AtomicBool>,
    /// Every other path answers 500 while set.
    pub failing: Arc<AtomicBool>,
    /// Milliseconds added to every answer to `/`.
    pub delay_ms: Arc<std::sync::atomic::AtomicU64>,
    /// Every `/drip/N/MS` response, in the order they started.
    pub drips: stream::Drips,
    task: tokio::task::JoinHandle<()>,
    /// Per-connection tasks: dropping the upstream kills its connections too.
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
        for conn in self.conns.lock().unwrap().drain(..) {
            conn.abort();
        }
    }
}

impl Upstream {
    pub async fn start(name: &str) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(name, listener)
    }

    /// An upstream whose every `every`-th request to `/` answers 500 (every
    /// = 5 is a 20% error rate), deterministic so tests can count.
    pub async fn flaky(name: &str, every: usize) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up = Self::serve(name, listener);
        up.flaky.store(every, Ordering::SeqCst);
        up
    }

    pub fn serve(name: &str, listener: TcpListener) -> Upstream {
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let flaky = Arc::new(AtomicUsize::new(0));
        let (n, l, c, f) = (
            name.to_string(),
            log.clone(),
            connections.clone(),
            flaky.clone(),
        );
        let ready = Arc::new(AtomicBool::new(true));
        let failing = Arc::new(AtomicBool::new(false));
        let (r, x) = (ready.clone(), failing.clone());
        let delay_ms = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let d = delay_ms.clone();
        let drips = stream::Drips::default();
        let dr = drips.clone();
        let conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let tasks = conns.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                c.fetch_add(1, Ordering::SeqCst);
                let (n, l, f) = (n.clone(), l.clone(), f.clone());
                let (r, x, d) = (r.clone(), x.clone(), d.clone());
                let dr = dr.clone();
                let conn = tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (n, l, f) = (n.clone(), l.clone(), f.clone());
                        let dr = dr.clone();
                        let delay = match req.uri().path() {
                            "/" => d.load(Ordering::SeqCst),
                            _ => 0,
                        };
                        let status = match req.uri().path() {
                            "/ready" if r.load(Ordering::SeqCst) => Some(StatusCode::OK),
                            "/ready" => Some(StatusCode::SERVICE_UNAVAILABLE),
                            _ if x.load(Ordering::SeqCst) => {
                                Some(StatusCode::INTERNAL_SERVER_ERROR)
                            }
                            _ => None,
                        };
                        async move {
                            if delay > 0 {
                                tokio::time::sleep(Duration::from_millis(delay)).await;
                            }
                            Ok::<_, Infallible>(match status {
                                Some(status) => fixed(&n, status),
                                None => match req.uri().path().strip_prefix("/drip/") {
                                    Some(spec) => dr.respond(&n, spec),
                                    None => respond(&n, &l, &f, req).await,
                                },
                            })
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .with_upgrades()
                        .await;
                });
                let mut tasks = tasks.lock().unwrap();
                tasks.retain(|t| !t.is_finished());
                tasks.push(conn);
            }
        });
        Upstream {
            name: name.to_string(),
            addr,
            log,
            connections,
            flaky,
            ready,
            failing,
            delay_ms,
            drips,
            task,
            conns,
        }
    }

    /// Stops this upstream (its listener and connections) and starts a new
    /// one with the same name on the same address: a process restart.
    pub async fn restart(&mut self) {
        self.task.abort();
        for conn in self.conns.lock().unwrap().drain(..) {
            conn.abort();
        }
        let start = tokio::time::Instant::now();
        loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => {
                    *self = Self::serve(&self.name, listener);
                    return;
                }
                Err(e) => {
                    assert!(
                        start.elapsed() < Duration::from_secs(5),
                        "rebinding {}: {e}",
                        self.addr
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

fn fixed(name: &str, status: StatusCode) -> Response<BoxBody> {
    Response::builder()
        .status(status)
        .header("x-upstream", name)
        .body(Full::new(Bytes::from(name.to_string())).boxed())
        .unwrap()
}

async fn respond(
    name: &str,
    log: &Mutex<Vec<String>>,
    flaky: &AtomicUsize,
    mut req: Request<Incoming>,
) -> Response<BoxBody> {
    let count = {
        let mut log = log.lock().unwrap();
        log.push(format!("{} {}", req.method(), req.uri()));
        log.len()
    };
    let every = flaky.load(Ordering::SeqCst);
    if every > 0 && req.uri().path() == "/" && count % every == 0 {
        let body = Full::new(Bytes::from(format!("{name} failed"))).boxed();
        return Response::builder()
            .status(500)
            .header("x-upstream", name)
            .body(body)
            .unwrap();
    }
    let path = req.uri().path().to_string();
    let with_name = |status: StatusCode, body: BoxBody| {
        Response::builder()
            .status(status)
            .header("x-upstream", name)
            .body(body)
            .unwrap()
    };
    let full = |s: String| Full::new(Bytes::from(s)).boxed();
    if path == "/headers" {
        let mut text = String::new();
        for (k, v) in req.headers() {
            text.push_str(&format!("{}: {}\n", k, v.to_str().unwrap_or("?")));
        }
        return with_name(StatusCode::OK, full(text));
    }
    if path == "/consume" {
        // Reads the whole body before answering (its length).
        return match req.into_body().collect().await {
            Ok(body) => with_name(StatusCode::OK, full(body.to_bytes().len().to_string())),
            Err(_) => with_name(StatusCode::BAD_REQUEST, full("broken body".into())),
        };
    }
    if path == "/echo" {
        let body = req.into_body();
        let stream = http_body_util::BodyStream::new(body).filter_map(|f| async move {
            f.ok()
                .and_then(|f| f.into_data().ok())
                .map(|d| Ok::<_, Infallible>(Frame::data(d)))
        });
        return with_name(StatusCode::OK, BodyExt::boxed(StreamBody::new(stream)));
    }
    if let Some(code) = path.strip_prefix("/status/") {
        let status = StatusCode::from_u16(code.parse().unwrap()).unwrap();
        return with_name(status, full(format!("{name} {code}")));
    }
    if let Some(ms) = path.strip_prefix("/sleep/") {
        tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
        return with_name(StatusCode::OK, full(name.to_string()));
    }
    if let Some(n) = path.strip_prefix("/bytes/") {
        let total: usize = n.parse().unwrap();
        let chunk = Bytes::from(vec![b'x'; 16 * 1024]);
        let chunks = (0..total.div_ceil(chunk.len())).map(move |i| {
            let len = (total - i * chunk.len()).min(chunk.len());
            Ok::<_, Infallible>(Frame::data(chunk.slice(..len)))
        });
        let body = BodyExt::boxed(StreamBody::new(futures_util::stream::iter(chunks)));
        return with_name(StatusCode::OK, body);
    }
    if let Some(code) = path.strip_prefix("/grpc/") {
        // gRPC style: status in the trailers (sent when the request said
        // `te: trailers` and the response declares them).
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", code.parse().unwrap());
        let frames = vec![
            Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"\0\0\0\0\0"))),
            Ok(Frame::trailers(trailers)),
        ];
        let body = BodyExt::boxed(StreamBody::new(futures_util::stream::iter(frames)));
        return Response::builder()
            .header("x-upstream", name)
            .header("content-type", "application/grpc")
            .header("trailer", "grpc-status")
            .body(body)
            .unwrap();
    }
    if let Some(code) = path.strip_prefix("/grpc-header/") {
        return Response::builder()
            .header("x-upstream", name)
            .header("content-type", "application/grpc")
            .header("grpc-status", code)
            .body(full(String::new()))
            .unwrap();
    }
    if path == "/hop" {
        // Hop-by-hop headers an upstream might send; veer must drop them.
        return Response::builder()
            .header("x-upstream", name)
            .header("connection", "x-up-secret")
            .header("x-up-secret", "1")
            .header("keep-alive", "timeout=5")
            .header("proxy-authenticate", "Basic")
            .header("x-up-kept", "1")
            .body(full(name.to_string()))
            .unwrap();
    }
    if path == "/ws" {
        return websocket_echo(name, &mut req);
    }
    with_name(StatusCode::OK, full(name.to_string()))
}

fn websocket_echo(name: &str, req: &mut Request<Incoming>) -> Response<BoxBody> {
    use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
    use tokio_tungstenite::tungstenite::protocol::Role;
    let key = req
        .headers()
        .get("sec-websocket-key")
        .unwrap()
        .as_bytes()
        .to_vec();
    let on_upgrade = hyper::upgrade::on(req);
    let prefix = name.to_string();
    tokio::spawn(async move {
        let upgraded = on_upgrade.await.unwrap();
        let mut ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
            TokioIo::new(upgraded),
            Role::Server,
            None,
        )
        .await;
        while let Some(Ok(msg)) = ws.next().await {
            if msg.is_text() {
                let reply = format!("{prefix}: {}", msg.into_text().unwrap());
                if ws.send(reply.into()).await.is_err() {
                    return;
                }
            } else if msg.is_close() {
                return;
            }
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", derive_accept_key(&key))
        .body(Full::new(Bytes::new()).boxed())
        .unwrap()
}

/// A veer data plane serving the given config, with every listener bound
/// to 127.0.0.1:0 whatever the config says.
pub struct Proxy {
    pub addr: SocketAddr,
    pub addrs: Vec<SocketAddr>,
    pub server: Option<veer::app::App>,
}

impl Proxy {
    pub async fn start(toml: &str) -> Proxy {
        Self::start_in(toml, &temp_dir("state")).await
    }

    /// Like `start`, with rollout state kept in `state_dir`.
    pub async fn start_in(toml: &str, state_dir: &Path) -> Proxy {
        let mut config =
            veer::config::parse(toml, Path::new("test.toml")).unwrap_or_else(|e| panic!("{e}"));
        config.proxy.state_dir = state_dir.to_path_buf();
        let config = Arc::new(config);
        let mut listeners = Vec::new();
        for _ in &config.listeners {
            listeners.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
        }
        let server = veer::app::start(veer::app::Options::new(config, listeners)).await;
        let addrs = server.addrs.clone();
        Proxy {
            addr: addrs[0],
            addrs,
            server: Some(server),
        }
    }

    pub fn routing(&self) -> &veer::routing::Routing {
        &self.server.as_ref().unwrap().routing
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("veer-test-{}-{name}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A pooling HTTP/1.1 client.
pub fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, BoxBody> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An h2c (prior knowledge) client.
pub fn h2c_client() -> Client<hyper_util::client::legacy::connect::HttpConnector, BoxBody> {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

pub fn empty() -> BoxBody {
    Full::new(Bytes::new()).boxed()
}

/// GET with optional headers; returns status, headers and the whole body.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> (StatusCode, http::HeaderMap, String) {
    let mut req = Request::get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    send(&client(), req.body(empty()).unwrap()).await
}

pub async fn send(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, BoxBody>,
    req: Request<BoxBody>,
) -> (StatusCode, http::HeaderMap, String) {
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .expect("request timed out")
        .expect("request failed");
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

/// Counts answers by upstream name over `n` GETs.
pub async fn tally(url: &str, n: usize, headers: &[(&str, &str)]) -> HashMap<String, usize> {
    let client = client();
    let mut counts = HashMap::new();
    for _ in 0..n {
        let mut req = Request::get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let (status, h, _) = send(&client, req.body(empty()).unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        let name = h
            .get("x-upstream")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        *counts.entry(name).or_default() += 1;
    }
    counts
}

/// `n` GETs, tallied by (upstream, status), whatever the status.
pub async fn outcomes(
    url: &str,
    n: usize,
    headers: &[(&str, &str)],
) -> HashMap<(String, u16), usize> {
    let client = client();
    let mut seen = HashMap::new();
    for _ in 0..n {
        let mut req = Request::get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let (status, h, _) = send(&client, req.body(empty()).unwrap()).await;
        let who = h
            .get("x-upstream")
            .map_or("-".into(), |v| v.to_str().unwrap().to_string());
        *seen.entry((who, status.as_u16())).or_default() += 1;
    }
    seen
}

/// Waits for `cond` to hold, polling, up to `deadline`.
pub async fn eventually(deadline: Duration, mut cond: impl FnMut() -> bool) {
    let start = tokio::time::Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < deadline,
            "condition not met within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A config with one listener, the given pools (name, endpoints) and extra
/// TOML appended (routes).
pub fn config(pools: &[(&str, &[SocketAddr])], extra: &str) -> String {
    let mut toml = String::from("[proxy]\nheader_timeout = \"2s\"\nidle_timeout = \"5s\"\n\n[[listener]]\nname = \"public\"\nlisten = \"127.0.0.1:0\"\n\n");
    for (name, eps) in pools {
        let eps: Vec<String> = eps.iter().map(|a| format!("\"{a}\"")).collect();
        toml.push_str(&format!(
            "[[pool]]\nname = \"{name}\"\nendpoints = [{}]\n\n",
            eps.join(", ")
        ));
    }
    toml.push_str(extra);
    toml
}

/// A `[[pool]]` table with the given endpoints and extra keys/tables
/// (`[pool.health]`...) appended.
pub fn pool_toml(name: &str, endpoints: &[SocketAddr], extra: &str) -> String {
    let eps: Vec<String> = endpoints.iter().map(|a| format!("\"{a}\"")).collect();
    format!(
        "[[pool]]\nname = \"{name}\"\nendpoints = [{}]\n{extra}\n",
        eps.join(", ")
    )
}

/// Waits for `cond` to hold, polling, up to `deadline`; async condition.
pub async fn eventually_async<F, Fut>(deadline: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = tokio::time::Instant::now();
    while !cond().await {
        assert!(
            start.elapsed() < deadline,
            "condition not met within {deadline:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The state of endpoint `addr` of pool `pool` in the current snapshot.
pub fn endpoint(proxy: &Proxy, pool: &str, addr: SocketAddr) -> Arc<veer::upstream::EndpointState> {
    let snapshot = proxy.routing().load();
    let pool = snapshot.pool(pool).expect("pool exists");
    pool.endpoint(&addr.to_string())
        .expect("endpoint exists")
        .clone()
}

/// A TCP server that answers every connection with `reply` and closes.
pub async fn raw_upstream(reply: &'static [u8]) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(reply).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

/// An address nothing listens on (bound, then closed).
pub async fn dead_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// Sends raw bytes to `addr` and reads until the peer closes or `limit`
/// passes; returns what was read.
pub async fn raw_exchange(addr: SocketAddr, request: &[u8], limit: Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}
