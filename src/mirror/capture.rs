//! The stable exchange as the client saw it: the request as forwarded,
//! the response head, and the body as it streams by (kept up to
//! [`super::MAX_COMPARED_BODY`]: chunks are shared, not copied). When the
//! body has been sent, the comparison starts on its own task.

use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Method, StatusCode, Uri};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::observe::shadow::Slot;

use super::job::Job;
use super::Mirror;

#[derive(Debug)]
pub struct Capture {
    mirror: Arc<Mirror>,
    /// Its place in the route's queue, held until the comparison ends.
    slot: Slot,
    pub(super) method: Method,
    pub(super) uri: Uri,
    pub(super) headers: HeaderMap,
    started: Instant,
    status: Option<StatusCode>,
    response_headers: HeaderMap,
    /// The stable endpoint that answered (the noise request avoids it).
    endpoint: Option<String>,
    body: Vec<Bytes>,
    size: usize,
    /// The request has a body: teed on its way to stable.
    has_body: bool,
    request_body: Option<oneshot::Receiver<Bytes>>,
}

impl Capture {
    pub(super) fn new(mirror: Arc<Mirror>, slot: Slot, parts: &Parts, has_body: bool) -> Capture {
        Capture {
            mirror,
            slot,
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: HeaderMap::new(),
            started: Instant::now(),
            status: None,
            response_headers: HeaderMap::new(),
            endpoint: None,
            body: Vec::new(),
            size: 0,
            has_body,
            request_body: None,
        }
    }

    /// The request carries a body to tee (see [`Capture::request_body`]).
    pub fn has_body(&self) -> bool {
        self.has_body
    }

    /// Bytes of request body a copy may carry (`max_body`).
    pub fn max_body(&self) -> usize {
        usize::try_from(self.mirror.spec.max_body).unwrap_or(usize::MAX)
    }

    /// Where the teed request body arrives once stable has read it.
    pub fn request_body(&mut self, copy: oneshot::Receiver<Bytes>) {
        self.request_body = Some(copy);
    }

    /// The request as forwarded to stable (rewritten headers, origin-form
    /// URI): the copy is the same request.
    pub fn request(&mut self, uri: &Uri, headers: &HeaderMap) {
        self.uri = uri.clone();
        self.headers = headers.clone();
    }

    /// The stable response head.
    pub fn response(&mut self, status: StatusCode, headers: &HeaderMap, endpoint: &str) {
        self.status = Some(status);
        self.response_headers = headers.clone();
        self.endpoint = Some(endpoint.to_string());
    }

    /// A chunk of the stable body went by.
    pub fn data(&mut self, chunk: &Bytes) {
        self.size += chunk.len();
        if self.size <= super::MAX_COMPARED_BODY {
            self.body.push(chunk.clone());
        }
    }

    /// The stable body has been sent in full: the comparison runs on its
    /// own task. A capture dropped without this (client gone, stable
    /// failed) compares nothing.
    pub fn finish(self) {
        let Some(status) = self.status else { return };
        if self.size > super::MAX_COMPARED_BODY {
            tracing::debug!(route = %self.mirror.stats.route, "stable body too large to compare");
            self.mirror.stats.record(crate::observe::Compared::Error);
            return;
        }
        let mut body = Vec::with_capacity(self.size);
        self.body.iter().for_each(|c| body.extend_from_slice(c));
        let stable = super::send::Answer {
            status,
            headers: self.response_headers,
            body: Bytes::from(body),
            took: self.started.elapsed(),
        };
        let job = Job {
            mirror: self.mirror,
            method: self.method,
            uri: self.uri,
            headers: self.headers,
            stable,
            stable_endpoint: self.endpoint,
            slot: self.slot,
            body: self.request_body,
        };
        tokio::spawn(job.run());
    }
}
