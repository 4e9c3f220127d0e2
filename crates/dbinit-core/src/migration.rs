//! Migration sets and the validation that runs before anything is applied.
//!
//! refinery embeds, names, orders and checksums migrations; dbinit keeps its
//! history table format (`refinery_schema_history`) and adds what refinery
//! lacks: validation with a report naming the file, and atomic application
//! (the [engine](crate::engine), over each backend's
//! [`MigrationScripts`](crate::MigrationScripts)).

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::discover;
use crate::CoreError;

/// refinery's history table; dbinit writes rows refinery can read back.
pub const HISTORY_TABLE: &str = "refinery_schema_history";

pub use crate::embed::{embed, embed_all};

/// One migration: version, name, refinery checksum and SQL.
///
/// Built from refinery's parser and checksum, either at run time
/// ([`MigrationSet::from_dir`], [`MigrationSet::from_refinery`]) or at build
/// time ([`embed`](crate::migration::embed) in a build script), so that
/// starting a service does not compile refinery's file-name regex.
#[derive(Clone, PartialEq, Eq)]
pub struct MigrationFile {
    version: i64,
    name: Cow<'static, str>,
    checksum: u64,
    versioned: bool,
    sql: Cow<'static, str>,
    path: Option<Cow<'static, str>>,
    down: Option<Cow<'static, str>>,
}

/// The first line that makes a script run outside a transaction.
pub const NO_TRANSACTION_MARKER: &str = "-- dbinit:no-transaction";

/// Whether `sql` starts with [`NO_TRANSACTION_MARKER`] on its own line.
pub fn is_no_transaction(sql: &str) -> bool {
    sql.lines().next().map(str::trim) == Some(NO_TRANSACTION_MARKER)
}

impl MigrationFile {
    /// A migration from its file stem (`V1__plans`) and SQL, checked and
    /// checksummed as files are; for tests and migrations built in code.
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidMigrationSet`] for a stem that is not a
    /// migration name.
    pub fn new(stem: &str, sql: &str) -> Result<Self, CoreError> {
        let invalid = |reason: String| CoreError::InvalidMigrationSet { reason };
        let name = discover::parse_name(stem).map_err(|why| invalid(format!("{stem} {why}")))?;
        let checksum = refinery_core::Migration::unapplied(stem, sql)
            .map_err(|e| invalid(format!("{stem}: {e}")))?
            .checksum();
        Ok(MigrationFile {
            version: name.version,
            name: Cow::Owned(name.name),
            checksum,
            versioned: name.versioned,
            sql: Cow::Owned(discover::executable_sql(sql).to_owned()),
            path: None,
            down: None,
        })
    }

    /// The migration's version.
    pub fn version(&self) -> i64 {
        self.version
    }
    /// The migration's name (after `V{version}__`).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// refinery's checksum of name, version and SQL.
    pub fn checksum(&self) -> u64 {
        self.checksum
    }
    /// The SQL to run.
    pub fn sql(&self) -> &str {
        &self.sql
    }
    /// `V` (versioned, ordered) or `U` (unversioned) migration.
    pub fn is_versioned(&self) -> bool {
        self.versioned
    }
    /// The file it was read from, when known.
    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }
    /// Whether it runs inside a transaction with its history row (unless
    /// its first line is [`NO_TRANSACTION_MARKER`]).
    pub fn runs_in_transaction(&self) -> bool {
        !is_no_transaction(&self.sql)
    }
    /// Whether it has no statement: nothing, or only white space and
    /// comments (a placeholder). Applied as a no-op and recorded.
    pub fn is_empty(&self) -> bool {
        let mut rest = self.sql.trim_start();
        loop {
            if rest.is_empty() {
                return true;
            } else if let Some(after) = rest.strip_prefix("--") {
                rest = after.split_once('\n').map_or("", |(_, r)| r);
            } else if let Some(after) = rest.strip_prefix("/*") {
                match after.find("*/") {
                    Some(end) => rest = &after[end + 2..],
                    None => return true,
                }
            } else {
                return false;
            }
            rest = rest.trim_start();
        }
    }
    /// The down script (`V{n}__{name}.down.sql`): `None` when there is none
    /// (the migration cannot be rolled back); empty when there is nothing
    /// to undo.
    pub fn down(&self) -> Option<&str> {
        self.down.as_deref()
    }
    /// `V{n}__{name}.sql`.
    pub fn file_name(&self) -> String {
        format!("{self}.sql")
    }
    /// `V{n}__{name}.down.sql`.
    pub fn down_file_name(&self) -> String {
        format!("{self}.down.sql")
    }

    /// The history row for this migration, applied at `applied_on` (see
    /// [`timestamp_now`]) in a transaction that began at `started`.
    pub fn applied(&self, applied_on: String, started: std::time::Instant) -> AppliedMigration {
        AppliedMigration {
            version: self.version,
            name: self.name.to_string(),
            applied_on,
            checksum: self.checksum,
            duration: Some(started.elapsed()),
        }
    }
}

/// Now, formatted as refinery records `applied_on` (RFC 3339, UTC).
pub fn timestamp_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl From<&refinery_core::Migration> for MigrationFile {
    fn from(m: &refinery_core::Migration) -> Self {
        MigrationFile {
            version: i64::from(m.version()),
            name: Cow::Owned(m.name().to_owned()),
            checksum: m.checksum(),
            versioned: m.prefix().to_string() == "V",
            sql: Cow::Owned(discover::executable_sql(m.sql().unwrap_or_default()).to_owned()),
            path: None,
            down: None,
        }
    }
}

impl From<&EmbeddedMigration> for MigrationFile {
    fn from(m: &EmbeddedMigration) -> Self {
        MigrationFile {
            version: m.version,
            name: Cow::Borrowed(m.name),
            checksum: m.checksum,
            versioned: m.versioned,
            sql: Cow::Borrowed(discover::executable_sql(m.sql)),
            path: Some(Cow::Borrowed(m.path)),
            down: m.down.map(|d| Cow::Borrowed(discover::executable_sql(d))),
        }
    }
}

impl fmt::Display for MigrationFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = if self.versioned { "V" } else { "U" };
        write!(f, "{prefix}{}__{}", self.version, self.name)
    }
}

impl fmt::Debug for MigrationFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MigrationFile({self}, checksum {})", self.checksum)
    }
}

/// A migration embedded by a build script; see [`embed`].
#[derive(Debug)]
pub struct EmbeddedMigration {
    /// Version.
    pub version: i64,
    /// Name.
    pub name: &'static str,
    /// refinery's checksum, computed at build time.
    pub checksum: u64,
    /// `V` (true) or `U` (false).
    pub versioned: bool,
    /// The SQL, from `include_str!`.
    pub sql: &'static str,
    /// The file, relative to the embedding crate.
    pub path: &'static str,
    /// Its down script, from `include_str!`, when there is one.
    pub down: Option<&'static str>,
}

/// An ordered set of migrations for one backend.
#[derive(Clone)]
pub struct MigrationSet {
    origin: String,
    migrations: Vec<MigrationFile>,
}

impl fmt::Debug for MigrationSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MigrationSet")
            .field("origin", &self.origin)
            .field("migrations", &self.migrations.len())
            .finish()
    }
}

/// One migration set per backend, by registered name (`sqlite`,
/// `postgres`, ...): what an application that supports several backends
/// ships. The runner picks the set of the backend its URL selects.
#[derive(Debug, Clone, Default)]
pub struct MigrationSets {
    origin: String,
    sets: Vec<(String, MigrationSet)>,
}

impl MigrationSets {
    /// The sets embedded by [`embed_all`].
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidMigrationSet`] when two files of a set share a
    /// version.
    pub fn embedded(
        origin: &str,
        table: &'static [(&'static str, &'static [EmbeddedMigration])],
    ) -> Result<Self, CoreError> {
        let sets = table
            .iter()
            .map(|(backend, migrations)| {
                MigrationSet::embedded(format!("embedded:{origin}/{backend}"), migrations)
                    .map(|set| ((*backend).to_owned(), set))
            })
            .collect::<Result<_, _>>()?;
        Ok(MigrationSets {
            origin: format!("embedded:{origin}"),
            sets,
        })
    }

    /// One set per backend subdirectory of `dir`, read at run time.
    ///
    /// # Errors
    ///
    /// As [`MigrationSet::from_dir`] for each subdirectory.
    pub fn from_dir(dir: &Path) -> Result<Self, CoreError> {
        let invalid = |reason: String| CoreError::InvalidMigrationSet { reason };
        let mut backends: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| invalid(format!("cannot read {}: {e}", dir.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        backends.sort();
        let sets = backends
            .iter()
            .filter_map(|p| Some((p.file_name()?.to_str()?.to_owned(), p)))
            .map(|(name, path)| MigrationSet::from_dir(path).map(|set| (name, set)))
            .collect::<Result<_, _>>()?;
        Ok(MigrationSets {
            origin: dir.display().to_string(),
            sets,
        })
    }

    /// Adds (or replaces) the set of `backend`.
    pub fn with(mut self, backend: &str, set: MigrationSet) -> Self {
        self.sets.retain(|(name, _)| name != backend);
        self.sets.push((backend.to_owned(), set));
        self
    }

    /// The set of `backend`, if there is one.
    pub fn get(&self, backend: &str) -> Option<&MigrationSet> {
        self.sets
            .iter()
            .find(|(name, _)| name == backend)
            .map(|(_, set)| set)
    }

    /// Where the sets came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The backends that have a set.
    pub fn backends(&self) -> impl Iterator<Item = &str> {
        self.sets.iter().map(|(name, _)| name.as_str())
    }
}

/// A row of the history table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppliedMigration {
    /// Migration version.
    pub version: i64,
    /// Migration name (the part after `V{version}__`).
    pub name: String,
    /// When it was applied (RFC 3339), as recorded.
    pub applied_on: String,
    /// refinery's checksum of name, version and SQL.
    pub checksum: u64,
    /// How long applying it took, when applied in this run.
    #[serde(skip_serializing_if = "Option::is_none", with = "opt_millis")]
    pub duration: Option<Duration>,
}

impl AppliedMigration {
    /// `V{version}__{name}`, the stem of the migration file.
    pub fn file_stem(&self) -> String {
        format!("V{}__{}", self.version, self.name)
    }
}

/// A migration batch stopped at a failing migration.
#[derive(Debug)]
pub struct MigrationBatchError {
    /// Migrations committed before the failure.
    pub applied: Vec<AppliedMigration>,
    /// Why the batch stopped.
    pub error: CoreError,
}

impl From<CoreError> for MigrationBatchError {
    fn from(error: CoreError) -> Self {
        MigrationBatchError {
            applied: Vec::new(),
            error,
        }
    }
}

impl MigrationSet {
    /// A set of migrations, sorted by version.
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidMigrationSet`] when two migrations share a version.
    pub fn new(
        origin: impl Into<String>,
        mut migrations: Vec<MigrationFile>,
    ) -> Result<Self, CoreError> {
        migrations.sort_by_key(MigrationFile::version);
        if let Some(pair) = migrations
            .windows(2)
            .find(|w| w[0].version() == w[1].version())
        {
            let shown = |m: &MigrationFile| match m.path() {
                Some(path) => format!("{m} ({path})"),
                None => m.to_string(),
            };
            return Err(CoreError::InvalidMigrationSet {
                reason: format!(
                    "{} and {} share version {}; renumber one of them",
                    shown(&pair[0]),
                    shown(&pair[1]),
                    pair[0].version()
                ),
            });
        }
        Ok(MigrationSet {
            origin: origin.into(),
            migrations,
        })
    }

    /// A set from refinery migrations (for example
    /// `embedded::migrations::runner().get_migrations()`).
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidMigrationSet`] when two migrations share a version.
    pub fn from_refinery(
        origin: impl Into<String>,
        migrations: &[refinery_core::Migration],
    ) -> Result<Self, CoreError> {
        Self::new(origin, migrations.iter().map(MigrationFile::from).collect())
    }

    /// A set from migrations embedded by a build script with [`embed`].
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidMigrationSet`] when two migrations share a version.
    pub fn embedded(
        origin: impl Into<String>,
        migrations: &'static [EmbeddedMigration],
    ) -> Result<Self, CoreError> {
        Self::new(origin, migrations.iter().map(MigrationFile::from).collect())
    }

    /// Loads `V{n}__{name}.sql` files from a directory at run time.
    ///
    /// # Errors
    ///
    /// When the directory cannot be read, a file name does not parse, or
    /// versions repeat.
    pub fn from_dir(dir: &Path) -> Result<Self, CoreError> {
        let files =
            discover::load(dir).map_err(|reason| CoreError::InvalidMigrationSet { reason })?;
        let migrations = files
            .into_iter()
            .map(|f| MigrationFile {
                version: f.name.version,
                checksum: f.checksum,
                name: Cow::Owned(f.name.name),
                versioned: f.name.versioned,
                sql: Cow::Owned(discover::executable_sql(&f.text).to_owned()),
                path: Some(Cow::Owned(f.path.display().to_string())),
                down: f
                    .down
                    .map(|(_, text)| Cow::Owned(discover::executable_sql(&text).to_owned())),
            })
            .collect();
        Self::new(dir.display().to_string(), migrations)
    }

    /// Where the set came from (a directory, or `embedded:...`).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The migrations, by ascending version.
    pub fn migrations(&self) -> &[MigrationFile] {
        &self.migrations
    }

    /// Checks the history against the set and returns the migrations to apply.
    ///
    /// Refuses, before anything is changed, when an applied migration is
    /// missing from the set or differs from it (name or checksum), or when an
    /// unapplied versioned migration sorts below the newest applied one.
    ///
    /// # Errors
    ///
    /// [`CoreError::MissingMigration`], [`CoreError::DivergentMigration`] or
    /// [`CoreError::OutOfOrderMigration`].
    pub fn pending(&self, applied: &[AppliedMigration]) -> Result<Vec<&MigrationFile>, CoreError> {
        let by_version: HashMap<i64, &MigrationFile> =
            self.migrations.iter().map(|m| (m.version, m)).collect();
        for app in applied {
            let Some(file) = by_version.get(&app.version) else {
                return Err(CoreError::MissingMigration {
                    version: app.version,
                    name: app.name.clone(),
                });
            };
            let what = if file.name() != app.name {
                Some(format!("the name is now `{}`", file.name()))
            } else if file.checksum() != app.checksum {
                Some(format!(
                    "its checksum changed from {} to {} (the file was edited)",
                    app.checksum,
                    file.checksum()
                ))
            } else {
                None
            };
            if let Some(what) = what {
                return Err(CoreError::DivergentMigration {
                    version: app.version,
                    applied_name: app.name.clone(),
                    file: format!("{file}.sql"),
                    what,
                });
            }
        }
        let newest = applied.iter().map(|a| a.version).max();
        let applied_versions: std::collections::HashSet<i64> =
            applied.iter().map(|a| a.version).collect();
        let mut pending = Vec::new();
        for m in &self.migrations {
            if applied_versions.contains(&m.version) {
                continue;
            }
            // Unversioned (`U`) migrations may land in any order, as in refinery.
            if let Some(current) = newest.filter(|&n| m.versioned && n >= m.version) {
                return Err(CoreError::OutOfOrderMigration {
                    file: format!("{m}.sql"),
                    current,
                });
            }
            pending.push(m);
        }
        Ok(pending)
    }
}

mod opt_millis {
    use std::time::Duration;

    use serde::Serializer;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64() * 1e3),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use refinery_core::Migration;

    fn set(files: &[(&str, &str)]) -> MigrationSet {
        let ms: Vec<Migration> = files
            .iter()
            .map(|(n, sql)| Migration::unapplied(n, sql).unwrap())
            .collect();
        MigrationSet::from_refinery("test", &ms).unwrap()
    }

    fn applied(m: &MigrationFile) -> AppliedMigration {
        AppliedMigration {
            version: m.version(),
            name: m.name().to_owned(),
            applied_on: "2026-01-01T00:00:00Z".to_owned(),
            checksum: m.checksum(),
            duration: None,
        }
    }

    #[test]
    fn pending_lists_unapplied_in_version_order() {
        let s = set(&[("V2__b", "B"), ("V1__a", "A"), ("V3__c", "C")]);
        let history = vec![applied(&s.migrations()[0])];
        let pending: Vec<String> = s
            .pending(&history)
            .unwrap()
            .iter()
            .map(|m| m.to_string())
            .collect();
        assert_eq!(pending, ["V2__b", "V3__c"]);
        let all: Vec<_> = s.migrations().iter().map(applied).collect();
        assert!(s.pending(&all).unwrap().is_empty());
    }

    #[test]
    fn edited_file_is_divergent_and_named() {
        let before = set(&[("V1__a", "A"), ("V2__b", "B")]);
        let history: Vec<_> = before.migrations().iter().map(applied).collect();
        let after = set(&[("V1__a", "A"), ("V2__b", "B -- edited")]);
        let err = after.pending(&history).unwrap_err();
        assert!(
            matches!(err, CoreError::DivergentMigration { version: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("V2__b.sql"), "{err}");
    }

    #[test]
    fn renamed_file_is_divergent() {
        let before = set(&[("V1__a", "A")]);
        let history: Vec<_> = before.migrations().iter().map(applied).collect();
        let err = set(&[("V1__renamed", "A")]).pending(&history).unwrap_err();
        assert!(
            err.to_string().contains("the name is now `renamed`"),
            "{err}"
        );
    }

    #[test]
    fn deleted_file_is_missing() {
        let before = set(&[("V1__a", "A"), ("V2__b", "B")]);
        let history: Vec<_> = before.migrations().iter().map(applied).collect();
        let err = set(&[("V1__a", "A")]).pending(&history).unwrap_err();
        assert!(
            matches!(err, CoreError::MissingMigration { version: 2, .. }),
            "{err}"
        );
    }

    #[test]
    fn new_file_below_the_newest_applied_is_refused() {
        let before = set(&[("V1__a", "A"), ("V3__c", "C")]);
        let history: Vec<_> = before.migrations().iter().map(applied).collect();
        let err = set(&[("V1__a", "A"), ("V2__b", "B"), ("V3__c", "C")])
            .pending(&history)
            .unwrap_err();
        assert!(
            matches!(err, CoreError::OutOfOrderMigration { current: 3, .. }),
            "{err}"
        );
    }

    #[test]
    fn duplicate_versions_are_rejected() {
        let ms = vec![
            Migration::unapplied("V1__a", "A").unwrap(),
            Migration::unapplied("V1__b", "B").unwrap(),
        ];
        let err = MigrationSet::from_refinery("test", &ms).unwrap_err();
        assert!(err.to_string().contains("share version 1"), "{err}");
    }
}
