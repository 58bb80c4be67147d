//! The controller on paused time, its effects recorded and its sensing
//! scripted: no socket, no real interval waited out.

mod analysis;
mod harness;
mod reloads;
mod shadow;
mod streak;

use std::time::Duration;

use harness::*;

use crate::config::WebhookKind;
use crate::control::record::{Basis, Record};
use crate::control::store::Loaded;
use crate::control::{ControlError, EventKind};
use crate::rollout::{Command, Phase};

const SEC: Duration = Duration::from_secs(1);

fn conflict(r: Result<(), ControlError>) -> String {
    match r {
        Err(ControlError::Conflict(why)) => why,
        other => panic!("expected 409, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_canary_walks_its_steps_once_per_interval() {
    let hook = "[[route.rollout.webhook]]\non = \"event\"\nurl = \"http://127.0.0.1:1/hook\"\n";
    let h = start(
        config(&canary("10, 50, 100", hook)),
        Script::healthy(),
        Loaded::default(),
    );
    h.controller.start("app", "green", None).await.unwrap();
    assert_eq!(h.green(), 10);
    run_for(9 * SEC).await;
    assert_eq!(
        (h.green(), h.verdicts()),
        (10, 0),
        "no verdict before an interval"
    );
    run_for(2 * SEC).await;
    assert_eq!((h.green(), h.verdicts()), (50, 1));
    run_for(10 * SEC).await;
    assert_eq!((h.phase(), h.green()), (Phase::Promoted, 100));
    let hooks = h.recorded(|r| r.notified.clone());
    assert_eq!(hooks.last(), Some(&("post-rollout", Phase::Promoted)));
}

#[tokio::test(start_paused = true)]
async fn analysis_runs_once_per_interval_after_a_blue_green_switch() {
    let rollout = "[route.rollout]\nstrategy = \"blue_green\"\ninterval = \"10s\"\nrollback_window = \"1h\"\n\
                   [route.rollout.analysis]\nmin_requests = 10\nsuccess_rate = 99.0\n";
    let h = start(config(rollout), Script::healthy(), Loaded::default());
    h.controller.start("app", "green", None).await.unwrap();
    run_for(11 * SEC).await;
    assert_eq!(h.phase(), Phase::Promoted);
    let promoted = h.verdicts();
    run_for(60 * SEC).await;
    let after = h.verdicts() - promoted;
    assert!(
        (5..=6).contains(&after),
        "{after} verdicts in 60 s of 10 s intervals"
    );
    let events = h.recorded(|r| r.transitions.len());
    assert!(
        events < 20,
        "{events} transitions: the event log is not flooded"
    );
}

#[tokio::test(start_paused = true)]
async fn a_restart_waits_a_full_interval_of_fresh_data() {
    let h = start(
        config(&canary("10, 50, 100", "")),
        Script::healthy(),
        Loaded::default(),
    );
    h.controller.start("app", "green", None).await.unwrap();
    run_for(9 * SEC).await;
    let loaded = h.restart_state().await;
    let h = start(
        config(&canary("10, 50, 100", "")),
        Script::healthy(),
        loaded,
    );
    assert_eq!(
        (h.phase(), h.green()),
        (Phase::Progressing, 10),
        "resumed at the step"
    );
    run_for(5 * SEC).await;
    assert_eq!(
        h.verdicts(),
        0,
        "the old interval's remainder is not judged"
    );
    run_for(6 * SEC).await;
    assert_eq!((h.verdicts(), h.green()), (1, 50));
}

#[tokio::test(start_paused = true)]
async fn the_tripwire_acts_while_paused_and_while_the_gate_is_pending() {
    let gate = "tripwire = 5\n[[route.rollout.webhook]]\non = \"confirm-promotion\"\nurl = \"http://127.0.0.1:1/gate\"\n";
    for paused in [true, false] {
        let h = start(
            config(&canary("50, 100", gate)),
            Script::healthy(),
            Loaded::default(),
        );
        h.controller.start("app", "green", None).await.unwrap();
        if paused {
            h.controller.command("app", Command::Pause).await.unwrap();
        } else {
            run_for(11 * SEC).await;
            assert_eq!(h.phase(), Phase::AwaitingPromotion);
            assert_eq!(
                h.recorded(|r| r.gates.len()),
                1,
                "the gate is asked, unanswered"
            );
        }
        h.script.set(|s| {
            s.sensed.consecutive_failures = 5;
            s.sensed.candidate.failures += 5;
        });
        run_for(SEC).await;
        assert_eq!(
            (h.phase(), h.green()),
            (Phase::RolledBack, 0),
            "paused: {paused}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_paused_canary_whose_candidate_fails_rolls_back() {
    let h = start(
        config(&canary("50, 100", "")),
        Script::healthy(),
        Loaded::default(),
    );
    h.controller.start("app", "green", None).await.unwrap();
    h.controller
        .set_weights("app", vec![("blue".into(), 20), ("green".into(), 80)])
        .await
        .unwrap();
    assert_eq!((h.phase(), h.green()), (Phase::Paused, 80));
    h.script.set(|s| s.failing = 5);
    run_for(21 * SEC).await;
    assert_eq!((h.phase(), h.green()), (Phase::RolledBack, 0));
    let view = h.controller.view("app").unwrap();
    assert_eq!(
        view.record.manual, None,
        "the rollback took the traffic back"
    );
}

#[tokio::test(start_paused = true)]
async fn a_late_gate_answer_never_acts_on_a_newer_rollout() {
    let gate =
        "[[route.rollout.webhook]]\non = \"pre-rollout\"\nurl = \"http://127.0.0.1:1/gate\"\n";
    let h = start(
        config(&canary("50, 100", gate)),
        Script::healthy(),
        Loaded::default(),
    );
    h.controller.start("app", "green", None).await.unwrap();
    h.controller.command("app", Command::Abort).await.unwrap();
    h.controller.start("app", "green", None).await.unwrap();
    let gates = h.recorded(|r| r.gates.clone());
    assert_eq!(gates.len(), 2);
    h.answer(WebhookKind::PreRollout, gates[0].1.clone(), Ok(()));
    run_for(SEC).await;
    assert_eq!(
        (h.phase(), h.green()),
        (Phase::Idle, 0),
        "still waiting for its own gate"
    );
    let ignored = h.recorded(|r| {
        r.events
            .iter()
            .any(|e| e.0 == EventKind::Gate && e.2.contains("earlier"))
    });
    assert!(ignored);
    h.answer(WebhookKind::PreRollout, gates[1].1.clone(), Ok(()));
    run_for(SEC).await;
    assert_eq!((h.phase(), h.green()), (Phase::Progressing, 50));
}

#[tokio::test(start_paused = true)]
async fn gate_refusals_are_events_of_their_own() {
    let gate = "[[route.rollout.webhook]]\non = \"confirm-promotion\"\nurl = \"http://127.0.0.1:1/gate\"\n";
    let h = start(
        config(&canary("50, 100", gate)),
        Script::healthy(),
        Loaded::default(),
    );
    h.controller.start("app", "green", None).await.unwrap();
    run_for(11 * SEC).await;
    let (_, ticket) = h.recorded(|r| r.gates[0].clone());
    h.answer(
        WebhookKind::ConfirmPromotion,
        ticket,
        Err("http://x answered 403".into()),
    );
    run_for(SEC).await;
    let gate = h.recorded(|r| r.events.iter().filter(|e| e.0 == EventKind::Gate).count());
    assert_eq!((gate, h.phase()), (1, Phase::AwaitingPromotion));
    run_for(10 * SEC).await;
    assert_eq!(
        h.recorded(|r| r.gates.len()),
        2,
        "asked again one interval later"
    );
}

#[tokio::test(start_paused = true)]
async fn commands_outside_a_rollout_never_move_traffic() {
    let h = start(
        config(&canary("50, 100", "")),
        Script::healthy(),
        Loaded::default(),
    );
    h.controller.start("app", "green", None).await.unwrap();
    h.script.set(|s| s.failing = 5);
    run_for(21 * SEC).await;
    assert_eq!((h.phase(), h.green()), (Phase::RolledBack, 0));
    let published = h.recorded(|r| r.published.len());
    h.controller.command("app", Command::Pause).await.unwrap();
    assert_eq!(h.phase(), Phase::Paused);
    h.controller.command("app", Command::Resume).await.unwrap();
    assert_eq!(h.phase(), Phase::RolledBack);
    assert_eq!(
        h.recorded(|r| r.published.len()),
        published,
        "no traffic moved"
    );
    for command in [Command::Promote, Command::Abort, Command::Resume] {
        let why = conflict(h.controller.command("app", command).await);
        assert!(why.starts_with(command.as_str()), "{why}");
    }
    assert_eq!(h.green(), 0);
}

#[tokio::test(start_paused = true)]
async fn promote_and_abort_racing_exactly_one_wins() {
    let h = start(
        config(&canary("50, 100", "")),
        Script::healthy(),
        Loaded::default(),
    );
    h.controller.start("app", "green", None).await.unwrap();
    let (a, b) = tokio::join!(
        h.controller.command("app", Command::Promote),
        h.controller.command("app", Command::Abort)
    );
    assert!(a.is_ok() != b.is_ok(), "{a:?} {b:?}");
    assert_eq!(h.phase(), Phase::Promoted);
}
