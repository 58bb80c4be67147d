//! Upstreams: pools of endpoints, how one is picked, the pooled HTTP/1.1
//! connections veer keeps open to each and how an exchange with one fails
//! ([`UpstreamError`]), and whether each is fit for traffic (active health
//! checks, passive outlier detection).

mod client;
mod endpoint;
mod error;
pub mod health;
mod outlier;
mod pool;

pub use client::{ConnPool, Pooled};
pub use endpoint::{EndpointState, InFlight};
pub use error::{ClientFault, SendError, UpstreamError};
pub use outlier::{Attempt, Ejections, Outlier};
pub use pool::Pool;
