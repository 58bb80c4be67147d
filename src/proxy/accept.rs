//! Accepting connections within limits: a budget of open connections per
//! listener (more wait in the kernel's accept queue), a backoff when
//! `accept` fails (out of file descriptors, say) instead of spinning and
//! logging every 10 ms, and the open-file limit raised at start.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The admin listener's own budget: small, and separate from the proxy
/// listeners', so it stays reachable when they are full.
pub const ADMIN_MAX_CONNECTIONS: usize = 64;

const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// At most one accept-failure log line per this.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// One listener's accept loop state.
pub struct Acceptor {
    listener: TcpListener,
    budget: Arc<Semaphore>,
    backoff: Duration,
    /// When the last failure was logged, and failures since.
    logged: Option<Instant>,
    unlogged: u64,
    what: &'static str,
}

impl Acceptor {
    /// At most `max_connections` open at once (`usize::MAX`: no limit).
    pub fn new(listener: TcpListener, max_connections: usize, what: &'static str) -> Acceptor {
        let permits = max_connections.min(Semaphore::MAX_PERMITS);
        Acceptor {
            listener,
            budget: Arc::new(Semaphore::new(permits)),
            backoff: FIRST_BACKOFF,
            logged: None,
            unlogged: 0,
            what,
        }
    }

    /// The next connection, with the permit it holds while open. Waits
    /// for a free slot first; failures back off (doubling, up to a
    /// second) and are logged at most every few seconds. Cancel-safe.
    pub async fn accept(&mut self) -> (TcpStream, SocketAddr, OwnedSemaphorePermit) {
        let permit = self
            .budget
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => {
                    self.backoff = FIRST_BACKOFF;
                    return (stream, peer, permit);
                }
                Err(e) => {
                    self.unlogged += 1;
                    let now = Instant::now();
                    if self.logged.is_none_or(|at| now >= at + LOG_EVERY) {
                        let failures = std::mem::take(&mut self.unlogged);
                        tracing::warn!(error = %e, failures, listener = self.what, "accept failed; backing off");
                        self.logged = Some(now);
                    }
                    tokio::time::sleep(self.backoff).await;
                    self.backoff = next_backoff(self.backoff);
                }
            }
        }
    }
}

fn next_backoff(now: Duration) -> Duration {
    (now * 2).min(MAX_BACKOFF)
}

/// Raises the open-file soft limit to the hard limit (each connection is
/// a file descriptor; many systems start at 1024). Returns the new soft
/// limit, `None` when unlimited or unchanged.
pub fn raise_open_files() -> Option<u64> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return None;
    }
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => limit.maximum,
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_second() {
        let mut b = FIRST_BACKOFF;
        let mut seen = vec![b];
        for _ in 0..10 {
            b = next_backoff(b);
            seen.push(b);
        }
        assert_eq!(seen[1], Duration::from_millis(20));
        assert_eq!(*seen.last().unwrap(), MAX_BACKOFF);
    }

    #[test]
    fn the_open_file_limit_is_raised_to_the_hard_limit() {
        use rustix::process::{getrlimit, Resource};
        raise_open_files();
        let limit = getrlimit(Resource::Nofile);
        assert_eq!(limit.current, limit.maximum);
    }
}
