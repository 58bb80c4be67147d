//! Routing through a real veer to real upstreams: host and path matching,
//! weighted split, rules, sticky users, snapshot publishing.

use std::time::Duration;

use crate::support::*;
use veer::routing::Weights;

#[tokio::test]
async fn host_and_longest_prefix() {
    let (a, b, c) = (
        Upstream::start("a").await,
        Upstream::start("b").await,
        Upstream::start("c").await,
    );
    let extra = r#"
[[route]]
name = "root"
pool = "a"
[[route]]
name = "api"
path_prefix = "/api"
pool = "b"
[[route]]
name = "shop"
host = "*.shop.test"
pool = "c"
"#;
    let proxy = Proxy::start(&config(
        &[("a", &[a.addr]), ("b", &[b.addr]), ("c", &[c.addr])],
        extra,
    ))
    .await;
    let who = |path: &'static str, host: &'static str| {
        let url = proxy.url(path);
        async move {
            get(&url, &[("host", host)]).await.1["x-upstream"]
                .to_str()
                .unwrap()
                .to_string()
        }
    };
    assert_eq!(who("/", "x.test").await, "a");
    assert_eq!(who("/api/users", "x.test").await, "b");
    assert_eq!(who("/apix", "x.test").await, "b");
    assert_eq!(who("/", "eu.shop.test").await, "c");
    assert_eq!(who("/api", "EU.Shop.Test:8080").await, "c");
    assert_eq!(who("/", "shop.test").await, "a");
}

#[tokio::test]
async fn no_route_is_404() {
    let a = Upstream::start("a").await;
    let extra = "[[route]]\nname = \"api\"\npath_prefix = \"/api\"\npool = \"a\"\n";
    let proxy = Proxy::start(&config(&[("a", &[a.addr])], extra)).await;
    let (status, _, body) = get(&proxy.url("/other"), &[]).await;
    assert_eq!(status, 404);
    assert_eq!(body, "no route\n");
}

/// 90/10 over 4000 independent requests: each count within 4.5 standard
/// deviations of the binomial mean (a false failure is ~1 in 150,000).
#[tokio::test]
async fn weighted_split_within_binomial_bounds() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let extra = "[[route]]\nname = \"app\"\npool = \"blue\"\nweights = { blue = 90, green = 10 }\n";
    let proxy = Proxy::start(&config(
        &[("blue", &[blue.addr]), ("green", &[green.addr])],
        extra,
    ))
    .await;
    let n = 4000;
    let counts = tally(&proxy.url("/"), n, &[]).await;
    let green_n = counts.get("green").copied().unwrap_or(0) as f64;
    let (mean, sd) = (n as f64 * 0.1, (n as f64 * 0.1 * 0.9).sqrt());
    assert!(
        (green_n - mean).abs() < 4.5 * sd,
        "green got {green_n} of {n}, expected {mean} ± {}",
        4.5 * sd
    );
    assert_eq!(counts.values().sum::<usize>(), n);
}

#[tokio::test]
async fn rules_first_match_wins_before_split() {
    let (blue, green, beta) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
        Upstream::start("beta").await,
    );
    let extra = r#"
[[route]]
name = "app"
pool = "blue"
weights = { blue = 100, green = 0 }
[[route.rule]]
headers = { "user-type" = "beta-tester" }
pool = "beta"
[[route.rule]]
cookies = { "canary" = "yes" }
pool = "green"
[[route.rule]]
query = { "v" = "2" }
pool = "green"
"#;
    let pools: &[(&str, &[std::net::SocketAddr])] = &[
        ("blue", &[blue.addr]),
        ("green", &[green.addr]),
        ("beta", &[beta.addr]),
    ];
    let proxy = Proxy::start(&config(pools, extra)).await;
    let who = |path: &'static str, headers: &'static [(&'static str, &'static str)]| {
        let url = proxy.url(path);
        async move {
            get(&url, headers).await.1["x-upstream"]
                .to_str()
                .unwrap()
                .to_string()
        }
    };
    assert_eq!(who("/", &[]).await, "blue");
    assert_eq!(who("/", &[("user-type", "beta-tester")]).await, "beta");
    assert_eq!(who("/", &[("cookie", "a=1; canary=yes")]).await, "green");
    assert_eq!(who("/x?v=2", &[]).await, "green");
    // Both match: the first rule in order wins.
    assert_eq!(
        who(
            "/?v=2",
            &[("user-type", "beta-tester"), ("cookie", "canary=yes")]
        )
        .await,
        "beta"
    );
    assert_eq!(who("/", &[("user-type", "other")]).await, "blue");
}

/// A user on the candidate stays there as its weight grows; the share of
/// users follows the weight.
#[tokio::test]
async fn sticky_users_are_monotone_as_weights_grow() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let extra =
        "[[route]]\nname = \"app\"\npool = \"blue\"\n[route.sticky]\nheader = \"x-user-id\"\n";
    let proxy = Proxy::start(&config(
        &[("blue", &[blue.addr]), ("green", &[green.addr])],
        extra,
    ))
    .await;
    let users: Vec<String> = (0..400).map(|i| format!("user-{i}")).collect();
    let client = client();
    let mut on_green = vec![false; users.len()];
    for weight in [10, 25, 50, 100] {
        let weights = Weights {
            stable: "blue".into(),
            percent: vec![("blue".into(), 100 - weight), ("green".into(), weight)],
        };
        proxy.routing().set_weights("app", Some(weights));
        let mut green_users = 0;
        for (i, user) in users.iter().enumerate() {
            // Twice per user: the same answer both times.
            let mut seen = Vec::new();
            for _ in 0..2 {
                let req = http::Request::get(proxy.url("/"))
                    .header("x-user-id", user)
                    .body(empty())
                    .unwrap();
                let (_, h, _) = send(&client, req).await;
                seen.push(h["x-upstream"].to_str().unwrap() == "green");
            }
            assert_eq!(seen[0], seen[1], "{user} flapped at {weight}%");
            assert!(
                !on_green[i] || seen[0],
                "{user} left green when its weight grew to {weight}%"
            );
            on_green[i] = seen[0];
            green_users += seen[0] as usize;
        }
        let share = green_users as f64 / users.len() as f64;
        assert!(
            (share - weight as f64 / 100.0).abs() < 0.1,
            "{weight}%: {share} of users on green"
        );
    }
}

#[tokio::test]
async fn published_weights_apply_on_the_next_request() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let extra = "[[route]]\nname = \"app\"\npool = \"blue\"\n";
    let proxy = Proxy::start(&config(
        &[("blue", &[blue.addr]), ("green", &[green.addr])],
        extra,
    ))
    .await;
    assert_eq!(tally(&proxy.url("/"), 20, &[]).await.get("blue"), Some(&20));
    let weights = Weights {
        stable: "blue".into(),
        percent: vec![("green".into(), 100), ("blue".into(), 0)],
    };
    proxy.routing().set_weights("app", Some(weights));
    assert_eq!(
        tally(&proxy.url("/"), 20, &[]).await.get("green"),
        Some(&20)
    );
    proxy.routing().set_weights("app", None);
    assert_eq!(tally(&proxy.url("/"), 20, &[]).await.get("blue"), Some(&20));
}

#[tokio::test]
async fn balance_spreads_over_endpoints() {
    let (one, two) = (Upstream::start("one").await, Upstream::start("two").await);
    for balance in ["round_robin", "least_request", "random"] {
        let toml = format!(
            "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:0\"\n[[pool]]\nname = \"p\"\nendpoints = [\"{}\", \"{}\"]\nbalance = \"{balance}\"\n[[route]]\nname = \"r\"\npool = \"p\"\n",
            one.addr, two.addr
        );
        let proxy = Proxy::start(&toml).await;
        let counts = tally(&proxy.url("/"), 200, &[]).await;
        for name in ["one", "two"] {
            let n = counts.get(name).copied().unwrap_or(0);
            assert!(n > 50, "{balance}: {name} got only {n} of 200");
        }
        if balance == "round_robin" {
            assert_eq!(counts["one"], 100);
        }
    }
}

#[tokio::test]
async fn least_request_avoids_the_busy_endpoint() {
    let (slow, fast) = (Upstream::start("slow").await, Upstream::start("fast").await);
    let toml = format!(
        "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:0\"\n[[pool]]\nname = \"p\"\nendpoints = [\"{}\", \"{}\"]\nbalance = \"least_request\"\n[[route]]\nname = \"r\"\npool = \"p\"\n",
        slow.addr, fast.addr
    );
    let proxy = Proxy::start(&toml).await;
    // Keep 4 requests parked on the slow endpoint (it answers /sleep slowly
    // only because we ask it to: pin them by sending until 4 are there).
    let url = proxy.url("/sleep/1500");
    let mut parked = Vec::new();
    for _ in 0..8 {
        let url = url.clone();
        parked.push(tokio::spawn(async move { get(&url, &[]).await }));
    }
    eventually(Duration::from_secs(5), || {
        slow.requests().len() + fast.requests().len() >= 8
    })
    .await;
    // Now both have in-flight requests; quick requests should go mostly to
    // whichever has fewer. With equal parking, just check nothing is lost.
    let counts = tally(&proxy.url("/"), 50, &[]).await;
    assert_eq!(counts.values().sum::<usize>(), 50);
    for p in parked {
        assert_eq!(p.await.unwrap().0, 200);
    }
}

/// What the rollout controller publishes beyond weights: a preview rule,
/// endpoint limits (rolling), and a hold for requests in a recreate gap.
#[tokio::test]
async fn run_time_rules_limits_and_hold() {
    use veer::config::MatchSpec;
    use veer::routing::RouteTraffic;
    let (one, two, green) = (
        Upstream::start("one").await,
        Upstream::start("two").await,
        Upstream::start("green").await,
    );
    let toml = format!(
        "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:0\"\n[[pool]]\nname = \"blue\"\nendpoints = [\"{}\", \"{}\"]\nbalance = \"round_robin\"\n[[pool]]\nname = \"green\"\nendpoints = [\"{}\"]\n[[route]]\nname = \"app\"\npool = \"blue\"\n",
        one.addr, two.addr, green.addr
    );
    let proxy = Proxy::start(&toml).await;
    let preview = MatchSpec {
        headers: vec![(http::HeaderName::from_static("x-veer-preview"), "1".into())],
        ..MatchSpec::default()
    };
    let traffic = RouteTraffic {
        weights: Weights {
            stable: "blue".into(),
            percent: vec![("blue".into(), 100)],
        },
        rules: vec![(preview, "green".into())],
        endpoint_limits: vec![("blue".into(), 1)],
        hold: Duration::ZERO,
        mirror: Default::default(),
    };
    proxy.routing().set_traffic("app", Some(traffic.clone()));
    assert_eq!(
        tally(&proxy.url("/"), 20, &[("x-veer-preview", "1")])
            .await
            .get("green"),
        Some(&20)
    );
    assert_eq!(
        tally(&proxy.url("/"), 20, &[]).await.get("one"),
        Some(&20),
        "only the first blue endpoint serves"
    );

    // Hold: with no healthy endpoint, a request waits for one to come up.
    proxy.routing().set_traffic(
        "app",
        Some(RouteTraffic {
            hold: Duration::from_secs(5),
            ..traffic
        }),
    );
    let blue = proxy.routing().load().pool("blue").unwrap().clone();
    blue.endpoints[0].set_healthy(false);
    let url = proxy.url("/");
    let waiting = tokio::spawn(async move { get(&url, &[]).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "the request should be held");
    blue.endpoints[0].set_healthy(true);
    let (status, _, body) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((status.as_u16(), body.as_str()), (200, "one"));
}

/// A reload that changes a health-checked pool's connection settings keeps
/// its endpoints' health: no request meets an endpoint "not yet checked".
#[tokio::test]
async fn reload_with_new_pool_settings_keeps_health() {
    let up = Upstream::start("up").await;
    let toml = |timeout: &str| {
        format!(
            "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:0\"\n[[pool]]\nname = \"p\"\nendpoints = [\"{}\"]\nconnect_timeout = \"{timeout}\"\n[pool.health]\npath = \"/ready\"\ninterval = \"1h\"\n[[route]]\nname = \"r\"\npool = \"p\"\n",
            up.addr
        )
    };
    let proxy = Proxy::start(&toml("1s")).await;
    let routing = proxy.routing();
    eventually(Duration::from_secs(5), || {
        routing.load().pools[0].endpoints[0].is_healthy()
    })
    .await;
    let config = veer::config::parse(&toml("2s"), std::path::Path::new("test.toml")).unwrap();
    routing.set_config(std::sync::Arc::new(config));
    assert!(
        routing.load().pools[0].endpoints[0].is_healthy(),
        "health carried over"
    );
    assert_eq!(get(&proxy.url("/"), &[]).await.0, 200);
}
