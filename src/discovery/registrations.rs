//! Endpoints registered through the admin API, and maintenance: kept per
//! pool in `state_dir/endpoints.json` (written atomically on every
//! change, read back at start) and applied to the routing state. They
//! outlive reloads: the file's list is replaced by the new file, the
//! registrations stay and join the pool of the same name.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::config::{parse_endpoint, Endpoint, MAX_ENDPOINT_WEIGHT};
use crate::control::store::{load_json, save_json};
use crate::routing::Routing;
use crate::upstream::Source;

/// The file in `state_dir`.
const FILE: &str = "endpoints.json";

/// What is persisted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Saved {
    pools: BTreeMap<String, PoolSaved>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct PoolSaved {
    #[serde(default)]
    endpoints: Vec<Registered>,
    /// Addresses in maintenance (any source).
    #[serde(default)]
    maintenance: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Registered {
    address: String,
    weight: u32,
}

/// One endpoint of a pool as `GET .../endpoints` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointView {
    pub address: String,
    pub source: Source,
    pub weight: u32,
    /// In rotation: passes its health checks and is not ejected.
    pub healthy: bool,
    /// Kept out of rotation by `maintenance` (drained, not removed).
    pub maintenance: bool,
    pub in_flight: usize,
}

/// Why an endpoint call was refused.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("unknown pool {0:?}")]
    UnknownPool(String),
    #[error("pool {pool:?} has no endpoint {address:?}")]
    UnknownEndpoint { pool: String, address: String },
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Conflict(String),
    #[error("saving the registrations: {0}")]
    State(String),
}

/// The admin API's endpoints and maintenance, persisted.
#[derive(Debug)]
pub struct Registrations {
    routing: Arc<Routing>,
    /// `None`: not persisted (tests without a state dir).
    dir: Option<PathBuf>,
    saved: Mutex<Saved>,
}

impl Registrations {
    /// Reads what `dir` holds and applies it. A file that cannot be read
    /// is logged (and a corrupt one moved aside); veer starts without it.
    pub fn load(routing: Arc<Routing>, dir: Option<PathBuf>) -> Registrations {
        let saved: Saved = match &dir {
            Some(dir) => load_json(dir, FILE).unwrap_or_else(|e| {
                tracing::error!(error = %e, "registered endpoints not restored");
                Saved::default()
            }),
            None => Saved::default(),
        };
        for (pool, entry) in &saved.pools {
            let (api, maintenance) = members(entry);
            routing.update_members(pool, |d| {
                d.api = api;
                d.maintenance = maintenance;
            });
        }
        Registrations {
            routing,
            dir,
            saved: Mutex::new(saved),
        }
    }

    /// Every endpoint of `pool` with its source, weight and state.
    pub fn list(&self, pool: &str) -> Result<Vec<EndpointView>, EndpointError> {
        let snapshot = self.routing.load();
        let pool = snapshot
            .pool(pool)
            .ok_or_else(|| EndpointError::UnknownPool(pool.into()))?;
        let view = pool
            .members()
            .map(|(e, placement, maintenance)| EndpointView {
                address: e.spec.authority.clone(),
                source: placement.source,
                weight: placement.weight,
                healthy: e.is_healthy() && !maintenance,
                maintenance,
                in_flight: e.in_flight(),
            });
        Ok(view.collect())
    }

    /// Registers `address` in `pool` (or changes its weight when it is
    /// registered already). With `[pool.health]` it takes traffic once a
    /// check passes.
    pub fn add(&self, pool: &str, address: &str, weight: Option<u32>) -> Result<(), EndpointError> {
        let endpoint = parse_endpoint(address).map_err(EndpointError::BadRequest)?;
        let weight = check_weight(weight.unwrap_or(1))?;
        self.known(pool)?;
        if let Some(source) = self.source_of(pool, &endpoint.authority) {
            if source != Source::Api {
                return Err(EndpointError::Conflict(format!(
                    "{} is already in pool {pool:?} (from {}); it cannot be registered too",
                    endpoint.authority,
                    source.as_str()
                )));
            }
        }
        self.change(pool, |entry| {
            let registered = Registered {
                address: endpoint.authority.clone(),
                weight,
            };
            match entry
                .endpoints
                .iter_mut()
                .find(|r| r.address == endpoint.authority)
            {
                Some(r) => *r = registered,
                None => entry.endpoints.push(registered),
            }
            Ok(())
        })
    }

    /// Unregisters `address`: it leaves the pool and drains.
    pub fn remove(&self, pool: &str, address: &str) -> Result<(), EndpointError> {
        let address = self.existing(pool, address)?;
        self.change(pool, |entry| {
            let before = entry.endpoints.len();
            entry.endpoints.retain(|r| r.address != address);
            if entry.endpoints.len() == before {
                let source = self.source_of(pool, &address).unwrap_or(Source::File);
                return Err(EndpointError::Conflict(format!(
                    "{address} comes from {} and cannot be removed through the API; put it in maintenance or change {}",
                    source.as_str(),
                    match source {
                        Source::Dns => "the DNS records",
                        _ => "the config file",
                    }
                )));
            }
            entry.maintenance.remove(&address);
            Ok(())
        })
    }

    /// Puts `address` in maintenance (drained and kept out of rotation)
    /// or takes it out; changes the weight of a registered endpoint.
    pub fn update(
        &self,
        pool: &str,
        address: &str,
        maintenance: Option<bool>,
        weight: Option<u32>,
    ) -> Result<(), EndpointError> {
        let address = self.existing(pool, address)?;
        let weight = weight.map(check_weight).transpose()?;
        self.change(pool, |entry| {
            if let Some(weight) = weight {
                let Some(r) = entry.endpoints.iter_mut().find(|r| r.address == address) else {
                    return Err(EndpointError::Conflict(format!(
                        "{address} is not registered through the API; its weight comes from the config file or DNS"
                    )));
                };
                r.weight = weight;
            }
            match maintenance {
                Some(true) => entry.maintenance.insert(address.clone()),
                Some(false) => entry.maintenance.remove(&address),
                None => false,
            };
            Ok(())
        })
    }

    fn known(&self, pool: &str) -> Result<(), EndpointError> {
        match self.routing.load().pool(pool) {
            Some(_) => Ok(()),
            None => Err(EndpointError::UnknownPool(pool.into())),
        }
    }

    /// The authority of `address` as the pool has it (404 otherwise).
    fn existing(&self, pool: &str, address: &str) -> Result<String, EndpointError> {
        self.known(pool)?;
        let endpoint = parse_endpoint(address).map_err(EndpointError::BadRequest)?;
        match self.source_of(pool, &endpoint.authority) {
            Some(_) => Ok(endpoint.authority),
            None => Err(EndpointError::UnknownEndpoint {
                pool: pool.into(),
                address: endpoint.authority,
            }),
        }
    }

    fn source_of(&self, pool: &str, authority: &str) -> Option<Source> {
        let snapshot = self.routing.load();
        let pool = snapshot.pool(pool)?;
        let source = pool
            .members()
            .find(|(e, _, _)| e.spec.authority.eq_ignore_ascii_case(authority))
            .map(|(_, p, _)| p.source);
        source
    }

    /// Edits `pool`'s registrations, saves them, then applies them.
    fn change(
        &self,
        pool: &str,
        edit: impl FnOnce(&mut PoolSaved) -> Result<(), EndpointError>,
    ) -> Result<(), EndpointError> {
        let mut saved = self.saved.lock().unwrap();
        let mut next = saved.clone();
        let entry = next.pools.entry(pool.to_string()).or_default();
        edit(entry)?;
        let (api, maintenance) = members(entry);
        if entry.endpoints.is_empty() && entry.maintenance.is_empty() {
            next.pools.remove(pool);
        }
        if let Some(dir) = &self.dir {
            save_json(dir, FILE, &next).map_err(|e| EndpointError::State(e.to_string()))?;
        }
        *saved = next;
        self.routing.update_members(pool, |d| {
            d.api = api;
            d.maintenance = maintenance;
        });
        Ok(())
    }
}

fn check_weight(weight: u32) -> Result<u32, EndpointError> {
    match weight {
        1..=MAX_ENDPOINT_WEIGHT => Ok(weight),
        _ => Err(EndpointError::BadRequest(format!(
            "weight must be 1..={MAX_ENDPOINT_WEIGHT}"
        ))),
    }
}

/// A pool's saved registrations as routing members.
fn members(entry: &PoolSaved) -> (Vec<(Endpoint, u32)>, BTreeSet<String>) {
    let api = entry
        .endpoints
        .iter()
        .filter_map(|r| match parse_endpoint(&r.address) {
            Ok(e) => Some((e, r.weight.clamp(1, MAX_ENDPOINT_WEIGHT))),
            Err(e) => {
                tracing::error!(address = %r.address, error = %e, "registered endpoint ignored");
                None
            }
        })
        .collect();
    (api, entry.maintenance.clone())
}
