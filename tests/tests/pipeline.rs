//! The whole pipeline in-process, on real SQLite files.

use std::sync::{Arc, Mutex};

use dbinit_runner::dbinit_core::{
    DatabaseCreated, Environment, ErrorKind, HealthStatus, MigrationSet, SecretSink,
};
use dbinit_runner::report::{Outcome, SeedStatus};
use dbinit_runner::Initializer;
use dbinit_tests::SqliteFile;

/// Captures secrets instead of printing them.
#[derive(Default)]
struct Captured(Mutex<Vec<String>>);

impl SecretSink for Captured {
    fn show_once(&self, _label: &str, secret: &str) -> std::io::Result<()> {
        self.0.lock().unwrap().push(secret.to_owned());
        Ok(())
    }
}

/// The demo: its schema and its seeders (this binary links dbinit-accounts).
fn demo() -> dbinit_runner::dbinit_core::MigrationSets {
    dbinit_accounts::migration_sets().unwrap()
}

fn initializer(db: &SqliteFile, sink: Arc<Captured>) -> Initializer {
    Initializer::new(db.url())
        .migration_sets(demo())
        .environment(Environment::Test)
        .secret_sink(sink)
}

#[tokio::test]
async fn fresh_then_noop() {
    let db = SqliteFile::new();
    let sink = Arc::new(Captured::default());
    let report = initializer(&db, sink.clone())
        .run()
        .await
        .expect("fresh init");
    assert_eq!(report.outcome, Outcome::Ready);
    assert_eq!(report.database_created, Some(DatabaseCreated::Created));
    assert_eq!(report.migrations.applied.len(), 5);
    assert!(report
        .migrations
        .applied
        .iter()
        .all(|m| m.duration.is_some()));
    let created: Vec<(&str, u64)> = report
        .seeders
        .iter()
        .map(|s| (s.name.as_str(), s.outcome.created))
        .collect();
    assert_eq!(
        created,
        [("system_tenant", 1), ("system_roles", 2), ("admin_user", 2)]
    );
    assert!(
        report
            .health
            .iter()
            .all(|h| h.status == HealthStatus::Healthy),
        "{:?}",
        report.health
    );
    let steps: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(steps, ["connect", "lock", "migrate", "seed", "health"]);
    let generated = sink.0.lock().unwrap().clone();
    assert_eq!(
        generated.len(),
        1,
        "one generated admin password, shown once"
    );

    let again = initializer(&db, sink.clone())
        .run()
        .await
        .expect("no-op init");
    assert_eq!(again.database_created, Some(DatabaseCreated::Existed));
    assert!(again.migrations.applied.is_empty());
    assert_eq!(again.migrations.already_applied, 5);
    // Every seeder's check finds its data: none opens a transaction.
    assert!(again
        .seeders
        .iter()
        .all(|s| s.status == SeedStatus::Present && s.outcome == Default::default()));
    assert_eq!(again.seeders.len(), 3);
    assert_eq!(sink.0.lock().unwrap().len(), 1, "no second password");

    let conn = rusqlite::Connection::open(&db.path).unwrap();
    let hash: String = conn
        .query_row(
            "SELECT password_hash FROM users WHERE username = 'admin'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(&generated[0]));
}

#[tokio::test]
async fn status_and_health_change_nothing() {
    let db = SqliteFile::new();
    let init = initializer(&db, Arc::default());
    let err = init.status().await.expect_err("no database yet");
    assert_eq!(err.kind(), ErrorKind::Unreachable);
    assert!(!db.path.exists(), "status must not create the database");

    init.run().await.unwrap();
    let before = std::fs::read(&db.path).unwrap();
    let status = init.status().await.unwrap();
    assert_eq!(status.migrations.applied.len(), 5);
    assert!(status.migrations.pending.is_empty());
    assert!(status.seeders.iter().all(|s| s.seeded));
    let health = init.health().await.unwrap();
    assert!(health.failures().is_empty(), "{:?}", health.checks);
    assert_eq!(std::fs::read(&db.path).unwrap(), before);
}

#[tokio::test]
async fn no_seed_skips_seeders_and_their_checks() {
    let db = SqliteFile::new();
    let report = initializer(&db, Arc::default())
        .seed(false)
        .run()
        .await
        .unwrap();
    assert!(report.seeders.is_empty());
    let seed_check = report
        .health
        .iter()
        .find(|h| h.name == "seed_data")
        .unwrap();
    assert_eq!(seed_check.status, HealthStatus::Disabled);
}

#[tokio::test]
async fn unhealthy_database_fails_with_the_check_named() {
    let db = SqliteFile::new();
    let init = initializer(&db, Arc::default())
        .require_tables(dbinit_accounts::DEMO_TABLES.iter().copied());
    init.run().await.unwrap();
    let conn = rusqlite::Connection::open(&db.path).unwrap();
    conn.execute_batch("DELETE FROM user_roles; DROP TABLE performance_alerts;")
        .unwrap();
    drop(conn);
    // The admin grant is re-seeded; the dropped table is not a seeder's job.
    let err = init.run().await.expect_err("a required table is gone");
    assert_eq!(err.kind(), ErrorKind::Unhealthy);
    assert!(
        err.to_string()
            .contains("required_tables: missing: performance_alerts"),
        "{err}"
    );
    let admin = err
        .report()
        .seeders
        .iter()
        .find(|s| s.name == "admin_user")
        .unwrap();
    assert_eq!((admin.outcome.created, admin.outcome.skipped), (1, 1));
}

#[tokio::test]
async fn failed_migration_reports_partial_progress() {
    let db = SqliteFile::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("V1__a.sql"), "CREATE TABLE a (id INTEGER);").unwrap();
    std::fs::write(
        dir.path().join("V2__b.sql"),
        "CREATE TABLE b (id INTEGER); oops;",
    )
    .unwrap();
    std::fs::write(dir.path().join("V3__c.sql"), "CREATE TABLE c (id INTEGER);").unwrap();
    let set = MigrationSet::from_dir(dir.path()).unwrap();
    let err = initializer(&db, Arc::default())
        .migrations(set)
        .seed(false)
        .run()
        .await
        .expect_err("V2 is broken");
    assert_eq!(err.kind(), ErrorKind::MigrationFailed);
    let report = err.report();
    assert_eq!(report.outcome, Outcome::Failed);
    assert_eq!(report.migrations.applied.len(), 1);
    assert_eq!(report.migrations.pending, ["V2__b", "V3__c"]);
    assert!(report.error.as_ref().unwrap().message.contains("V2__b.sql"));
}

/// Behaviour 5, in-process: `Debug` and `Display` of everything that holds
/// or reports the URL.
#[tokio::test]
async fn debug_and_errors_never_show_the_password() {
    const SECRET: &str = "Hunter2Hunter2";
    let dir = tempfile::tempdir().unwrap();
    for raw in [
        format!("sqlite://{}/app.db?password={SECRET}", dir.path().display()),
        format!("sqlite://{}/missing/../?key={SECRET}", dir.path().display()),
        format!("postgres://app:{SECRET}@127.0.0.1:1/app"),
        format!("host=127.0.0.1 password={SECRET}"),
    ] {
        let url: dbinit_runner::dbinit_core::DatabaseUrl = raw.parse().unwrap();
        let mut quick = dbinit_runner::dbinit_core::ConnectOptions::default();
        quick.connect_timeout = std::time::Duration::from_millis(300);
        let init = Initializer::new(url.clone())
            .migration_sets(demo())
            .environment(Environment::Test)
            .connect_options(quick)
            .secret_sink(Arc::new(Captured::default()));
        let mut shown = format!("{url} {url:?} {init:?}");
        match init.run().await {
            Ok(report) => shown += &format!("{report:?}"),
            Err(err) => shown += &format!("{err} {err:?} {:?}", err.report()),
        }
        if let Err(err) = init.status().await {
            shown += &format!("{err} {err:?}");
        }
        assert!(!shown.contains(SECRET), "{raw}: {shown}");
    }
}

/// A generated password is shown only once the user it belongs to is
/// committed; in production it is never generated.
#[tokio::test]
async fn generated_password_is_shown_only_after_commit() {
    let db = SqliteFile::new();
    let sink = Arc::new(Captured::default());
    initializer(&db, sink.clone())
        .seed(false)
        .run()
        .await
        .unwrap();
    let conn = rusqlite::Connection::open(&db.path).unwrap();
    // The grant will fail after the user row and the password exist.
    conn.execute_batch("DROP TABLE user_roles").unwrap();
    drop(conn);
    let err = initializer(&db, sink.clone())
        .run()
        .await
        .expect_err("the grant fails");
    assert_eq!(err.kind(), ErrorKind::SeedFailed, "{err}");
    assert!(err.to_string().contains("admin_user"), "{err}");
    assert!(
        sink.0.lock().unwrap().is_empty(),
        "a password was shown for a user that was rolled back"
    );
    let conn = rusqlite::Connection::open(&db.path).unwrap();
    let users: i64 = conn
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 0);

    let prod = SqliteFile::new();
    let err = Initializer::new(prod.url())
        .migration_sets(demo())
        .environment(Environment::Production)
        .secret_sink(sink.clone())
        .run()
        .await
        .expect_err("production needs a configured password");
    assert!(err.to_string().contains("never generated"), "{err}");
    // Refused before the first write: not even the migrations ran.
    assert!(err.report().migrations.applied.is_empty(), "{err}");
    assert!(sink.0.lock().unwrap().is_empty());
}

/// A failed run's `Display` says what to do, not only what went wrong.
#[tokio::test]
async fn runner_errors_show_their_hint() {
    let db = SqliteFile::new();
    rusqlite::Connection::open(&db.path)
        .unwrap()
        .execute_batch("CREATE TABLE theirs (x INTEGER);")
        .unwrap();
    let err = initializer(&db, Arc::new(Captured::default()))
        .run()
        .await
        .expect_err("another application's database");
    let shown = err.to_string();
    assert!(shown.contains("no migration history"), "{shown}");
    assert!(shown.contains("\n  hint: point DATABASE_URL"), "{shown}");
    assert!(shown.contains("baseline --version"), "{shown}");
}

/// A service that asks for nothing gets no table: no demo schema unless it
/// links the demo and passes its migrations, and a backend its sets lack is
/// refused rather than left empty.
#[tokio::test]
async fn nothing_is_applied_that_was_not_asked_for() {
    let db = SqliteFile::new();
    let report = Initializer::new(db.url()).seed(false).run().await.unwrap();
    assert!(report.migrations.applied.is_empty());
    let tables: i64 = rusqlite::Connection::open(&db.path)
        .unwrap()
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0);

    let only_postgres = dbinit_runner::dbinit_core::MigrationSets::default()
        .with("postgres", demo().get("postgres").unwrap().clone());
    let err = Initializer::new(SqliteFile::new().url())
        .migration_sets(only_postgres)
        .seed(false)
        .run()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no `sqlite` migrations"), "{err}");
}
