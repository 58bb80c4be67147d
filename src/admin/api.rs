//! Request dispatch for the admin listener and the one place control
//! errors become HTTP statuses.

use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::control::ControlError;
use crate::rollout::Command;
use crate::routing::MirrorChoice;

use super::{auth, AdminApi};

/// Larger request bodies are refused (400).
const MAX_BODY: usize = 64 * 1024;

type Reply = Response<Full<Bytes>>;

/// A refused call: the status and the `{"error": ...}` text.
pub(super) struct Refusal(pub(super) StatusCode, pub(super) String);

impl From<ControlError> for Refusal {
    fn from(e: ControlError) -> Refusal {
        let status = match &e {
            ControlError::UnknownRoute(_) | ControlError::UnknownPool(_) => StatusCode::NOT_FOUND,
            ControlError::BadRequest(_) | ControlError::Config(_) | ControlError::Listener(_) => {
                StatusCode::BAD_REQUEST
            }
            ControlError::Conflict(_) => StatusCode::CONFLICT,
            ControlError::State(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ControlError::Stopped | ControlError::NoLeader(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        Refusal(status, e.to_string())
    }
}

fn bad(msg: impl Into<String>) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, msg.into())
}

pub(super) async fn handle(api: &AdminApi, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().to_string();
    let get = req.method() == Method::GET || req.method() == Method::HEAD;
    let text = |status: StatusCode, body: String| {
        Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Full::new(Bytes::from(body)))
            .unwrap()
    };
    if let Err((status, why)) = super::guard::check(req.method(), &path, req.headers(), &api.names)
    {
        return refuse(Refusal(status, why.into()));
    }
    if let Some(page) = get.then(|| super::dashboard::asset(&path)).flatten() {
        return page;
    }
    match path.as_str() {
        "/healthz" | "/readyz" | "/metrics" if !get => {
            refuse(Refusal(StatusCode::METHOD_NOT_ALLOWED, "use GET".into()))
        }
        "/healthz" => text(StatusCode::OK, "ok\n".into()),
        "/readyz" if *api.ready.borrow() => text(StatusCode::OK, "ready\n".into()),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n".into()),
        "/metrics" => {
            if let (true, Some(token)) = (api.metrics_token, &api.token) {
                if !auth::token_matches(req.headers(), token) {
                    let why = "missing or wrong bearer token";
                    return refuse(Refusal(StatusCode::UNAUTHORIZED, why.into()));
                }
            }
            let mut resp = text(StatusCode::OK, (api.metrics)());
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            resp
        }
        p if p == "/api" || p.starts_with("/api/") => {
            if let Some(token) = &api.token {
                if !auth::token_matches(req.headers(), token) {
                    return refuse(Refusal(
                        StatusCode::UNAUTHORIZED,
                        "missing or wrong bearer token".into(),
                    ));
                }
            }
            match call(api, req).await {
                Ok(value) => reply(StatusCode::OK, &value),
                Err(refusal) => refuse(refusal),
            }
        }
        _ => refuse(Refusal(
            StatusCode::NOT_FOUND,
            format!("no such path {path}"),
        )),
    }
}

async fn call(api: &AdminApi, req: Request<Incoming>) -> Result<Value, Refusal> {
    let control = &api.control;
    let method = req.method().clone();
    let path = req.uri().path().trim_end_matches('/').to_string();
    let parts: Vec<&str> = path.split('/').skip(1).collect();
    let allow = |want: Method| match method == want {
        true => Ok(()),
        false => Err(Refusal(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{path} takes {want}"),
        )),
    };
    match parts.as_slice() {
        ["api", "v1", "status"] => {
            allow(Method::GET)?;
            Ok(serde_json::to_value(control.status()).expect("status serialises"))
        }
        ["api", "v1", "events"] => {
            allow(Method::GET)?;
            Ok(json!({ "events": control.events.recent() }))
        }
        ["api", "v1", "pools", pool, "drain"] => {
            allow(Method::GET)?;
            drain(api, pool, req.uri().query()).await
        }
        ["api", "v1", "pools", pool, "endpoints"] => {
            super::endpoints::collection(&api.endpoints, pool, req).await
        }
        ["api", "v1", "pools", pool, "endpoints", address] => {
            super::endpoints::member(&api.endpoints, pool, address, req).await
        }
        ["api", "v1", "reload"] => {
            allow(Method::POST)?;
            control.reload().await?;
            Ok(json!({ "ok": true }))
        }
        ["api", "v1", "routes", route, "weights"] => {
            allow(Method::PUT)?;
            let body: serde_json::Map<String, Value> = body_json(req).await?;
            let mut weights = Vec::with_capacity(body.len());
            for (pool, value) in body {
                let w = value
                    .as_u64()
                    .filter(|w| *w <= 100)
                    .ok_or_else(|| bad(format!("weight of {pool:?} must be 0..=100")))?;
                weights.push((pool, w as u32));
            }
            control.controller.set_weights(route, weights).await?;
            Ok(route_reply(api, route))
        }
        ["api", "v1", "routes", route, "mirror"] => {
            let mirror = match method {
                Method::DELETE => MirrorChoice::File,
                _ => {
                    allow(Method::PUT)?;
                    let body: Value = body_json(req).await?;
                    if body == json!({ "off": true }) {
                        MirrorChoice::Off
                    } else {
                        MirrorChoice::On(serde_json::from_value(body).map_err(|e| {
                            bad(format!("mirror body: {e}; write {{\"pool\": \"green\", ...}} or {{\"off\": true}}"))
                        })?)
                    }
                }
            };
            control.controller.set_mirror(route, mirror).await?;
            Ok(route_reply(api, route))
        }
        ["api", "v1", "routes", route, "rollout"] => {
            allow(Method::POST)?;
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Rollout {
                pool: String,
                strategy: Option<String>,
            }
            let body: Rollout = body_json(req).await?;
            let strategy = body
                .strategy
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(bad)?;
            control
                .controller
                .start(route, &body.pool, strategy)
                .await?;
            Ok(route_reply(api, route))
        }
        ["api", "v1", "routes", route, "plan"] => {
            allow(Method::GET)?;
            let answer = super::plan::plan(control, route, req.uri().query(), api.analysis_window)
                .map_err(|(status, why)| Refusal(status, why))?;
            Ok(serde_json::to_value(answer).expect("plan serialises"))
        }
        ["api", "v1", "routes", route, action] => {
            let command: Command = action
                .parse()
                .map_err(|_| Refusal(StatusCode::NOT_FOUND, format!("no such API call {path}")))?;
            allow(Method::POST)?;
            control.controller.command(route, command).await?;
            Ok(route_reply(api, route))
        }
        _ => Err(Refusal(
            StatusCode::NOT_FOUND,
            format!("no such API call {path}"),
        )),
    }
}

/// Longest `wait` a drain query may ask for.
const MAX_WAIT: Duration = Duration::from_secs(300);

/// `GET /api/v1/pools/{pool}/drain[?endpoint=ADDR][&wait=30s]`: where the
/// pool's (or endpoint's) drain stands; with `wait`, answers once drained
/// or when `wait` has passed, whichever is first.
async fn drain(api: &AdminApi, pool: &str, query: Option<&str>) -> Result<Value, Refusal> {
    let (mut endpoint, mut wait) = (None, Duration::ZERO);
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("endpoint", e)) => endpoint = Some(percent_decoded(e)),
            Some(("wait", w)) => {
                wait = humantime::parse_duration(w)
                    .map_err(|e| bad(format!("wait={w:?}: {e}")))?
                    .min(MAX_WAIT);
            }
            _ => {
                return Err(bad(format!(
                    "unknown query parameter {pair:?}; expected endpoint= or wait="
                )))
            }
        }
    }
    let routing = &api.control.routing;
    let report = api
        .drains
        .wait_report(routing, pool, endpoint.as_deref(), wait)
        .await
        .map_err(|e| Refusal(StatusCode::NOT_FOUND, e.to_string()))?;
    Ok(serde_json::to_value(report).expect("report serialises"))
}

/// `%XX` escapes decoded (an endpoint like `[::1]:8080` in a query).
pub(super) fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn route_reply(api: &AdminApi, route: &str) -> Value {
    let status = api.control.status();
    let route = status.routes.into_iter().find(|r| r.name == route);
    json!({ "ok": true, "route": route })
}

pub(super) async fn body_json<T: serde::de::DeserializeOwned>(
    req: Request<Incoming>,
) -> Result<T, Refusal> {
    let bytes = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| bad(format!("reading body: {e}")))?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| bad(format!("bad JSON body: {e}")))
}

fn reply(status: StatusCode, value: &Value) -> Reply {
    let mut body = serde_json::to_vec(value).expect("JSON serialises");
    body.push(b'\n');
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn refuse(Refusal(status, error): Refusal) -> Reply {
    reply(status, &json!({ "error": error }))
}
