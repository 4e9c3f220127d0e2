//! Finding migration files: the one walk that decides what a migration is,
//! used at run time ([`MigrationSet::from_dir`](crate::MigrationSet::from_dir))
//! and at build time ([`embed`](crate::migration::embed)).
//!
//! refinery's own walk and file-name regex disagree with each other (the
//! regex accepts `|1__x` and then panics; the walk skips symlinked
//! directories and `.SQL` files silently), so dbinit names and finds files
//! itself and asks refinery only for the checksum, which its history format
//! depends on.
//!
//! Rules, documented in `docs/migrations.md`:
//! - a migration is a file whose extension is `sql` in any case, in the
//!   directory or any subdirectory (symlinks to files and directories are
//!   followed; a symlink loop is an error);
//! - entries whose name starts with `.` are ignored (editor and OS files);
//! - every migration must be named `V{version}__{name}.sql` or
//!   `U{version}__{name}.sql`, where the version fits refinery's 32-bit
//!   column and the name is letters, digits and `_`; anything else is an
//!   error, never a file that silently does not run;
//! - `V{version}__{name}.down.sql` is the down script of that migration.

use std::path::{Path, PathBuf};

use crate::walk::{files, Links};

/// The largest version refinery's `INT4` history column can hold.
pub(crate) const MAX_VERSION: i64 = i32::MAX as i64;

/// A migration file name, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MigrationName {
    /// `V` (true) or `U` (false).
    pub(crate) versioned: bool,
    pub(crate) version: i64,
    pub(crate) name: String,
}

/// Parses a file stem such as `V12__add_users`.
///
/// # Errors
///
/// A sentence saying what is wrong with the name.
pub(crate) fn parse_name(stem: &str) -> Result<MigrationName, String> {
    let expected = "is not named V{version}__{name}.sql (or U{version}__{name}.sql; \
                    name: letters, digits and `_`)";
    let mut chars = stem.chars();
    let versioned = match chars.next() {
        Some('V') => true,
        Some('U') => false,
        _ => return Err(expected.to_owned()),
    };
    let rest = chars.as_str();
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    let (version, rest) = rest.split_at(digits);
    let Some(name) = rest.strip_prefix("__") else {
        return Err(expected.to_owned());
    };
    if version.is_empty()
        || name.is_empty()
        || !name.chars().all(|c| c.is_alphanumeric() || c == '_')
    {
        return Err(expected.to_owned());
    }
    if version.bytes().all(|b| b == b'0') {
        return Err(
            "has version 0; versions start at 1 (`rollback --to 0` means \"all\")".to_owned(),
        );
    }
    let version = version
        .parse::<i64>()
        .ok()
        .filter(|v| *v <= MAX_VERSION)
        .ok_or_else(|| {
            format!(
                "has version {version}, which is out of range: versions are stored as 32-bit \
                 integers (at most {MAX_VERSION})"
            )
        })?;
    Ok(MigrationName {
        versioned,
        version,
        name: name.to_owned(),
    })
}

/// A migration file found by [`walk`]: its path and parsed name.
#[derive(Debug)]
pub(crate) struct FoundFile {
    pub(crate) path: PathBuf,
    pub(crate) stem: String,
    pub(crate) name: MigrationName,
    /// `V{n}__{name}.down.sql`: the down script of `stem`.
    pub(crate) down: bool,
}

/// Every migration file under `dir`, sorted by path.
///
/// # Errors
///
/// A sentence naming the path: unreadable directory, non-UTF-8 or misnamed
/// file, symlink loop.
pub(crate) fn walk(dir: &Path) -> Result<Vec<FoundFile>, String> {
    let mut found = Vec::new();
    for path in files(dir, Links::Anywhere)? {
        let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let Some((stem, ext)) = file_name.rsplit_once('.') else {
            continue;
        };
        if !ext.eq_ignore_ascii_case("sql") {
            continue;
        }
        let (stem, down) = match stem.strip_suffix(".down") {
            Some(up) => (up, true),
            None => (stem, false),
        };
        let name = parse_name(stem).map_err(|why| format!("{} {why}", path.display()))?;
        found.push(FoundFile {
            stem: stem.to_owned(),
            path,
            name,
            down,
        });
    }
    Ok(found)
}

/// A migration file with its text, checked and checksummed, and its down
/// script when there is one.
pub(crate) struct LoadedFile {
    pub(crate) path: PathBuf,
    pub(crate) name: MigrationName,
    /// refinery's checksum of the file as written.
    pub(crate) checksum: u64,
    /// The file as written (a byte-order mark included).
    pub(crate) text: String,
    /// `V{n}__{name}.down.sql` beside it: its path and text.
    pub(crate) down: Option<(PathBuf, String)>,
}

/// [`walk`]s `dir` and reads every migration and down script: what both
/// `from_dir` and `embed` build their sets from, so the two can never
/// disagree. Empty and comment-only files are valid (no-op migrations).
pub(crate) fn load(dir: &Path) -> Result<Vec<LoadedFile>, String> {
    let found = walk(dir)?;
    let mut downs: std::collections::HashMap<String, (PathBuf, String)> = Default::default();
    let mut ups = Vec::new();
    for file in found {
        if file.down {
            let text = read(&file.path)?;
            if let Some((other, _)) = downs.insert(file.stem.clone(), (file.path.clone(), text)) {
                return Err(format!(
                    "{} and {} are both down scripts of {}",
                    other.display(),
                    file.path.display(),
                    file.stem
                ));
            }
        } else {
            ups.push(file);
        }
    }
    let mut loaded = Vec::with_capacity(ups.len());
    for found in ups {
        let text = read(&found.path)?;
        loaded.push(LoadedFile {
            checksum: checksum(&found.stem, &text)?,
            down: downs.remove(&found.stem),
            path: found.path,
            name: found.name,
            text,
        });
    }
    if let Some((path, _)) = downs.into_values().next() {
        return Err(format!(
            "{} is a down script without its migration (no {} beside it)",
            path.display(),
            path.display().to_string().replace(".down.sql", ".sql")
        ));
    }
    Ok(loaded)
}

/// Reads a migration file as UTF-8.
fn read(path: &Path) -> Result<String, String> {
    use std::io::Read as _;
    // A no-op start reads every migration (2,000 in the bench), so no
    // size hint: `fs::read` and `File::read_to_end` spend a stat and a
    // seek per file on one, `Take` does not. Most migrations fit the first
    // buffer: open, read, read (end), close.
    let mut bytes = Vec::with_capacity(16 * 1024);
    std::fs::File::open(path)
        .and_then(|file| file.take(u64::MAX).read_to_end(&mut bytes))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    // The set keeps every text: give back what the buffer did not use.
    bytes.shrink_to_fit();
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{} is not UTF-8 (invalid byte at offset {}); save it as UTF-8",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// refinery's checksum of a migration whose name [`parse_name`] accepted.
///
/// refinery's parser can no longer panic here: its regex accepts names
/// (`|1__x`) that ours refuses first.
fn checksum(stem: &str, sql: &str) -> Result<u64, String> {
    refinery_core::Migration::unapplied(stem, sql)
        .map(|m| m.checksum())
        .map_err(|e| format!("refinery refuses {stem}: {e}"))
}

/// The SQL to execute: the text without a leading UTF-8 byte-order mark,
/// which SQLite skips and PostgreSQL reports as a syntax error. The
/// checksum keeps covering the file as written, as refinery computes it.
pub(crate) fn executable_sql(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let ok = parse_name("V12__add_users").unwrap();
        assert_eq!(
            (ok.versioned, ok.version, ok.name.as_str()),
            (true, 12, "add_users")
        );
        assert!(!parse_name("U3__x").unwrap().versioned);
        assert_eq!(parse_name("V007__café").unwrap().version, 7);
        for bad in [
            "|1__pipe",
            "V|1__x",
            "v1__x",
            "V1_x",
            "V__x",
            "V1__",
            "V1__a-b",
            "V1__a.down",
            "V1.5__x",
            "",
            "V",
            "X1__x",
            "V-1__x",
            "V1__a b",
        ] {
            let err = parse_name(bad).unwrap_err();
            assert!(err.contains("is not named"), "{bad}: {err}");
        }
        for zero in ["V0__zero", "V000__zero"] {
            assert!(
                parse_name(zero)
                    .unwrap_err()
                    .contains("versions start at 1"),
                "{zero}"
            );
        }
        let err = parse_name("V99999999999__big").unwrap_err();
        assert!(
            err.contains("out of range") && err.contains("2147483647"),
            "{err}"
        );
        assert_eq!(parse_name("V2147483647__max").unwrap().version, MAX_VERSION);
    }

    #[test]
    fn bom_is_not_executed() {
        assert_eq!(executable_sql("\u{feff}SELECT 1"), "SELECT 1");
        assert_eq!(executable_sql("SELECT 1"), "SELECT 1");
    }
}
