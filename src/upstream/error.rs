//! Why an exchange with an upstream failed, as the upstream client sees
//! it. The proxy turns it into a client status in one place
//! (`ProxyError`'s `From<UpstreamError>`); whether the request may be tried
//! elsewhere travels beside it, in [`SendError`].

use std::time::Duration;

use http::Request;
use hyper::body::Incoming;

use crate::observe::UpstreamErrorKind;

/// A failed connect or exchange with one endpoint. Displayed as the
/// proxy's error for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamError {
    /// No connection within the pool's connect timeout (TCP or TLS).
    #[error("upstream connect timed out after {0:?}")]
    ConnectTimeout(Duration),
    /// Connect refused or failed, handshake failed, connection reset,
    /// protocol error, or an HTTP-level timeout.
    #[error("upstream {0}")]
    Failed(UpstreamErrorKind),
}

impl UpstreamError {
    /// Classifies an error hyper reported on an upstream exchange.
    pub fn from_hyper(e: &hyper::Error) -> UpstreamError {
        let kind = if e.is_parse() || e.is_parse_status() || e.is_user() {
            UpstreamErrorKind::Protocol
        } else if e.is_timeout() {
            UpstreamErrorKind::Timeout
        } else {
            UpstreamErrorKind::Reset
        };
        UpstreamError::Failed(kind)
    }

    /// The kind it is counted as (a connect timeout is a connect error).
    pub fn kind(self) -> UpstreamErrorKind {
        match self {
            UpstreamError::ConnectTimeout(_) => UpstreamErrorKind::Connect,
            UpstreamError::Failed(kind) => kind,
        }
    }
}

/// A failed send. `request` is `Some` when nothing reached the upstream,
/// so the caller may try elsewhere.
#[derive(Debug)]
pub struct SendError {
    pub error: UpstreamError,
    pub request: Option<Request<Incoming>>,
}
