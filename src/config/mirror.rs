//! Validated `[route.mirror]` and `[route.rollout.shadow]` (SPEC §12):
//! which requests are copied to another pool and how its responses are
//! compared with the stable ones. Serializable: the admin API sets a
//! route's mirror and the controller persists it.

use serde::{Deserialize, Serialize};

/// Copies of live requests sent to `pool`; clients never see its answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorSpec {
    /// The pool the copies go to (a rollout's shadow stage: its candidate).
    pub pool: String,
    /// Percent of the requests whose method is listed, 0..=100.
    #[serde(default = "defaults::percent")]
    pub percent: u32,
    /// Methods mirrored, uppercase. Default GET and HEAD: other methods
    /// may have side effects and must be listed.
    #[serde(default = "defaults::methods")]
    pub methods: Vec<String>,
    /// Requests with a larger body (bytes) are not mirrored.
    #[serde(default = "defaults::max_body")]
    pub max_body: u64,
    /// Mirrored requests outstanding per route at most; more are dropped
    /// (counted), never waited for.
    #[serde(default = "defaults::queue")]
    pub queue: usize,
    #[serde(default)]
    pub compare: CompareSpec,
}

/// How a candidate response is compared with the stable one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CompareSpec {
    pub status: StatusCompare,
    /// Response headers compared (lowercase names); values never shown.
    pub headers: Vec<String>,
    pub body: BodyCompare,
    /// JSON paths left out of the body comparison: `$.a.b`, `$.list[0]`,
    /// `$.list[*].id`, `$.*.x`; a path also covers what is below it.
    pub ignore: Vec<String>,
    /// Also send to a second stable endpoint and leave out the fields
    /// stable differs in against itself (Diffy's method).
    pub noise: bool,
}

impl Default for CompareSpec {
    fn default() -> Self {
        CompareSpec {
            status: StatusCompare::Exact,
            headers: Vec::new(),
            body: BodyCompare::Json,
            ignore: Vec::new(),
            noise: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusCompare {
    /// The same status code.
    Exact,
    /// The same class (2xx, 3xx, 4xx, 5xx).
    Class,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyCompare {
    /// Byte-equal (compared by hash).
    Hash,
    /// Parsed JSON documents, `ignore` paths left out; bodies that are
    /// not both JSON are compared byte for byte.
    Json,
    /// Bodies are not compared.
    None,
}

/// `[route.rollout.shadow]`: a mirror to the candidate before any user
/// reaches it, judged every interval for `iterations` intervals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShadowSpec {
    /// `pool` is empty: the rollout's candidate takes its place.
    pub mirror: MirrorSpec,
    pub iterations: u32,
    /// Percent of compared pairs that may differ, at most.
    pub max_mismatch_rate: f64,
    /// Fewer compared pairs in an interval: inconclusive.
    pub min_compared: u64,
}

impl ShadowSpec {
    /// The mirror this stage runs for `candidate`.
    pub fn mirror_to(&self, candidate: &str) -> MirrorSpec {
        MirrorSpec {
            pool: candidate.to_string(),
            ..self.mirror.clone()
        }
    }
}

impl MirrorSpec {
    /// Checks a mirror set through the admin API the way the file's is
    /// checked; `pools` are the config's pools, `stable` the route's.
    pub fn check(&self, pools: &[&str], stable: &str) -> Result<(), String> {
        if !pools.contains(&self.pool.as_str()) {
            return Err(format!(
                "unknown pool {:?}; pools are: {}",
                self.pool,
                pools.join(", ")
            ));
        }
        if self.pool == stable {
            return Err(format!(
                "mirror pool {stable:?} is the pool the route serves"
            ));
        }
        if self.percent > 100 {
            return Err(format!("percent {} must be 0..=100", self.percent));
        }
        if self.queue == 0 {
            return Err("queue must be at least 1".into());
        }
        for m in &self.methods {
            if m.is_empty()
                || http::Method::from_bytes(m.as_bytes()).is_err()
                || *m != m.to_ascii_uppercase()
            {
                return Err(format!("{m:?} is not an HTTP method (uppercase)"));
            }
        }
        for h in &self.compare.headers {
            if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                return Err(format!("invalid header name {h:?}"));
            }
        }
        for path in &self.compare.ignore {
            json_path(path)?;
        }
        if !self.compare.ignore.is_empty() && self.compare.body != BodyCompare::Json {
            return Err("ignore paths apply to body = \"json\" only".into());
        }
        Ok(())
    }
}

/// The defaults of SPEC §12.
pub mod defaults {
    pub const SHADOW_ITERATIONS: u32 = 2;
    pub const MAX_MISMATCH_RATE: f64 = 1.0;
    pub const MIN_COMPARED: u64 = 20;

    pub fn percent() -> u32 {
        100
    }
    pub fn methods() -> Vec<String> {
        vec!["GET".into(), "HEAD".into()]
    }
    pub fn max_body() -> u64 {
        65_536
    }
    pub fn queue() -> usize {
        64
    }
}

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
    /// `*` or `[*]`: any key or index.
    Any,
}

/// Parses `$.a.b[0][*].*` into its steps.
pub fn json_path(path: &str) -> Result<Vec<PathSeg>, String> {
    let bad = |why: &str| {
        format!("JSON path {path:?}: {why}; write e.g. \"$.timestamp\" or \"$.items[*].id\"")
    };
    let Some(mut rest) = path.strip_prefix('$') else {
        return Err(bad("must start with '$'"));
    };
    let mut segs = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let key = &after[..end];
            if key.is_empty() {
                return Err(bad("empty key"));
            }
            segs.push(if key == "*" {
                PathSeg::Any
            } else {
                PathSeg::Key(key.to_string())
            });
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let Some(end) = after.find(']') else {
                return Err(bad("unclosed '['"));
            };
            let inner = after[..end].trim_matches(['"', '\'']);
            segs.push(match inner {
                "*" => PathSeg::Any,
                _ => match inner.parse() {
                    Ok(i) if after[..end] == *inner => PathSeg::Index(i),
                    _ if !inner.is_empty() => PathSeg::Key(inner.to_string()),
                    _ => return Err(bad("empty index")),
                },
            });
            rest = &after[end + 1..];
        } else {
            return Err(bad("expected '.' or '['"));
        }
    }
    Ok(segs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_parse() {
        use PathSeg::*;
        assert_eq!(json_path("$").unwrap(), vec![]);
        assert_eq!(
            json_path("$.a[2][*].*['b.c']").unwrap(),
            vec![Key("a".into()), Index(2), Any, Any, Key("b.c".into())]
        );
        assert!(json_path("timestamp").is_err());
        assert!(json_path("$..a").is_err());
        assert!(json_path("$.a[").is_err());
    }
}
