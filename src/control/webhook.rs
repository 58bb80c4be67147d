//! Webhooks: a JSON POST per rollout event (and per `drained` pool), with
//! a timeout and retries. `confirm-promotion` and `pre-rollout` are gates:
//! the rollout waits for a 2xx.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::Serialize;

use crate::config::{WebhookKind, WebhookSpec};

use crate::rollout::{Phase, Rollout, Verdict};

/// What every webhook receives.
#[derive(Debug, Clone, Serialize)]
pub struct Payload {
    pub event: &'static str,
    pub route: String,
    pub phase: Phase,
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
        WebhookKind::Drained => "drained",
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
    /// POSTs `payload` to `hook`, retrying failures; `Ok` on a 2xx, else
    /// why not (refused with a status, failed, timed out).
    pub async fn call(&self, hook: &WebhookSpec, payload: &impl Serialize) -> Result<(), String> {
        let event = kind_name(hook.on);
        let body = match serde_json::to_vec(payload) {
            Ok(body) => Bytes::from(body),
            Err(e) => return Err(format!("payload: {e}")),
        };
        let mut last = String::new();
        for attempt in 0..=hook.retries {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
            let req = http::Request::post(&hook.url)
                .header(http::header::CONTENT_TYPE, "application/json")
                .body(Full::new(body.clone()));
            let req = req.map_err(|e| format!("{}: {e}", hook.url))?;
            match tokio::time::timeout(hook.timeout, self.client.request(req)).await {
                Ok(Ok(resp)) if resp.status().is_success() => return Ok(()),
                Ok(Ok(resp)) => {
                    tracing::info!(url = %hook.url, status = %resp.status(), event, "webhook refused");
                    last = format!("{} answered {}", hook.url, resp.status());
                    // A gate that answers is a decision, not a failure to retry.
                    if resp.status().is_client_error() {
                        return Err(last);
                    }
                }
                Ok(Err(e)) => {
                    tracing::info!(url = %hook.url, error = %e, "webhook failed");
                    last = format!("{} failed: {e}", hook.url);
                }
                Err(_) => {
                    tracing::info!(url = %hook.url, "webhook timed out");
                    last = format!(
                        "{} timed out after {}",
                        hook.url,
                        humantime::format_duration(hook.timeout)
                    );
                }
            }
        }
        Err(last)
    }

    /// Calls every hook of `kind`; `Ok` when all answered 2xx (or none
    /// exist), else the first refusal.
    pub async fn all(
        &self,
        hooks: &[WebhookSpec],
        kind: WebhookKind,
        payload: &Payload,
    ) -> Result<(), String> {
        for hook in hooks.iter().filter(|h| h.on == kind) {
            self.call(hook, payload).await?;
        }
        Ok(())
    }
}

/// What a webhook about `r` is told.
pub(super) fn payload(r: &Rollout, event: &'static str, verdict: Option<Verdict>) -> Payload {
    Payload {
        event,
        route: r.route.clone(),
        phase: r.phase,
        stable: r.stable.clone(),
        candidate: r.candidate.clone(),
        weights: weights(r),
        reason: r.reason.clone(),
        verdict,
    }
}

/// Percent per pool a rollout serves, candidate first.
pub fn weights(r: &Rollout) -> Vec<(String, u32)> {
    let w = r.traffic.candidate_weight.min(100);
    if r.phase == Phase::Promoted && w == 100 {
        return vec![(r.candidate.clone(), 100), (r.stable.clone(), 0)];
    }
    vec![(r.candidate.clone(), w), (r.stable.clone(), 100 - w)]
}
