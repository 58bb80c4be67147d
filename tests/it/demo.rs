//! `veer demo` end to end with a short schedule.

use std::time::Duration;

use veer::demo::{run, DemoOptions, Outcome};

/// Each demo client sends at most about 100 requests/s (fewer in a debug
/// build on a busy machine: about 80). 8 clients for 600 ms give the 10% step
/// about 40 candidate requests per interval, twice `min_requests = 20`; 4
/// clients and 400 ms gave about 13, and the step held until the deadline.
fn options(v2_error_rate: f64) -> DemoOptions {
    DemoOptions {
        v2_error_rate,
        v2_latency: Duration::ZERO,
        interval: Duration::from_millis(600),
        steps: vec![10, 50, 100],
        clients: 8,
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

/// The binary itself: exits 0 and says how the canary ended. The demo's
/// load is about 400 requests/s, so a 1 s interval gives the 10% step about
/// 40 candidate requests, well over `min_requests = 20` (400 ms gave ~16
/// and held on inconclusive intervals on a slow machine).
#[test]
fn the_demo_command_exits_0_and_says_how_it_ended() {
    for (args, said) in [
        (
            &["--interval", "1s", "--steps", "10,50,100"][..],
            "promoted",
        ),
        (
            &[
                "--interval",
                "1s",
                "--steps",
                "10,50,100",
                "--v2-error-rate",
                "50",
            ][..],
            "rolled back",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_veer"))
            .arg("demo")
            .args(args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{args:?}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let last = stdout.lines().last().unwrap_or_default();
        assert!(
            last.starts_with(said),
            "{args:?}: last line {last:?}\n{stdout}"
        );
        assert!(
            !stdout.contains('\x1b'),
            "no terminal codes when stdout is not a terminal"
        );
    }
}
