//! The SQLite backend against real files in a temporary directory.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use dbinit_core::engine;
use dbinit_core::migration::MigrationBatchError;
use dbinit_core::{
    ConnectOptions, Connector, CoreError, DatabaseCreated, DatabaseUrl, ErrorKind, MigrationSet,
    Session, Value,
};
use dbinit_sqlite::{SqliteConnector, SqliteSession};

fn url(path: &Path) -> DatabaseUrl {
    DatabaseUrl::parse(&format!("sqlite://{}", path.display())).unwrap()
}

fn set(files: &[(&str, &str)]) -> MigrationSet {
    let ms: Vec<refinery::Migration> = files
        .iter()
        .map(|(name, sql)| refinery::Migration::unapplied(name, sql).unwrap())
        .collect();
    MigrationSet::from_refinery("test", &ms).unwrap()
}

async fn open(path: &Path) -> Box<dyn Session> {
    SqliteConnector
        .open(&url(path), &ConnectOptions::default())
        .await
        .unwrap()
        .0
}

async fn apply(
    session: &mut dyn Session,
    set: &MigrationSet,
) -> Result<usize, MigrationBatchError> {
    let applied = engine::history(session).await?;
    let pending = set.pending(&applied)?;
    Ok(engine::apply(session, &pending).await?.len())
}

#[tokio::test]
async fn creates_parent_directory_and_private_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/app.db");
    let opts = ConnectOptions::default();
    let created = SqliteConnector
        .ensure_database(&url(&path), &opts)
        .await
        .unwrap();
    assert_eq!(created, DatabaseCreated::Created);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let again = SqliteConnector
        .ensure_database(&url(&path), &opts)
        .await
        .unwrap();
    assert_eq!(again, DatabaseCreated::Existed);
}

#[tokio::test]
async fn refuses_non_databases_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a database, keep me\n").unwrap();
    let opts = ConnectOptions::default();
    for target in [text.clone(), dir.path().to_path_buf()] {
        let err = SqliteConnector
            .ensure_database(&url(&target), &opts)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotADatabase, "{err}");
        let err = SqliteConnector
            .connect(&url(&target), &opts)
            .await
            .err()
            .unwrap();
        assert_eq!(err.kind(), ErrorKind::NotADatabase, "{err}");
    }
    assert_eq!(
        std::fs::read_to_string(&text).unwrap(),
        "not a database, keep me\n"
    );
}

#[tokio::test]
async fn connect_never_creates_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.db");
    let err = SqliteConnector
        .connect(&url(&path), &ConnectOptions::default())
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Unreachable, "{err}");
    assert!(!path.exists());
}

#[tokio::test]
async fn wal_and_foreign_keys_are_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = open(&dir.path().join("app.db")).await;
    let fresh = session.query("PRAGMA journal_mode", &[]).await.unwrap();
    assert_eq!(
        fresh[0].values(),
        [Value::Text("delete".into())],
        "WAL before any migration"
    );
    apply(
        &mut *session,
        &set(&[("V1__t", "CREATE TABLE t (id INTEGER);")]),
    )
    .await
    .unwrap();
    let mode = session.query("PRAGMA journal_mode", &[]).await.unwrap();
    assert_eq!(mode[0].values(), [Value::Text("wal".into())]);
    let fk = session.query("PRAGMA foreign_keys", &[]).await.unwrap();
    assert_eq!(fk[0].values(), [Value::Int(1)]);
}

#[tokio::test]
async fn a_failing_migration_leaves_no_trace_and_earlier_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = open(&dir.path().join("app.db")).await;
    let broken = set(&[
        ("V1__ok", "CREATE TABLE a (id INTEGER PRIMARY KEY);"),
        (
            "V2__broken",
            "CREATE TABLE b (id INTEGER); INSERT INTO a VALUES (1); SELEKT nonsense;",
        ),
    ]);
    let err = apply(&mut *session, &broken).await.unwrap_err();
    assert_eq!(err.applied.len(), 1, "V1 committed before V2 failed");
    assert!(
        matches!(&err.error, CoreError::MigrationFailed { file, .. } if file == "V2__broken.sql"),
        "{}",
        err.error
    );
    assert!(
        err.error.to_string().contains("syntax error"),
        "{}",
        err.error
    );
    assert_eq!(
        session.tables().await.unwrap(),
        ["a"],
        "no table b, no half migration"
    );
    let rows = session
        .query("SELECT count(*) AS n FROM a", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<i64>("n").unwrap(), 0);
    let history = engine::history(&mut *session).await.unwrap();
    assert_eq!(history.iter().map(|m| m.version).collect::<Vec<_>>(), [1]);

    // Fixing the file converges.
    let fixed = set(&[
        ("V1__ok", "CREATE TABLE a (id INTEGER PRIMARY KEY);"),
        (
            "V2__broken",
            "CREATE TABLE b (id INTEGER); INSERT INTO a VALUES (1);",
        ),
    ]);
    assert_eq!(apply(&mut *session, &fixed).await.unwrap(), 1);
    assert_eq!(session.tables().await.unwrap(), ["a", "b"]);
}

#[tokio::test]
async fn a_migration_that_controls_transactions_is_refused_before_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = open(&dir.path().join("app.db")).await;
    for sql in [
        "CREATE TABLE a (id INTEGER); COMMIT; CREATE TABLE b (id INTEGER);",
        "CREATE TABLE a (id INTEGER); END;",
        "SAVEPOINT s; CREATE TABLE a (id INTEGER); RELEASE s;",
        "CREATE TABLE a (id INTEGER); ROLLBACK;",
    ] {
        let sneaky = set(&[("V1__sneaky", sql)]);
        let err = apply(&mut *session, &sneaky).await.unwrap_err();
        assert!(
            err.error
                .to_string()
                .contains("controls transactions itself"),
            "{sql}: {}",
            err.error
        );
        assert!(
            engine::history(&mut *session).await.unwrap().is_empty(),
            "{sql}"
        );
        assert!(
            session.tables().await.unwrap().is_empty(),
            "{sql}: half a migration stayed"
        );
    }
    // Triggers keep their BEGIN ... END bodies.
    let trigger = set(&[(
        "V1__trigger",
        "CREATE TABLE a (id INTEGER, n INTEGER DEFAULT 0);
         CREATE TRIGGER a_bump AFTER INSERT ON a BEGIN UPDATE a SET n = n + 1 WHERE id = NEW.id; END;",
    )]);
    assert_eq!(apply(&mut *session, &trigger).await.unwrap(), 1);
}

#[tokio::test]
async fn history_is_readable_by_refinery() {
    mod embedded {
        refinery::embed_migrations!("../../migrations/sqlite");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let runner = embedded::migrations::runner();
    let ours = MigrationSet::from_refinery("embedded", runner.get_migrations()).unwrap();
    let mut session = open(&path).await;
    assert_eq!(apply(&mut *session, &ours).await.unwrap(), 5);
    drop(session);

    let mut conn = rusqlite::Connection::open(&path).unwrap();
    let theirs = runner.get_applied_migrations(&mut conn).unwrap();
    assert_eq!(theirs.len(), 5);
    for (applied, file) in theirs.iter().zip(runner.get_migrations()) {
        assert_eq!(applied.checksum(), file.checksum(), "{applied}");
    }
    let report = embedded::migrations::runner()
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .run(&mut conn)
        .unwrap();
    assert!(
        report.applied_migrations().is_empty(),
        "refinery found work to redo"
    );
}

#[tokio::test]
async fn corrupt_history_row_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = open(&dir.path().join("app.db")).await;
    session
        .execute_batch(
            "CREATE TABLE refinery_schema_history(version INT4 PRIMARY KEY, name VARCHAR(255), \
             applied_on VARCHAR(255), checksum VARCHAR(255)); \
             INSERT INTO refinery_schema_history VALUES (1, 'x', 'not a date', 'not a number');",
        )
        .await
        .unwrap();
    let err = engine::history(&mut *session).await.unwrap_err();
    assert!(matches!(err, CoreError::CorruptHistory { .. }), "{err}");
}

#[tokio::test]
async fn init_lock_times_out_naming_the_holder_then_frees() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let mut first = open(&path).await;
    let mut second = open(&path).await;
    let held = first
        .acquire_init_lock(Duration::from_secs(1))
        .await
        .unwrap();
    let err = second
        .acquire_init_lock(Duration::from_millis(150))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LockTimeout);
    let pid = std::process::id().to_string();
    assert!(
        err.to_string().contains(&format!("held by pid {pid}")),
        "{err}"
    );
    first.release_init_lock(held).await.unwrap();
    let again = second
        .acquire_init_lock(Duration::from_secs(1))
        .await
        .unwrap();
    second.release_init_lock(again).await.unwrap();
}

#[tokio::test]
async fn introspection_sees_tables_columns_and_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = open(&dir.path().join("app.db")).await;
    let schema = set(&[(
        "V1__t",
        "CREATE TABLE t (id INTEGER PRIMARY KEY, email TEXT NOT NULL, note TEXT);
         CREATE UNIQUE INDEX t_email ON t (email);
         CREATE INDEX t_note_email ON t (note, email);",
    )]);
    apply(&mut *session, &schema).await.unwrap();
    assert_eq!(
        session.tables().await.unwrap(),
        ["t"],
        "history table is not a user table"
    );
    let columns = session.columns("t").await.unwrap();
    let names: Vec<_> = columns
        .iter()
        .map(|c| (c.name.as_str(), c.nullable, c.primary_key))
        .collect();
    assert_eq!(
        names,
        [
            ("id", true, true),
            ("email", false, false),
            ("note", true, false)
        ]
    );
    let indexes = session.indexes("t").await.unwrap();
    let shape: Vec<_> = indexes
        .iter()
        .map(|i| (i.name.as_str(), i.columns.clone(), i.unique))
        .collect();
    assert_eq!(
        shape,
        [
            ("t_email", vec!["email".to_owned()], true),
            (
                "t_note_email",
                vec!["note".to_owned(), "email".to_owned()],
                false
            )
        ]
    );
}

#[tokio::test]
async fn bulk_insert_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = open(&dir.path().join("app.db")).await;
    session
        .execute_batch("CREATE TABLE \"odd name\" (id INTEGER PRIMARY KEY, label TEXT NOT NULL)")
        .await
        .unwrap();
    let rows: Vec<Vec<Value>> = (1..=1000)
        .map(|i| vec![Value::Int(i), format!("row {i}").into()])
        .collect();
    let n = session
        .bulk_insert("odd name", &["id", "label"], &rows)
        .await
        .unwrap();
    assert_eq!(n, 1000);
    let bad = vec![
        vec![Value::Int(2001), "ok".into()],
        vec![Value::Int(2002), Value::Null],
    ];
    assert!(session
        .bulk_insert("odd name", &["id", "label"], &bad)
        .await
        .is_err());
    let count = session
        .query("SELECT count(*) AS n FROM \"odd name\"", &[])
        .await
        .unwrap();
    assert_eq!(
        count[0].get::<i64>("n").unwrap(),
        1000,
        "the failed batch left nothing"
    );
}

#[tokio::test]
async fn parameters_bind_by_position_in_either_style() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = open(&dir.path().join("app.db")).await;
    let rows = session
        .query(
            "SELECT $2 AS b, $1 AS a, $2 AS b2",
            &["x".into(), Value::Int(7)],
        )
        .await
        .unwrap();
    assert_eq!(
        rows[0].values(),
        [Value::Int(7), Value::Text("x".into()), Value::Int(7)]
    );
    let rows = session
        .query("SELECT ? AS a, ? AS b", &[Value::Bool(true), Value::Null])
        .await
        .unwrap();
    assert_eq!(rows[0].values(), [Value::Int(1), Value::Null]);
    let err = session
        .query("SELECT $3", &[Value::Int(1)])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("$3"), "{err}");
}

#[tokio::test]
async fn native_connection_is_reachable_by_downcast() {
    let dir = tempfile::tempdir().unwrap();
    let mut session = open(&dir.path().join("app.db")).await;
    let native = session
        .as_any_mut()
        .downcast_mut::<SqliteSession>()
        .expect("a SqliteSession");
    let version: String = native
        .with_connection(|c| c.query_row("SELECT sqlite_version()", [], |r| r.get(0)))
        .unwrap()
        .unwrap();
    assert!(version.starts_with('3'), "{version}");
}

#[tokio::test]
async fn inspecting_leaves_the_journal_mode_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("legacy.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE t (id INTEGER)").unwrap();
    drop(conn);
    let mut session = SqliteConnector
        .connect(&url(&path), &ConnectOptions::default())
        .await
        .unwrap();
    let mode = session.query("PRAGMA journal_mode", &[]).await.unwrap();
    assert_eq!(
        mode[0].values(),
        [Value::Text("delete".into())],
        "connect switched the mode"
    );
}
