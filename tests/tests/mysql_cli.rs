//! `dbinit-demo` (what `cargo xtask init` runs) on the MariaDB server
//! `cargo xtask test` starts: a fresh database end to end, then a no-op;
//! SIGTERM cancels the running statement with `KILL QUERY`, frees the lock
//! and exits 143, and the rerun resumes; a wrong password is refused at
//! once and never shown.

use std::process::{Command, Output};
use std::time::Duration;

use dbinit_tests::cli::{exit_code as code, stderr, stdout_json as json};
use dbinit_tests::dump::{dump_blocking, scalar_blocking};
use dbinit_tests::{mysql_url, unique_database};

fn dbinit() -> Command {
    dbinit_tests::cli::command(env!("CARGO_BIN_EXE_dbinit-demo"))
}

fn init(url: &str, extra: &[&str]) -> Output {
    dbinit()
        .args(["init", "--json", "--database-url", url])
        .args(extra)
        .output()
        .expect("run dbinit-demo")
}

#[test]
fn init_creates_migrates_seeds_and_then_does_nothing() {
    let url = mysql_url(&unique_database("mycli"));
    let out = init(&url, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["backend"], "mysql");
    assert_eq!(report["database_created"], "created");
    assert_eq!(report["migrations"]["applied"].as_array().unwrap().len(), 5);
    let health = report["health"].as_array().unwrap();
    assert!(
        !health.is_empty() && health.iter().all(|c| c["status"] == "healthy"),
        "{report:#}"
    );
    assert!(!report.to_string().contains("dbinit-test-mariadb"));
    let first = dump_blocking(&url);
    for row in ["tenant system", "role admin", "role member", "user admin"] {
        assert!(first.contains(&format!("\n{row}\n")), "{row}: {first}");
    }

    let again = json(&init(&url, &[]));
    assert_eq!(again["database_created"], "existed");
    assert!(again["migrations"]["applied"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(dump_blocking(&url), first);
}

#[test]
fn sigterm_kills_the_running_statement_frees_the_lock_and_the_rerun_resumes() {
    let database = unique_database("mysigterm");
    let url = mysql_url(&database);
    // A query that runs for hours unless killed (MariaDB's sequence engine
    // sums one table by arithmetic, but not a join).
    let slow = "CREATE TABLE half_done (x INT);\n\
                SELECT sum(a.seq * b.seq) FROM seq_1_to_1000000 a, seq_1_to_1000000 b;";
    let migrations = dbinit_tests::cli::migration_dir("mysql", &[("V6__slow", slow)]);
    let dir = migrations.path().to_str().unwrap().to_owned();
    let running = || {
        scalar_blocking(
            &mysql_url("mysql"),
            "SELECT count(*) FROM information_schema.PROCESSLIST \
             WHERE INFO LIKE '%sum(a.seq * b.seq)%' AND ID <> CONNECTION_ID()",
        ) == "1"
    };
    let (out, took) = dbinit_tests::cli::signal_when(
        dbinit().args([
            "init",
            "--json",
            "--no-seed",
            "--migrations",
            &dir,
            "--database-url",
            &url,
        ]),
        running,
        nix::sys::signal::Signal::SIGTERM,
    );
    assert_eq!(code(&out), 143, "{}", stderr(&out));
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert_eq!(json(&out)["error"]["kind"], "interrupted");
    // Nothing runs on, the lock is free, the history has the five.
    assert!(!running(), "the statement still runs");
    assert_eq!(
        scalar_blocking(
            &mysql_url("mysql"),
            &format!("SELECT IS_FREE_LOCK('dbinit:{database}')")
        ),
        "1"
    );
    let count = |sql: &str| scalar_blocking(&url, sql);
    assert_eq!(count("SELECT count(*) FROM refinery_schema_history"), "5");
    // The CREATE TABLE committed (MySQL's DDL does) and is journaled: the
    // rerun of the fixed file resumes after it.
    assert_eq!(
        count("SELECT count(*) FROM dbinit_statement_journal WHERE version = 6"),
        "1"
    );
    let fixed = dbinit_tests::cli::migration_dir(
        "mysql",
        &[("V6__slow", "CREATE TABLE half_done (x INT);\nSELECT 1;")],
    );
    let out = init(
        &url,
        &[
            "--no-seed",
            "--lock-timeout",
            "2s",
            "--migrations",
            fixed.path().to_str().unwrap(),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(count("SELECT count(*) FROM refinery_schema_history"), "6");
    assert_eq!(count("SELECT count(*) FROM dbinit_statement_journal"), "0");
}

#[test]
fn a_wrong_password_is_refused_at_once_and_never_shown() {
    const SECRET: &str = "Wr0ngPassw0rdValue";
    let good = mysql_url(&unique_database("mybadpw"));
    let (user, rest) = good.split_once('@').unwrap();
    let (scheme_user, _) = user.rsplit_once(':').unwrap();
    let bad = format!("{scheme_user}:{SECRET}@{rest}");
    let started = std::time::Instant::now();
    let out = init(&bad, &["--connect-timeout", "20s"]);
    assert!(started.elapsed() < Duration::from_secs(10), "it retried");
    assert_eq!(json(&out)["error"]["kind"], "authentication");
    let everything = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(!everything.contains(SECRET), "{everything}");
}

/// A crash just before a statement leaves it `started`: the rerun must
/// tell "it ran" from "it did not" by what it changes, and a statement
/// that did not run and fails now fails, never passes for "already run".
#[test]
fn a_statement_a_crash_stopped_before_is_run_and_its_failure_reported() {
    use std::os::unix::process::ExitStatusExt;
    let url = mysql_url(&unique_database("mybefore"));
    let bad = "CREATE TABLE a6 (x INT);\nCREATE VIEW v6 AS SELECT typo FROM a6;";
    let migrations = dbinit_tests::cli::migration_dir("mysql", &[("V6__view", bad)]);
    let dir = migrations.path().to_str().unwrap().to_owned();
    let args = ["--no-seed", "--migrations", &dir];
    // The bundled schema has ten statements: the view is the twelfth.
    let crashed = dbinit()
        .args(["init", "--json", "--database-url", &url])
        .args(args)
        .env("DBINIT_CRASH_AT", "mysql.statement.before:12")
        .output()
        .unwrap();
    assert_eq!(crashed.status.signal(), Some(9), "{}", stderr(&crashed));
    let count = |sql: &str| scalar_blocking(&url, sql);
    assert_eq!(
        count("SELECT group_concat(state ORDER BY statement) FROM dbinit_statement_journal"),
        "done,started"
    );
    for _ in 0..2 {
        let out = init(&url, &args);
        assert_eq!(code(&out), 41, "{}", stderr(&out));
        let err = json(&out)["error"]["message"].to_string();
        assert!(err.contains("1054") && err.contains("statement 2"), "{err}");
        assert_eq!(count("SELECT count(*) FROM refinery_schema_history"), "5");
    }
    // The fix resumes at the view.
    let fixed = dbinit_tests::cli::migration_dir(
        "mysql",
        &[(
            "V6__view",
            "CREATE TABLE a6 (x INT);\nCREATE VIEW v6 AS SELECT x FROM a6;",
        )],
    );
    let out = init(
        &url,
        &["--no-seed", "--migrations", fixed.path().to_str().unwrap()],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(count("SELECT count(*) FROM refinery_schema_history"), "6");
}
