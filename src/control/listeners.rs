//! The set of running listeners, changed by a reload: a listener whose
//! name, address and TLS settings did not change keeps its socket and its
//! connections; a new one is bound before the new config is published; a
//! removed one stops accepting and closes its connections gracefully.

use std::io;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use crate::config::ListenerSpec;
use crate::routing::Routing;
use crate::server::Server;

/// Binds a listener's socket (non-blocking). Handed in by the binary: the
/// library never binds on its own.
pub type Bind = Arc<dyn Fn(&ListenerSpec) -> io::Result<std::net::TcpListener> + Send + Sync>;

/// A listener being served.
#[derive(Debug)]
struct Running {
    spec: ListenerSpec,
    /// Turning it true stops this listener alone.
    stop: watch::Sender<bool>,
}

/// New sockets bound for a config not yet published. Dropping it unused
/// closes them.
#[derive(Debug, Default)]
pub struct Plan {
    keep: Vec<String>,
    start: Vec<(ListenerSpec, TcpListener)>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.start.is_empty()
    }
}

pub struct ListenerSet {
    routing: Arc<Routing>,
    server_stop: watch::Receiver<bool>,
    tracker: TaskTracker,
    bind: Option<Bind>,
    running: Vec<Running>,
}

impl ListenerSet {
    /// `bind` is used for listeners added by a reload; without it such a
    /// reload is refused.
    pub fn new(server: &Server, bind: Option<Bind>) -> ListenerSet {
        ListenerSet {
            routing: server.routing.clone(),
            server_stop: server.shutdown_receiver(),
            tracker: server.tracker().clone(),
            bind,
            running: Vec::new(),
        }
    }

    /// Serves an already bound listener.
    pub fn serve(&mut self, listener: TcpListener, spec: &ListenerSpec) {
        let (stop, mut stopped) = watch::channel(false);
        let (close, closing) = watch::channel(false);
        let mut server_stop = self.server_stop.clone();
        self.tracker.spawn(async move {
            let alone = async {
                let gone = stopped.wait_for(|s| *s).await.is_err();
                if gone {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                () = crate::admin::stopped(&mut server_stop) => {}
                () = alone => {}
            }
            let _ = close.send(true);
        });
        tracing::info!(listener = %spec.name, addr = ?listener.local_addr().ok(), "serving");
        let task = crate::proxy::serve(
            listener,
            self.routing.clone(),
            spec.tls.is_some(),
            closing,
            self.tracker.clone(),
        );
        self.tracker.spawn(task);
        self.running.push(Running {
            spec: spec.clone(),
            stop,
        });
    }

    /// Binds the sockets `specs` needs that are not open yet.
    pub fn plan(&self, specs: &[ListenerSpec]) -> io::Result<Plan> {
        let mut plan = Plan::default();
        for spec in specs {
            if self.running.iter().any(|r| r.spec == *spec) {
                plan.keep.push(spec.name.clone());
                continue;
            }
            let Some(bind) = &self.bind else {
                return Err(io::Error::other(format!(
                    "listener {:?}: listener changes need a restart here",
                    spec.name
                )));
            };
            let listener = bind(spec).and_then(TcpListener::from_std).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("listener {:?}: binding {}: {e}", spec.name, spec.listen),
                )
            })?;
            plan.start.push((spec.clone(), listener));
        }
        Ok(plan)
    }

    /// Starts the planned listeners and stops those no longer wanted.
    pub fn apply(&mut self, plan: Plan) {
        let (keep, gone): (Vec<Running>, Vec<Running>) = std::mem::take(&mut self.running)
            .into_iter()
            .partition(|r| plan.keep.contains(&r.spec.name));
        self.running = keep;
        for old in gone {
            tracing::info!(listener = %old.spec.name, "listener removed by reload, closing");
            let _ = old.stop.send(true);
        }
        for (spec, listener) in plan.start {
            self.serve(listener, &spec);
        }
    }
}
