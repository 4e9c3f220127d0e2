//! [`SeedFiles`]: a seeds directory's layout and manifests, checked, and
//! its data files as seeders.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use dbinit_core::walk::{files, Links};
use dbinit_core::{CoreError, Environment, Seeder};

use crate::datafile::{Content, DataFile, Entry, Format};
use crate::seeder;

/// The manifest's name in every environment directory.
pub const MANIFEST: &str = "seeds.toml";

/// The directory loaded in every environment.
pub const COMMON: &str = "common";

/// An embedded file: its path under the seeds directory and its bytes
/// (what [`embed`] writes).
pub type EmbeddedFile = (&'static str, &'static [u8]);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    #[serde(default, rename = "file")]
    files: Vec<Entry>,
}

/// The data files of a seeds directory. Its layout (directory names, no
/// stray data file at the top) is checked when it is read; each
/// directory's manifest when that directory loads, so a mistake in
/// `development/` never blocks a production deploy ([`SeedFiles::check`]
/// checks them all: the build does).
#[derive(Debug, Clone, Default)]
pub struct SeedFiles {
    origin: String,
    /// Every file, by its path under the seeds directory.
    tree: BTreeMap<String, Content>,
    /// How a file's path is shown: `<dir>/` or `embedded:<name>/` first.
    prefix: String,
}

impl SeedFiles {
    /// Reads the layout of `dir` (the files are read when they load).
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidConfig`] (`seeds`) naming the path and the rule
    /// it breaks.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, CoreError> {
        let dir = dir.as_ref();
        let mut tree = BTreeMap::new();
        for path in files(dir, Links::Inside).map_err(invalid)? {
            tree.insert(relative_name(dir, &path), Content::Path(path));
        }
        Self::new(
            dir.display().to_string(),
            tree,
            format!("{}/", dir.display()),
        )
    }

    /// The files [`embed`] wrote at build time.
    ///
    /// # Errors
    ///
    /// As [`SeedFiles::from_dir`].
    pub fn embedded(origin: &str, files: &'static [EmbeddedFile]) -> Result<Self, CoreError> {
        let tree = files
            .iter()
            .map(|(name, bytes)| ((*name).to_owned(), Content::Static(bytes)))
            .collect();
        Self::new(
            format!("embedded:{origin}"),
            tree,
            format!("embedded:{origin}/"),
        )
    }

    fn new(
        origin: String,
        tree: BTreeMap<String, Content>,
        prefix: String,
    ) -> Result<Self, CoreError> {
        let files = SeedFiles {
            origin,
            tree,
            prefix,
        };
        for name in files.tree.keys() {
            let Some((dir, _)) = name.split_once('/') else {
                if Format::of(name).is_some() {
                    return Err(invalid(format!(
                        "{} is not in an environment directory: move it under {COMMON}/, \
                         development/, test/ or production/",
                        files.show(name)
                    )));
                }
                continue;
            };
            let known =
                dir == COMMON || dir.parse::<Environment>().is_ok_and(|e| e.as_str() == dir);
            if !known {
                return Err(invalid(format!(
                    "{} is not an environment directory (expected {COMMON}, development, \
                     test or production)",
                    files.show(dir)
                )));
            }
        }
        Ok(files)
    }

    fn show(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Checks every directory's manifest against its files, whatever the
    /// environment.
    ///
    /// # Errors
    ///
    /// The first rule broken, as [`SeedFiles::seeders`] would report it.
    pub fn check(&self) -> Result<(), CoreError> {
        for dir in self.all_directories() {
            self.files_in(&dir)?;
        }
        Ok(())
    }

    fn all_directories(&self) -> Vec<String> {
        let mut dirs: Vec<String> = (self.tree.keys())
            .filter_map(|n| n.split_once('/').map(|(d, _)| d.to_owned()))
            .collect();
        dirs.dedup();
        dirs
    }

    /// The listed files of `dir`, in manifest order, checked: every data
    /// file listed once, every listed file present.
    fn files_in(&self, dir: &str) -> Result<Vec<DataFile>, CoreError> {
        let inside = format!("{dir}/");
        let mut unlisted: Vec<&String> = (self.tree.keys())
            .filter(|n| n.starts_with(&inside) && Format::of(n).is_some())
            .collect();
        let manifest_name = format!("{dir}/{MANIFEST}");
        let Some(manifest) = self.tree.get(&manifest_name) else {
            return match unlisted.first() {
                Some(first) => Err(invalid(format!(
                    "{} is missing: every data file of {dir}/ ({} among them) must be \
                     listed there",
                    self.show(&manifest_name),
                    self.show(first)
                ))),
                None => Ok(Vec::new()),
            };
        };
        let shown = self.show(&manifest_name);
        let text = manifest
            .read_all()
            .map_err(|e| invalid(format!("cannot read {shown}: {e}")))?;
        let text = std::str::from_utf8(&text)
            .map_err(|_| invalid(format!("{shown} is not UTF-8")))?
            .trim_start_matches('\u{feff}');
        let manifest: Manifest = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map_or(1, |s| text[..s.start].matches('\n').count() + 1);
            invalid(format!(
                "{shown} line {line}: {}",
                dbinit_core::bounded(e.message(), 200)
            ))
        })?;
        let mut files: Vec<DataFile> = Vec::new();
        for entry in manifest.files {
            let file = self
                .check_entry(dir, entry)
                .map_err(|e| invalid(format!("{shown}: {e}")))?;
            if files.iter().any(|f| f.name == file.name) {
                return Err(invalid(format!(
                    "{shown}: {} is listed twice",
                    file.entry.path
                )));
            }
            unlisted.retain(|n| **n != file.name);
            files.push(file);
        }
        if let Some(name) = unlisted.first() {
            return Err(invalid(format!(
                "{} is not listed in {shown}: list it (with its table and key), or move it away",
                self.show(name)
            )));
        }
        Ok(files)
    }

    /// Where the files came from: a directory, or `embedded:<name>`.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The directories that load in `environment`: `common` and the
    /// environment's own, those that exist.
    pub fn directories(&self, environment: Environment) -> Vec<String> {
        let present = self.all_directories();
        [COMMON, environment.as_str()]
            .into_iter()
            .filter(|d| present.iter().any(|p| p == d))
            .map(str::to_owned)
            .collect()
    }

    /// One seeder per file that loads in `environment`, in load order
    /// (`common` first). Checks those directories' manifests, and reads
    /// every such file once, for its checksum.
    ///
    /// # Errors
    ///
    /// A manifest that breaks a rule ([`CoreError::InvalidConfig`]), or a
    /// file that cannot be read.
    pub fn seeders(&self, environment: Environment) -> Result<Vec<Box<dyn Seeder>>, CoreError> {
        let mut out: Vec<Box<dyn Seeder>> = Vec::new();
        let tables = std::sync::Arc::new(seeder::Tables::default());
        for dir in self.directories(environment) {
            for file in self.files_in(&dir)? {
                out.push(Box::new(seeder::FileSeeder::new(file, tables.clone())?));
            }
        }
        Ok(out)
    }
}

impl SeedFiles {
    /// Checks one manifest entry against the files present.
    fn check_entry(&self, dir: &str, entry: Entry) -> Result<DataFile, String> {
        let path = &entry.path;
        if path.is_empty()
            || path.starts_with('/')
            || path
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == ".." || c.starts_with('.'))
            || path.contains('\\')
        {
            return Err(format!(
                "`{path}` is not a plain path inside {dir}/ (no `..`, no leading `/` or `.`)"
            ));
        }
        let Some(format) = Format::of(path) else {
            return Err(format!("{path}: data files end in .csv, .json or .jsonl"));
        };
        if entry.table.trim().is_empty() {
            return Err(format!("{path}: `table` is empty"));
        }
        if entry.table.starts_with("dbinit_") || entry.table == "refinery_schema_history" {
            return Err(format!(
                "{path}: `{}` is dbinit's own table; data files load the application's",
                entry.table
            ));
        }
        if entry.key.is_empty() {
            return Err(format!(
                "{path}: `key` is empty; name the columns that identify a row"
            ));
        }
        for (i, k) in entry.key.iter().enumerate() {
            if k.is_empty() || entry.key[..i].contains(k) {
                return Err(format!("{path}: key column `{k}` is empty or repeated"));
            }
        }
        let name = format!("{dir}/{path}");
        let Some(content) = self.tree.get(&name) else {
            return Err(format!("{} does not exist", self.show(&name)));
        };
        Ok(DataFile {
            shown: self.show(&name),
            content: content.clone(),
            name,
            entry,
            format,
        })
    }
}

/// `path` under `dir`, with `/` between components: a file's name in the
/// tree, the same on every platform and when embedded.
pub(crate) fn relative_name(dir: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(dir).unwrap_or(path);
    relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

fn invalid(reason: impl Into<String>) -> CoreError {
    CoreError::InvalidConfig {
        setting: "seeds".to_owned(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &'static [EmbeddedFile]) -> Result<SeedFiles, String> {
        let files = SeedFiles::embedded("t", list).map_err(|e| e.to_string())?;
        files.check().map_err(|e| e.to_string())?;
        Ok(files)
    }

    const MANIFEST_TEXT: &str =
        "[[file]]\npath = \"a.csv\"\ntable = \"t\"\nkey = [\"k\"]\n[[file]]\npath = \"sub/b.jsonl\"\ntable = \"u\"\nkey = [\"k\"]\n";
    const MANIFEST_OK: &[u8] = MANIFEST_TEXT.as_bytes();

    #[test]
    fn loads_common_then_the_environment() {
        let f = files(&[
            ("common/seeds.toml", MANIFEST_OK),
            ("common/a.csv", b"k\n1\n"),
            ("common/sub/b.jsonl", b"{\"k\":1}\n"),
            ("production/seeds.toml", b""),
            ("README.md", b"notes"),
            ("development/notes.txt", b"ignored"),
        ])
        .unwrap();
        assert_eq!(
            f.directories(Environment::Production),
            ["common", "production"]
        );
        assert_eq!(f.directories(Environment::Test), ["common"]);
        let names: Vec<String> = f
            .seeders(Environment::Test)
            .unwrap()
            .iter()
            .map(|s| s.name().to_owned())
            .collect();
        assert_eq!(names, ["common/a.csv", "common/sub/b.jsonl"]);
    }

    #[test]
    fn a_broken_directory_blocks_only_its_environment() {
        let list: &'static [EmbeddedFile] = &[
            ("development/seeds.toml", b"[[file]]\npath = 3\n"),
            ("production/seeds.toml", MANIFEST_OK),
            ("production/a.csv", b"k\n1\n"),
            ("production/sub/b.jsonl", b"{\"k\":1}\n"),
        ];
        let files = SeedFiles::embedded("t", list).unwrap();
        assert_eq!(files.seeders(Environment::Production).unwrap().len(), 2);
        let err = files
            .seeders(Environment::Development)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("embedded:t/development/seeds.toml line 2: invalid type"),
            "{err}"
        );
        assert!(files.check().is_err());
    }

    #[test]
    fn refuses_what_would_silently_not_load() {
        let cases: [(&[(&'static str, &'static str)], &str); 11] = [
            (
                &[("staging/seeds.toml", "")][..],
                "embedded:t/staging is not an environment directory",
            ),
            (&[("prod/a.csv", "k\n")][..], "is not an environment"),
            (&[("a.csv", "k\n")][..], "is not in an environment directory"),
            (
                &[("common/a.csv", "k\n")][..],
                "embedded:t/common/seeds.toml is missing",
            ),
            (
                &[("common/seeds.toml", ""), ("common/a.csv", "k\n")][..],
                "embedded:t/common/a.csv is not listed",
            ),
            (
                &[("common/seeds.toml", MANIFEST_TEXT), ("common/a.csv", "k\n")][..],
                "common/sub/b.jsonl does not exist",
            ),
            (
                &[("common/seeds.toml", "[[file]]\npath = \"../x.csv\"\ntable = \"t\"\nkey = [\"k\"]\n")][..],
                "is not a plain path",
            ),
            (
                &[("common/seeds.toml", "[[file]]\npath = \"a.csv\"\ntable = \"t\"\nkey = []\n"), ("common/a.csv", "k\n")][..],
                "`key` is empty",
            ),
            (
                &[("common/seeds.toml", "[[file]]\npath = \"a.csv\"\ntable = \"t\"\nkeys = [\"k\"]\n")][..],
                "unknown field `keys`",
            ),
            (
                &[("common/seeds.toml", "[[file]]\npath = \"a.txt\"\ntable = \"t\"\nkey = [\"k\"]\n")][..],
                "end in .csv, .json or .jsonl",
            ),
            (
                &[("common/seeds.toml", "[[file]]\npath = \"a.csv\"\ntable = \"t\"\nkey = [\"k\"]\n[[file]]\npath = \"a.csv\"\ntable = \"t\"\nkey = [\"k\"]\n"), ("common/a.csv", "k\n")][..],
                "listed twice",
            ),
        ];
        for (list, says) in cases {
            // Leak the small test tables: `embedded` takes 'static data.
            let list: Vec<EmbeddedFile> = list.iter().map(|(n, t)| (*n, t.as_bytes())).collect();
            let list: &'static [EmbeddedFile] = Box::leak(list.into_boxed_slice());
            let err = files(list).unwrap_err();
            assert!(err.contains(says), "{err} should say {says}");
        }
    }
}
