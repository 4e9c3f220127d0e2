//! The migration engine's contract, run against every registered backend:
//! SQLite, PostgreSQL, and `litealias`, a third backend defined only here
//! (SQLite under another scheme, implementing only the required `Session`
//! primitives, so the provided defaults are what runs, and speaking a
//! dialect of its own: `?N` parameters and backquoted names, so nothing
//! dbinit writes may assume `$N` or `"name"`). A backend that is registered
//! but missing here fails the suite.

use std::any::Any;
use std::collections::BTreeMap;
use std::time::Duration;

use dbinit_runner::dbinit_core::dialect::{self, Dialect, OnConflict};
use dbinit_runner::dbinit_core::engine::{self, RollbackTarget};
use dbinit_runner::dbinit_core::{
    async_trait, registry, BulkLoad, Column, ConnectOptions, Connector, CoreError, DatabaseCreated,
    DatabaseUrl, ErrorKind, Index, InitLock, Introspect, Locking, MigrationScripts, MigrationSet,
    Query, Row, Session, Value,
};
use dbinit_tests::{mysql_url, pg_url, unique_database};

// ---------------------------------------------------------------------------
// A third backend, as a crate outside the workspace would write it.

struct LiteAlias;

fn inner_url(url: &DatabaseUrl) -> Result<DatabaseUrl, CoreError> {
    let raw = url.expose_secret();
    let path = raw.strip_prefix("litealias://").unwrap_or(raw);
    DatabaseUrl::parse(&format!("sqlite://{path}"))
}

#[async_trait]
impl Connector for LiteAlias {
    fn name(&self) -> &'static str {
        "litealias"
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["litealias"]
    }

    async fn ensure_database(
        &self,
        url: &DatabaseUrl,
        options: &ConnectOptions,
    ) -> Result<DatabaseCreated, CoreError> {
        dbinit_sqlite::SqliteConnector
            .ensure_database(&inner_url(url)?, options)
            .await
    }

    async fn connect(
        &self,
        url: &DatabaseUrl,
        options: &ConnectOptions,
    ) -> Result<Box<dyn Session>, CoreError> {
        let inner = dbinit_sqlite::SqliteConnector
            .connect(&inner_url(url)?, options)
            .await?;
        Ok(Box::new(AliasSession(inner)))
    }
}

/// Only the required primitives: every provided method is the default.
struct AliasSession(Box<dyn Session>);

/// SQLite also takes `?N` parameters and MySQL's backquotes.
struct AliasDialect;

impl Dialect for AliasDialect {
    fn placeholder(&self, n: usize) -> String {
        format!("?{n}")
    }
    fn quote_ident(&self, name: &str) -> String {
        format!("`{}`", name.replace('`', "``"))
    }
    fn on_conflict(&self, c: &OnConflict<'_>) -> String {
        let key = dialect::idents(self, c.key);
        let mut set: Vec<String> = (c.update.iter())
            .map(|col| format!("{0} = excluded.{0}", self.quote_ident(col)))
            .collect();
        if let Some(col) = c.increment {
            let table = self.quote_ident(c.table);
            set.push(format!("{0} = {table}.{0} + 1", self.quote_ident(col)));
        }
        if set.is_empty() {
            return format!("ON CONFLICT ({key}) DO NOTHING");
        }
        let table = self.quote_ident(c.table);
        let differs: Vec<String> = (c.update.iter())
            .filter(|_| c.only_if_changed)
            .map(|col| format!("{table}.{0} IS NOT excluded.{0}", self.quote_ident(col)))
            .collect();
        let only = if differs.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", differs.join(" OR "))
        };
        format!("ON CONFLICT ({key}) DO UPDATE SET {}{only}", set.join(", "))
    }
}

// Each capability implements only what it requires: every provided
// method is the default.

#[async_trait]
impl Query for AliasSession {
    fn backend(&self) -> &'static str {
        "litealias"
    }
    fn dialect(&self) -> &dyn Dialect {
        &AliasDialect
    }
    async fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, CoreError> {
        self.0.execute(sql, params).await
    }
    async fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, CoreError> {
        self.0.query(sql, params).await
    }
    async fn execute_batch(&mut self, sql: &str) -> Result<(), CoreError> {
        self.0.execute_batch(sql).await
    }
}

#[async_trait]
impl Locking for AliasSession {
    async fn acquire_init_lock(&mut self, wait: Duration) -> Result<InitLock, CoreError> {
        self.0.acquire_init_lock(wait).await
    }
    async fn release_init_lock(&mut self, lock: InitLock) -> Result<(), CoreError> {
        self.0.release_init_lock(lock).await
    }
}

#[async_trait]
impl Introspect for AliasSession {
    async fn table_exists(&mut self, table: &str) -> Result<bool, CoreError> {
        self.0.table_exists(table).await
    }
    async fn tables(&mut self) -> Result<Vec<String>, CoreError> {
        self.0.tables().await
    }
    async fn columns(&mut self, table: &str) -> Result<Vec<Column>, CoreError> {
        self.0.columns(table).await
    }
    async fn indexes(&mut self, table: &str) -> Result<Vec<Index>, CoreError> {
        self.0.indexes(table).await
    }
}

#[async_trait]
impl BulkLoad for AliasSession {}

#[async_trait]
impl MigrationScripts for AliasSession {}

impl Session for AliasSession {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

dbinit_runner::dbinit_core::register! {
    ConnectorRegistration => LiteAlias,
}

// ---------------------------------------------------------------------------
// The targets: a fresh database of every registered backend.

/// A URL for a new database of `backend`; every registered backend must
/// have one here.
fn fresh(backend: &str, dir: &std::path::Path) -> String {
    let file = dir.join(format!("{}.db", unique_database("conf")));
    match backend {
        "sqlite" => format!("sqlite://{}", file.display()),
        "litealias" => format!("litealias://{}", file.display()),
        "postgres" => pg_url(&unique_database("conf")),
        "mysql" => mysql_url(&unique_database("conf")),
        other => panic!("backend `{other}` is registered but has no conformance target here"),
    }
}

async fn open(url: &str) -> Box<dyn Session> {
    let url = DatabaseUrl::parse(url).unwrap();
    let connector = url.connector().unwrap().make();
    connector
        .open(&url, &ConnectOptions::default())
        .await
        .unwrap()
        .0
}

fn set(files: &[(&str, &str, Option<&str>)]) -> (tempfile::TempDir, MigrationSet) {
    let dir = tempfile::tempdir().unwrap();
    for (stem, up, down) in files {
        std::fs::write(dir.path().join(format!("{stem}.sql")), up).unwrap();
        if let Some(down) = down {
            std::fs::write(dir.path().join(format!("{stem}.down.sql")), down).unwrap();
        }
    }
    let set = MigrationSet::from_dir(dir.path()).unwrap();
    (dir, set)
}

/// The base set: portable SQL, an empty and a comment-only migration, a
/// no-transaction index, rows with non-ASCII text.
fn base(backend: &str) -> Vec<(&'static str, &'static str, Option<&'static str>)> {
    // MySQL names the table an index is dropped from.
    let drop_index = if backend == "mysql" {
        "-- dbinit:no-transaction\nDROP INDEX people_name ON people;"
    } else {
        "-- dbinit:no-transaction\nDROP INDEX people_name;"
    };
    vec![
        (
            "V1__people",
            "CREATE TABLE people (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL);",
            Some("DROP TABLE people;"),
        ),
        ("V2__placeholder", "", Some("")),
        ("V3__comments", "-- kept for another dialect\n", Some("")),
        (
            "V4__index",
            "-- dbinit:no-transaction\nCREATE INDEX people_name ON people (name);",
            Some(drop_index),
        ),
        (
            "V5__pets",
            "CREATE TABLE pets (id INTEGER PRIMARY KEY, owner INTEGER REFERENCES people (id));\n\
             INSERT INTO people (id, name) VALUES (1, 'Zoë 東京')",
            Some("DROP TABLE pets;\nDELETE FROM people;"),
        ),
    ]
}

async fn schema(s: &mut dyn Session) -> BTreeMap<String, (Vec<Column>, Vec<Index>)> {
    let mut out = BTreeMap::new();
    for t in s.tables().await.unwrap() {
        let columns = s.columns(&t).await.unwrap();
        let indexes = s.indexes(&t).await.unwrap();
        out.insert(t, (columns, indexes));
    }
    out
}

async fn history_len(s: &mut dyn Session) -> usize {
    engine::history(s).await.unwrap().len()
}

async fn apply(s: &mut dyn Session, set: &MigrationSet) -> Result<usize, CoreError> {
    let plan = engine::plan(s, set).await?;
    let expected: Vec<i64> = (plan.applied.iter().map(|a| a.version))
        .chain(plan.pending.iter().map(|m| m.version()))
        .collect();
    let done = engine::apply(s, &plan.pending).await.map_err(|b| b.error)?;
    engine::verify(s, set, &expected).await?;
    Ok(done.len())
}

async fn contract(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (_files, set_a) = set(&base(backend));

    // Apply, then nothing to do.
    let url = fresh(backend, dir.path());
    let mut s = open(&url).await;
    assert_eq!(s.backend(), backend);
    assert_eq!(apply(&mut *s, &set_a).await.unwrap(), 5, "{backend}");
    assert_eq!(history_len(&mut *s).await, 5);
    assert!(engine::plan(&mut *s, &set_a)
        .await
        .unwrap()
        .pending
        .is_empty());
    let first = schema(&mut *s).await;
    assert!(
        first.contains_key("pets") && first.contains_key("people"),
        "{first:?}"
    );

    // Rollback: two steps (a transactional and a no-transaction down), then all.
    let range = engine::rollback_plan(&mut *s, &set_a, RollbackTarget::Steps(2))
        .await
        .unwrap();
    assert_eq!(engine::rollback(&mut *s, &range).await.unwrap().len(), 2);
    assert_eq!(history_len(&mut *s).await, 3);
    assert!(!schema(&mut *s).await.contains_key("pets"));
    let range = engine::rollback_plan(&mut *s, &set_a, RollbackTarget::To(0))
        .await
        .unwrap();
    engine::rollback(&mut *s, &range).await.unwrap();
    assert_eq!(history_len(&mut *s).await, 0);
    assert!(schema(&mut *s).await.is_empty(), "{backend}");
    // ... and up again: the same schema as the first time.
    assert_eq!(apply(&mut *s, &set_a).await.unwrap(), 5);
    assert_eq!(schema(&mut *s).await, first, "{backend}: round trip");

    // A failing migration leaves no trace; earlier ones stay.
    let mut broken = base(backend);
    broken.push((
        "V6__broken",
        "CREATE TABLE half (x INTEGER);\nINSERT INTO nowhere VALUES (1);",
        Some("DROP TABLE half;"),
    ));
    let (_files, set_b) = set(&broken);
    let err = apply(&mut *s, &set_b).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MigrationFailed, "{err}");
    assert!(err.to_string().contains("V6__broken.sql"), "{err}");
    assert_eq!(history_len(&mut *s).await, 5);
    // A backend whose DDL commits (MySQL) cannot undo `half`: it journals
    // what committed, and the next run resumes after it.
    let journals = !s.interrupted().await.unwrap().is_empty();
    assert_eq!(schema(&mut *s).await.contains_key("half"), journals);
    assert_eq!(journals, backend == "mysql", "{backend}");

    // The same outside a transaction: it says it failed part way (or
    // where it resumes), and the rerun of a fix converges: a re-runnable
    // file, or (journaled) one whose committed statement is unchanged.
    broken[5].1 =
        "-- dbinit:no-transaction\nCREATE TABLE half (x INTEGER);\nINSERT INTO nowhere VALUES (1);";
    let (_files, set_c) = set(&broken);
    let err = apply(&mut *s, &set_c).await.unwrap_err();
    let says = if journals {
        "resumes at statement 2"
    } else {
        "failed part way"
    };
    assert!(err.to_string().contains(says), "{err}");
    assert_eq!(history_len(&mut *s).await, 5);
    broken[5].1 = if journals {
        "-- dbinit:no-transaction\nCREATE TABLE half (x INTEGER);\nINSERT INTO half VALUES (1);"
    } else {
        "-- dbinit:no-transaction\nCREATE TABLE IF NOT EXISTS half (x INTEGER);"
    };
    let (_files, set_d) = set(&broken);
    assert_eq!(apply(&mut *s, &set_d).await.unwrap(), 1);

    // A missing down script anywhere in the range refuses the rollback.
    let mut no_down = broken.clone();
    no_down.push(("V7__no_down", "CREATE TABLE kept (x INTEGER);", None));
    let (_files, set_e) = set(&no_down);
    apply(&mut *s, &set_e).await.unwrap();
    let err = engine::rollback_plan(&mut *s, &set_e, RollbackTarget::Steps(2))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("V7__no_down.down.sql"), "{err}");
    assert_eq!(history_len(&mut *s).await, 7);

    // Repair: an edited file is refused until accepted, with an audit record.
    let mut edited = no_down.clone();
    edited[0].1 =
        "CREATE TABLE people (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL); -- reformatted";
    let (_files, set_f) = set(&edited);
    let err = engine::plan(&mut *s, &set_f).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MigrationValidation, "{err}");
    let repaired = engine::repair(&mut *s, &set_f, 1).await.unwrap();
    assert_ne!(repaired.old_checksum, repaired.new_checksum);
    assert!(engine::plan(&mut *s, &set_f)
        .await
        .unwrap()
        .pending
        .is_empty());
    let audit = s
        .query(
            "SELECT action, old_checksum, new_checksum FROM dbinit_migration_audit \
             WHERE version = 1 AND action = 'repair'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        audit[0].values()[2],
        Value::Text(repaired.new_checksum.to_string())
    );
    assert!(
        engine::repair(&mut *s, &set_f, 1).await.is_err(),
        "nothing left to repair"
    );
    assert!(
        engine::repair(&mut *s, &set_f, 99).await.is_err(),
        "not applied"
    );
    let (_files, missing_v1) = set(&edited[1..]);
    let err = engine::repair(&mut *s, &missing_v1, 1).await.unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");

    // A migration that rewrites the history fails its own run.
    let mut tampering = edited.clone();
    tampering.push((
        "V8__tamper",
        "DELETE FROM refinery_schema_history WHERE version = 1;",
        Some(""),
    ));
    let (_files, set_g) = set(&tampering);
    let err = apply(&mut *s, &set_g).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MigrationFailed, "{backend}: {err}");

    // The lock: a second session waits, then times out; free once released.
    let mut other = open(&url).await;
    let held = s.acquire_init_lock(Duration::from_secs(5)).await.unwrap();
    let err = other
        .acquire_init_lock(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LockTimeout, "{err}");
    s.release_init_lock(held).await.unwrap();
    let held = other
        .acquire_init_lock(Duration::from_secs(5))
        .await
        .unwrap();
    other.release_init_lock(held).await.unwrap();

    // Baseline adopts a database made before dbinit, once.
    let url = fresh(backend, dir.path());
    let mut s = open(&url).await;
    s.execute_batch("CREATE TABLE people (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL);")
        .await
        .unwrap();
    let err = engine::plan(&mut *s, &set_a).await.unwrap_err();
    assert!(matches!(err, CoreError::ForeignDatabase { .. }), "{err}");
    assert_eq!(engine::baseline(&mut *s, &set_a, 1).await.unwrap().len(), 1);
    assert_eq!(apply(&mut *s, &set_a).await.unwrap(), 4);
    assert!(
        engine::baseline(&mut *s, &set_a, 1).await.is_err(),
        "history exists"
    );
    let url = fresh(backend, dir.path());
    let mut s = open(&url).await;
    assert!(
        engine::baseline(&mut *s, &set_a, 42).await.is_err(),
        "not in the set"
    );
    assert_eq!(history_len(&mut *s).await, 0);
}

#[test]
fn every_registered_backend_is_a_conformance_target() {
    dbinit_tests::link();
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = registry::connectors()
        .unwrap()
        .iter()
        .map(|r| r.name())
        .collect();
    assert_eq!(names, ["litealias", "mysql", "postgres", "sqlite"]);
    for name in names {
        fresh(&name, dir.path());
    }
}

#[tokio::test]
async fn sqlite_meets_the_contract() {
    dbinit_tests::link();
    contract("sqlite").await;
}

#[tokio::test]
async fn postgres_meets_the_contract() {
    dbinit_tests::link();
    contract("postgres").await;
}

#[tokio::test]
async fn mysql_meets_the_contract() {
    dbinit_tests::link();
    contract("mysql").await;
}

#[tokio::test]
async fn a_backend_defined_outside_the_workspace_meets_the_contract() {
    dbinit_tests::link();
    contract("litealias").await;
}
