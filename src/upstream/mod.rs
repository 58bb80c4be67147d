//! Upstreams: pools of endpoints, how one is picked, the pooled HTTP/1.1
//! connections veer keeps open to each, and whether each is fit for
//! traffic (active health checks, passive outlier detection).

mod client;
mod endpoint;
pub mod health;
mod outlier;
mod pool;

pub use client::{ConnPool, Pooled, SendError};
pub use endpoint::{EndpointState, InFlight};
pub use outlier::{Attempt, Ejections, Outlier};
pub use pool::Pool;
