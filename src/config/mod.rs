//! Configuration: the TOML file (`file`), its validation into runtime types
//! (`model`), and the errors that name file, line and key.

pub mod model;

pub use model::*;

// TEMPORARY stub until the file layer lands.
#[derive(Debug, thiserror::Error)]
#[error("config loading not implemented")]
pub struct ConfigError;
pub fn load(_path: &std::path::Path) -> Result<Config, ConfigError> {
    Err(ConfigError)
}
pub fn parse(_text: &str, _path: &std::path::Path) -> Result<Config, ConfigError> {
    Err(ConfigError)
}
