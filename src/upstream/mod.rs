//! Upstreams: pools of endpoints, how one is picked, the pooled HTTP/1.1
//! connections veer keeps open to each and how an exchange with one fails
//! ([`UpstreamError`]), and whether each is fit for traffic (active health
//! checks, passive outlier detection), and what is in flight on each
//! ([`Flight`]: what a drain waits for and cuts).

mod body;
mod client;
mod endpoint;
mod error;
mod flight;
pub mod health;
mod member;
mod outlier;
mod pool;

pub use body::RequestBody;
pub use client::{ConnPool, Pooled};
pub use endpoint::{EndpointState, InFlight};
pub use error::{ClientFault, SendError, UpstreamError};
pub use flight::{ConnGuard, Cut, Flight, TunnelGuard, Watching};
pub use member::{Member, Placement, Source};
pub use outlier::{Attempt, Ejections, Outlier};
pub use pool::Pool;
