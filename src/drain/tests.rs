//! Drains on paused time: woken by the last guard, cut at the deadline and
//! reported only once closed, forgotten when the pool serves again.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::time::Instant;

use super::*;
use crate::observe::Telemetry;
use crate::routing::Weights;

fn routing() -> Arc<Routing> {
    let text = "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:1\"\n\
                [[pool]]\nname = \"v1\"\nendpoints = [\"127.0.0.1:2\"]\n\
                [[pool]]\nname = \"v2\"\nendpoints = [\"127.0.0.1:3\"]\n\
                [[route]]\nname = \"app\"\npool = \"v1\"\n";
    let config = Arc::new(crate::config::parse(text, Path::new("t.toml")).unwrap());
    Arc::new(Routing::new(config, Arc::new(Telemetry::default())))
}

fn shift(routing: &Routing, v1: u32) {
    let weights = Weights {
        stable: "v1".into(),
        percent: vec![("v1".into(), v1), ("v2".into(), 100 - v1)],
    };
    routing.set_weights("app", Some(weights));
}

fn v1(routing: &Routing) -> Arc<crate::upstream::EndpointState> {
    routing.load().pool("v1").unwrap().endpoints[0].clone()
}

async fn next(events: &mut broadcast::Receiver<DrainEvent>) -> DrainEvent {
    tokio::time::timeout(Duration::from_secs(60), events.recv())
        .await
        .expect("an event")
        .unwrap()
}

fn started() -> (Arc<Routing>, Arc<Drains>, broadcast::Receiver<DrainEvent>) {
    let (routing, drains) = (routing(), Arc::new(Drains::default()));
    let events = drains.subscribe();
    let stop = CancellationToken::new();
    tokio::spawn(follow(routing.clone(), drains.clone(), stop));
    (routing, drains, events)
}

#[tokio::test(start_paused = true)]
async fn drained_when_the_last_guard_drops() {
    let (routing, drains, mut events) = started();
    let request = v1(&routing).start_request();
    shift(&routing, 0);
    assert!(matches!(
        next(&mut events).await,
        DrainEvent::Draining { .. }
    ));
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(drains.status()[0].in_flight, 1);
    assert!(events.try_recv().is_err(), "not drained while in flight");
    drop(request);
    match next(&mut events).await {
        DrainEvent::Drained { took, cut, .. } => {
            assert_eq!((took, cut), (Duration::from_secs(1), Cut::default()));
        }
        other => panic!("unexpected {other:?}"),
    }
    let state = drains.status()[0].state;
    assert_eq!(
        state,
        DrainState::Drained {
            cut: Cut::default()
        }
    );
}

#[tokio::test(start_paused = true)]
async fn at_the_deadline_what_is_left_is_cut_and_drained_only_once_closed() {
    let (routing, drains, mut events) = started();
    let endpoint = v1(&routing);
    let (stream, upgraded) = (endpoint.start_request(), endpoint.start_request());
    let tunnel = endpoint.flight().start_tunnel();
    let cut = endpoint.flight().cut_signal();
    let shifted = Instant::now();
    shift(&routing, 0);
    let _draining = next(&mut events).await;
    let timeout = routing.load().config.proxy.drain_timeout;
    tokio::time::timeout(timeout * 2, cut)
        .await
        .expect("cut at drain_timeout");
    assert!(shifted.elapsed() >= timeout);
    // Cut, but the tunnel is not closed yet: no event.
    tokio::task::yield_now().await;
    assert!(events.try_recv().is_err());
    drop((tunnel, upgraded));
    match next(&mut events).await {
        DrainEvent::Drained { cut, .. } => assert_eq!(
            cut,
            Cut {
                streams: 1,
                tunnels: 1
            }
        ),
        other => panic!("unexpected {other:?}"),
    }
    // The stream's guard is held by a client that does not read; its
    // upstream connection is closed, so the drain did not wait for it.
    drop(stream);
    let report = drains.report(&routing.load(), "v1", None).unwrap();
    assert_eq!((report.state, report.cut), (ReportState::Drained, 2));
}

#[tokio::test(start_paused = true)]
async fn a_pool_serving_again_forgets_its_drain_and_is_not_cut() {
    let (routing, drains, mut events) = started();
    let endpoint = v1(&routing);
    let _request = endpoint.start_request();
    shift(&routing, 0);
    let _draining = next(&mut events).await;
    assert_eq!(drains.status().len(), 1);
    shift(&routing, 100);
    let _v2 = next(&mut events).await;
    assert!(drains.status().iter().all(|d| d.pool == "v2"));
    tokio::time::advance(Duration::from_secs(120)).await;
    assert!(!endpoint.flight().is_cut());
    let report = drains.report(&routing.load(), "v1", None).unwrap();
    assert_eq!((report.state, report.in_flight), (ReportState::Serving, 1));
}

#[tokio::test(start_paused = true)]
async fn shutdown_drains_every_pool_and_cuts_at_its_deadline() {
    let (routing, drains, mut events) = started();
    let endpoint = v1(&routing);
    let request = endpoint.start_request();
    let deadline = Instant::now() + Duration::from_secs(5);
    let stopping = {
        let (drains, snapshot) = (drains.clone(), routing.load_full());
        tokio::spawn(async move { drains.shutdown(&snapshot, deadline).await })
    };
    let cut = tokio::time::timeout(Duration::from_secs(60), stopping)
        .await
        .expect("shutdown drains end")
        .unwrap();
    assert_eq!(cut.streams, 1);
    assert!(Instant::now() >= deadline);
    let mut drained = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let DrainEvent::Drained { pool, reason, .. } = event {
            drained.push((pool, reason));
        }
    }
    drained.sort_by(|a, b| a.0.cmp(&b.0));
    let shutdown = DrainReason::Shutdown;
    assert_eq!(drained, [("v1".into(), shutdown), ("v2".into(), shutdown)]);
    drop(request);
}

#[tokio::test(start_paused = true)]
async fn waiting_for_a_drain_is_woken_by_it() {
    let (routing, drains, mut events) = started();
    let request = v1(&routing).start_request();
    let waiting = {
        let (drains, routing) = (drains.clone(), routing.clone());
        tokio::spawn(async move {
            let wait = Duration::from_secs(3600);
            drains.wait_report(&routing, "v1", None, wait).await
        })
    };
    tokio::task::yield_now().await;
    shift(&routing, 0);
    let _draining = next(&mut events).await;
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(!waiting.is_finished());
    drop(request);
    let report = waiting.await.unwrap().unwrap();
    assert_eq!(report.state, ReportState::Drained);
    assert_eq!(report.took_ms, Some(2000));
    let unknown = drains.report(&routing.load(), "v9", None);
    assert_eq!(unknown, Err(LookupError::UnknownPool("v9".into())));
}
