//! The fleet's pieces against a real etcd: one leader at a time, and a
//! deposed leader's writes refused by etcd itself.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use veer::fleet::{FleetError, Leadership};

use crate::support::etcd::Etcd;

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
