//! One test per class of validation problem, each checked for line and key.

use super::{expect, fails, ok, with_base};
use crate::config::{HostMatch, StickyKey};

#[test]
fn duplicate_names() {
    let rest = "[[listener]]\nname = \"public\"\nlisten = \"127.0.0.1:8081\"\n\
                [[pool]]\nname = \"green\" # again\nendpoints = [\"b:1\"]\n\
                [[route]]\nname = \"r\"\npool = \"blue\"\npath_prefix = \"/a\"\n\
                [[route]]\nname = \"r\" # again\npool = \"blue\"\npath_prefix = \"/b\"\n";
    let (text, err) = with_base(rest);
    let err = err.unwrap_err();
    expect(
        &text,
        &err,
        "name = \"public\"\nlisten = \"127.0.0.1:8081",
        "listener \"public\".name",
        "duplicate listener",
    );
    expect(
        &text,
        &err,
        "name = \"green\" # again",
        "pool \"green\".name",
        "duplicate pool name \"green\" (first on line 8)",
    );
    expect(
        &text,
        &err,
        "name = \"r\" # again",
        "route \"r\".name",
        "duplicate route",
    );
    assert_eq!(err.problems().len(), 3, "{err}");
}

#[test]
fn unknown_pools() {
    let rest =
        "[[route]]\nname = \"myapp\"\npool = \"purple\"\nweights = { blue = 50, teal = 50 }\n\
                [[route.rule]]\nheaders = { \"x-beta\" = \"1\" }\npool = \"orange\"\n";
    let (text, err) = with_base(rest);
    let err = err.unwrap_err();
    expect(
        &text,
        &err,
        "pool = \"purple\"",
        "route \"myapp\".pool",
        "unknown pool \"purple\"",
    );
    expect(
        &text,
        &err,
        "teal",
        "route \"myapp\".weights.teal",
        "unknown pool \"teal\"",
    );
    expect(
        &text,
        &err,
        "pool = \"orange\"",
        "route \"myapp\".rule[0].pool",
        "unknown pool",
    );
}

#[test]
fn bad_duration_and_addresses() {
    let rest = "[proxy]\nheader_timeout = \"10 parsecs\"\n[admin]\nlisten = \"localhost:9901\"\n";
    fails(
        rest,
        "\"10 parsecs\"",
        "proxy.header_timeout",
        "invalid duration",
    );
    fails(rest, "localhost:9901", "admin.listen", "invalid address");
    let rest = "[[listener]]\nname = \"x\"\nlisten = \"8080\"\n";
    fails(rest, "\"8080\"", "listener \"x\".listen", "invalid address");
}

#[test]
fn bad_endpoints() {
    let rest = "[[pool]]\nname = \"p\"\nendpoints = [\n  \"a:1\",\n  \"https://b:443/x\",\n  \"a:1\",\n  \"c:70000\",\n  \"http://d:80\",\n]\n\
                [[pool]]\nname = \"empty\"\n\
                [[pool]]\nname = \"heavy\"\nendpoints = [{ address = \"e:1\", weight = 0 }]\n";
    fails(
        rest,
        "\"https://b",
        "pool \"p\".endpoints[1]",
        "without a path",
    );
    fails(
        rest,
        "\"a:1\",\n  \"c",
        "pool \"p\".endpoints[2]",
        "duplicate endpoint",
    );
    fails(rest, "c:70000", "pool \"p\".endpoints[3]", "port");
    fails(
        rest,
        "http://d",
        "pool \"p\".endpoints[4]",
        "https://host:port",
    );
    fails(
        rest,
        "\"empty\"",
        "pool \"empty\".endpoints",
        "needs endpoints, dns or srv",
    );
    fails(
        rest,
        "0 }",
        "pool \"heavy\".endpoints[0].weight",
        "1..=65535",
    );
}

#[test]
fn weights_must_sum_to_100() {
    let rest = "[[route]]\nname = \"a\"\npool = \"blue\"\nweights = { blue = 90, green = 5 }\n";
    fails(rest, "weights", "route \"a\".weights", "sum to 95");
    let rest = "[[route]]\nname = \"a\"\npool = \"blue\"\nweights = { blue = 120, green = -20 }\n";
    fails(rest, "120", "route \"a\".weights.blue", "0..=100");
    fails(rest, "-20", "route \"a\".weights.green", "0..=100");
    let c = ok("[[route]]\nname = \"a\"\npool = \"blue\"\nweights = { green = 10, blue = 90 }\n");
    // TOML tables do not keep key order: weights come sorted by pool name.
    assert_eq!(
        c.routes[0].weights,
        Some(vec![("blue".into(), 90), ("green".into(), 10)])
    );
}

#[test]
fn host_and_path_prefix() {
    let c = ok("[[route]]\nname = \"a\"\npool = \"blue\"\nhost = \"*.Example.COM\"\npath_prefix = \"/api\"\n");
    assert_eq!(
        c.routes[0].host,
        Some(HostMatch::Suffix(".example.com".into()))
    );
    let rest =
        "[[route]]\nname = \"a\"\npool = \"blue\"\nhost = \"a.com:8080\"\npath_prefix = \"api\"\n\
                [[route]]\nname = \"b\"\npool = \"blue\"\nhost = \"\"\n";
    fails(rest, "a.com:8080", "route \"a\".host", "port");
    fails(
        rest,
        "\"api\"",
        "route \"a\".path_prefix",
        "must start with '/'",
    );
    fails(rest, "host = \"\"", "route \"b\".host", "empty");
}

#[test]
fn rules_and_sticky() {
    let rest = "[[route]]\nname = \"a\"\npool = \"blue\"\n\
                [[route.rule]]\npool = \"green\" # bare\n\
                [[route.rule]]\nheaders = { \"bad header\" = \"1\" }\npool = \"green\"\n\
                [route.sticky]\nheader = \"x-user\"\ncookie = \"session\"\n\
                [[route]]\nname = \"b\"\npool = \"blue\"\npath_prefix = \"/b\"\n[route.sticky] # empty\n";
    fails(
        rest,
        "pool = \"green\" # bare",
        "route \"a\".rule[0]",
        "at least one condition",
    );
    fails(
        rest,
        "\"bad header\"",
        "route \"a\".rule[1].headers.bad header",
        "invalid header name",
    );
    fails(
        rest,
        "[route.sticky]\nheader",
        "route \"a\".sticky",
        "not both",
    );
    fails(
        rest,
        "[route.sticky] # empty",
        "route \"b\".sticky",
        "one of header or cookie",
    );
    let c = ok(
        "[[route]]\nname = \"a\"\npool = \"blue\"\n[[route.rule]]\ncookies = { beta = \"yes\" }\n\
                query = { v = \"2\" }\npool = \"green\"\n[route.sticky]\ncookie = \"session\"\n",
    );
    let rule = &c.routes[0].rules[0];
    assert_eq!(
        (rule.matches.cookies.len(), rule.matches.query.len()),
        (1, 1)
    );
    assert_eq!(
        c.routes[0].sticky,
        Some(StickyKey::Cookie("session".into()))
    );
}

fn rollout(keys: &str) -> String {
    format!("[[route]]\nname = \"a\"\npool = \"blue\"\n[route.rollout]\n{keys}")
}

#[test]
fn canary_steps() {
    let steps = |keys: &str| {
        ok(&rollout(keys)).routes[0]
            .rollout
            .as_ref()
            .unwrap()
            .steps
            .clone()
    };
    assert_eq!(
        steps("strategy = \"canary\"\nsteps = [10, 40]\n"),
        [10, 40, 100]
    );
    assert_eq!(
        steps("strategy = \"canary\"\nstep_weight = 20\nmax_weight = 50\n"),
        [20, 40, 100]
    );
    assert_eq!(steps("strategy = \"canary\"\n"), [5, 25, 50, 100]);
    let rest = rollout("strategy = \"canary\"\nsteps = [10, 10, 0, 150]\n");
    fails(
        &rest,
        "10, 0",
        "route \"a\".rollout.steps[1]",
        "must increase",
    );
    fails(&rest, "0, 150", "route \"a\".rollout.steps[2]", "1..=100");
    fails(&rest, "150", "route \"a\".rollout.steps[3]", "1..=100");
    let rest = rollout("strategy = \"canary\"\nsteps = [10]\nstep_weight = 5\n");
    fails(
        &rest,
        "step_weight",
        "route \"a\".rollout.step_weight",
        "not both",
    );
}

#[test]
fn rollout_checks() {
    fails(
        &rollout("strategy = \"ab_test\"\n"),
        "\"ab_test\"",
        "route \"a\".rollout.match",
        "needs `match`",
    );
    fails(
        &rollout("strategy = \"yolo\"\n"),
        "yolo",
        "route \"a\".rollout.strategy",
        "unknown strategy",
    );
    let rest = rollout("strategy = \"canary\"\n[route.rollout.analysis]\nsuccess_rate = 101\n");
    fails(
        &rest,
        "101",
        "route \"a\".rollout.analysis.success_rate",
        "0..=100",
    );
    let c = ok(&rollout(
        "strategy = \"ab_test\"\nmatch = { headers = { \"x-group\" = \"b\" } }\n\
                        [route.rollout.analysis]\nsuccess_rate = 99\n",
    ));
    let ro = c.routes[0].rollout.as_ref().unwrap();
    assert_eq!(
        ro.ab_match.as_ref().unwrap().headers[0].0.as_str(),
        "x-group"
    );
    assert_eq!(ro.analysis.success_rate, Some(99.0));
}

#[test]
fn admin_off_loopback_needs_a_token() {
    fails(
        "[admin]\nlisten = \"0.0.0.0:9901\"\n",
        "0.0.0.0:9901",
        "admin.listen",
        "needs token_env",
    );
    ok("[admin]\nlisten = \"0.0.0.0:9901\"\ntoken_env = \"T\"\n");
}

#[test]
fn outlier_settings() {
    let pool = "[[pool]]\nname = \"o\"\nendpoints = [\"a:1\"]\n[pool.outlier]\n";
    let c = ok(pool);
    let o = c.pools[2].outlier.clone().unwrap();
    let s = std::time::Duration::from_secs;
    assert_eq!(
        (
            o.consecutive_failures,
            o.base_ejection,
            o.max_ejection,
            o.max_ejected_percent
        ),
        (5, s(30), s(300), 50)
    );
    assert!(c.pools[0].outlier.is_none());
    fails(
        &format!("{pool}consecutive_failures = 0\n"),
        "consecutive_failures = 0",
        "pool \"o\".outlier.consecutive_failures",
        "at least 1",
    );
    fails(
        &format!("{pool}max_ejected_percent = 101\n"),
        "max_ejected_percent",
        "pool \"o\".outlier.max_ejected_percent",
        "percent",
    );
    fails(
        &format!("{pool}base_ejection = \"1m\"\nmax_ejection = \"10s\"\n"),
        "max_ejection = ",
        "pool \"o\".outlier.max_ejection",
        "shorter than base_ejection",
    );
}

#[test]
fn drained_webhooks_global_and_per_route() {
    let c = ok("[[route]]\nname = \"r\"\npool = \"blue\"\n\
                [route.rollout]\nstrategy = \"canary\"\n\
                [[route.rollout.webhook]]\non = \"drained\"\nurl = \"http://127.0.0.1:1/r\"\n\
                [[webhook]]\non = \"drained\"\nurl = \"http://127.0.0.1:1/g\"\nretries = 0\n");
    use crate::config::WebhookKind::Drained;
    assert_eq!(
        c.routes[0].rollout.as_ref().unwrap().webhooks[0].on,
        Drained
    );
    assert_eq!((c.webhooks[0].on, c.webhooks[0].retries), (Drained, 0));
    fails(
        "[[webhook]]\non = \"rollback\" # global\nurl = \"http://127.0.0.1:1/\"\n",
        "on = \"rollback\" # global",
        "webhook[0].on",
        "a global [[webhook]] takes on = \"drained\"",
    );
    fails(
        "[[webhook]]\non = \"drained\"\nurl = \"ftp://x\"\n",
        "url = \"ftp://x\"",
        "webhook[0].url",
        "must be an http:// or https:// URL",
    );
}

#[test]
fn absurd_proxy_values() {
    fails(
        "[proxy]\nworkers = 100000\n",
        "workers = 100000",
        "proxy.workers",
        "more than 1024",
    );
    let file = std::env::temp_dir().join(format!("veer-state-file-{}", std::process::id()));
    std::fs::write(&file, "not a directory").unwrap();
    let rest = format!("[proxy]\nstate_dir = {:?}\n", file.display().to_string());
    fails(&rest, "state_dir", "proxy.state_dir", "is not a directory");
    let _ = std::fs::remove_file(file);
}

/// 40,000 pools (and as many routes): validation is linear in the file's
/// size (line numbers come from one index, not a scan per name).
#[test]
fn a_huge_config_checks_in_linear_time() {
    use std::fmt::Write;
    let mut rest = String::new();
    for i in 0..40_000 {
        let _ = write!(
            rest,
            "[[pool]]\nname = \"p{i}\"\nendpoints = [\"10.0.0.1:80\"]\n"
        );
    }
    let started = std::time::Instant::now();
    let config = ok(&rest);
    assert_eq!(config.pools.len(), 40_002);
    // Quadratic took 20 s and more; linear is well under a second in
    // release, a few in debug on a loaded machine.
    let took = started.elapsed();
    assert!(took < std::time::Duration::from_secs(15), "{took:?}");
}
