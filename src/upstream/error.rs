//! Why an exchange with an upstream failed, as the upstream client sees
//! it. The proxy turns it into a client status in one place
//! (`ProxyError`'s `From<UpstreamError>`); whether the request may be tried
//! elsewhere travels beside it, in [`SendError`].

use std::time::Duration;

use http::Request;

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
    /// The exchange failed because the client's request body did: the
    /// client is to blame, not the upstream.
    #[error("{0}")]
    Client(ClientFault),
}

/// How a client's request body failed while it was being forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClientFault {
    /// Malformed framing (a bad chunk size, a bare LF, an overflowing
    /// size): answered 400.
    #[error("malformed request body")]
    Malformed,
    /// The client went away or reset mid-upload: answered 499.
    #[error("client aborted the upload")]
    Aborted,
}

impl UpstreamError {
    /// Classifies an error hyper reported on an upstream exchange.
    pub fn from_hyper(e: &hyper::Error) -> UpstreamError {
        if let Some(fault) = client_fault(e) {
            return UpstreamError::Client(fault);
        }
        let kind = if e.is_parse() || e.is_parse_status() || e.is_user() {
            UpstreamErrorKind::Protocol
        } else if e.is_timeout() {
            UpstreamErrorKind::Timeout
        } else {
            UpstreamErrorKind::Reset
        };
        UpstreamError::Failed(kind)
    }

    /// The kind it is counted as (a connect timeout is a connect error);
    /// `None` when the client is to blame, which no upstream counter sees.
    pub fn kind(self) -> Option<UpstreamErrorKind> {
        match self {
            UpstreamError::ConnectTimeout(_) => Some(UpstreamErrorKind::Connect),
            UpstreamError::Failed(kind) => Some(kind),
            UpstreamError::Client(_) => None,
        }
    }
}

/// Whether an upstream exchange failed because the request body (the
/// client's `Incoming`) did. hyper reports a body error of the request it
/// sends as a user error whose source is the downstream body's own error;
/// a decoding error there (`InvalidData`/`InvalidInput` from the chunked
/// decoder) is malformed framing, anything else (EOF, reset, an h2 stream
/// reset) is the client going away. Only looks at an error's sources: no
/// cost on the success path.
fn client_fault(e: &hyper::Error) -> Option<ClientFault> {
    use std::error::Error as _;
    if !e.is_user() {
        // HTTP/2 upstreams: hyper resets the stream itself when the request
        // body fails, and the exchange ends with that locally initiated
        // reset; the body's own error is not passed on, so which fault it
        // was is unknown: counted as the client going away.
        let h2 = e.source()?.downcast_ref::<h2::Error>()?;
        let ours = h2.is_reset() && !h2.is_remote() && !h2.is_library();
        return ours.then_some(ClientFault::Aborted);
    }
    let downstream = e.source()?.downcast_ref::<hyper::Error>()?;
    let mut source = downstream.source();
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::{InvalidData, InvalidInput};
            if matches!(io.kind(), InvalidData | InvalidInput) {
                return Some(ClientFault::Malformed);
            }
        }
        source = s.source();
    }
    if downstream.is_parse() {
        return Some(ClientFault::Malformed);
    }
    Some(ClientFault::Aborted)
}

/// A failed send. `request` is `Some` when nothing reached the upstream,
/// so the caller may try elsewhere.
#[derive(Debug)]
pub struct SendError {
    pub error: UpstreamError,
    pub request: Option<Request<super::body::RequestBody>>,
}
