//! `workers = N`: accepted connections are handed round robin to N
//! single-threaded runtimes, and each is served where it landed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::task::TaskTracker;
use veer::workers::{self, Workers};

#[tokio::test]
async fn connections_go_round_robin_to_every_worker() {
    let workers = Workers::start(3).unwrap();
    assert_eq!(workers.count(), 3);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let tracker = TaskTracker::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut clients = Vec::new();
    for _ in 0..6 {
        clients.push(TcpStream::connect(addr).await.unwrap());
        let (stream, _) = listener.accept().await.unwrap();
        let seen = seen.clone();
        workers.spawn_conn(stream, &tracker, move |stream| async move {
            // Registered with the worker's own reactor: usable there.
            assert!(stream.peer_addr().is_ok());
            seen.lock()
                .unwrap()
                .push((workers::index(), std::thread::current().id()));
        });
    }
    tracker.close();
    tokio::time::timeout(Duration::from_secs(10), tracker.wait())
        .await
        .expect("every connection served");
    let seen = seen.lock().unwrap().clone();
    let mut indexes: Vec<usize> = seen.iter().map(|(i, _)| *i).collect();
    indexes.sort();
    assert_eq!(indexes, [0, 0, 1, 1, 2, 2]);
    // One thread per worker.
    for (index, thread) in &seen {
        assert!(seen.iter().all(|(i, t)| (i == index) == (t == thread)));
    }
    workers.stop();
}

#[tokio::test]
async fn a_proxy_on_three_workers_serves_every_connection() {
    let blue = Upstream::start("blue").await;
    let config = Arc::new(
        veer::config::parse(
            &format!(
                "[[listener]]\nname = \"public\"\nlisten = \"127.0.0.1:0\"\n{}\
                 [[route]]\nname = \"app\"\npool = \"blue\"\n",
                pool_toml("blue", &[blue.addr], "")
            ),
            std::path::Path::new("test.toml"),
        )
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut options = veer::app::Options::new(config, vec![listener]);
    options.workers = Workers::start(3).unwrap();
    let server = veer::app::start(options).await;
    // 12 connections (4 per worker), 25 keep-alive requests each, at once.
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            tokio::spawn(async move {
                let client = client();
                for _ in 0..25 {
                    let req = http::Request::get(format!("http://{addr}/"))
                        .body(empty())
                        .unwrap();
                    let (status, _, body) = send(&client, req).await;
                    assert_eq!((status.as_u16(), body.as_str()), (200, "blue"));
                }
            })
        })
        .collect();
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(20), task)
            .await
            .expect("in time")
            .unwrap();
    }
    assert_eq!(blue.requests().len(), 300);
    assert!(server.shutdown(Duration::from_secs(5)).await);
}
