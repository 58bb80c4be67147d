//! Routing: which route a request belongs to (`table`), which pool it goes
//! to (`split`), and the immutable snapshot that holds both (`snapshot`).
//!
//! Traffic changes by publishing a new [`Snapshot`]: it is built off to the
//! side and swapped in one store, so a request sees either the old or the
//! new routing, never a mix. `published` holds it ([`Routing`]) with what
//! its writers set: route traffic (the controller) and a pool's run-time
//! endpoints (`members`: DNS, the admin API, maintenance). `health` keeps
//! the endpoints of the current snapshot health-checked.

pub mod health;
mod matching;
pub mod members;
mod mirror;
mod published;
mod snapshot;
mod split;
mod table;

pub use matching::request_host;
pub use members::{DnsReport, Dynamic, Members};
pub use published::Routing;
pub use snapshot::{MirrorChoice, Route, RouteTraffic, Snapshot, Target, Weights};
pub use split::Split;
pub use table::RouteTable;
