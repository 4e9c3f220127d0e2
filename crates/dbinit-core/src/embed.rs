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

/// Reads the migration files under `dir` (relative to the crate's manifest
/// directory) and writes `$OUT_DIR/<out_file>`, a Rust expression of type
/// `&[EmbeddedMigration]`. Tells cargo to rerun when anything under the
/// directory changes. For use in build scripts only.
///
/// The files are found and checked exactly as
/// [`MigrationSet::from_dir`](crate::MigrationSet::from_dir) does at run
/// time: a misnamed, empty or non-UTF-8 file fails the build.
///
/// # Errors
///
/// When the directory cannot be read, a file is refused, or `OUT_DIR` /
/// `CARGO_MANIFEST_DIR` are not set (not in a build script).
pub fn embed(dir: impl AsRef<Path>, out_file: &str) -> io::Result<()> {
    let manifest =
        std::env::var_os("CARGO_MANIFEST_DIR").ok_or_else(|| not_build("CARGO_MANIFEST_DIR"))?;
    let out_dir = std::env::var_os("OUT_DIR").ok_or_else(|| not_build("OUT_DIR"))?;
    let manifest = PathBuf::from(manifest);
    let dir = manifest.join(dir);
    // Cargo scans a directory named here recursively for changes.
    println!("cargo:rerun-if-changed={}", dir.display());
    let files = crate::discover::load(&dir).map_err(io::Error::other)?;
    let mut code = String::from("&[\n");
    for f in files {
        let shown = f.path.strip_prefix(&manifest).unwrap_or(&f.path);
        let down = match &f.down {
            Some((path, _)) => format!("Some(include_str!({:?}))", path.display().to_string()),
            None => "None".to_owned(),
        };
        let _ = writeln!(
            code,
            "    dbinit_core::migration::EmbeddedMigration {{ version: {}, name: {:?}, checksum: {}, versioned: {}, sql: include_str!({:?}), path: {:?}, down: {down} }},",
            f.name.version,
            f.name.name,
            f.checksum,
            f.name.versioned,
            f.path.display().to_string(),
            shown.display().to_string(),
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
