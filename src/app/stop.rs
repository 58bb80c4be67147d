//! Stopping: graceful shutdown (SPEC §10) and handing the listening
//! sockets to a new process (SPEC §14, [`super::upgrade`]).

use std::time::Duration;

use super::{upgrade, App, SETTLE};

impl App {
    /// [`App::stop`] with the `shutdown_delay` and `shutdown_grace` of the
    /// config serving now; logs what had to be cut at the grace period.
    pub async fn stop_as_configured(self) {
        let settings = self.routing.load().config.proxy.clone();
        tracing::info!(delay = ?settings.shutdown_delay, grace = ?settings.shutdown_grace, "shutting down");
        if !self
            .stop(settings.shutdown_delay, settings.shutdown_grace)
            .await
        {
            tracing::warn!("shutdown grace period ended with requests, responses or tunnels still open; they were cut");
        }
    }

    /// Graceful shutdown (SPEC §10): readiness turns false, then after
    /// `delay` the listeners close and connections close gracefully (idle
    /// HTTP/1 ones at once, busy ones answer with `Connection: close`, h2
    /// ones get GOAWAY). Every pool drains: requests, streaming response
    /// bodies and tunnels (WebSocket) get up to `grace` to finish, then
    /// what is left is cut, and each pool's `drained` event comes once its
    /// connections are closed. Returns false when something had to be cut
    /// or connections were still open. The controller persists its state
    /// on the way out; the admin API stops last.
    pub async fn stop(mut self, delay: Duration, grace: Duration) -> bool {
        self.control.release_sockets().await;
        drop(self.admin_socket.take());
        self.shutdown.begin(delay).await;
        self.finish(grace).await
    }

    /// The listening sockets (duplicated) for a new process
    /// (`veer run --upgrade`).
    pub async fn sockets(&self) -> std::io::Result<Vec<upgrade::Handed>> {
        let mut sockets: Vec<upgrade::Handed> = (self.control.sockets().await?)
            .into_iter()
            .map(|s| upgrade::Handed::listener(&s.spec, s.addr, s.fd))
            .collect();
        if let Some((listen, addr, fd)) = &self.admin_socket {
            sockets.push(upgrade::Handed::admin(*listen, *addr, fd.try_clone()?));
        }
        Ok(sockets)
    }

    /// Stops after a new process took the listening sockets (SPEC §14):
    /// accepting stops at once (the sockets stay open in the new
    /// process), the controller saves its state, then `released` tells
    /// the new process to start. What is in flight finishes as on
    /// [`App::stop`]; idle HTTP/1 connections stay open until their next
    /// request, answered with `Connection: close`, so no client meets a
    /// closed connection. Returns as [`App::stop`] does.
    pub async fn hand_over(mut self, released: impl FnOnce()) -> bool {
        let grace = self.routing.load().config.proxy.shutdown_grace;
        self.shutdown.handover.start();
        self.control.release_sockets().await;
        drop(self.admin_socket.take());
        // The admin API answers from the new process now.
        self.stop_admin.cancel();
        self.shutdown.begin(Duration::ZERO).await;
        self.controller_stopped.cancelled().await;
        released();
        self.finish(grace).await
    }

    /// The rest of a shutdown once accepting stopped: drains, then waits
    /// for connections, up to `grace`.
    async fn finish(self, grace: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + grace;
        let snapshot = self.routing.load_full();
        let cut = self.drains.shutdown(&snapshot, deadline).await;
        if !cut.is_empty() {
            tracing::warn!(
                streams = cut.streams,
                tunnels = cut.tunnels,
                "shutdown_grace reached: cut what was still in flight"
            );
        }
        // Nothing is in flight upstream any more; client connections
        // finish writing what they have (a client that does not read is
        // not waited for beyond the grace period).
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let finished = self.shutdown.wait(left.max(SETTLE)).await;
        self.stop_drains.cancel();
        for task in self.drain_tasks {
            let _ = task.await;
        }
        self.drains.close().await;
        self.workers.stop();
        self.stop_admin.cancel();
        if let Some(admin) = self.admin {
            let _ = admin.await;
        }
        finished && cut.is_empty()
    }

    /// [`App::stop`] at once.
    pub async fn shutdown(self, grace: Duration) -> bool {
        self.stop(Duration::ZERO, grace).await
    }
}
