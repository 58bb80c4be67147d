//! `[[route]]`: host/path match, pool references, weights, rules, sticky.

use std::collections::HashMap;
use std::time::Duration;

use toml::Spanned;

use super::address::parse_host;
use super::{label, Check};
use crate::config::file::{Entries, RouteFile, StickyFile, Str, StrMap};
use crate::config::model::{HostMatch, MatchSpec, RouteSpec, RuleSpec, StickyKey};

/// The three kinds of match condition, as written in a rule or `match`.
pub(super) struct Conditions<'f> {
    pub headers: &'f Option<StrMap>,
    pub cookies: &'f Option<StrMap>,
    pub query: &'f Option<StrMap>,
}

impl Check<'_> {
    pub(super) fn routes(&mut self, all: &[RouteFile], pools: &[&str]) -> Vec<RouteSpec> {
        let mut names = HashMap::new();
        let mut matches: Vec<(Option<HostMatch>, String, &str)> = Vec::new();
        let mut out = Vec::new();
        for (i, r) in all.iter().enumerate() {
            let label = label("route", i, r.name.get_ref());
            self.name(&r.name, &format!("{label}.name"), "route", &mut names);
            let host = r.host.as_ref().and_then(|h| match parse_host(h.get_ref()) {
                Ok(host) => Some(host),
                Err(msg) => {
                    self.err(h.span(), format!("{label}.host"), msg);
                    None
                }
            });
            let path_prefix = match &r.path_prefix {
                Some(p) if !p.get_ref().starts_with('/') => {
                    let msg = format!("path_prefix {:?} must start with '/'", p.get_ref());
                    self.err(p.span(), format!("{label}.path_prefix"), msg);
                    "/".to_owned()
                }
                Some(p) => p.get_ref().clone(),
                None => "/".to_owned(),
            };
            let at = r
                .path_prefix
                .as_ref()
                .or(r.host.as_ref())
                .unwrap_or(&r.name);
            let host_ok = r.host.is_none() || host.is_some();
            match matches
                .iter()
                .find(|(h, p, _)| *h == host && *p == path_prefix)
            {
                Some((_, _, other)) if host_ok => {
                    let msg = format!("route {other:?} already matches this host and path_prefix");
                    self.err(at.span(), label.clone(), msg);
                }
                _ => matches.push((host.clone(), path_prefix.clone(), r.name.get_ref())),
            }
            self.pool_ref(&r.pool, &format!("{label}.pool"), pools);
            let weights = r.weights.as_ref().map(|w| self.weights(w, &label, pools));
            let rules = r
                .rule
                .iter()
                .enumerate()
                .map(|(j, rule)| {
                    let key = format!("{label}.rule[{j}]");
                    self.pool_ref(&rule.pool, &format!("{key}.pool"), pools);
                    let conditions = Conditions {
                        headers: &rule.headers,
                        cookies: &rule.cookies,
                        query: &rule.query,
                    };
                    RuleSpec {
                        matches: self.match_spec(conditions, rule.pool.span(), &key),
                        pool: rule.pool.get_ref().clone(),
                    }
                })
                .collect();
            let sticky = r.sticky.as_ref().and_then(|s| self.sticky(s, &label));
            let timeout = self.nonzero_duration(
                &r.timeout,
                &format!("{label}.timeout"),
                Duration::from_secs(30),
            );
            let rollout = r.rollout.as_ref().and_then(|ro| self.rollout(ro, &label));
            let upgrades = self.upgrades(&r.upgrades, &label);
            let mirror = r
                .mirror
                .as_ref()
                .and_then(|m| self.mirror(m, r.pool.get_ref(), pools, &label));
            out.push(RouteSpec {
                name: r.name.get_ref().clone(),
                host,
                path_prefix,
                pool: r.pool.get_ref().clone(),
                weights,
                timeout,
                retries: r.retries.unwrap_or(1),
                upgrades,
                rules,
                sticky,
                rollout,
                mirror,
            });
        }
        out
    }

    /// `upgrades = [...]`: protocol tokens; default `["websocket"]`.
    fn upgrades(&mut self, upgrades: &Option<Spanned<Vec<Str>>>, route: &str) -> Vec<String> {
        let Some(list) = upgrades else {
            return vec!["websocket".into()];
        };
        let key = format!("{route}.upgrades");
        let mut out = Vec::new();
        for name in list.get_ref() {
            let token = name.get_ref().to_ascii_lowercase();
            let ok = !token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&b));
            if !ok {
                self.err(
                    name.span(),
                    &key,
                    format!("{token:?} is not a protocol name"),
                );
            } else if token == "h2c" || token.starts_with("h2c/") {
                let msg = "h2c is never tunneled (veer speaks h2c itself)".to_string();
                self.err(name.span(), &key, msg);
            } else {
                out.push(token);
            }
        }
        out
    }

    pub(super) fn pool_ref(&mut self, pool: &Str, key: &str, pools: &[&str]) {
        if !pools.contains(&pool.get_ref().as_str()) {
            let msg = format!(
                "unknown pool {:?}; pools are: {}",
                pool.get_ref(),
                pools.join(", ")
            );
            self.err(pool.span(), key, msg);
        }
    }

    fn weights(
        &mut self,
        weights: &Spanned<Entries<Str, Spanned<i64>>>,
        route: &str,
        pools: &[&str],
    ) -> Vec<(String, u32)> {
        let mut sum = 0;
        let mut out = Vec::new();
        for (pool, weight) in &weights.get_ref().0 {
            let key = format!("{route}.weights.{}", pool.get_ref());
            self.pool_ref(pool, &key, pools);
            match u32::try_from(*weight.get_ref()) {
                Ok(w) if w <= 100 => {
                    sum += w;
                    out.push((pool.get_ref().clone(), w));
                }
                _ => {
                    let msg = format!("weight {} must be a percent, 0..=100", weight.get_ref());
                    self.err(weight.span(), key, msg);
                }
            }
        }
        if sum != 100 && out.len() == weights.get_ref().0.len() {
            let msg = format!("weights sum to {sum}, must be 100");
            self.err(weights.span(), format!("{route}.weights"), msg);
        }
        out
    }

    /// Checks match conditions; `at` is where to report having none.
    pub(super) fn match_spec(
        &mut self,
        c: Conditions<'_>,
        at: std::ops::Range<usize>,
        key: &str,
    ) -> MatchSpec {
        let mut spec = MatchSpec::default();
        for (name, value) in entries(c.headers) {
            if let Some(header) =
                self.header_name(name, &format!("{key}.headers.{}", name.get_ref()))
            {
                spec.headers.push((header, value.get_ref().clone()));
            }
        }
        for (name, value) in entries(c.cookies) {
            if !is_token(name.get_ref()) {
                let msg = format!("invalid cookie name {:?}", name.get_ref());
                self.err(name.span(), format!("{key}.cookies"), msg);
            }
            spec.cookies
                .push((name.get_ref().clone(), value.get_ref().clone()));
        }
        for (name, value) in entries(c.query) {
            if name.get_ref().is_empty() {
                self.err(
                    name.span(),
                    format!("{key}.query"),
                    "query parameter name must not be empty",
                );
            }
            spec.query
                .push((name.get_ref().clone(), value.get_ref().clone()));
        }
        let count = [c.headers, c.cookies, c.query]
            .iter()
            .map(|m| entries(m).len())
            .sum::<usize>();
        if count == 0 {
            let msg = "needs at least one condition in headers, cookies or query";
            self.err(at, key, msg);
        }
        spec
    }

    fn sticky(&mut self, sticky: &Spanned<StickyFile>, route: &str) -> Option<StickyKey> {
        let key = format!("{route}.sticky");
        match sticky.get_ref() {
            StickyFile {
                header: Some(header),
                cookie: None,
            } => Some(StickyKey::Header(
                self.header_name(header, &format!("{key}.header"))?,
            )),
            StickyFile {
                header: None,
                cookie: Some(cookie),
            } => {
                if !is_token(cookie.get_ref()) {
                    let msg = format!("invalid cookie name {:?}", cookie.get_ref());
                    self.err(cookie.span(), format!("{key}.cookie"), msg);
                }
                Some(StickyKey::Cookie(cookie.get_ref().clone()))
            }
            StickyFile {
                header: Some(_),
                cookie: Some(_),
            } => {
                self.err(sticky.span(), key, "set either header or cookie, not both");
                None
            }
            StickyFile {
                header: None,
                cookie: None,
            } => {
                self.err(sticky.span(), key, "set one of header or cookie");
                None
            }
        }
    }
}

fn entries(map: &Option<StrMap>) -> &[(Str, Str)] {
    map.as_ref().map_or(&[], |m| &m.0)
}

/// An HTTP token (RFC 9110), as cookie names must be.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
