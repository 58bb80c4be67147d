//! A controller with its effects recorded and its sensing scripted, on
//! the test's (paused) clock.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::{Config, QuerySpec, WebhookKind, WebhookSpec};
use crate::control::effects::{Effects, Ticket};
use crate::control::events::{EventKind, Events};
use crate::control::record::Record;
use crate::control::sense::{Sensed, Sensor};
use crate::control::store::{Loaded, StoreError};
use crate::control::webhook::Payload;
use crate::control::{Controller, Msg};
use crate::rollout::{Phase, Rollout, Sizes, Verdict};
use crate::routing::RouteTraffic;

#[derive(Debug, Default)]
pub struct Recorded {
    /// Every publish: route and traffic (`None`: the file's split).
    pub published: Vec<(String, Option<RouteTraffic>)>,
    /// Every config publish, with the traffic it carried.
    pub configs: Vec<std::collections::HashMap<String, RouteTraffic>>,
    pub events: Vec<(EventKind, Option<String>, String)>,
    pub transitions: Vec<(Rollout, Option<Verdict>)>,
    /// Webhook events notified (payload event names).
    pub notified: Vec<(&'static str, Phase)>,
    pub gates: Vec<(WebhookKind, Ticket)>,
    pub persisted: Option<BTreeMap<String, Record>>,
}

#[derive(Clone, Default)]
pub struct Fx(pub Arc<Mutex<Recorded>>);

impl Effects for Fx {
    fn publish(&mut self, route: &str, traffic: Option<RouteTraffic>) {
        self.0
            .lock()
            .unwrap()
            .published
            .push((route.into(), traffic));
    }
    fn publish_config(
        &mut self,
        config: Arc<Config>,
        traffic: std::collections::HashMap<String, RouteTraffic>,
    ) {
        let mut rec = self.0.lock().unwrap();
        for route in &config.routes {
            let t = traffic.get(&route.name).cloned();
            rec.published.push((route.name.clone(), t));
        }
        rec.configs.push(traffic);
    }
    fn event(&mut self, kind: EventKind, route: Option<&str>, message: String) {
        let route = route.map(str::to_string);
        self.0.lock().unwrap().events.push((kind, route, message));
    }
    fn transition(&mut self, r: &Rollout, verdict: Option<Verdict>) {
        self.0
            .lock()
            .unwrap()
            .transitions
            .push((r.clone(), verdict));
    }
    fn notify(&mut self, _: Vec<WebhookSpec>, payload: Payload) {
        let mut rec = self.0.lock().unwrap();
        rec.notified.push((payload.event, payload.phase));
    }
    fn ask_gate(&mut self, _: Vec<WebhookSpec>, kind: WebhookKind, _: Payload, ticket: Ticket) {
        self.0.lock().unwrap().gates.push((kind, ticket));
    }
    fn check(&mut self, _: Vec<QuerySpec>, _: Ticket) {}
    fn persist(&mut self, records: &BTreeMap<String, Record>) -> Result<(), StoreError> {
        self.0.lock().unwrap().persisted = Some(records.clone());
        Ok(())
    }
}

/// What the data plane "saw": every reading adds `rate` candidate
/// attempts (`failing` of them failed) and as many stable ones.
#[derive(Debug, Default)]
pub struct Seen {
    pub sensed: Sensed,
    pub rate: u64,
    pub failing: u64,
}

#[derive(Clone, Default)]
pub struct Script(pub Arc<Mutex<Seen>>);

impl Sensor for Script {
    fn sense(&self, _: &Rollout) -> Sensed {
        let mut seen = self.0.lock().unwrap();
        let (rate, failing) = (seen.rate, seen.failing);
        let s = &mut seen.sensed;
        s.candidate.attempts += rate;
        s.candidate.failures += failing;
        s.stable.attempts += rate;
        s.clone()
    }
}

impl Script {
    /// Healthy traffic at 10 attempts per reading, one endpoint each.
    pub fn healthy() -> Script {
        let script = Script::default();
        script.set(|s| {
            s.rate = 10;
            s.sensed.ready = 1;
            s.sensed.sizes = Sizes {
                stable_endpoints: 1,
                candidate_endpoints: 1,
            };
        });
        script
    }

    pub fn set(&self, f: impl FnOnce(&mut Seen)) {
        f(&mut self.0.lock().unwrap());
    }
}

pub struct Harness {
    pub controller: Controller,
    pub fx: Fx,
    pub script: Script,
    pub stop: CancellationToken,
    pub task: tokio::task::JoinHandle<()>,
}

/// Two pools, blue and green, and route `app` on blue with `rollout`
/// (TOML of `[route.rollout]` and below; empty for none).
pub fn config(rollout: &str) -> Arc<Config> {
    config_with("", rollout)
}

pub fn config_with(extra_routes: &str, rollout: &str) -> Arc<Config> {
    let text = format!(
        "[[listener]]\nname = \"l\"\nlisten = \"127.0.0.1:0\"\n\
         [[pool]]\nname = \"blue\"\nendpoints = [\"127.0.0.1:1\"]\n\
         [[pool]]\nname = \"green\"\nendpoints = [\"127.0.0.1:2\"]\n\
         {extra_routes}[[route]]\nname = \"app\"\npool = \"blue\"\n{rollout}"
    );
    Arc::new(crate::config::parse(&text, std::path::Path::new("test.toml")).unwrap())
}

/// A canary of 10 s intervals over `steps`, passing at 99% success.
pub fn canary(steps: &str, extra: &str) -> String {
    format!(
        "[route.rollout]\nstrategy = \"canary\"\nsteps = [{steps}]\ninterval = \"10s\"\nthreshold = 2\n{extra}\
         [route.rollout.analysis]\nmin_requests = 10\nsuccess_rate = 99.0\n"
    )
}

pub fn start(config: Arc<Config>, script: Script, loaded: Loaded) -> Harness {
    let fx = Fx::default();
    let stop = CancellationToken::new();
    let effects = fx.clone();
    let (controller, task) = Controller::spawn_with(
        config,
        |_| effects,
        script.clone(),
        loaded,
        Arc::new(Events::default()),
        stop.clone(),
        true,
    );
    Harness {
        controller,
        fx,
        script,
        stop,
        task,
    }
}

impl Harness {
    pub fn recorded<T>(&self, f: impl FnOnce(&Recorded) -> T) -> T {
        f(&self.fx.0.lock().unwrap())
    }

    /// The traffic last published for `app`.
    pub fn traffic(&self) -> Option<RouteTraffic> {
        self.recorded(|r| r.published.iter().rev().find(|(n, _)| n == "app").cloned())
            .and_then(|(_, t)| t)
    }

    /// Percent to green in the last published traffic of `app`.
    pub fn green(&self) -> u32 {
        self.traffic().map_or(0, |t| {
            t.weights
                .percent
                .iter()
                .find(|(p, _)| p == "green")
                .map_or(0, |(_, w)| *w)
        })
    }

    pub fn phase(&self) -> Phase {
        self.controller.phase("app")
    }

    /// Verdicts judged so far.
    pub fn verdicts(&self) -> usize {
        self.recorded(|r| r.transitions.iter().filter(|(_, v)| v.is_some()).count())
    }

    /// Answers a gate as its webhook would.
    pub fn answer(&self, kind: WebhookKind, ticket: Ticket, answer: Result<(), String>) {
        let msg = Msg::Gate {
            ticket,
            kind,
            answer,
        };
        self.controller.tx.send(msg).unwrap();
    }

    /// Stops the controller and returns what it persisted, as a restart
    /// would read it.
    pub async fn restart_state(self) -> Loaded {
        self.stop.cancel();
        let routes = self.recorded(|r| r.persisted.clone()).unwrap_or_default();
        let _ = self.task.await;
        Loaded {
            routes,
            notes: Vec::new(),
        }
    }
}

/// Lets the controller run for `d` of paused time.
pub async fn run_for(d: Duration) {
    tokio::time::sleep(d).await;
}
