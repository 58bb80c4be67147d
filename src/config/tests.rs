//! Tests of `load`/`parse`: shipped configs, defaults, whole-file errors.
//! One case per class of problem lives in `problems`.

mod analysis;
mod mirror;
mod problems;
mod tls;

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

const LISTENER: &str = "[[listener]]\nname = \"public\"\nlisten = \"127.0.0.1:8080\"\n";
const POOLS: &str = "[[pool]]\nname = \"blue\"\nendpoints = [\"127.0.0.1:9001\"]\n\
                     [[pool]]\nname = \"green\"\nendpoints = [\"127.0.0.1:9002\"]\n";

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config")
        .join(name)
}

/// `LISTENER` + `POOLS` + `rest`, parsed as `/etc/veer/veer.toml`.
fn with_base(rest: &str) -> (String, Result<Config, ConfigError>) {
    let text = format!("{LISTENER}{POOLS}{rest}");
    let result = parse(&text, Path::new("/etc/veer/veer.toml"));
    (text, result)
}

fn ok(rest: &str) -> Config {
    let (_, result) = with_base(rest);
    result.unwrap_or_else(|e| panic!("expected valid config, got:\n{e}"))
}

/// Asserts a problem on the line holding `needle`, with `key`, whose
/// message contains `says`.
fn expect(text: &str, err: &ConfigError, needle: &str, key: &str, says: &str) {
    let at = text
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in text"));
    let line = text[..at].matches('\n').count() + 1;
    let found = err
        .problems()
        .iter()
        .any(|p| p.line == Some(line) && p.key == key && p.message.contains(says));
    assert!(
        found,
        "no problem at line {line} key {key:?} saying {says:?} in:\n{err}"
    );
}

fn fails(rest: &str, needle: &str, key: &str, says: &str) {
    let (text, result) = with_base(rest);
    let err = result.expect_err("expected an invalid config");
    expect(&text, &err, needle, key, says);
}

#[test]
fn shipped_configs_load() {
    let example = load(&shipped("example.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(example.pools.len(), 2);
    let route = &example.routes[0];
    assert_eq!(
        route.host,
        Some(HostMatch::Exact("myapp.example.com".into()))
    );
    assert_eq!(
        route.sticky,
        Some(StickyKey::Header(http::HeaderName::from_static(
            "x-user-id"
        )))
    );
    let rollout = route.rollout.as_ref().unwrap();
    assert_eq!(rollout.steps, [5, 25, 50, 100]);
    assert_eq!(rollout.analysis.p95, Some(Duration::from_millis(500)));
    assert_eq!(rollout.webhooks[0].on, WebhookKind::ConfirmPromotion);
    assert_eq!(example.admin.token_env.as_deref(), Some("VEER_ADMIN_TOKEN"));

    let minimal = load(&shipped("minimal.toml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        minimal.listeners[0].listen,
        "127.0.0.1:8080".parse().unwrap()
    );
    assert_eq!(minimal.routes[0].pool, "app");
}

#[test]
fn defaults_are_applied() {
    let c = ok("[[route]]\nname = \"r\"\npool = \"blue\"\n\
                [route.rollout]\nstrategy = \"blue_green\"\n\
                [[route.rollout.webhook]]\non = \"rollback\"\nurl = \"http://127.0.0.1:1/\"\n\
                [[pool]]\nname = \"h\"\nendpoints = [\"a:1\"]\n[pool.health]\npath = \"/\"\n");
    let s = Duration::from_secs;
    let p = &c.proxy;
    assert!(p.workers >= 1);
    assert_eq!(
        (p.shutdown_grace, p.shutdown_delay, p.drain_timeout),
        (s(30), s(0), s(30))
    );
    assert_eq!((p.header_timeout, p.idle_timeout), (s(10), s(60)));
    assert_eq!(p.state_dir, Path::new("/etc/veer/state"));
    assert_eq!((p.max_header_bytes, p.access_log), (65536, false));
    assert_eq!(c.admin.listen, "127.0.0.1:9901".parse().unwrap());
    assert_eq!(c.admin.token_env, None);
    let pool = &c.pools[0];
    assert_eq!(pool.balance, Balance::LeastRequest);
    assert_eq!(
        (
            pool.connect_timeout,
            pool.idle_timeout,
            pool.health.is_none()
        ),
        (s(1), s(4), true)
    );
    let h = c.pools[2].health.as_ref().unwrap();
    assert_eq!(
        (
            h.interval,
            h.timeout,
            h.healthy_threshold,
            h.unhealthy_threshold
        ),
        (s(5), s(1), 1, 3)
    );
    let r = &c.routes[0];
    assert_eq!(
        (r.path_prefix.as_str(), r.timeout, r.retries),
        ("/", s(30), 1)
    );
    assert_eq!(
        (r.host.clone(), r.weights.clone(), r.sticky.clone()),
        (None, None, None)
    );
    let ro = r.rollout.as_ref().unwrap();
    assert_eq!(
        (ro.interval, ro.threshold, ro.tripwire, ro.hold),
        (s(60), 3, None, s(0))
    );
    assert_eq!(
        (ro.max_surge, ro.max_unavailable, ro.ready_timeout),
        (1, 0, s(60))
    );
    assert_eq!(ro.preview_header.as_str(), "x-veer-preview");
    assert_eq!(
        (ro.auto_promote, ro.rollback_window, ro.iterations),
        (true, s(600), 10)
    );
    assert_eq!(ro.analysis.min_requests, 50);
    assert_eq!((ro.analysis.success_rate, ro.analysis.p99), (None, None));
    assert_eq!((ro.webhooks[0].timeout, ro.webhooks[0].retries), (s(5), 2));
}

#[test]
fn relative_paths_resolve_against_the_config_dir() {
    let text = format!(
        "[proxy]\nstate_dir = \"var/state\"\n[[listener]]\nname = \"tls\"\nlisten = \"127.0.0.1:8443\"\n\
         tls = {{ cert = \"certs/a.pem\", key = \"/abs/a.key\" }}\n{POOLS}"
    );
    let c = parse(&text, Path::new("/etc/veer/veer.toml")).unwrap();
    assert_eq!(c.proxy.state_dir, Path::new("/etc/veer/var/state"));
    let tls = c.listeners[0].tls.as_ref().unwrap();
    assert_eq!(
        (tls.certs[0].cert.as_path(), tls.certs[0].key.as_path()),
        (Path::new("/etc/veer/certs/a.pem"), Path::new("/abs/a.key"))
    );
}

#[test]
fn no_listener_is_an_error_but_no_route_is_fine() {
    let err = parse(POOLS, Path::new("v.toml")).unwrap_err();
    let p = &err.problems()[0];
    assert_eq!((p.line, p.key.as_str()), (None, "listener"));
    assert!(ok("").routes.is_empty());
}

#[test]
fn toml_errors_name_line_and_key() {
    let rest =
        "[[route]]\nname = \"a\"\npool = \"blue\"\n[[route]]\nname = \"b\"\npool = \"blue\"\n\
                [route.rollout]\nstrategy = \"canary\"\nbogus = 1\n";
    fails(
        rest,
        "bogus",
        "route[1].rollout.bogus",
        "unknown field `bogus`",
    );
    fails(
        "[proxy]\nworkers = \"many\"\n",
        "\"many\"",
        "proxy.workers",
        "invalid type",
    );
    fails(
        "[proxy]\nworkers = \n",
        "workers",
        "proxy.workers",
        "string values must be quoted",
    );
}

#[test]
fn every_problem_is_reported_in_line_order() {
    let rest = "[proxy]\nidle_timeout = \"soon\"\n\
                [[route]]\nname = \"a\"\npool = \"nope\"\npath_prefix = \"x\"\nweights = { blue = 1 }\n";
    let (_, err) = with_base(rest);
    let err = err.unwrap_err();
    assert_eq!(err.problems().len(), 4, "{err}");
    let lines: Vec<_> = err.problems().iter().map(|p| p.line.unwrap()).collect();
    assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
    let shown = err.to_string();
    assert_eq!(shown.lines().count(), 4);
    assert!(shown.starts_with("/etc/veer/veer.toml:"), "{shown}");
    assert!(
        shown.contains(": route \"a\".pool: unknown pool \"nope\""),
        "{shown}"
    );
}

#[test]
fn missing_file_is_a_read_error() {
    let err = load(Path::new("/nonexistent/veer.toml")).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(
        err.to_string()
            .starts_with("/nonexistent/veer.toml: cannot read"),
        "{err}"
    );
}
