//! Comparing a candidate's response with the stable one: status (exact
//! or class), listed headers, and the body (byte-equal, or parsed JSON
//! with `ignore` paths). A difference names the field and the kind of
//! difference (value types, lengths), never a value: samples and
//! verdicts can be shown to anyone who reads status.

use std::hash::{Hash, Hasher};

use http::HeaderName;
use serde_json::Value;

use crate::config::mirror::PathSeg;
use crate::config::{BodyCompare, CompareSpec, StatusCompare};

use super::send::Answer;

/// One differing field: `status`, `header:NAME`, `body` or a JSON path
/// (array indexes written `[*]`, so one field counts every element), and
/// what differs about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub field: String,
    pub detail: String,
}

/// The comparison settings, parsed once per mirror.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub status: StatusCompare,
    pub headers: Vec<HeaderName>,
    pub body: BodyCompare,
    pub ignore: Vec<Vec<PathSeg>>,
}

impl Comparison {
    pub fn new(spec: &CompareSpec) -> Comparison {
        Comparison {
            status: spec.status,
            headers: spec
                .headers
                .iter()
                .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
                .collect(),
            body: spec.body,
            // Validated when the config (or the API body) was read.
            ignore: spec
                .ignore
                .iter()
                .filter_map(|p| crate::config::mirror::json_path(p).ok())
                .collect(),
        }
    }

    /// Every difference of `other` against `stable`.
    pub fn differences(&self, stable: &Answer, other: &Answer) -> Vec<Difference> {
        let mut out = Vec::new();
        let (a, b) = (stable.status, other.status);
        let differs = match self.status {
            StatusCompare::Exact => a != b,
            StatusCompare::Class => a.as_u16() / 100 != b.as_u16() / 100,
        };
        if differs {
            out.push(diff("status", format!("{} -> {}", a.as_u16(), b.as_u16())));
        }
        for name in &self.headers {
            let (a, b) = (stable.headers.get_all(name), other.headers.get_all(name));
            let (a, b): (Vec<_>, Vec<_>) = (a.iter().collect(), b.iter().collect());
            let detail = match (a.is_empty(), b.is_empty()) {
                (true, true) => continue,
                (false, true) => "missing in candidate",
                (true, false) => "only in candidate",
                _ if a != b => "value differs",
                _ => continue,
            };
            out.push(diff(&format!("header:{name}"), detail.into()));
        }
        match self.body {
            BodyCompare::None => {}
            BodyCompare::Hash => self.bytes(stable, other, &mut out),
            BodyCompare::Json => {
                let parse = |a: &Answer| serde_json::from_slice::<Value>(&a.body).ok();
                match (parse(stable), parse(other)) {
                    (Some(a), Some(b)) => self.json(&a, &b, &mut Vec::new(), &mut out),
                    _ => self.bytes(stable, other, &mut out),
                }
            }
        }
        out
    }

    fn bytes(&self, stable: &Answer, other: &Answer, out: &mut Vec<Difference>) {
        if hash(&stable.body) != hash(&other.body) {
            let detail = format!(
                "bytes differ ({} -> {} bytes)",
                stable.body.len(),
                other.body.len()
            );
            out.push(diff("body", detail));
        }
    }

    fn json(&self, a: &Value, b: &Value, path: &mut Vec<Step>, out: &mut Vec<Difference>) {
        if self.ignored(path) {
            return;
        }
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                for (key, va) in a {
                    path.push(Step::Key(key.clone()));
                    match b.get(key) {
                        Some(vb) => self.json(va, vb, path, out),
                        None if !self.ignored(path) => out.push(diff(
                            &field(path),
                            format!("missing in candidate (was {})", kind(va)),
                        )),
                        None => {}
                    }
                    path.pop();
                }
                for (key, vb) in b.iter().filter(|(k, _)| !a.contains_key(*k)) {
                    path.push(Step::Key(key.clone()));
                    if !self.ignored(path) {
                        let detail = format!("only in candidate ({})", kind(vb));
                        out.push(diff(&field(path), detail));
                    }
                    path.pop();
                }
            }
            (Value::Array(a), Value::Array(b)) => {
                if a.len() != b.len() {
                    let detail = format!("array length {} -> {}", a.len(), b.len());
                    out.push(diff(&field(path), detail));
                }
                for (i, (va, vb)) in a.iter().zip(b).enumerate() {
                    path.push(Step::Index(i));
                    self.json(va, vb, path, out);
                    path.pop();
                }
            }
            (a, b) if kind(a) != kind(b) => {
                out.push(diff(&field(path), format!("{} -> {}", kind(a), kind(b))));
            }
            (a, b) if a != b => {
                out.push(diff(&field(path), format!("{} value differs", kind(a))));
            }
            _ => {}
        }
    }

    /// Some `ignore` path covers `path` (it or something above it).
    fn ignored(&self, path: &[Step]) -> bool {
        self.ignore.iter().any(|ignore| {
            ignore.len() <= path.len()
                && ignore
                    .iter()
                    .zip(path)
                    .all(|(seg, step)| match (seg, step) {
                        (PathSeg::Any, _) => true,
                        (PathSeg::Key(k), Step::Key(s)) => k == s,
                        (PathSeg::Index(i), Step::Index(j)) => i == j,
                        _ => false,
                    })
        })
    }
}

/// One step into a JSON document.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Index(usize),
}

fn diff(field: &str, detail: String) -> Difference {
    Difference {
        field: field.to_string(),
        detail,
    }
}

/// `$.a.b[*]`: the path with indexes folded, so counts are per field.
fn field(path: &[Step]) -> String {
    let mut out = String::from("$");
    for step in path {
        match step {
            Step::Key(k)
                if !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '-') =>
            {
                out.push('.');
                out.push_str(k);
            }
            Step::Key(k) => out.push_str(&format!("[{k:?}]")),
            Step::Index(_) => out.push_str("[*]"),
        }
    }
    out
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn hash(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CompareSpec;
    use bytes::Bytes;
    use http::{HeaderMap, StatusCode};
    use std::time::Duration;

    fn answer(status: u16, body: &str) -> Answer {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", "application/json".parse().unwrap());
        headers.insert("set-cookie", "secret=1".parse().unwrap());
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: Bytes::from(body.to_string()),
            took: Duration::ZERO,
        }
    }

    fn fields(d: &[Difference]) -> Vec<&str> {
        d.iter().map(|d| d.field.as_str()).collect()
    }

    #[test]
    fn json_fields_are_named_with_types_never_values() {
        let spec = CompareSpec {
            ignore: vec!["$.timestamp".into(), "$.items[*].seen".into()],
            ..CompareSpec::default()
        };
        let c = Comparison::new(&spec);
        let a = answer(
            200,
            r#"{"price":10,"timestamp":1,"items":[{"id":1,"seen":1}],"name":"secret-a"}"#,
        );
        let b = answer(
            200,
            r#"{"price":"10","timestamp":2,"items":[{"id":2,"seen":2}],"name":"secret-b","new":true}"#,
        );
        let d = c.differences(&a, &b);
        assert_eq!(fields(&d), ["$.items[*].id", "$.name", "$.price", "$.new"]);
        assert_eq!(d[2].detail, "number -> string");
        assert!(d.iter().all(|d| !d.detail.contains("secret")), "{d:?}");
    }

    #[test]
    fn status_class_headers_and_bytes() {
        let spec = CompareSpec {
            status: StatusCompare::Class,
            headers: vec!["set-cookie".into(), "content-type".into()],
            body: BodyCompare::Hash,
            ..CompareSpec::default()
        };
        let c = Comparison::new(&spec);
        let a = answer(200, "abc");
        let mut b = answer(201, "abd");
        b.headers.insert("set-cookie", "secret=2".parse().unwrap());
        let d = c.differences(&a, &b);
        assert_eq!(fields(&d), ["header:set-cookie", "body"]);
        assert_eq!(d[0].detail, "value differs");
        let strict = Comparison::new(&CompareSpec::default());
        assert_eq!(fields(&strict.differences(&a, &b)), ["status", "body"]);
        assert!(strict.differences(&a, &a.clone()).is_empty());
    }
}
