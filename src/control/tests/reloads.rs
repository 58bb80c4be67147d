//! The controller against config changes, restarts and readiness, on
//! paused time.

use super::*;

#[tokio::test(start_paused = true)]
async fn manual_weights_on_a_paused_rollout_survive_an_unrelated_reload() {
    let h = start(
        config(&canary("10, 50, 100", "")),
        Script::healthy(),
        Loaded::default(),
    );
    h.controller.start("app", "green", None).await.unwrap();
    let manual = vec![("blue".into(), 30), ("green".into(), 70)];
    h.controller.set_weights("app", manual).await.unwrap();
    let other = "[[route]]\nname = \"other\"\npath_prefix = \"/other\"\npool = \"blue\"\n";
    h.controller
        .reconfigure(config_with(other, &canary("10, 50, 100", "")))
        .await
        .unwrap();
    let published = h.recorded(|r| r.configs.last().cloned()).unwrap();
    let mut percent = published["app"].weights.percent.clone();
    percent.sort();
    assert_eq!(
        percent,
        vec![("blue".to_string(), 30), ("green".to_string(), 70)]
    );
    assert_eq!((h.phase(), h.green()), (Phase::Paused, 70));
}

#[tokio::test(start_paused = true)]
async fn changed_steps_apply_from_the_current_weight() {
    let h = start(
        config(&canary("10, 50, 90, 100", "")),
        Script::healthy(),
        Loaded::default(),
    );
    h.controller.start("app", "green", None).await.unwrap();
    run_for(11 * SEC).await;
    assert_eq!(h.green(), 50);
    h.controller
        .reconfigure(config(&canary("20, 40, 60, 100", "")))
        .await
        .unwrap();
    assert_eq!(h.green(), 50, "a reload alone moves nothing");
    run_for(10 * SEC).await;
    assert_eq!((h.phase(), h.green()), (Phase::Progressing, 60));
}

#[tokio::test(start_paused = true)]
async fn a_candidate_pool_that_leaves_aborts_the_rollout() {
    let hook = "[[route.rollout.webhook]]\non = \"event\"\nurl = \"http://127.0.0.1:1/hook\"\n";
    let h = start(
        config(&canary("50, 100", hook)),
        Script::healthy(),
        Loaded::default(),
    );
    h.controller.start("app", "green", None).await.unwrap();
    let text = "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:0\"\n[[pool]]\nname = \"blue\"\nendpoints = [\"127.0.0.1:1\"]\n\
                [[route]]\nname = \"app\"\npool = \"blue\"\n";
    let text = format!("{text}{}", canary("50, 100", hook));
    let without = crate::config::parse(&text, std::path::Path::new("t.toml")).unwrap();
    let without = std::sync::Arc::new(without);
    h.controller.reconfigure(without).await.unwrap();
    let published = h.recorded(|r| r.configs.last().cloned()).unwrap();
    assert_eq!(
        published["app"].weights.percent,
        vec![("blue".to_string(), 100)]
    );
    assert_eq!(h.phase(), Phase::RolledBack);
    assert!(h.recorded(|r| r.events.iter().any(|e| e.0 == EventKind::RolloutEnded)));
    assert!(h.recorded(|r| r.notified.iter().any(|n| n.0 == "rollback")));
    conflict(h.controller.command("app", Command::Promote).await);
}

#[tokio::test(start_paused = true)]
async fn a_route_that_leaves_and_returns_starts_clean() {
    let h = start(
        config(&canary("50, 100", "")),
        Script::healthy(),
        Loaded::default(),
    );
    h.controller.start("app", "green", None).await.unwrap();
    let text = "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:0\"\n[[pool]]\nname = \"blue\"\nendpoints = [\"127.0.0.1:1\"]\n\
                [[pool]]\nname = \"green\"\nendpoints = [\"127.0.0.1:2\"]\n[[route]]\nname = \"web\"\npool = \"blue\"\n";
    let gone =
        std::sync::Arc::new(crate::config::parse(text, std::path::Path::new("t.toml")).unwrap());
    h.controller.reconfigure(gone).await.unwrap();
    assert!(h.recorded(|r| r.events.iter().any(|e| e.0 == EventKind::RolloutEnded)));
    h.controller
        .reconfigure(config(&canary("50, 100", "")))
        .await
        .unwrap();
    assert_eq!((h.phase(), h.green()), (Phase::Idle, 0));
    run_for(30 * SEC).await;
    assert_eq!(h.phase(), Phase::Idle, "no old rollout resumed");
}

#[tokio::test(start_paused = true)]
async fn starting_a_rollout_while_one_runs_or_to_stable_is_refused() {
    let h = start(
        config(&canary("50, 100", "")),
        Script::healthy(),
        Loaded::default(),
    );
    conflict(h.controller.start("app", "blue", None).await);
    h.controller.start("app", "green", None).await.unwrap();
    let why = conflict(h.controller.start("app", "green", None).await);
    assert!(why.contains("in progress"), "{why}");
    conflict(h.controller.start("app", "blue", None).await);
    assert_eq!((h.phase(), h.green()), (Phase::Progressing, 50));
}

#[tokio::test(start_paused = true)]
async fn a_lost_rollout_fails_closed_to_the_last_known_stable() {
    let record = Record {
        basis: Basis {
            pool: "green".into(),
            weights: None,
            ..Basis::default()
        },
        stable: Some("blue".into()),
        ..Record::default()
    };
    let loaded = Loaded {
        routes: [("app".to_string(), record)].into(),
        notes: Vec::new(),
    };
    let text = "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:0\"\n[[pool]]\nname = \"blue\"\nendpoints = [\"127.0.0.1:1\"]\n\
                [[pool]]\nname = \"green\"\nendpoints = [\"127.0.0.1:2\"]\n[[route]]\nname = \"app\"\npool = \"green\"\n";
    let green_file =
        std::sync::Arc::new(crate::config::parse(text, std::path::Path::new("t.toml")).unwrap());
    let h = start(green_file, Script::healthy(), loaded);
    run_for(SEC).await;
    let published = h.recorded(|r| r.configs.last().cloned()).unwrap();
    assert_eq!(
        published["app"].weights.percent,
        vec![("blue".to_string(), 100)]
    );
    let reported = h.recorded(|r| {
        r.events
            .iter()
            .any(|e| e.0 == EventKind::StateError && e.2.contains("last known stable"))
    });
    assert!(reported);
}

#[tokio::test(start_paused = true)]
async fn a_new_rollout_starts_without_the_previous_verdict() {
    let h = start(
        config(&canary("50, 100", "")),
        Script::healthy(),
        Loaded::default(),
    );
    h.controller.start("app", "green", None).await.unwrap();
    run_for(11 * SEC).await;
    h.controller
        .command("app", Command::Rollback)
        .await
        .unwrap();
    run_for(SEC).await;
    assert!(h.controller.view("app").unwrap().record.verdict.is_some());
    h.controller.start("app", "green", None).await.unwrap();
    let view = h.controller.view("app").unwrap();
    assert_eq!(
        (view.record.verdict.clone(), view.record.phase()),
        (None, Phase::Progressing)
    );
}

#[tokio::test(start_paused = true)]
async fn a_canary_waits_for_a_healthy_candidate_then_fails() {
    let h = start(
        config(&canary("50, 100", "ready_timeout = \"30s\"\n")),
        Script::healthy(),
        Loaded::default(),
    );
    h.script.set(|s| s.sensed.ready = 0);
    h.controller.start("app", "green", None).await.unwrap();
    run_for(20 * SEC).await;
    assert_eq!(
        (h.phase(), h.green()),
        (Phase::Progressing, 0),
        "no user sent to it"
    );
    run_for(11 * SEC).await;
    assert_eq!((h.phase(), h.green()), (Phase::RolledBack, 0));
}
