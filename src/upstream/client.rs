//! Pooled HTTP/1.1 connections to one endpoint (plain or TLS), or one
//! shared HTTP/2 connection when a TLS upstream picked `h2` by ALPN.
//!
//! Connections are kept in a LIFO stack so the warmest one is reused first
//! and the oldest age out at the bottom. A connection goes back on the
//! stack only once its response body has been read to the end (see
//! [`Pooled`]). Sending uses `try_send_request`, which hands the request
//! back when the connection died before a byte was written: that is the
//! pooled-connection race, and the request is retried on a fresh connection
//! whatever its method, because the upstream never saw it.
//!
//! With several workers (`workers = N`) each connection remembers the
//! worker whose runtime runs it, and a worker takes its own idle
//! connections first: its requests then never wake another thread.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;

use super::body::RequestBody;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::error::{SendError, UpstreamError};
use super::flight::{ConnGuard, Flight};
use crate::observe::UpstreamErrorKind;
use crate::tls::UpstreamConnector;

mod h2;

/// Idle connections kept per endpoint; more are closed when returned.
const MAX_IDLE: usize = 512;

#[derive(Debug)]
pub struct ConnPool {
    idle: Arc<Mutex<Vec<Idle>>>,
    connect_timeout: Duration,
    idle_timeout: Duration,
    /// Set for `https://` endpoints.
    tls: Option<UpstreamConnector>,
    /// The shared connection to an upstream that speaks h2 (see [`h2`]).
    h2: Mutex<Option<http2::SendRequest<RequestBody>>>,
    /// What is in flight on the endpoint: each connection counts here
    /// from the start of connecting until its task ends, and closes when
    /// a drain cuts the endpoint.
    flight: Arc<Flight>,
}

#[derive(Debug)]
struct Idle {
    tx: http1::SendRequest<RequestBody>,
    since: Instant,
    /// The worker the connection's task runs on.
    home: usize,
}

/// A connection checked out for one exchange. Give it back with
/// [`Pooled::release`] once the response body is complete; dropping it
/// instead closes the connection.
#[derive(Debug)]
pub struct Pooled {
    /// `None` for h2: the connection is shared and never leaves the pool.
    tx: Option<http1::SendRequest<RequestBody>>,
    idle: Arc<Mutex<Vec<Idle>>>,
    home: usize,
}

impl Pooled {
    pub fn release(self) {
        let Some(tx) = self.tx else { return };
        if tx.is_closed() {
            return;
        }
        let mut idle = self.idle.lock().unwrap();
        if idle.len() < MAX_IDLE {
            idle.push(Idle {
                tx,
                since: Instant::now(),
                home: self.home,
            });
        }
    }
}

impl ConnPool {
    pub fn new(connect_timeout: Duration, idle_timeout: Duration) -> ConnPool {
        ConnPool {
            idle: Arc::default(),
            connect_timeout,
            idle_timeout,
            tls: None,
            h2: Mutex::new(None),
            flight: Arc::default(),
        }
    }

    /// The endpoint's in-flight accounting.
    pub fn flight(&self) -> &Arc<Flight> {
        &self.flight
    }

    /// Connects with TLS through `connector` (an `https://` endpoint).
    pub fn with_tls(mut self, connector: UpstreamConnector) -> ConnPool {
        self.tls = Some(connector);
        self
    }

    /// TLS settings of an `https://` endpoint.
    pub fn tls(&self) -> Option<&UpstreamConnector> {
        self.tls.as_ref()
    }

    /// Number of idle pooled connections.
    pub fn idle_count(&self) -> usize {
        self.idle.lock().unwrap().len()
    }

    /// Closes every idle connection (drain, endpoint removed).
    pub fn clear(&self) {
        self.idle.lock().unwrap().clear();
        self.h2.lock().unwrap().take();
    }

    /// The newest idle connection, this worker's own first, and its home.
    fn checkout(&self) -> Option<(http1::SendRequest<RequestBody>, usize)> {
        let mut idle = self.idle.lock().unwrap();
        let now = Instant::now();
        // Oldest at the bottom: drop those past the idle timeout.
        let expired =
            idle.partition_point(|c| now.saturating_duration_since(c.since) >= self.idle_timeout);
        idle.drain(..expired);
        let me = crate::workers::index();
        loop {
            let at = idle
                .iter()
                .rposition(|c| c.home == me)
                .or(idle.len().checked_sub(1))?;
            let conn = idle.remove(at);
            if !conn.tx.is_closed() {
                return Some((conn.tx, conn.home));
            }
        }
    }

    /// Sends `req` over a pooled or new connection to `host:port`/`addr`.
    pub async fn send(
        &self,
        addr: Option<SocketAddr>,
        authority: &str,
        req: Request<RequestBody>,
    ) -> Result<(Response<Incoming>, Pooled), SendError> {
        if self.tls.as_ref().is_some_and(|t| t.h2) {
            return self.send_h2(addr, authority, req).await;
        }
        self.send_h1(addr, authority, req).await
    }

    pub(super) async fn send_h1(
        &self,
        addr: Option<SocketAddr>,
        authority: &str,
        mut req: Request<RequestBody>,
    ) -> Result<(Response<Incoming>, Pooled), SendError> {
        loop {
            let (mut tx, home, reused) = match self.checkout() {
                Some((tx, home)) => (tx, home, true),
                // Boxed: connecting (TCP, TLS, h2 handshake) is a large
                // future and rare; inline it would make every request's
                // future (allocated and moved per request) that much larger.
                None => match Box::pin(self.connect(addr, authority)).await {
                    Ok(Conn::H1(tx)) => (tx, crate::workers::index(), false),
                    Ok(Conn::H2(tx)) => {
                        // Only when the pool offers h2: share it from now on.
                        *self.h2.lock().unwrap() = Some(tx);
                        return Box::pin(self.send_h2(addr, authority, req)).await;
                    }
                    Err(error) => {
                        return Err(SendError {
                            error,
                            request: Some(req),
                        })
                    }
                },
            };
            if tx.ready().await.is_err() {
                if reused {
                    continue;
                }
                let error = UpstreamError::Failed(UpstreamErrorKind::Reset);
                return Err(SendError {
                    error,
                    request: Some(req),
                });
            }
            match tx.try_send_request(req).await {
                Ok(resp) => {
                    return Ok((
                        resp,
                        Pooled {
                            tx: Some(tx),
                            idle: self.idle.clone(),
                            home,
                        },
                    ))
                }
                Err(mut e) => match e.take_message() {
                    Some(back) if reused => req = back,
                    request => {
                        let error = UpstreamError::from_hyper(e.error());
                        return Err(SendError { error, request });
                    }
                },
            }
        }
    }

    pub(super) async fn connect(
        &self,
        addr: Option<SocketAddr>,
        authority: &str,
    ) -> Result<Conn, UpstreamError> {
        // A cut endpoint gets no new connections (a request routed by a
        // snapshot older than its drain).
        if self.flight.is_cut() {
            return Err(UpstreamError::Failed(UpstreamErrorKind::Connect));
        }
        let open = self.flight.open_conn();
        let connect = async {
            match addr {
                Some(addr) => TcpStream::connect(addr).await,
                None => TcpStream::connect(authority).await,
            }
        };
        let stream = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(_)) => return Err(UpstreamError::Failed(UpstreamErrorKind::Connect)),
            Err(_) => return Err(UpstreamError::ConnectTimeout(self.connect_timeout)),
        };
        let _ = stream.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return handshake_h1(stream, open).await.map(Conn::H1);
        };
        let (stream, h2) =
            match tokio::time::timeout(self.connect_timeout, tls.connect(stream)).await {
                Ok(Ok(pair)) => pair,
                Ok(Err(e)) => {
                    tracing::debug!(%authority, error = %e, "upstream TLS handshake failed");
                    return Err(UpstreamError::Failed(UpstreamErrorKind::Connect));
                }
                Err(_) => return Err(UpstreamError::ConnectTimeout(self.connect_timeout)),
            };
        if h2 {
            h2::handshake(stream, open).await.map(Conn::H2)
        } else {
            handshake_h1(stream, open).await.map(Conn::H1)
        }
    }
}

/// A new upstream connection.
pub(super) enum Conn {
    H1(http1::SendRequest<RequestBody>),
    H2(http2::SendRequest<RequestBody>),
}

/// HTTP/1.1 over `io`; the connection runs in its own task, counted by
/// `open` until it ends, and closed when its endpoint is cut (a response
/// body it carries then ends with an error, never a clean end).
async fn handshake_h1<T>(
    io: T,
    open: ConnGuard,
) -> Result<http1::SendRequest<RequestBody>, UpstreamError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tx, conn) = http1::Builder::new()
        .handshake(TokioIo::new(io))
        .await
        .map_err(|_| UpstreamError::Failed(UpstreamErrorKind::Connect))?;
    let exec = TokioExecutor::new();
    let cut = open.cut_signal();
    hyper::rt::Executor::execute(&exec, async move {
        tokio::select! {
            ended = conn.with_upgrades() => if let Err(e) = ended {
                tracing::debug!(error = %e, "upstream connection ended");
            },
            () = cut => tracing::debug!("upstream connection cut by a drain"),
        }
        drop(open);
    });
    Ok(tx)
}
