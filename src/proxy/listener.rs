//! Accepting client connections and serving each with HTTP/1.1 or h2c
//! (prior knowledge, same port, told apart by peeking at the first bytes),
//! or over TLS with h2 by ALPN, with header-read and idle timeouts. The TLS
//! handshake runs in the connection's own task, so a slow or failing one
//! never holds up accept.
//!
//! An idle HTTP/1.1 connection is parked (see [`PARK_AFTER`]): hyper's
//! connection is taken apart and only the socket waits for the next
//! request, so 10,000 idle keep-alive clients cost about 8.5 KiB each
//! rather than hyper's ~16 KiB of buffers and state each.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ProxySettings;
use crate::observe::Telemetry;
use crate::routing::Routing;
use crate::shutdown::HandOver;
use crate::tls::ServerTls;
use crate::workers::Workers;

use super::accept::Acceptor;
use super::conn::{ConnState, Timeouts, TrackedIo, Verdict};
use super::service::ProxyService;

/// What every connection serves from.
#[derive(Clone)]
pub struct Serving {
    pub routing: Arc<Routing>,
    /// Where requests that match no route are counted.
    pub telemetry: Arc<Telemetry>,
    /// Set when shutdown handed the sockets to a new process.
    pub handover: HandOver,
}

/// Serves one listening socket until `shutdown` is cancelled. Connections
/// are spawned on `tracker` so the caller can wait for them to finish.
/// With `tls`, each connection first completes a TLS handshake. Each
/// connection is served on the next of `workers`.
pub async fn serve(
    listener: TcpListener,
    serving: Serving,
    tls: Option<Arc<ServerTls>>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    workers: Workers,
) {
    let builders = Arc::new(Builders::new(&serving.routing.load().config.proxy));
    let max_connections = serving.routing.load().config.proxy.max_connections;
    let mut acceptor = Acceptor::new(listener, max_connections, "proxy");
    loop {
        let (stream, peer, permit) = tokio::select! {
            accepted = acceptor.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let routing = serving.clone();
        // The settings serving now (a reload changes them for new
        // connections); shared, not copied.
        let config = serving.routing.load().config.clone();
        let builders = builders.clone();
        let shutdown = shutdown.clone();
        let tls = tls.clone();
        workers.spawn_conn(stream, &tracker, move |stream| async move {
            // Held while the connection is open: one of `max_connections`.
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            let accepted = (stream, peer);
            match tls {
                None => serve_plain(accepted, routing, &builders, &config.proxy, shutdown).await,
                // Boxed: a TLS handshake's state is large, and plain
                // connections should not carry its size in their task.
                Some(tls) => {
                    let tls = serve_tls(accepted, tls, routing, &builders, &config.proxy, shutdown);
                    Box::pin(tls).await
                }
            }
        });
    }
}

/// A plain connection: h2c by prior knowledge or HTTP/1.1, told apart by
/// the first bytes (peeked, so hyper reads them itself).
async fn serve_plain(
    (stream, peer): (TcpStream, SocketAddr),
    routing: Serving,
    builders: &Builders,
    settings: &ProxySettings,
    shutdown: CancellationToken,
) {
    let first = tokio::select! {
        // Silent clients are cut off like slow ones: after `header_timeout`.
        first = tokio::time::timeout(settings.header_timeout, h2_preface(&stream)) => first,
        () = routing.handover.closing(&shutdown) => return,
    };
    let Ok(Ok(h2)) = first else { return };
    let conn = (stream, peer, false, h2);
    serve_conn(conn, routing, builders, settings, shutdown).await;
}

/// A TLS connection: the handshake, then h2 or HTTP/1.1 as ALPN chose.
async fn serve_tls(
    (stream, peer): (TcpStream, SocketAddr),
    tls: Arc<ServerTls>,
    routing: Serving,
    builders: &Builders,
    settings: &ProxySettings,
    shutdown: CancellationToken,
) {
    let stream = tokio::select! {
        stream = tls.accept(stream) => stream,
        () = routing.handover.closing(&shutdown) => None,
    };
    if let Some(stream) = stream {
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        let conn = (stream, peer, true, h2);
        serve_conn(conn, routing, builders, settings, shutdown).await;
    }
}

/// The HTTP/2 client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether the connection starts with the HTTP/2 preface, judged from
/// peeked bytes: usually the first byte settles it (`PRI` is no HTTP/1.1
/// method a proxy serves). False at end of stream.
async fn h2_preface(stream: &TcpStream) -> std::io::Result<bool> {
    let mut buf = [0u8; PREFACE.len()];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 || buf[..n] != PREFACE[..n] {
            return Ok(false);
        }
        if n == PREFACE.len() {
            return Ok(true);
        }
        // Part of the preface so far: peeking again at once would see the
        // same bytes, so wait a little for the rest (clients send it whole).
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// hyper's HTTP/1.1 and HTTP/2 connection settings, made once per listener.
struct Builders {
    http1: http1::Builder,
    http2: http2::Builder<TokioExecutor>,
}

impl Builders {
    fn new(settings: &ProxySettings) -> Builders {
        let mut http1 = http1::Builder::new();
        http1
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .max_header_size(settings.max_header_bytes)
            .max_buf_size(settings.max_header_bytes.max(8192));
        let mut http2 = http2::Builder::new(TokioExecutor::new());
        http2
            .timer(TokioTimer::new())
            .max_header_list_size(settings.max_header_bytes.min(u32::MAX as usize) as u32);
        Builders { http1, http2 }
    }

    /// An HTTP/1.1 connection (upgrades allowed) over `io`, boxed.
    fn h1<S>(&self, io: Io<S>, service: ProxyService) -> Pin<Box<Http1<S>>>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        Box::pin(self.http1.serve_connection(io, service).with_upgrades())
    }
}

type Io<S> = TokioIo<TrackedIo<S>>;
type Http1<S> = http1::UpgradeableConnection<Io<S>, ProxyService>;

/// An HTTP/1.1 connection idle this long lets go of hyper's connection
/// state and buffers (about 16 KiB) until its next request arrives, as
/// nginx frees a keep-alive connection's buffers; the socket stays open.
/// (Noticed by the connection's watchdog, so within twice this.)
const PARK_AFTER: Duration = Duration::from_millis(250);

/// One client connection, served with HTTP/1.1 (upgrades allowed) or
/// HTTP/2; boxed, so a parked connection's task stays small.
enum Conn<S> {
    H1(Pin<Box<Http1<S>>>),
    H2(Pin<Box<http2::Connection<Io<S>, ProxyService, TokioExecutor>>>),
}

impl<S> Future for Conn<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Output = hyper::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            Conn::H1(conn) => conn.as_mut().poll(cx),
            Conn::H2(conn) => conn.as_mut().poll(cx),
        }
    }
}

impl<S> Conn<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    /// Idle HTTP/1 connections close, busy ones answer with `Connection:
    /// close`; HTTP/2 ones get GOAWAY.
    fn graceful_shutdown(&mut self) {
        match self {
            Conn::H1(conn) => conn.as_mut().graceful_shutdown(),
            Conn::H2(conn) => conn.as_mut().graceful_shutdown(),
        }
    }
}

/// Serves one accepted connection: `(stream, peer, https, h2)`.
async fn serve_conn<S>(
    (stream, peer, https, h2): (S, SocketAddr, bool, bool),
    routing: Serving,
    builders: &Builders,
    settings: &ProxySettings,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = ConnState::new();
    if !h2 {
        state.await_first_head();
    }
    let handover = routing.handover.clone();
    let service = ProxyService {
        routing: routing.routing,
        telemetry: routing.telemetry,
        conn: state.clone(),
        client_address: super::headers::client_address(peer.ip()),
        https,
    };
    let io = TokioIo::new(TrackedIo::new(stream, state.clone(), !h2));
    let mut conn = match h2 {
        false => Conn::H1(builders.h1(io, service)),
        true => Conn::H2(Box::pin(builders.http2.serve_connection(io, service))),
    };
    let park_after = (!h2).then_some(PARK_AFTER);

    let (header_timeout, idle_timeout) = (settings.header_timeout, settings.idle_timeout);
    let timeouts = Timeouts {
        header: header_timeout,
        idle: idle_timeout,
        send: settings.send_timeout,
    };
    let first_look = header_timeout.min(idle_timeout).min(PARK_AFTER);
    let watchdog = tokio::time::sleep(first_look);
    tokio::pin!(watchdog);
    let mut closing = false;
    loop {
        tokio::select! {
            res = &mut conn => {
                if let Err(e) = res {
                    tracing::debug!(%peer, error = %e, "client connection ended with error");
                }
                return;
            }
            () = &mut watchdog => {
                let now = tokio::time::Instant::now();
                let park_now = park_after.filter(|_| !closing);
                match state.check(now, timeouts, park_now) {
                    Verdict::Wait(at) => watchdog.as_mut().reset(at),
                    Verdict::SlowHead => {
                        tracing::debug!(%peer, "request head not received in time, closing");
                        return;
                    }
                    Verdict::SlowReader => {
                        // Dropping the connection drops its responses: their
                        // upstream connections close, in-flight counts end.
                        tracing::debug!(%peer, "client stopped reading the response, closing");
                        return;
                    }
                    Verdict::Idle if closing => return,
                    Verdict::Idle => {
                        conn.graceful_shutdown();
                        closing = true;
                        watchdog.as_mut().reset(now + header_timeout);
                    }
                    Verdict::Park => {
                        let Conn::H1(h1) = conn else { return };
                        let deadline = state.idle_deadline(idle_timeout);
                        let closing = handover.closing(&shutdown);
                        let Some(h1) = park(h1, deadline, closing, builders).await else {
                            return;
                        };
                        conn = Conn::H1(h1);
                        let next = header_timeout.min(idle_timeout);
                        watchdog.as_mut().reset(tokio::time::Instant::now() + next);
                    }
                }
            }
            () = shutdown.cancelled(), if !closing => {
                closing = true;
                match &conn {
                    // Handed over: the next request is answered with
                    // `Connection: close`, the client's next connection
                    // goes to the new process.
                    Conn::H1(_) if handover.started() && state.in_flight() == 0 => {
                        state.close_after_next();
                    }
                    _ => conn.graceful_shutdown(),
                }
            }
        }
    }
}

/// Parks an idle HTTP/1 connection: hyper's state is dropped, only the
/// socket is kept, until the first bytes of the next request arrive (then a
/// fresh connection reads them), `deadline` (the idle timeout) passes or
/// `closing` resolves (both close it).
async fn park<S>(
    conn: Pin<Box<Http1<S>>>,
    deadline: tokio::time::Instant,
    closing: impl Future<Output = ()>,
    builders: &Builders,
) -> Option<Pin<Box<Http1<S>>>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let parts = Pin::into_inner(conn).into_parts()?;
    let mut io = parts.io.into_inner();
    // When the next request has begun already, it is served at once.
    let next = match parts.read_buf.is_empty() {
        false => parts.read_buf,
        true => first_bytes(&mut io, deadline, closing).await?,
    };
    io.unread(next);
    Some(builders.h1(TokioIo::new(io), parts.service))
}

/// The first bytes a parked connection receives; `None` (after closing it)
/// when `deadline` or `closing` comes first, or the client closes.
async fn first_bytes<S>(
    io: &mut TrackedIo<S>,
    deadline: tokio::time::Instant,
    closing: impl Future<Output = ()>,
) -> Option<bytes::Bytes>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut first = [0u8; 64];
    let read = tokio::select! {
        read = io.read(&mut first) => read,
        () = tokio::time::sleep_until(deadline) => Err(std::io::ErrorKind::TimedOut.into()),
        () = closing => Err(std::io::ErrorKind::Interrupted.into()),
    };
    match read {
        Ok(n) if n > 0 => Some(bytes::Bytes::copy_from_slice(&first[..n])),
        _ => {
            // Like hyper closing an idle connection: a clean close (TLS
            // close_notify included), bounded in time.
            let _ = tokio::time::timeout(Duration::from_secs(1), io.shutdown()).await;
            None
        }
    }
}
