//! Upstreams: pools of endpoints, how one is picked, and the pooled
//! HTTP/1.1 connections veer keeps open to each.

mod client;
mod endpoint;
mod pool;

pub use client::{ConnPool, Pooled, SendError};
pub use endpoint::{EndpointState, InFlight};
pub use pool::Pool;
