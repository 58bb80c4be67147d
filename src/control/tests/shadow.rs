//! The shadow stage on paused time: judged once per interval on the
//! mirror's comparisons, `iterations` passes before the first traffic
//! step, and no published traffic ever gives the candidate a user until
//! then.

use super::harness::*;
use super::SEC;
use crate::control::store::Loaded;
use crate::rollout::Phase;
use crate::routing::MirrorChoice;

fn shadowed(extra: &str) -> String {
    format!(
        "{}[route.rollout.shadow]\niterations = 2\nmin_compared = 10\nmax_mismatch_rate = 5.0\n{extra}",
        canary("50, 100", "")
    )
}

/// The mirror of the last published traffic goes to green.
fn mirrored(h: &Harness) -> bool {
    matches!(h.traffic().map(|t| t.mirror), Some(MirrorChoice::On(m)) if m.pool == "green")
}

/// No traffic published so far sent a user to green.
fn never_green(h: &Harness) -> bool {
    h.recorded(|r| {
        r.published.iter().all(|(_, t)| {
            t.as_ref().is_none_or(|t| {
                t.rules.is_empty()
                    && t.weights
                        .percent
                        .iter()
                        .all(|(p, w)| p != "green" || *w == 0)
            })
        })
    })
}

#[tokio::test(start_paused = true)]
async fn two_passing_intervals_then_the_first_step() {
    let h = start(config(&shadowed("")), Script::healthy(), Loaded::default());
    h.controller.start("app", "green", None).await.unwrap();
    assert!(mirrored(&h) && h.green() == 0);
    h.script.set(|s| s.sensed.shadow.matched = 30);
    run_for(9 * SEC).await;
    assert_eq!(h.verdicts(), 0, "no verdict before an interval");
    run_for(2 * SEC).await;
    assert_eq!((h.verdicts(), h.green()), (1, 0));
    assert!(mirrored(&h));
    // Too few compared in the next interval: inconclusive, holds.
    run_for(10 * SEC).await;
    assert_eq!(
        (h.verdicts(), h.green(), h.phase()),
        (2, 0, Phase::Progressing)
    );
    assert!(never_green(&h));
    h.script.set(|s| {
        s.sensed.shadow.matched = 59;
        s.sensed.shadow.mismatched = 1;
    });
    run_for(10 * SEC).await;
    assert_eq!(h.green(), 50, "3.3% differ, under 5%: the canary starts");
    assert!(!mirrored(&h), "the stage's mirror ends with it");
    let record = h.controller.view("app").unwrap().record;
    let shadow = record.shadow.unwrap();
    assert_eq!((shadow.compared, shadow.mismatched), (30, 1));
}

#[tokio::test(start_paused = true)]
async fn failing_intervals_roll_back_and_no_user_ever_reached_the_candidate() {
    let h = start(config(&shadowed("")), Script::healthy(), Loaded::default());
    h.controller.start("app", "green", None).await.unwrap();
    for i in 1..=2u64 {
        h.script.set(|s| {
            s.sensed.shadow.matched = 20 * i;
            s.sensed.shadow.mismatched = 10 * i;
            s.sensed.shadow.fields = [("$.price".to_string(), 10 * i)].into();
        });
        run_for(10 * SEC + SEC / 2).await;
    }
    run_for(SEC).await;
    assert_eq!(h.phase(), Phase::RolledBack);
    assert!(never_green(&h));
    let verdict = h.controller.view("app").unwrap().record.verdict.unwrap();
    assert!(
        verdict.reasons[0].contains("33.33% > 5% (10 of 30 compared pairs differ: $.price x10)"),
        "{:?}",
        verdict.reasons
    );
}
