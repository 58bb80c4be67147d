//! Streaming helpers: an upstream body that drips chunks and records when
//! it sent its last one (or was cut), a client that reads a response to
//! its end and says whether that end was clean, a webhook receiver, a
//! relay that says when a client's request is through, and `veer drain
//! wait` run as a process and timed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use tokio::net::TcpListener;
use tokio::time::Instant;

use super::BoxBody;

/// Bytes per `/drip` chunk.
pub const CHUNK: usize = 100;

/// What one `/drip/N/MS` response did.
#[derive(Debug, Clone, Default)]
pub struct Drip {
    pub total: usize,
    /// Chunks handed to the connection so far.
    pub sent: usize,
    /// When the last chunk was handed over (the upstream's last byte).
    pub last_chunk: Option<(Instant, SystemTime)>,
    /// When the body was dropped: finished, or its connection closed.
    pub dropped: Option<Instant>,
}

/// Every `/drip` response of one upstream. `/drip/N/hold` sends N - 1
/// chunks 10 ms apart, then its last one only once [`Drips::release`]d.
#[derive(Debug, Clone)]
pub struct Drips(Arc<Mutex<Vec<Drip>>>, Arc<tokio::sync::Semaphore>);

impl Default for Drips {
    fn default() -> Drips {
        Drips(Arc::default(), Arc::new(tokio::sync::Semaphore::new(0)))
    }
}

struct Recorder {
    drips: Drips,
    index: usize,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.drips.0.lock().unwrap()[self.index].dropped = Some(Instant::now());
    }
}

impl Drips {
    pub fn get(&self, index: usize) -> Drip {
        self.0.lock().unwrap()[index].clone()
    }

    pub fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }

    /// Lets one held `/drip/N/hold` send its last chunk.
    pub fn release(&self) {
        self.1.add_permits(1);
    }

    /// Answers `/drip/N/MS` (`spec` is `N/MS` or `N/hold`): N chunks.
    pub fn respond(&self, name: &str, spec: &str) -> Response<BoxBody> {
        let (n, ms) = spec.split_once('/').expect("/drip/N/MS");
        let total: usize = n.parse().unwrap();
        let held = (ms == "hold").then(|| self.1.clone());
        let every: u64 = if held.is_some() {
            10
        } else {
            ms.parse().unwrap()
        };
        let index = {
            let mut drips = self.0.lock().unwrap();
            drips.push(Drip {
                total,
                ..Drip::default()
            });
            drips.len() - 1
        };
        let recorder = Recorder {
            drips: self.clone(),
            index,
        };
        let chunks = futures_util::stream::unfold((0, recorder), move |(i, rec)| {
            let held = held.clone();
            drip(i, rec, total, every, held)
        });
        Response::builder()
            .header("x-upstream", name)
            .body(BodyExt::boxed(StreamBody::new(chunks)))
            .unwrap()
    }
}

type Step = (Result<Frame<Bytes>, Infallible>, (usize, Recorder));

/// Chunk `i` of a drip, after its pause (and, held, the release).
async fn drip(
    i: usize,
    rec: Recorder,
    total: usize,
    every: u64,
    held: Option<Arc<tokio::sync::Semaphore>>,
) -> Option<Step> {
    if i == total {
        return None;
    }
    if i > 0 {
        tokio::time::sleep(Duration::from_millis(every)).await;
    }
    if let (true, Some(gate)) = (i + 1 == total, &held) {
        gate.acquire().await.unwrap().forget();
    }
    {
        let mut drips = rec.drips.0.lock().unwrap();
        let drip = &mut drips[rec.index];
        drip.sent = i + 1;
        if i + 1 == total {
            drip.last_chunk = Some((Instant::now(), SystemTime::now()));
        }
    }
    let frame = Frame::data(Bytes::from(vec![b'd'; CHUNK]));
    Some((Ok::<_, Infallible>(frame), (i + 1, rec)))
}

/// How a streamed response ended, seen by the client.
#[derive(Debug)]
pub struct Received {
    pub status: StatusCode,
    pub bytes: usize,
    /// The body ended cleanly (not cut: no error, no early close).
    pub clean: bool,
    pub ended: Instant,
}

/// GETs `url` on a fresh connection and reads the body to its end (at
/// most `limit`), in a task of its own.
pub fn stream_get(url: String, limit: Duration) -> tokio::task::JoinHandle<Received> {
    tokio::spawn(async move {
        let req = Request::get(url).body(super::empty()).unwrap();
        let resp = tokio::time::timeout(limit, super::client().request(req))
            .await
            .expect("response head in time")
            .expect("response head");
        let status = resp.status();
        let mut body = resp.into_body();
        let mut bytes = 0;
        let read = async {
            loop {
                match body.frame().await {
                    None => return true,
                    Some(Ok(frame)) => bytes += frame.data_ref().map_or(0, Bytes::len),
                    Some(Err(_)) => return false,
                }
            }
        };
        let clean = tokio::time::timeout(limit, read)
            .await
            .expect("body ended in time");
        Received {
            status,
            bytes,
            clean,
            ended: Instant::now(),
        }
    })
}

/// Unix milliseconds of `at`.
pub fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// JSON bodies POSTed to a webhook receiver: (path, body).
pub type Hooks = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// An HTTP server on 127.0.0.1:0 that records every JSON POST, answers 200.
pub async fn hook_server() -> (SocketAddr, Hooks) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received: Hooks = Arc::default();
    let seen = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let path = req.uri().path().to_string();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let json = serde_json::from_slice(&body).unwrap();
                        seen.lock().unwrap().push((path, json));
                        Ok::<_, Infallible>(Response::new(super::empty()))
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    });
    (addr, received)
}

/// A TCP relay to `target` on 127.0.0.1:0; the receiver turns true once
/// a client's first bytes (its request) have been passed on.
pub async fn relay(target: SocketAddr) -> (SocketAddr, tokio::sync::watch::Receiver<bool>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (through, seen) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let through = through.clone();
            tokio::spawn(async move {
                let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else {
                    return;
                };
                let mut first = vec![0u8; 4096];
                let Ok(n) = client.read(&mut first).await else {
                    return;
                };
                if n == 0 || upstream.write_all(&first[..n]).await.is_err() {
                    return;
                }
                through.send_replace(true);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (addr, seen)
}

/// One `veer` CLI run: its exit and output, and when it exited.
#[derive(Debug)]
pub struct CliRun {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub exited: Instant,
}

/// Starts `veer ARGS` against the admin API at `admin` (http://...), in
/// a task; the process is killed if it outlives `limit`.
pub fn veer_cli(admin: String, args: &[&str], limit: Duration) -> tokio::task::JoinHandle<CliRun> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::spawn(async move {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_veer"));
        cmd.args(&args)
            .env("VEER_ADMIN", admin)
            .env_remove("VEER_ADMIN_TOKEN")
            .env("VEER_LOG", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(limit, cmd.output())
            .await
            .expect("veer cli hung")
            .unwrap();
        CliRun {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            exited: Instant::now(),
        }
    })
}
