//! PostgreSQL under faults: the server dies in the middle of a migration,
//! restarts between runs, the role may not create tables, statements time
//! out. Each ends in a clear error or a correct recovery, and a rerun
//! converges to the database one uninterrupted run makes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dbinit_tests::dump::dump_blocking;
use dbinit_tests::pg::{psql, Cluster, ClusterOptions};
use dbinit_tests::{pg_url, unique_database};

use dbinit_tests::cli::stderr;

fn dbinit(url: &str, migrations: Option<&Path>) -> Command {
    let mut cmd = dbinit_tests::cli::command(env!("CARGO_BIN_EXE_dbinit-demo"));
    cmd.args(["init", "--database-url", url]);
    if let Some(dir) = migrations {
        cmd.arg("--migrations").arg(dir);
    }
    cmd
}

/// The bundled PostgreSQL schema plus `extra` migrations.
fn migrations(extra: &[(&str, &str)]) -> tempfile::TempDir {
    dbinit_tests::cli::migration_dir("postgres", extra)
}

#[test]
fn server_killed_mid_migration_then_restarted_converges() {
    let cluster = Cluster::new(ClusterOptions::default()).expect("initdb");
    cluster.start().expect("start");
    let set = migrations(&[(
        "V6__slow",
        "CREATE TABLE slow_a (id INT);\nSELECT pg_sleep(3);\nCREATE TABLE slow_b (id INT);\n",
    )]);
    let reference = cluster.url("reference");
    let out = dbinit(&reference, Some(set.path())).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    // The test cluster runs with synchronous_commit off, whose commits an
    // immediate stop may lose; this database's must survive it.
    let url = cluster.url("victim");
    psql(&cluster.url("postgres"), "CREATE DATABASE victim");
    psql(
        &cluster.url("postgres"),
        "ALTER DATABASE victim SET synchronous_commit = on",
    );
    let child = dbinit(&url, Some(set.path()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the slow migration is running, then crash the server.
    let started = Instant::now();
    loop {
        let running = psql(
            &cluster.url("postgres"),
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(3)%' AND pid <> pg_backend_pid()",
        );
        if running == "1" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the slow migration never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    cluster.stop("immediate").expect("pg_ctl stop -m immediate");
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "init survived a dead server?");
    assert!(err.contains("error:"), "{err}");
    assert!(!err.contains("dbinit-test-superuser"), "{err}");

    cluster.start().expect("restart");
    assert_eq!(
        psql(
            &url,
            "SELECT count(*) FROM refinery_schema_history WHERE version = 6"
        ),
        "0",
        "the kill was not in the middle of V6"
    );
    assert_eq!(
        psql(
            &url,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'slow_a'"
        ),
        "0"
    );
    let out = dbinit(&url, Some(set.path())).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(dump_blocking(&url), dump_blocking(&reference));
}

#[test]
fn a_restart_between_runs_changes_nothing() {
    let cluster = Cluster::new(ClusterOptions::default()).expect("initdb");
    cluster.start().expect("start");
    let url = cluster.url("restarted");
    assert!(dbinit(&url, None).output().unwrap().status.success());
    let before = dump_blocking(&url);
    cluster.stop("fast").expect("stop");
    cluster.start().expect("start again");
    let out = dbinit(&url, None).arg("--json").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["migrations"]["applied"].as_array().unwrap().len(), 0);
    assert_eq!(dump_blocking(&url), before);
}

#[test]
fn a_role_without_create_on_the_schema_gets_a_clear_error() {
    let db = unique_database("nocreate_schema");
    let role = unique_database("limited");
    let admin = pg_url("postgres");
    psql(&admin, &format!("CREATE DATABASE {db}"));
    psql(
        &admin,
        &format!("CREATE ROLE {role} LOGIN PASSWORD 'limited-pw'"),
    );
    psql(
        &pg_url(&db),
        &format!(
            "REVOKE CREATE ON SCHEMA public FROM PUBLIC; GRANT CONNECT ON DATABASE {db} TO {role}"
        ),
    );
    let url = pg_url(&db).replace(
        "postgres:dbinit-test-superuser@",
        &format!("{role}:limited-pw@"),
    );
    let out = dbinit(&url, None).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(22), "{err}");
    assert!(err.contains("permission denied for schema public"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert!(!err.contains("limited-pw"), "{err}");
    assert_eq!(
        psql(
            &pg_url(&db),
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        "0"
    );
}

#[test]
fn a_tiny_statement_timeout_fails_clearly_and_a_rerun_converges() {
    let db = unique_database("timeout");
    let admin = pg_url("postgres");
    let url = pg_url(&db);
    // The bundled schema first, without the timeout: only the sleepy
    // migration must meet it, however loaded the machine is.
    let bundled = migrations(&[]);
    let out = dbinit(&url, Some(bundled.path())).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    psql(
        &admin,
        &format!("ALTER DATABASE {db} SET statement_timeout = '100ms'"),
    );
    let set = migrations(&[(
        "V6__sleepy",
        "CREATE TABLE sleepy (id INT);\nSELECT pg_sleep(2);\n",
    )]);
    let out = dbinit(&url, Some(set.path())).output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(41), "{err}");
    assert!(
        err.contains("V6__sleepy.sql") && err.contains("statement timeout"),
        "{err}"
    );
    assert!(
        err.contains("ALTER ROLE"),
        "the hint says what to change: {err}"
    );
    assert_eq!(
        psql(
            &url,
            "SELECT count(*) FROM pg_tables WHERE tablename = 'sleepy'"
        ),
        "0"
    );
    assert_eq!(
        psql(&url, "SELECT count(*) FROM refinery_schema_history"),
        "5"
    );

    psql(
        &admin,
        &format!("ALTER DATABASE {db} RESET statement_timeout"),
    );
    let out = dbinit(&url, Some(set.path())).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        psql(&url, "SELECT count(*) FROM refinery_schema_history"),
        "6"
    );
}
