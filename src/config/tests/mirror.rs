//! `[route.mirror]` and `[route.rollout.shadow]`: defaults, and each
//! problem named with its line and key.

use super::{fails, ok};
use crate::config::{BodyCompare, StatusCompare};

const ROUTE: &str = "[[route]]\nname = \"app\"\npool = \"blue\"\n";

#[test]
fn defaults_and_every_key() {
    let c = ok(&format!("{ROUTE}[route.mirror]\npool = \"green\"\n"));
    let m = c.routes[0].mirror.as_ref().unwrap();
    assert_eq!((m.percent, m.max_body, m.queue), (100, 65_536, 64));
    assert_eq!(m.methods, ["GET", "HEAD"]);
    assert_eq!(
        (m.compare.status, m.compare.body),
        (StatusCompare::Exact, BodyCompare::Json)
    );
    assert!(!m.compare.noise && m.compare.ignore.is_empty());

    let c = ok(&format!(
        "{ROUTE}[route.rollout]\nstrategy = \"ab_test\"\nmatch = {{ headers = {{ \"x-b\" = \"1\" }} }}\n\
         [route.rollout.shadow]\npercent = 50\nmethods = [\"get\", \"POST\"]\nmax_body = 10\nqueue = 3\n\
         iterations = 4\nmax_mismatch_rate = 0.5\nmin_compared = 7\n\
         [route.rollout.shadow.compare]\nstatus = \"class\"\nheaders = [\"Content-Type\"]\n\
         body = \"json\"\nignore = [\"$.ts\", \"$.items[*].id\"]\nnoise = true\n"
    ));
    let s = c.routes[0]
        .rollout
        .as_ref()
        .unwrap()
        .shadow
        .as_ref()
        .unwrap();
    assert_eq!(
        (s.iterations, s.max_mismatch_rate, s.min_compared),
        (4, 0.5, 7)
    );
    let m = &s.mirror;
    assert_eq!(
        (m.pool.as_str(), m.percent, m.max_body, m.queue),
        ("", 50, 10, 3)
    );
    assert_eq!(m.methods, ["GET", "POST"]);
    assert_eq!(m.compare.headers, ["content-type"]);
    assert_eq!(m.compare.status, StatusCompare::Class);
    assert!(m.compare.noise);
}

#[test]
fn problems_name_line_and_key() {
    let r = "route \"app\"";
    fails(
        &format!("{ROUTE}[route.mirror]\npool = \"blue\" # mirror\n"),
        "\"blue\" # mirror",
        &format!("{r}.mirror.pool"),
        "is the route's own pool",
    );
    fails(
        &format!("{ROUTE}[route.mirror]\npool = \"teal\"\n"),
        "\"teal\"",
        &format!("{r}.mirror.pool"),
        "unknown pool \"teal\"",
    );
    fails(
        &format!("{ROUTE}[route.mirror]\npool = \"green\"\npercent = 101\n"),
        "101",
        &format!("{r}.mirror.percent"),
        "must be a percent",
    );
    fails(
        &format!("{ROUTE}[route.mirror]\npool = \"green\"\nqueue = 0\n"),
        "queue = 0",
        &format!("{r}.mirror.queue"),
        "must be at least 1",
    );
    fails(
        &format!("{ROUTE}[route.mirror]\npool = \"green\"\n[route.mirror.compare]\nignore = [\"timestamp\"]\n"),
        "\"timestamp\"",
        &format!("{r}.mirror.compare.ignore"),
        "must start with '$'",
    );
    fails(
        &format!(
            "{ROUTE}[route.mirror]\npool = \"green\"\n[route.mirror.compare]\nbody = \"xml\"\n"
        ),
        "\"xml\"",
        &format!("{r}.mirror.compare.body"),
        "expected \"hash\", \"json\" or \"none\"",
    );
    fails(
        &format!("{ROUTE}[route.rollout]\nstrategy = \"recreate\"\n[route.rollout.shadow]\niterations = 2\n"),
        "[route.rollout.shadow]",
        &format!("{r}.rollout.shadow"),
        "canary, blue_green or ab_test, not recreate",
    );
    fails(
        &format!("{ROUTE}[route.rollout]\nstrategy = \"canary\"\n[route.rollout.shadow]\nmax_mismatch_rate = 150.0\n"),
        "150.0",
        &format!("{r}.rollout.shadow.max_mismatch_rate"),
        "must be a percent",
    );
}
