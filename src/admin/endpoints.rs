//! `/api/v1/pools/{pool}/endpoints[/{address}]` (SPEC §13): list, register,
//! change (maintenance, weight) and remove a pool's endpoints.

use std::time::Duration;

use http::{Method, Request, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::discovery::{EndpointError, EndpointView, Registrations};

use super::api::{body_json, percent_decoded, Refusal};

/// Longest `wait` a registration may ask for.
const MAX_WAIT: Duration = Duration::from_secs(300);

impl From<EndpointError> for Refusal {
    fn from(e: EndpointError) -> Refusal {
        let status = match &e {
            EndpointError::UnknownPool(_) | EndpointError::UnknownEndpoint { .. } => {
                StatusCode::NOT_FOUND
            }
            EndpointError::BadRequest(_) => StatusCode::BAD_REQUEST,
            EndpointError::Conflict(_) => StatusCode::CONFLICT,
            EndpointError::State(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Refusal(status, e.to_string())
    }
}

/// `{"address": "10.0.0.7:8080", "weight": 1}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Add {
    address: String,
    weight: Option<u32>,
}

/// `{"maintenance": true}` and/or `{"weight": 3}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    maintenance: Option<bool>,
    weight: Option<u32>,
}

/// `GET` and `POST .../endpoints`.
pub(super) async fn collection(
    registrations: &Registrations,
    pool: &str,
    req: Request<Incoming>,
) -> Result<Value, Refusal> {
    match *req.method() {
        Method::GET | Method::HEAD => list(registrations, pool),
        Method::POST => {
            let wait = wait(req.uri().query())?;
            let body: Add = body_json(req).await?;
            registrations.add(pool, &body.address, body.weight)?;
            let address = crate::config::parse_endpoint(&body.address)
                .map(|e| e.authority)
                .unwrap_or(body.address);
            let healthy = until_healthy(registrations, pool, &address, wait).await;
            let mut answer = list(registrations, pool)?;
            answer["ok"] = json!(true);
            answer["address"] = json!(address);
            answer["healthy"] = json!(healthy);
            Ok(answer)
        }
        _ => Err(Refusal(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("/api/v1/pools/{pool}/endpoints takes GET or POST"),
        )),
    }
}

/// `PUT` and `DELETE .../endpoints/{address}`.
pub(super) async fn member(
    registrations: &Registrations,
    pool: &str,
    address: &str,
    req: Request<Incoming>,
) -> Result<Value, Refusal> {
    let address = percent_decoded(address);
    match *req.method() {
        Method::PUT => {
            let body: Change = body_json(req).await?;
            if body.maintenance.is_none() && body.weight.is_none() {
                let msg = "body needs \"maintenance\": true|false and/or \"weight\": N";
                return Err(Refusal(StatusCode::BAD_REQUEST, msg.into()));
            }
            registrations.update(pool, &address, body.maintenance, body.weight)?;
        }
        Method::DELETE => registrations.remove(pool, &address)?,
        _ => {
            return Err(Refusal(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("/api/v1/pools/{pool}/endpoints/{address} takes PUT or DELETE"),
            ))
        }
    }
    let mut answer = list(registrations, pool)?;
    answer["ok"] = json!(true);
    Ok(answer)
}

fn list(registrations: &Registrations, pool: &str) -> Result<Value, Refusal> {
    let endpoints: Vec<EndpointView> = registrations.list(pool)?;
    Ok(json!({ "pool": pool, "endpoints": endpoints }))
}

/// `?wait=30s` on a registration: answer once the endpoint is in
/// rotation, or when `wait` has passed.
fn wait(query: Option<&str>) -> Result<Duration, Refusal> {
    let mut wait = Duration::ZERO;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("wait", w)) => {
                wait = humantime::parse_duration(w)
                    .map_err(|e| Refusal(StatusCode::BAD_REQUEST, format!("wait={w:?}: {e}")))?
                    .min(MAX_WAIT);
            }
            _ => {
                let msg = format!("unknown query parameter {pair:?}; expected wait=");
                return Err(Refusal(StatusCode::BAD_REQUEST, msg));
            }
        }
    }
    Ok(wait)
}

/// Whether `address` is in rotation, checked every 50 ms for up to `wait`.
async fn until_healthy(
    registrations: &Registrations,
    pool: &str,
    address: &str,
    wait: Duration,
) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let healthy = registrations
            .list(pool)
            .ok()
            .and_then(|list| list.into_iter().find(|e| e.address == address))
            .is_some_and(|e| e.healthy);
        if healthy || tokio::time::Instant::now() >= deadline {
            return healthy;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
