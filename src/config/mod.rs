//! Configuration: the TOML file (`file`), its validation into runtime types
//! (`model`), and the errors that name file, line and key.
//!
//! [`load`] and [`parse`] are the entry points; both return every problem
//! in the file at once, each as `FILE:LINE: KEY: MESSAGE`.

mod analysis;
mod cluster;
mod defaults;
mod dns;
mod error;
pub mod file;
mod forms;
pub mod freeze;
pub mod mirror;
pub mod model;
mod validate;
pub mod watch;

use std::path::Path;

pub use analysis::{Compare, LatencyTolerance, OnTimeout, Tolerance};
pub use error::{ConfigError, Problem};
pub use freeze::FreezeWindow;
pub use model::*;

/// Largest weight an endpoint can have (`{ address, weight }`, the API).
pub const MAX_ENDPOINT_WEIGHT: u32 = validate::MAX_WEIGHT;

/// Parses an endpoint as the file's `endpoints` take it: `host:port`,
/// `[v6]:port` or `https://host:port`; the error says what is wrong.
pub fn parse_endpoint(written: &str) -> Result<Endpoint, String> {
    validate::parse_endpoint(written)
}

/// Reads and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Validates config `text` as if read from `path`: `path` names the file in
/// errors and relative paths in it are resolved against its directory.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let file: file::ConfigFile =
        toml::from_str(text).map_err(|e| error::from_toml(path, text, &e))?;
    validate::build(file, text, path)
}

#[cfg(test)]
mod tests;
