//! The per-request path: route, pick a pool and endpoint, rewrite headers,
//! forward (with safe retries), stream the response back.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use tokio::time::Instant;

use crate::observe::{Outcome, RoutePoolStats, Telemetry, UpstreamErrorKind};
use crate::routing::{request_host, Route, Routing, Target};
use crate::upstream::{Attempt, InFlight, Pooled, SendError, TunnelGuard};

use super::body::ProxyBody;
use super::conn::ConnState;
use super::error::{is_grpc, ProxyError};
use super::headers::{add_forwarding, is_upgrade, strip_hop_by_hop, upgrade_allowed, X_REQUEST_ID};
use super::record::{AccessInfo, Recorder};
use super::{host, path};

/// The hyper service for one downstream connection.
#[derive(Clone)]
pub struct ProxyService {
    pub routing: Arc<Routing>,
    pub telemetry: Arc<Telemetry>,
    pub conn: Arc<ConnState>,
    /// The client's address as an `X-Forwarded-For` entry.
    pub client_address: HeaderValue,
    /// The listener terminates TLS (`X-Forwarded-Proto: https`).
    pub https: bool,
}

impl hyper::service::Service<Request<Incoming>> for ProxyService {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ProxyBody>, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let activity = self.conn.begin();
        let this = self.clone();
        let grpc = is_grpc(req.headers());
        Box::pin(async move {
            let mut resp = match this.proxy(req, grpc).await {
                Ok(resp) => resp,
                Err(e) => e.respond(grpc),
            };
            resp.body_mut().set_activity(activity);
            // Served after the sockets went to a new process: the client's
            // next request goes there, on a new connection.
            if this.conn.closes_after_this() {
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(resp)
        })
    }
}

impl ProxyService {
    async fn proxy(
        &self,
        req: Request<Incoming>,
        grpc: bool,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let started = Instant::now();
        let (mut parts, body) = req.into_parts();
        let ambiguous =
            parts.version <= Version::HTTP_11 && self.conn.ambiguous(self.conn.next_request());
        if ambiguous
            || parts.headers.contains_key(header::TRANSFER_ENCODING)
                && parts.headers.contains_key(header::CONTENT_LENGTH)
        {
            return Err(ProxyError::BadRequest(
                "content-length with transfer-encoding",
            ));
        }
        if let Err(e) = host::check(&mut parts) {
            tracing::debug!(error = %e, "request host refused");
            return Err(ProxyError::BadRequest("host"));
        }
        // Routed, and forwarded, by its normalized path.
        let normalized = match path::normalize(parts.uri.path()) {
            Ok(Cow::Borrowed(_)) => None,
            Ok(Cow::Owned(normalized)) => Some(normalized),
            Err(e) => {
                tracing::debug!(error = %e, "request path refused");
                return Err(ProxyError::BadRequest("path"));
            }
        };
        if let Some(normalized) = normalized {
            parts.uri = with_path(&parts.uri, &normalized)?;
        }
        let (route, target, settings) = {
            let snapshot = self.routing.load();
            let host = request_host(&parts);
            let Some(route) = snapshot.route(host.as_deref(), parts.uri.path()) else {
                self.telemetry.record_unrouted();
                return Err(ProxyError::NoRoute);
            };
            let target = route.select(&parts).ok_or(ProxyError::NoHealthyEndpoint)?;
            let p = &snapshot.config.proxy;
            (route.clone(), target.clone(), (p.metrics, p.access_log))
        };
        let (route, target) = match route.hold.is_zero() {
            true => (route, target),
            false => self.hold(&parts, route, target).await,
        };
        let mut recorder = match settings {
            (true, access_log) => {
                let access = access_log.then(|| {
                    Box::new(AccessInfo {
                        method: parts.method.clone(),
                        ..Default::default()
                    })
                });
                Some(Recorder::start(target.stats.clone(), started, access))
            }
            (false, _) => None,
        };
        match self
            .forward(&route, &target, parts, body, recorder.as_mut())
            .await
        {
            Ok(mut resp) => {
                if let Some(recorder) = recorder {
                    resp.body_mut().set_recorder(recorder);
                }
                Ok(resp)
            }
            Err(e) => {
                let mut resp = e.respond(grpc);
                if let Some(mut recorder) = recorder {
                    recorder.error(e.status(), e.upstream_kind());
                    resp.body_mut().set_recorder(recorder);
                }
                Ok(resp)
            }
        }
    }

    /// Recreate's gap: waits up to the route's `hold` for its target to
    /// have an endpoint in rotation, re-routing on every new snapshot, so a
    /// request held when the rollout rolls back goes to stable instead of
    /// failing. Health flips between snapshots are polled lightly.
    async fn hold(
        &self,
        parts: &http::request::Parts,
        mut route: Arc<Route>,
        mut target: Target,
    ) -> (Arc<Route>, Target) {
        let deadline = Instant::now() + route.hold;
        let mut published = self.routing.subscribe();
        while target.pool.pick(0, target.limit).is_none() {
            let poll = std::time::Duration::from_millis(20);
            tokio::select! {
                _ = published.changed() => {}
                () = tokio::time::sleep_until(deadline.min(Instant::now() + poll)) => {}
            }
            if Instant::now() >= deadline {
                break;
            }
            let snapshot = self.routing.load();
            if let Some(now) = snapshot.route_named(&route.name) {
                if let Some(t) = now.select(parts) {
                    (route, target) = (now.clone(), t.clone());
                }
            }
        }
        (route, target)
    }

    /// Rewrites the request for the upstream, sends it to `pool` and
    /// prepares the response for the client.
    async fn forward(
        &self,
        route: &Route,
        target: &Target,
        mut parts: http::request::Parts,
        body: Incoming,
        recorder: Option<&mut Recorder>,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        // An upgrade the route does not allow is forwarded as a plain
        // request: `Upgrade` and `Connection` are stripped below.
        let upgrade = parts.version == Version::HTTP_11
            && is_upgrade(&parts.headers)
            && upgrade_allowed(&parts.headers, &route.upgrades);
        let host = match parts.headers.get(header::HOST) {
            Some(h) => Some(h.clone()),
            None => parts
                .uri
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok()),
        };
        strip_hop_by_hop(&mut parts.headers, upgrade);
        if let (false, Some(h)) = (parts.headers.contains_key(header::HOST), &host) {
            parts.headers.insert(header::HOST, h.clone());
        }
        add_forwarding(
            &mut parts.headers,
            &self.client_address,
            self.https,
            host.as_ref(),
        );
        parts.uri = origin_form(&parts.uri);
        parts.version = Version::HTTP_11;
        let attempts = 1 + if is_idempotent(&parts.method) {
            route.retries
        } else {
            0
        };
        let mut recorder = recorder;
        if let Some(access) = recorder.as_deref_mut().and_then(Recorder::access_mut) {
            access.request_id = parts.headers.get(&X_REQUEST_ID).cloned();
        }
        let stats = recorder.as_ref().map(|r| r.stats().clone());
        let mut req = Request::from_parts(parts, body);
        let downstream_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));

        let sent = send(target, req, attempts, stats.as_deref());
        let sent = tokio::time::timeout(route.timeout, sent).await;
        let (mut resp, conn, in_flight) =
            sent.map_err(|_| ProxyError::Timeout(route.timeout))??;
        if let Some(recorder) = recorder {
            recorder.response(
                resp.status(),
                resp.headers(),
                &in_flight.endpoint().spec.authority,
            );
        }
        target
            .pool
            .record(in_flight.endpoint(), Attempt::of_status(resp.status()));

        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            let Some(downstream) = downstream_upgrade else {
                return Err(ProxyError::Upstream(UpstreamErrorKind::Protocol));
            };
            let upstream = hyper::upgrade::on(&mut resp);
            self.conn.set_upgraded();
            let counted = in_flight.endpoint().flight().start_tunnel();
            tokio::spawn(tunnel(downstream, upstream, (in_flight, counted)));
            strip_hop_by_hop(resp.headers_mut(), true);
            return Ok(resp.map(|_| ProxyBody::empty()));
        }
        strip_hop_by_hop(resp.headers_mut(), false);
        Ok(resp.map(|body| ProxyBody::upstream(body, Some(conn), in_flight)))
    }
}

/// Sends to the pool, trying another endpoint (up to `attempts` in all)
/// only when the request never reached an upstream. Failed attempts that
/// a retry hides from the client are still counted in `stats`.
async fn send(
    target: &Target,
    mut req: Request<Incoming>,
    attempts: u32,
    stats: Option<&RoutePoolStats>,
) -> Result<(Response<Incoming>, Pooled, InFlight), ProxyError> {
    let mut tried = 0u64;
    let mut last = None;
    // The failed attempt's guard is let go only once the next one counts,
    // so a drain of the pool never sees zero in between.
    let mut previous: Option<InFlight> = None;
    for _ in 0..attempts {
        let Some((index, endpoint)) = target.pool.pick(tried, target.limit) else {
            break;
        };
        tried |= 1u64.checked_shl(index as u32).unwrap_or(0);
        let in_flight = endpoint.start_request();
        drop(previous.take());
        match endpoint
            .conns
            .send(endpoint.addr, &endpoint.spec.authority, req)
            .await
        {
            Ok((resp, conn)) => return Ok((resp, conn, in_flight)),
            Err(SendError { error, request }) => {
                // The client's own body failed: not the endpoint's fault.
                let Some(kind) = error.kind() else {
                    return Err(error.into());
                };
                target.pool.record(endpoint, Attempt::Failure);
                if let Some(stats) = stats {
                    stats.record_attempt(Outcome::Error(kind));
                }
                let Some(back) = request else {
                    return Err(error.into());
                };
                tracing::debug!(endpoint = %endpoint.spec.authority, %error, "upstream attempt failed");
                last = Some(error);
                req = back;
                previous = Some(in_flight);
            }
        }
    }
    Err(last.map_or(ProxyError::NoHealthyEndpoint, ProxyError::from))
}

/// Copies bytes both ways between an upgraded client and upstream, until
/// either side closes or a drain (at `drain_timeout` or `shutdown_grace`)
/// cuts the endpoint. The guards drop only once both sockets are closed.
async fn tunnel(
    downstream: hyper::upgrade::OnUpgrade,
    upstream: hyper::upgrade::OnUpgrade,
    guards: (InFlight, TunnelGuard),
) {
    let cut = guards.0.endpoint().flight().cut_signal();
    tokio::select! {
        () = relay(downstream, upstream) => {}
        () = cut => tracing::debug!("upgraded connection cut by a drain"),
    }
    drop(guards);
}

async fn relay(downstream: hyper::upgrade::OnUpgrade, upstream: hyper::upgrade::OnUpgrade) {
    let (down, up) = match tokio::try_join!(downstream, upstream) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::debug!(error = %e, "upgrade failed");
            return;
        }
    };
    let (mut down, mut up) = (TokioIo::new(down), TokioIo::new(up));
    let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// `/path?query` for an HTTP/1.1 upstream.
fn origin_form(uri: &Uri) -> Uri {
    if uri.scheme().is_none() && uri.authority().is_none() {
        return uri.clone();
    }
    match uri.path_and_query() {
        Some(pq) => Uri::from(pq.clone()),
        None => Uri::from_static("/"),
    }
}

/// `uri` with its path replaced (the query kept).
fn with_path(uri: &Uri, path: &str) -> Result<Uri, ProxyError> {
    let mut parts = uri.clone().into_parts();
    let pq = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    let bad = |_| ProxyError::BadRequest("path");
    parts.path_and_query = Some(http::uri::PathAndQuery::try_from(pq).map_err(bad)?);
    Uri::from_parts(parts).map_err(|_| ProxyError::BadRequest("path"))
}
