//! The client side of the admin API, for `veer status`, `veer weights`,
//! `veer rollout`, `veer reload`, `veer drain wait` and friends.

use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::control::{RouteStatus, Status};

/// How long one call may take before the client gives up.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a CLI call did not succeed; each says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("bad admin address {0:?}: expected http://HOST:PORT (VEER_ADMIN)")]
    BadAddress(String),
    #[error("cannot reach the admin API at {url}: {reason} (is veer running? VEER_ADMIN sets the address)")]
    Unreachable { url: String, reason: String },
    #[error("the admin API at {url} refused the token: {message} (set VEER_ADMIN_TOKEN)")]
    Unauthorized { url: String, message: String },
    #[error("the admin API refused ({status}): {message}")]
    Refused { status: u16, message: String },
    /// The command line itself was wrong.
    #[error("{0}")]
    Usage(String),
    /// `veer drain wait` gave up (exit status 2).
    #[error("{0}")]
    TimedOut(String),
    #[error("unexpected answer from the admin API: {0}")]
    BadAnswer(String),
}

pub struct AdminClient {
    base: String,
    token: Option<String>,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl AdminClient {
    /// `base` like `http://127.0.0.1:9901`; `token` is sent as a bearer
    /// token when given.
    pub fn new(base: &str, token: Option<String>) -> Result<AdminClient, ClientError> {
        let base = base.trim_end_matches('/').to_string();
        let uri: http::Uri = base
            .parse()
            .map_err(|_| ClientError::BadAddress(base.clone()))?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(ClientError::BadAddress(base));
        }
        Ok(AdminClient {
            base,
            token: token.filter(|t| !t.is_empty()),
            client: Client::builder(TokioExecutor::new()).build_http(),
        })
    }

    /// One API call; the JSON answer on 2xx, else the API's error.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClientError> {
        self.call_within(method, path, body, CALL_TIMEOUT).await
    }

    /// [`AdminClient::call`] that may take up to `limit` (a call that
    /// waits on the server, like a drain query with `wait`).
    pub async fn call_within(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        limit: Duration,
    ) -> Result<Value, ClientError> {
        let url = format!("{}{}", self.base, path);
        let mut req = Request::builder().method(method).uri(&url);
        if let Some(token) = &self.token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        // Every call says JSON: the admin API refuses a mutating call
        // without it (a cross-site form cannot send it).
        req = req.header(header::CONTENT_TYPE, "application/json");
        let body = match body {
            Some(v) => Full::new(Bytes::from(v.to_string())),
            None => Full::new(Bytes::new()),
        };
        let req = req
            .body(body)
            .map_err(|e| ClientError::BadAddress(format!("{url}: {e}")))?;
        let unreachable = |reason: String| ClientError::Unreachable {
            url: self.base.clone(),
            reason,
        };
        let resp = tokio::time::timeout(limit, self.client.request(req))
            .await
            .map_err(|_| unreachable(format!("no answer within {limit:?}")))?
            .map_err(|e| unreachable(error_chain(&e)))?;
        let status = resp.status();
        let bytes = tokio::time::timeout(CALL_TIMEOUT, resp.into_body().collect())
            .await
            .map_err(|_| unreachable("answer cut short".into()))?
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        let value: Value = serde_json::from_slice(&bytes).map_err(|_| {
            ClientError::BadAnswer(format!(
                "{status}: {}",
                String::from_utf8_lossy(&bytes).trim()
            ))
        })?;
        if status.is_success() {
            return Ok(value);
        }
        let message = value["error"]
            .as_str()
            .unwrap_or("no reason given")
            .to_string();
        Err(match status {
            StatusCode::UNAUTHORIZED => ClientError::Unauthorized {
                url: self.base.clone(),
                message,
            },
            _ => ClientError::Refused {
                status: status.as_u16(),
                message,
            },
        })
    }

    pub async fn status(&self) -> Result<Status, ClientError> {
        let value = self.call(Method::GET, "/api/v1/status", None).await?;
        serde_json::from_value(value).map_err(|e| ClientError::BadAnswer(e.to_string()))
    }

    /// Acts on a route (`PUT weights` or a `POST`); returns the route's
    /// status after the change.
    pub async fn route_call(
        &self,
        method: Method,
        route: &str,
        call: &str,
        body: Option<Value>,
    ) -> Result<RouteStatus, ClientError> {
        let path = format!("/api/v1/routes/{route}/{call}");
        let value = self.call(method, &path, body).await?;
        serde_json::from_value(value["route"].clone())
            .map_err(|e| ClientError::BadAnswer(e.to_string()))
    }
}

/// `e` and its sources, joined, so "connection refused" is not hidden
/// behind "client error (Connect)".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
