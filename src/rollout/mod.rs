//! The rollout's pure core: analysis verdicts and one planner per
//! strategy, `(spec, rollout, input, now) -> rollout`, and the traffic a
//! rollout asks for. The controller (the `control` module) applies them.

pub mod analysis;
mod compare;
mod phase;
pub mod plan;
pub mod preview;
pub mod sequential;
pub mod shadow;
pub mod strategy;
mod traffic;

pub use analysis::{judge, Outcome, Verdict};
pub use compare::combine;
pub use plan::{plan, Command, Input, Phase, Rollout, Sizes, Traffic};
pub use traffic::{route_traffic, PREVIEW_VALUES};
