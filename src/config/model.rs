//! Validated runtime configuration: the types the rest of veer works with.
//!
//! Everything here has already been checked (names resolve, weights sum to
//! 100, durations parsed, defaults filled in), so no consumer re-validates.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::HeaderName;

pub use super::cluster::{ClusterSpec, ClusterTls};
pub use super::dns::{DnsQuery, DnsSpec};
pub use super::mirror::{BodyCompare, CompareSpec, MirrorSpec, ShadowSpec, StatusCompare};
use super::{analysis::*, freeze::FreezeWindow};

/// A whole, valid configuration file.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this was read from (reload watches its directory).
    pub source: PathBuf,
    pub proxy: ProxySettings,
    pub admin: AdminSettings,
    pub listeners: Vec<ListenerSpec>,
    pub pools: Vec<PoolSpec>,
    pub routes: Vec<RouteSpec>,
    /// Global `[[webhook]]`s (`on = "drained"`).
    pub webhooks: Vec<WebhookSpec>,
    /// `[cluster]`; `None`: a single node with its file-backed state.
    pub cluster: Option<ClusterSpec>,
}

/// `[proxy]`: process-wide behaviour.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxySettings {
    /// Worker threads; already resolved: never 0 (0 in the file = one per core).
    pub workers: usize,
    pub shutdown_grace: Duration,
    pub shutdown_delay: Duration,
    pub drain_timeout: Duration,
    /// Resolved against the config file's directory when relative.
    pub state_dir: PathBuf,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    /// A client that takes no bytes of a response for this long is cut off
    /// (nginx's `send_timeout`), releasing its upstream connection.
    pub send_timeout: Duration,
    /// Open client connections per listener; more wait in the kernel's
    /// accept queue. `usize::MAX`: unlimited (0 in the file).
    pub max_connections: usize,
    /// Largest request head (request line + headers) accepted; larger gets 431.
    pub max_header_bytes: usize,
    /// One structured log line per request when true.
    pub access_log: bool,
    /// Record per route×pool metrics (on by default; off only to measure
    /// what recording costs).
    pub metrics: bool,
    /// How `veer run` writes its log (takes effect on restart).
    pub log_format: LogFormat,
    /// `[proxy] freeze`: deployment windows for every route.
    pub freeze: Vec<FreezeWindow>,
    /// DNS servers for pools with `dns`/`srv`; empty: the system's
    /// (`/etc/resolv.conf`).
    pub resolvers: Vec<SocketAddr>,
}

/// `[proxy] log_format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One line per event for people (colour only on a terminal).
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `[admin]`: the control-plane listener.
#[derive(Debug, Clone, PartialEq)]
pub struct AdminSettings {
    pub listen: SocketAddr,
    /// Name of the environment variable holding the bearer token, if any.
    pub token_env: Option<String>,
    /// Host names the admin listener answers to besides IP literals and
    /// `localhost` (lowercase, no port); others get 421.
    pub names: Vec<String>,
    /// `/metrics` needs the bearer token too.
    pub metrics_token: bool,
}

/// One `[[listener]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenerSpec {
    pub name: String,
    pub listen: SocketAddr,
    pub tls: Option<TlsSpec>,
}

/// `tls = { ... }` on a listener; paths resolved against the config file's
/// directory. The files are read by the `tls` module, not here.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsSpec {
    /// Never empty. The first is served when the client sends no SNI or a
    /// name no certificate lists.
    pub certs: Vec<CertSpec>,
    /// CA bundle client certificates must chain to (mTLS); `None` = no
    /// client certificates asked for.
    pub client_ca: Option<PathBuf>,
    /// A client must finish the TLS handshake within this (default 10s).
    pub handshake_timeout: Duration,
}

/// One certificate chain and its key.
#[derive(Debug, Clone, PartialEq)]
pub struct CertSpec {
    /// SNI names this certificate answers, lowercase; `*.example.com`
    /// matches one label. Empty: the names in the certificate itself.
    pub names: Vec<String>,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// `[pool.tls]`: TLS to the pool's `https://` endpoints.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpstreamTls {
    /// CA bundle to verify upstream certificates; `None` = system roots.
    pub ca: Option<PathBuf>,
    /// Name sent as SNI and verified; `None` = the endpoint's host.
    pub server_name: Option<String>,
    /// Offer `h2` by ALPN and speak HTTP/2 when the upstream picks it.
    pub h2: bool,
}

/// One `[[pool]]`: a named set of endpoints running one version.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSpec {
    pub name: String,
    pub version: Option<String>,
    /// The endpoints written in the file; may be empty when `dns` fills
    /// the pool or the admin API does (`endpoints = []`).
    pub endpoints: Vec<Endpoint>,
    /// The weight of each of `endpoints`, same order (1 unless written
    /// `{ address = "...", weight = N }`).
    pub weights: Vec<u32>,
    /// `dns` or `srv`: endpoints that follow DNS (SPEC §13).
    pub dns: Option<DnsSpec>,
    pub balance: Balance,
    pub connect_timeout: Duration,
    /// Pooled upstream connections idle longer than this are closed. Kept
    /// below common upstream keep-alive timeouts (Node 5s, Apache 5s).
    pub idle_timeout: Duration,
    pub health: Option<HealthSpec>,
    /// Passive outlier detection; `None` (no `[pool.outlier]`) = off.
    pub outlier: Option<OutlierSpec>,
    /// Settings for the `https://` endpoints.
    pub tls: UpstreamTls,
}

/// An upstream endpoint, `host:port` or `https://host:port` (a name or an
/// IP literal).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// `host:port` exactly as written, without `https://` (used as the
    /// `Host` of health checks and as the endpoint label in metrics).
    pub authority: String,
    pub host: String,
    pub port: u16,
    /// Written `https://`: connect with TLS (see [`UpstreamTls`]).
    pub tls: bool,
}

/// How a pool picks an endpoint per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Balance {
    RoundRobin,
    /// Power of two choices over in-flight counts.
    #[default]
    LeastRequest,
    Random,
}

/// `[pool.health]`: active health checks.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSpec {
    pub path: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub healthy_threshold: u32,
    pub unhealthy_threshold: u32,
}

/// `[pool.outlier]`: passive outlier detection (Envoy's model). An
/// endpoint that fails `consecutive_failures` requests in a row (connect
/// error, reset, 5xx) leaves rotation for `base_ejection` times the number
/// of times it was ejected, at most `max_ejection`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierSpec {
    pub consecutive_failures: u32,
    pub base_ejection: Duration,
    pub max_ejection: Duration,
    /// At most this percent of the pool's endpoints are ejected at once
    /// (rounded down), and never the last endpoint in rotation.
    pub max_ejected_percent: u32,
}

/// One `[[route]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteSpec {
    pub name: String,
    pub host: Option<HostMatch>,
    /// Starts with `/`.
    pub path_prefix: String,
    /// The pool this route should serve (the desired state).
    pub pool: String,
    /// Fixed split in percent; every name is a known pool; sums to 100.
    /// `None` = 100% to `pool`.
    pub weights: Option<Vec<(String, u32)>>,
    pub timeout: Duration,
    pub retries: u32,
    /// `Upgrade` protocols tunneled (lowercase); `h2c` never.
    pub upgrades: Vec<String>,
    pub rules: Vec<RuleSpec>,
    pub sticky: Option<StickyKey>,
    pub rollout: Option<RolloutSpec>,
    /// `[route.mirror]`: a dark launch (SPEC §12).
    pub mirror: Option<MirrorSpec>,
}

/// `host = ...` of a route. Stored lowercase, without a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    Exact(String),
    /// `*.example.com` is stored as `.example.com`: matches any host that
    /// ends with it (and has at least one more label).
    Suffix(String),
}

/// Request properties that must all match (exact values).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MatchSpec {
    pub headers: Vec<(HeaderName, String)>,
    pub cookies: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
}

/// One `[[route.rule]]`: matching requests go to `pool`.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub matches: MatchSpec,
    pub pool: String,
}

/// `[route.sticky]`: what identifies a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StickyKey {
    Header(HeaderName),
    Cookie(String),
}

/// `[route.rollout]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutSpec {
    pub strategy: Strategy,
    pub interval: Duration,
    pub threshold: u32,
    pub tripwire: Option<u32>,
    /// Canary candidate weights per step, increasing, last is 100
    /// (from `steps`, or from `step_weight` + `max_weight` then 100).
    pub steps: Vec<u32>,
    pub hold: Duration,
    pub max_surge: u32,
    pub max_unavailable: u32,
    pub ready_timeout: Duration,
    pub preview_header: HeaderName,
    pub auto_promote: bool,
    pub rollback_window: Duration,
    /// ab_test: the traffic the candidate receives.
    pub ab_match: Option<MatchSpec>,
    pub iterations: u32,
    /// A rollout not promoted within this is rolled back (ab_test
    /// default: `interval` x `iterations` x 3; other strategies: none).
    pub max_duration: Option<Duration>,
    pub on_timeout: OnTimeout,
    /// Deployment windows of this route (besides `[proxy] freeze`).
    pub freeze: Vec<FreezeWindow>,
    /// After a rollback, stable is watched this long; `None`: not.
    pub verify_window: Option<Duration>,
    pub analysis: AnalysisSpec,
    pub webhooks: Vec<WebhookSpec>,
    /// `[route.rollout.shadow]`: mirrored and compared before any user
    /// reaches the candidate (canary, blue_green, ab_test).
    pub shadow: Option<ShadowSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    Recreate,
    Rolling,
    BlueGreen,
    Canary,
    AbTest,
}

impl Strategy {
    pub const ALL: [Strategy; 5] = [
        Strategy::Recreate,
        Strategy::Rolling,
        Strategy::BlueGreen,
        Strategy::Canary,
        Strategy::AbTest,
    ];

    /// The name used in the file, the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Recreate => "recreate",
            Strategy::Rolling => "rolling",
            Strategy::BlueGreen => "blue_green",
            Strategy::Canary => "canary",
            Strategy::AbTest => "ab_test",
        }
    }

    /// Strategies that wait for candidate endpoints to pass health checks
    /// before they move traffic (and so need `[pool.health]`).
    pub fn needs_health(self) -> bool {
        matches!(self, Strategy::Rolling)
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Strategy {
    type Err = String;

    fn from_str(s: &str) -> Result<Strategy, String> {
        Strategy::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown strategy {s:?}; expected recreate, rolling, blue_green, canary or ab_test"
                )
            })
    }
}

/// `[route.rollout.analysis]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalysisSpec {
    pub min_requests: u64,
    /// Percent, 0..=100.
    pub success_rate: Option<f64>,
    pub p50: Option<Duration>,
    pub p95: Option<Duration>,
    pub p99: Option<Duration>,
    /// Percentage points.
    pub max_success_rate_drop: Option<f64>,
    pub queries: Vec<QuerySpec>,
    pub compare: Compare,
    /// Percent, 50 to below 100.
    pub confidence: f64,
    pub tolerance: Tolerance,
}

/// `[[route.rollout.analysis.query]]`: a Prometheus instant query.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySpec {
    pub name: String,
    /// Prometheus base URL, e.g. `http://127.0.0.1:9090`.
    pub prometheus: String,
    pub query: String,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// `[[route.rollout.webhook]]` or a global `[[webhook]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookSpec {
    pub on: WebhookKind,
    pub url: String,
    pub timeout: Duration,
    pub retries: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookKind {
    PreRollout,
    Rollout,
    ConfirmPromotion,
    PostRollout,
    Rollback,
    Event,
    /// A pool (or endpoint) is drained; also a global `[[webhook]]`.
    Drained,
}
