//! Storms: 32 `init` processes at once on a new database, on every backend
//! (and 16 on MySQL).
//! All succeed, migrations are applied once, seed rows exist once; with a
//! deliberately short lock timeout the losers exit with the lock-timeout
//! code and a rerun succeeds.

use std::process::{Child, Stdio};

use dbinit_tests::dump::dump_blocking;
use dbinit_tests::{mysql_url, pg_url, unique_database};

const STORM: usize = 32;

fn spawn(url: &str, extra: &[&str]) -> Child {
    dbinit_tests::cli::command(env!("CARGO_BIN_EXE_dbinit-demo"))
        .args(["init", "--json", "--database-url", url])
        .args(extra)
        .env("DBINIT_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dbinit-demo")
}

/// Runs a storm of `n` and returns each process's exit code and applied
/// count.
fn storm(url: &str, extra: &[&str], n: usize) -> Vec<(i32, usize)> {
    let children: Vec<Child> = (0..n).map(|_| spawn(url, extra)).collect();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            let code = out.status.code().expect("exited");
            let applied = serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .ok()
                .and_then(|r| r["migrations"]["applied"].as_array().map(Vec::len))
                .unwrap_or(0);
            (code, applied)
        })
        .collect()
}

fn check(url: &str, reference: &str, n: usize) {
    let results = storm(url, &[], n);
    assert!(results.iter().all(|(code, _)| *code == 0), "{results:?}");
    assert_eq!(
        results.iter().map(|(_, a)| a).sum::<usize>(),
        5,
        "migrations applied more than once"
    );
    let dump = dump_blocking(url);
    assert_eq!(dump, dump_blocking(reference));
    assert_eq!(dump.matches("\nuser admin").count(), 1, "{dump}");
    assert_eq!(dump.matches("\ntenant system").count(), 1, "{dump}");
}

fn reference(url: &str) -> String {
    let out = spawn(url, &[]).wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    url.to_owned()
}

#[test]
fn sqlite_storm_of_32() {
    let dir = tempfile::tempdir().unwrap();
    let reference = reference(&format!("sqlite://{}/reference.db", dir.path().display()));
    check(
        &format!("sqlite://{}/storm.db", dir.path().display()),
        &reference,
        STORM,
    );
}

#[test]
fn postgres_storm_of_32() {
    let reference = reference(&pg_url(&unique_database("storm_ref")));
    check(&pg_url(&unique_database("storm32")), &reference, STORM);
}

#[test]
fn mysql_storms_of_16_and_32() {
    let reference = reference(&mysql_url(&unique_database("storm_ref")));
    for n in [16, STORM] {
        check(&mysql_url(&unique_database("storm")), &reference, n);
    }
}

#[test]
fn short_lock_timeout_losers_exit_30_and_a_rerun_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        format!("sqlite://{}/short.db", dir.path().display()),
        pg_url(&unique_database("storm_short")),
        mysql_url(&unique_database("storm_short")),
    ] {
        // A slow first migration keeps the winner inside the lock: long
        // enough that 32 processes started one after another on a loaded
        // machine arrive while it holds it.
        let migrations = tempfile::tempdir().unwrap();
        let slow = match url.split(':').next() {
            Some("sqlite") => "CREATE TABLE slow (id INTEGER); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT count(*) FROM c;",
            Some("mysql") => "CREATE TABLE slow (id INTEGER); SELECT SLEEP(4);",
            _ => "CREATE TABLE slow (id INTEGER); SELECT pg_sleep(4);",
        };
        std::fs::write(migrations.path().join("V1__slow.sql"), slow).unwrap();
        let dir_arg = migrations.path().display().to_string();
        let results = storm(
            &url,
            &[
                "--no-seed",
                "--lock-timeout",
                "100ms",
                "--migrations",
                &dir_arg,
            ],
            STORM,
        );
        let winners = results.iter().filter(|(code, _)| *code == 0).count();
        let losers = results.iter().filter(|(code, _)| *code == 30).count();
        assert!(winners >= 1, "{url}: {results:?}");
        assert_eq!(
            winners + losers,
            STORM,
            "{url}: only 0 or 30 expected: {results:?}"
        );
        assert!(
            losers >= 1,
            "{url}: the lock was never contended: {results:?}"
        );
        let rerun = spawn(&url, &["--no-seed", "--migrations", &dir_arg])
            .wait_with_output()
            .unwrap();
        assert!(
            rerun.status.success(),
            "{url}: {}",
            String::from_utf8_lossy(&rerun.stderr)
        );
    }
}
