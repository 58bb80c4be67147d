//! Pools that follow DNS (SPEC §13), against a real DNS server on
//! 127.0.0.1 (`support::dns`) whose records the tests change: veer
//! follows a change within the TTL, keeps its set through SERVFAIL,
//! empties a pool only after `hold_empty`, splits by SRV weight, starts
//! with a name that does not resolve yet, and replaces every endpoint of
//! a pool through DNS under load (a record flipped at once from old to
//! new addresses) without a failed request.

use std::net::Ipv4Addr;
use std::time::Duration;

use tokio::time::Instant;

use crate::support::dns::{loopback, upstreams_on_one_port, DnsServer};
use crate::support::load::Load;
use crate::support::*;

/// Generous: the box running the tests is small and shared.
const WAIT: Duration = Duration::from_secs(20);
const CHECKS: &str = "[pool.health]\npath = \"/ready\"\ninterval = \"50ms\"\ntimeout = \"500ms\"\n\
                      healthy_threshold = 1\nunhealthy_threshold = 2\n";

/// One listener, pool `app` with `pool_keys`, route `app` to it; DNS at
/// `dns`.
fn dns_config(dns: &DnsServer, pool_keys: &str) -> String {
    format!(
        "[proxy]\nheader_timeout = \"2s\"\nidle_timeout = \"5s\"\ndrain_timeout = \"5s\"\n\
         resolvers = [\"{}\"]\n\n\
         [[listener]]\nname = \"public\"\nlisten = \"127.0.0.1:0\"\n\n\
         [[pool]]\nname = \"app\"\n{pool_keys}\n\
         [[route]]\nname = \"app\"\npool = \"app\"\n",
        dns.addr
    )
}

/// The addresses of pool `app` now, sorted.
fn members(proxy: &Proxy) -> Vec<String> {
    let snapshot = proxy.routing().load();
    let mut out: Vec<String> = snapshot
        .pool("app")
        .unwrap()
        .endpoints
        .iter()
        .map(|e| e.spec.authority.clone())
        .collect();
    out.sort();
    out
}

fn addrs(ips: &[Ipv4Addr], port: u16) -> Vec<String> {
    ips.iter().map(|ip| format!("{ip}:{port}")).collect()
}

#[tokio::test]
async fn a_changed_record_is_followed_within_its_ttl() {
    let (ups, port) = upstreams_on_one_port(&["a", "b"]).await;
    let dns = DnsServer::start(1).await;
    dns.set_a("app.test", &[loopback(0)]);
    let keys =
        format!("dns = \"app.test:{port}\"\ndns_min_ttl = \"200ms\"\ndns_max_ttl = \"10s\"\n");
    let proxy = Proxy::start(&dns_config(&dns, &keys)).await;
    eventually(WAIT, || members(&proxy) == addrs(&[loopback(0)], port)).await;
    assert_eq!(tally(&proxy.url("/"), 20, &[]).await["a"], 20);

    let changed = Instant::now();
    dns.set_a("app.test", &[loopback(1)]);
    eventually(WAIT, || members(&proxy) == addrs(&[loopback(1)], port)).await;
    let took = changed.elapsed();
    eprintln!("followed a changed A record (TTL 1s) in {took:?}");
    // TTL 1 s plus at most 10% jitter; the rest is slack for a loaded box.
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert_eq!(tally(&proxy.url("/"), 20, &[]).await["b"], 20);
    drop(ups);
}

#[tokio::test]
async fn servfail_and_timeouts_keep_the_last_good_set() {
    let (_ups, port) = upstreams_on_one_port(&["a", "b"]).await;
    let dns = DnsServer::start(1).await;
    dns.set_a("app.test", &[loopback(0), loopback(1)]);
    let keys =
        format!("dns = \"app.test:{port}\"\ndns_min_ttl = \"200ms\"\ndns_max_ttl = \"1s\"\n");
    let proxy = Proxy::start(&dns_config(&dns, &keys)).await;
    let both = addrs(&[loopback(0), loopback(1)], port);
    eventually(WAIT, || members(&proxy) == both).await;

    dns.servfail(true);
    let asked = dns.queries("app.test");
    // Three rounds answered SERVFAIL (with back-off: 200 ms, 400 ms, ...).
    eventually(WAIT, || dns.queries("app.test") >= asked + 3).await;
    assert_eq!(members(&proxy), both);
    let counts = tally(&proxy.url("/"), 40, &[]).await;
    assert!(counts["a"] > 0 && counts["b"] > 0, "{counts:?}");
    let status = proxy.routing().dns_report("app").unwrap();
    assert!(status.error.unwrap().contains("SERVFAIL"), "reported");

    // A server that does not answer at all: the same.
    dns.servfail(false);
    dns.silent(true);
    eventually(WAIT, || {
        let error = proxy
            .routing()
            .dns_report("app")
            .unwrap()
            .error
            .unwrap_or_default();
        !error.is_empty() && !error.contains("SERVFAIL")
    })
    .await;
    let error = proxy.routing().dns_report("app").unwrap().error.unwrap();
    eprintln!("no answer reported as: {error}");
    assert_eq!(members(&proxy), both);
    assert_eq!(
        tally(&proxy.url("/"), 10, &[])
            .await
            .values()
            .sum::<usize>(),
        10
    );

    dns.silent(false);
    dns.set_a("app.test", &[loopback(1)]);
    eventually(WAIT, || members(&proxy) == addrs(&[loopback(1)], port)).await;
    assert_eq!(proxy.routing().dns_report("app").unwrap().error, None);
}

#[tokio::test]
async fn an_empty_answer_empties_the_pool_only_after_hold_empty() {
    let (_ups, port) = upstreams_on_one_port(&["a"]).await;
    let dns = DnsServer::start(1).await;
    dns.set_a("app.test", &[loopback(0)]);
    let keys = format!(
        "dns = \"app.test:{port}\"\ndns_min_ttl = \"200ms\"\ndns_max_ttl = \"1s\"\nhold_empty = \"3s\"\n"
    );
    let proxy = Proxy::start(&dns_config(&dns, &keys)).await;
    eventually(WAIT, || members(&proxy).len() == 1).await;

    let changed = Instant::now();
    dns.set_a("app.test", &[]);
    let hold = Duration::from_secs(3);
    // Until the pool empties, every request is still served.
    let deadline = changed + WAIT;
    while !members(&proxy).is_empty() {
        assert!(Instant::now() < deadline, "never emptied");
        let seen = outcomes(&proxy.url("/"), 1, &[]).await;
        // A 503 only when the pool emptied between the look and the request.
        let served = seen.contains_key(&("a".into(), 200));
        assert!(served || members(&proxy).is_empty(), "{seen:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let emptied = Instant::now();
    let first = dns.first_empty_answer("app.test", changed).expect("asked");
    let held = emptied - first;
    eprintln!("pool emptied {held:?} after the first empty answer (hold_empty 3s)");
    assert!(held >= hold, "emptied after {held:?}, before hold_empty");
    assert!(held < hold + Duration::from_secs(5), "held {held:?}");
    let seen = outcomes(&proxy.url("/"), 3, &[]).await;
    assert_eq!(seen.get(&("-".into(), 503)), Some(&3), "{seen:?}");

    // NXDOMAIN counts as empty too; a record coming back fills it again.
    dns.remove("app.test");
    dns.set_a("app.test", &[loopback(0)]);
    eventually(WAIT, || members(&proxy).len() == 1).await;
}

#[tokio::test]
async fn srv_weights_split_traffic() {
    let (heavy, light) = (
        Upstream::start("heavy").await,
        Upstream::start("light").await,
    );
    let dns = DnsServer::start(5).await;
    dns.set_a("heavy.test", &[Ipv4Addr::LOCALHOST]);
    dns.set_a("light.test", &[Ipv4Addr::LOCALHOST]);
    dns.set_srv(
        "_app._tcp.test",
        &[
            (10, 3, heavy.addr.port(), "heavy.test"),
            (10, 1, light.addr.port(), "light.test"),
            // A higher priority number is a backup: not used.
            (20, 100, 1, "light.test"),
        ],
    );
    let proxy = Proxy::start(&dns_config(&dns, "srv = \"_app._tcp.test\"\n")).await;
    eventually(WAIT, || members(&proxy).len() == 2).await;
    let n = 800;
    let counts = tally(&proxy.url("/"), n, &[]).await;
    let share = counts["heavy"] as f64 / n as f64;
    eprintln!("SRV weights 3:1 -> heavy {share:.3} of {n}");
    // Expected 0.75; five standard deviations is about 0.077.
    assert!((share - 0.75).abs() < 0.08, "{counts:?}");
    let status = proxy.routing().dns_report("app").unwrap();
    assert_eq!(status.endpoints, 2);
}

#[tokio::test]
async fn a_name_that_does_not_resolve_at_start_is_not_fatal() {
    let (_ups, port) = upstreams_on_one_port(&["a"]).await;
    let dns = DnsServer::start(1).await;
    let keys =
        format!("dns = \"app.test:{port}\"\ndns_min_ttl = \"200ms\"\ndns_max_ttl = \"1s\"\n");
    let proxy = Proxy::start(&dns_config(&dns, &keys)).await;
    eventually(WAIT, || {
        proxy
            .routing()
            .dns_report("app")
            .is_some_and(|r| r.error.is_some())
    })
    .await;
    let error = proxy.routing().dns_report("app").unwrap().error.unwrap();
    assert!(error.contains("NXDOMAIN"), "{error}");
    assert!(members(&proxy).is_empty());
    let seen = outcomes(&proxy.url("/"), 2, &[]).await;
    assert_eq!(seen.get(&("-".into(), 503)), Some(&2), "{seen:?}");
    dns.set_a("app.test", &[loopback(0)]);
    eventually(WAIT, || members(&proxy).len() == 1).await;
    assert_eq!(tally(&proxy.url("/"), 5, &[]).await["a"], 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replacing_every_endpoint_through_dns_under_load_fails_nothing() {
    let (ups, port) = upstreams_on_one_port(&["a1", "a2", "b1", "b2"]).await;
    let dns = DnsServer::start(1).await;
    let (old, new) = ([loopback(0), loopback(1)], [loopback(2), loopback(3)]);
    dns.set_a("app.test", &old);
    let keys = format!(
        "dns = \"app.test:{port}\"\ndns_min_ttl = \"200ms\"\ndns_max_ttl = \"1s\"\n{CHECKS}"
    );
    let proxy = Proxy::start(&dns_config(&dns, &keys)).await;
    let healthy = |ips: &[Ipv4Addr]| {
        let snapshot = proxy.routing().load();
        let pool = snapshot.pool("app").unwrap();
        addrs(ips, port)
            .iter()
            .all(|a| pool.endpoint(a).is_some_and(|e| e.is_healthy()))
    };
    eventually(WAIT, || healthy(&old)).await;
    let load = Load::start(&proxy.url("/"), 4);
    load.wait_for(200).await;

    // The record flips from the old VMs to the new ones at once: veer
    // keeps the old ones until the new ones pass a health check.
    let started = Instant::now();
    dns.set_a("app.test", &new);
    eventually(WAIT, || healthy(&new)).await;
    eventually(WAIT, || members(&proxy) == addrs(&new, port)).await;
    // The old ones drained: nothing in flight to them any more.
    let drains = proxy.server.as_ref().unwrap().drains.clone();
    eventually(WAIT, || !drains.active()).await;
    load.wait_for(200).await;
    let took = started.elapsed();
    let (ok, failed, errors) = load.stop().await;
    eprintln!("replaced 2 endpoints through DNS in {took:?}: {ok} ok, {failed} failed");
    assert_eq!(failed, 0, "{errors:?}");
    let served = |i: usize| ups[i].requests().len();
    assert!(served(2) > 0 && served(3) > 0, "new endpoints served");
    let before = (served(0), served(1));
    tally(&proxy.url("/"), 20, &[]).await;
    assert_eq!((served(0), served(1)), before, "old endpoints get nothing");
}

#[tokio::test]
async fn dns_endpoints_join_the_file_list_and_a_reload_follows_a_new_name() {
    let (_ups, port) = upstreams_on_one_port(&["a", "b", "file"]).await;
    let dns = DnsServer::start(1).await;
    dns.set_a("one.test", &[loopback(0)]);
    dns.set_a("two.test", &[loopback(1)]);
    let file = format!("{}:{port}", loopback(2));
    let keys = |name: &str| {
        format!("endpoints = [\"{file}\"]\ndns = \"{name}:{port}\"\ndns_min_ttl = \"200ms\"\n")
    };
    let proxy = Proxy::start(&dns_config(&dns, &keys("one.test"))).await;
    let sources = || {
        let snapshot = proxy.routing().load();
        let pool = snapshot.pool("app").unwrap();
        let mut out: Vec<(String, &'static str)> = pool
            .members()
            .map(|(e, p, _)| (e.spec.authority.clone(), p.source.as_str()))
            .collect();
        out.sort();
        out
    };
    let want = |ip: Ipv4Addr| {
        let mut want = vec![(format!("{ip}:{port}"), "dns"), (file.clone(), "file")];
        want.sort();
        want
    };
    eventually(WAIT, || sources() == want(loopback(0))).await;
    let file_state = endpoint(&proxy, "app", file.parse().unwrap());

    let text = dns_config(&dns, &keys("two.test"));
    let reloaded = veer::config::parse(&text, "test.toml".as_ref()).unwrap();
    proxy.routing().set_config(std::sync::Arc::new(reloaded));
    eventually(WAIT, || sources() == want(loopback(1))).await;
    // The file's endpoint kept its state through both changes.
    let now = endpoint(&proxy, "app", file.parse().unwrap());
    assert!(std::sync::Arc::ptr_eq(&file_state, &now));
    let counts = tally(&proxy.url("/"), 40, &[]).await;
    assert!(
        counts["b"] > 0 && counts["file"] > 0 && !counts.contains_key("a"),
        "{counts:?}"
    );
}
