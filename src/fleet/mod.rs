//! The fleet: several veer replicas as one system on etcd (SPEC §11).
//! Work in progress: this module holds the parts built so far, tested
//! against a real etcd; `[cluster]` does not use them yet.
//!
//! Keys, all under the configured prefix:
//!
//! - `{prefix}/leader`: the leading replica's id, under its lease
//!   ([`leader::Leadership`]). Every write of the leader is fenced on this
//!   key's create revision.

pub mod leader;

pub use leader::Leadership;

/// Why a fleet operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    /// Leadership was lost (or never held): the write was not made.
    #[error("this replica does not lead the fleet")]
    NotLeader,
    #[error("the leader lease was lost while campaigning")]
    LeaseLost,
}
