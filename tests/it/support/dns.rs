//! A real DNS server on 127.0.0.1 (UDP) whose answers a test changes: A
//! and SRV records with one TTL, an empty answer (NOERROR, no records),
//! NXDOMAIN for names it does not know, and SERVFAIL on demand. Built on
//! the DNS message code of `hickory-proto` (the resolver's own).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
use hickory_resolver::proto::rr::rdata::{A, SRV};
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// One SRV record: priority, weight, port, target name.
pub type Srv = (u16, u16, u16, &'static str);

#[derive(Default)]
struct Zone {
    a: HashMap<String, Vec<Ipv4Addr>>,
    srv: HashMap<String, Vec<Srv>>,
    ttl: u32,
    servfail: bool,
    /// Queries get no answer at all (a resolver timeout).
    silent: bool,
    /// Every query answered: when, the name, and the answer's code and
    /// record count.
    log: Vec<(Instant, String, ResponseCode, usize)>,
}

pub struct DnsServer {
    pub addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DnsServer {
    /// Serves on 127.0.0.1:0 with records of `ttl` seconds.
    pub async fn start(ttl: u32) -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let zone = Arc::new(Mutex::new(Zone {
            ttl,
            ..Zone::default()
        }));
        let z = zone.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let answer = {
                    let mut zone = z.lock().unwrap();
                    match zone.silent {
                        true => None,
                        false => Some(answer(&query, &mut zone)),
                    }
                };
                if let Some(answer) = answer {
                    let _ = socket.send_to(&answer.to_vec().unwrap(), from).await;
                }
            }
        });
        DnsServer { addr, zone, task }
    }

    /// `name` answers A records `ips` (none: an empty NOERROR answer).
    pub fn set_a(&self, name: &str, ips: &[Ipv4Addr]) {
        self.zone.lock().unwrap().a.insert(key(name), ips.to_vec());
    }

    pub fn set_srv(&self, name: &str, records: &[Srv]) {
        let mut zone = self.zone.lock().unwrap();
        zone.srv.insert(key(name), records.to_vec());
    }

    /// `name` is gone: NXDOMAIN.
    pub fn remove(&self, name: &str) {
        let mut zone = self.zone.lock().unwrap();
        zone.a.remove(&key(name));
        zone.srv.remove(&key(name));
    }

    /// Every query answers SERVFAIL while on.
    pub fn servfail(&self, on: bool) {
        self.zone.lock().unwrap().servfail = on;
    }

    /// No query gets an answer while on.
    pub fn silent(&self, on: bool) {
        self.zone.lock().unwrap().silent = on;
    }

    /// Queries for `name` answered so far.
    pub fn queries(&self, name: &str) -> usize {
        let zone = self.zone.lock().unwrap();
        zone.log.iter().filter(|q| q.1 == key(name)).count()
    }

    /// When the first query for `name` after `since` got an answer with
    /// no records (empty or NXDOMAIN).
    pub fn first_empty_answer(&self, name: &str, since: Instant) -> Option<Instant> {
        let zone = self.zone.lock().unwrap();
        zone.log
            .iter()
            .find(|(at, n, code, count)| {
                *at >= since && *n == key(name) && *count == 0 && *code != ResponseCode::ServFail
            })
            .map(|q| q.0)
    }
}

fn key(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn answer(query: &Message, zone: &mut Zone) -> Message {
    let mut out = Message::new();
    out.set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_authoritative(true)
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true);
    let Some(q) = query.queries().first() else {
        out.set_response_code(ResponseCode::FormErr);
        return out;
    };
    out.add_query(q.clone());
    let name = key(&q.name().to_utf8());
    let ttl = zone.ttl;
    let mut records = Vec::new();
    let code = if zone.servfail {
        ResponseCode::ServFail
    } else if !zone.a.contains_key(&name) && !zone.srv.contains_key(&name) {
        ResponseCode::NXDomain
    } else {
        match q.query_type() {
            RecordType::A => {
                for ip in zone.a.get(&name).into_iter().flatten() {
                    records.push(Record::from_rdata(q.name().clone(), ttl, RData::A(A(*ip))));
                }
            }
            RecordType::SRV => {
                for (priority, weight, port, target) in zone.srv.get(&name).into_iter().flatten() {
                    let target = Name::from_str(&format!("{target}.")).unwrap();
                    let srv = SRV::new(*priority, *weight, *port, target);
                    records.push(Record::from_rdata(q.name().clone(), ttl, RData::SRV(srv)));
                }
            }
            _ => {}
        }
        ResponseCode::NoError
    };
    out.set_response_code(code);
    zone.log.push((Instant::now(), name, code, records.len()));
    for record in records {
        out.add_answer(record);
    }
    out
}

/// Upstreams named `names` on 127.0.0.2, 127.0.0.3, ... all on one port
/// (A records carry no port), and that port.
pub async fn upstreams_on_one_port(names: &[&str]) -> (Vec<super::Upstream>, u16) {
    'attempt: for _ in 0..50 {
        let first = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
        let port = first.local_addr().unwrap().port();
        let mut listeners = vec![first];
        for i in 1..names.len() {
            let addr = SocketAddr::from((loopback(i), port));
            match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => listeners.push(l),
                Err(_) => continue 'attempt,
            }
        }
        let ups = names
            .iter()
            .zip(listeners)
            .map(|(name, l)| super::Upstream::serve(name, l))
            .collect();
        return (ups, port);
    }
    panic!("no port free on every loopback address");
}

/// 127.0.0.2 for the first upstream, 127.0.0.3 for the next...
pub fn loopback(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, 2 + i as u8)
}
