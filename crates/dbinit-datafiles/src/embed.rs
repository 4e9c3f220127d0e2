//! Embedding a seeds directory from a build script.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use dbinit_core::walk::{files, Links};

use crate::files::{relative_name, SeedFiles};

/// Checks the seeds directory `dir` (relative to the crate's manifest
/// directory) exactly as [`SeedFiles::from_dir`] does at run time, and
/// writes `$OUT_DIR/<out_file>`, a Rust expression of type
/// `&[(&str, &[u8])]` for [`SeedFiles::embedded`]. A bad manifest or an
/// unlisted file fails the build. For use in build scripts only.
///
/// ```text
/// // build.rs
/// fn main() { dbinit_datafiles::embed("seeds", "seeds.rs").unwrap() }
/// // src/main.rs
/// static SEEDS: &[dbinit_datafiles::EmbeddedFile] =
///     include!(concat!(env!("OUT_DIR"), "/seeds.rs"));
/// let seeds = dbinit_datafiles::SeedFiles::embedded("myapp", SEEDS)?;
/// ```
///
/// # Errors
///
/// When the directory cannot be read or breaks a rule, or outside a
/// build script.
pub fn embed(dir: impl AsRef<Path>, out_file: &str) -> io::Result<()> {
    let (manifest, out_dir) = dbinit_core::walk::build_dirs()?;
    let dir = manifest.join(dir);
    println!("cargo:rerun-if-changed={}", dir.display());
    SeedFiles::from_dir(&dir)
        .and_then(|files| files.check())
        .map_err(|e| io::Error::other(e.to_string()))?;
    let mut code = String::from("&[\n");
    for path in files(&dir, Links::Inside).map_err(io::Error::other)? {
        let name = relative_name(&dir, &path);
        let _ = writeln!(
            code,
            "    ({name:?}, include_bytes!({:?}) as &[u8]),",
            path.display().to_string()
        );
    }
    code.push(']');
    std::fs::write(out_dir.join(out_file), code)
}
