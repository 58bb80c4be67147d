//! Continuous, bounded load: `clients` tasks each sending GETs in a loop
//! until stopped (or a cap on requests), counting every failure (a status
//! other than 200, a transport error, a cut body, a timeout).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::BodyExt;

/// Requests per client at most; tests stop long before.
const MAX_REQUESTS: u64 = 200_000;
/// One request may take this long before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct Tally {
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    /// The first few failures, for assertion messages.
    pub errors: Mutex<Vec<String>>,
}

impl Tally {
    pub fn done(&self) -> u64 {
        self.ok.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }
}

pub struct Load {
    pub tally: Arc<Tally>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    pub fn start(url: &str, clients: usize) -> Load {
        let (tally, stop) = (Arc::new(Tally::default()), Arc::new(AtomicBool::new(false)));
        let tasks =
            (0..clients)
                .map(|_| {
                    let (url, tally, stop) = (url.to_string(), tally.clone(), stop.clone());
                    tokio::spawn(async move {
                        let client = super::client();
                        for _ in 0..MAX_REQUESTS {
                            if stop.load(Ordering::Relaxed) {
                                break;
                            }
                            let req = http::Request::get(&url).body(super::empty()).unwrap();
                            let result =
                                match tokio::time::timeout(REQUEST_TIMEOUT, client.request(req))
                                    .await
                                {
                                    Err(_) => Err("timed out".to_string()),
                                    Ok(Err(e)) => Err(format!("{e:?}")),
                                    Ok(Ok(resp)) if resp.status() != 200 => {
                                        Err(format!("status {}", resp.status()))
                                    }
                                    Ok(Ok(resp)) => resp
                                        .into_body()
                                        .collect()
                                        .await
                                        .map(|_| ())
                                        .map_err(|e| format!("body: {e}")),
                                };
                            match result {
                                Ok(()) => tally.ok.fetch_add(1, Ordering::Relaxed),
                                Err(e) => {
                                    let mut errors = tally.errors.lock().unwrap();
                                    if errors.len() < 10 {
                                        errors.push(e);
                                    }
                                    tally.failed.fetch_add(1, Ordering::Relaxed)
                                }
                            };
                        }
                    })
                })
                .collect();
        Load { tally, stop, tasks }
    }

    /// Waits until `more` requests have completed since the call.
    pub async fn wait_for(&self, more: u64) {
        let target = self.tally.done() + more;
        let tally = self.tally.clone();
        super::eventually(Duration::from_secs(30), move || tally.done() >= target).await;
    }

    /// Stops the clients; returns (ok, failed, first errors).
    pub async fn stop(self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        let errors = self.tally.errors.lock().unwrap().clone();
        (
            self.tally.ok.load(Ordering::Relaxed),
            self.tally.failed.load(Ordering::Relaxed),
            errors,
        )
    }
}
