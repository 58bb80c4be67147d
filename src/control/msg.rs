//! What the controller task is asked or told: operator calls (with a
//! reply), config changes, answers of gates and checks, and, in a fleet,
//! its role and the leader's records.

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::config::{Config, Strategy, WebhookKind};
use crate::rollout::Command;
use crate::routing::MirrorChoice;

use super::effects::Ticket;
use super::record::Record;
use super::task::Until;
use super::ControlError;

pub type Reply = oneshot::Sender<Result<(), ControlError>>;

/// What the task is asked or told.
pub enum Msg {
    Start {
        route: String,
        pool: String,
        strategy: Option<Strategy>,
        reply: Reply,
    },
    Weights {
        route: String,
        percent: Vec<(String, u32)>,
        reply: Reply,
    },
    Command {
        route: String,
        command: Command,
        reply: Reply,
    },
    /// `PUT`/`DELETE .../mirror`.
    Mirror {
        route: String,
        mirror: MirrorChoice,
        reply: Reply,
    },
    /// A validated config: the task publishes it with every route's
    /// traffic, then answers.
    Config {
        config: Arc<Config>,
        reply: oneshot::Sender<()>,
    },
    Gate {
        ticket: Ticket,
        kind: WebhookKind,
        answer: Result<(), String>,
    },
    /// External checks done: one reason per failed check.
    Checks {
        ticket: Ticket,
        reasons: Vec<String>,
    },
    /// In a fleet: this replica now decides (leads, until the instant
    /// given, moved forward as its lease is renewed) or follows.
    Role {
        deciding: bool,
        until: Option<Until>,
    },
    /// In a fleet, following: the leader's record of a route (`None`: the
    /// route has none), to serve as is.
    Replicate {
        route: String,
        record: Option<Box<Record>>,
    },
}
