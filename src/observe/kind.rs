//! The kinds of failed upstream attempts, as counted in
//! `veer_upstream_errors_total{kind}`. The upstream client reports them,
//! the proxy maps them to statuses, and the counters here index by them.

/// What went wrong with an upstream, as counted in
/// `veer_upstream_errors_total{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamErrorKind {
    #[error("connect error")]
    Connect,
    #[error("timeout")]
    Timeout,
    #[error("reset")]
    Reset,
    #[error("protocol error")]
    Protocol,
}

impl UpstreamErrorKind {
    /// Every kind, in the order they are counted and exported.
    pub const ALL: [UpstreamErrorKind; 4] = [
        UpstreamErrorKind::Connect,
        UpstreamErrorKind::Timeout,
        UpstreamErrorKind::Reset,
        UpstreamErrorKind::Protocol,
    ];

    /// The `kind` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            UpstreamErrorKind::Connect => "connect",
            UpstreamErrorKind::Timeout => "timeout",
            UpstreamErrorKind::Reset => "reset",
            UpstreamErrorKind::Protocol => "protocol",
        }
    }

    /// Position in [`UpstreamErrorKind::ALL`] (and in
    /// `StatsSnapshot::upstream_errors`).
    pub(super) fn index(self) -> usize {
        match self {
            UpstreamErrorKind::Connect => 0,
            UpstreamErrorKind::Timeout => 1,
            UpstreamErrorKind::Reset => 2,
            UpstreamErrorKind::Protocol => 3,
        }
    }
}
