//! MySQL migration scripts through the engine, against the real MariaDB
//! `cargo xtask test` starts: a script of data changes is atomic, one with
//! DDL is journaled and resumes where it failed, a change to its committed
//! part is refused, transaction control is refused, and session settings
//! do not leak from one script into the next; refinery's own MySQL driver
//! finds nothing to do on what dbinit applied. (Crashes: `crash.rs`.)

use dbinit_core::engine;
use dbinit_core::{ConnectOptions, DatabaseUrl, ErrorKind, MigrationSet, Session, Value};
use dbinit_tests::{mysql_url, unique_database};

async fn open(prefix: &str) -> Box<dyn Session> {
    open_url(&mysql_url(&unique_database(prefix))).await
}

async fn open_url(url: &str) -> Box<dyn Session> {
    dbinit_mysql::link();
    let url = DatabaseUrl::parse(url).unwrap();
    let connector = url.connector().unwrap().make();
    connector
        .open(&url, &ConnectOptions::default())
        .await
        .unwrap()
        .0
}

/// A migration set in a temporary directory.
fn set(files: &[(&str, &str)]) -> (tempfile::TempDir, MigrationSet) {
    let dir = tempfile::tempdir().unwrap();
    for (stem, sql) in files {
        std::fs::write(dir.path().join(format!("{stem}.sql")), sql).unwrap();
    }
    let set = MigrationSet::from_dir(dir.path()).unwrap();
    (dir, set)
}

/// Plans and applies `set`; the number applied.
async fn apply(s: &mut dyn Session, set: &MigrationSet) -> Result<usize, dbinit_core::CoreError> {
    let plan = engine::plan(s, set).await?;
    let done = engine::apply(s, &plan.pending).await.map_err(|b| b.error)?;
    Ok(done.len())
}

async fn int(s: &mut dyn Session, sql: &str) -> i64 {
    match s.query(sql, &[]).await.unwrap()[0].values() {
        [Value::Int(n)] => *n,
        other => panic!("{sql}: {other:?}"),
    }
}

async fn tables(s: &mut dyn Session) -> Vec<String> {
    s.tables().await.unwrap()
}

const DDL: &str = "CREATE TABLE a (id INT PRIMARY KEY);\n\
                   INSERT INTO a VALUES (1);\n\
                   CREATE TABLE b (id INT PRIMARY KEY);\n\
                   INSERT INTO b VALUES (1);\n\
                   CREATE TABLE c (id INT PRIMARY KEY, b_id INT REFERENCES b (id));\n";

#[tokio::test]
async fn a_script_of_data_changes_is_atomic() {
    let mut s = open("myj_dml").await;
    let (_d1, base) = set(&[("V1__t", "CREATE TABLE t (id INT PRIMARY KEY);")]);
    apply(&mut *s, &base).await.unwrap();
    let (_d2, with_dml) = set(&[
        ("V1__t", "CREATE TABLE t (id INT PRIMARY KEY);"),
        (
            "V2__rows",
            "INSERT INTO t VALUES (1);\nUPDATE t SET id = 2;\nINSERT INTO t VALUES (2);",
        ),
    ]);
    let err = apply(&mut *s, &with_dml)
        .await
        .expect_err("a duplicate key");
    assert_eq!(err.kind(), ErrorKind::MigrationFailed);
    assert!(err.to_string().contains("statement 3 at line 3"), "{err}");
    // Rolled back with its history row; nothing journaled.
    assert_eq!(int(&mut *s, "SELECT count(*) FROM t").await, 0);
    assert_eq!(engine::history(&mut *s).await.unwrap().len(), 1);
    assert!(s.interrupted().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_script_with_ddl_resumes_after_the_statements_it_committed() {
    let mut s = open("myj_resume").await;
    let broken = DDL.replace("REFERENCES b (id)", "REFERENCES nowhere (id)");
    let (_d1, first) = set(&[("V1__abc", &broken)]);
    let err = apply(&mut *s, &first).await.expect_err("a bad reference");
    let text = err.to_string();
    assert_eq!(err.kind(), ErrorKind::MigrationFailed, "{text}");
    assert!(
        text.contains("statement 5 at line 5") && text.contains("resumes at statement 5"),
        "{text}"
    );
    assert!(
        text.contains("failed part way") && !text.contains("nothing of it was kept"),
        "{text}"
    );
    // What committed stays, journaled; the history has no row; the
    // database is not mistaken for another application's.
    assert_eq!(tables(&mut *s).await, ["a", "b"]);
    assert_eq!(s.interrupted().await.unwrap(), [1]);
    assert!(engine::history(&mut *s).await.unwrap().is_empty());

    // The fixed file resumes at statement 5: nothing runs twice.
    let (_d2, fixed) = set(&[("V1__abc", DDL)]);
    assert_eq!(apply(&mut *s, &fixed).await.unwrap(), 1);
    assert_eq!(tables(&mut *s).await, ["a", "b", "c"]);
    assert_eq!(int(&mut *s, "SELECT count(*) FROM a").await, 1);
    assert_eq!(int(&mut *s, "SELECT count(*) FROM b").await, 1);
    assert!(s.interrupted().await.unwrap().is_empty());
    let history = engine::history(&mut *s).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].checksum, fixed.migrations()[0].checksum());
}

#[tokio::test]
async fn a_change_to_the_committed_part_is_refused_and_named() {
    let mut s = open("myj_changed").await;
    let broken = DDL.replace("REFERENCES b (id)", "REFERENCES nowhere (id)");
    let (_d1, first) = set(&[("V1__abc", &broken)]);
    apply(&mut *s, &first).await.expect_err("a bad reference");
    let edited = DDL.replace("CREATE TABLE b (id INT", "CREATE TABLE b (id BIGINT");
    let (_d2, edited) = set(&[("V1__abc", &edited)]);
    let err = apply(&mut *s, &edited)
        .await
        .expect_err("an edited statement");
    let text = format!("{err} {}", err.hint().unwrap_or_default());
    assert_eq!(err.kind(), ErrorKind::MigrationValidation, "{text}");
    assert!(
        text.contains("statement 3 (line 3) is not the one that ran")
            && text.contains("DELETE FROM dbinit_statement_journal WHERE version = 1"),
        "{text}"
    );
    // Nothing ran: c is still missing, the journal still says 4 statements.
    assert_eq!(tables(&mut *s).await, ["a", "b"]);
    assert_eq!(
        int(&mut *s, "SELECT count(*) FROM dbinit_statement_journal").await,
        4
    );
}

#[tokio::test]
async fn transaction_control_in_a_script_is_refused_before_anything_runs() {
    let mut s = open("myj_txn").await;
    for (i, sql) in [
        "CREATE TABLE x (id INT);\nCOMMIT;",
        "CREATE TABLE x (id INT);\nSET autocommit = 0;",
        "START TRANSACTION;\nCREATE TABLE x (id INT);",
    ]
    .into_iter()
    .enumerate()
    {
        let (_d, bad) = set(&[("V1__x", sql)]);
        let err = apply(&mut *s, &bad).await.expect_err(sql);
        assert!(
            err.to_string().contains("controls the transaction"),
            "{i}: {err}"
        );
        assert!(tables(&mut *s).await.is_empty(), "{i}: something ran");
    }
}

#[tokio::test]
async fn session_settings_do_not_leak_into_the_next_script() {
    let mut s = open("myj_reset").await;
    let other = unique_database("myj_other");
    s.execute_batch(&format!("CREATE DATABASE `{other}`"))
        .await
        .unwrap();
    let (_d, set) = set(&[
        (
            "V1__loose",
            &format!(
                "SET FOREIGN_KEY_CHECKS = 0;\nSET sql_mode = '';\nSET time_zone = '+05:00';\n\
                 CREATE TABLE p (id INT PRIMARY KEY);\nUSE `{other}`;"
            ),
        ),
        (
            "V2__strict",
            "CREATE TABLE q (id INT PRIMARY KEY, p_id INT, FOREIGN KEY (p_id) REFERENCES p (id));",
        ),
    ]);
    let settings = "SELECT @@time_zone, @@sql_mode, @@foreign_key_checks";
    let before = s.query(settings, &[]).await.unwrap();
    assert_eq!(apply(&mut *s, &set).await.unwrap(), 2);
    // V2 ran in our database, and the history is there too.
    assert_eq!(tables(&mut *s).await, ["p", "q"]);
    let after = s.query(settings, &[]).await.unwrap();
    assert_eq!(before[0].values(), after[0].values());
    // Foreign keys are checked again.
    let err = s
        .execute("INSERT INTO q VALUES (1, 42)", &[])
        .await
        .expect_err("a foreign key violation");
    assert!(err.to_string().contains("1452"), "{err}");
    s.execute_batch(&format!("DROP DATABASE `{other}`"))
        .await
        .unwrap();
}

#[tokio::test]
async fn refinerys_own_driver_finds_nothing_to_do() {
    mod embedded {
        refinery::embed_migrations!("../migrations/mysql");
    }
    let url = mysql_url(&unique_database("myj_refinery"));
    dbinit_mysql::link();
    let parsed = DatabaseUrl::parse(&url).unwrap();
    let mut s = parsed
        .connector()
        .unwrap()
        .make()
        .open(&parsed, &ConnectOptions::default())
        .await
        .unwrap()
        .0;
    let runner = embedded::migrations::runner();
    let ours = MigrationSet::from_refinery("embedded", runner.get_migrations()).unwrap();
    assert_eq!(apply(&mut *s, &ours).await.unwrap(), 5);
    drop(s);

    let mut pool = mysql_async::Pool::from_url(url.as_str()).unwrap();
    let theirs = runner
        .get_applied_migrations_async(&mut pool)
        .await
        .unwrap();
    assert_eq!(theirs.len(), 5);
    for (applied, file) in theirs.iter().zip(runner.get_migrations()) {
        assert_eq!(applied.checksum(), file.checksum(), "{applied}");
    }
    let report = embedded::migrations::runner()
        .set_abort_divergent(true)
        .set_abort_missing(true)
        .run_async(&mut pool)
        .await
        .unwrap();
    assert!(
        report.applied_migrations().is_empty(),
        "refinery found work to redo"
    );
    pool.disconnect().await.unwrap();
}

#[tokio::test]
async fn a_script_cannot_resume_past_session_state_a_new_session_lacks() {
    let url = mysql_url(&unique_database("myj_lost"));
    let mut s = open_url(&url).await;
    let script = |third: &str| {
        format!(
            "SET sql_mode = 'STRICT_ALL_TABLES';\nCREATE TEMPORARY TABLE tmp (x INT);\n\
             CREATE TABLE a (x INT);\n{third}"
        )
    };
    let (_d1, first) = set(&[("V1__tmp", &script("INSERT INTO nowhere SELECT x FROM tmp;"))]);
    apply(&mut *s, &first).await.expect_err("no table nowhere");
    drop(s);
    // A new session: the setting can be set again, the temporary table not.
    let mut s = open_url(&url).await;
    let (_d2, fixed) = set(&[("V1__tmp", &script("INSERT INTO a SELECT x FROM tmp;"))]);
    let err = apply(&mut *s, &fixed).await.expect_err("tmp is gone");
    let text = format!("{err} {}", err.hint().unwrap_or_default());
    assert!(
        text.contains("statement 2 (line 2) left session state")
            && text.contains("DELETE FROM dbinit_statement_journal WHERE version = 1"),
        "{text}"
    );
    assert!(engine::history(&mut *s).await.unwrap().is_empty());
}
