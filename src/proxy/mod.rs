//! The data plane: listeners, the per-request service, header rewriting,
//! response bodies and errors.

pub mod accept;
pub mod body;
pub mod conn;
pub mod error;
mod framing;
pub mod headers;
pub mod host;
mod listener;
pub mod path;
mod record;
mod service;

pub use listener::{serve, Serving};
pub use service::ProxyService;
