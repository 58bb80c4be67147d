//! Integration tests: one crate (one binary), so the `support` harness and
//! veer are compiled and linked once. Each module was its own `tests/*.rs`
//! crate; run one with `cargo test --test it <module>::`.

// Not every test module uses every helper.
#[allow(dead_code)]
mod support;

mod access_log;
mod admin;
mod admin_guard;
mod analysis;
mod cli;
mod client_fault;
mod config_files;
mod controller;
mod dashboard;
mod demo;
mod discovery;
mod docs;
mod drain;
mod drain_streams;
mod endpoints_api;
mod errors;
mod fleet;
mod forwarding;
mod framing;
mod grpc_errors;
mod h1_differential;
mod handover;
mod health;
mod hosts;
mod limits;
mod load_reload;
mod load_shift;
mod metrics;
mod paths;
mod reload;
mod rollout;
mod routing;
mod shadow;
mod shadow_admin;
mod shutdown;
mod state;
mod tls;
mod tls_upstream;
mod upgrades;
mod workers;
