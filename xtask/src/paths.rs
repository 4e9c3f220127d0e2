//! Where things are: the workspace root and the embedded default database.

use std::path::PathBuf;

/// The workspace root (xtask lives one level below it).
pub(crate) fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent directory")
        .to_path_buf()
}

/// The embedded default: a SQLite file under the workspace's `data/`.
pub(crate) fn default_url() -> String {
    format!(
        "sqlite://{}",
        project_root().join("data/dbinit.db").display()
    )
}
