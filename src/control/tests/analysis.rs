//! Sequential analysis, `on_timeout`, deployment freezes and the watch
//! after a rollback, on the paused clock.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::harness::*;
use crate::control::store::Loaded;
use crate::control::EventKind;
use crate::rollout::Phase;

const SEC: Duration = Duration::from_secs(1);

fn sequential(steps: &str, extra: &str, analysis: &str) -> String {
    format!(
        "[route.rollout]\nstrategy = \"canary\"\nsteps = [{steps}]\ninterval = \"10s\"\nthreshold = 2\n{extra}\
         [route.rollout.analysis]\nmin_requests = 10\ncompare = \"sequential\"\n{analysis}"
    )
}

/// How long the rollout takes to roll back with the candidate failing
/// every request, at 100 candidate requests per second.
async fn time_to_rollback(rollout: &str) -> Duration {
    let script = Script::healthy();
    script.set(|s| s.failing = s.rate);
    let h = start(config(rollout), script, Loaded::default());
    let began = tokio::time::Instant::now();
    h.controller.start("app", "green", None).await.unwrap();
    while !matches!(h.phase(), Phase::RollingBack | Phase::RolledBack) {
        assert!(began.elapsed() < 120 * SEC, "never rolled back");
        run_for(SEC / 10).await;
    }
    began.elapsed()
}

#[tokio::test(start_paused = true)]
async fn a_broken_candidate_fails_sooner_with_sequential_analysis() {
    let fixed = time_to_rollback(&canary("10, 50, 100", "")).await;
    let seq = time_to_rollback(&sequential("10, 50, 100", "", "")).await;
    // Fixed bounds: `threshold` (2) failed intervals of 10 s. Sequential:
    // conclusive within the first interval, looked at every tick.
    assert!(fixed >= 20 * SEC, "fixed {fixed:?}");
    assert!(seq <= 2 * SEC, "sequential {seq:?}");
}

#[tokio::test(start_paused = true)]
async fn inconclusive_holds_the_step_and_says_what_it_needs() {
    let script = Script::healthy();
    // 1 in 100 candidate requests fails, none of stable's: a difference
    // the tests need many requests to place against the 0.5 tolerance.
    script.set(|s| (s.rate, s.failing) = (1, 0));
    let h = start(
        config(&sequential("10, 100", "", "")),
        script.clone(),
        Loaded::default(),
    );
    h.controller.start("app", "green", None).await.unwrap();
    script.set(|s| s.sensed.candidate.failures += 1);
    run_for(31 * SEC).await;
    assert_eq!((h.phase(), h.green()), (Phase::Progressing, 10));
    let v = h.controller.view("app").unwrap().record.verdict.unwrap();
    let seq = v.sequential.expect("sequential figures in the verdict");
    assert_eq!(seq.outcome, crate::rollout::Outcome::Inconclusive);
    assert!(seq.needs_requests.unwrap() > 0, "{seq:?}");
    assert!(seq.needs_seconds.unwrap() > 0.0, "{seq:?}");
    let estimate = v.reasons.iter().find(|r| r.starts_with("needs about"));
    assert!(
        estimate.is_some_and(|e| e.contains("at the current rate")),
        "{:?}",
        v.reasons
    );
    // The transition event carries the same verdict.
    let last = h.recorded(|r| r.transitions.last().cloned()).unwrap();
    assert!(last.1.unwrap().sequential.is_some());
}

#[tokio::test(start_paused = true)]
async fn on_timeout_hold_pauses_instead_of_rolling_back() {
    let script = Script::healthy();
    script.set(|s| s.rate = 1);
    let extra = "max_duration = \"30s\"\non_timeout = \"hold\"\n";
    let h = start(
        config(&sequential(
            "10, 100",
            extra,
            "tolerance = { failure_rate = 0.05 }\n",
        )),
        script,
        Loaded::default(),
    );
    h.controller.start("app", "green", None).await.unwrap();
    run_for(31 * SEC).await;
    assert_eq!((h.phase(), h.green()), (Phase::Paused, 10));
    let r = h.controller.latest("app").unwrap();
    assert!(r.reason.contains("on_timeout = hold"), "{}", r.reason);
}

/// A daily window in UTC from `from` to `to` seconds after the minute
/// that holds now, and the Unix ms of its start.
fn window(from: u64, to: u64) -> (String, u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let minute = now - now % 60;
    let hhmm = |t: u64| format!("{:02}:{:02}", (t / 3600) % 24, (t / 60) % 60);
    let text = format!("{}-{} UTC", hhmm(minute + from), hhmm(minute + to));
    (text, (minute + from) * 1000)
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(start_paused = true)]
async fn a_freeze_holds_a_step_and_lets_a_rollback_through() {
    // Starts at the next minute, lasts five: the canary (one step per
    // 10 s) is mid-way when it begins.
    let (text, begins) = window(60, 360);
    let freeze = format!("freeze = [\"{text}\"]\n");
    let steps = "10, 20, 30, 40, 50, 60, 70, 80, 90, 100";
    let script = Script::healthy();
    let h = start(
        config(&canary(steps, &freeze)),
        script.clone(),
        Loaded::default(),
    );
    let started = wall_ms();
    h.controller.start("app", "green", None).await.unwrap();
    run_for(Duration::from_millis(begins - started) + SEC).await;
    let held = h.green();
    assert!((10..100).contains(&held), "{held}");
    run_for(120 * SEC).await;
    assert_eq!(
        (h.phase(), h.green()),
        (Phase::Progressing, held),
        "the step holds"
    );
    let r = h.controller.latest("app").unwrap();
    assert!(r.reason.starts_with("deployment freeze"), "{}", r.reason);
    // A failing candidate still rolls back inside the freeze.
    script.set(|s| s.failing = s.rate);
    run_for(25 * SEC).await;
    assert!(
        matches!(h.phase(), Phase::RollingBack | Phase::RolledBack),
        "{:?}",
        h.phase()
    );
    assert_eq!(h.green(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_rollout_asked_for_in_a_freeze_starts_when_it_ends() {
    let (text, _) = window(0, 120);
    let freeze = format!("freeze = [\"{text}\"]\n");
    let h = start(
        config(&canary("10, 50, 100", &freeze)),
        Script::healthy(),
        Loaded::default(),
    );
    h.controller.start("app", "green", None).await.unwrap();
    run_for(30 * SEC).await;
    assert_eq!((h.phase(), h.green()), (Phase::Idle, 0), "not started");
    let r = h.controller.latest("app").unwrap();
    assert!(r.reason.contains("the rollout starts then"), "{}", r.reason);
    run_for(120 * SEC).await;
    assert!(
        h.green() > 0 || h.phase() == Phase::Promoted,
        "started after the freeze"
    );
}

#[tokio::test(start_paused = true)]
async fn after_a_rollback_stable_is_verified() {
    for stable_fails in [false, true] {
        let script = Script::healthy();
        script.set(|s| s.failing = s.rate);
        let extra = "verify_window = \"30s\"\n[[route.rollout.webhook]]\non = \"rollback\"\nurl = \"http://127.0.0.1:1/hook\"\n";
        let h = start(
            config(&canary("10, 100", extra)),
            script.clone(),
            Loaded::default(),
        );
        h.controller.start("app", "green", None).await.unwrap();
        run_for(21 * SEC).await;
        assert_eq!(h.phase(), Phase::RolledBack);
        if stable_fails {
            script.set(|s| s.sensed.stable.failures += 100);
        }
        let kinds = |h: &Harness| {
            h.recorded(|r| {
                r.events
                    .iter()
                    .filter(|e| matches!(e.0, EventKind::Recovered | EventKind::StillFailing))
                    .map(|e| (e.0, e.2.clone()))
                    .collect::<Vec<_>>()
            })
        };
        run_for(20 * SEC).await;
        assert!(kinds(&h).is_empty(), "not before verify_window");
        run_for(15 * SEC).await;
        let seen = kinds(&h);
        let want = match stable_fails {
            false => EventKind::Recovered,
            true => EventKind::StillFailing,
        };
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].0, want, "{seen:?}");
        assert!(seen[0].1.starts_with("blue "), "{seen:?}");
        let hooks = h.recorded(|r| r.notified.clone());
        let name = if stable_fails {
            "still-failing"
        } else {
            "recovered"
        };
        assert_eq!(hooks.last().map(|n| n.0), Some(name), "{hooks:?}");
    }
}
