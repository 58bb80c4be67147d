//! Leadership on etcd: one replica holds `{prefix}/leader` under its own
//! lease; every write the leader makes is a transaction fenced on that
//! key's create revision, so a deposed leader (paused, partitioned, its
//! lease expired and the key re-created by another) can never write. The
//! leader also stops acting at a local monotonic deadline, before its
//! lease can expire in etcd.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::FleetError;

/// A replica campaigning for, then holding, leadership.
pub struct Leadership {
    client: Client,
    key: String,
    /// The create revision of this replica's leader key: the fence.
    revision: i64,
    lease: i64,
    /// Past this instant the replica no longer acts as leader, whatever
    /// etcd says: the lease may be about to expire there.
    deadline: Arc<Mutex<Instant>>,
    /// Cancelled once leadership is lost (lease gone, fence failed).
    lost: CancellationToken,
}

impl std::fmt::Debug for Leadership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leadership")
            .field("key", &self.key)
            .field("revision", &self.revision)
            .field("lease", &self.lease)
            .finish()
    }
}

impl Leadership {
    /// Campaigns until this replica leads, or `stop` is cancelled (then
    /// `None`). `id` is stored as the leader key's value.
    pub async fn campaign(
        mut client: Client,
        prefix: &str,
        id: &str,
        ttl: Duration,
        stop: &CancellationToken,
    ) -> Result<Option<Leadership>, FleetError> {
        let key = format!("{prefix}/leader");
        let ttl_secs = ttl.as_secs().max(1) as i64;
        let lease = client.lease_grant(ttl_secs, None).await?.id();
        let deadline = Arc::new(Mutex::new(Instant::now() + acting(ttl)));
        let lost = CancellationToken::new();
        tokio::spawn(keep_alive(
            client.clone(),
            lease,
            ttl,
            deadline.clone(),
            lost.clone(),
        ));
        loop {
            let create = Txn::new()
                .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
                .and_then([TxnOp::put(
                    key.as_str(),
                    id,
                    Some(PutOptions::new().with_lease(lease)),
                )]);
            let resp = client.txn(create).await?;
            if resp.succeeded() {
                let revision = resp.header().map_or(0, |h| h.revision());
                tracing::info!(%id, revision, "leading the fleet");
                return Ok(Some(Leadership {
                    client,
                    key,
                    revision,
                    lease,
                    deadline,
                    lost,
                }));
            }
            if lost.is_cancelled() {
                return Err(FleetError::LeaseLost);
            }
            // Another replica leads; its key goes when its lease does.
            tokio::select! {
                () = tokio::time::sleep(ttl / 5) => {}
                () = stop.cancelled() => {
                    lost.cancel();
                    let _ = client.lease_revoke(lease).await;
                    return Ok(None);
                }
            }
        }
    }

    /// The instant past which this replica must not act as leader, moved
    /// forward by each renewal; the controller checks it before deciding.
    pub fn acting_until(&self) -> Arc<Mutex<Instant>> {
        self.deadline.clone()
    }

    /// True while this replica may act as leader.
    pub fn is_leading(&self) -> bool {
        !self.lost.is_cancelled() && Instant::now() < *self.deadline.lock().unwrap()
    }

    /// Resolves once leadership is lost.
    pub async fn lost(&self) {
        self.lost.cancelled().await
    }

    /// Writes `value` at `key` only while this replica leads: refused
    /// locally past the deadline, and by etcd once another replica's key
    /// replaced this one's.
    pub async fn put(&mut self, key: &str, value: impl Into<Vec<u8>>) -> Result<i64, FleetError> {
        if !self.is_leading() {
            self.lost.cancel();
            return Err(FleetError::NotLeader);
        }
        let fenced = Txn::new()
            .when([Compare::create_revision(
                self.key.as_str(),
                CompareOp::Equal,
                self.revision,
            )])
            .and_then([TxnOp::put(key, value, None)]);
        let resp = self.client.txn(fenced).await?;
        if !resp.succeeded() {
            self.lost.cancel();
            return Err(FleetError::NotLeader);
        }
        Ok(resp.header().map_or(0, |h| h.revision()))
    }

    /// Gives leadership up at once (shutdown): the key goes with the lease.
    pub async fn resign(mut self) {
        self.lost.cancel();
        let _ = self.client.lease_revoke(self.lease).await;
    }
}

impl Drop for Leadership {
    /// Dropped (a session ended): stop renewing and let the key go, so
    /// the fleet can elect again without waiting for this lease.
    fn drop(&mut self) {
        self.lost.cancel();
        let (mut client, lease) = (self.client.clone(), self.lease);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = client.lease_revoke(lease).await;
            });
        }
    }
}

/// How long after a successful keep-alive the leader may still act: well
/// inside the lease's TTL, which etcd counts from when it got the request.
fn acting(ttl: Duration) -> Duration {
    ttl * 3 / 5
}

/// Keeps the lease alive every third of its TTL, moving the acting
/// deadline forward on each answer; gives up (cancelling `lost`) when
/// etcd says the lease is gone or the deadline passes unanswered.
async fn keep_alive(
    mut client: Client,
    lease: i64,
    ttl: Duration,
    deadline: Arc<Mutex<Instant>>,
    lost: CancellationToken,
) {
    let mut channel = None;
    while !lost.is_cancelled() {
        let sent = Instant::now();
        let until = *deadline.lock().unwrap();
        // Each attempt is bounded by the acting deadline: an etcd that does
        // not answer cannot keep this replica acting past it.
        let attempt = async {
            if channel.is_none() {
                channel = client.lease_keep_alive(lease).await.ok();
            }
            let Some((keeper, stream)) = &mut channel else {
                return None;
            };
            keeper.keep_alive().await.ok()?;
            stream.message().await.ok()?
        };
        let answered = match tokio::time::timeout_at(until, attempt).await {
            Ok(answered) => answered,
            Err(_) => {
                tracing::warn!(lease, "leader lease not renewed in time; no longer leading");
                lost.cancel();
                return;
            }
        };
        match answered {
            Some(resp) if resp.ttl() > 0 => *deadline.lock().unwrap() = sent + acting(ttl),
            Some(_) => {
                tracing::warn!(lease, "leader lease expired");
                lost.cancel();
                return;
            }
            // No answer: a fresh keep-alive stream on the next try.
            None => channel = None,
        }
        tokio::select! {
            () = tokio::time::sleep_until(sent + ttl / 3) => {}
            () = lost.cancelled() => return,
        }
    }
}
