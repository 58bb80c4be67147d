//! Upstream endpoints (`host:port`) and route host matches (`*.example.com`).

use std::collections::HashMap;
use std::net::Ipv6Addr;

use toml::Spanned;

use super::Check;
use crate::config::file::EndpointFile;
use crate::config::model::{Endpoint, HostMatch};

/// Largest per-endpoint weight (SRV's range).
pub const MAX_WEIGHT: u32 = 65535;

impl Check<'_> {
    /// A pool's `endpoints`: each `"host:port"` or `{ address, weight }`,
    /// valid, no repeats. Returns them with their weights.
    pub(super) fn endpoints(
        &mut self,
        list: &Spanned<Vec<Spanned<EndpointFile>>>,
        pool: &str,
    ) -> (Vec<Endpoint>, Vec<u32>) {
        let mut seen = HashMap::new();
        let (mut out, mut weights) = (Vec::new(), Vec::new());
        for (i, item) in list.get_ref().iter().enumerate() {
            let key = format!("{pool}.endpoints[{i}]");
            let (written, span, weight) = match item.get_ref() {
                EndpointFile::Plain(s) => (s.as_str(), item.span(), 1),
                EndpointFile::Table(t) => {
                    let weight = match &t.weight {
                        None => 1,
                        Some(w) => match u32::try_from(*w.get_ref()) {
                            Ok(w) if (1..=MAX_WEIGHT).contains(&w) => w,
                            _ => {
                                let msg = format!("weight must be 1..={MAX_WEIGHT}");
                                self.err(w.span(), format!("{key}.weight"), msg);
                                1
                            }
                        },
                    };
                    (t.address.get_ref().as_str(), t.address.span(), weight)
                }
            };
            match parse_endpoint(written) {
                Ok(endpoint) => {
                    let id = endpoint.authority.to_ascii_lowercase();
                    if let Some(first) = seen.insert(id, i) {
                        let msg =
                            format!("duplicate endpoint {written:?} (also endpoints[{first}])");
                        self.err(span, key, msg);
                    }
                    out.push(endpoint);
                    weights.push(weight);
                }
                Err(msg) => self.err(span, key, msg),
            }
        }
        (out, weights)
    }
}

/// Parses `host:port`, `1.2.3.4:port` or `[::1]:port`. The host of an IPv6
/// literal is stored without brackets, ready for `(host, port)` lookups.
pub(crate) fn parse_endpoint(written: &str) -> Result<Endpoint, String> {
    let (s, tls) = match written.strip_prefix("https://") {
        Some(rest) => (rest.strip_suffix('/').unwrap_or(rest), true),
        None => (written, false),
    };
    if s.contains("://") {
        return Err(format!(
            "endpoint {written:?} must be host:port or https://host:port"
        ));
    }
    if s.contains('/') {
        return Err(format!("endpoint {s:?} must be host:port, without a path"));
    }
    let bad = || format!("endpoint {s:?} must be host:port, e.g. \"10.0.0.11:8080\"");
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (ip, port) = rest.split_once("]:").ok_or_else(bad)?;
        ip.parse::<Ipv6Addr>()
            .map_err(|_| format!("endpoint {s:?}: {ip:?} is not an IPv6 address"))?;
        (ip, port)
    } else {
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        if host.contains(':') {
            return Err(format!(
                "endpoint {s:?}: write an IPv6 address in brackets, [::1]:8080"
            ));
        }
        if !is_hostname(host) {
            return Err(format!(
                "endpoint {s:?}: {host:?} is not a valid host name or IP address"
            ));
        }
        (host, port)
    };
    let port = match port.parse::<u16>() {
        Ok(p) if p != 0 => p,
        _ => return Err(format!("endpoint {s:?}: port {port:?} must be 1..=65535")),
    };
    Ok(Endpoint {
        authority: s.to_owned(),
        host: host.to_owned(),
        port,
        tls,
    })
}

/// Parses a route's `host`: an exact name or `*.suffix`, lowercased.
pub(crate) fn parse_host(s: &str) -> Result<HostMatch, String> {
    let host = s.to_ascii_lowercase();
    if host.is_empty() {
        return Err("host must not be empty; leave it out to match every host".to_owned());
    }
    if host.contains(':') {
        return Err(format!("host {s:?} must not include a port"));
    }
    if let Some(suffix) = host.strip_prefix("*.") {
        if !is_hostname(suffix) {
            return Err(format!("host {s:?}: {suffix:?} is not a valid domain"));
        }
        return Ok(HostMatch::Suffix(format!(".{suffix}")));
    }
    if host.contains('*') {
        return Err(format!(
            "host {s:?}: a wildcard is only allowed as a leading \"*.\""
        ));
    }
    if !is_hostname(&host) {
        return Err(format!("host {s:?} is not a valid host name"));
    }
    Ok(HostMatch::Exact(host))
}

/// Dot-separated labels of letters, digits, `-` and `_` (IPv4 passes too).
fn is_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = parse_endpoint("app.internal:8080").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("app.internal", 8080));
        let e = parse_endpoint("[::1]:9001").unwrap();
        assert_eq!(
            (e.authority.as_str(), e.host.as_str()),
            ("[::1]:9001", "::1")
        );
        for bad in [
            "app",
            "app:0",
            "app:99999",
            ":80",
            "::1:80",
            "a b:80",
            "10.0.0.1:80/x",
        ] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
        assert!(parse_endpoint("http://a:80")
            .unwrap_err()
            .contains("https://host:port"));
        let e = parse_endpoint("https://api.internal:8443").unwrap();
        assert_eq!((e.authority.as_str(), e.tls), ("api.internal:8443", true));
        assert!(!parse_endpoint("api.internal:8443").unwrap().tls);
    }

    #[test]
    fn hosts() {
        assert_eq!(
            parse_host("MyApp.Example.com"),
            Ok(HostMatch::Exact("myapp.example.com".into()))
        );
        assert_eq!(
            parse_host("*.Example.com"),
            Ok(HostMatch::Suffix(".example.com".into()))
        );
        for bad in ["", "a:80", "*", "*.", "a.*.com", "a..b", "*example.com"] {
            assert!(parse_host(bad).is_err(), "{bad}");
        }
    }
}
