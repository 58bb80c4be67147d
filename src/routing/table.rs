//! Host and path-prefix matching. Cost does not grow with the number of
//! routes: one hash probe per host candidate (exact, then each wildcard
//! suffix, then host-less routes) and one per distinct prefix length.

use std::collections::HashMap;

use crate::config::HostMatch;

/// Maps (host, path) to a route index.
#[derive(Debug, Default)]
pub struct RouteTable {
    exact: HashMap<Box<str>, PathTable>,
    /// Keyed by suffix including the leading dot: `.example.com`.
    suffix: HashMap<Box<str>, PathTable>,
    any: PathTable,
}

#[derive(Debug, Default)]
struct PathTable {
    by_prefix: HashMap<Box<str>, usize>,
    /// Distinct prefix lengths, longest first.
    lengths: Vec<usize>,
}

impl PathTable {
    fn insert(&mut self, prefix: &str, route: usize) {
        // First declared wins on an exact duplicate.
        self.by_prefix.entry(prefix.into()).or_insert(route);
        if !self.lengths.contains(&prefix.len()) {
            self.lengths.push(prefix.len());
            self.lengths.sort_unstable_by(|a, b| b.cmp(a));
        }
    }

    fn lookup(&self, path: &str) -> Option<usize> {
        self.lengths
            .iter()
            .filter(|&&len| len <= path.len() && path.is_char_boundary(len))
            .find_map(|&len| self.by_prefix.get(&path[..len]).copied())
    }
}

impl RouteTable {
    pub fn insert(&mut self, host: Option<&HostMatch>, prefix: &str, route: usize) {
        let table = match host {
            Some(HostMatch::Exact(h)) => self.exact.entry(h.as_str().into()).or_default(),
            Some(HostMatch::Suffix(s)) => self.suffix.entry(s.as_str().into()).or_default(),
            None => &mut self.any,
        };
        table.insert(prefix, route);
    }

    /// `host` must already be lowercase and without port.
    pub fn lookup(&self, host: Option<&str>, path: &str) -> Option<usize> {
        if let Some(host) = host {
            if let Some(found) = self.exact.get(host).and_then(|t| t.lookup(path)) {
                return Some(found);
            }
            if !self.suffix.is_empty() {
                // Longest suffix first: "a.b.example.com" tries ".b.example.com",
                // then ".example.com", then ".com".
                let mut rest = host;
                while let Some(dot) = rest.find('.') {
                    let suffix = &rest[dot..];
                    if let Some(found) = self.suffix.get(suffix).and_then(|t| t.lookup(path)) {
                        return Some(found);
                    }
                    rest = &rest[dot + 1..];
                }
            }
        }
        self.any.lookup(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        let mut t = RouteTable::default();
        t.insert(None, "/", 0);
        t.insert(None, "/api", 1);
        t.insert(None, "/api/v2", 2);
        t.insert(Some(&HostMatch::Exact("shop.example.com".into())), "/", 3);
        t.insert(Some(&HostMatch::Suffix(".example.com".into())), "/", 4);
        t.insert(Some(&HostMatch::Suffix(".eu.example.com".into())), "/x", 5);
        t
    }

    #[test]
    fn longest_prefix_wins() {
        let t = table();
        assert_eq!(t.lookup(None, "/"), Some(0));
        assert_eq!(t.lookup(None, "/apix"), Some(1));
        assert_eq!(t.lookup(None, "/api/v2/users"), Some(2));
        assert_eq!(t.lookup(Some("other.org"), "/api"), Some(1));
    }

    #[test]
    fn host_exact_then_wildcard_then_any() {
        let t = table();
        assert_eq!(t.lookup(Some("shop.example.com"), "/api"), Some(3));
        assert_eq!(t.lookup(Some("a.example.com"), "/"), Some(4));
        assert_eq!(t.lookup(Some("a.eu.example.com"), "/x/1"), Some(5));
        assert_eq!(t.lookup(Some("a.eu.example.com"), "/y"), Some(4));
        // The bare domain is not matched by its wildcard.
        assert_eq!(t.lookup(Some("example.com"), "/api"), Some(1));
    }

    #[test]
    fn no_match() {
        let mut t = RouteTable::default();
        t.insert(None, "/api", 0);
        assert_eq!(t.lookup(None, "/"), None);
        assert_eq!(t.lookup(Some("x"), "/ap"), None);
    }
}
