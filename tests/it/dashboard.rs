//! The dashboard in a real headless Chromium: `tests/browser/dashboard.mjs`
//! (playwright-core driving Debian's `chromium`) against a whole veer with
//! a token, two upstreams, traffic and a canary in progress. It checks that
//! the page shows the weights the API reports, follows weight changes, and
//! that its buttons act through the token-protected API.
//!
//! Needs `node`, `/usr/bin/chromium` and `npm ci` in `tests/browser` (what
//! `.ci/run` installs). Without them the test is skipped with a message,
//! unless `CI` is set: then it fails.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::admin::*;
use crate::support::*;
use http::{Method, StatusCode};

const TOKEN: &str = "dashboard-test-token";

/// Why the browser test cannot run here, if it cannot.
fn missing_tools(browser_dir: &Path) -> Option<String> {
    let chromium = std::env::var_os("CHROMIUM").map_or("/usr/bin/chromium".into(), PathBuf::from);
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("node is not installed".into());
    }
    if !chromium.exists() {
        return Some(format!("{} is not installed", chromium.display()));
    }
    if !browser_dir.join("node_modules/playwright-core").exists() {
        return Some(format!(
            "no {}/node_modules: run npm ci there",
            browser_dir.display()
        ));
    }
    None
}

/// Requests to `url` from a few clients until `stop` is set.
fn traffic(url: String, stop: Arc<AtomicBool>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..3)
        .map(|_| {
            let (url, stop) = (url.clone(), stop.clone());
            tokio::spawn(async move {
                let client = client();
                while !stop.load(Ordering::Relaxed) {
                    let req = http::Request::get(&url).body(empty()).unwrap();
                    if let Ok(Ok(resp)) =
                        tokio::time::timeout(Duration::from_secs(5), client.request(req)).await
                    {
                        use http_body_util::BodyExt;
                        let _ = resp.into_body().collect().await;
                    }
                    tokio::time::sleep(Duration::from_millis(15)).await;
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_headless_chromium() {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if let Some(why) = missing_tools(&browser_dir) {
        assert!(
            std::env::var_os("CI").is_none(),
            "browser test cannot run in CI: {why}"
        );
        eprintln!("skipping the dashboard browser test: {why}");
        return;
    }

    let blue = Upstream::start("blue").await;
    // A few failures, so the error chart has something to show; the
    // canary's interval is long enough that they are never judged.
    let green = Upstream::flaky("green", 25).await;
    let rollout = "[route.rollout]\nstrategy = \"canary\"\nsteps = [10, 50, 100]\n\
                   interval = \"1h\"\n[route.rollout.analysis]\nsuccess_rate = 90.0\n";
    let dir = TempDir::new("dashboard");
    let toml = two_pools(blue.addr, green.addr, "blue", rollout);
    let veer = Veer::start(&dir, &toml, Some(TOKEN)).await;

    let (code, body) = veer
        .api(
            Method::POST,
            "/api/v1/routes/app/rollout",
            Some(r#"{"pool":"green"}"#),
            Some(TOKEN),
        )
        .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let stop = Arc::new(AtomicBool::new(false));
    let load = traffic(veer.url("/"), stop.clone());

    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let run = tokio::process::Command::new("node")
        .arg(browser_dir.join("dashboard.mjs"))
        .arg(veer.admin_url("/"))
        .arg(TOKEN)
        .arg(&screenshot)
        .current_dir(&browser_dir)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the browser test did not finish within 2 minutes")
        .expect("running node");
    stop.store(true, Ordering::Relaxed);
    for task in load {
        let _ = task.await;
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "dashboard.mjs failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(stdout.contains("all checks passed"), "{stdout}\n{stderr}");
    veer.stop().await;
}

/// Without a browser: the page needs no token and carries no data; the
/// status it polls has the steps and the counters it charts.
#[tokio::test]
async fn page_is_public_and_status_has_what_it_charts() {
    let (blue, green) = (
        Upstream::start("blue").await,
        Upstream::start("green").await,
    );
    let rollout = "[route.rollout]\nstrategy = \"canary\"\nsteps = [5, 25, 100]\n";
    let dir = TempDir::new("dashboard-page");
    let toml = two_pools(blue.addr, green.addr, "blue", rollout);
    let veer = Veer::start(&dir, &toml, Some(TOKEN)).await;
    let (code, page) = raw_get(&veer.admin_url("/")).await.unwrap();
    assert_eq!(code, StatusCode::OK);
    assert!(
        page.contains("/dashboard.js") && !page.contains("blue"),
        "{page}"
    );
    let (code, _) = raw_get(&veer.admin_url("/dashboard.js")).await.unwrap();
    assert_eq!(code, StatusCode::OK);

    for _ in 0..3 {
        assert_eq!(who(&veer.url("/")).await, "blue");
    }
    let (code, status) = veer
        .api(Method::GET, "/api/v1/status", None, Some(TOKEN))
        .await;
    assert_eq!(code, StatusCode::OK);
    let route = &status["routes"][0];
    assert_eq!(route["steps"], serde_json::json!([5, 25, 100]));
    assert_eq!(route["strategy"], "canary");
    assert_eq!(route["totals"]["blue"]["requests"], 3, "{route}");
    assert_eq!(route["totals"]["blue"]["failures"], 0, "{route}");
    veer.stop().await;
}
