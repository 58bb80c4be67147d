//! Every shipped config in `config/` passes validation (`veer check`).

#[test]
fn every_shipped_config_is_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            if let Err(e) = veer::config::load(&path) {
                panic!("{e}");
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 3,
        "only {checked} configs found in {}",
        dir.display()
    );
}
