//! Drain events into the event log (`/api/v1/events`) and into `drained`
//! webhooks: each global `[[webhook]]` and each `[[route.rollout.webhook]]`
//! of a route that sent the pool traffic, with `on = "drained"`, as the
//! config serving when the drain ends has them. Drains at shutdown are
//! logged, not sent to webhooks.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, WebhookKind, WebhookSpec};
use crate::control::{EventKind, Events, Webhooks};
use crate::drain::{Cut, DrainEvent, DrainReason, Drains};
use crate::routing::Routing;

/// What a `drained` webhook receives.
#[derive(Debug, Clone, Serialize)]
pub struct DrainedPayload {
    pub event: &'static str,
    /// The route whose webhook this is; `None` for a global one.
    pub route: Option<String>,
    pub pool: String,
    pub endpoint: Option<String>,
    pub reason: DrainReason,
    pub took_ms: u64,
    /// What had to be closed at `drain_timeout`.
    pub cut: usize,
    pub cut_streams: usize,
    pub cut_tunnels: usize,
}

/// Copies drain events into the event log and calls `drained` webhooks,
/// until `stop`; events sent before it are still recorded.
pub(super) async fn record(
    drains: Arc<Drains>,
    events: Arc<Events>,
    routing: Arc<Routing>,
    stop: CancellationToken,
) {
    let mut rx = drains.subscribe();
    let webhooks = Webhooks::default();
    loop {
        let event = tokio::select! {
            event = rx.recv() => event,
            () = stop.cancelled() => break,
        };
        match event {
            Ok(event) => handle(event, &events, &routing, &webhooks),
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        }
    }
    while let Ok(event) = rx.try_recv() {
        handle(event, &events, &routing, &webhooks);
    }
}

fn what(pool: &str, endpoint: &Option<String>) -> String {
    match endpoint {
        Some(e) => format!("endpoint {e} of pool {pool}"),
        None => format!("pool {pool}"),
    }
}

fn handle(event: DrainEvent, events: &Events, routing: &Routing, webhooks: &Webhooks) {
    let (pool, endpoint, took, cut, reason, routes) = match event {
        DrainEvent::Draining { pool, endpoint } => {
            let message = format!("{} draining", what(&pool, &endpoint));
            events.record(EventKind::Draining, None, message);
            return;
        }
        DrainEvent::Drained {
            pool,
            endpoint,
            took,
            cut,
            reason,
            routes,
        } => (pool, endpoint, took, cut, reason, routes),
    };
    let message = format!(
        "{} drained{} in {:.1}s{}",
        what(&pool, &endpoint),
        if reason == DrainReason::Shutdown {
            " at shutdown"
        } else {
            ""
        },
        took.as_secs_f64(),
        describe_cut(cut, reason),
    );
    events.record(EventKind::Drained, None, message);
    if reason == DrainReason::Shutdown {
        return;
    }
    let config = routing.load().config.clone();
    let payload = DrainedPayload {
        event: "drained",
        route: None,
        pool,
        endpoint,
        reason,
        took_ms: took.as_millis() as u64,
        cut: cut.total(),
        cut_streams: cut.streams,
        cut_tunnels: cut.tunnels,
    };
    for (route, hook) in hooks(&config, &routes) {
        let payload = DrainedPayload {
            route,
            ..payload.clone()
        };
        let webhooks = webhooks.clone();
        tokio::spawn(async move {
            let _ = webhooks.call(&hook, &payload).await;
        });
    }
}

/// `; cut at drain_timeout: 1 stream, 2 tunnels` (empty when nothing was).
fn describe_cut(cut: Cut, reason: DrainReason) -> String {
    match cut.is_empty() {
        true => String::new(),
        false => format!("; cut at {}: {cut}", reason.deadline_setting()),
    }
}

/// The `drained` webhooks for a drain of a pool `routes` sent traffic to.
fn hooks(config: &Config, routes: &[String]) -> Vec<(Option<String>, WebhookSpec)> {
    let drained = |h: &&WebhookSpec| h.on == WebhookKind::Drained;
    let global = config
        .webhooks
        .iter()
        .filter(drained)
        .map(|h| (None, h.clone()));
    let per_route = config
        .routes
        .iter()
        .filter(|r| routes.contains(&r.name))
        .flat_map(|r| {
            let hooks = r.rollout.iter().flat_map(|ro| ro.webhooks.iter());
            hooks
                .filter(drained)
                .map(|h| (Some(r.name.clone()), h.clone()))
        });
    global.chain(per_route).collect()
}
