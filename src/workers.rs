//! `workers = N`: N single-threaded runtimes, one per thread, instead of
//! one work-stealing runtime.
//!
//! Worker 0 is the runtime `veer run` starts on (it also runs the accept
//! loops, the admin API and the controller); workers 1..N each run on a
//! thread of their own. Each accepted client connection is handed to the
//! next worker in turn and lives there for good: its task, its socket's
//! readiness and the upstream connections it opens all stay on one thread,
//! so a request never crosses threads (the multi-thread scheduler moves
//! tasks between threads and wakes across them; with one worker the
//! current-thread runtime measured +40% requests/s over it).
//!
//! The hand-off costs one cross-thread spawn per connection, not per
//! request. Upstream connections remember the worker they were opened on,
//! and a worker takes its own idle ones first (see `upstream::client`).

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::net::TcpStream;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;

thread_local! {
    static INDEX: Cell<usize> = const { Cell::new(0) };
}

/// The worker the calling thread belongs to (0 outside extra workers).
pub fn index() -> usize {
    INDEX.with(Cell::get)
}

/// The extra workers, shared by every listener. Cloning is cheap.
#[derive(Clone, Default)]
pub struct Workers {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    handles: Vec<Handle>,
    next: AtomicUsize,
    /// Dropping a sender ends its worker's runtime.
    stops: Mutex<Vec<oneshot::Sender<()>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("count", &self.count())
            .finish()
    }
}

impl Workers {
    /// Starts `count - 1` worker threads beside the calling one (which is
    /// worker 0). `count` of 0 or 1 starts none.
    pub fn start(count: usize) -> io::Result<Workers> {
        if count <= 1 {
            return Ok(Workers::default());
        }
        let mut handles = Vec::new();
        let mut stops = Vec::new();
        let mut threads = Vec::new();
        for index in 1..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(runtime.handle().clone());
            let (stop, stopped) = oneshot::channel::<()>();
            stops.push(stop);
            let thread = std::thread::Builder::new()
                .name(format!("veer-worker-{index}"))
                .spawn(move || {
                    INDEX.with(|i| i.set(index));
                    runtime.block_on(async {
                        let _ = stopped.await;
                    });
                })?;
            threads.push(thread);
        }
        Ok(Workers {
            inner: Some(Arc::new(Inner {
                handles,
                next: AtomicUsize::new(0),
                stops: Mutex::new(stops),
                threads: Mutex::new(threads),
            })),
        })
    }

    /// Number of workers, worker 0 included.
    pub fn count(&self) -> usize {
        self.inner.as_ref().map_or(1, |i| i.handles.len() + 1)
    }

    /// Serves an accepted connection on the next worker in turn: `serve`
    /// gets the stream registered with that worker's runtime. Tracked by
    /// `tracker` wherever it runs.
    pub fn spawn_conn<F, Fut>(&self, stream: TcpStream, tracker: &TaskTracker, serve: F)
    where
        F: FnOnce(TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let Some(inner) = &self.inner else {
            tracker.spawn(serve(stream));
            return;
        };
        let n = inner.next.fetch_add(1, Ordering::Relaxed) % (inner.handles.len() + 1);
        if n == 0 {
            tracker.spawn(serve(stream));
            return;
        }
        // Re-registered with the target worker's reactor over there.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "handing a connection to a worker failed");
                return;
            }
        };
        inner.handles[n - 1].spawn(tracker.track_future(async move {
            match TcpStream::from_std(stream) {
                Ok(stream) => serve(stream).await,
                Err(e) => tracing::debug!(error = %e, "registering a connection failed"),
            }
        }));
    }

    /// Ends the worker threads (after the tracked connections finished:
    /// whatever still runs there is dropped).
    pub fn stop(&self) {
        let Some(inner) = &self.inner else { return };
        inner.stops.lock().unwrap().clear();
        for thread in inner.threads.lock().unwrap().drain(..) {
            let _ = thread.join();
        }
    }
}
