//! `[route.mirror]` and `[route.rollout.shadow]`: the shared mirror keys,
//! the comparison, and the shadow stage's bounds.

use toml::Spanned;

use super::Check;
use crate::config::file::{CompareFile, MirrorFile, ShadowFile, Str};
use crate::config::mirror::{defaults, json_path};
use crate::config::model::{
    BodyCompare, CompareSpec, MirrorSpec, ShadowSpec, StatusCompare, Strategy,
};

/// The keys `[route.mirror]` and `[route.rollout.shadow]` share.
struct Keys<'f> {
    percent: &'f Option<Spanned<i64>>,
    methods: &'f Option<Vec<Str>>,
    max_body: &'f Option<Spanned<i64>>,
    queue: &'f Option<Spanned<i64>>,
    compare: &'f Option<CompareFile>,
}

impl Check<'_> {
    pub(super) fn mirror(
        &mut self,
        m: &Spanned<MirrorFile>,
        route_pool: &str,
        pools: &[&str],
        route: &str,
    ) -> Option<MirrorSpec> {
        let key = format!("{route}.mirror");
        let f = m.get_ref();
        self.pool_ref(&f.pool, &format!("{key}.pool"), pools);
        if f.pool.get_ref() == route_pool {
            let msg = format!(
                "mirror pool {route_pool:?} is the route's own pool: mirror to another version"
            );
            self.err(f.pool.span(), format!("{key}.pool"), msg);
        }
        let keys = Keys {
            percent: &f.percent,
            methods: &f.methods,
            max_body: &f.max_body,
            queue: &f.queue,
            compare: &f.compare,
        };
        Some(self.mirror_keys(&keys, f.pool.get_ref(), &key))
    }

    pub(super) fn shadow(
        &mut self,
        s: &Spanned<ShadowFile>,
        strategy: Option<Strategy>,
        key: &str,
    ) -> Option<ShadowSpec> {
        let f = s.get_ref();
        if let Some(strategy) = strategy
            .filter(|s| !matches!(s, Strategy::Canary | Strategy::BlueGreen | Strategy::AbTest))
        {
            let msg = format!(
                "a shadow stage runs before the first traffic step of canary, blue_green or ab_test, not {strategy}"
            );
            self.err(s.span(), key, msg);
        }
        let keys = Keys {
            percent: &f.percent,
            methods: &f.methods,
            max_body: &f.max_body,
            queue: &f.queue,
            compare: &f.compare,
        };
        let mirror = self.mirror_keys(&keys, "", key);
        let iterations = match &f.iterations {
            Some(n) if *n.get_ref() == 0 => {
                self.err(n.span(), format!("{key}.iterations"), "must be at least 1");
                defaults::SHADOW_ITERATIONS
            }
            Some(n) => *n.get_ref(),
            None => defaults::SHADOW_ITERATIONS,
        };
        let max_mismatch_rate = match &f.max_mismatch_rate {
            Some(v) if !(0.0..=100.0).contains(v.get_ref()) => {
                let msg = format!("{} must be a percent, 0..=100", v.get_ref());
                self.err(v.span(), format!("{key}.max_mismatch_rate"), msg);
                defaults::MAX_MISMATCH_RATE
            }
            Some(v) => *v.get_ref(),
            None => defaults::MAX_MISMATCH_RATE,
        };
        Some(ShadowSpec {
            mirror,
            iterations,
            max_mismatch_rate,
            min_compared: f.min_compared.unwrap_or(defaults::MIN_COMPARED),
        })
    }

    fn mirror_keys(&mut self, f: &Keys<'_>, pool: &str, key: &str) -> MirrorSpec {
        let k = |name: &str| format!("{key}.{name}");
        let percent = match f.percent {
            Some(p) if !(0..=100).contains(p.get_ref()) => {
                let msg = format!("{} must be a percent, 0..=100", p.get_ref());
                self.err(p.span(), k("percent"), msg);
                defaults::percent()
            }
            Some(p) => *p.get_ref() as u32,
            None => defaults::percent(),
        };
        let methods = match f.methods {
            Some(list) => list
                .iter()
                .filter_map(|m| {
                    let name = m.get_ref().to_ascii_uppercase();
                    match http::Method::from_bytes(name.as_bytes()) {
                        Ok(_) if !name.is_empty() => Some(name),
                        _ => {
                            let msg = format!("{:?} is not an HTTP method", m.get_ref());
                            self.err(m.span(), k("methods"), msg);
                            None
                        }
                    }
                })
                .collect(),
            None => defaults::methods(),
        };
        let mut positive = |value: &Option<Spanned<i64>>, name: &str, min: i64| {
            let v = value.as_ref()?;
            if *v.get_ref() < min {
                let msg = format!("{} must be at least {min}", v.get_ref());
                self.err(v.span(), k(name), msg);
                return None;
            }
            Some(*v.get_ref())
        };
        let max_body =
            positive(f.max_body, "max_body", 0).map_or(defaults::max_body(), |v| v as u64);
        let queue = positive(f.queue, "queue", 1).map_or(defaults::queue(), |v| v as usize);
        let compare = f
            .compare
            .as_ref()
            .map_or_else(CompareSpec::default, |c| self.compare(c, &k("compare")));
        MirrorSpec {
            pool: pool.to_string(),
            percent,
            methods,
            max_body,
            queue,
            compare,
        }
    }

    fn compare(&mut self, c: &CompareFile, key: &str) -> CompareSpec {
        let k = |name: &str| format!("{key}.{name}");
        let mut spec = CompareSpec::default();
        if let Some(s) = &c.status {
            match s.get_ref().as_str() {
                "exact" => spec.status = StatusCompare::Exact,
                "class" => spec.status = StatusCompare::Class,
                other => {
                    let msg = format!(
                        "unknown status comparison {other:?}; expected \"exact\" or \"class\""
                    );
                    self.err(s.span(), k("status"), msg);
                }
            }
        }
        if let Some(b) = &c.body {
            match b.get_ref().as_str() {
                "hash" => spec.body = BodyCompare::Hash,
                "json" => spec.body = BodyCompare::Json,
                "none" => spec.body = BodyCompare::None,
                other => {
                    let msg = format!(
                        "unknown body comparison {other:?}; expected \"hash\", \"json\" or \"none\""
                    );
                    self.err(b.span(), k("body"), msg);
                }
            }
        }
        for h in c.headers.iter().flatten() {
            if let Some(name) = self.header_name(h, &k("headers")) {
                spec.headers.push(name.as_str().to_string());
            }
        }
        for path in c.ignore.iter().flatten() {
            match json_path(path.get_ref()) {
                Ok(_) => spec.ignore.push(path.get_ref().clone()),
                Err(msg) => self.err(path.span(), k("ignore"), msg),
            }
        }
        if !spec.ignore.is_empty() && spec.body != BodyCompare::Json {
            if let Some(b) = &c.body {
                let msg = "ignore paths apply to body = \"json\" only";
                self.err(b.span(), k("ignore"), msg);
            }
        }
        spec.noise = c.noise.unwrap_or(false);
        spec
    }
}
