//! A route's mirror set at run time: by the admin API (`PUT` a mirror or
//! `{"off": true}`, `DELETE` for the file's again) and by a reload of
//! `[route.mirror]`; what `/api/v1/status` and `veer status` show of it.

use std::time::Duration;

use http::{Method, StatusCode};

use crate::support::admin::{replace_file, two_pools, TempDir, Veer};
use crate::support::*;

/// GETs `n` requests to `/`, all answered by blue.
async fn load(veer: &Veer, n: usize) {
    let seen = tally(&veer.url("/"), n, &[]).await;
    assert_eq!(seen.get("blue"), Some(&n), "{seen:?}");
}

/// The mirror summary of route `app` in `/api/v1/status`.
async fn mirror(veer: &Veer) -> serde_json::Value {
    veer.status().await["routes"][0]["mirror"].clone()
}

async fn compared(veer: &Veer, want: u64) {
    let start = tokio::time::Instant::now();
    loop {
        let m = mirror(veer).await;
        if m["compared"].as_u64() == Some(want) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_set_by_the_admin_api_and_by_a_reload() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let dir = TempDir::new("mirror");
    let veer = Veer::start(&dir, &two_pools(blue.addr, green.addr, "blue", ""), None).await;
    let path = "/api/v1/routes/app/mirror";
    assert!(mirror(&veer).await.is_null(), "no mirror in the file");

    // Refused with the reason; nothing changes.
    for (body, why) in [
        (r#"{"pool": "nope"}"#, "unknown pool"),
        (r#"{"pool": "blue"}"#, "the pool the route serves"),
        (r#"{"pool": "green", "percent": 101}"#, "percent"),
        (
            r#"{"pool": "green", "compare": {"ignore": ["ts"]}}"#,
            "must start with '$'",
        ),
        (r#"{"pool": "green", "colour": 1}"#, "unknown field"),
    ] {
        let (code, answer) = veer.api(Method::PUT, path, Some(body), None).await;
        assert_eq!(code, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains(why), "{answer}");
    }
    let body = r#"{"pool": "green", "compare": {"body": "hash"}}"#;
    let (code, answer) = veer.api(Method::PUT, path, Some(body), None).await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    load(&veer, 10).await;
    // `/` answers each upstream's own name: every copy differs in the body.
    compared(&veer, 10).await;
    let m = mirror(&veer).await;
    assert_eq!(
        (m["pool"].as_str(), m["mismatched"].as_u64()),
        (Some("green"), Some(10))
    );
    assert_eq!(m["fields"][0]["field"], "body");
    let (_, events) = veer.api(Method::GET, "/api/v1/events", None, None).await;
    assert!(
        events.to_string().contains("mirror to \\\"green\\\""),
        "{events}"
    );

    let (code, _) = veer
        .api(Method::PUT, path, Some(r#"{"off": true}"#), None)
        .await;
    assert_eq!(code, StatusCode::OK);
    assert!(mirror(&veer).await.is_null());
    let (code, _) = veer.api(Method::DELETE, path, None, None).await;
    assert_eq!(code, StatusCode::OK);
    let before = green.requests().len();
    load(&veer, 5).await;
    assert_eq!(green.requests().len(), before, "no mirror: not in the file");

    // A reload adds `[route.mirror]`: copies of half the requests or so.
    let mirrored = "[route.mirror]\npool = \"green\"\npercent = 50\n";
    replace_file(
        &veer.config_path,
        &two_pools(blue.addr, green.addr, "blue", mirrored),
    );
    let (code, answer) = veer
        .api(Method::POST, "/api/v1/reload", Some("{}"), None)
        .await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    load(&veer, 200).await;
    let start = tokio::time::Instant::now();
    let n = loop {
        let n = green.requests().len() - before;
        let m = mirror(&veer).await;
        if n > 0 && m["compared"].as_u64() == Some(10 + n as u64) {
            break n;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{n} {m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!((40..=160).contains(&n), "about half of 200 mirrored: {n}");
    veer.stop().await;
}

/// A body sent as `chunks` (chunked: no length known ahead).
fn chunked(chunks: &[&'static str]) -> BoxBody {
    use http_body_util::{BodyExt, StreamBody};
    let frames: Vec<Result<hyper::body::Frame<bytes::Bytes>, std::convert::Infallible>> = chunks
        .iter()
        .map(|c| {
            Ok(hyper::body::Frame::data(bytes::Bytes::from_static(
                c.as_bytes(),
            )))
        })
        .collect();
    BodyExt::boxed(StreamBody::new(futures_util::stream::iter(frames)))
}

fn sized(text: &'static str) -> BoxBody {
    use http_body_util::{BodyExt, Full};
    Full::new(bytes::Bytes::from_static(text.as_bytes())).boxed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_post_is_copied_with_its_body_up_to_max_body() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    // Both echo the body: a copy matches only if it carried the same body.
    let mirror = "[route.mirror]\npool = \"green\"\nmethods = [\"POST\"]\nmax_body = 16\n\
                  [route.mirror.compare]\nbody = \"hash\"\n";
    let proxy = Proxy::start(&config(
        &[("blue", &[blue.addr]), ("green", &[green.addr])],
        &format!("[[route]]\nname = \"app\"\npool = \"blue\"\n{mirror}"),
    ))
    .await;
    let stats = proxy
        .server
        .as_ref()
        .unwrap()
        .telemetry
        .shadow
        .stats("app", "green");
    let client = client();
    let post = |body: BoxBody| http::Request::post(proxy.url("/echo")).body(body).unwrap();
    let cases: [(BoxBody, &str, bool); 4] = [
        (sized("hello, green"), "hello, green", true),
        (sized("seventeen bytes!!"), "seventeen bytes!!", false),
        (chunked(&["one ", "two ", "three"]), "one two three", true),
        (
            chunked(&["sixteen ", "bytes and ", "more"]),
            "sixteen bytes and more",
            false,
        ),
    ];
    let mut copied = 0;
    for (body, echoed, mirrored) in cases {
        let (status, _, text) = send(&client, post(body)).await;
        assert_eq!((status.as_u16(), text.as_str()), (200, echoed));
        copied += usize::from(mirrored);
        // Each copy lands (or not) before the next request: wait for
        // the count, then for nothing else to arrive.
        let start = tokio::time::Instant::now();
        while stats.snapshot().matched as usize != copied || stats.outstanding() != 0 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "{echoed:?}: {:?}, outstanding {}",
                stats.snapshot(),
                stats.outstanding()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let snap = stats.snapshot();
    assert_eq!((snap.matched, snap.mismatched, snap.errors), (2, 0, 0));
    let at_green = green.requests();
    assert_eq!(at_green, ["POST /echo", "POST /echo"], "{at_green:?}");
    assert_eq!(blue.requests().len(), 4);
}
