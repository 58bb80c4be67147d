//! One replica's part in the fleet. It keeps a session with etcd: a
//! membership key under its own lease, a full read of the prefix at one
//! revision, then a watch from the next. It campaigns for leadership; the
//! leader's controller decides and its records are written to etcd,
//! fenced; every other replica's controller follows, serving the records
//! it reads. Losing etcd stops all deciding: every replica keeps serving
//! what it last applied (its local state file keeps that across a
//! restart), and a new session resyncs with a full read.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd_client::{
    Client, ConnectOptions, EventType, GetOptions, KeyValue, PutOptions, WatchOptions,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::ClusterSpec;
use crate::control::record::Record;
use crate::control::sense::Peers;
use crate::control::{ClusterStatus, Controller, ReplicaStatus};

use super::relay::execute;
use super::report::{drift, Member, REPORT_EVERY};
use super::{FleetError, Leadership};

/// Route name -> config hash, with the config it was worked out for.
pub type Hashed = (Arc<crate::config::Config>, BTreeMap<String, String>);

pub struct Replica {
    pub spec: ClusterSpec,
    pub id: String,
    /// This replica's controller, called directly (not relayed).
    pub controller: Controller,
    /// What the controller persisted: the leader writes it to etcd.
    pub outbox: mpsc::UnboundedReceiver<BTreeMap<String, Record>>,
    pub status: Arc<Mutex<ClusterStatus>>,
    /// The connected client, for the relay.
    pub client: Arc<Mutex<Option<Client>>>,
    pub data: super::Data,
    /// When this process's counters started (Unix ms).
    pub epoch: u64,
    /// Route hashes of the config they were worked out for.
    pub hashed: Mutex<Option<Hashed>>,
    pub stop: CancellationToken,
}

impl Replica {
    pub async fn run(mut self) {
        let mut pause = Duration::from_millis(200);
        while !self.stop.is_cancelled() {
            match self.session().await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "fleet session ended; serving the last applied state")
                }
            }
            self.controller.set_deciding(false, None);
            self.status.lock().unwrap().connected = false;
            *self.client.lock().unwrap() = None;
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = self.stop.cancelled() => return,
            }
            pause = (pause * 2).min(self.spec.lease_ttl);
        }
    }

    pub(super) fn key(&self, rest: &str) -> String {
        format!("{}/{rest}", self.spec.prefix)
    }

    async fn session(&mut self) -> Result<(), FleetError> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(self.spec.lease_ttl);
        if let Some(tls) = &self.spec.tls {
            options = options.with_tls(tls_options(tls)?);
        }
        let mut client = Client::connect(&self.spec.etcd, Some(options)).await?;
        let ttl = self.spec.lease_ttl;
        let member = client
            .lease_grant(ttl.as_secs().max(1) as i64, None)
            .await?
            .id();
        let (mut keeper, mut kept) = client.lease_keep_alive(member).await?;
        let prefix = format!("{}/", self.spec.prefix);
        let all = client
            .get(prefix.as_str(), Some(GetOptions::new().with_prefix()))
            .await?;
        let revision = all.header().map_or(0, |h| h.revision());
        let mut seen: BTreeMap<String, Record> = BTreeMap::new();
        let mut calls = BTreeMap::new();
        for kv in all.kvs() {
            self.seen(kv, true, &mut seen, &mut calls, true);
        }
        self.report(&mut client, member, revision).await?;
        let watch = WatchOptions::new()
            .with_prefix()
            .with_start_revision(revision + 1);
        let mut events = client.watch(prefix.as_str(), Some(watch)).await?;
        *self.client.lock().unwrap() = Some(client.clone());
        self.status.lock().unwrap().connected = true;
        tracing::info!(replica = %self.id, revision, "fleet session started");

        let mut leading: Option<Leadership> = None;
        let mut campaign = self.campaign(&client);
        let mut renew = tokio::time::interval(ttl / 3);
        let mut publish = tokio::time::interval(REPORT_EVERY);
        let mut reported = self.hashes();
        let (mut ticks, mut counted) = (0u64, self.requests());
        publish.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut applied = revision;
        loop {
            tokio::select! {
                () = self.stop.cancelled() => {
                    if let Some(l) = leading.take() {
                        l.resign().await;
                    }
                    let _ = client.lease_revoke(member).await;
                    return Ok(());
                }
                won = &mut campaign, if leading.is_none() => {
                    let won = won.map_err(|_| FleetError::LeaseLost)??;
                    let Some(mut won) = won else { return Ok(()) };
                    self.controller.set_deciding(true, Some(won.acting_until()));
                    // The records this replica serves become the fleet's.
                    let records = self.controller.views().into_iter().map(|(r, v)| (r, v.record)).collect();
                    write(&mut won, &self.spec.prefix, &mut seen, &records, &self.data.peers).await?;
                    for (key, body) in std::mem::take(&mut calls) {
                        let drift = self.data.peers.lock().unwrap().drift.clone();
                        execute(&mut client, &self.spec.prefix, &key, &body, &self.controller, &drift).await;
                    }
                    leading = Some(won);
                }
                () = lost(&leading) => {
                    // Whatever this replica decided and could not write is
                    // undone by reading the fleet's state again.
                    return Err(FleetError::Resync("leadership lost".into()));
                }
                records = self.outbox.recv() => {
                    let Some(records) = records else { return Ok(()) };
                    if let Some(l) = &mut leading {
                        write(l, &self.spec.prefix, &mut seen, &records, &self.data.peers).await?;
                    }
                }
                message = events.message() => {
                    let Some(resp) = message? else {
                        return Err(FleetError::Resync("watch closed".into()));
                    };
                    if resp.canceled() || resp.compact_revision() > 0 {
                        let why = format!("watch cancelled (compacted at {})", resp.compact_revision());
                        return Err(FleetError::Resync(why));
                    }
                    let before = applied;
                    for event in resp.events() {
                        let Some(kv) = event.kv() else { continue };
                        let put = event.event_type() == EventType::Put;
                        let following = leading.is_none();
                        if self.seen(kv, put, &mut seen, &mut calls, following) {
                            applied = applied.max(kv.mod_revision());
                        }
                    }
                    if leading.is_some() {
                        for (key, body) in std::mem::take(&mut calls) {
                            tracing::debug!(%key, "carrying out a call");
                            let drift = self.data.peers.lock().unwrap().drift.clone();
                        execute(&mut client, &self.spec.prefix, &key, &body, &self.controller, &drift).await;
                        }
                    }
                    // Only desired state moves this replica's report (a report on
                    // every event would echo between replicas).
                    if applied != before {
                        self.report(&mut client, member, applied).await?;
                    }
                }
                _ = publish.tick() => {
                    self.publish(&mut client, member).await?;
                    ticks += 1;
                    let count = ticks % 8 == 0 && self.requests() != counted;
                    if self.hashes() != reported || count {
                        // A reload changed a route, or (every 2 s) the
                        // request count moved: the membership says so.
                        (reported, counted) = (self.hashes(), self.requests());
                        self.report(&mut client, member, applied).await?;
                    }
                }
                _ = renew.tick() => {
                    keeper.keep_alive().await?;
                    match tokio::time::timeout(ttl / 2, kept.message()).await {
                        Ok(Ok(Some(resp))) if resp.ttl() > 0 => {}
                        _ => return Err(FleetError::Resync("membership lease not renewed".into())),
                    }
                }
            }
        }
    }

    fn campaign(
        &self,
        client: &Client,
    ) -> tokio::task::JoinHandle<Result<Option<Leadership>, FleetError>> {
        let (client, prefix, id) = (client.clone(), self.spec.prefix.clone(), self.id.clone());
        let (ttl, stop) = (self.spec.lease_ttl, self.stop.clone());
        tokio::spawn(async move { Leadership::campaign(client, &prefix, &id, ttl, &stop).await })
    }

    /// One key read or changed; true when it was desired state this
    /// replica applied.
    fn seen(
        &self,
        kv: &KeyValue,
        put: bool,
        seen: &mut BTreeMap<String, Record>,
        calls: &mut BTreeMap<String, Vec<u8>>,
        following: bool,
    ) -> bool {
        let Ok(key) = kv.key_str() else { return false };
        let Some(rest) = key.strip_prefix(&format!("{}/", self.spec.prefix)) else {
            return false;
        };
        let mut status = self.status.lock().unwrap();
        if let Some(route) = rest.strip_prefix("routes/") {
            let record = put
                .then(|| serde_json::from_slice::<Record>(kv.value()).ok())
                .flatten();
            match &record {
                Some(r) => seen.insert(route.to_string(), r.clone()),
                None => seen.remove(route),
            };
            if following {
                self.controller.replicate(route, record);
            }
            return true;
        }
        if rest == "leader" {
            status.leader = put.then(|| kv.value_str().unwrap_or_default().to_string());
        } else if let Some(id) = rest.strip_prefix("stats/") {
            if id != self.id {
                let report = put
                    .then(|| serde_json::from_slice(kv.value()).ok())
                    .flatten();
                let mut view = self.data.peers.lock().unwrap();
                view.peers.entry(id.to_string()).or_default().report = report;
            }
        } else if let Some(id) = rest.strip_prefix("replicas/") {
            let member: Member = serde_json::from_slice(kv.value()).unwrap_or_default();
            if id != self.id {
                let mut view = self.data.peers.lock().unwrap();
                match put {
                    true => {
                        let peer = view.peers.entry(id.to_string()).or_default();
                        (peer.live, peer.applied) = (true, member.generation);
                        peer.routes = member.routes.clone();
                    }
                    false => drop(view.peers.remove(id)),
                }
                view.drift = drift(&self.hashes(), &view.peers);
            }
            status.replicas.retain(|r| r.id != id);
            if put {
                let generation = member.generation;
                let id = id.to_string();
                status.replicas.push(ReplicaStatus {
                    id,
                    live: true,
                    generation,
                    requests: member.requests,
                });
                status.replicas.sort_by(|a, b| a.id.cmp(&b.id));
            }
        } else if rest.starts_with("calls/") {
            // Calls the leader has not carried out yet (it deletes them).
            match put {
                true => calls.insert(key.to_string(), kv.value().to_vec()),
                false => calls.remove(key),
            };
        }
        false
    }

    /// This replica's membership: alive while its lease is, with the
    /// revision of the desired state it applied last.
    async fn report(
        &self,
        client: &mut Client,
        lease: i64,
        generation: i64,
    ) -> Result<(), FleetError> {
        let me = Member {
            generation,
            routes: self.hashes(),
            requests: self.requests(),
        };
        let body = serde_json::to_vec(&me).expect("membership serialises");
        let options = PutOptions::new().with_lease(lease);
        client
            .put(
                self.key(&format!("replicas/{}", self.id)),
                body,
                Some(options),
            )
            .await?;
        Ok(())
    }
}

/// Resolves when the leadership held is lost; never without one.
async fn lost(leading: &Option<Leadership>) {
    match leading {
        Some(l) => l.lost().await,
        None => std::future::pending().await,
    }
}

/// The leader writes each record that differs from what etcd holds, and
/// remembers the revision (a step's interval waits for every replica to
/// apply it).
async fn write(
    leader: &mut Leadership,
    prefix: &str,
    seen: &mut BTreeMap<String, Record>,
    records: &BTreeMap<String, Record>,
    view: &Peers,
) -> Result<(), FleetError> {
    for (route, record) in records {
        if seen.get(route) == Some(record) {
            continue;
        }
        let body = serde_json::to_vec(record).expect("records serialise");
        let revision = leader
            .put(&format!("{prefix}/routes/{route}"), body)
            .await?;
        seen.insert(route.clone(), record.clone());
        view.lock().unwrap().written.insert(route.clone(), revision);
    }
    Ok(())
}

/// TLS to etcd from the PEM files, read now (so rotated files are used on
/// the next connection).
fn tls_options(tls: &crate::config::ClusterTls) -> Result<etcd_client::TlsOptions, FleetError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| FleetError::Tls(format!("{}: {e}", path.display())))
    };
    let mut options = etcd_client::TlsOptions::new()
        .ca_certificate(etcd_client::Certificate::from_pem(read(&tls.ca)?));
    if let Some((cert, key)) = &tls.identity {
        options = options.identity(etcd_client::Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(options)
}
