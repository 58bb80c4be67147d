//! What is in flight on one endpoint: requests (a request holds its guard
//! until its response body has been sent), upgraded tunnels, and upstream
//! connections (open or being opened). A drain waits for these to reach
//! zero and is woken by the guard that drops last (never by polling);
//! at its deadline it cuts them: every connection to the endpoint and every
//! tunnel closes, and the response bodies they carried end with an error.
//!
//! The hot path pays one atomic add and one subtract per request; only
//! while a drain watches the endpoint does the last guard also wake it
//! (a `Notify`, so a drain never polls and a serving endpoint never locks).

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;

use tokio::sync::{watch, Notify};

/// The in-flight accounting of one endpoint. Shared by the endpoint, its
/// connection pool and every guard.
#[derive(Debug)]
pub struct Flight {
    requests: AtomicUsize,
    tunnels: AtomicUsize,
    conns: AtomicUsize,
    /// Drains waiting on this endpoint now: only while there are some
    /// does a count reaching zero wake anyone.
    watchers: AtomicUsize,
    wake: Notify,
    /// True once cut (sticky until the endpoint serves again): open and
    /// new connections to it close, tunnels close.
    cut: watch::Sender<bool>,
}

impl Default for Flight {
    fn default() -> Flight {
        Flight {
            requests: AtomicUsize::new(0),
            tunnels: AtomicUsize::new(0),
            conns: AtomicUsize::new(0),
            watchers: AtomicUsize::new(0),
            wake: Notify::new(),
            cut: watch::Sender::new(false),
        }
    }
}

/// What a cut closed: requests or response bodies still streaming, and
/// upgraded connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cut {
    pub streams: usize,
    pub tunnels: usize,
}

impl Cut {
    pub fn total(self) -> usize {
        self.streams + self.tunnels
    }

    pub fn is_empty(self) -> bool {
        self.total() == 0
    }
}

/// `1 stream, 2 tunnels`.
impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = |n: usize| if n == 1 { "" } else { "s" };
        let (streams, tunnels) = (self.streams, self.tunnels);
        write!(
            f,
            "{streams} stream{}, {tunnels} tunnel{}",
            s(streams),
            s(tunnels)
        )
    }
}

impl std::ops::AddAssign for Cut {
    fn add_assign(&mut self, other: Cut) {
        self.streams += other.streams;
        self.tunnels += other.tunnels;
    }
}

impl Flight {
    /// Requests in flight, tunnels included (a tunnel is the request that
    /// upgraded).
    pub fn requests(&self) -> usize {
        self.requests.load(SeqCst)
    }

    pub fn tunnels(&self) -> usize {
        self.tunnels.load(SeqCst)
    }

    /// Upstream connections open or being opened (idle pooled ones too).
    pub fn conns(&self) -> usize {
        self.conns.load(SeqCst)
    }

    pub fn is_cut(&self) -> bool {
        *self.cut.borrow()
    }

    /// Nothing in flight and no connection open: what `drained` means.
    pub fn is_quiet(&self) -> bool {
        self.conns() == 0 && self.requests() == 0
    }

    /// After a cut: no connection or tunnel to the upstream is open (a
    /// response whose client is not reading may still hold its guard, but
    /// nothing of it reaches the upstream any more).
    pub fn is_closed(&self) -> bool {
        self.conns() == 0 && self.tunnels() == 0 && (self.requests() == 0 || self.is_cut())
    }

    /// A drain starts watching: until the guard drops, the last
    /// in-flight guard wakes it.
    pub fn watch(self: &Arc<Self>) -> Watching {
        self.watchers.fetch_add(1, SeqCst);
        Watching(self.clone())
    }

    /// The endpoint serves again: it is not cut any more.
    pub fn serve(&self) {
        if self.is_cut() {
            self.cut.send_replace(false);
        }
    }

    /// Cuts everything in flight; returns what that was (counted before
    /// the signal: what it closes starts dropping its guards at once).
    pub fn cut(&self) -> Cut {
        let tunnels = self.tunnels();
        let cut = Cut {
            streams: self.requests().saturating_sub(tunnels),
            tunnels,
        };
        self.cut.send_replace(true);
        cut
    }

    /// Resolves once the endpoint is cut (at once if it is already).
    pub fn cut_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.cut.subscribe();
        async move {
            // The sender lives as long as a guard or the endpoint does;
            // once gone nothing is left to close.
            let _ = rx.wait_for(|cut| *cut).await;
        }
    }

    /// Waits until `done` holds, woken by guards as counts reach zero.
    /// The caller must be [`Flight::watch`]ing.
    pub async fn until(&self, done: impl Fn(&Flight) -> bool) {
        loop {
            // Created before the check: a wake-up in between is not lost.
            let woken = self.wake.notified();
            if done(self) {
                return;
            }
            woken.await;
        }
    }

    fn end(&self, count: &AtomicUsize) {
        if count.fetch_sub(1, SeqCst) == 1 && self.watchers.load(SeqCst) > 0 {
            self.wake.notify_waiters();
        }
    }

    pub(super) fn start_request(&self) {
        self.requests.fetch_add(1, SeqCst);
    }

    pub(super) fn end_request(&self) {
        self.end(&self.requests);
    }

    /// Counts an upgraded connection until the guard drops.
    pub fn start_tunnel(self: &Arc<Self>) -> TunnelGuard {
        self.tunnels.fetch_add(1, SeqCst);
        TunnelGuard(self.clone())
    }

    /// Counts an upstream connection (from the start of connecting) until
    /// the guard drops.
    pub fn open_conn(self: &Arc<Self>) -> ConnGuard {
        self.conns.fetch_add(1, SeqCst);
        ConnGuard(self.clone())
    }
}

/// A drain watching an endpoint.
#[derive(Debug)]
pub struct Watching(Arc<Flight>);

impl Drop for Watching {
    fn drop(&mut self) {
        self.0.watchers.fetch_sub(1, SeqCst);
    }
}

/// An upgraded connection in flight.
#[derive(Debug)]
pub struct TunnelGuard(Arc<Flight>);

impl Drop for TunnelGuard {
    fn drop(&mut self) {
        self.0.end(&self.0.tunnels);
    }
}

/// An upstream connection open (or being opened).
#[derive(Debug)]
pub struct ConnGuard(Arc<Flight>);

impl ConnGuard {
    /// Resolves once the endpoint is cut.
    pub fn cut_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        self.0.cut_signal()
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.end(&self.0.conns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn the_last_guard_wakes_a_watching_drain() {
        let flight = Arc::new(Flight::default());
        let _watching = flight.watch();
        let (conn, tunnel) = (flight.open_conn(), flight.start_tunnel());
        flight.start_request();
        let waiting = {
            let flight = flight.clone();
            tokio::spawn(async move { flight.until(Flight::is_quiet).await })
        };
        tokio::task::yield_now().await;
        drop(tunnel);
        flight.end_request();
        assert!(!waiting.is_finished());
        drop(conn);
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .unwrap();
    }

    #[tokio::test]
    async fn a_cut_counts_streams_and_tunnels_and_is_sticky_until_serving() {
        let flight = Arc::new(Flight::default());
        flight.start_request();
        flight.start_request();
        let _tunnel = flight.start_tunnel();
        let conn = flight.open_conn();
        let signal = conn.cut_signal();
        let cut = flight.cut();
        assert_eq!(
            cut,
            Cut {
                streams: 1,
                tunnels: 1
            }
        );
        tokio::time::timeout(Duration::from_secs(5), signal)
            .await
            .expect("signalled");
        // A connection opened after the cut sees it at once.
        tokio::time::timeout(Duration::from_secs(5), flight.cut_signal())
            .await
            .expect("sticky");
        flight.serve();
        assert!(!flight.is_cut());
    }
}
