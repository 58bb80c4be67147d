//! Mirroring (SPEC §12): copies of live requests sent to another pool,
//! its responses compared with the stable ones, the result counted per
//! route×pool ([`crate::observe::ShadowStats`]). The client always gets
//! the stable response and never waits: a copy is taken only when the
//! route's bounded queue has room (else dropped and counted), and the
//! candidate is asked only once the stable response has been sent.
//!
//! - [`Mirror`]: a route's mirror in a routing snapshot, and which
//!   requests it copies ([`Mirror::admit`]).
//! - `capture`: the stable exchange as the client saw it.
//! - `job`: asking the candidate (and the noise endpoint) and comparing.
//! - `send`, `diff`: one exchange; one comparison.

mod capture;
pub mod diff;
mod job;
pub mod send;

use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use http::HeaderName;
use http_body::SizeHint;

use crate::config::MirrorSpec;
use crate::observe::ShadowStats;
use crate::upstream::Pool;

pub use capture::Capture;
use diff::Comparison;

/// Marks every mirrored request.
pub static X_VEER_SHADOW: HeaderName = HeaderName::from_static("x-veer-shadow");

/// Response bodies larger than this are not compared (counted `error`).
pub const MAX_COMPARED_BODY: usize = 1 << 20;

/// One route's mirror, built with the routing snapshot.
#[derive(Debug)]
pub struct Mirror {
    pub spec: MirrorSpec,
    compare: Comparison,
    /// The pool copies go to.
    pub pool: Arc<Pool>,
    /// The route's stable pool: the noise endpoint comes from it.
    pub stable: Option<Arc<Pool>>,
    pub stats: Arc<ShadowStats>,
    /// The route's upstream timeout bounds each mirrored exchange.
    pub timeout: Duration,
}

impl Mirror {
    pub fn new(
        spec: MirrorSpec,
        pool: Arc<Pool>,
        stable: Option<Arc<Pool>>,
        stats: Arc<ShadowStats>,
        timeout: Duration,
    ) -> Mirror {
        Mirror {
            compare: Comparison::new(&spec.compare),
            spec,
            pool,
            stable,
            stats,
            timeout,
        }
    }

    /// A capture of this request when it is to be copied: its method is
    /// listed, its body is not known to be over `max_body` (a chunked one
    /// is teed up to it), it falls within `percent`,
    /// and the queue has room (else it is dropped and counted). `served_by`
    /// is the pool the request itself goes to: never mirrored to itself.
    /// `has_body`/`body`: whether the request has a body and its size.
    pub fn admit(
        self: &Arc<Self>,
        parts: &Parts,
        served_by: &str,
        has_body: bool,
        body: SizeHint,
    ) -> Option<Capture> {
        if served_by == self.pool.name {
            return None;
        }
        let method = parts.method.as_str();
        if !self.spec.methods.iter().any(|m| m == method) {
            return None;
        }
        // A body of unknown length (chunked) is kept only up to `max_body`
        // as it streams to stable; past it, the copy is abandoned.
        if body.exact().is_some_and(|n| n > self.spec.max_body) {
            return None;
        }
        let percent = self.spec.percent;
        if percent < 100 && rand::random_range(0..100) >= percent {
            return None;
        }
        let slot = self.stats.try_enter(self.spec.queue)?;
        Some(Capture::new(self.clone(), slot, parts, has_body))
    }
}
