//! The phases of a route's rollout (SPEC §3), as the API, the CLI,
//! metrics and events name them.

use serde::{Deserialize, Serialize};

/// Phases of SPEC §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Idle,
    Progressing,
    Paused,
    AwaitingPromotion,
    Promoted,
    RollingBack,
    RolledBack,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Progressing => "progressing",
            Phase::Paused => "paused",
            Phase::AwaitingPromotion => "awaiting-promotion",
            Phase::Promoted => "promoted",
            Phase::RollingBack => "rolling-back",
            Phase::RolledBack => "rolled-back",
        }
    }

    pub const ALL: [Phase; 7] = [
        Phase::Idle,
        Phase::Progressing,
        Phase::Paused,
        Phase::AwaitingPromotion,
        Phase::Promoted,
        Phase::RollingBack,
        Phase::RolledBack,
    ];

    /// The rollout still moves on its own (or waits for a gate).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            Phase::Progressing | Phase::Paused | Phase::AwaitingPromotion | Phase::RollingBack
        )
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Phase {
    type Err = String;

    fn from_str(s: &str) -> Result<Phase, String> {
        Phase::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown phase {s:?}"))
    }
}
