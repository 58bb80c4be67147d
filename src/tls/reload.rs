//! Which directories to watch so certificates reload when their files
//! change. Directories, not files, for the same reason as the config
//! file (see [`crate::config::watch`]): renames and symlink swaps.

use std::path::{Path, PathBuf};

use crate::config::Config;

/// The directories holding every listener certificate, key and client CA
/// of `config`, without repeats, in a stable order.
pub fn cert_dirs(config: &Config) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let files = config
        .listeners
        .iter()
        .filter_map(|l| l.tls.as_ref())
        .flat_map(|tls| {
            tls.certs
                .iter()
                .flat_map(|c| [c.cert.as_path(), c.key.as_path()])
                .chain(tls.client_ca.as_deref())
        });
    for file in files {
        let dir = match file.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => Path::new(".").to_path_buf(),
        };
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs.sort();
    dirs
}
