//! `[proxy]` and `[admin]`: process-wide settings, limits and timeouts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::{Check, SECOND};
use crate::config::file::{AdminFile, ProxyFile};
use crate::config::model::{AdminSettings, LogFormat, ProxySettings};

/// hyper refuses HTTP/1 read buffers smaller than this.
const MIN_HEADER_BYTES: usize = 8192;
/// Client connections per listener unless `max_connections` says.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16384;
/// More worker runtimes than this is a typo, not a machine.
pub const MAX_WORKERS: usize = 1024;

impl Check<'_> {
    pub(super) fn proxy(&mut self, p: &ProxyFile) -> ProxySettings {
        let cores = || std::thread::available_parallelism().map_or(1, |n| n.get());
        let workers = match p.workers.as_ref().map(|n| (*n.get_ref(), n.span())) {
            Some((0, _)) | None => cores(),
            Some((n, span)) if n > MAX_WORKERS => {
                let msg = format!("{n} is more than {MAX_WORKERS} (0 = one per core)");
                self.err(span, "proxy.workers", msg);
                cores()
            }
            Some((n, _)) => n,
        };
        let state_dir = match &p.state_dir {
            Some(dir) if dir.get_ref().is_empty() => {
                self.err(dir.span(), "proxy.state_dir", "must not be empty");
                PathBuf::new()
            }
            Some(dir) => {
                let path = self.resolve(dir.get_ref());
                if std::fs::metadata(&path).is_ok_and(|m| !m.is_dir()) {
                    let msg = format!("{} exists and is not a directory", path.display());
                    self.err(dir.span(), "proxy.state_dir", msg);
                }
                path
            }
            None => self.resolve("state"),
        };
        let max_header_bytes = match &p.max_header_bytes {
            Some(n) if *n.get_ref() < MIN_HEADER_BYTES => {
                let msg = format!("must be at least {MIN_HEADER_BYTES}");
                self.err(n.span(), "proxy.max_header_bytes", msg);
                MIN_HEADER_BYTES
            }
            Some(n) => *n.get_ref(),
            None => 65536,
        };
        ProxySettings {
            workers,
            shutdown_grace: self.duration(&p.shutdown_grace, "proxy.shutdown_grace", 30 * SECOND),
            shutdown_delay: self.duration(
                &p.shutdown_delay,
                "proxy.shutdown_delay",
                Duration::ZERO,
            ),
            drain_timeout: self.duration(&p.drain_timeout, "proxy.drain_timeout", 30 * SECOND),
            state_dir,
            header_timeout: self.nonzero_duration(
                &p.header_timeout,
                "proxy.header_timeout",
                10 * SECOND,
            ),
            idle_timeout: self.nonzero_duration(&p.idle_timeout, "proxy.idle_timeout", 60 * SECOND),
            send_timeout: self.nonzero_duration(&p.send_timeout, "proxy.send_timeout", 60 * SECOND),
            max_connections: match p.max_connections {
                Some(0) => usize::MAX,
                Some(n) => n,
                None => DEFAULT_MAX_CONNECTIONS,
            },
            max_header_bytes,
            resolvers: self.resolvers(&p.resolvers),
            access_log: p.access_log.unwrap_or(false),
            metrics: p.metrics.unwrap_or(true),
            freeze: self.freeze(p.freeze.as_deref(), "proxy.freeze"),
            log_format: match p.log_format.as_ref().map(|f| (f, f.get_ref().as_str())) {
                None | Some((_, "text")) => LogFormat::Text,
                Some((_, "json")) => LogFormat::Json,
                Some((f, other)) => {
                    let msg = format!("unknown log format {other:?}; expected text or json");
                    self.err(f.span(), "proxy.log_format", msg);
                    LogFormat::Text
                }
            },
        }
    }

    pub(super) fn admin(&mut self, a: &AdminFile) -> AdminSettings {
        let default = SocketAddr::from(([127, 0, 0, 1], 9901));
        let listen = match &a.listen {
            Some(listen) => self.socket_addr(listen, "admin.listen").unwrap_or(default),
            None => default,
        };
        let token_env = match &a.token_env {
            Some(env) if env.get_ref().is_empty() || env.get_ref().contains(['=', '\0']) => {
                let msg = format!("invalid environment variable name {:?}", env.get_ref());
                self.err(env.span(), "admin.token_env", msg);
                None
            }
            Some(env) => Some(env.get_ref().clone()),
            None => None,
        };
        if let (Some(at), None) = (&a.listen, &a.token_env) {
            if !listen.ip().is_loopback() {
                let msg = format!(
                    "the admin API on non-loopback {listen} needs token_env (a bearer token); \
                     set token_env or listen on 127.0.0.1"
                );
                self.err(at.span(), "admin.listen", msg);
            }
        }
        if let (Some(true), None) = (a.metrics_token, &token_env) {
            let msg = "metrics_token = true needs token_env (the token it asks for)";
            self.problems.nowhere("admin.metrics_token", msg);
        }
        let names = a.names.iter().flatten();
        let names = names.map(|n| n.get_ref().to_ascii_lowercase()).collect();
        AdminSettings {
            listen,
            token_env,
            names,
            metrics_token: a.metrics_token.unwrap_or(false),
        }
    }
}
