//! The config file as written: serde structs that mirror the TOML exactly.
//!
//! Nothing here is checked beyond TOML types; unknown keys are rejected.
//! Values that later checks may complain about are `Spanned` so the error
//! can name their line. Defaults are applied in `validate`, not here.

use serde::Deserialize as DeriveDeserialize;
use toml::Spanned;

pub use super::forms::Entries;

/// A string with its position in the file.
pub type Str = Spanned<String>;
/// An inline table of string to string, in file order.
pub type StrMap = Entries<Str, Str>;

/// The whole file.
#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub proxy: ProxyFile,
    #[serde(default)]
    pub admin: AdminFile,
    #[serde(default)]
    pub listener: Vec<ListenerFile>,
    #[serde(default)]
    pub pool: Vec<PoolFile>,
    #[serde(default)]
    pub route: Vec<RouteFile>,
    /// Global `[[webhook]]`s: `on = "drained"` for every pool.
    #[serde(default)]
    pub webhook: Vec<WebhookFile>,
    pub cluster: Option<Spanned<ClusterFile>>,
}

/// `[cluster]`: replicas as one fleet on etcd.
#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    pub etcd: Vec<Str>,
    pub prefix: Option<Str>,
    pub replica: Option<Str>,
    pub lease_ttl: Option<Str>,
    pub ca: Option<Str>,
    pub cert: Option<Str>,
    pub key: Option<Str>,
}

/// `[proxy]`.
#[derive(Debug, Default, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyFile {
    pub workers: Option<Spanned<usize>>,
    pub shutdown_grace: Option<Str>,
    pub shutdown_delay: Option<Str>,
    pub drain_timeout: Option<Str>,
    pub state_dir: Option<Str>,
    pub header_timeout: Option<Str>,
    pub idle_timeout: Option<Str>,
    pub send_timeout: Option<Str>,
    pub max_connections: Option<usize>,
    pub max_header_bytes: Option<Spanned<usize>>,
    pub access_log: Option<bool>,
    pub metrics: Option<bool>,
    pub log_format: Option<Str>,
    pub freeze: Option<Vec<Str>>,
    /// DNS servers (`ip` or `ip:port`) for pools with `dns`/`srv`;
    /// absent: the system's (`/etc/resolv.conf`).
    pub resolvers: Option<Spanned<Vec<Str>>>,
}

/// `[admin]`.
#[derive(Debug, Default, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminFile {
    pub listen: Option<Str>,
    pub token_env: Option<Str>,
    pub names: Option<Vec<Str>>,
    pub metrics_token: Option<bool>,
}

/// `[[listener]]`.
#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerFile {
    pub name: Str,
    pub listen: Str,
    pub tls: Option<TlsFile>,
}

/// `tls = { cert = "...", key = "..." }`, or `[listener.tls]` with
/// several `[[listener.tls.cert]]` chosen by SNI.
#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFile {
    pub cert: Spanned<CertsFile>,
    pub key: Option<Str>,
    pub client_ca: Option<Str>,
    pub handshake_timeout: Option<Str>,
}

/// `cert = "path"` (with `key` beside it) or `[[listener.tls.cert]]`.
#[derive(Debug)]
pub enum CertsFile {
    Path(String),
    List(Vec<CertFile>),
}

/// One `[[listener.tls.cert]]`.
#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct CertFile {
    pub names: Option<Spanned<Vec<Str>>>,
    pub cert: Str,
    pub key: Str,
}

/// `[pool.tls]`: how veer talks TLS to the pool's `https://` endpoints.
#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolTlsFile {
    pub ca: Option<Str>,
    pub server_name: Option<Str>,
    pub h2: Option<bool>,
}

/// `[[pool]]`.
#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolFile {
    pub name: Str,
    pub version: Option<Str>,
    pub endpoints: Option<Spanned<Vec<Spanned<EndpointFile>>>>,
    /// `host:port` resolved by A/AAAA (SPEC §13).
    pub dns: Option<Str>,
    /// `_service._proto.name` resolved by SRV (port and weight from it).
    pub srv: Option<Str>,
    pub dns_min_ttl: Option<Str>,
    pub dns_max_ttl: Option<Str>,
    pub hold_empty: Option<Str>,
    pub balance: Option<Str>,
    pub connect_timeout: Option<Str>,
    pub idle_timeout: Option<Str>,
    pub health: Option<HealthFile>,
    pub outlier: Option<OutlierFile>,
    pub tls: Option<Spanned<PoolTlsFile>>,
}

/// One of a pool's `endpoints`: `"host:port"` or
/// `{ address = "host:port", weight = 2 }`.
#[derive(Debug)]
pub enum EndpointFile {
    Plain(String),
    Table(EndpointTableFile),
}

/// `{ address = "...", weight = N }` in a pool's `endpoints`.
#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointTableFile {
    pub address: Str,
    pub weight: Option<Spanned<i64>>,
}

/// `[pool.health]`.
#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthFile {
    pub path: Str,
    pub interval: Option<Str>,
    pub timeout: Option<Str>,
    pub healthy_threshold: Option<Spanned<u32>>,
    pub unhealthy_threshold: Option<Spanned<u32>>,
}

/// `[pool.outlier]`.
#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct OutlierFile {
    pub consecutive_failures: Option<Spanned<u32>>,
    pub base_ejection: Option<Str>,
    pub max_ejection: Option<Str>,
    pub max_ejected_percent: Option<Spanned<u32>>,
}

/// `[[route]]`.
#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteFile {
    pub name: Str,
    pub host: Option<Str>,
    pub path_prefix: Option<Str>,
    pub pool: Str,
    pub weights: Option<Spanned<Entries<Str, Spanned<i64>>>>,
    pub timeout: Option<Str>,
    pub retries: Option<u32>,
    pub upgrades: Option<Spanned<Vec<Str>>>,
    #[serde(default)]
    pub rule: Vec<RuleFile>,
    pub sticky: Option<Spanned<StickyFile>>,
    pub rollout: Option<RolloutFile>,
    pub mirror: Option<Spanned<MirrorFile>>,
}

/// `[[route.rule]]`.
#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    pub headers: Option<StrMap>,
    pub cookies: Option<StrMap>,
    pub query: Option<StrMap>,
    pub pool: Str,
}

/// `[route.sticky]`: exactly one of the two.
#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct StickyFile {
    pub header: Option<Str>,
    pub cookie: Option<Str>,
}

/// `[route.rollout]`.
#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct RolloutFile {
    pub strategy: Str,
    pub interval: Option<Str>,
    pub threshold: Option<Spanned<u32>>,
    pub tripwire: Option<Spanned<u32>>,
    pub steps: Option<Spanned<Vec<Spanned<i64>>>>,
    pub step_weight: Option<Spanned<i64>>,
    pub max_weight: Option<Spanned<i64>>,
    pub hold: Option<Str>,
    pub max_surge: Option<Spanned<u32>>,
    pub max_unavailable: Option<Spanned<u32>>,
    pub ready_timeout: Option<Str>,
    pub preview_header: Option<Str>,
    pub auto_promote: Option<bool>,
    pub rollback_window: Option<Str>,
    #[serde(rename = "match")]
    pub ab_match: Option<Spanned<MatchFile>>,
    pub iterations: Option<Spanned<u32>>,
    pub max_duration: Option<Str>,
    pub on_timeout: Option<Str>,
    pub freeze: Option<Vec<Str>>,
    pub verify_window: Option<Str>,
    pub analysis: Option<AnalysisFile>,
    #[serde(default)]
    pub webhook: Vec<WebhookFile>,
    pub shadow: Option<Spanned<ShadowFile>>,
}

/// `[route.mirror]`: a dark launch, copies of live requests to `pool`.
#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorFile {
    pub pool: Str,
    pub percent: Option<Spanned<i64>>,
    pub methods: Option<Vec<Str>>,
    pub max_body: Option<Spanned<i64>>,
    pub queue: Option<Spanned<i64>>,
    pub compare: Option<CompareFile>,
}

/// `[route.rollout.shadow]`: the mirror keys (the pool is the rollout's
/// candidate) and how the stage is judged.
#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowFile {
    pub percent: Option<Spanned<i64>>,
    pub methods: Option<Vec<Str>>,
    pub max_body: Option<Spanned<i64>>,
    pub queue: Option<Spanned<i64>>,
    pub compare: Option<CompareFile>,
    pub iterations: Option<Spanned<u32>>,
    pub max_mismatch_rate: Option<Spanned<f64>>,
    pub min_compared: Option<u64>,
}

/// `[route.mirror.compare]`, `[route.rollout.shadow.compare]`.
#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareFile {
    pub status: Option<Str>,
    pub headers: Option<Vec<Str>>,
    pub body: Option<Str>,
    pub ignore: Option<Vec<Str>>,
    pub noise: Option<bool>,
}

/// `[route.rollout] match = { ... }`: same form as a rule, without `pool`.
#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchFile {
    pub headers: Option<StrMap>,
    pub cookies: Option<StrMap>,
    pub query: Option<StrMap>,
}

/// `[route.rollout.analysis]`.
#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisFile {
    pub min_requests: Option<u64>,
    pub success_rate: Option<Spanned<f64>>,
    pub p50: Option<Str>,
    pub p95: Option<Str>,
    pub p99: Option<Str>,
    pub max_success_rate_drop: Option<Spanned<f64>>,
    #[serde(default)]
    pub query: Vec<QueryFile>,
    pub compare: Option<Str>,
    pub confidence: Option<Spanned<f64>>,
    pub tolerance: Option<Spanned<ToleranceFile>>,
}

/// `[route.rollout.analysis] tolerance = { failure_rate = 0.5, p95 = "10%" }`.
#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct ToleranceFile {
    pub failure_rate: Option<Spanned<f64>>,
    pub p50: Option<Str>,
    pub p95: Option<Str>,
    pub p99: Option<Str>,
}

/// `[[route.rollout.analysis.query]]`.
#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryFile {
    pub name: Str,
    pub prometheus: Str,
    pub query: Str,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// `[[route.rollout.webhook]]` or a global `[[webhook]]`.
#[derive(Debug, DeriveDeserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookFile {
    pub on: Str,
    pub url: Str,
    pub timeout: Option<Str>,
    pub retries: Option<u32>,
}
