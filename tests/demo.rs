//! `veer demo` end to end with a short schedule.

use std::time::Duration;

use veer::demo::{run, DemoOptions, Outcome};

fn options(v2_error_rate: f64) -> DemoOptions {
    DemoOptions {
        v2_error_rate,
        v2_latency: Duration::ZERO,
        interval: Duration::from_millis(400),
        steps: vec![10, 50, 100],
        clients: 4,
        live: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_v2_is_promoted() {
    let mut lines = Vec::new();
    let outcome = run(options(0.0), |l| lines.push(l)).await.unwrap();
    assert_eq!(outcome, Outcome::Promoted, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("v1   0%  v2 100%")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with('\r') && l.contains("req/s")),
        "the live status line is sent: {lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_v2_is_rolled_back() {
    let mut lines = Vec::new();
    let outcome = run(options(50.0), |l| lines.push(l)).await.unwrap();
    assert_eq!(outcome, Outcome::RolledBack, "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("v2 100%")), "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.contains("success rate")),
        "the failed bound is shown: {lines:#?}"
    );
}
