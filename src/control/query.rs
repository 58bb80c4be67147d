//! External analysis checks: Prometheus instant queries
//! (`[[route.rollout.analysis.query]]`). Each returns one number that must
//! lie within `min`/`max`; a query that cannot be evaluated fails the check
//! (a missing signal is no evidence of health).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use crate::config::QuerySpec;

const TIMEOUT: Duration = Duration::from_secs(5);
/// Larger answers are not read (an instant query returning one sample is
/// a few hundred bytes).
const MAX_BODY: usize = 1 << 20;

/// Evaluates every query; returns one reason per failed check.
pub async fn check_all(queries: &[QuerySpec]) -> Vec<String> {
    let client = Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let mut reasons = Vec::new();
    for q in queries {
        match evaluate(&client, q).await {
            Ok(value) => {
                if let Some(min) = q.min.filter(|min| value < *min) {
                    reasons.push(format!("query {}: {value} < min {min}", q.name));
                }
                if let Some(max) = q.max.filter(|max| value > *max) {
                    reasons.push(format!("query {}: {value} > max {max}", q.name));
                }
            }
            Err(e) => reasons.push(format!("query {}: {e}", q.name)),
        }
    }
    reasons
}

async fn evaluate(
    client: &Client<HttpConnector, Empty<Bytes>>,
    q: &QuerySpec,
) -> Result<f64, String> {
    let url = format!(
        "{}/api/v1/query?query={}",
        q.prometheus.trim_end_matches('/'),
        encode(&q.query)
    );
    let uri: http::Uri = url.parse().map_err(|e| format!("bad URL {url}: {e}"))?;
    let resp = tokio::time::timeout(TIMEOUT, client.get(uri))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| format!("unreachable: {e}"))?;
    let status = resp.status();
    let body = http_body_util::Limited::new(resp.into_body(), MAX_BODY);
    let body = tokio::time::timeout(TIMEOUT, body.collect())
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    if !status.is_success() {
        return Err(format!("Prometheus answered {status}"));
    }
    parse(&body)
}

/// The single value of an instant query's answer (vector or scalar).
fn parse(body: &[u8]) -> Result<f64, String> {
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    if json["status"] != "success" {
        return Err(format!("query failed: {}", json["error"]));
    }
    let data = &json["data"];
    let sample = match data["resultType"].as_str() {
        Some("vector") => match data["result"].as_array().map(Vec::as_slice) {
            Some([one]) => &one["value"],
            Some([]) => return Err("no data".into()),
            Some(_) => return Err("more than one series; aggregate the query".into()),
            None => return Err("malformed answer".into()),
        },
        Some("scalar") => &data["result"],
        other => return Err(format!("unsupported result type {other:?}")),
    };
    let text = sample[1].as_str().ok_or("malformed sample")?;
    let value: f64 = text.parse().map_err(|_| format!("not a number: {text}"))?;
    if value.is_nan() {
        return Err("NaN".into());
    }
    Ok(value)
}

/// Percent-encodes a query for the URL.
fn encode(query: &str) -> String {
    let mut out = String::with_capacity(query.len() * 3);
    for b in query.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vector_and_scalar() {
        let vector = br#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1700000000.1,"0.42"]}]}}"#;
        assert_eq!(parse(vector), Ok(0.42));
        let scalar =
            br#"{"status":"success","data":{"resultType":"scalar","result":[1700000000.1,"7"]}}"#;
        assert_eq!(parse(scalar), Ok(7.0));
        let empty = br#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(parse(empty), Err("no data".into()));
        let nan = br#"{"status":"success","data":{"resultType":"scalar","result":[1,"NaN"]}}"#;
        assert!(parse(nan).is_err());
        assert!(parse(br#"{"status":"error","error":"bad"}"#)
            .unwrap_err()
            .contains("bad"));
    }

    #[test]
    fn encodes_queries() {
        assert_eq!(encode("sum(rate(x[1m]))"), "sum%28rate%28x%5B1m%5D%29%29");
    }
}
