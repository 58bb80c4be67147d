//! Observability: per route×pool counters and latency histograms recorded
//! on the hot path, the upstream error kinds they count, and interval
//! windows for analysis. The Prometheus exposition of it all is rendered
//! on the admin side (`admin::metrics`).

pub mod histogram;
mod kind;
pub mod shadow;
mod stats;
mod tls;
mod window;

pub use kind::UpstreamErrorKind;
pub use shadow::{Compared, ShadowRegistry, ShadowSnapshot, ShadowStats, ShadowSummary};
pub use stats::{Outcome, RoutePoolStats, StatsSnapshot, Telemetry};
pub use tls::TlsCounters;
pub use window::Window;
