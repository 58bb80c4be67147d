//! HTTP/2 to TLS upstreams that chose `h2` by ALPN (gRPC among them): one
//! shared, multiplexed connection per endpoint, requests in absolute form
//! with `:authority` from `Host`, `te: trailers` kept for gRPC, trailers
//! streamed back untouched. An upstream that answers ALPN with
//! `http/1.1` is served through the HTTP/1.1 pool instead.

use std::net::SocketAddr;

use http::header::{self, HeaderValue};
use http::{Request, Response, Uri, Version};
use hyper::body::Incoming;

use crate::upstream::body::RequestBody;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Conn, ConnGuard, ConnPool, Pooled, SendError, UpstreamError};
use crate::observe::UpstreamErrorKind;

impl ConnPool {
    pub(super) async fn send_h2(
        &self,
        addr: Option<SocketAddr>,
        authority: &str,
        mut req: Request<RequestBody>,
    ) -> Result<(Response<Incoming>, Pooled), SendError> {
        loop {
            let shared = self.h2.lock().unwrap().clone().filter(|tx| !tx.is_closed());
            let (mut tx, reused) = match shared {
                Some(tx) => (tx, true),
                None if self.idle_count() > 0 => return self.send_h1(addr, authority, req).await,
                None => match Box::pin(self.connect(addr, authority)).await {
                    Ok(Conn::H2(tx)) => {
                        *self.h2.lock().unwrap() = Some(tx.clone());
                        (tx, false)
                    }
                    Ok(Conn::H1(tx)) => {
                        Pooled {
                            tx: Some(tx),
                            idle: self.idle.clone(),
                            home: crate::workers::index(),
                        }
                        .release();
                        return self.send_h1(addr, authority, req).await;
                    }
                    Err(error) => {
                        return Err(SendError {
                            error,
                            request: Some(req),
                        })
                    }
                },
            };
            if tx.ready().await.is_err() {
                self.h2.lock().unwrap().take();
                if reused {
                    continue;
                }
                let error = UpstreamError::Failed(UpstreamErrorKind::Reset);
                return Err(SendError {
                    error,
                    request: Some(req),
                });
            }
            to_h2(&mut req, authority);
            match tx.try_send_request(req).await {
                Ok(resp) => {
                    let pooled = Pooled {
                        tx: None,
                        idle: self.idle.clone(),
                        home: crate::workers::index(),
                    };
                    return Ok((resp, pooled));
                }
                Err(mut e) => match e.take_message() {
                    Some(back) if reused => {
                        self.h2.lock().unwrap().take();
                        req = back;
                    }
                    request => {
                        let error = UpstreamError::from_hyper(e.error());
                        let request = request.map(|mut r| {
                            to_h1(&mut r);
                            r
                        });
                        return Err(SendError { error, request });
                    }
                },
            }
        }
    }
}

/// Opens HTTP/2 over `io`; the connection runs in its own task, counted
/// by `open`, and closes when its endpoint is cut.
pub(super) async fn handshake<T>(
    io: T,
    open: ConnGuard,
) -> Result<http2::SendRequest<RequestBody>, UpstreamError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (tx, conn) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .handshake(TokioIo::new(io))
        .await
        .map_err(|_| UpstreamError::Failed(UpstreamErrorKind::Connect))?;
    let cut = open.cut_signal();
    tokio::spawn(async move {
        tokio::select! {
            ended = conn => if let Err(e) = ended {
                tracing::debug!(error = %e, "upstream h2 connection ended");
            },
            () = cut => tracing::debug!("upstream h2 connection cut by a drain"),
        }
        drop(open);
    });
    Ok(tx)
}

/// Rewrites an origin-form HTTP/1.1 request for h2: absolute URI whose
/// authority is the client's `Host`, `te: trailers` for gRPC.
fn to_h2(req: &mut Request<RequestBody>, endpoint: &str) {
    let host = req.headers_mut().remove(header::HOST);
    let authority = match (req.uri().authority(), &host) {
        (Some(a), _) => a.as_str().to_owned(),
        (None, Some(h)) => h.to_str().unwrap_or(endpoint).to_owned(),
        (None, None) => endpoint.to_owned(),
    };
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    if let Ok(uri) = Uri::builder()
        .scheme("https")
        .authority(authority)
        .path_and_query(path)
        .build()
    {
        *req.uri_mut() = uri;
    }
    *req.version_mut() = Version::HTTP_2;
    let grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc"));
    if grpc {
        req.headers_mut()
            .insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Undoes [`to_h2`] for a request handed back unsent (it may be retried
/// on an HTTP/1.1 endpoint).
fn to_h1(req: &mut Request<RequestBody>) {
    if let Some(authority) = req.uri().authority() {
        if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
            req.headers_mut().insert(header::HOST, host);
        }
    }
    let path = req.uri().path_and_query().cloned();
    *req.uri_mut() = path.map_or_else(|| Uri::from_static("/"), Uri::from);
    *req.version_mut() = Version::HTTP_11;
    req.headers_mut().remove(header::TE);
}
