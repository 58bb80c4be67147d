//! Where `veer run` gets its listening sockets: from the veer it upgrades
//! (`--upgrade`, see [`super::upgrade`]), from systemd (`LISTEN_FDS`
//! socket activation), else bound here. Called by the binary only: the
//! library never binds or reads the environment on its own.

use std::io;
use std::net::{SocketAddr, TcpListener};

use crate::config::{Config, ListenerSpec};

use super::upgrade::Taking;

/// Where a listener's socket may come from before it is bound.
pub enum Source<'a> {
    Bind,
    Upgrade(&'a mut Taking),
    Activated(Activated),
}

impl Source<'_> {
    fn listener(&mut self, spec: &ListenerSpec) -> Option<TcpListener> {
        match self {
            Source::Bind => None,
            Source::Upgrade(taking) => taking.listener(spec),
            Source::Activated(activated) => activated.take(&spec.name, spec.listen),
        }
    }

    fn admin(&mut self, listen: SocketAddr) -> Option<TcpListener> {
        match self {
            Source::Bind => None,
            Source::Upgrade(taking) => taking.admin(listen),
            Source::Activated(activated) => activated.take("admin", listen),
        }
    }
}

/// The listening sockets `config` needs, non-blocking: from `source`
/// where it has them, else bound. Returns the listeners in config order
/// and the admin listener.
pub fn acquire(
    config: &Config,
    mut source: Source<'_>,
) -> io::Result<(Vec<TcpListener>, TcpListener)> {
    let mut listeners = Vec::new();
    for spec in &config.listeners {
        let listener = match source.listener(spec) {
            Some(listener) => listener,
            None => TcpListener::bind(spec.listen).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("listener {:?}: binding {}: {e}", spec.name, spec.listen),
                )
            })?,
        };
        listener.set_nonblocking(true)?;
        listeners.push(listener);
    }
    let listen = config.admin.listen;
    let admin = match source.admin(listen) {
        Some(listener) => listener,
        None => TcpListener::bind(listen).map_err(|e| {
            io::Error::new(e.kind(), format!("[admin] listen: binding {listen}: {e}"))
        })?,
    };
    admin.set_nonblocking(true)?;
    if let Source::Activated(activated) = source {
        for (name, addr, _) in activated.0 {
            tracing::warn!(?name, %addr, "socket from systemd matches no listener; closed");
        }
    }
    Ok((listeners, admin))
}

/// Sockets systemd passed (`LISTEN_FDS`, `LISTEN_PID`), each with its
/// `FileDescriptorName=` from `LISTEN_FDNAMES`. A listener takes the one
/// named like it (`admin` for the admin listener), else the one bound to
/// exactly its configured address.
pub struct Activated(Vec<(Option<String>, SocketAddr, TcpListener)>);

impl Activated {
    /// The sockets passed to this process, if any (the variables are
    /// removed, so child processes do not see them).
    pub fn from_env() -> io::Result<Option<Activated>> {
        let names = std::env::var("LISTEN_FDNAMES").ok();
        let mut fds = listenfd::ListenFd::from_env();
        if fds.len() == 0 {
            return Ok(None);
        }
        let names: Vec<&str> = names
            .as_deref()
            .map_or(Vec::new(), |n| n.split(':').collect());
        let mut sockets = Vec::new();
        for i in 0..fds.len() {
            let listener = fds
                .take_tcp_listener(i)
                .map_err(|e| io::Error::new(e.kind(), format!("LISTEN_FDS socket {i}: {e}")))?;
            if let Some(listener) = listener {
                let name = names.get(i).filter(|n| !n.is_empty() && **n != "unknown");
                let addr = listener.local_addr()?;
                tracing::info!(?name, %addr, "socket from systemd");
                sockets.push((name.map(|n| n.to_string()), addr, listener));
            }
        }
        Ok(Some(Activated(sockets)))
    }

    fn take(&mut self, name: &str, listen: SocketAddr) -> Option<TcpListener> {
        let at = self
            .0
            .iter()
            .position(|(n, _, _)| n.as_deref() == Some(name))
            .or_else(|| self.0.iter().position(|(_, addr, _)| *addr == listen))?;
        Some(self.0.remove(at).2)
    }
}
