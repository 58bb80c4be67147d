//! The reference docs keep up with the code: every key of the config file
//! (a field of a `*File` struct in `src/config/file.rs`) is named, in
//! backticks, in `docs/configuration.md`.

use std::path::Path;

/// Every TOML key the `*File` structs accept: their field names, or the
/// `#[serde(rename = "...")]` given just above a field.
fn config_keys(source: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut in_file_struct = false;
    let mut rename: Option<String> = None;
    for line in source.lines() {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("pub struct ") {
            let name = rest.split([' ', '{', '<', '(']).next().unwrap_or("");
            in_file_struct = name.ends_with("File") && trimmed.ends_with('{');
            rename = None;
            continue;
        }
        if !in_file_struct {
            continue;
        }
        if trimmed == "}" {
            in_file_struct = false;
            continue;
        }
        if let Some(at) = trimmed.find("rename = \"") {
            let rest = &trimmed[at + "rename = \"".len()..];
            rename = rest.split('"').next().map(str::to_string);
            continue;
        }
        if let Some(field) = trimmed.strip_prefix("pub ") {
            if let Some((name, _)) = field.split_once(':') {
                keys.push(rename.take().unwrap_or_else(|| name.trim().to_string()));
            }
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

#[test]
fn every_config_key_is_in_the_configuration_reference() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let source = std::fs::read_to_string(root.join("src/config/file.rs")).unwrap();
    let docs = std::fs::read_to_string(root.join("docs/configuration.md")).unwrap();
    let keys = config_keys(&source);
    // The parser itself must keep working: these are known keys.
    for known in [
        "workers",
        "token_env",
        "endpoints",
        "match",
        "prometheus",
        "lease_ttl",
    ] {
        assert!(
            keys.iter().any(|k| k == known),
            "{known} not found in file.rs: {keys:?}"
        );
    }
    assert!(!keys.iter().any(|k| k == "ab_match"), "rename not honoured");
    let missing: Vec<&String> = keys
        .iter()
        .filter(|k| !docs.contains(&format!("`{k}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "config keys in src/config/file.rs missing from docs/configuration.md \
         (write each as `key`): {missing:?}"
    );
}
