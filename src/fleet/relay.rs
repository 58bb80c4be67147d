//! Operator calls in a fleet: any replica writes the call under
//! `{prefix}/calls/` and waits for the leader's answer under
//! `{prefix}/answers/`; the leader carries calls out in order with its own
//! controller ([`execute`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Client, EventType};
use serde::{Deserialize, Serialize};

use crate::control::{Call, ControlError, Controller, Relay};

/// How long a call waits for the leader's answer.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// A call's outcome as the leader writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// `None`: done.
    pub error: Option<(String, String)>,
}

impl Answer {
    /// The kind travels with the error's own text, or, for unknown
    /// names, the name itself, so the caller rebuilds the same error.
    pub fn of(result: &Result<(), ControlError>) -> Answer {
        let error = result.as_ref().err().map(|e| match e {
            ControlError::UnknownRoute(route) => ("unknown-route", route.clone()),
            ControlError::UnknownPool(pool) => ("unknown-pool", pool.clone()),
            ControlError::BadRequest(_) | ControlError::Config(_) | ControlError::Listener(_) => {
                ("bad-request", e.to_string())
            }
            ControlError::Conflict(_) => ("conflict", e.to_string()),
            ControlError::State(_) | ControlError::Stopped | ControlError::NoLeader(_) => {
                ("unavailable", e.to_string())
            }
        });
        Answer {
            error: error.map(|(kind, text)| (kind.to_string(), text)),
        }
    }

    pub fn into_result(self) -> Result<(), ControlError> {
        let Some((kind, text)) = self.error else {
            return Ok(());
        };
        Err(match kind.as_str() {
            "unknown-route" => ControlError::UnknownRoute(text),
            "unknown-pool" => ControlError::UnknownPool(text),
            "bad-request" => ControlError::BadRequest(text),
            "conflict" => ControlError::Conflict(text),
            _ => ControlError::NoLeader(text),
        })
    }
}

/// Submits calls through etcd.
pub struct EtcdRelay {
    /// Set while the replica's session with etcd is up.
    pub client: Arc<Mutex<Option<Client>>>,
    pub prefix: String,
    pub replica: String,
    pub seq: AtomicU64,
}

impl EtcdRelay {
    async fn send(&self, call: Call) -> Result<(), ControlError> {
        let unavailable = |e: etcd_client::Error| ControlError::NoLeader(format!("etcd: {e}"));
        let id = format!(
            "{}-{}",
            self.replica,
            self.seq.fetch_add(1, Ordering::Relaxed)
        );
        let answer_key = format!("{}/answers/{id}", self.prefix);
        let client = self.client.lock().unwrap().clone();
        let Some(mut client) = client else {
            return Err(ControlError::NoLeader("not connected to etcd".into()));
        };
        // Watch for the answer before asking, so it cannot be missed.
        let mut answers = client
            .watch(answer_key.as_str(), None)
            .await
            .map_err(unavailable)?;
        let body = serde_json::to_vec(&call).expect("calls serialise");
        client
            .put(format!("{}/calls/{id}", self.prefix), body, None)
            .await
            .map_err(unavailable)?;
        let wait = async {
            while let Ok(Some(resp)) = answers.message().await {
                for event in resp.events() {
                    let Some(kv) = event.kv().filter(|_| event.event_type() == EventType::Put)
                    else {
                        continue;
                    };
                    return serde_json::from_slice::<Answer>(kv.value()).ok();
                }
            }
            None
        };
        let answer = tokio::time::timeout(ANSWER_WITHIN, wait).await;
        let _ = client.delete(answer_key.as_str(), None).await;
        match answer {
            Ok(Some(answer)) => answer.into_result(),
            _ => {
                let _ = client
                    .delete(format!("{}/calls/{id}", self.prefix), None)
                    .await;
                Err(ControlError::NoLeader(format!(
                    "no answer from the fleet's leader within {}s",
                    ANSWER_WITHIN.as_secs()
                )))
            }
        }
    }
}

impl Relay for EtcdRelay {
    fn submit(
        &self,
        call: Call,
    ) -> Pin<Box<dyn Future<Output = Result<(), ControlError>> + Send + '_>> {
        Box::pin(self.send(call))
    }
}

/// The leader carries out a call found at `key` and writes its answer. A
/// rollout of a route whose config differs across replicas (`drift`) is
/// refused, naming them.
pub async fn execute(
    client: &mut Client,
    prefix: &str,
    key: &str,
    body: &[u8],
    controller: &Controller,
    drift: &std::collections::BTreeMap<String, Vec<String>>,
) {
    let Some(id) = key.rsplit('/').next() else {
        return;
    };
    let result = match serde_json::from_slice::<Call>(body) {
        Ok(Call::Start { route, .. }) if drift.get(&route).is_some_and(|d| !d.is_empty()) => {
            Err(ControlError::Conflict(format!(
                "route {route:?} has a different config on replica {}; reload them all first",
                drift[&route].join(", ")
            )))
        }
        Ok(call) => controller.local(call).await,
        Err(e) => Err(ControlError::BadRequest(format!(
            "call not understood: {e}"
        ))),
    };
    let answer = serde_json::to_vec(&Answer::of(&result)).expect("answers serialise");
    let _ = client
        .put(format!("{prefix}/answers/{id}"), answer, None)
        .await;
    let _ = client.delete(key, None).await;
}
