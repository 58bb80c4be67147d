//! The fleet: several veer replicas as one system on etcd (SPEC §11).
//! One replica leads and alone decides (its controller drives rollouts and
//! carries out operator calls); every replica serves what etcd holds.
//!
//! Keys, all under the configured prefix:
//!
//! - `{prefix}/leader`: the leading replica's id, under its lease
//!   ([`leader::Leadership`]). Every write of the leader is fenced on this
//!   key's create revision.
//! - `{prefix}/routes/{route}`: the desired state of a route, the
//!   controller's [`crate::control::record::Record`], written by the leader.
//! - `{prefix}/replicas/{id}`: membership, under each replica's own lease,
//!   with the revision of the desired state it applied.
//! - `{prefix}/calls/{id}`, `{prefix}/answers/{id}`: operator calls made
//!   on any replica, carried out by the leader ([`relay`]).

pub mod leader;
pub mod relay;
pub mod replica;
mod report;

use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::ClusterSpec;
use crate::control::sense::Peers;
use crate::control::{ClusterStatus, Controller};
use crate::observe::Telemetry;
use crate::routing::Routing;

pub use leader::Leadership;

/// A running replica's fleet: what the app hands the admin API.
pub struct Fleet {
    /// The controller handle whose operator calls go to the leader.
    pub controller: Controller,
    pub status: Arc<Mutex<ClusterStatus>>,
}

/// What a replica reports of its traffic and keeps of the others'.
pub struct Data {
    pub routing: Arc<Routing>,
    pub telemetry: Arc<Telemetry>,
    /// The other replicas' counters, which the leader's analysis adds.
    pub peers: Peers,
}

/// Joins the fleet of `spec` as `id`, with `controller` (this replica's
/// own) and the records it persists (`outbox`). Runs until `stop`.
pub fn join(
    spec: ClusterSpec,
    id: String,
    controller: Controller,
    outbox: mpsc::UnboundedReceiver<
        std::collections::BTreeMap<String, crate::control::record::Record>,
    >,
    data: Data,
    stop: CancellationToken,
) -> (Fleet, tokio::task::JoinHandle<()>) {
    let status = Arc::new(Mutex::new(ClusterStatus {
        replica: id.clone(),
        ..ClusterStatus::default()
    }));
    let client = Arc::new(Mutex::new(None));
    let relay = Arc::new(relay::EtcdRelay {
        client: client.clone(),
        prefix: spec.prefix.clone(),
        replica: id.clone(),
        seq: Default::default(),
    });
    let replica = replica::Replica {
        spec,
        id,
        controller: controller.clone(),
        outbox,
        status: status.clone(),
        client,
        data,
        epoch: crate::control::sense::unix_ms(),
        hashed: Default::default(),
        stop,
    };
    let task = tokio::spawn(replica.run());
    let fleet = Fleet {
        controller: controller.relayed(relay),
        status,
    };
    (fleet, task)
}

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
    /// The session must start again with a full read.
    #[error("resync: {0}")]
    Resync(String),
    #[error("TLS to etcd: {0}")]
    Tls(String),
}
