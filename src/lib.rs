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
//!   immutable [`routing::Snapshot`] published through one `ArcSwap`.
//! - [`upstream`]: pools, endpoint picking, pooled upstream connections,
//!   active health checks and passive outlier detection.
//! - [`drain`]: pools and endpoints that leave traffic finish what is in
//!   flight; `drained` events.
//! - [`observe`]: per route×pool counters and histograms, analysis
//!   windows, Prometheus exposition.
//! - [`proxy`]: listeners, the per-request service, header rewriting,
//!   errors mapped to statuses.
//! - [`rollout`]: analysis verdicts, the pure per-strategy planners, and
//!   the controller task that applies them (webhooks, Prometheus checks,
//!   persisted state).
//! - [`events`]: the one event log behind `GET /api/v1/events`.
//! - [`server`]: wires listeners to routing and runs until shutdown.
//! - [`control`]: the control plane: run-time weights and rollouts,
//!   config reloads, events; [`control::run`] runs the whole process.
//! - [`admin`]: the admin HTTP API, the dashboard, and the CLI client.
//! - [`state`]: run-time state persisted in `state_dir`.
//! - [`tls`]: rustls termination (SNI, mTLS, certificate reload) and TLS
//!   (optionally h2) to `https://` upstreams.
//! - [`demo`]: `veer demo`, a local canary show with built-in upstreams.
//! - [`workers`]: `workers = N` as N single-threaded runtimes.
#![forbid(unsafe_code)]

pub mod admin;
pub mod config;
pub mod control;
pub mod demo;
pub mod drain;
pub mod events;
pub mod observe;
pub mod proxy;
pub mod rollout;
pub mod routing;
pub mod server;
pub mod state;
pub mod tls;
pub mod upstream;
pub mod workers;
