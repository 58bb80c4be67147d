//! Effects: everything the controller does to the world (publishing
//! traffic, events, webhooks, gates, external checks, persistence) goes
//! through [`Effects`], so controller tests replace it and watch.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use tokio::sync::mpsc;

use crate::config::{Config, QuerySpec, WebhookKind, WebhookSpec};
use crate::rollout::{Rollout, Verdict};
use crate::routing::{RouteTraffic, Routing};

use super::events::{EventKind, Events};
use super::msg::Msg;
use super::record::Record;
use super::store::{Store, StoreError};
use super::webhook::{Payload, Webhooks};

/// Which rollout an asynchronous answer belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub route: String,
    pub generation: u64,
}

pub trait Effects: Send + 'static {
    /// Publishes one route's traffic (`None`: the file's split).
    fn publish(&mut self, route: &str, traffic: Option<RouteTraffic>);
    /// Publishes a new config and every route's run-time traffic at once.
    fn publish_config(&mut self, config: Arc<Config>, traffic: HashMap<String, RouteTraffic>);
    fn event(&mut self, kind: EventKind, route: Option<&str>, message: String);
    /// A rollout transition: its phase, weights, reason and verdict.
    fn transition(&mut self, rollout: &Rollout, verdict: Option<Verdict>);
    /// Fire-and-forget webhooks.
    fn notify(&mut self, hooks: Vec<WebhookSpec>, payload: Payload);
    /// Calls the gate webhooks of `kind`; the answer comes back as
    /// [`Msg::Gate`].
    fn ask_gate(
        &mut self,
        hooks: Vec<WebhookSpec>,
        kind: WebhookKind,
        payload: Payload,
        ticket: Ticket,
    );
    /// Evaluates external checks; the answer comes back as [`Msg::Checks`].
    fn check(&mut self, queries: Vec<QuerySpec>, ticket: Ticket);
    fn persist(&mut self, records: &BTreeMap<String, Record>) -> Result<(), StoreError>;
}

/// The real world: the routing state, the event log, HTTP webhooks and
/// Prometheus, the state directory.
pub struct LiveEffects {
    pub routing: Arc<Routing>,
    pub events: Arc<Events>,
    pub store: Store,
    pub webhooks: Webhooks,
    /// Where answers of gates and checks are sent.
    pub answers: mpsc::UnboundedSender<Msg>,
    /// In a fleet: every persisted state, for the leader to write to etcd.
    pub outbox: Option<super::Outbox>,
}

impl Effects for LiveEffects {
    fn publish(&mut self, route: &str, traffic: Option<RouteTraffic>) {
        self.routing.set_traffic(route, traffic);
    }

    fn publish_config(&mut self, config: Arc<Config>, traffic: HashMap<String, RouteTraffic>) {
        self.routing.replace(config, traffic);
    }

    fn event(&mut self, kind: EventKind, route: Option<&str>, message: String) {
        self.events.record(kind, route, message);
    }

    fn transition(&mut self, r: &Rollout, verdict: Option<Verdict>) {
        let weights = super::webhook::weights(r);
        self.events
            .transition(&r.route, r.phase, weights, r.reason.clone(), verdict);
    }

    fn notify(&mut self, hooks: Vec<WebhookSpec>, payload: Payload) {
        let webhooks = self.webhooks.clone();
        tokio::spawn(async move {
            for hook in hooks {
                let _ = webhooks.call(&hook, &payload).await;
            }
        });
    }

    fn ask_gate(
        &mut self,
        hooks: Vec<WebhookSpec>,
        kind: WebhookKind,
        payload: Payload,
        ticket: Ticket,
    ) {
        let (webhooks, answers) = (self.webhooks.clone(), self.answers.clone());
        tokio::spawn(async move {
            let answer = webhooks.all(&hooks, kind, &payload).await;
            let _ = answers.send(Msg::Gate {
                ticket,
                kind,
                answer,
            });
        });
    }

    fn check(&mut self, queries: Vec<QuerySpec>, ticket: Ticket) {
        let answers = self.answers.clone();
        tokio::spawn(async move {
            let reasons = super::query::check_all(&queries).await;
            let _ = answers.send(Msg::Checks { ticket, reasons });
        });
    }

    fn persist(&mut self, records: &BTreeMap<String, Record>) -> Result<(), StoreError> {
        if let Some(outbox) = &self.outbox {
            let _ = outbox.send(records.clone());
        }
        self.store.save(records).inspect_err(|e| {
            tracing::error!(error = %e, "control state not saved");
            self.events.record(
                EventKind::StateError,
                None,
                format!("control state not saved: {e}"),
            );
        })
    }
}

/// The ticket a check or gate of `r` answers with.
pub(super) fn ticket(r: &Rollout) -> Ticket {
    Ticket {
        route: r.route.clone(),
        generation: r.generation,
    }
}
