//! Recording one request's result: counted against its route×pool when
//! the response is finished (or abandoned), so latency covers the whole
//! exchange and a gRPC failure reported in trailers is still seen.

use http::header::HeaderName;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use std::sync::Arc;
use tokio::time::Instant;

use crate::observe::{Outcome, RoutePoolStats, UpstreamErrorKind};

/// Counts one request; records on drop.
#[derive(Debug)]
pub struct Recorder {
    stats: Arc<RoutePoolStats>,
    started: Instant,
    status: StatusCode,
    /// The last upstream attempt's outcome; `None` when no attempt was made
    /// (no healthy endpoint).
    outcome: Option<Outcome>,
    access: Option<Box<AccessInfo>>,
}

/// What the access log line needs beyond the counters.
#[derive(Debug, Default)]
pub struct AccessInfo {
    pub method: Method,
    pub request_id: Option<HeaderValue>,
    pub endpoint: Option<String>,
}

impl Recorder {
    pub fn start(
        stats: Arc<RoutePoolStats>,
        started: Instant,
        access: Option<Box<AccessInfo>>,
    ) -> Recorder {
        stats.enter();
        Recorder {
            stats,
            started,
            status: StatusCode::OK,
            outcome: None,
            access,
        }
    }

    /// The response headers are known.
    pub fn response(&mut self, status: StatusCode, headers: &HeaderMap, endpoint: &str) {
        self.status = status;
        let failed = status.is_server_error() || grpc_failed(headers);
        self.outcome = Some(Outcome::Response { failed });
        if let Some(access) = &mut self.access {
            access.endpoint = Some(endpoint.to_string());
        }
    }

    /// veer answered itself with an error status. Failed attempts were
    /// already counted as they happened; what is left to count is the route
    /// timeout cutting an attempt short.
    pub fn error(&mut self, status: StatusCode, kind: Option<UpstreamErrorKind>) {
        self.status = status;
        if kind == Some(UpstreamErrorKind::Timeout) {
            self.outcome = Some(Outcome::Error(UpstreamErrorKind::Timeout));
        }
    }

    /// Trailers arrived (gRPC puts `grpc-status` there).
    pub fn trailers(&mut self, trailers: &HeaderMap) {
        if grpc_failed(trailers) {
            self.outcome = Some(Outcome::Response { failed: true });
        }
    }

    /// The upstream body broke off mid-stream.
    pub fn body_error(&mut self) {
        self.outcome = Some(Outcome::Error(UpstreamErrorKind::Reset));
    }

    pub fn stats(&self) -> &Arc<RoutePoolStats> {
        &self.stats
    }

    pub fn access_mut(&mut self) -> Option<&mut AccessInfo> {
        self.access.as_deref_mut()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        match self.outcome {
            Some(outcome) => self.stats.record_attempt(outcome),
            None if self.status == StatusCode::SERVICE_UNAVAILABLE => {
                self.stats.record_unavailable()
            }
            None => {}
        }
        self.stats.record_response(self.status, elapsed);
        self.stats.leave();
        if let Some(access) = &self.access {
            tracing::info!(
                target: "veer::access",
                route = %self.stats.route,
                pool = %self.stats.pool,
                endpoint = %access.endpoint.as_deref().unwrap_or("-"),
                method = %access.method,
                status = self.status.as_u16(),
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                request_id = %access.request_id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or("-"),
            );
        }
    }
}

static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// A gRPC response failed when it carries a non-zero `grpc-status`.
fn grpc_failed(headers: &HeaderMap) -> bool {
    headers
        .get(&GRPC_STATUS)
        .is_some_and(|v| v.as_bytes() != b"0")
}
