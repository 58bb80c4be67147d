//! The response body veer sends downstream: an upstream body streamed
//! through, or a short body of its own.
//!
//! When the upstream body ends, its connection goes back to the pool;
//! when the body is dropped early, the connection is closed instead. The
//! guards it carries (endpoint in-flight count, downstream activity) end
//! when it is dropped, i.e. when the response has been written.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

use crate::mirror::Capture;
use crate::upstream::{InFlight, Pooled};

use super::conn::Activity;
use super::record::Recorder;

#[derive(Debug)]
pub struct ProxyBody {
    inner: Inner,
    /// The upstream connection, returned to its pool at end of stream.
    conn: Option<Pooled>,
    _in_flight: Option<InFlight>,
    _activity: Option<Activity>,
    /// Counts the request when the body is done (dropped).
    recorder: Option<Recorder>,
    /// The route's mirror keeps what went by; compared once it ended.
    capture: Option<Box<Capture>>,
}

#[derive(Debug)]
enum Inner {
    Upstream(Incoming),
    Full(Option<Bytes>),
}

impl ProxyBody {
    pub fn full(bytes: Bytes) -> ProxyBody {
        let data = if bytes.is_empty() { None } else { Some(bytes) };
        ProxyBody {
            inner: Inner::Full(data),
            conn: None,
            _in_flight: None,
            _activity: None,
            recorder: None,
            capture: None,
        }
    }

    pub fn empty() -> ProxyBody {
        ProxyBody::full(Bytes::new())
    }

    /// Streams `body` from an upstream; `conn` is released once it ends
    /// (`None` for a connection that must not be reused, e.g. upgraded).
    pub fn upstream(body: Incoming, conn: Option<Pooled>, in_flight: InFlight) -> ProxyBody {
        let mut this = ProxyBody {
            inner: Inner::Upstream(body),
            conn,
            _in_flight: Some(in_flight),
            _activity: None,
            recorder: None,
            capture: None,
        };
        this.release_if_done();
        this
    }

    pub fn set_activity(&mut self, activity: Activity) {
        self._activity = Some(activity);
    }

    pub fn set_recorder(&mut self, recorder: Recorder) {
        self.recorder = Some(recorder);
    }

    /// Keeps the body for the mirror's comparison (SPEC §12); an empty
    /// body has already ended.
    pub fn set_capture(&mut self, capture: Capture) {
        if self.is_end_stream() {
            capture.finish();
        } else {
            self.capture = Some(Box::new(capture));
        }
    }

    fn inner_ended(&self) -> bool {
        matches!(&self.inner, Inner::Upstream(body) if body.is_end_stream())
    }

    fn release_if_done(&mut self) {
        if let Inner::Upstream(body) = &self.inner {
            if body.is_end_stream() {
                if let Some(conn) = self.conn.take() {
                    conn.release();
                }
            }
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        match &mut this.inner {
            Inner::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Inner::Upstream(body) => {
                let frame = ready!(Pin::new(body).poll_frame(cx));
                match &frame {
                    None => {
                        if let Some(conn) = this.conn.take() {
                            conn.release();
                        }
                        if let Some(capture) = this.capture.take() {
                            capture.finish();
                        }
                    }
                    Some(Ok(frame)) => {
                        if let Some(capture) = &mut this.capture {
                            if let Some(data) = frame.data_ref() {
                                capture.data(data);
                            }
                            if this.inner_ended() {
                                if let Some(capture) = this.capture.take() {
                                    capture.finish();
                                }
                            }
                        }
                        if let (Some(trailers), Some(rec)) =
                            (frame.trailers_ref(), &mut this.recorder)
                        {
                            rec.trailers(trailers);
                        }
                        this.release_if_done();
                    }
                    Some(Err(_)) => {
                        this.conn = None;
                        this.capture = None;
                        if let Some(rec) = &mut this.recorder {
                            rec.body_error();
                        }
                    }
                }
                Poll::Ready(frame)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.inner {
            Inner::Full(data) => data.is_none(),
            Inner::Upstream(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Inner::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Inner::Upstream(body) => body.size_hint(),
        }
    }
}
