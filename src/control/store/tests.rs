//! The store: round trip, corrupt files, damaged routes, migration.

use super::*;
use crate::config::Strategy;

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("veer-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn record() -> Record {
    let mut rollout = Rollout::new("app", Strategy::Canary, "blue", "green", 7);
    rollout.phase = Phase::Progressing;
    rollout.traffic.candidate_weight = 25;
    Record {
        basis: Basis {
            pool: "green".into(),
            weights: None,
            ..Basis::default()
        },
        stable: Some("blue".into()),
        rollout: Some(rollout),
        generation: 1,
        ..Record::default()
    }
}

#[test]
fn round_trips_and_missing_is_empty() {
    let d = dir("round");
    let store = Store::new(Some(d.clone()));
    assert!(store.load().routes.is_empty());
    let routes: BTreeMap<_, _> = [("app".to_string(), record())].into();
    store.save(&routes).unwrap();
    let loaded = store.load();
    assert_eq!(loaded.routes, routes);
    assert!(loaded.notes.is_empty(), "{:?}", loaded.notes);
}

#[test]
fn a_corrupt_file_is_moved_aside_and_the_previous_copy_read() {
    let d = dir("corrupt");
    let store = Store::new(Some(d.clone()));
    let routes: BTreeMap<_, _> = [("app".to_string(), record())].into();
    store.save(&routes).unwrap();
    store.save(&routes).unwrap();
    std::fs::write(d.join(FILE), "{not json").unwrap();
    let loaded = store.load();
    assert_eq!(loaded.routes, routes, "read from {PREVIOUS}");
    let notes: Vec<&str> = loaded.notes.iter().map(|n| n.2.as_str()).collect();
    assert!(notes.iter().any(|n| n.contains("corrupt")), "{notes:?}");
    let moved = std::fs::read_dir(&d)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.file_name().to_string_lossy().contains(".corrupt-"));
    assert!(moved);
}

#[test]
fn a_damaged_route_keeps_its_last_known_stable_pool() {
    let d = dir("damaged");
    let mut text = serde_json::to_value(Stored {
        version: 1,
        routes: [("app".to_string(), record())].into(),
    })
    .unwrap();
    text["routes"]["app"]["rollout"]["phase"] = "sideways".into();
    std::fs::write(d.join(FILE), text.to_string()).unwrap();
    let loaded = Store::new(Some(d)).load();
    let rec = &loaded.routes["app"];
    assert_eq!(rec.rollout, None);
    assert_eq!(rec.stable.as_deref(), Some("blue"));
    assert_eq!(rec.stable_pool(), "blue");
    assert_eq!(loaded.notes[0].0, EventKind::StateError);
    assert_eq!(loaded.notes[0].1.as_deref(), Some("app"));
}

#[test]
fn the_two_old_files_are_migrated_and_kept_as_bak() {
    let d = dir("migrate");
    let mut rollout = Rollout::new("app", Strategy::Canary, "blue", "green", 7);
    rollout.phase = Phase::Progressing;
    rollout.traffic.candidate_weight = 25;
    let mut done = Rollout::new("api", Strategy::Canary, "v1", "v2", 7);
    done.phase = Phase::RolledBack;
    let rollouts = serde_json::json!({
        "rollouts": [rollout, done],
        "file_pools": {"app": "green", "api": "v2"},
    });
    std::fs::write(d.join("rollouts.json"), rollouts.to_string()).unwrap();
    let state = serde_json::json!({"routes": {"web": {
        "weights": {"stable": "a", "percent": [["a", 70], ["b", 30]]},
        "phase": "paused", "paused": true, "previous": null, "candidate": "b",
        "step": null, "failed_checks": 0, "rollout": null,
        "basis": {"pool": "a", "weights": null}
    }}});
    std::fs::write(d.join("state.json"), state.to_string()).unwrap();

    let loaded = Store::new(Some(d.clone())).load();
    let app = &loaded.routes["app"];
    assert_eq!(
        app.rollout.as_ref().map(|r| r.traffic.candidate_weight),
        Some(25)
    );
    assert_eq!(
        (app.basis.pool.as_str(), app.stable_pool()),
        ("green", "blue")
    );
    let api = &loaded.routes["api"];
    assert_eq!(
        (api.rollout.is_none(), api.stable.as_deref()),
        (true, Some("v1"))
    );
    assert_eq!(api.phase(), Phase::RolledBack);
    let web = &loaded.routes["web"];
    assert_eq!(web.manual.as_ref().map(|w| w.percent.len()), Some(2));
    assert_eq!(web.phase(), Phase::Paused);
    assert!(d.join("state.json.bak").exists() && d.join("rollouts.json.bak").exists());
    assert!(!d.join("state.json").exists() && !d.join("rollouts.json").exists());
    // The next start reads the new file alone.
    let again = Store::new(Some(d)).load();
    assert_eq!(again.routes, loaded.routes);
    assert!(again.notes.is_empty());
}
