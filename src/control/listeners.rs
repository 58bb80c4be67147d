//! The set of running listeners, changed by a reload: a listener whose
//! name, address and TLS on/off did not change keeps its socket and its
//! connections (new TLS settings and certificates are swapped in); a new
//! one is bound before the new config is published; a removed one stops
//! accepting and closes its connections gracefully.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ListenerSpec;
use crate::observe::Telemetry;
use crate::proxy::Serving;
use crate::routing::Routing;
use crate::shutdown::HandOver;
use crate::tls::listener::Live;
use crate::tls::{ServerTls, TlsError};
use crate::workers::Workers;

/// Binds a listener's socket (non-blocking). Handed in by the binary: the
/// library never binds on its own.
pub type Bind = Arc<dyn Fn(&ListenerSpec) -> io::Result<std::net::TcpListener> + Send + Sync>;

/// A listener being served.
#[derive(Debug)]
struct Running {
    spec: ListenerSpec,
    /// Cancelling it stops this listener alone (a child of the process's
    /// token, so shutdown stops it too).
    stop: CancellationToken,
    /// Its certificates, swapped on reload.
    tls: Option<Arc<ServerTls>>,
    /// The listening socket (a duplicate of the one accepting), to hand
    /// to a new process; `None` once let go at shutdown.
    socket: Option<(SocketAddr, OwnedFd)>,
}

/// A listening socket for a new process (`veer run --upgrade`).
#[derive(Debug)]
pub struct Socket {
    pub spec: ListenerSpec,
    /// Its address (the configured one may have port 0).
    pub addr: SocketAddr,
    pub fd: OwnedFd,
}

/// New sockets bound for a config not yet published. Dropping it unused
/// closes them.
#[derive(Debug, Default)]
pub struct Plan {
    /// Kept listeners, with their new spec and TLS material.
    keep: Vec<(ListenerSpec, Option<Live>)>,
    start: Vec<(ListenerSpec, TcpListener, Option<Arc<ServerTls>>)>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.start.is_empty()
    }
}

pub struct ListenerSet {
    routing: Arc<Routing>,
    telemetry: Arc<Telemetry>,
    /// Cancelled when the whole process shuts down.
    server_stop: CancellationToken,
    tracker: TaskTracker,
    bind: Option<Bind>,
    running: Vec<Running>,
    workers: Workers,
    handover: HandOver,
}

impl ListenerSet {
    /// `bind` is used for listeners added by a reload; without it such a
    /// reload is refused.
    pub fn new(
        routing: Arc<Routing>,
        telemetry: Arc<Telemetry>,
        server_stop: CancellationToken,
        tracker: TaskTracker,
        workers: Workers,
        bind: Option<Bind>,
        handover: HandOver,
    ) -> ListenerSet {
        ListenerSet {
            routing,
            telemetry,
            server_stop,
            tracker,
            bind,
            running: Vec::new(),
            workers,
            handover,
        }
    }

    /// Serves an already bound listener. A TLS listener whose
    /// certificates cannot be read is not served (the error is logged;
    /// `veer run` checks them first).
    pub fn serve(&mut self, listener: TcpListener, spec: &ListenerSpec) {
        match ServerTls::for_listener(spec, &self.telemetry) {
            Ok(tls) => self.serve_with(listener, spec, tls),
            Err(e) => tracing::error!(error = %e, "listener not served"),
        }
    }

    fn serve_with(
        &mut self,
        listener: TcpListener,
        spec: &ListenerSpec,
        tls: Option<Arc<ServerTls>>,
    ) {
        let stop = self.server_stop.child_token();
        tracing::info!(listener = %spec.name, addr = ?listener.local_addr().ok(), "serving");
        let socket = match (listener.local_addr(), listener.as_fd().try_clone_to_owned()) {
            (Ok(addr), Ok(fd)) => Some((addr, fd)),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(listener = %spec.name, error = %e, "this listener cannot be handed to an upgrade");
                None
            }
        };
        let serving = Serving {
            routing: self.routing.clone(),
            telemetry: self.telemetry.clone(),
            handover: self.handover.clone(),
        };
        let task = crate::proxy::serve(
            listener,
            serving,
            tls.clone(),
            stop.clone(),
            self.tracker.clone(),
            self.workers.clone(),
        );
        self.tracker.spawn(task);
        self.running.push(Running {
            spec: spec.clone(),
            stop,
            tls,
            socket,
        });
    }

    /// The listening sockets, duplicated, for a new process.
    pub fn sockets(&self) -> io::Result<Vec<Socket>> {
        let mut sockets = Vec::new();
        for running in &self.running {
            if let Some((addr, fd)) = &running.socket {
                sockets.push(Socket {
                    spec: running.spec.clone(),
                    addr: *addr,
                    fd: fd.try_clone()?,
                });
            }
        }
        Ok(sockets)
    }

    /// Lets go of the duplicated sockets, so that once the accept loops
    /// stop, the sockets close (new connections are refused at shutdown
    /// rather than left waiting in the backlog).
    pub fn release(&mut self) {
        for running in &mut self.running {
            running.socket = None;
        }
    }

    /// Binds the sockets `specs` needs that are not open yet.
    pub fn plan(&self, specs: &[ListenerSpec]) -> io::Result<Plan> {
        let mut plan = Plan::default();
        for spec in specs {
            if let Some(running) = self.running.iter().find(|r| same_socket(&r.spec, spec)) {
                let live = match (&running.tls, &spec.tls) {
                    (Some(_), Some(tls)) => {
                        Some(crate::tls::listener::build(tls).map_err(|e| {
                            io::Error::other(format!("listener {:?}: {e}", spec.name))
                        })?)
                    }
                    _ => None,
                };
                plan.keep.push((spec.clone(), live));
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
            let tls = ServerTls::for_listener(spec, &self.telemetry)
                .map_err(|e| io::Error::other(e.to_string()))?;
            plan.start.push((spec.clone(), listener, tls));
        }
        Ok(plan)
    }

    /// Starts the planned listeners, swaps new TLS material into kept
    /// ones and stops those no longer wanted.
    pub fn apply(&mut self, plan: Plan) {
        let (mut keep, gone): (Vec<Running>, Vec<Running>) = std::mem::take(&mut self.running)
            .into_iter()
            .partition(|r| plan.keep.iter().any(|(s, _)| s.name == r.spec.name));
        for (spec, live) in plan.keep {
            let Some(running) = keep.iter_mut().find(|r| r.spec.name == spec.name) else {
                continue;
            };
            if let (Some(tls), Some(live)) = (&running.tls, live) {
                if tls.install(live) {
                    self.telemetry.tls.record_cert_reload(true);
                    tracing::info!(listener = %spec.name, "TLS certificates reloaded");
                }
            }
            running.spec = spec;
        }
        self.running = keep;
        for old in gone {
            tracing::info!(listener = %old.spec.name, "listener removed by reload, closing");
            old.stop.cancel();
        }
        for (spec, listener, tls) in plan.start {
            self.serve_with(listener, &spec, tls);
        }
    }

    /// Re-reads the certificates of every TLS listener (their files
    /// changed). Returns, per listener, whether new ones now serve, or why
    /// the old ones still do.
    pub fn reload_certs(&self) -> Vec<(String, Result<bool, TlsError>)> {
        self.running
            .iter()
            .filter_map(|r| r.tls.as_ref())
            .map(|tls| (tls.listener.clone(), tls.reload()))
            .collect()
    }
}

/// A listener that keeps its socket across a reload: same name, address,
/// and TLS on or off.
fn same_socket(old: &ListenerSpec, new: &ListenerSpec) -> bool {
    old.name == new.name && old.listen == new.listen && old.tls.is_some() == new.tls.is_some()
}

/// The listeners, as the admin API and the upgrade reach them.
impl super::Control {
    /// Serves an already bound listener.
    pub async fn serve(
        &self,
        listener: tokio::net::TcpListener,
        spec: &crate::config::ListenerSpec,
    ) {
        self.inner.lock().await.listeners.serve(listener, spec);
    }

    /// The listening sockets, duplicated, for a new process.
    pub async fn sockets(&self) -> std::io::Result<Vec<Socket>> {
        self.inner.lock().await.listeners.sockets()
    }

    /// Lets go of the duplicated listening sockets (at shutdown).
    pub async fn release_sockets(&self) {
        self.inner.lock().await.listeners.release();
    }
}
