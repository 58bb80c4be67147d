//! Where a pool's endpoints come from besides the file's list: `dns` or
//! `srv` and their timing (SPEC §13), and `[proxy] resolvers`.

use std::net::{IpAddr, SocketAddr};
use toml::Spanned;

use super::{Check, SECOND};
use crate::config::file::{PoolFile, Str};
use crate::config::model::{DnsQuery, DnsSpec};

use super::address::parse_endpoint;

impl Check<'_> {
    /// `[proxy] resolvers`: `ip` (port 53) or `ip:port` each.
    pub(super) fn resolvers(&mut self, list: &Option<Spanned<Vec<Str>>>) -> Vec<SocketAddr> {
        let Some(list) = list else { return Vec::new() };
        if list.get_ref().is_empty() {
            let msg =
                "an empty list leaves nothing to ask; leave resolvers out to use the system's";
            self.err(list.span(), "proxy.resolvers", msg);
        }
        let mut out = Vec::new();
        for (i, item) in list.get_ref().iter().enumerate() {
            let text = item.get_ref().trim();
            let addr = text.parse::<SocketAddr>().ok().or_else(|| {
                text.parse::<IpAddr>()
                    .ok()
                    .map(|ip| SocketAddr::new(ip, 53))
            });
            match addr {
                Some(addr) => out.push(addr),
                None => {
                    let msg = format!(
                        "{text:?} is not a DNS server address; write an IP (port 53) or IP:PORT, e.g. \"10.0.0.2\" or \"127.0.0.1:5353\""
                    );
                    self.err(item.span(), format!("proxy.resolvers[{i}]"), msg);
                }
            }
        }
        out
    }

    /// A pool's `dns` or `srv`, with `dns_min_ttl`, `dns_max_ttl` and
    /// `hold_empty` (which mean nothing without one of them).
    pub(super) fn dns(&mut self, p: &PoolFile, label: &str) -> Option<DnsSpec> {
        let query = match (&p.dns, &p.srv) {
            (Some(_), Some(srv)) => {
                let msg = "write dns (A/AAAA with a port) or srv, not both";
                self.err(srv.span(), format!("{label}.srv"), msg);
                None
            }
            (Some(dns), None) => self.dns_host(dns, &format!("{label}.dns")),
            (None, Some(srv)) => self.srv_name(srv, &format!("{label}.srv")),
            (None, None) => {
                for (key, value) in [
                    ("dns_min_ttl", &p.dns_min_ttl),
                    ("dns_max_ttl", &p.dns_max_ttl),
                    ("hold_empty", &p.hold_empty),
                ] {
                    if let Some(value) = value {
                        let msg = "only means something with dns or srv";
                        self.err(value.span(), format!("{label}.{key}"), msg);
                    }
                }
                return None;
            }
        };
        let min_ttl =
            self.nonzero_duration(&p.dns_min_ttl, &format!("{label}.dns_min_ttl"), SECOND);
        let max_ttl =
            self.nonzero_duration(&p.dns_max_ttl, &format!("{label}.dns_max_ttl"), 60 * SECOND);
        if min_ttl > max_ttl {
            let at = p.dns_max_ttl.as_ref().or(p.dns_min_ttl.as_ref());
            let msg = format!("dns_min_ttl ({min_ttl:?}) is longer than dns_max_ttl ({max_ttl:?})");
            match at {
                Some(at) => self.err(at.span(), format!("{label}.dns_max_ttl"), msg),
                None => self.problems.nowhere(format!("{label}.dns_max_ttl"), msg),
            }
        }
        let hold_empty = self.duration(&p.hold_empty, &format!("{label}.hold_empty"), 30 * SECOND);
        Some(DnsSpec {
            query: query?,
            min_ttl,
            max_ttl: max_ttl.max(min_ttl),
            hold_empty,
        })
    }

    fn dns_host(&mut self, dns: &Str, key: &str) -> Option<DnsQuery> {
        match parse_endpoint(dns.get_ref()) {
            Ok(e) if e.tls => {
                let msg = "dns endpoints are plain HTTP; write host:port without https://";
                self.err(dns.span(), key, msg);
                None
            }
            Ok(e) => Some(DnsQuery::Host {
                name: e.host,
                port: e.port,
            }),
            Err(msg) => {
                let msg = msg.replacen("endpoint", "dns", 1);
                self.err(dns.span(), key, msg);
                None
            }
        }
    }

    fn srv_name(&mut self, srv: &Str, key: &str) -> Option<DnsQuery> {
        let name = srv.get_ref().trim_end_matches('.');
        let labels: Vec<&str> = name.split('.').collect();
        let valid = labels.len() >= 3
            && labels[0].starts_with('_')
            && labels[1].starts_with('_')
            && parse_endpoint(&format!("{name}:1")).is_ok();
        if !valid {
            let msg = format!(
                "{:?} is not an SRV name; write _service._proto.domain, e.g. \"_app._tcp.internal\" (port and weight come from the records)",
                srv.get_ref()
            );
            self.err(srv.span(), key, msg);
            return None;
        }
        Some(DnsQuery::Srv {
            name: srv.get_ref().clone(),
        })
    }
}
