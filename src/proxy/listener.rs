//! Accepting client connections and serving each with HTTP/1.1 or h2c
//! (prior knowledge, same port), or over TLS with h2 by ALPN, with
//! header-read and idle timeouts. The TLS handshake runs in the
//! connection's own task, so a slow or failing one never holds up accept.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use crate::config::ProxySettings;
use crate::routing::Routing;
use crate::tls::ServerTls;
use crate::workers::Workers;

use super::conn::{ConnState, TrackedIo, Verdict};
use super::service::ProxyService;

/// Serves one listening socket until `shutdown` turns true. Connections
/// are spawned on `tracker` so the caller can wait for them to finish.
/// With `tls`, each connection first completes a TLS handshake. Each
/// connection is served on the next of `workers`.
pub async fn serve(
    listener: TcpListener,
    routing: Arc<Routing>,
    tls: Option<Arc<ServerTls>>,
    mut shutdown: watch::Receiver<bool>,
    tracker: TaskTracker,
    workers: Workers,
) {
    let settings = routing.load().config.proxy.clone();
    let builder = Arc::new(http_builder(&settings));
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors and the like: back off a little
                    // instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            () = stopped(&mut shutdown) => break,
        };
        let routing = routing.clone();
        let settings = routing.load().config.proxy.clone();
        let builder = builder.clone();
        let mut shutdown = shutdown.clone();
        let tls = tls.clone();
        workers.spawn_conn(stream, &tracker, move |stream| async move {
            let _ = stream.set_nodelay(true);
            let Some(tls) = tls else {
                serve_conn(stream, peer, routing, false, &builder, &settings, shutdown).await;
                return;
            };
            let stream = tokio::select! {
                stream = tls.accept(stream) => stream,
                () = stopped(&mut shutdown) => None,
            };
            if let Some(stream) = stream {
                serve_conn(stream, peer, routing, true, &builder, &settings, shutdown).await;
            }
        });
    }
}

fn http_builder(settings: &ProxySettings) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(settings.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(settings.max_header_bytes.min(u32::MAX as usize) as u32);
    builder
}

async fn serve_conn<S>(
    stream: S,
    peer: SocketAddr,
    routing: Arc<Routing>,
    https: bool,
    builder: &auto::Builder<TokioExecutor>,
    settings: &ProxySettings,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let state = ConnState::new();
    let service = ProxyService {
        routing,
        conn: state.clone(),
        client: peer.ip(),
        client_address: super::headers::client_address(peer.ip()),
        https,
    };
    let io = TokioIo::new(TrackedIo::new(stream, state.clone()));
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);

    let (header_timeout, idle_timeout) = (settings.header_timeout, settings.idle_timeout);
    let watchdog = tokio::time::sleep(header_timeout.min(idle_timeout));
    tokio::pin!(watchdog);
    let mut closing = false;
    loop {
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(%peer, error = %e, "client connection ended with error");
                }
                return;
            }
            () = &mut watchdog => {
                let now = tokio::time::Instant::now();
                match state.check(now, header_timeout, idle_timeout) {
                    Verdict::Wait(at) => watchdog.as_mut().reset(at),
                    Verdict::SlowHead => {
                        tracing::debug!(%peer, "request head not received in time, closing");
                        return;
                    }
                    Verdict::Idle if closing => return,
                    Verdict::Idle => {
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                        watchdog.as_mut().reset(now + header_timeout);
                    }
                }
            }
            () = stopped(&mut shutdown), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// Resolves once shutdown has been asked for (or its sender is gone).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
