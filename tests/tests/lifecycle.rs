//! The migration lifecycle through the CLI, as a user runs it: `plan`,
//! `status --exit-code`, `rollback`, `baseline`, `repair`, each with `--json`
//! and each refusing bad input before it changes anything.

use std::path::Path;
use std::process::{Command, Output};

use dbinit_tests::cli::{exit_code as code, stderr, stdout_json as json};
use dbinit_tests::dump::{execute_blocking, scalar_blocking};
use dbinit_tests::{pg_url, unique_database, Backend};

fn dbinit() -> Command {
    dbinit_tests::cli::command(env!("CARGO_BIN_EXE_dbinit-demo"))
}

fn run(args: &[&str], url: &str, migrations: &Path) -> Output {
    dbinit()
        .args(args)
        .args(["--no-seed", "--database-url", url, "--migrations"])
        .arg(migrations)
        .output()
        .unwrap()
}

fn history(db: &Path) -> Vec<i64> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT version FROM refinery_schema_history ORDER BY version")
        .unwrap();
    let versions = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<Vec<i64>, _>>()
        .unwrap();
    versions
}

fn files(dir: &Path, files: &[(&str, &str)]) {
    for (name, sql) in files {
        std::fs::write(dir.join(name), sql).unwrap();
    }
}

#[test]
fn plan_status_rollback_baseline_and_repair_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let url = format!("sqlite://{}", db.display());
    let migrations = tempfile::tempdir().unwrap();
    files(
        migrations.path(),
        &[
            ("V1__a.sql", "CREATE TABLE a (x INTEGER);"),
            ("V1__a.down.sql", "DROP TABLE a;"),
            ("V2__b.sql", "CREATE TABLE b (x INTEGER);"),
            ("V2__b.down.sql", "DROP TABLE b;"),
            (
                "V3__c.sql",
                "-- dbinit:no-transaction\nCREATE TABLE IF NOT EXISTS c (x INTEGER);",
            ),
        ],
    );
    let m = migrations.path();

    // plan needs the database (it never creates one) ...
    let out = run(&["plan"], &url, m);
    assert_eq!(code(&out), 20, "{}", stderr(&out));
    assert!(!db.exists());
    // ... and says what init would do, with the SQL; nothing changes.
    std::fs::write(&db, "").unwrap();
    let out = run(&["plan", "--json"], &url, m);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let plan = json(&out);
    let pending = plan["pending"].as_array().unwrap();
    assert_eq!(pending.len(), 3);
    assert_eq!(pending[0]["sql"], "CREATE TABLE a (x INTEGER);");
    assert_eq!(pending[2]["in_transaction"], false);
    assert!(history_is_absent(&db));

    // status --exit-code: 42 while pending, 0 once applied.
    assert_eq!(code(&run(&["status", "--exit-code"], &url, m)), 42);
    assert_eq!(code(&run(&["init"], &url, m)), 0);
    assert_eq!(code(&run(&["status", "--exit-code"], &url, m)), 0);
    assert_eq!(history(&db), [1, 2, 3]);

    // V3 has no down script: a range that includes it is refused whole.
    let out = run(&["rollback", "--steps", "2"], &url, m);
    assert_eq!(code(&out), 40, "{}", stderr(&out));
    assert!(stderr(&out).contains("V3__c.down.sql"), "{}", stderr(&out));
    assert_eq!(history(&db), [1, 2, 3]);
    files(m, &[("V3__c.down.sql", "")]);
    let out = run(&["rollback", "--json", "--steps", "2"], &url, m);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["action"], "rollback");
    assert_eq!(report["migrations"].as_array().unwrap().len(), 2);
    assert_eq!(history(&db), [1]);
    // Beyond the history, or to a version that is not applied: refused.
    assert_eq!(code(&run(&["rollback", "--steps", "5"], &url, m)), 40);
    assert_eq!(code(&run(&["rollback", "--to", "7"], &url, m)), 40);
    assert_eq!(code(&run(&["init"], &url, m)), 0);

    // repair: a cosmetic edit is refused by init until accepted.
    files(
        m,
        &[("V2__b.sql", "CREATE TABLE b (x INTEGER); -- reformatted")],
    );
    assert_eq!(code(&run(&["init"], &url, m)), 40);
    let out = run(&["repair", "--json", "--accept", "2"], &url, m);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(json(&out)["repaired"]["old_checksum"].as_u64().is_some());
    assert_eq!(code(&run(&["init"], &url, m)), 0);
    assert_eq!(
        code(&run(&["repair", "--accept", "2"], &url, m)),
        40,
        "nothing to repair"
    );

    // baseline: refused with a history; adopts a database without one.
    assert_eq!(code(&run(&["baseline", "--version", "2"], &url, m)), 40);
    let legacy = dir.path().join("legacy.db");
    rusqlite::Connection::open(&legacy)
        .unwrap()
        .execute_batch("CREATE TABLE a (x INTEGER); CREATE TABLE b (x INTEGER);")
        .unwrap();
    let legacy_url = format!("sqlite://{}", legacy.display());
    let out = run(&["init"], &legacy_url, m);
    assert_eq!(code(&out), 40, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("baseline"),
        "the hint names it: {}",
        stderr(&out)
    );
    assert_eq!(
        code(&run(&["baseline", "--version", "2"], &legacy_url, m)),
        0
    );
    assert_eq!(code(&run(&["init"], &legacy_url, m)), 0);
    assert_eq!(history(&legacy), [1, 2, 3]);

    // Bad input is a usage error, before anything runs.
    for args in [
        vec!["rollback"],
        vec!["rollback", "--steps", "0"],
        vec!["rollback", "--steps", "1", "--to", "1"],
        vec!["baseline", "--version", "-3"],
        vec!["repair", "--accept", "99999999999"],
    ] {
        assert_eq!(code(&run(&args, &url, m)), 2, "{args:?}");
    }
}

fn history_is_absent(db: &Path) -> bool {
    !db.exists()
        || rusqlite::Connection::open(db)
            .unwrap()
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'refinery_schema_history'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap()
            == 0
}

#[test]
fn a_postgres_migration_that_commits_is_refused_before_it_runs() {
    let url = pg_url(&unique_database("commits"));
    let migrations = tempfile::tempdir().unwrap();
    files(
        migrations.path(),
        &[
            ("V1__a.sql", "CREATE TABLE a (x INTEGER);"),
            (
                "V2__commits.sql",
                "CREATE TABLE b (x INTEGER);\nCOMMIT;\nCREATE TABLE c (x INTEGER);",
            ),
        ],
    );
    let out = run(&["init"], &url, migrations.path());
    assert_eq!(code(&out), 41, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("`COMMIT` at line 2"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        dbinit_tests::pg::psql(
            &url,
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('b', 'c')"
        ),
        "0"
    );
}

/// Found by review: what a migration leaves in the connection never reaches
/// the next one, and the history cannot be shadowed.
#[test]
fn sqlite_temp_objects_and_pragmas_do_not_leak_and_the_history_cannot_be_shadowed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let url = format!("sqlite://{}", db.display());
    let migrations = tempfile::tempdir().unwrap();
    files(
        migrations.path(),
        &[
            (
                "V1__a.sql",
                "CREATE TABLE a (x INTEGER);\n\
                 CREATE TEMP TRIGGER wipe AFTER INSERT ON a BEGIN DELETE FROM a; END;\n\
                 PRAGMA recursive_triggers = ON;",
            ),
            ("V2__b.sql", "INSERT INTO a VALUES (1);"),
        ],
    );
    assert_eq!(code(&run(&["init"], &url, migrations.path())), 0);
    let rows: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("SELECT count(*) FROM a", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1, "V1's temporary trigger fired in V2");

    files(
        migrations.path(),
        &[(
            "V3__shadow.sql",
            "CREATE TEMP TABLE refinery_schema_history (version INT PRIMARY KEY, name TEXT, \
             applied_on TEXT, checksum TEXT);",
        )],
    );
    let out = run(&["init"], &url, migrations.path());
    assert_eq!(code(&out), 41, "{}", stderr(&out));
    assert_eq!(history(&db), [1, 2]);
}

#[test]
fn baseline_adopts_unversioned_migrations_and_failed_downs_say_what_stays() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("legacy.db");
    let url = format!("sqlite://{}", db.display());
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TABLE u (x INTEGER);")
        .unwrap();
    let migrations = tempfile::tempdir().unwrap();
    files(
        migrations.path(),
        &[
            ("U1__u.sql", "CREATE TABLE u (x INTEGER);"),
            ("V2__v.sql", "CREATE TABLE v (x INTEGER);"),
            (
                "V2__v.down.sql",
                "DROP TABLE v;\nSELECT no_such_function();",
            ),
        ],
    );
    let m = migrations.path();
    assert_eq!(code(&run(&["baseline", "--version", "1"], &url, m)), 0);
    assert_eq!(code(&run(&["init"], &url, m)), 0);
    assert_eq!(history(&db), [1, 2]);
    let out = run(&["rollback", "--steps", "1"], &url, m);
    assert_eq!(code(&out), 41, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("V2__v stays applied"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("run rollback again"),
        "{}",
        stderr(&out)
    );
    assert_eq!(history(&db), [1, 2]);
}

/// A baseline records migrations as applied without running them: the
/// database must already have what they make. One with only some of the
/// tables is refused with the others named, and nothing is written.
#[test]
fn baseline_refuses_a_database_without_the_schema_it_claims() {
    for backend in [Backend::Sqlite, Backend::Postgres, Backend::Mysql] {
        let dir = tempfile::tempdir().unwrap();
        let url = backend.fresh_url(dir.path(), "baseline");
        let migrations = dbinit_tests::cli::migration_dir(backend.name(), &[]);
        let m = migrations.path();
        execute_blocking(&url, "CREATE TABLE tenants (id INTEGER)");
        let out = run(&["baseline", "--version", "5"], &url, m);
        assert_eq!(code(&out), 40, "{backend:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("does not look like version 5")
                && err.contains("roles, users")
                && !err.contains("tenants"),
            "{backend:?}: {err}"
        );
        let tables = match backend {
            Backend::Sqlite => "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
            Backend::Postgres => "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            Backend::Mysql => {
                "SELECT count(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()"
            }
        };
        assert_eq!(
            scalar_blocking(&url, tables),
            "1",
            "{backend:?}: something was written"
        );
    }
    // PostgreSQL: `"TENANTS"` is not the `tenants` an unquoted name makes.
    let url = pg_url(&unique_database("baseline_case"));
    let database = url.rsplit('/').next().unwrap();
    dbinit_tests::pg::psql(&pg_url("postgres"), &format!("CREATE DATABASE {database}"));
    dbinit_tests::pg::psql(
        &url,
        "CREATE TABLE \"TENANTS\" (a int); CREATE TABLE \"ROLES\" (a int); \
         CREATE TABLE \"USERS\" (a int); CREATE TABLE \"USER_ROLES\" (a int); \
         CREATE TABLE \"PERFORMANCE_ALERTS\" (a int); CREATE VIEW tenants AS SELECT 1 AS a;",
    );
    let migrations = dbinit_tests::cli::migration_dir("postgres", &[]);
    let out = run(&["baseline", "--version", "5"], &url, migrations.path());
    assert_eq!(code(&out), 40, "{}", stderr(&out));
    assert!(stderr(&out).contains("tenants, roles"), "{}", stderr(&out));
}

#[test]
fn a_postgres_schema_named_after_the_user_does_not_split_the_history() {
    let url = pg_url(&unique_database("user_schema"));
    let migrations = tempfile::tempdir().unwrap();
    // The test cluster's user is `postgres`: `$user` in the search path.
    files(
        migrations.path(),
        &[
            ("V1__schema.sql", "CREATE SCHEMA postgres;"),
            ("V2__t.sql", "CREATE TABLE t (x INTEGER);"),
        ],
    );
    assert_eq!(code(&run(&["init"], &url, migrations.path())), 0);
    files(
        migrations.path(),
        &[("V3__t3.sql", "CREATE TABLE t3 (x INTEGER);")],
    );
    let out = run(&["init"], &url, migrations.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let psql = |sql: &str| dbinit_tests::pg::psql(&url, sql);
    assert_eq!(
        psql("SELECT count(*) FROM pg_tables WHERE tablename = 'refinery_schema_history'"),
        "1"
    );
    assert_eq!(
        code(&run(&["status", "--exit-code"], &url, migrations.path())),
        0
    );
}

#[test]
fn a_failed_no_transaction_migration_says_it_was_not_rolled_back() {
    let url = pg_url(&unique_database("partly"));
    let migrations = tempfile::tempdir().unwrap();
    files(
        migrations.path(),
        &[(
            "V1__partly.sql",
            "-- dbinit:no-transaction\nCREATE TABLE half (x INTEGER);\nSELECT 1/0;",
        )],
    );
    let out = run(&["init"], &url, migrations.path());
    assert_eq!(code(&out), 41, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("failed part way") && !err.contains("rolled back"),
        "{err}"
    );
    assert!(err.contains("re-runnable"), "{err}");
}
