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
    let (manifest, out_dir) = crate::walk::build_dirs()?;
    let dir = manifest.join(dir);
    // Cargo scans a directory named here recursively for changes.
    println!("cargo:rerun-if-changed={}", dir.display());
    std::fs::write(Path::new(&out_dir).join(out_file), table(&manifest, &dir)?)
}

/// Embeds one migration set per backend: every subdirectory of `dir` named
/// after a backend (`migrations/sqlite/`, `migrations/postgres/`), with the
/// same checks as [`embed`]. Writes `$OUT_DIR/<out_file>`, a Rust
/// expression of type `&[(&str, &[EmbeddedMigration])]` that
/// [`MigrationSets::embedded`](crate::migration::MigrationSets::embedded)
/// takes:
///
/// ```text
/// // build.rs
/// fn main() { dbinit_core::migration::embed_all("migrations", "migrations.rs").unwrap() }
/// // src/main.rs
/// static MIGRATIONS: &[(&str, &[dbinit_core::migration::EmbeddedMigration])] =
///     include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
/// let sets = dbinit_core::migration::MigrationSets::embedded("myapp", MIGRATIONS)?;
/// ```
///
/// # Errors
///
/// As [`embed`]; also a directory without any backend subdirectory.
pub fn embed_all(dir: impl AsRef<Path>, out_file: &str) -> io::Result<()> {
    let (manifest, out_dir) = crate::walk::build_dirs()?;
    let dir = manifest.join(dir);
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut backends: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    backends.sort();
    if backends.is_empty() {
        return Err(io::Error::other(format!(
            "{} has no backend subdirectory (one per backend, named as the backend is: migrations/<backend>/)",
            dir.display()
        )));
    }
    let mut code = String::from("&[\n");
    for backend in backends {
        let name = backend
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| io::Error::other(format!("{} is not UTF-8", backend.display())))?;
        let _ = writeln!(code, "({name:?}, {}),", table(&manifest, &backend)?);
    }
    code.push(']');
    std::fs::write(Path::new(&out_dir).join(out_file), code)
}

/// The `&[EmbeddedMigration]` expression for the files under `dir`.
fn table(manifest: &Path, dir: &Path) -> io::Result<String> {
    let files = crate::discover::load(dir).map_err(io::Error::other)?;
    let mut code = String::from("&[\n");
    for f in files {
        let shown = f.path.strip_prefix(manifest).unwrap_or(&f.path);
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
    Ok(code)
}
