//! A vector file under `dir` (relative to the keymix crate) pinned against what the test
//! renders now; with TRIDENT_REGENERATE_VECTORS set, the file is written instead. Shared by
//! the version-1 and version-2 vectors.

use std::path::PathBuf;

pub fn check(dir: &str, name: &str, rendered: String) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(dir)
        .join(name);
    if std::env::var_os("TRIDENT_REGENERATE_VECTORS").is_some() {
        std::fs::write(&path, &rendered).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; regenerate, see module docs", path.display()));
    // Line by line first: a failure names the first line that differs.
    for (want, got) in stored.lines().zip(rendered.lines()) {
        assert_eq!(want, got, "{name} differs from the pinned vector");
    }
    assert_eq!(stored, rendered);
}
