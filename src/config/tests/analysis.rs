//! The analysis additions of SPEC §15: values, defaults and problems.

use super::{fails, ok};
use crate::config::{Compare, OnTimeout};

fn rollout(keys: &str, analysis: &str) -> String {
    format!(
        "[[route]]\nname = \"a\"\npool = \"blue\"\n[route.rollout]\nstrategy = \"canary\"\n{keys}\
         [route.rollout.analysis]\n{analysis}"
    )
}

#[test]
fn sequential_keys_and_defaults() {
    let c = ok(&rollout(
        "max_duration = \"2h\"\non_timeout = \"hold\"\nverify_window = \"5m\"\n\
         freeze = [\"Fri 15:00-Mon 09:00 Europe/Berlin\"]\n",
        "compare = \"sequential\"\nconfidence = 99.0\ntolerance = { failure_rate = 0.2, p95 = \"10%\" }\n",
    ));
    let ro = c.routes[0].rollout.as_ref().unwrap();
    let a = &ro.analysis;
    assert_eq!((a.compare, a.confidence), (Compare::Sequential, 99.0));
    assert_eq!(a.tolerance.failure_rate, 0.2);
    assert_eq!(a.tolerance.latency.len(), 1);
    assert_eq!(
        (a.tolerance.latency[0].name, a.tolerance.latency[0].fraction),
        ("p95", 0.1)
    );
    assert_eq!(ro.on_timeout, OnTimeout::Hold);
    assert_eq!(ro.verify_window, Some(std::time::Duration::from_secs(300)));
    assert_eq!(ro.freeze[0].text, "Fri 15:00-Mon 09:00 Europe/Berlin");
    let plain = ok(&rollout("", "min_requests = 5\n"));
    let a = &plain.routes[0].rollout.as_ref().unwrap().analysis;
    assert_eq!(
        (a.compare, a.confidence, a.tolerance.failure_rate),
        (Compare::Fixed, 95.0, 0.5)
    );
    let global = ok(&format!(
        "[proxy]\nfreeze = [\"18:00-08:00\"]\n{}",
        rollout("", "")
    ));
    assert_eq!(global.proxy.freeze.len(), 1);
}

#[test]
fn sequential_problems_name_their_key() {
    let key = |k: &str| format!("route \"a\".rollout.analysis.{k}");
    fails(
        &rollout("", "compare = \"bayes\"\n"),
        "\"bayes\"",
        &key("compare"),
        "expected \"fixed\" or \"sequential\"",
    );
    fails(
        &rollout("", "compare = \"sequential\"\nconfidence = 100.0\n"),
        "100.0",
        &key("confidence"),
        "from 50 to below 100",
    );
    fails(
        &rollout("", "confidence = 90.0\n"),
        "90.0",
        &key("confidence"),
        "only with compare = \"sequential\"",
    );
    fails(
        &rollout(
            "",
            "compare = \"sequential\"\ntolerance = { p95 = \"fast\" }\n",
        ),
        "\"fast\"",
        &key("tolerance.p95"),
        "must be a percent",
    );
    fails(
        &rollout("on_timeout = \"hold\"\n", ""),
        "\"hold\"",
        "route \"a\".rollout.on_timeout",
        "needs max_duration",
    );
    fails(
        &rollout("freeze = [\"Fri 15:00-Mon 09:00 Mars/Olympus\"]\n", ""),
        "Mars/Olympus",
        "route \"a\".rollout.freeze[0]",
        "unknown time zone",
    );
    fails(
        "[proxy]\nfreeze = [\"Fri 15:00\"]\n",
        "\"Fri 15:00\"",
        "proxy.freeze[0]",
        "no '-' between start and end",
    );
}
