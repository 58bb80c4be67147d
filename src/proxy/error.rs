//! Proxy errors, upstream failures mapped onto them, and the one place
//! they become HTTP statuses.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use super::body::ProxyBody;
use crate::observe::UpstreamErrorKind;
use crate::upstream::{ClientFault, UpstreamError};

/// Why a request could not be answered by an upstream.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProxyError {
    #[error("no route")]
    NoRoute,
    #[error("no healthy endpoint")]
    NoHealthyEndpoint,
    #[error("upstream connect timed out after {0:?}")]
    ConnectTimeout(Duration),
    #[error("upstream timed out after {0:?}")]
    Timeout(Duration),
    #[error("upstream {0}")]
    Upstream(UpstreamErrorKind),
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The client's request body failed while being forwarded: its fault,
    /// never counted against the upstream.
    #[error("{0}")]
    Client(ClientFault),
}

/// Whether a request is gRPC (`content-type: application/grpc*`).
pub fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// nginx's "client closed request": the client aborted its upload.
pub const CLIENT_CLOSED_REQUEST: u16 = 499;

impl From<UpstreamError> for ProxyError {
    /// A failed upstream attempt, as the client will be answered for it.
    fn from(e: UpstreamError) -> ProxyError {
        match e {
            UpstreamError::ConnectTimeout(after) => ProxyError::ConnectTimeout(after),
            UpstreamError::Failed(kind) => ProxyError::Upstream(kind),
            UpstreamError::Client(fault) => ProxyError::Client(fault),
        }
    }
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::NoHealthyEndpoint => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::ConnectTimeout(_) | ProxyError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ProxyError::BadRequest(_) | ProxyError::Client(ClientFault::Malformed) => {
                StatusCode::BAD_REQUEST
            }
            ProxyError::Client(ClientFault::Aborted) => {
                StatusCode::from_u16(CLIENT_CLOSED_REQUEST).expect("a valid status")
            }
        }
    }

    /// The upstream failure class, when the upstream is to blame.
    pub fn upstream_kind(&self) -> Option<UpstreamErrorKind> {
        match self {
            ProxyError::ConnectTimeout(_) => Some(UpstreamErrorKind::Connect),
            ProxyError::Timeout(_) => Some(UpstreamErrorKind::Timeout),
            ProxyError::Upstream(kind) => Some(*kind),
            _ => None,
        }
    }

    /// The gRPC status code for it (the gRPC spec's HTTP mapping, with
    /// timeouts as `DEADLINE_EXCEEDED` and an aborted upload `CANCELLED`).
    pub fn grpc_status(&self) -> (&'static str, &'static str) {
        match self {
            ProxyError::NoRoute => ("12", "no route"),
            ProxyError::NoHealthyEndpoint => ("14", "no healthy upstream"),
            ProxyError::ConnectTimeout(_) => ("14", "upstream connect timeout"),
            ProxyError::Timeout(_) => ("4", "upstream timeout"),
            ProxyError::Upstream(_) => ("14", "bad gateway"),
            ProxyError::BadRequest(_) | ProxyError::Client(ClientFault::Malformed) => {
                ("13", "bad request")
            }
            ProxyError::Client(ClientFault::Aborted) => ("1", "client closed request"),
        }
    }

    /// The response for the client: short plain text, or for a gRPC
    /// request (`grpc`) a trailers-only response (HTTP 200 with
    /// `grpc-status` and `grpc-message`, no body), which gRPC clients read
    /// as the call's status.
    pub fn respond(&self, grpc: bool) -> Response<ProxyBody> {
        if !grpc {
            return self.to_response();
        }
        let (code, message) = self.grpc_status();
        let mut resp = Response::new(ProxyBody::empty());
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert("grpc-status", HeaderValue::from_static(code));
        headers.insert("grpc-message", HeaderValue::from_static(message));
        resp
    }

    /// A short plain-text response for the client.
    pub fn to_response(&self) -> Response<ProxyBody> {
        let status = self.status();
        let text = match self {
            ProxyError::NoRoute => "no route\n",
            ProxyError::NoHealthyEndpoint => "no healthy upstream\n",
            ProxyError::ConnectTimeout(_) | ProxyError::Timeout(_) => "upstream timeout\n",
            ProxyError::Upstream(_) => "bad gateway\n",
            ProxyError::BadRequest(_) | ProxyError::Client(ClientFault::Malformed) => {
                "bad request\n"
            }
            ProxyError::Client(ClientFault::Aborted) => "client closed request\n",
        };
        let mut resp = Response::new(ProxyBody::full(Bytes::from_static(text.as_bytes())));
        *resp.status_mut() = status;
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if matches!(self, ProxyError::BadRequest(_) | ProxyError::Client(_)) {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}
