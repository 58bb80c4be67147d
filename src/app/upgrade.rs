//! Binary upgrade (SPEC §14): `veer run --upgrade` takes every listening
//! socket (proxy listeners and admin) from the veer running on the same
//! `state_dir`, over the Unix socket `state_dir/veer.sock` (SCM_RIGHTS),
//! the way HAProxy's `-x` and Pingora's graceful upgrade do.
//!
//! The exchange, one line each way:
//!
//! 1. new → old: `veer-upgrade 1`.
//! 2. old → new: a JSON line describing the sockets, with their file
//!    descriptors attached.
//! 3. new → old: `take`, once the new process has read its config, found
//!    a socket for every listener (binding any the old one did not have)
//!    and can start. If it gives up before (a bad config, a port it cannot
//!    bind), it just closes the connection and the old one keeps serving.
//! 4. old → new: `released`, once the old process stopped accepting and
//!    its controller stopped and saved its state; the new one then starts
//!    (and resumes every rollout where the old one left it) and the old
//!    one drains what it still serves and exits.
//!
//! Between 3 and the new process's first accept, connections wait in the
//! sockets' backlog: the sockets never close, so nothing is refused.

use std::io::{self, BufRead, BufReader, IoSlice, IoSliceMut, Write};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use serde::{Deserialize, Serialize};

use crate::config::ListenerSpec;

/// The Unix socket's name in `state_dir`.
pub const SOCKET: &str = "veer.sock";

const HELLO: &str = "veer-upgrade 1";
const TAKE: &str = "take";
const RELEASED: &str = "released";

/// How long either side waits for the other's next line. The old process
/// waits this long for `take` (the new one reads certificates and binds
/// in between); the new one this long for `released` (the old one's
/// controller saves its state in between).
pub const STEP: Duration = Duration::from_secs(30);

/// Where the running veer listens for an upgrade.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET)
}

#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("no running veer to take over from at {path}: {source}")]
    NoneRunning { path: PathBuf, source: io::Error },
    #[error("another veer is running on this state_dir (it answers at {0}); `veer run --upgrade` takes over from it")]
    Running(PathBuf),
    #[error("upgrade socket {path}: {source}")]
    Socket { path: PathBuf, source: io::Error },
    #[error("upgrade exchange with the running veer: {0}")]
    Exchange(io::Error),
    #[error("upgrade exchange with the running veer: {0}")]
    Protocol(String),
}

/// A listening socket, as the exchange describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Described {
    /// `"listener"` or `"admin"`.
    pub kind: String,
    /// The listener's name (none for the admin socket).
    pub name: Option<String>,
    /// The address it was configured with.
    pub listen: SocketAddr,
    /// The address it is bound to.
    pub addr: SocketAddr,
}

#[derive(Debug, Serialize, Deserialize)]
struct Offer {
    pid: u32,
    sockets: Vec<Described>,
}

/// A socket on offer, with its descriptor.
#[derive(Debug)]
pub struct Handed {
    pub described: Described,
    pub fd: OwnedFd,
}

impl Handed {
    pub fn listener(spec: &ListenerSpec, addr: SocketAddr, fd: OwnedFd) -> Handed {
        let described = Described {
            kind: "listener".into(),
            name: Some(spec.name.clone()),
            listen: spec.listen,
            addr,
        };
        Handed { described, fd }
    }

    pub fn admin(listen: SocketAddr, addr: SocketAddr, fd: OwnedFd) -> Handed {
        let described = Described {
            kind: "admin".into(),
            name: None,
            listen,
            addr,
        };
        Handed { described, fd }
    }
}

// The running process's side.

/// Binds `state_dir/veer.sock` for later upgrades. A socket file left by
/// a veer that is gone is replaced; one that a running veer answers on is
/// an error (two processes must not share a `state_dir`).
pub fn bind(state_dir: &Path) -> Result<std::os::unix::net::UnixListener, UpgradeError> {
    let path = path(state_dir);
    let failed = |source| UpgradeError::Socket {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(state_dir).map_err(failed)?;
    if UnixStream::connect(&path).is_ok() {
        return Err(UpgradeError::Running(path));
    }
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(failed(e)),
        _ => {}
    }
    let listener = std::os::unix::net::UnixListener::bind(&path).map_err(failed)?;
    listener.set_nonblocking(true).map_err(failed)?;
    Ok(listener)
}

/// A new process that said `take`: the old one now stops, then tells it
/// [`Taker::released`].
#[derive(Debug)]
pub struct Taker(UnixStream);

impl Taker {
    /// Tells the new process it may start.
    pub fn released(mut self) -> io::Result<()> {
        writeln!(self.0, "{RELEASED}")
    }
}

/// Serves one upgrade request on `stream` (blocking): offers `sockets`
/// and returns the [`Taker`] once the new process says `take`, or why
/// it did not.
pub fn offer(stream: UnixStream, sockets: Vec<Handed>) -> io::Result<Taker> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(STEP))?;
    stream.set_write_timeout(Some(STEP))?;
    let mut reader = BufReader::new(&stream);
    let hello = read_line(&mut reader)?;
    if hello != HELLO {
        return Err(io::Error::other(format!("unexpected greeting {hello:?}")));
    }
    let offer = Offer {
        pid: std::process::id(),
        sockets: sockets.iter().map(|h| h.described.clone()).collect(),
    };
    let mut line = serde_json::to_vec(&offer).map_err(io::Error::other)?;
    line.push(b'\n');
    let fds: Vec<BorrowedFd<'_>> = sockets.iter().map(|h| h.fd.as_fd()).collect();
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("too many sockets for one message"));
    }
    let sent = rustix::net::sendmsg(
        &stream,
        &[IoSlice::new(&line)],
        &mut control,
        SendFlags::empty(),
    )?;
    // The descriptors went with the first byte; the rest is plain data.
    (&stream).write_all(&line[sent..])?;
    match read_line(&mut reader)?.as_str() {
        TAKE => Ok(Taker(stream)),
        other => Err(io::Error::other(format!("unexpected answer {other:?}"))),
    }
}

// The new process's side.

/// The sockets received from the running veer, before `take`.
#[derive(Debug)]
pub struct Taking {
    stream: UnixStream,
    /// The old process's pid.
    pub pid: u32,
    sockets: Vec<Handed>,
}

/// Asks the veer running on `state_dir` for its sockets (blocking).
pub fn connect(state_dir: &Path) -> Result<Taking, UpgradeError> {
    let path = path(state_dir);
    let stream = UnixStream::connect(&path).map_err(|source| UpgradeError::NoneRunning {
        path: path.clone(),
        source,
    })?;
    let exchange = UpgradeError::Exchange;
    stream.set_read_timeout(Some(STEP)).map_err(exchange)?;
    stream.set_write_timeout(Some(STEP)).map_err(exchange)?;
    writeln!(&stream, "{HELLO}").map_err(exchange)?;
    let (line, fds) = receive(&stream).map_err(exchange)?;
    let offer: Offer = serde_json::from_slice(&line)
        .map_err(|e| UpgradeError::Protocol(format!("bad offer: {e}")))?;
    if offer.sockets.len() != fds.len() {
        return Err(UpgradeError::Protocol(format!(
            "{} sockets described, {} received",
            offer.sockets.len(),
            fds.len()
        )));
    }
    let sockets = offer
        .sockets
        .into_iter()
        .zip(fds)
        .map(|(described, fd)| Handed { described, fd })
        .collect();
    Ok(Taking {
        stream,
        pid: offer.pid,
        sockets,
    })
}

/// Reads the offer line and the descriptors that came with it.
fn receive(stream: &UnixStream) -> io::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let (mut line, mut fds) = (Vec::new(), Vec::new());
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(253))];
    let mut buf = [0u8; 16 * 1024];
    while !line.ends_with(b"\n") {
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got = rustix::net::recvmsg(
            stream,
            &mut [IoSliceMut::new(&mut buf)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )?;
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = message {
                fds.extend(received);
            }
        }
        if got.bytes == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        line.extend_from_slice(&buf[..got.bytes]);
        if line.len() > 1 << 20 {
            return Err(io::Error::other("offer too long"));
        }
    }
    line.pop();
    Ok((line, fds))
}

impl Taking {
    /// The socket for `spec`: the old process's listener with the same
    /// configured address (by name first), if any.
    pub fn listener(&mut self, spec: &ListenerSpec) -> Option<std::net::TcpListener> {
        let fits = |d: &Described| {
            d.kind == "listener" && (d.listen == spec.listen || d.addr == spec.listen)
        };
        let at = self
            .sockets
            .iter()
            .position(|h| fits(&h.described) && h.described.name.as_ref() == Some(&spec.name))
            .or_else(|| self.sockets.iter().position(|h| fits(&h.described)))?;
        Some(self.sockets.remove(at).fd.into())
    }

    /// The admin socket, if the old one listened at `listen` too.
    pub fn admin(&mut self, listen: SocketAddr) -> Option<std::net::TcpListener> {
        let at = self.sockets.iter().position(|h| {
            h.described.kind == "admin"
                && (h.described.listen == listen || h.described.addr == listen)
        })?;
        Some(self.sockets.remove(at).fd.into())
    }

    /// Says `take` and waits until the old process has stopped accepting
    /// and saved its state. Sockets not taken are closed here (the old
    /// process closes its copies as it exits).
    pub fn commit(self) -> Result<(), UpgradeError> {
        let exchange = UpgradeError::Exchange;
        writeln!(&self.stream, "{TAKE}").map_err(exchange)?;
        let mut reader = BufReader::new(&self.stream);
        match read_line(&mut reader).map_err(exchange)?.as_str() {
            RELEASED => Ok(()),
            other => Err(UpgradeError::Protocol(format!(
                "unexpected answer {other:?}"
            ))),
        }
    }
}

fn read_line<R: BufRead>(reader: &mut R) -> io::Result<String> {
    let mut line = String::new();
    let mut limited = io::Read::take(reader, 4096);
    if limited.read_line(&mut line)? == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(line.trim_end().to_string())
}
