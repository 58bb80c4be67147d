//! One comparison, on its own task: the copy goes to a candidate
//! endpoint (and, with `noise`, to a second stable endpoint at the same
//! time); the differences that stable shows against itself are left out;
//! the result is counted.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::Full;
use tokio::sync::oneshot;

use crate::observe::shadow::Slot;
use crate::observe::Compared;
use crate::upstream::{EndpointState, Pool};

use super::diff::Difference;
use super::send::{exchange, Answer};
use super::{Mirror, MAX_COMPARED_BODY, X_VEER_SHADOW};

/// Differences written into one sample, at most.
const SAMPLE_FIELDS: usize = 5;

pub(super) struct Job {
    pub mirror: Arc<Mirror>,
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub stable: Answer,
    pub stable_endpoint: Option<String>,
    /// Held to the end: the route's queue frees this place then.
    pub slot: Slot,
    /// The request body, teed as stable read it; `None`: no body.
    pub body: Option<oneshot::Receiver<Bytes>>,
}

impl Job {
    pub async fn run(mut self) {
        let body = match self.body.take() {
            None => Bytes::new(),
            Some(copy) => match tokio::time::timeout(self.mirror.timeout, copy).await {
                Ok(Ok(body)) => body,
                // Over `max_body` (a chunked body), or it broke off: the
                // request is not copied.
                _ => {
                    tracing::debug!(route = %self.slot.stats().route, "request body not kept; not mirrored");
                    return;
                }
            },
        };
        let m = &self.mirror;
        let Some(candidate) = m.pool.pick(0, usize::MAX).map(|(_, e)| e.clone()) else {
            tracing::debug!(pool = %m.pool.name, "no healthy endpoint to mirror to");
            self.slot.stats().record(Compared::Error);
            return;
        };
        let noise = m
            .spec
            .compare
            .noise
            .then(|| second(m.stable.as_deref()?, self.stable_endpoint.as_deref()))
            .flatten();
        let ask = |endpoint: Arc<EndpointState>| {
            let req = self.request(body.clone());
            let timeout = m.timeout;
            async move {
                let _in_flight = endpoint.start_request();
                exchange(&endpoint, req, MAX_COMPARED_BODY, timeout).await
            }
        };
        let noise_answer = async {
            match noise {
                Some(endpoint) => Some(ask(endpoint).await),
                None => None,
            }
        };
        let (answer, noise_answer) = tokio::join!(ask(candidate), noise_answer);
        let stats = self.slot.stats();
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => {
                tracing::debug!(route = %stats.route, pool = %stats.pool, error = %e, "mirrored request failed");
                stats.record(Compared::Error);
                return;
            }
        };
        let mut noisy: Vec<String> = stats.noise_fields();
        if let Some(Ok(second)) = noise_answer {
            let fields: Vec<String> = m
                .compare
                .differences(&self.stable, &second)
                .into_iter()
                .map(|d| d.field)
                .collect();
            stats.record_noise(&fields);
            noisy.extend(fields);
        }
        let differences: Vec<Difference> = m
            .compare
            .differences(&self.stable, &answer)
            .into_iter()
            .filter(|d| !noisy.contains(&d.field))
            .collect();
        let (stable, candidate) = (self.stable.took, answer.took);
        if differences.is_empty() {
            stats.record(Compared::Match { stable, candidate });
            return;
        }
        let sample = self.sample(&differences);
        let fields = differences.into_iter().map(|d| d.field).collect();
        stats.record(Compared::Mismatch {
            stable,
            candidate,
            fields,
            sample,
        });
    }

    /// The copy, marked `x-veer-shadow: 1`.
    fn request(&self, body: Bytes) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req.headers_mut()
            .insert(X_VEER_SHADOW.clone(), HeaderValue::from_static("1"));
        req
    }

    /// `GET /items: $.price number -> string; status 200 -> 500`: the
    /// request's method and path (no query) and what differed, no values.
    fn sample(&self, differences: &[Difference]) -> String {
        let what: Vec<String> = differences
            .iter()
            .take(SAMPLE_FIELDS)
            .map(|d| format!("{} {}", d.field, d.detail))
            .collect();
        let more = differences.len().saturating_sub(SAMPLE_FIELDS);
        let more = if more > 0 {
            format!("; {more} more")
        } else {
            String::new()
        };
        format!(
            "{} {}: {}{more}",
            self.method,
            self.uri.path(),
            what.join("; ")
        )
    }
}

/// A stable endpoint other than the one that answered, if the pool has
/// one (else the same one again).
fn second(pool: &Pool, served: Option<&str>) -> Option<Arc<EndpointState>> {
    let index = served.and_then(|s| pool.endpoints.iter().position(|e| e.spec.authority == s));
    let tried = index.map_or(0, |i| 1u64.checked_shl(i as u32).unwrap_or(0));
    pool.pick(tried, usize::MAX)
        .or_else(|| pool.pick(0, usize::MAX))
        .map(|(_, e)| e.clone())
}
