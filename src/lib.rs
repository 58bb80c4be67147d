//! veer: a reverse proxy that ships new versions safely.
//!
//! It splits traffic between pools (versions of an app) by weight, header
//! rule and sticky user, measures every response, and runs the rollout
//! itself: one binary is both the data plane and the controller.
//!
//! # Layout
//!
//! - [`config`]: the TOML file, validated into runtime types.
//! - [`routing`]: host/path match, weighted and sticky split, and the
//!   immutable [`routing::Snapshot`] published through one `ArcSwap`;
//!   health checks that follow the snapshots.
//! - [`upstream`]: pools, endpoint picking, pooled upstream connections
//!   (with their own error type), a health probe and passive outlier
//!   detection, and what is in flight per endpoint (`Flight`: the guards
//!   drains wait on and cut).
//! - [`discovery`]: endpoints that follow the infrastructure: a pool's
//!   `dns`/`srv` re-resolved by TTL, endpoints registered through the
//!   admin API (persisted), maintenance.
//! - [`drain`]: pools and endpoints that leave traffic (and every pool at
//!   shutdown) finish what is in flight, woken by the last guard, cut at
//!   the deadline; `drained` events, webhooks and `GET .../drain`.
//! - [`observe`]: [`observe::Telemetry`], everything veer measures: per
//!   route×pool counters and histograms, analysis windows, error kinds.
//! - [`mirror`]: copies of live requests to another pool (a dark launch
//!   or a rollout's shadow stage), compared with the stable responses.
//! - [`proxy`]: listeners, the per-request service, header rewriting,
//!   errors mapped to statuses.
//! - [`rollout`]: the pure core of a rollout: analysis verdicts (fixed
//!   bounds and [`rollout::sequential`] tests), one planner per strategy,
//!   phases and commands, and [`rollout::preview`] (`veer plan`).
//! - [`control`]: the controller, the one owner of every route's traffic:
//!   manual weights, commands ([`control::commands`]), rollouts and
//!   reloads go through it; it persists its records
//!   (`state_dir/control.json`), records events and calls webhooks.
//! - [`admin`]: the admin HTTP API, the Prometheus exposition
//!   (`/metrics`), the dashboard, and the CLI client.
//! - [`app`]: [`app::start`] builds the whole process from bound sockets
//!   (`veer run`, `veer demo` and the tests all start here).
//! - [`fleet`]: replicas as one system on etcd (in progress: leadership
//!   with fenced writes).
//! - [`tls`]: rustls termination (SNI, mTLS, certificate reload) and TLS
//!   (optionally h2) to `https://` upstreams.
//! - [`demo`]: `veer demo`, a local canary show with built-in upstreams.
//! - [`shutdown`]: one cancellation tree and task tracker for the whole
//!   process; readiness.
//! - [`workers`]: `workers = N` as N single-threaded runtimes.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod config;
pub mod control;
pub mod demo;
pub mod discovery;
pub mod drain;
pub mod fleet;
pub mod mirror;
pub mod observe;
pub mod proxy;
pub mod rollout;
pub mod routing;
pub mod shutdown;
pub mod tls;
pub mod upstream;
pub mod workers;
