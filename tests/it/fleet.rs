//! The fleet's pieces against a real etcd: one leader at a time, and a
//! deposed leader's writes refused by etcd itself.

use std::net::SocketAddr;
use std::time::Duration;

use http::Method;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use veer::fleet::{FleetError, Leadership};

use crate::support::admin::*;
use crate::support::etcd::Etcd;
use crate::support::{outcomes, Upstream};

const TTL: Duration = Duration::from_secs(2);

async fn leader(etcd: &Etcd, id: &str, stop: &CancellationToken) -> Leadership {
    let client = etcd.client().await.unwrap();
    Leadership::campaign(client, "/veer/test", id, TTL, stop)
        .await
        .unwrap()
        .expect("not stopped")
}

async fn value(etcd: &Etcd, key: &str) -> Option<String> {
    let mut c = etcd.client().await.unwrap();
    let resp = c.get(key, None).await.unwrap();
    resp.kvs()
        .first()
        .map(|kv| kv.value_str().unwrap().to_string())
}

#[tokio::test]
async fn one_leader_at_a_time_and_the_next_waits_for_the_lease() {
    if !crate::support::etcd::available() {
        return;
    }
    let etcd = Etcd::start().await;
    let stop = CancellationToken::new();
    let mut a = leader(&etcd, "a", &stop).await;
    assert_eq!(
        value(&etcd, "/veer/test/leader").await.as_deref(),
        Some("a")
    );
    a.put("/veer/test/desired/app", "1").await.unwrap();

    // b campaigns while a leads: it waits.
    let client = etcd.client().await.unwrap();
    let b_stop = CancellationToken::new();
    let campaign = {
        let b_stop = b_stop.clone();
        tokio::spawn(
            async move { Leadership::campaign(client, "/veer/test", "b", TTL, &b_stop).await },
        )
    };
    tokio::time::sleep(TTL * 2).await;
    assert!(
        !campaign.is_finished(),
        "b must not lead while a's lease lives"
    );
    assert!(a.is_leading(), "a's keep-alive holds its lease");

    // a steps down; b leads within about one TTL.
    let started = tokio::time::Instant::now();
    a.resign().await;
    let mut b = tokio::time::timeout(TTL * 5, campaign)
        .await
        .expect("b leads after a resigned")
        .unwrap()
        .unwrap()
        .unwrap();
    println!("b led {:?} after a resigned", started.elapsed());
    assert_eq!(
        value(&etcd, "/veer/test/leader").await.as_deref(),
        Some("b")
    );
    b.put("/veer/test/desired/app", "2").await.unwrap();
    assert_eq!(
        value(&etcd, "/veer/test/desired/app").await.as_deref(),
        Some("2")
    );
    b_stop.cancel();
}

#[tokio::test]
async fn a_deposed_leader_cannot_write() {
    if !crate::support::etcd::available() {
        return;
    }
    let etcd = Etcd::start().await;
    let stop = CancellationToken::new();
    let mut a = leader(&etcd, "a", &stop).await;
    // a's key disappears behind its back (as when a was paused past its
    // lease), and b takes over, while a still believes it leads.
    let mut c = etcd.client().await.unwrap();
    c.delete("/veer/test/leader", None).await.unwrap();
    let mut b = leader(&etcd, "b", &stop).await;
    assert!(a.is_leading(), "a's own deadline has not passed");
    let refused = a.put("/veer/test/desired/app", "from a").await;
    assert!(matches!(refused, Err(FleetError::NotLeader)), "{refused:?}");
    assert!(!a.is_leading(), "a knows it lost");
    b.put("/veer/test/desired/app", "from b").await.unwrap();
    assert_eq!(
        value(&etcd, "/veer/test/desired/app").await.as_deref(),
        Some("from b")
    );
}

#[tokio::test]
async fn a_leader_whose_lease_is_not_renewed_stops_acting_before_it_expires() {
    if !crate::support::etcd::available() {
        return;
    }
    let etcd = Etcd::start().await;
    let stop = CancellationToken::new();
    let mut a = leader(&etcd, "a", &stop).await;
    // etcd goes away: no keep-alive is answered.
    drop(etcd);
    let start = tokio::time::Instant::now();
    tokio::time::timeout(TTL * 3, a.lost())
        .await
        .expect("leadership given up");
    let after = start.elapsed();
    assert!(
        after < TTL,
        "stopped acting {after:?} after its last renewal at most, inside the TTL"
    );
    assert!(matches!(a.put("/k", "v").await, Err(FleetError::NotLeader)));
}

/// Tests that start several veer processes run one at a time: together
/// they would load a 2-core machine past the timings they check.
async fn one_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static FLEET: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    FLEET.lock().await
}

/// A `veer run` process in a fleet: its own config, listener, admin API
/// and state directory. Killed (SIGKILL) on drop.
struct Replica {
    id: String,
    child: std::process::Child,
    admin: String,
    url: String,
    dir: TempDir,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Replica {
    async fn start(
        etcd: &Etcd,
        id: &str,
        blue: SocketAddr,
        green: SocketAddr,
        extra: &str,
    ) -> Replica {
        Replica::start_with(etcd, id, blue, green, extra, "").await
    }

    /// With `cluster_extra` appended to `[cluster]` (TLS files).
    async fn start_with(
        etcd: &Etcd,
        id: &str,
        blue: SocketAddr,
        green: SocketAddr,
        extra: &str,
        cluster_extra: &str,
    ) -> Replica {
        let dir = TempDir::new(id);
        let (port, admin) = (free_port(), free_port());
        let toml = two_pools(blue, green, "blue", extra)
            .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"127.0.0.1:{port}\""))
            + &format!(
                "\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n\n[cluster]\netcd = [\"{}\"]\nprefix = \"/veer/it\"\nreplica = \"{id}\"\nlease_ttl = \"2s\"\n{cluster_extra}",
                etcd.url
            );
        let path = dir.path().join("veer.toml");
        std::fs::write(&path, toml).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_veer"))
            .args(["run", "--no-watch", "-c"])
            .arg(&path)
            .env(
                "VEER_LOG",
                std::env::var("VEER_TEST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let replica = Replica {
            id: id.to_string(),
            child,
            admin: format!("http://127.0.0.1:{admin}"),
            url: format!("http://127.0.0.1:{port}/"),
            dir,
        };
        until(Duration::from_secs(20), "replica ready", || async {
            matches!(
                raw_get(&format!("{}/readyz", replica.admin)).await,
                Ok((http::StatusCode::OK, _))
            )
        })
        .await;
        replica
    }

    async fn status(&self) -> Value {
        let (code, json) = api_call(
            &format!("{}/api/v1/status", self.admin),
            Method::GET,
            None,
            None,
        )
        .await;
        assert_eq!(code, 200, "{json}");
        json
    }

    async fn call(&self, method: Method, path: &str, body: Option<&str>) -> (u16, Value) {
        let (code, json) = api_call(&format!("{}{path}", self.admin), method, body, None).await;
        (code.as_u16(), json)
    }
}

/// `n` GETs spread over `urls`, 10 ms apart; counts the failed ones.
fn failures_over(urls: Vec<String>, n: usize) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let client = crate::support::client();
        let mut failed = 0;
        for i in 0..n {
            let req = http::Request::get(&urls[i % urls.len()])
                .body(crate::support::empty())
                .unwrap();
            let (status, _, _) = crate::support::send(&client, req).await;
            failed += usize::from(status != 200);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        failed
    })
}

/// The leader every replica agrees on (and that they are connected).
async fn agreed_leader(replicas: &[&Replica]) -> String {
    let start = tokio::time::Instant::now();
    loop {
        let mut seen = Vec::new();
        for r in replicas {
            let c = r.status().await["cluster"].clone();
            let connected = c["connected"] == true;
            seen.push(connected.then(|| c["leader"].as_str().unwrap_or_default().to_string()));
        }
        if let Some(Some(leader)) = seen.first() {
            let agreed = seen.iter().all(|l| l.as_deref() == Some(leader.as_str()));
            if agreed && replicas.iter().any(|r| r.id == *leader) {
                return leader.clone();
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no agreed leader: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Percent to green each replica serves now (asked at once).
async fn greens(replicas: &[&Replica]) -> Vec<u64> {
    let asks = replicas.iter().map(|r| async move {
        r.status().await["routes"][0]["weights"]["green"]
            .as_u64()
            .unwrap_or(0)
    });
    futures_util::future::join_all(asks).await
}

/// `changes` weight changes, each made on the next replica in turn;
/// returns how long each took until every replica applied it.
async fn converge(n: usize, changes: u64) -> Vec<Duration> {
    if !crate::support::etcd::available() {
        return Vec::new();
    }
    let _one = one_at_a_time().await;
    let etcd = Etcd::start().await;
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let mut replicas = Vec::new();
    for i in 0..n {
        replicas
            .push(Replica::start(&etcd, &format!("r{}", i + 1), blue.addr, green.addr, "").await);
    }
    let all: Vec<&Replica> = replicas.iter().collect();
    agreed_leader(&all).await;
    let members = all[0].status().await["cluster"]["replicas"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(members, n);
    let mut took = Vec::new();
    for i in 0..changes {
        let green_pct = (i * 7 + 5) % 100;
        let via = all[i as usize % n];
        let body = format!(r#"{{"blue":{},"green":{green_pct}}}"#, 100 - green_pct);
        let start = tokio::time::Instant::now();
        let (code, json) = via
            .call(Method::PUT, "/api/v1/routes/app/weights", Some(&body))
            .await;
        assert_eq!(code, 200, "via {}: {json}", via.id);
        until(Duration::from_secs(10), "all replicas applied", || async {
            greens(&all).await.iter().all(|g| *g == green_pct)
        })
        .await;
        took.push(start.elapsed());
    }
    // Clients of every replica are served, and the fleet counts them.
    let seen = outcomes(&all[n - 1].url, 100, &[]).await;
    assert!(seen.keys().all(|(_, s)| *s == 200), "{seen:?}");
    let last = all[n - 1].id.clone();
    until(
        Duration::from_secs(10),
        "request counts per replica",
        || async {
            let c = all[0].status().await["cluster"].clone();
            let replicas = c["replicas"].as_array().unwrap().clone();
            replicas
                .iter()
                .any(|r| r["id"] == last.as_str() && r["requests"].as_u64() >= Some(100))
        },
    )
    .await;
    took.sort();
    took
}

#[tokio::test]
async fn three_replicas_converge_on_a_weights_change_made_on_any_of_them() {
    if !crate::support::etcd::available() {
        return;
    }
    let took = converge(3, 20).await;
    if took.is_empty() {
        return;
    }
    let (p50, p99) = (took[took.len() / 2], took[took.len() - 1]);
    println!(
        "fleet of 3: weights change applied by all in p50 {p50:?}, p99 {p99:?} over 20 changes"
    );
}

/// `benches/fleet.sh N`: time to converge for N replicas (not in the
/// suite: it starts N processes).
#[tokio::test]
#[ignore]
async fn converge_bench() {
    if !crate::support::etcd::available() {
        return;
    }
    let n: usize = std::env::var("FLEET_N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3);
    let took = converge(n, 20).await;
    if took.is_empty() {
        return;
    }
    let (p50, p99) = (took[took.len() / 2], took[took.len() - 1]);
    println!(
        "FLEET n={n} changes=20 p50_ms={:.1} p99_ms={:.1}",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
}

/// Replicas `ids` with a canary to green (steps 20, 50, 100; an hour
/// each) started through a follower and at step 1 on every replica;
/// returns them and the leader's id.
async fn at_step_one(
    etcd: &Etcd,
    ids: &[&str],
    blue: &Upstream,
    green: &Upstream,
) -> (Vec<Replica>, String) {
    let rollout =
        "[route.rollout]\nstrategy = \"canary\"\nsteps = [20, 50, 100]\ninterval = \"1h\"\n";
    let mut replicas = Vec::new();
    for id in ids {
        replicas.push(Replica::start(etcd, id, blue.addr, green.addr, rollout).await);
    }
    let leader = agreed_leader(&replicas.iter().collect::<Vec<_>>()).await;
    let follower = replicas.iter().position(|r| r.id != leader).unwrap();
    let (code, json) = replicas[follower]
        .call(
            Method::POST,
            "/api/v1/routes/app/rollout",
            Some(r#"{"pool":"green"}"#),
        )
        .await;
    assert_eq!(code, 200, "{json}");
    until(Duration::from_secs(10), "step 1 everywhere", || async {
        greens(&replicas.iter().collect::<Vec<_>>())
            .await
            .iter()
            .all(|g| *g == 20)
    })
    .await;
    (replicas, leader)
}

#[tokio::test]
async fn a_new_leader_continues_the_rollout_at_the_same_step() {
    if !crate::support::etcd::available() {
        return;
    }
    let _one = one_at_a_time().await;
    let etcd = Etcd::start().await;
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let (mut replicas, leader) = at_step_one(&etcd, &["r1", "r2", "r3"], &blue, &green).await;
    // kill -9 the leader, under load on the others.
    let dead = replicas.iter().position(|r| r.id == leader).unwrap();
    let urls: Vec<String> = replicas
        .iter()
        .filter(|r| r.id != leader)
        .map(|r| r.url.clone())
        .collect();
    let load = failures_over(urls, 400);
    drop(replicas.remove(dead));
    let killed = tokio::time::Instant::now();
    let rest: Vec<&Replica> = replicas.iter().collect();
    let next = agreed_leader(&rest).await;
    println!(
        "new leader {next} agreed {:?} after kill -9 of {leader}",
        killed.elapsed()
    );
    assert_ne!(next, leader);
    for r in &rest {
        let route = r.status().await["routes"][0].clone();
        assert_eq!(
            (route["phase"].as_str(), route["weights"]["green"].as_u64()),
            (Some("progressing"), Some(20)),
            "{}: {route}",
            r.id
        );
    }
    assert_eq!(
        load.await.unwrap(),
        0,
        "requests failed across the failover"
    );
    // The new leader carries out calls: promote from the other replica.
    let (code, json) = rest[1]
        .call(Method::POST, "/api/v1/routes/app/promote", None)
        .await;
    assert_eq!(code, 200, "{json}");
    until(Duration::from_secs(10), "promoted everywhere", || async {
        greens(&rest).await.iter().all(|g| *g == 100)
    })
    .await;
}

#[tokio::test]
async fn without_etcd_replicas_serve_the_last_state_and_refuse_calls() {
    if !crate::support::etcd::available() {
        return;
    }
    let _one = one_at_a_time().await;
    let etcd = Etcd::start().await;
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let r1 = Replica::start(&etcd, "r1", blue.addr, green.addr, "").await;
    let r2 = Replica::start(&etcd, "r2", blue.addr, green.addr, "").await;
    agreed_leader(&[&r1, &r2]).await;
    let (code, _) = r2
        .call(
            Method::PUT,
            "/api/v1/routes/app/weights",
            Some(r#"{"blue":60,"green":40}"#),
        )
        .await;
    assert_eq!(code, 200);
    until(Duration::from_secs(10), "applied", || async {
        greens(&[&r1, &r2]).await == [40, 40]
    })
    .await;
    drop(etcd);
    until(Duration::from_secs(15), "disconnected", || async {
        r1.status().await["cluster"]["connected"] == false
            && r2.status().await["cluster"]["connected"] == false
    })
    .await;
    for r in [&r1, &r2] {
        let seen = outcomes(&r.url, 100, &[]).await;
        assert!(seen.keys().all(|(_, s)| *s == 200), "{}: {seen:?}", r.id);
        assert_eq!(greens(&[r]).await, [40]);
        let (code, json) = r
            .call(
                Method::PUT,
                "/api/v1/routes/app/weights",
                Some(r#"{"green":100}"#),
            )
            .await;
        assert_eq!(code, 503, "{json}");
    }
}

/// SIGSTOP of the leader past its lease, then SIGCONT: the fleet goes on
/// under a new leader, the old one writes nothing more (fenced), and the
/// rollout advances one step at a time, once per interval.
#[tokio::test]
async fn a_paused_leader_resumes_as_a_follower_and_nothing_advances_twice() {
    if !crate::support::etcd::available() {
        return;
    }
    leader_loss(false).await;
}

/// kill -9 of the leader mid-canary: the next leader goes on at the same
/// step, one advance per interval, and clients of the others see no error.
#[tokio::test]
async fn a_killed_leader_mid_canary_costs_no_step_and_no_request() {
    if !crate::support::etcd::available() {
        return;
    }
    leader_loss(true).await;
}

/// Loses the leader mid-canary (SIGKILL, or SIGSTOP past its lease then
/// SIGCONT) and checks every write of the route's state in etcd: one step
/// at a time, at least most of an interval apart.
async fn leader_loss(kill: bool) {
    let _one = one_at_a_time().await;
    let etcd = Etcd::start().await;
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let steps = [10u64, 20, 30, 40, 50, 60, 70, 80, 90, 100];
    let rollout = "[route.rollout]\nstrategy = \"canary\"\nsteps = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]\ninterval = \"1s\"\n\
                   [route.rollout.analysis]\nmin_requests = 0\n";
    let mut replicas = Vec::new();
    for id in ["r1", "r2", "r3"] {
        replicas.push(Replica::start(&etcd, id, blue.addr, green.addr, rollout).await);
    }
    let all: Vec<&Replica> = replicas.iter().collect();
    let leader = agreed_leader(&all).await;
    // Every write of the route's desired state, in order.
    let mut client = etcd.client().await.unwrap();
    let mut watch = client.watch("/veer/it/routes/app", None).await.unwrap();
    let writes = tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Ok(Some(resp)) = watch.message().await {
            for e in resp.events() {
                let Some(kv) = e.kv() else { continue };
                let record: Value = serde_json::from_slice(kv.value()).unwrap();
                let w = &record["rollout"]["traffic"]["candidate_weight"];
                let w = w
                    .as_u64()
                    .or_else(|| record["finished"].is_object().then_some(100));
                seen.push((tokio::time::Instant::now(), w.unwrap_or(0)));
                if w == Some(100) {
                    return seen;
                }
            }
        }
        seen
    });
    let l = all.iter().find(|r| r.id == leader).unwrap();
    let follower = all.iter().find(|r| r.id != leader).unwrap();
    let (code, json) = follower
        .call(
            Method::POST,
            "/api/v1/routes/app/rollout",
            Some(r#"{"pool":"green"}"#),
        )
        .await;
    assert_eq!(code, 200, "{json}");
    until(Duration::from_secs(15), "step 3", || async {
        greens(&[l]).await[0] >= 30
    })
    .await;
    let pid = l.child.id().to_string();
    let signal = |s: &str| {
        std::process::Command::new("kill")
            .args([s, &pid])
            .status()
            .unwrap()
    };
    let rest: Vec<&Replica> = all.iter().copied().filter(|r| r.id != leader).collect();
    let urls: Vec<String> = rest.iter().map(|r| r.url.clone()).collect();
    let load = failures_over(urls, 300);
    assert!(signal(if kill { "-KILL" } else { "-STOP" }).success());
    let next = agreed_leader(&rest).await;
    if !kill {
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(signal("-CONT").success());
    }
    let seen = tokio::time::timeout(Duration::from_secs(40), writes)
        .await
        .expect("promoted")
        .unwrap();
    let mut distinct: Vec<(tokio::time::Instant, u64)> = Vec::new();
    for (at, w) in seen {
        if distinct.last().is_none_or(|(_, last)| *last != w) {
            distinct.push((at, w));
        }
    }
    let weights: Vec<u64> = distinct.iter().map(|(_, w)| *w).collect();
    let from = steps.iter().position(|s| *s == weights[0]).unwrap();
    assert_eq!(
        weights,
        steps[from..],
        "one step at a time, in order (leader {leader} -> {next})"
    );
    for pair in distinct.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap >= Duration::from_millis(700),
            "two advances {gap:?} apart: {weights:?}"
        );
    }
    assert_eq!(
        load.await.unwrap(),
        0,
        "requests failed while the leader was lost"
    );
    if kill {
        return;
    }
    until(
        Duration::from_secs(15),
        "the old leader follows",
        || async { greens(&[l]).await[0] == 100 },
    )
    .await;
    assert_eq!(l.status().await["cluster"]["leader"], next.as_str());
}

#[test]
fn cluster_config_is_checked() {
    let base = "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:0\"\n[[pool]]\nname = \"p\"\nendpoints = [\"127.0.0.1:1\"]\n[[route]]\nname = \"r\"\npool = \"p\"\n";
    let parse = |cluster: &str| {
        veer::config::parse(
            &format!("{base}{cluster}"),
            std::path::Path::new("veer.toml"),
        )
    };
    let ok = parse("[cluster]\netcd = [\"http://127.0.0.1:2379\"]\n").unwrap();
    let spec = ok.cluster.unwrap();
    assert_eq!(
        (spec.prefix.as_str(), spec.lease_ttl),
        ("/veer", Duration::from_secs(5))
    );
    for (bad, says) in [
        ("etcd = []", "at least one etcd endpoint"),
        (
            "etcd = [\"https://10.0.0.1:2379\"]",
            "https:// endpoints need ca",
        ),
        (
            "etcd = [\"http://10.0.0.1:2379\"]\nca = \"ca.pem\"",
            "for https:// endpoints",
        ),
        (
            "etcd = [\"https://10.0.0.1:2379\"]\nca = \"ca.pem\"\ncert = \"c.pem\"",
            "cert and key go together",
        ),
        ("etcd = [\"127.0.0.1:2379\"]", "expected http://host:port"),
        (
            "etcd = [\"http://127.0.0.1:2379\"]\nprefix = \"veer\"",
            "a key prefix",
        ),
        (
            "etcd = [\"http://127.0.0.1:2379\"]\nlease_ttl = \"500ms\"",
            "at least 1s",
        ),
        (
            "etcd = [\"http://127.0.0.1:2379\"]\nreplica = \"a b\"",
            "letters, digits",
        ),
    ] {
        let err = parse(&format!("[cluster]\n{bad}\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(says) && err.contains("veer.toml:"),
            "{bad}: {err}"
        );
    }
}

/// Fleet-wide analysis: each replica alone sees fewer than `min_requests`
/// candidate requests per interval; the leader judges the merged figures
/// and promotes.
#[tokio::test]
async fn a_canary_promotes_on_the_fleets_merged_figures() {
    if !crate::support::etcd::available() {
        return;
    }
    let _one = one_at_a_time().await;
    let etcd = Etcd::start().await;
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let rollout = "[route.rollout]\nstrategy = \"canary\"\nsteps = [50, 100]\ninterval = \"3s\"\nthreshold = 3\n\
                   [route.rollout.analysis]\nmin_requests = 20\nsuccess_rate = 99.0\n";
    let mut replicas = Vec::new();
    for id in ["r1", "r2", "r3"] {
        replicas.push(Replica::start(&etcd, id, blue.addr, green.addr, rollout).await);
    }
    let all: Vec<&Replica> = replicas.iter().collect();
    let leader = agreed_leader(&all).await;
    // At most 36 requests a second over the three: at most 18 candidate
    // requests per replica per 3 s interval at 50% (under min_requests),
    // about 54 for the fleet (room for a slow, loaded machine).
    let urls: Vec<String> = all.iter().map(|r| r.url.clone()).collect();
    let load = tokio::spawn(async move {
        let client = crate::support::client();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        for i in 0..2500usize {
            if tokio::time::Instant::now() > deadline {
                return;
            }
            let req = http::Request::get(&urls[i % 3])
                .body(crate::support::empty())
                .unwrap();
            let _ = crate::support::send(&client, req).await;
            tokio::time::sleep(Duration::from_millis(28)).await;
        }
    });
    let (code, json) = all[1]
        .call(
            Method::POST,
            "/api/v1/routes/app/rollout",
            Some(r#"{"pool":"green"}"#),
        )
        .await;
    assert_eq!(code, 200, "{json}");
    until(
        Duration::from_secs(45),
        "promoted on merged figures",
        || async { greens(&all).await.iter().all(|g| *g == 100) },
    )
    .await;
    load.abort();
    let l = all.iter().find(|r| r.id == leader).unwrap();
    let verdict = l.status().await["routes"][0]["verdict"].clone();
    assert_eq!(verdict["outcome"], "pass", "{verdict}");
    let merged = verdict["candidate"]["requests"].as_u64().unwrap();
    assert!(merged >= 20, "{verdict}");
    // The verdict is part of the route's desired state: every replica shows it.
    for r in &all {
        let theirs = r.status().await["routes"][0]["verdict"].clone();
        assert_eq!(theirs["outcome"], "pass", "{}: {theirs}", r.id);
    }
    println!("leader {leader} promoted on {merged} candidate requests in its last interval");
}

/// Replicas whose route config differs: the leader refuses to start a
/// rollout of that route and names them.
#[tokio::test]
async fn a_rollout_of_a_route_that_differs_across_replicas_is_refused() {
    if !crate::support::etcd::available() {
        return;
    }
    let _one = one_at_a_time().await;
    let etcd = Etcd::start().await;
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let rollout = "[route.rollout]\nstrategy = \"canary\"\nsteps = [50, 100]\ninterval = \"1h\"\n";
    let r1 = Replica::start(&etcd, "r1", blue.addr, green.addr, rollout).await;
    let r2 = Replica::start(
        &etcd,
        "r2",
        blue.addr,
        green.addr,
        &format!("timeout = \"7s\"\n{rollout}"),
    )
    .await;
    let leader = agreed_leader(&[&r1, &r2]).await;
    let other = if leader == "r1" { "r2" } else { "r1" };
    let l = if leader == "r1" { &r1 } else { &r2 };
    // The leader has both memberships (and so both configs' hashes).
    until(Duration::from_secs(10), "two members", || async {
        l.status().await["cluster"]["replicas"]
            .as_array()
            .unwrap()
            .len()
            == 2
    })
    .await;
    // The leader learns r2's hashes from its membership: retry briefly.
    let start = tokio::time::Instant::now();
    let refused = loop {
        let body = Some(r#"{"pool":"green"}"#);
        let answer = r1
            .call(Method::POST, "/api/v1/routes/app/rollout", body)
            .await;
        if answer.0 == 409 || start.elapsed() > Duration::from_secs(10) {
            break answer;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(refused.0, 409, "{}", refused.1);
    let error = refused.1["error"].as_str().unwrap().to_string();
    assert!(
        error.contains("different config") && error.contains(other),
        "{error}"
    );
    assert_eq!(greens(&[&r1, &r2]).await, [0, 0]);
}

/// A replica whose watch falls behind a compaction resyncs with a full
/// read and applies the latest state.
#[tokio::test]
async fn a_replica_behind_a_compaction_resyncs() {
    if !crate::support::etcd::available() {
        return;
    }
    let _one = one_at_a_time().await;
    let etcd = Etcd::start().await;
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let r1 = Replica::start(&etcd, "r1", blue.addr, green.addr, "").await;
    let r2 = Replica::start(&etcd, "r2", blue.addr, green.addr, "").await;
    let leader = agreed_leader(&[&r1, &r2]).await;
    let (stopped, active) = if leader == "r1" {
        (&r2, &r1)
    } else {
        (&r1, &r2)
    };
    let pid = stopped.child.id().to_string();
    let signal = |s: &str| {
        std::process::Command::new("kill")
            .args([s, &pid])
            .status()
            .unwrap()
    };
    assert!(signal("-STOP").success());
    for green_pct in [10, 20, 30] {
        let body = format!(r#"{{"blue":{},"green":{green_pct}}}"#, 100 - green_pct);
        let (code, json) = active
            .call(Method::PUT, "/api/v1/routes/app/weights", Some(&body))
            .await;
        assert_eq!(code, 200, "{json}");
    }
    let mut client = etcd.client().await.unwrap();
    let revision = client
        .get("/", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    client.compact(revision, None).await.unwrap();
    assert!(signal("-CONT").success());
    until(
        Duration::from_secs(20),
        "the stopped replica applied the latest",
        || async { greens(&[stopped]).await == [30] },
    )
    .await;
}

/// Sticky users land on the same pool whichever replica they reach.
#[tokio::test]
async fn sticky_users_land_on_the_same_pool_on_every_replica() {
    if !crate::support::etcd::available() {
        return;
    }
    let _one = one_at_a_time().await;
    let etcd = Etcd::start().await;
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let sticky = "[route.sticky]\ncookie = \"session\"\n";
    let r1 = Replica::start(&etcd, "r1", blue.addr, green.addr, sticky).await;
    let r2 = Replica::start(&etcd, "r2", blue.addr, green.addr, sticky).await;
    agreed_leader(&[&r1, &r2]).await;
    let (code, _) = r2
        .call(
            Method::PUT,
            "/api/v1/routes/app/weights",
            Some(r#"{"blue":50,"green":50}"#),
        )
        .await;
    assert_eq!(code, 200);
    until(Duration::from_secs(10), "applied", || async {
        greens(&[&r1, &r2]).await == [50, 50]
    })
    .await;
    let mut greens_seen = 0;
    for i in 0..100 {
        let cookie = format!("session=user{i}");
        let (_, a, _) = crate::support::get(&r1.url, &[("cookie", &cookie)]).await;
        let (_, b, _) = crate::support::get(&r2.url, &[("cookie", &cookie)]).await;
        assert_eq!(a["x-upstream"], b["x-upstream"], "{cookie}");
        greens_seen += usize::from(a["x-upstream"] == "green");
    }
    assert!(
        (25..=75).contains(&greens_seen),
        "{greens_seen} of 100 on green"
    );
}

/// etcd stopped mid-rollout: every replica serves the last weights with
/// no failed request and nothing advances; etcd back: the rollout resumes.
#[tokio::test]
async fn a_rollout_holds_while_etcd_is_down_and_resumes_after() {
    if !crate::support::etcd::available() {
        return;
    }
    let _one = one_at_a_time().await;
    let mut etcd = Etcd::start().await;
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let rollout = "[route.rollout]\nstrategy = \"canary\"\nsteps = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]\ninterval = \"1s\"\n\
                   [route.rollout.analysis]\nmin_requests = 0\n";
    let r1 = Replica::start(&etcd, "r1", blue.addr, green.addr, rollout).await;
    let r2 = Replica::start(&etcd, "r2", blue.addr, green.addr, rollout).await;
    agreed_leader(&[&r1, &r2]).await;
    let (code, json) = r2
        .call(
            Method::POST,
            "/api/v1/routes/app/rollout",
            Some(r#"{"pool":"green"}"#),
        )
        .await;
    assert_eq!(code, 200, "{json}");
    until(Duration::from_secs(15), "step 2", || async {
        greens(&[&r1]).await[0] >= 20
    })
    .await;
    etcd.stop();
    until(Duration::from_secs(15), "disconnected", || async {
        r1.status().await["cluster"]["connected"] == false
            && r2.status().await["cluster"]["connected"] == false
    })
    .await;
    // Each serves the last state it applied: the same, or (when etcd went
    // as the leader advanced) the leader one step ahead.
    let held = greens(&[&r1, &r2]).await;
    assert!(held[0].abs_diff(held[1]) <= 10, "{held:?}");
    for r in [&r1, &r2] {
        let seen = outcomes(&r.url, 100, &[]).await;
        assert!(seen.keys().all(|(_, s)| *s == 200), "{}: {seen:?}", r.id);
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        greens(&[&r1, &r2]).await,
        held,
        "no rollout advances without etcd"
    );
    etcd.restart().await;
    until(
        Duration::from_secs(30),
        "the rollout resumes and promotes",
        || async { greens(&[&r1, &r2]).await == [100, 100] },
    )
    .await;
}

/// TLS to etcd with client certificates: replicas connect, elect and
/// apply as over plain HTTP.
#[tokio::test]
async fn replicas_reach_etcd_over_tls_with_client_certificates() {
    if !crate::support::etcd::available() {
        return;
    }
    let _one = one_at_a_time().await;
    let dir = TempDir::new("etcd-pki");
    let pki = crate::support::tls::Pki::new(dir.path(), "etcd");
    let server = pki.issue(
        "server",
        &["127.0.0.1", "localhost"],
        &rcgen::PKCS_ECDSA_P256_SHA256,
    );
    let client = pki.issue("client", &["veer"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let etcd = Etcd::start_tls(&server.cert, &server.key, &pki.ca_path("etcd")).await;
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let files = format!(
        "ca = {:?}\ncert = {:?}\nkey = {:?}\n",
        pki.ca_path("etcd").display().to_string(),
        client.cert.display().to_string(),
        client.key.display().to_string()
    );
    let r1 = Replica::start_with(&etcd, "r1", blue.addr, green.addr, "", &files).await;
    let r2 = Replica::start_with(&etcd, "r2", blue.addr, green.addr, "", &files).await;
    agreed_leader(&[&r1, &r2]).await;
    let (code, json) = r2
        .call(
            Method::PUT,
            "/api/v1/routes/app/weights",
            Some(r#"{"blue":70,"green":30}"#),
        )
        .await;
    assert_eq!(code, 200, "{json}");
    until(Duration::from_secs(10), "applied over TLS", || async {
        greens(&[&r1, &r2]).await == [30, 30]
    })
    .await;
}

/// `veer run --upgrade` on the leader of a fleet: the new process takes
/// the sockets, joins with the same replica id, leads, and the rollout
/// goes on at the same step; no request fails on either replica.
#[tokio::test]
async fn an_upgraded_leader_keeps_the_fleet_and_its_rollout() {
    if !crate::support::etcd::available() {
        return;
    }
    let _one = one_at_a_time().await;
    let etcd = Etcd::start().await;
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let (mut replicas, leader) = at_step_one(&etcd, &["r1", "r2"], &blue, &green).await;
    let urls: Vec<String> = replicas.iter().map(|r| r.url.clone()).collect();
    let load = failures_over(urls, 400);
    let old = replicas.iter_mut().find(|r| r.id == leader).unwrap();
    let mut new = std::process::Command::new(env!("CARGO_BIN_EXE_veer"))
        .args(["run", "--no-watch", "--upgrade", "-c"])
        .arg(old.dir.path().join("veer.toml"))
        .env("VEER_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = new.id();
    until(
        Duration::from_secs(20),
        "the new process answering",
        || async { old.status().await["process"]["pid"] == pid },
    )
    .await;
    until(Duration::from_secs(20), "the old process gone", || {
        let exited = old.child.try_wait().unwrap().map(|s| s.code());
        async move { exited == Some(Some(0)) }
    })
    .await;
    let rest: Vec<&Replica> = replicas.iter().collect();
    assert_eq!(agreed_leader(&rest).await, leader);
    assert_eq!(greens(&rest).await, vec![20, 20]);
    assert_eq!(load.await.unwrap(), 0, "requests failed across the upgrade");
    // The upgraded leader carries out calls.
    let (code, json) = rest[1]
        .call(Method::POST, "/api/v1/routes/app/promote", None)
        .await;
    assert_eq!(code, 200, "{json}");
    until(Duration::from_secs(10), "promoted everywhere", || async {
        greens(&rest).await.iter().all(|g| *g == 100)
    })
    .await;
    let _ = new.kill();
    let _ = new.wait();
}
