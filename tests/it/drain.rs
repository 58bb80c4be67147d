//! Draining on a shift: requests in flight to the pool that leaves finish,
//! its upgraded connections close after `drain_timeout`, and a `drained`
//! event says when its instances can be stopped (more with streaming
//! bodies in `drain_streams`).

use std::time::Duration;

use crate::support::*;
use futures_util::{SinkExt, StreamExt};
use tokio::sync::broadcast;
use veer::drain::{DrainEvent, DrainState};
use veer::routing::Weights;

const WAIT: Duration = Duration::from_secs(10);

/// Pools v1 and v2, route `app` on v1; `proxy_extra` adds `[proxy]` keys.
fn two_pools(v1: &Upstream, v2: &Upstream, proxy_extra: &str) -> String {
    let text = config(
        &[("v1", &[v1.addr]), ("v2", &[v2.addr])],
        "[[route]]\nname = \"app\"\npool = \"v1\"\n",
    );
    text.replacen("[proxy]\n", &format!("[proxy]\n{proxy_extra}"), 1)
}

fn weights(v1: u32) -> Option<Weights> {
    Some(Weights {
        stable: "v1".into(),
        percent: vec![("v1".into(), v1), ("v2".into(), 100 - v1)],
    })
}

async fn next_event(events: &mut broadcast::Receiver<DrainEvent>) -> DrainEvent {
    tokio::time::timeout(WAIT, events.recv())
        .await
        .expect("a drain event in time")
        .expect("event channel open")
}

#[tokio::test]
async fn request_in_flight_to_v1_completes_while_weights_move_to_v2() {
    let (v1, v2) = (Upstream::start("v1").await, Upstream::start("v2").await);
    let proxy = Proxy::start(&two_pools(&v1, &v2, "")).await;
    let server = proxy.server.as_ref().unwrap();
    let mut events = server.drains.subscribe();

    let url = proxy.url("/sleep/3000");
    let slow = tokio::spawn(async move { get(&url, &[]).await });
    eventually(WAIT, || !v1.requests().is_empty()).await;
    for w in [90, 50, 10, 0] {
        proxy.routing().set_weights("app", weights(w));
    }
    assert_eq!(
        next_event(&mut events).await,
        DrainEvent::Draining {
            pool: "v1".into(),
            endpoint: None
        }
    );
    let status = server.drains.status();
    assert_eq!(
        (status[0].state, status[0].in_flight),
        (DrainState::Draining, 1)
    );
    let now = tally(&proxy.url("/"), 20, &[]).await;
    assert_eq!(now["v2"], 20, "{now:?}");

    let (code, headers, _) = slow.await.unwrap();
    assert_eq!(code, 200);
    assert_eq!(headers["x-upstream"], "v1");
    match next_event(&mut events).await {
        DrainEvent::Drained {
            pool,
            endpoint: None,
            took,
            cut,
            ..
        } if pool == "v1" && cut.is_empty() => assert!(took >= Duration::from_secs(2), "{took:?}"),
        other => panic!("unexpected {other:?}"),
    }
    let status = server.drains.status();
    let nothing_cut = DrainState::Drained {
        cut: Default::default(),
    };
    assert_eq!(status[0].state, nothing_cut);
    assert_eq!(endpoint(&proxy, "v1", v1.addr).conns.idle_count(), 0);

    // Back to v1: the drain is forgotten and v2 drains instead.
    proxy.routing().set_weights("app", weights(100));
    match next_event(&mut events).await {
        DrainEvent::Draining { pool, .. } => assert_eq!(pool, "v2"),
        other => panic!("unexpected {other:?}"),
    }
    assert!(server.drains.status().iter().all(|d| d.pool == "v2"));
}

#[tokio::test]
async fn websocket_to_a_drained_pool_closes_after_drain_timeout() {
    let (v1, v2) = (Upstream::start("v1").await, Upstream::start("v2").await);
    let proxy = Proxy::start(&two_pools(&v1, &v2, "drain_timeout = \"500ms\"\n")).await;
    let mut events = proxy.server.as_ref().unwrap().drains.subscribe();
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", proxy.addr))
        .await
        .unwrap();
    ws.send("hi".into()).await.unwrap();
    let reply = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply.into_text().unwrap().as_str(), "v1: hi");

    let shifted = tokio::time::Instant::now();
    proxy.routing().set_weights("app", weights(0));
    // Still open during the drain.
    ws.send("still".into()).await.unwrap();
    let reply = tokio::time::timeout(WAIT, ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(reply.into_text().unwrap().as_str(), "v1: still");

    // Then closed: the stream ends or errors, it does not hang.
    let end = tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("closed in time");
    if let Some(Ok(msg)) = end {
        assert!(msg.is_close(), "unexpected {msg:?}");
    }
    let open_for = shifted.elapsed();
    assert!(open_for >= Duration::from_millis(500), "{open_for:?}");
    assert!(open_for < Duration::from_secs(3), "{open_for:?}");
    let _draining = next_event(&mut events).await;
    match next_event(&mut events).await {
        DrainEvent::Drained { cut, .. } => assert_eq!((cut.streams, cut.tunnels), (0, 1)),
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test]
async fn an_endpoint_removed_by_reload_drains() {
    let (a, b) = (Upstream::start("a").await, Upstream::start("b").await);
    let text = |eps: &[std::net::SocketAddr]| {
        config(
            &[("app", eps)],
            "[[route]]\nname = \"app\"\npool = \"app\"\n",
        )
    };
    let proxy = Proxy::start(&text(&[a.addr, b.addr])).await;
    let mut events = proxy.server.as_ref().unwrap().drains.subscribe();
    // Slow requests until one is in flight on b.
    let mut slow = Vec::new();
    while b.requests().is_empty() {
        assert!(slow.len() < 50, "no request reached b");
        let url = proxy.url("/sleep/1000");
        slow.push(tokio::spawn(async move { get(&url, &[]).await }));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let reloaded = veer::config::parse(&text(&[a.addr]), "test.toml".as_ref()).unwrap();
    proxy.routing().set_config(std::sync::Arc::new(reloaded));
    assert_eq!(
        next_event(&mut events).await,
        DrainEvent::Draining {
            pool: "app".into(),
            endpoint: Some(b.addr.to_string())
        }
    );
    assert!(matches!(
        next_event(&mut events).await,
        DrainEvent::Drained { .. }
    ));
    for request in slow {
        assert_eq!(request.await.unwrap().0, 200);
    }
    let counts = tally(&proxy.url("/"), 10, &[]).await;
    assert_eq!(counts["a"], 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drained_event_follows_the_last_byte_of_a_stream() {
    use crate::support::stream::{stream_get, CHUNK};
    let (v1, v2) = (Upstream::start("v1").await, Upstream::start("v2").await);
    let proxy = Proxy::start(&two_pools(&v1, &v2, "drain_timeout = \"60s\"\n")).await;
    let server = proxy.server.as_ref().unwrap();
    let mut events = server.drains.subscribe();
    let stream = stream_get(proxy.url("/drip/20/hold"), Duration::from_secs(60));
    eventually(WAIT, || v1.drips.len() == 1 && v1.drips.get(0).sent == 19).await;
    proxy.routing().set_weights("app", weights(0));
    assert!(matches!(
        next_event(&mut events).await,
        DrainEvent::Draining { .. }
    ));
    let leaving = endpoint(&proxy, "v1", v1.addr);
    assert_eq!(leaving.flight().requests(), 1);

    v1.drips.release();
    let (cut, at) = match next_event(&mut events).await {
        DrainEvent::Drained { cut, .. } => (cut, tokio::time::Instant::now()),
        other => panic!("unexpected {other:?}"),
    };
    assert!(cut.is_empty(), "{cut:?}");
    let flight = leaving.flight();
    assert_eq!((flight.requests(), flight.conns()), (0, 0));
    let (last, _) = v1.drips.get(0).last_chunk.unwrap();
    assert!(at > last);
    eprintln!(
        "figure: drained event received {:?} after the upstream produced its last chunk",
        at - last
    );
    let received = stream.await.unwrap();
    assert!(
        received.clean && received.bytes == 20 * CHUNK,
        "{received:?}"
    );
}
