//! One mirrored exchange with one endpoint, off the client's path: a
//! fresh connection (plain or TLS), the request with its buffered body,
//! the whole response read up to a limit.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::upstream::EndpointState;

/// A whole response, as compared.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// From sending the request to the end of the response body.
    pub took: Duration,
}

/// Why an exchange gave nothing to compare (logged, counted as `error`).
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("endpoint is drained")]
    Drained,
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("response body over {0} bytes or broken")]
    Body(usize),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// Sends `req` to `endpoint` and reads the response (at most `limit`
/// body bytes), all within `timeout`.
pub async fn exchange(
    endpoint: &EndpointState,
    req: Request<Full<Bytes>>,
    limit: usize,
    timeout: Duration,
) -> Result<Answer, ExchangeError> {
    let started = Instant::now();
    let work = async {
        if endpoint.flight().is_cut() {
            return Err(ExchangeError::Drained);
        }
        let stream = match endpoint.addr {
            Some(addr) => TcpStream::connect(addr).await,
            None => TcpStream::connect(&endpoint.spec.authority).await,
        }
        .map_err(ExchangeError::Connect)?;
        let _ = stream.set_nodelay(true);
        let resp = match endpoint.conns.tls() {
            None => send(TokioIo::new(stream), req).await?,
            Some(tls) => {
                let stream = tls
                    .connect_http1(stream)
                    .await
                    .map_err(ExchangeError::Connect)?;
                send(TokioIo::new(stream), req).await?
            }
        };
        let (parts, body) = resp.into_parts();
        let body = Limited::new(body, limit)
            .collect()
            .await
            .map_err(|_| ExchangeError::Body(limit))?
            .to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
            took: started.elapsed(),
        })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| ExchangeError::Timeout(timeout))?
}

async fn send<T>(
    io: TokioIo<T>,
    req: Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, ExchangeError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut tx, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "mirror connection ended");
        }
    });
    Ok(tx.send_request(req).await?)
}
