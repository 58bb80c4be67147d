//! Active health checks: an HTTP GET of `[pool.health] path` to every
//! endpoint each `interval`, bounded by `timeout`. An endpoint flips only
//! after `unhealthy_threshold` failures or `healthy_threshold` passes in a
//! row (pingora's rule), except a new endpoint, which enters rotation on
//! its first pass.
//!
//! [`check`] runs the checks of one endpoint state until stopped; which
//! endpoints have a checker is up to the routing layer's `health::run`,
//! which follows the routing snapshots.

use std::sync::Arc;
use std::time::Duration;

use http::{header, Request, StatusCode};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use crate::config::HealthSpec;

use super::endpoint::EndpointState;

/// Consecutive probe results and the verdict they add up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streak {
    healthy: bool,
    /// Results in a row that disagree with `healthy`.
    run: u32,
    /// Has passed a check since it was created: until then one pass is
    /// enough to enter rotation.
    passed: bool,
}

impl Streak {
    pub fn new(healthy: bool) -> Streak {
        Streak {
            healthy,
            run: 0,
            passed: healthy,
        }
    }

    /// Takes one probe result; `Some(verdict)` when the endpoint flips.
    pub fn observe(&mut self, pass: bool, spec: &HealthSpec) -> Option<bool> {
        let first_pass = pass && !self.passed;
        self.passed |= pass;
        if pass == self.healthy {
            self.run = 0;
            return None;
        }
        self.run += 1;
        let needed = match (pass, first_pass) {
            (true, true) => 1,
            (true, false) => spec.healthy_threshold,
            (false, _) => spec.unhealthy_threshold,
        };
        if self.run < needed {
            return None;
        }
        self.healthy = pass;
        self.run = 0;
        Some(pass)
    }
}

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("connect failed: {0}")]
    Connect(#[source] std::io::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    #[error("answered {0}")]
    Status(StatusCode),
}

/// A probe's connection, plain or TLS.
type ProbeConn = std::pin::Pin<Box<dyn std::future::Future<Output = hyper::Result<()>> + Send>>;

/// One check: GET `spec.path` on a fresh connection; any 2xx passes.
pub async fn probe(endpoint: &EndpointState, spec: &HealthSpec) -> Result<(), ProbeError> {
    let exchange = async {
        let stream = match endpoint.addr {
            Some(addr) => TcpStream::connect(addr).await,
            None => TcpStream::connect(&endpoint.spec.authority).await,
        }
        .map_err(ProbeError::Connect)?;
        let _ = stream.set_nodelay(true);
        let (mut tx, conn): (_, ProbeConn) = match endpoint.conns.tls() {
            None => {
                let (tx, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                (tx, Box::pin(conn))
            }
            Some(tls) => {
                let stream = tls
                    .connect_http1(stream)
                    .await
                    .map_err(ProbeError::Connect)?;
                let (tx, conn) =
                    hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                (tx, Box::pin(conn))
            }
        };
        let req = Request::get(spec.path.as_str())
            .header(header::HOST, endpoint.spec.authority.as_str())
            .header(header::USER_AGENT, "veer-health-check")
            .header(header::CONNECTION, "close")
            .body(Empty::<bytes::Bytes>::new())
            .expect("a valid path and authority make a valid request");
        // Only the status matters: the connection (and any body) is
        // dropped as soon as the response head is in.
        let sent = tx.send_request(req);
        tokio::pin!(sent, conn);
        let resp = tokio::select! {
            biased;
            resp = &mut sent => resp,
            _ = &mut conn => sent.await,
        };
        let status = resp?.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(ProbeError::Status(status))
        }
    };
    tokio::time::timeout(spec.timeout, exchange)
        .await
        .map_err(|_| ProbeError::Timeout(spec.timeout))?
}

/// Checks one endpoint every `spec.interval` until `stop`, flipping it in
/// and out of rotation as [`Streak`] decides.
pub async fn check(
    pool: String,
    endpoint: Arc<EndpointState>,
    spec: HealthSpec,
    stop: CancellationToken,
) {
    let mut streak = Streak::new(endpoint.passes_checks());
    let mut ticks = tokio::time::interval(spec.interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let result = tokio::select! {
            () = stop.cancelled() => return,
            result = async {
                ticks.tick().await;
                probe(&endpoint, &spec).await
            } => result,
        };
        let Some(healthy) = streak.observe(result.is_ok(), &spec) else {
            continue;
        };
        endpoint.set_healthy(healthy);
        // Warm connections to an endpoint that went away or came back are
        // suspect either way.
        endpoint.conns.clear();
        let authority = &endpoint.spec.authority;
        match result {
            Ok(()) => tracing::info!(%pool, endpoint = %authority, "endpoint healthy"),
            Err(e) => {
                tracing::warn!(%pool, endpoint = %authority, error = %e, "endpoint unhealthy")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(healthy: u32, unhealthy: u32) -> HealthSpec {
        HealthSpec {
            path: "/ready".into(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(200),
            healthy_threshold: healthy,
            unhealthy_threshold: unhealthy,
        }
    }

    fn feed(streak: &mut Streak, spec: &HealthSpec, results: &[bool]) -> Vec<Option<bool>> {
        results.iter().map(|&r| streak.observe(r, spec)).collect()
    }

    #[test]
    fn flips_only_after_thresholds_in_a_row() {
        let spec = spec(2, 3);
        let mut s = Streak::new(true);
        let out = feed(&mut s, &spec, &[false, false, true, false, false, false]);
        assert_eq!(out, [None, None, None, None, None, Some(false)]);
        let out = feed(&mut s, &spec, &[true, false, true, true]);
        assert_eq!(out, [None, None, None, Some(true)]);
    }

    #[test]
    fn a_new_endpoint_enters_on_its_first_pass() {
        let spec = spec(3, 2);
        let mut s = Streak::new(false);
        assert_eq!(
            feed(&mut s, &spec, &[false, false, true]),
            [None, None, Some(true)]
        );
        // Once it has passed, the thresholds hold.
        assert_eq!(feed(&mut s, &spec, &[false, false]), [None, Some(false)]);
        assert_eq!(
            feed(&mut s, &spec, &[true, true, true]),
            [None, None, Some(true)]
        );
    }
}
