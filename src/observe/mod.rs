//! Observability: per route×pool counters and latency histograms recorded
//! on the hot path, interval windows for analysis, and the Prometheus
//! exposition.

mod exposition;
pub mod histogram;
mod stats;
mod tls;
mod window;

pub use exposition::{render, PHASES};
pub use stats::{Outcome, Registry, RoutePoolStats, StatsSnapshot};
pub use tls::TlsCounters;
pub use window::Window;
