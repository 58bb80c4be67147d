//! Webhooks: a JSON POST per rollout event, with a timeout and retries.
//! `confirm-promotion` and `pre-rollout` are gates: the rollout waits for
//! a 2xx.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::Serialize;

use crate::config::{WebhookKind, WebhookSpec};

use super::analysis::Verdict;

/// What every webhook receives.
#[derive(Debug, Clone, Serialize)]
pub struct Payload {
    pub event: &'static str,
    pub route: String,
    pub phase: &'static str,
    pub stable: String,
    pub candidate: String,
    pub weights: Vec<(String, u32)>,
    pub reason: String,
    pub verdict: Option<Verdict>,
}

pub fn kind_name(kind: WebhookKind) -> &'static str {
    match kind {
        WebhookKind::PreRollout => "pre-rollout",
        WebhookKind::Rollout => "rollout",
        WebhookKind::ConfirmPromotion => "confirm-promotion",
        WebhookKind::PostRollout => "post-rollout",
        WebhookKind::Rollback => "rollback",
        WebhookKind::Event => "event",
    }
}

#[derive(Debug, Clone)]
pub struct Webhooks {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for Webhooks {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        connector.set_nodelay(true);
        Webhooks {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }
}

impl Webhooks {
    /// POSTs `payload` to `hook`, retrying failures; true on a 2xx.
    pub async fn call(&self, hook: &WebhookSpec, payload: &Payload) -> bool {
        let body = match serde_json::to_vec(payload) {
            Ok(body) => Bytes::from(body),
            Err(_) => return false,
        };
        for attempt in 0..=hook.retries {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
            let req = http::Request::post(&hook.url)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(body.clone()));
            let Ok(req) = req else { return false };
            match tokio::time::timeout(hook.timeout, self.client.request(req)).await {
                Ok(Ok(resp)) if resp.status().is_success() => return true,
                Ok(Ok(resp)) => {
                    tracing::info!(url = %hook.url, status = %resp.status(), event = payload.event, "webhook refused");
                    // A gate that answers is a decision, not a failure to retry.
                    if resp.status().is_client_error() {
                        return false;
                    }
                }
                Ok(Err(e)) => tracing::info!(url = %hook.url, error = %e, "webhook failed"),
                Err(_) => tracing::info!(url = %hook.url, "webhook timed out"),
            }
        }
        false
    }

    /// Calls every hook of `kind`; true when all answered 2xx (or none exist).
    pub async fn all(&self, hooks: &[WebhookSpec], kind: WebhookKind, payload: &Payload) -> bool {
        let mut ok = true;
        for hook in hooks.iter().filter(|h| h.on == kind) {
            ok &= self.call(hook, payload).await;
        }
        ok
    }
}
