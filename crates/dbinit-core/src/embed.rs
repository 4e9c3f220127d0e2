//! Embedding migrations from a build script.
//!
//! `refinery::embed_migrations!` parses every file name with a regex and
//! computes every checksum each time the program starts. [`embed`] does that
//! work once, in `build.rs`, with refinery's own parser and checksum, and
//! writes a static table the program `include!`s:
//!
//! ```text
//! // build.rs
//! fn main() {
//!     dbinit_core::migration::embed("migrations/sqlite", "sqlite_migrations.rs").unwrap();
//! }
//! ```
//!
//! ```text
//! // src/lib.rs
//! static SQLITE: &[dbinit_core::migration::EmbeddedMigration] =
//!     include!(concat!(env!("OUT_DIR"), "/sqlite_migrations.rs"));
//! let set = dbinit_core::MigrationSet::embedded("embedded:sqlite", SQLITE)?;
//! ```

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use refinery_core::{find_migration_files, Migration, MigrationType};

/// Reads the `V{n}__{name}.sql` files under `dir` (relative to the crate's
/// manifest directory) and writes `$OUT_DIR/<out_file>`, a Rust expression of
/// type `&[EmbeddedMigration]`. Tells cargo to rerun when the directory or a
/// file changes. For use in build scripts only.
///
/// # Errors
///
/// When the directory cannot be read, a file name does not parse, or
/// `OUT_DIR` / `CARGO_MANIFEST_DIR` are not set (not in a build script).
pub fn embed(dir: impl AsRef<Path>, out_file: &str) -> io::Result<()> {
    let manifest =
        std::env::var_os("CARGO_MANIFEST_DIR").ok_or_else(|| not_build("CARGO_MANIFEST_DIR"))?;
    let out_dir = std::env::var_os("OUT_DIR").ok_or_else(|| not_build("OUT_DIR"))?;
    let dir = PathBuf::from(manifest).join(dir);
    println!("cargo:rerun-if-changed={}", dir.display());
    let files = find_migration_files(&dir, MigrationType::Sql).map_err(io::Error::other)?;
    let mut code = String::from("&[\n");
    for path in files {
        println!("cargo:rerun-if-changed={}", path.display());
        let sql = std::fs::read_to_string(&path)?;
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| io::Error::other(format!("{} has no UTF-8 name", path.display())))?;
        let m = Migration::unapplied(stem, &sql)
            .map_err(|e| io::Error::other(format!("{}: {e}", path.display())))?;
        let _ = writeln!(
            code,
            "    dbinit_core::migration::EmbeddedMigration {{ version: {}, name: {:?}, checksum: {}, versioned: {}, sql: include_str!({:?}) }},",
            m.version(),
            m.name(),
            m.checksum(),
            m.prefix().to_string() == "V",
            path.display().to_string(),
        );
    }
    code.push(']');
    std::fs::write(Path::new(&out_dir).join(out_file), code)
}

fn not_build(var: &str) -> io::Error {
    io::Error::other(format!(
        "{var} is not set: call embed() from a build script"
    ))
}
