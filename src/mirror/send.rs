//! One mirrored exchange with one endpoint, off the client's path: the
//! request with its buffered body over a kept-alive connection of the
//! mirror's own (plain endpoints) or a fresh TLS one (`https://`), the
//! whole response read up to a limit. Mirror connections are apart from
//! the proxy's, so copies never take a connection a client needs.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::OnceLock;
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
    #[error("{0}")]
    Client(String),
    #[error("cannot make a URI for the endpoint")]
    Uri,
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
        let Some(tls) = endpoint.conns.tls() else {
            return read(plain(endpoint, req).await?, limit, started).await;
        };
        let stream = match endpoint.addr {
            Some(addr) => TcpStream::connect(addr).await,
            None => TcpStream::connect(&endpoint.spec.authority).await,
        }
        .map_err(ExchangeError::Connect)?;
        let _ = stream.set_nodelay(true);
        let stream = tls
            .connect_http1(stream)
            .await
            .map_err(ExchangeError::Connect)?;
        let resp = send(TokioIo::new(stream), req).await?;
        read(resp, limit, started).await
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| ExchangeError::Timeout(timeout))?
}

/// The whole response, at most `limit` body bytes.
async fn read(
    resp: http::Response<hyper::body::Incoming>,
    limit: usize,
    started: Instant,
) -> Result<Answer, ExchangeError> {
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
}

type PlainClient = Client<HttpConnector, Full<Bytes>>;

/// Sends over the mirror's own pooled HTTP/1.1 connections.
async fn plain(
    endpoint: &EndpointState,
    mut req: Request<Full<Bytes>>,
) -> Result<http::Response<hyper::body::Incoming>, ExchangeError> {
    static CLIENT: OnceLock<PlainClient> = OnceLock::new();
    let client = CLIENT.get_or_init(|| {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build(connector)
    });
    let target = match endpoint.addr {
        Some(addr) => addr.to_string(),
        None => endpoint.spec.authority.clone(),
    };
    let path = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    *req.uri_mut() = format!("http://{target}{path}")
        .parse()
        .map_err(|_| ExchangeError::Uri)?;
    client
        .request(req)
        .await
        .map_err(|e| ExchangeError::Client(e.to_string()))
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
