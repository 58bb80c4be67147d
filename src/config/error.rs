//! Config errors: every problem found, each naming file, line and key.

use std::fmt;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Why a config file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("{}: cannot read config file: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file was read but is not a valid config; holds every problem
    /// found, in file order, so one run of `veer check` shows them all.
    #[error("{}", ProblemList(.0))]
    Invalid(Vec<Problem>),
}

impl ConfigError {
    /// The individual problems (empty for [`ConfigError::Read`]).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid(problems) => problems,
        }
    }
}

/// One thing wrong with the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    /// 1-based line the problem was found on; `None` when the problem is
    /// about something missing from the whole file (no `[[listener]]`).
    pub line: Option<usize>,
    /// Dotted key, e.g. `route "myapp".weights.green` or `pool[0].endpoints[2]`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    /// `FILE:LINE: KEY: MESSAGE` (line and key left out when unknown).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}

/// Collects problems while validating one file, turning byte spans from the
/// TOML parser into line numbers.
pub(crate) struct Problems<'a> {
    file: &'a Path,
    text: &'a str,
    found: Vec<Problem>,
    /// Offsets of the text's newlines, made on first use: a line number is
    /// then a binary search, so validation stays linear in the file's size.
    newlines: std::cell::OnceCell<Vec<usize>>,
}

impl<'a> Problems<'a> {
    pub(crate) fn new(file: &'a Path, text: &'a str) -> Self {
        Problems {
            file,
            text,
            found: Vec::new(),
            newlines: std::cell::OnceCell::new(),
        }
    }

    /// Records a problem at the position `span` points to.
    pub(crate) fn at(
        &mut self,
        span: Range<usize>,
        key: impl Into<String>,
        msg: impl Into<String>,
    ) {
        let line = self.line(span);
        self.push(Some(line), key.into(), msg.into());
    }

    /// 1-based line where `span` starts.
    pub(crate) fn line(&self, span: Range<usize>) -> usize {
        let newlines = self
            .newlines
            .get_or_init(|| memchr::memchr_iter(b'\n', self.text.as_bytes()).collect());
        newlines.partition_point(|&at| at < span.start.min(self.text.len())) + 1
    }

    /// Records a problem that has no position in the file.
    pub(crate) fn nowhere(&mut self, key: impl Into<String>, msg: impl Into<String>) {
        self.push(None, key.into(), msg.into());
    }

    fn push(&mut self, line: Option<usize>, key: String, message: String) {
        self.found.push(Problem {
            file: self.file.to_path_buf(),
            line,
            key,
            message,
        });
    }

    /// `Ok(value)` when nothing was recorded, else every problem in line order.
    pub(crate) fn finish<T>(mut self, value: T) -> Result<T, ConfigError> {
        if self.found.is_empty() {
            return Ok(value);
        }
        // Stable: problems on the same line keep the order they were found in.
        self.found.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        Err(ConfigError::Invalid(self.found))
    }
}

/// 1-based line of byte offset `pos` in `text`.
pub(crate) fn line_of(text: &str, pos: usize) -> usize {
    let pos = pos.min(text.len());
    text.as_bytes()[..pos]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Turns a TOML syntax or schema error (including unknown keys) into one
/// problem with its line and, when it can be recovered, its dotted key.
pub(crate) fn from_toml(file: &Path, text: &str, err: &toml::de::Error) -> ConfigError {
    let line = err.span().map(|span| line_of(text, span.start));
    let mut keys = serde_keys(err);
    if let Some(field) = backticked(err.message(), "unknown field `") {
        keys.push(field.to_owned());
    }
    let key = match &err.span() {
        Some(span) => index_keys(text, span.start, &keys),
        None => keys.join("."),
    };
    ConfigError::Invalid(vec![Problem {
        file: file.to_path_buf(),
        line,
        key,
        message: err.message().to_owned(),
    }])
}

/// The key path serde recorded; toml only prints it when it has no input.
fn serde_keys(err: &toml::de::Error) -> Vec<String> {
    let mut bare = err.clone();
    bare.set_input(None);
    let shown = bare.to_string();
    shown
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("in `")?.strip_suffix('`').map(str::to_owned))
        .map(|k| k.split('.').map(str::to_owned).collect())
        .unwrap_or_default()
}

fn backticked<'m>(message: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = message.strip_prefix(prefix)?;
    rest.split('`').next()
}

/// Adds array-of-tables indices (`route[1]`) to `keys`, by replaying the
/// table headers that come before byte `pos`.
fn index_keys(text: &str, pos: usize, keys: &[String]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut current = String::new();
    let pos = pos.min(text.len());
    let end = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
    for line in text[..end].lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("[[").and_then(|l| l.split("]]").next()) {
            let name = name.trim().to_owned();
            counts.retain(|(n, _)| !n.starts_with(&format!("{name}.")));
            match counts.iter_mut().find(|(n, _)| *n == name) {
                Some((_, c)) => *c += 1,
                None => counts.push((name.clone(), 0)),
            }
            current = name;
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            current = name.trim().to_owned();
        }
    }
    let keys: Vec<String> = if keys.is_empty() {
        // A syntax error: serde saw no key, so take the table header in
        // effect and the key written on the error's line.
        let line = text[..end].lines().next_back().unwrap_or("").trim();
        let on_line = match line.split_once('=') {
            Some((key, _)) if !line.starts_with('[') => Some(key.trim().trim_matches('"')),
            _ => None,
        };
        current
            .split('.')
            .chain(on_line)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    } else {
        keys.to_vec()
    };
    let mut out = String::new();
    for (i, key) in keys.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(key);
        let prefix = keys[..=i].join(".");
        if let Some((_, n)) = counts.iter().find(|(n, _)| *n == prefix) {
            out.push_str(&format!("[{n}]"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_file_line_key_message() {
        let p = Problem {
            file: "veer.toml".into(),
            line: Some(7),
            key: "route \"myapp\".weights".into(),
            message: "weights sum to 90, not 100".into(),
        };
        assert_eq!(
            p.to_string(),
            "veer.toml:7: route \"myapp\".weights: weights sum to 90, not 100"
        );
        let err = ConfigError::Invalid(vec![p.clone(), p]);
        assert_eq!(err.to_string().lines().count(), 2);
    }

    #[test]
    fn lines_are_one_based() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }

    #[test]
    fn indices_follow_array_tables() {
        let text = "[[route]]\n[[route]]\n[[route.rule]]\n[route.rollout]\nx = 1\n";
        let keys = vec!["route".to_owned(), "rollout".to_owned(), "x".to_owned()];
        assert_eq!(index_keys(text, text.len(), &keys), "route[1].rollout.x");
        let keys = vec!["route".to_owned(), "rule".to_owned()];
        assert_eq!(index_keys(text, 30, &keys), "route[1].rule[0]");
    }
}
