//! The admin subcommands of `veer` and what each prints.

use std::time::Duration;

use http::Method;
use serde_json::{json, Value};

use super::client::{AdminClient, ClientError};
use super::plan::PlanAnswer;
use super::table;
use crate::drain::{DrainReport, ReportState};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum AdminCommand {
    /// Routes, weights and phases, and pools with endpoint health.
    Status {
        /// The raw JSON of `GET /api/v1/status`, for scripts.
        #[arg(long, conflicts_with = "watch")]
        json: bool,
        /// Redraws the table and the last verdicts in place until
        /// interrupted (not on a terminal: prints each change).
        #[arg(long)]
        watch: bool,
        /// How often `--watch` asks.
        #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
        every: Duration,
    },
    /// Sets a route's weights by hand and pauses it: `veer weights app blue=90 green=10`.
    Weights {
        route: String,
        #[arg(required = true, value_name = "POOL=PERCENT")]
        weights: Vec<String>,
    },
    /// Starts a rollout of ROUTE to POOL.
    Rollout {
        route: String,
        pool: String,
        /// Overrides the route's strategy (recreate, rolling, blue_green, canary, ab_test).
        #[arg(long)]
        strategy: Option<String>,
    },
    /// Promotes the route's candidate now.
    Promote { route: String },
    /// Aborts the route's rollout: all traffic back to stable.
    Abort { route: String },
    /// Pauses the route where it is.
    Pause { route: String },
    /// Resumes a paused route.
    Resume { route: String },
    /// Rolls the route back to its stable (or previous) pool.
    Rollback { route: String },
    /// A dry run of a rollout of ROUTE (to POOL) at its current traffic:
    /// each step's weight, the candidate requests per interval, the
    /// earliest promotion, and warnings when analysis cannot conclude.
    Plan {
        route: String,
        /// The pool to roll out to (default: the route's configured pool,
        /// when it differs from what the route serves).
        pool: Option<String>,
        /// Plan with this strategy instead of the route's.
        #[arg(long)]
        strategy: Option<String>,
        /// Assume this many requests per second on the route instead of
        /// the measured traffic.
        #[arg(long, value_name = "REQ/S")]
        rate: Option<f64>,
        /// The raw JSON answer, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Reloads the running veer's config file.
    Reload,
    /// A pool's endpoints: `veer endpoints POOL` lists them (source, weight,
    /// health); `add`, `remove` (drains it first), `drain` (maintenance:
    /// drained and kept out without removing it) and `undrain` act on one.
    Endpoints {
        pool: String,
        #[arg(value_enum, requires = "address")]
        action: Option<EndpointAction>,
        /// HOST:PORT as the pool has it.
        address: Option<String>,
        /// With add: its share relative to the pool's other endpoints.
        #[arg(long)]
        weight: Option<u32>,
        /// With add: wait up to this long for it to pass a health check
        /// (exit 2 if it does not), e.g. "30s".
        #[arg(long, value_parser = humantime::parse_duration)]
        wait: Option<Duration>,
    },
    /// Drains: `veer drain wait POOL`.
    Drain {
        #[command(subcommand)]
        command: DrainCommand,
    },
}

/// What `veer endpoints POOL ACTION ADDRESS` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EndpointAction {
    Add,
    Remove,
    Drain,
    Undrain,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum DrainCommand {
    /// Waits until POOL (or one of its endpoints) is drained: nothing in
    /// flight to it and no connection open, so its instances can be
    /// stopped. Exits 0 once drained, 2 on timeout, 1 on other errors.
    Wait {
        pool: String,
        /// One endpoint (HOST:PORT as in the config) instead of the pool.
        #[arg(long)]
        endpoint: Option<String>,
        /// Give up (exit 2) after this long, e.g. "90s", "10m".
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
}

/// Runs one command against the admin API; returns what to print.
pub async fn execute(client: &AdminClient, command: AdminCommand) -> Result<String, ClientError> {
    let (route, call, body) = match command {
        AdminCommand::Status { json: true, .. } => {
            let value = client.call(Method::GET, "/api/v1/status", None).await?;
            return Ok(format!("{value:#}\n"));
        }
        AdminCommand::Status { json: false, .. } => {
            return Ok(table::render(&client.status().await?));
        }
        AdminCommand::Plan {
            route,
            pool,
            strategy,
            rate,
            json,
        } => {
            let mut query = Vec::new();
            query.extend(pool.map(|p| format!("pool={p}")));
            query.extend(strategy.map(|s| format!("strategy={s}")));
            query.extend(rate.map(|r| format!("rate={r}")));
            let path = format!("/api/v1/routes/{route}/plan?{}", query.join("&"));
            let value = client.call(Method::GET, &path, None).await?;
            if json {
                return Ok(format!("{value:#}\n"));
            }
            let answer: PlanAnswer =
                serde_json::from_value(value).map_err(|e| ClientError::BadAnswer(e.to_string()))?;
            return Ok(answer.text());
        }
        AdminCommand::Reload => {
            client.call(Method::POST, "/api/v1/reload", None).await?;
            return Ok("config reloaded\n".into());
        }
        AdminCommand::Drain {
            command:
                DrainCommand::Wait {
                    pool,
                    endpoint,
                    timeout,
                },
        } => return drain_wait(client, &pool, endpoint.as_deref(), timeout).await,
        AdminCommand::Endpoints {
            pool,
            action,
            address,
            weight,
            wait,
        } => {
            let call = EndpointCall {
                pool,
                action,
                address,
                weight,
                wait,
            };
            return endpoints(client, call).await;
        }
        AdminCommand::Weights { route, weights } => {
            let body = parse_weights(&weights)?;
            let status = client
                .route_call(Method::PUT, &route, "weights", Some(body))
                .await?;
            return Ok(describe(&status));
        }
        AdminCommand::Rollout {
            route,
            pool,
            strategy,
        } => {
            let mut body = json!({ "pool": pool });
            if let Some(s) = strategy {
                body["strategy"] = Value::String(s);
            }
            (route, "rollout", Some(body))
        }
        AdminCommand::Promote { route } => (route, "promote", None),
        AdminCommand::Abort { route } => (route, "abort", None),
        AdminCommand::Pause { route } => (route, "pause", None),
        AdminCommand::Resume { route } => (route, "resume", None),
        AdminCommand::Rollback { route } => (route, "rollback", None),
    };
    let status = client.route_call(Method::POST, &route, call, body).await?;
    Ok(describe(&status))
}

/// `veer endpoints POOL [ACTION ADDRESS]`, as the command line has it.
struct EndpointCall {
    pool: String,
    action: Option<EndpointAction>,
    address: Option<String>,
    weight: Option<u32>,
    wait: Option<Duration>,
}

/// `veer endpoints`: one call to `/api/v1/pools/{pool}/endpoints[/...]`,
/// then the pool's endpoints as a table.
async fn endpoints(client: &AdminClient, call: EndpointCall) -> Result<String, ClientError> {
    let base = format!("/api/v1/pools/{}/endpoints", call.pool);
    if (call.weight.is_some() || call.wait.is_some()) && call.action != Some(EndpointAction::Add) {
        return Err(ClientError::Usage("--weight and --wait go with add".into()));
    }
    let one = |address: &str| format!("{base}/{}", address.replace('[', "%5B").replace(']', "%5D"));
    let (action, address) = match (call.action, call.address) {
        (Some(action), Some(address)) => (action, address),
        _ => {
            let value = client.call(Method::GET, &base, None).await?;
            return Ok(table::endpoints(&listing(&value)?));
        }
    };
    let (value, said) = match action {
        EndpointAction::Add => {
            let mut body = json!({ "address": address });
            if let Some(w) = call.weight {
                body["weight"] = json!(w);
            }
            let wait = call.wait.unwrap_or_default();
            let path = format!("{base}?wait={}ms", wait.as_millis());
            let value = client
                .call_within(
                    Method::POST,
                    &path,
                    Some(body),
                    wait + Duration::from_secs(10),
                )
                .await?;
            if !call.wait.is_none_or(|_| value["healthy"] == json!(true)) {
                return Err(ClientError::TimedOut(format!(
                    "{address} added to pool {} but not healthy within {}",
                    call.pool,
                    humantime::format_duration(wait)
                )));
            }
            (value, "added")
        }
        EndpointAction::Remove => {
            let value = client.call(Method::DELETE, &one(&address), None).await?;
            (value, "removed (draining)")
        }
        EndpointAction::Drain | EndpointAction::Undrain => {
            let on = action == EndpointAction::Drain;
            let body = json!({ "maintenance": on });
            let value = client.call(Method::PUT, &one(&address), Some(body)).await?;
            (
                value,
                if on {
                    "in maintenance (draining)"
                } else {
                    "back in rotation"
                },
            )
        }
    };
    let table = table::endpoints(&listing(&value)?);
    Ok(format!("{address}: {said}\n{table}"))
}

fn listing(value: &Value) -> Result<Vec<crate::discovery::EndpointView>, ClientError> {
    serde_json::from_value(value["endpoints"].clone())
        .map_err(|e| ClientError::BadAnswer(e.to_string()))
}

/// `veer status --watch`: hands `show` the table every `every`, or why
/// it could not be had (the admin API restarting, say), until dropped.
pub async fn watch(client: &AdminClient, every: Duration, mut show: impl FnMut(String)) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match client.status().await {
            Ok(status) => show(table::render(&status)),
            Err(e) => show(format!("{e}\n(asking again every {every:?})\n")),
        }
    }
}

/// The longest one drain query waits on the server; the client asks
/// again until its own timeout.
const WAIT_CHUNK: Duration = Duration::from_secs(30);

/// `veer drain wait`: long-polls `GET /api/v1/pools/{pool}/drain?wait=`
/// (the server answers as soon as the drain finishes) until drained or
/// `timeout`.
async fn drain_wait(
    client: &AdminClient,
    pool: &str,
    endpoint: Option<&str>,
    timeout: Duration,
) -> Result<String, ClientError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let what = match endpoint {
        Some(e) => format!("endpoint {e} of pool {pool}"),
        None => format!("pool {pool}"),
    };
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let wait = left.min(WAIT_CHUNK);
        let mut path = format!("/api/v1/pools/{pool}/drain?wait={}ms", wait.as_millis());
        if let Some(e) = endpoint {
            path.push_str(&format!("&endpoint={e}"));
        }
        let asked = tokio::time::Instant::now();
        let limit = wait + Duration::from_secs(10);
        let value = client.call_within(Method::GET, &path, None, limit).await?;
        let report: DrainReport =
            serde_json::from_value(value).map_err(|e| ClientError::BadAnswer(e.to_string()))?;
        if report.state == ReportState::Drained {
            return Ok(describe_drained(&what, &report));
        }
        if tokio::time::Instant::now() >= deadline {
            let state = match report.state {
                ReportState::Serving => "still serving",
                _ => "still draining",
            };
            return Err(ClientError::TimedOut(format!(
                "{what} {state} after {}: {} in flight",
                humantime::format_duration(timeout),
                report.in_flight
            )));
        }
        // The server answers early only when drained; never spin if not.
        if asked.elapsed() < wait / 2 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

mod text;
use text::{describe, describe_drained, parse_weights};
