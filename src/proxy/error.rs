//! Proxy errors and the one place they become HTTP statuses.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use super::body::ProxyBody;

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
}

/// What went wrong with an upstream, as counted in
/// `veer_upstream_errors_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamErrorKind {
    #[error("connect error")]
    Connect,
    #[error("timeout")]
    Timeout,
    #[error("reset")]
    Reset,
    #[error("protocol error")]
    Protocol,
}

impl UpstreamErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamErrorKind::Connect => "connect",
            UpstreamErrorKind::Timeout => "timeout",
            UpstreamErrorKind::Reset => "reset",
            UpstreamErrorKind::Protocol => "protocol",
        }
    }
}

impl ProxyError {
    /// Classifies an error hyper reported on an upstream exchange.
    pub fn from_upstream(e: &hyper::Error) -> ProxyError {
        let kind = if e.is_parse() || e.is_parse_status() || e.is_user() {
            UpstreamErrorKind::Protocol
        } else if e.is_timeout() {
            UpstreamErrorKind::Timeout
        } else {
            UpstreamErrorKind::Reset
        };
        ProxyError::Upstream(kind)
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::NoHealthyEndpoint => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::ConnectTimeout(_) | ProxyError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            ProxyError::Upstream(_) => StatusCode::BAD_GATEWAY,
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
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

    /// A short plain-text response for the client.
    pub fn to_response(&self) -> Response<ProxyBody> {
        let status = self.status();
        let text = match self {
            ProxyError::NoRoute => "no route\n",
            ProxyError::NoHealthyEndpoint => "no healthy upstream\n",
            ProxyError::ConnectTimeout(_) | ProxyError::Timeout(_) => "upstream timeout\n",
            ProxyError::Upstream(_) => "bad gateway\n",
            ProxyError::BadRequest(_) => "bad request\n",
        };
        let mut resp = Response::new(ProxyBody::full(Bytes::from_static(text.as_bytes())));
        *resp.status_mut() = status;
        let headers = resp.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if matches!(self, ProxyError::BadRequest(_)) {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}
