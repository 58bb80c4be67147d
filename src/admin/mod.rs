//! The admin listener: `/healthz`, `/readyz`, `/metrics` (rendered by
//! `metrics`) and the JSON `/api/v1` of SPEC §6 (`api`), the bearer token
//! check (`auth`), the dashboard page at `/` (`dashboard`), and the
//! command-line client that talks to it (`client`, `table`).

mod api;
mod auth;
pub mod cli;
pub mod client;
mod dashboard;
mod endpoints;
mod guard;
pub mod metrics;
pub mod plan;
pub mod table;

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::control::Control;

pub use auth::token_matches;

/// Produces the Prometheus text for `/metrics` (normally
/// [`metrics::render`]).
pub type MetricsRenderer = Arc<dyn Fn() -> String + Send + Sync>;

/// What the admin API serves from.
pub struct AdminApi {
    pub control: Arc<Control>,
    /// `GET /api/v1/pools/{pool}/drain`.
    pub drains: Arc<crate::drain::Drains>,
    /// `/api/v1/pools/{pool}/endpoints`.
    pub endpoints: Arc<crate::discovery::Registrations>,
    /// `/api` calls need `Authorization: Bearer <token>` when set.
    pub token: Option<String>,
    /// `/readyz` is 200 while true.
    pub ready: tokio::sync::watch::Receiver<bool>,
    pub metrics: MetricsRenderer,
    /// How long the per-pool windows are (`veer plan` reads the route's
    /// current traffic from them).
    pub analysis_window: Duration,
    /// Host names answered besides IP literals and `localhost`.
    pub names: Vec<String>,
    /// `/metrics` needs the token too (`[admin] metrics_token`).
    pub metrics_token: bool,
}

/// Serves the admin API on `listener` until `stop` is cancelled, then
/// lets open requests finish (up to a second). After a `handover` the
/// new process accepts on the same socket; connections accepted here
/// just before first get half a second to send their request.
pub async fn serve(
    listener: TcpListener,
    api: Arc<AdminApi>,
    stop: CancellationToken,
    handover: crate::shutdown::HandOver,
) {
    let graceful = GracefulShutdown::new();
    // Its own small budget, apart from the proxy listeners'.
    let max = crate::proxy::accept::ADMIN_MAX_CONNECTIONS;
    let mut acceptor = crate::proxy::accept::Acceptor::new(listener, max, "admin");
    loop {
        let (stream, _, permit) = tokio::select! {
            accepted = acceptor.accept() => accepted,
            () = stop.cancelled() => break,
        };
        let api = api.clone();
        let service = hyper::service::service_fn(move |req| {
            let api = api.clone();
            async move { Ok::<_, std::convert::Infallible>(api::handle(&api, req).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "admin connection ended with error");
            }
        });
    }
    if handover.started() {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), graceful.shutdown()).await;
}
