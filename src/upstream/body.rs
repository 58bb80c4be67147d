//! The request body veer sends upstream: the client's body streamed
//! through, optionally teed: its chunks kept (shared, not copied) up to a
//! limit and handed over whole once it ended, for a mirror to send the
//! same request elsewhere (SPEC §12). Errors are the client body's own,
//! unchanged, so a client fault is still told from an upstream one.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::sync::oneshot;

#[derive(Debug)]
pub struct RequestBody {
    inner: Incoming,
    tee: Option<Box<Tee>>,
}

#[derive(Debug)]
struct Tee {
    chunks: Vec<Bytes>,
    size: usize,
    limit: usize,
    done: oneshot::Sender<Bytes>,
}

impl From<Incoming> for RequestBody {
    fn from(inner: Incoming) -> Self {
        RequestBody { inner, tee: None }
    }
}

impl RequestBody {
    /// `inner`, with a copy of it (at most `limit` bytes) sent on the
    /// receiver once it has ended; a body over `limit`, or one that broke
    /// off, sends nothing (the receiver sees the sender dropped).
    pub fn teed(inner: Incoming, limit: usize) -> (RequestBody, oneshot::Receiver<Bytes>) {
        let (done, rx) = oneshot::channel();
        let tee = Tee {
            chunks: Vec::new(),
            size: 0,
            limit,
            done,
        };
        let mut body = RequestBody {
            inner,
            tee: Some(Box::new(tee)),
        };
        body.finish_if_ended();
        (body, rx)
    }

    fn finish_if_ended(&mut self) {
        if self.inner.is_end_stream() {
            self.finish();
        }
    }

    /// The body has ended: the copy is complete.
    fn finish(&mut self) {
        if let Some(tee) = self.tee.take() {
            let mut whole = BytesMut::with_capacity(tee.size);
            tee.chunks.iter().for_each(|c| whole.extend_from_slice(c));
            let _ = tee.done.send(whole.freeze());
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let frame = ready!(Pin::new(&mut this.inner).poll_frame(cx));
        match &frame {
            Some(Ok(f)) => {
                if let (Some(data), Some(tee)) = (f.data_ref(), &mut this.tee) {
                    tee.size += data.len();
                    tee.chunks.push(data.clone());
                    if tee.size > tee.limit {
                        this.tee = None;
                    }
                }
                this.finish_if_ended();
            }
            None => this.finish(),
            Some(Err(_)) => this.tee = None,
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
