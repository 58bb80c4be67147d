//! The rollout controller's pure core: analysis verdicts and one planner
//! per strategy, `(spec, rollout, input, now) -> rollout`, applied by the
//! controller task, which persists its state and calls webhooks.

pub mod analysis;
mod controller;
pub mod plan;
mod query;
mod store;
pub mod strategy;
mod traffic;
mod webhook;

pub use analysis::{judge, Verdict};
pub use controller::{ControlError, Controller, RolloutView};
pub use plan::{plan, Command, Input, Phase, Rollout, Sizes, Traffic};
pub use store::StoreError;
