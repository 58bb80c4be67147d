//! The rollout controller's pure core: analysis verdicts and one planner
//! per strategy, `(spec, rollout, input, now) -> rollout`.

pub mod analysis;
pub mod plan;
pub mod strategy;

pub use analysis::{judge, Verdict};
pub use plan::{plan, Command, Input, Phase, Rollout, Sizes, Traffic};
