//! The tripwire counts only candidate failures since the rollout began.

use super::harness::*;
use super::SEC;
use crate::control::store::Loaded;
use crate::rollout::Phase;

#[tokio::test(start_paused = true)]
async fn a_streak_from_before_the_rollout_never_trips_it() {
    let script = Script::healthy();
    // Ten failures in a row on the candidate before any rollout.
    script.set(|s| {
        s.rate = 0;
        s.sensed.consecutive_failures = 10;
        s.sensed.candidate.failures = 10;
    });
    let h = start(
        config(&canary("50, 100", "tripwire = 5\n")),
        script,
        Loaded::default(),
    );
    h.controller.start("app", "green", None).await.unwrap();
    run_for(3 * SEC).await;
    assert_eq!((h.phase(), h.green()), (Phase::Progressing, 50));
    // Four more in a row since the start: still under the tripwire.
    h.script.set(|s| {
        s.sensed.consecutive_failures = 14;
        s.sensed.candidate.failures = 14;
    });
    run_for(SEC).await;
    assert_eq!(h.phase(), Phase::Progressing);
    // The fifth since the start trips it.
    h.script.set(|s| {
        s.sensed.consecutive_failures = 15;
        s.sensed.candidate.failures = 15;
    });
    run_for(SEC).await;
    assert_eq!((h.phase(), h.green()), (Phase::RolledBack, 0));
}
