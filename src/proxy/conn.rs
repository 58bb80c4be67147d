//! One downstream connection: what it is doing now (idle, reading a
//! request head, busy) so that slow and idle clients can be cut off, and
//! the I/O wrapper that notices the first byte of a new request.
//!
//! hyper's own `header_read_timeout` also runs while a keep-alive
//! connection waits for its next request, which would make the idle
//! timeout meaningless; veer tracks both itself instead.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::framing::Framing;

const IDLE: u64 = 0;
const HEAD: u64 = 1;
const BUSY: u64 = 2;
const PHASE_BITS: u32 = 2;

/// Shared between the connection's I/O, its requests and its watchdog.
#[derive(Debug)]
pub struct ConnState {
    opened: Instant,
    /// Requests whose responses are not finished.
    in_flight: AtomicU32,
    /// Phase in the low bits, milliseconds since `opened` above them.
    phase: AtomicU64,
    /// The number of the first ambiguously framed request head read from
    /// the wire (see [`super::framing`]); `u32::MAX`: none.
    ambiguous: AtomicU32,
    /// Requests handed to the service so far (their numbers).
    requests: AtomicU32,
    /// The connection was upgraded: the rest of its bytes are a tunnel.
    upgraded: AtomicBool,
    /// The next response closes the HTTP/1 connection (the listening
    /// sockets went to a new process).
    close_next: AtomicBool,
    /// Since when writes could not finish (the client is not reading):
    /// milliseconds since `opened`, plus one; 0 while writes go through.
    /// hyper may still hold response bytes.
    write_blocked: AtomicU64,
}

/// What the watchdog should do with a connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Check again at this instant.
    Wait(Instant),
    /// No request for `idle_timeout`: close gracefully.
    Idle,
    /// Idle for the park delay with nothing left to write: the HTTP/1
    /// connection's buffers can be let go until the next request.
    Park,
    /// A request head took longer than `header_timeout`: close now.
    SlowHead,
    /// The client took no response bytes for `send_timeout`: close now.
    SlowReader,
}

/// The connection timeouts the watchdog applies.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header: Duration,
    pub idle: Duration,
    pub send: Duration,
}

impl ConnState {
    pub fn new() -> Arc<ConnState> {
        Arc::new(ConnState {
            opened: Instant::now(),
            in_flight: AtomicU32::new(0),
            phase: AtomicU64::new(IDLE),
            ambiguous: AtomicU32::new(u32::MAX),
            requests: AtomicU32::new(0),
            upgraded: AtomicBool::new(false),
            close_next: AtomicBool::new(false),
            write_blocked: AtomicU64::new(0),
        })
    }

    fn set(&self, phase: u64, at: Instant) {
        let ms = at.saturating_duration_since(self.opened).as_millis() as u64;
        self.phase
            .store(ms << PHASE_BITS | phase, Ordering::Release);
    }

    fn get(&self) -> (u64, Instant) {
        let raw = self.phase.load(Ordering::Acquire);
        (
            raw & ((1 << PHASE_BITS) - 1),
            self.opened + Duration::from_millis(raw >> PHASE_BITS),
        )
    }

    /// A new HTTP/1 connection: its first request head is due within the
    /// header timeout, so a client that connects and stays silent is
    /// closed after `header_timeout`, not `idle_timeout`.
    pub fn await_first_head(&self) {
        self.set(HEAD, Instant::now());
    }

    /// A request arrived; the connection is busy until the guard drops.
    pub fn begin(self: &Arc<Self>) -> Activity {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.phase.store(BUSY, Ordering::Release);
        Activity(self.clone())
    }

    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Bytes arrived: if the connection was idle, a request head starts
    /// now.
    fn on_read(&self) {
        if self.phase.load(Ordering::Relaxed) & ((1 << PHASE_BITS) - 1) == IDLE {
            self.set(HEAD, Instant::now());
        }
    }

    /// When an idle connection reaches its idle timeout.
    pub fn idle_deadline(&self, idle_timeout: Duration) -> Instant {
        self.get().1 + idle_timeout
    }

    fn on_write<T>(&self, res: &Poll<T>) {
        let blocked = self.write_blocked.load(Ordering::Relaxed) != 0;
        match (res.is_pending(), blocked) {
            (true, false) => {
                let ms = Instant::now()
                    .saturating_duration_since(self.opened)
                    .as_millis();
                self.write_blocked.store(ms as u64 + 1, Ordering::Release);
            }
            (false, true) => self.write_blocked.store(0, Ordering::Release),
            _ => {}
        }
    }

    /// Since when the client has taken no bytes, if it is not reading.
    fn blocked_since(&self) -> Option<Instant> {
        match self.write_blocked.load(Ordering::Acquire) {
            0 => None,
            ms => Some(self.opened + Duration::from_millis(ms - 1)),
        }
    }

    /// Numbers the next request on the connection (HTTP/1 serves them in
    /// the order their heads arrived).
    pub fn next_request(&self) -> u32 {
        self.requests.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether HTTP/1 request number `request` (or one before it) carried
    /// both `Content-Length` and `Transfer-Encoding`.
    pub fn ambiguous(&self, request: u32) -> bool {
        request >= self.ambiguous.load(Ordering::Acquire)
    }

    /// The next response says `Connection: close` (and hyper closes the
    /// connection after it).
    pub fn close_after_next(&self) {
        self.close_next.store(true, Ordering::Release);
    }

    /// Whether the response being made closes the connection.
    pub fn closes_after_this(&self) -> bool {
        self.close_next.load(Ordering::Acquire)
    }

    /// The connection was upgraded: stop looking for request heads.
    pub fn set_upgraded(&self) {
        self.upgraded.store(true, Ordering::Relaxed);
    }

    /// What to do now; `park_after` is the park delay (`None`: never park).
    pub fn check(&self, now: Instant, t: Timeouts, park_after: Option<Duration>) -> Verdict {
        let (header_timeout, idle_timeout) = (t.header, t.idle);
        let (phase, since) = self.get();
        // With parking on, look often enough to park soon after going idle.
        let every = park_after.map_or(header_timeout, |p| header_timeout.min(p));
        if let Some(blocked) = self.blocked_since() {
            if now >= blocked + t.send {
                return Verdict::SlowReader;
            }
        }
        if self.in_flight() > 0 {
            let next = now + every.min(idle_timeout);
            let send = self.blocked_since().map_or(next, |b| b + t.send);
            return Verdict::Wait(next.min(send));
        }
        match phase {
            IDLE if now >= since + idle_timeout => Verdict::Idle,
            IDLE => match park_after {
                Some(after) if now < since + after => Verdict::Wait(since + after),
                Some(_) if self.blocked_since().is_none() => Verdict::Park,
                _ => Verdict::Wait(since + idle_timeout),
            },
            HEAD if now >= since + header_timeout => Verdict::SlowHead,
            HEAD => Verdict::Wait(since + header_timeout),
            _ => Verdict::Wait(now + every.min(idle_timeout)),
        }
    }
}

/// Marks a request in flight on its connection; dropped when the response
/// body is finished (or abandoned).
#[derive(Debug)]
pub struct Activity(Arc<ConnState>);

impl Drop for Activity {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.set(IDLE, Instant::now());
        }
    }
}

pin_project_lite::pin_project! {
    /// A socket that reports reads to its [`ConnState`].
    pub struct TrackedIo<T> {
        #[pin]
        inner: T,
        state: Arc<ConnState>,
        framing: Framing,
        // Bytes read already (and tracked) that are read again first.
        unread: Bytes,
    }
}

impl<T> TrackedIo<T> {
    /// `http1`: the connection speaks HTTP/1, whose request framing is
    /// followed (see [`super::framing`]).
    pub fn new(inner: T, state: Arc<ConnState>, http1: bool) -> Self {
        let mut framing = Framing::default();
        if !http1 {
            framing.stop();
        }
        TrackedIo {
            inner,
            state,
            framing,
            unread: Bytes::new(),
        }
    }

    /// Puts bytes read before back in front of the stream, ahead of any
    /// put back earlier (they are not tracked a second time).
    pub fn unread(&mut self, bytes: Bytes) {
        if self.unread.is_empty() {
            self.unread = bytes;
        } else if !bytes.is_empty() {
            let mut both = bytes.to_vec();
            both.extend_from_slice(&self.unread);
            self.unread = both.into();
        }
    }
}

impl<T: AsyncRead> AsyncRead for TrackedIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        if !this.unread.is_empty() {
            let n = this.unread.len().min(buf.remaining());
            buf.put_slice(&this.unread[..n]);
            this.unread.advance(n);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let res = this.inner.poll_read(cx, buf);
        if buf.filled().len() > before {
            this.state.on_read();
            if this.state.upgraded.load(Ordering::Relaxed) {
                this.framing.stop();
            }
            this.framing.feed(&buf.filled()[before..]);
            if let Some(n) = this.framing.ambiguous {
                this.state.ambiguous.store(n, Ordering::Release);
            }
        }
        res
    }
}

impl<T: AsyncWrite> AsyncWrite for TrackedIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let res = this.inner.poll_write(cx, buf);
        this.state.on_write(&res);
        res
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let res = this.inner.poll_write_vectored(cx, bufs);
        this.state.on_write(&res);
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let res = this.inner.poll_flush(cx);
        this.state.on_write(&res);
        res
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD_T: Duration = Duration::from_secs(10);
    const IDLE_T: Duration = Duration::from_secs(60);
    const T: Timeouts = Timeouts {
        header: HEAD_T,
        idle: IDLE_T,
        send: Duration::from_secs(30),
    };

    #[tokio::test]
    async fn unread_bytes_come_first_newest_in_front() {
        use tokio::io::AsyncReadExt;
        let mut io = TrackedIo::new(&b" tail"[..], ConnState::new(), true);
        io.unread(Bytes::from_static(b"ab"));
        io.unread(Bytes::from_static(b"xy"));
        let mut out = String::new();
        io.read_to_string(&mut out).await.unwrap();
        assert_eq!(out, "xyab tail");
    }

    #[tokio::test(start_paused = true)]
    async fn idle_then_head_then_busy() {
        let state = ConnState::new();
        let t0 = Instant::now();
        assert_eq!(state.check(t0, T, None), Verdict::Wait(t0 + IDLE_T));
        tokio::time::advance(Duration::from_secs(5)).await;
        state.on_read();
        let t1 = Instant::now();
        assert_eq!(state.check(t1, T, None), Verdict::Wait(t1 + HEAD_T));
        assert_eq!(state.check(t1 + HEAD_T, T, None), Verdict::SlowHead);
        let activity = state.begin();
        assert!(matches!(
            state.check(t1 + IDLE_T * 2, T, None),
            Verdict::Wait(_)
        ));
        tokio::time::advance(Duration::from_secs(1)).await;
        drop(activity);
        let t2 = Instant::now();
        assert_eq!(state.check(t2 + IDLE_T, T, None), Verdict::Idle);
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_cut_off() {
        let state = ConnState::new();
        let _busy = state.begin();
        state.on_write(&Poll::<()>::Pending);
        let t0 = Instant::now();
        assert!(matches!(state.check(t0, T, None), Verdict::Wait(at) if at <= t0 + T.send));
        assert_eq!(state.check(t0 + T.send, T, None), Verdict::SlowReader);
        // A write that goes through resets the clock.
        state.on_write(&Poll::Ready(()));
        assert!(matches!(
            state.check(t0 + T.send, T, None),
            Verdict::Wait(_)
        ));
    }
}
