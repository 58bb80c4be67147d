//! From the file structs to the validated `model::Config`, collecting every
//! problem instead of stopping at the first.
//!
//! Defaults live here, next to the checks, and match SPEC §2.

mod address;
mod cluster;
mod discovery;
mod mirror;
mod outlier;
mod rollout;
mod route;
mod sequential;
mod settings;
mod tls;
mod webhook;

pub(crate) use address::{parse_endpoint, MAX_WEIGHT};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::HeaderName;

use super::error::{ConfigError, Problems};
use super::file::{ConfigFile, HealthFile, ListenerFile, PoolFile, RouteFile, Str};
use super::model::*;

const SECOND: Duration = Duration::from_secs(1);

/// Validates a parsed file read from `path` (whose text is `text`).
pub(crate) fn build(file: ConfigFile, text: &str, path: &Path) -> Result<Config, ConfigError> {
    let mut check = Check {
        problems: Problems::new(path, text),
        dir: path.parent().unwrap_or(Path::new("")),
    };
    let proxy = check.proxy(&file.proxy);
    let admin = check.admin(&file.admin);
    let listeners = check.listeners(&file.listener, &admin);
    let pools = check.pools(&file.pool);
    let pool_names: Vec<&str> = file
        .pool
        .iter()
        .map(|p| p.name.get_ref().as_str())
        .collect();
    let routes = check.routes(&file.route, &pool_names);
    check.readiness(&file.route, &routes, &pools);
    let webhooks = check.global_webhooks(&file.webhook);
    let cluster = file.cluster.as_ref().map(|c| check.cluster(c));
    check.problems.finish(Config {
        source: path.to_path_buf(),
        proxy,
        admin,
        listeners,
        pools,
        routes,
        webhooks,
        cluster,
    })
}

/// Validation state for one file: the problems found so far and the
/// directory relative paths are resolved against.
pub(crate) struct Check<'a> {
    problems: Problems<'a>,
    dir: &'a Path,
}

impl Check<'_> {
    /// A strategy that waits for health checks (rolling) needs them on the
    /// pool it rolls out to; without `[pool.health]` every endpoint counts
    /// as ready and a batch of dead endpoints would complete.
    fn readiness(&mut self, files: &[RouteFile], routes: &[RouteSpec], pools: &[PoolSpec]) {
        for (file, route) in files.iter().zip(routes) {
            let Some(strategy) = route.rollout.as_ref().map(|r| r.strategy) else {
                continue;
            };
            let checked = pools
                .iter()
                .any(|p| p.name == route.pool && p.health.is_some());
            if strategy.needs_health() && !checked {
                let msg = format!(
                    "strategy {strategy} moves traffic only to endpoints that pass health checks; pool {:?} needs [pool.health]",
                    route.pool
                );
                let key = format!("route {:?}.pool", route.name);
                self.err(file.pool.span(), key, msg);
            }
        }
    }

    fn err(&mut self, span: Range<usize>, key: impl Into<String>, msg: impl Into<String>) {
        self.problems.at(span, key, msg);
    }

    /// A duration key, or `default` when absent. Bad values are recorded
    /// and replaced by the default so checking can go on.
    fn duration(&mut self, value: &Option<Str>, key: &str, default: Duration) -> Duration {
        let Some(value) = value else { return default };
        match humantime::parse_duration(value.get_ref().trim()) {
            Ok(d) => d,
            Err(e) => {
                let msg = format!(
                    "invalid duration {:?} ({e}); write e.g. \"250ms\", \"5s\", \"1m\"",
                    value.get_ref()
                );
                self.err(value.span(), key, msg);
                default
            }
        }
    }

    /// Like [`Check::duration`], but zero is an error too.
    fn nonzero_duration(&mut self, value: &Option<Str>, key: &str, default: Duration) -> Duration {
        let d = self.duration(value, key, default);
        if d.is_zero() {
            if let Some(value) = value {
                self.err(value.span(), key, "must be longer than 0s");
            }
            return default;
        }
        d
    }

    fn socket_addr(&mut self, value: &Str, key: &str) -> Option<SocketAddr> {
        match value.get_ref().parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                let msg = format!(
                    "invalid address {:?}; write IP:PORT, e.g. \"0.0.0.0:8080\" or \"[::]:8080\"",
                    value.get_ref()
                );
                self.err(value.span(), key, msg);
                None
            }
        }
    }

    fn header_name(&mut self, value: &Str, key: &str) -> Option<HeaderName> {
        match HeaderName::from_bytes(value.get_ref().as_bytes()) {
            Ok(name) => Some(name),
            Err(_) => {
                let msg = format!("invalid header name {:?}", value.get_ref());
                self.err(value.span(), key, msg);
                None
            }
        }
    }

    /// Checks a `name` and, when it is new, records it in `seen`.
    fn name(&mut self, value: &Str, key: &str, kind: &str, seen: &mut HashMap<String, usize>) {
        let name = value.get_ref();
        if !is_name(name) {
            let msg =
                format!("{kind} name {name:?} must be non-empty letters, digits, '-', '_' or '.'");
            self.err(value.span(), key, msg);
        } else if let Some(&line) = seen.get(name) {
            let msg = format!("duplicate {kind} name {name:?} (first on line {line})");
            self.err(value.span(), key, msg);
        } else {
            seen.insert(name.clone(), self.problems.line(value.span()));
        }
    }

    fn resolve(&self, path: &str) -> PathBuf {
        let path = Path::new(path);
        if path.is_relative() {
            self.dir.join(path)
        } else {
            path.to_path_buf()
        }
    }

    fn listeners(&mut self, all: &[ListenerFile], admin: &AdminSettings) -> Vec<ListenerSpec> {
        if all.is_empty() {
            self.problems.nowhere(
                "listener",
                "no [[listener]]: at least one is needed to serve",
            );
        }
        let mut names = HashMap::new();
        let mut addrs: HashMap<SocketAddr, String> = HashMap::new();
        addrs.insert(admin.listen, "the admin API".to_owned());
        let mut out = Vec::new();
        for (i, l) in all.iter().enumerate() {
            let label = label("listener", i, l.name.get_ref());
            self.name(&l.name, &format!("{label}.name"), "listener", &mut names);
            let key = format!("{label}.listen");
            let Some(listen) = self.socket_addr(&l.listen, &key) else {
                continue;
            };
            if let Some(owner) = addrs.get(&listen) {
                let msg = format!("{listen} is already used by {owner}");
                self.err(l.listen.span(), key, msg);
            } else {
                addrs.insert(listen, format!("listener {:?}", l.name.get_ref()));
            }
            let tls = l.tls.as_ref().map(|tls| self.listener_tls(tls, &label));
            out.push(ListenerSpec {
                name: l.name.get_ref().clone(),
                listen,
                tls,
            });
        }
        out
    }

    fn file_path(&mut self, value: &Str, key: &str) -> PathBuf {
        if value.get_ref().is_empty() {
            self.err(value.span(), key, "path must not be empty");
        }
        self.resolve(value.get_ref())
    }

    fn pools(&mut self, all: &[PoolFile]) -> Vec<PoolSpec> {
        let mut names = HashMap::new();
        let mut out = Vec::new();
        for (i, p) in all.iter().enumerate() {
            let label = label("pool", i, p.name.get_ref());
            self.name(&p.name, &format!("{label}.name"), "pool", &mut names);
            if let Some(v) = &p.version {
                if v.get_ref().is_empty() {
                    self.err(
                        v.span(),
                        format!("{label}.version"),
                        "must not be empty; leave it out",
                    );
                }
            }
            let (endpoints, weights) = match &p.endpoints {
                Some(list) => self.endpoints(list, &label),
                None => (Vec::new(), Vec::new()),
            };
            let dns = self.dns(p, &label);
            if p.endpoints.is_none() && p.dns.is_none() && p.srv.is_none() {
                let msg = "a pool needs endpoints, dns or srv (write endpoints = [] for a pool only the admin API fills)";
                self.err(p.name.span(), format!("{label}.endpoints"), msg);
            }
            let balance = match p.balance.as_ref().map(|b| (b, b.get_ref().as_str())) {
                None | Some((_, "least_request")) => Balance::LeastRequest,
                Some((_, "round_robin")) => Balance::RoundRobin,
                Some((_, "random")) => Balance::Random,
                Some((b, other)) => {
                    let msg = format!(
                        "unknown balance {other:?}; expected round_robin, least_request or random"
                    );
                    self.err(b.span(), format!("{label}.balance"), msg);
                    Balance::LeastRequest
                }
            };
            let connect_timeout = self.nonzero_duration(
                &p.connect_timeout,
                &format!("{label}.connect_timeout"),
                SECOND,
            );
            let idle_timeout = self.duration(
                &p.idle_timeout,
                &format!("{label}.idle_timeout"),
                4 * SECOND,
            );
            let health = p
                .health
                .as_ref()
                .map(|h| self.health(h, &format!("{label}.health")));
            let outlier = p
                .outlier
                .as_ref()
                .map(|o| self.outlier(o, &format!("{label}.outlier")));
            let tls = self.pool_tls(&p.tls, &endpoints, &label);
            out.push(PoolSpec {
                name: p.name.get_ref().clone(),
                version: p.version.as_ref().map(|v| v.get_ref().clone()),
                endpoints,
                weights,
                dns,
                balance,
                connect_timeout,
                idle_timeout,
                health,
                outlier,
                tls,
            });
        }
        out
    }

    fn health(&mut self, h: &HealthFile, key: &str) -> HealthSpec {
        if !h.path.get_ref().starts_with('/') {
            self.err(h.path.span(), format!("{key}.path"), "must start with '/'");
        }
        let mut threshold =
            |value: &Option<toml::Spanned<u32>>, name: &str, default: u32| match value {
                Some(n) if *n.get_ref() == 0 => {
                    self.err(n.span(), format!("{key}.{name}"), "must be at least 1");
                    default
                }
                Some(n) => *n.get_ref(),
                None => default,
            };
        let healthy_threshold = threshold(&h.healthy_threshold, "healthy_threshold", 1);
        let unhealthy_threshold = threshold(&h.unhealthy_threshold, "unhealthy_threshold", 3);
        HealthSpec {
            path: h.path.get_ref().clone(),
            interval: self.nonzero_duration(&h.interval, &format!("{key}.interval"), 5 * SECOND),
            timeout: self.nonzero_duration(&h.timeout, &format!("{key}.timeout"), SECOND),
            healthy_threshold,
            unhealthy_threshold,
        }
    }
}

/// `pool "blue"` when the name is usable, else `pool[3]`.
fn label(kind: &str, index: usize, name: &str) -> String {
    if is_name(name) {
        format!("{kind} {name:?}")
    } else {
        format!("{kind}[{index}]")
    }
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}
