//! The admin subcommands of `veer` and what each prints.

use http::Method;
use serde_json::{json, Value};

use super::client::{AdminClient, ClientError};
use super::table;
use crate::control::RouteStatus;

#[derive(Debug, Clone, clap::Subcommand)]
pub enum AdminCommand {
    /// Routes, weights and phases, and pools with endpoint health.
    Status {
        /// The raw JSON of `GET /api/v1/status`, for scripts.
        #[arg(long)]
        json: bool,
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
    /// Reloads the running veer's config file.
    Reload,
}

/// Runs one command against the admin API; returns what to print.
pub async fn execute(client: &AdminClient, command: AdminCommand) -> Result<String, ClientError> {
    let (route, call, body) = match command {
        AdminCommand::Status { json: true } => {
            let value = client.call(Method::GET, "/api/v1/status", None).await?;
            return Ok(format!("{value:#}\n"));
        }
        AdminCommand::Status { json: false } => {
            return Ok(table::render(&client.status().await?));
        }
        AdminCommand::Reload => {
            client.call(Method::POST, "/api/v1/reload", None).await?;
            return Ok("config reloaded\n".into());
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

/// `blue=90 green=10` into `{"blue": 90, "green": 10}`.
fn parse_weights(args: &[String]) -> Result<Value, ClientError> {
    let mut map = serde_json::Map::new();
    for arg in args {
        let parsed = arg
            .split_once('=')
            .and_then(|(pool, w)| Some((pool, w.trim().parse::<u32>().ok()?)));
        match parsed {
            Some((pool, w)) if !pool.is_empty() => {
                map.insert(pool.to_string(), w.into());
            }
            _ => {
                return Err(ClientError::Usage(format!(
                    "{arg:?}: expected POOL=PERCENT, e.g. blue=90"
                )))
            }
        }
    }
    Ok(Value::Object(map))
}

/// One line: `app: blue=90 green=10 (phase paused)`.
fn describe(route: &RouteStatus) -> String {
    format!(
        "{}: {} (phase {})\n",
        route.name,
        table::weights(route),
        route.phase
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_arguments() {
        let args = ["blue=90".to_string(), "green=10".to_string()];
        assert_eq!(
            parse_weights(&args).unwrap(),
            json!({"blue": 90, "green": 10})
        );
        for bad in ["blue", "=5", "blue=x", "blue=-1"] {
            let err = parse_weights(&[bad.to_string()]).unwrap_err();
            assert!(err.to_string().contains("POOL=PERCENT"), "{bad}: {err}");
        }
    }
}
