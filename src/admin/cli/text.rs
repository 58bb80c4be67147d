//! What the admin subcommands print, and how they read their arguments.

use serde_json::Value;

use super::table;
use crate::admin::client::ClientError;
use crate::control::RouteStatus;
use crate::drain::{Cut, DrainReport};

/// `pool blue drained in 3.0s; cut at drain_timeout: 1 stream, 0 tunnels`.
pub(super) fn describe_drained(what: &str, report: &DrainReport) -> String {
    let took = report.took_ms.map_or(String::new(), |ms| {
        format!(" in {:.1}s", ms as f64 / 1000.0)
    });
    let cut = Cut {
        streams: report.cut_streams,
        tunnels: report.cut_tunnels,
    };
    let cut = match (cut.is_empty(), report.reason) {
        (true, _) => String::new(),
        (false, reason) => format!(
            "; cut at {}: {cut}",
            reason.map_or("drain_timeout", |r| r.deadline_setting()),
        ),
    };
    format!("{what} drained{took}{cut}\n")
}

/// `blue=90 green=10` into `{"blue": 90, "green": 10}`.
pub(super) fn parse_weights(args: &[String]) -> Result<Value, ClientError> {
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
pub(super) fn describe(route: &RouteStatus) -> String {
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
    use serde_json::json;

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
