//! Walking a directory of inputs (migrations, data files) safely: every
//! regular file, sorted, with symbolic links checked against where they may
//! lead; and the directories a build script embeds from.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

/// Where a symbolic link under a walked directory may lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Anywhere but the kernel's pseudo-files (`/proc`, `/sys`, `/dev`):
    /// migrations may link a shared directory.
    Anywhere,
    /// Only inside the walked directory: data files and their manifests.
    Inside,
}

/// Every regular file under `dir` and its subdirectories, sorted: names
/// starting with `.` are skipped, symlinks count as what they point to,
/// where `links` allows them to point.
///
/// # Errors
///
/// A sentence naming the path: unreadable or missing directory, a name
/// that is not UTF-8, a dangling link or one that leads where it may not,
/// something that is not a regular file, a symlink loop.
pub fn files(dir: &Path, links: Links) -> Result<Vec<PathBuf>, String> {
    let meta = std::fs::metadata(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let root =
        std::fs::canonicalize(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut found = Vec::new();
    let mut walk = Walk {
        root: &root,
        links,
        seen: HashSet::new(),
        out: &mut found,
    };
    walk.visit(dir)?;
    found.sort();
    Ok(found)
}

struct Walk<'a> {
    root: &'a Path,
    links: Links,
    seen: HashSet<PathBuf>,
    out: &'a mut Vec<PathBuf>,
}

impl Walk<'_> {
    fn visit(&mut self, dir: &Path) -> Result<(), String> {
        let real = std::fs::canonicalize(dir)
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        if !self.seen.insert(real) {
            return Err(format!(
                "{} is reached twice (a symlink loop or two links to one directory)",
                dir.display()
            ));
        }
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
            let path = entry.path();
            let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
                return Err(format!(
                    "{} has a name that is not UTF-8; rename it",
                    path.display()
                ));
            };
            if file_name.starts_with('.') {
                continue;
            }
            // The directory listing gives the type without a stat; only a
            // link is followed (metadata()), so a linked file or directory
            // counts as what it points to, and a dangling one is an error.
            let cannot = |e: io::Error| format!("cannot read {}: {e}", path.display());
            let mut kind = entry.file_type().map_err(cannot)?;
            if kind.is_symlink() {
                self.check_link(&path)?;
                kind = std::fs::metadata(&path).map_err(cannot)?.file_type();
            }
            if kind.is_dir() {
                self.visit(&path)?;
            } else if kind.is_file() {
                self.out.push(path);
            } else {
                return Err(format!("{} is not a regular file", path.display()));
            }
        }
        Ok(())
    }

    /// Refuses a link that leads where [`Links`] says it may not.
    fn check_link(&self, path: &Path) -> Result<(), String> {
        let target = std::fs::canonicalize(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let pseudo = ["/proc", "/sys", "/dev"]
            .iter()
            .any(|p| target.starts_with(p));
        if pseudo {
            return Err(format!(
                "{} is a link to {}, which no one wrote as a file; it is not read",
                path.display(),
                target.display()
            ));
        }
        if self.links == Links::Inside && !target.starts_with(self.root) {
            return Err(format!(
                "{} is a link to {}, outside {}; copy the file in (nothing outside is read)",
                path.display(),
                target.display(),
                self.root.display()
            ));
        }
        Ok(())
    }
}

/// The manifest and output directories of the running build script.
pub fn build_dirs() -> io::Result<(PathBuf, PathBuf)> {
    let manifest =
        std::env::var_os("CARGO_MANIFEST_DIR").ok_or_else(|| not_build("CARGO_MANIFEST_DIR"))?;
    let out_dir = std::env::var_os("OUT_DIR").ok_or_else(|| not_build("OUT_DIR"))?;
    Ok((PathBuf::from(manifest), PathBuf::from(out_dir)))
}

fn not_build(var: &str) -> io::Error {
    io::Error::other(format!(
        "{var} is not set: call embed() from a build script"
    ))
}
