//! What an adversarial review found outside the test list (issue 7), on
//! SQLite and the CLI: links, foreign companion files, secrets nobody saw,
//! late prerequisites, signals, echoed SQL, inputs that used to panic.
//! Every test fails on the code before the fix.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use dbinit_tests::cli::{exit_code as code, stderr, stdout_json as json};

fn dbinit() -> Command {
    dbinit_tests::cli::command(env!("CARGO_BIN_EXE_dbinit-demo"))
}

fn url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

fn init(db: &Path, extra: &[&str]) -> Output {
    dbinit()
        .args(["init", "--database-url", &url(db)])
        .args(extra)
        .output()
        .unwrap()
}

fn tables(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE type = 'table'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// No run ends in a panic (101), whatever it was given.
fn assert_no_panic(out: &Output) {
    assert_ne!(code(out), 101, "panicked: {}", stderr(out));
    assert!(!stderr(out).contains("panicked"), "{}", stderr(out));
}

#[test]
fn a_symlinked_lock_file_is_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.txt");
    fs::write(&victim, "data\n").unwrap();
    let db = dir.path().join("app.db");
    symlink(&victim, dir.path().join("app.db.lock")).unwrap();
    let out = init(&db, &["--no-seed"]);
    assert_eq!(code(&out), 23, "{}", stderr(&out));
    assert!(stderr(&out).contains("symbolic link"), "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "data\n");

    // A dangling link: its target is never created.
    fs::remove_file(dir.path().join("app.db.lock")).unwrap();
    let target = dir.path().join("created-through-link");
    symlink(&target, dir.path().join("app.db.lock")).unwrap();
    let out = init(&db, &["--no-seed"]);
    assert_eq!(code(&out), 23, "{}", stderr(&out));
    assert!(!target.exists());

    // A hard link to another file is refused too.
    fs::remove_file(dir.path().join("app.db.lock")).unwrap();
    fs::hard_link(&victim, dir.path().join("app.db.lock")).unwrap();
    let out = init(&db, &["--no-seed"]);
    assert_eq!(code(&out), 23, "{}", stderr(&out));
    assert_eq!(fs::read_to_string(&victim).unwrap(), "data\n");
}

#[test]
fn databases_and_companions_behind_links_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.db");
    assert_eq!(code(&init(&real, &["--no-seed"])), 0);
    let before = fs::read(&real).unwrap();

    // The database itself through a link: refused, with the real path.
    let link = dir.path().join("link.db");
    symlink(&real, &link).unwrap();
    let out = init(&link, &["--no-seed"]);
    assert_eq!(code(&out), 23, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(real.to_str().unwrap()),
        "{}",
        stderr(&out)
    );

    // A dangling database link: nothing is created at its target.
    let nowhere = dir.path().join("nowhere.db");
    symlink(&nowhere, dir.path().join("dangling.db")).unwrap();
    let out = init(&dir.path().join("dangling.db"), &["--no-seed"]);
    assert_eq!(code(&out), 23, "{}", stderr(&out));
    assert!(!nowhere.exists());

    // A -wal or -journal that is a link: SQLite would write through it.
    for suffix in ["-wal", "-journal", "-shm"] {
        let victim = dir.path().join(format!("victim{suffix}"));
        fs::write(&victim, "keep").unwrap();
        let companion = dir.path().join(format!("real.db{suffix}"));
        let _ = fs::remove_file(&companion);
        symlink(&victim, &companion).unwrap();
        for args in [vec!["init"], vec!["status"], vec!["health"]] {
            let out = dbinit()
                .args(&args)
                .args(["--database-url", &url(&real)])
                .output()
                .unwrap();
            assert_eq!(code(&out), 23, "{args:?} {suffix}: {}", stderr(&out));
        }
        assert_eq!(fs::read_to_string(&victim).unwrap(), "keep");
        fs::remove_file(&companion).unwrap();
    }
    assert_eq!(fs::read(&real).unwrap(), before);

    // A companion hard-linked to another file would be written through too.
    for suffix in ["-wal", "-shm"] {
        let victim = dir.path().join(format!("linked-victim{suffix}"));
        fs::write(&victim, vec![b'V'; 100_000]).unwrap();
        let companion = dir.path().join(format!("real.db{suffix}"));
        let _ = fs::remove_file(&companion);
        fs::hard_link(&victim, &companion).unwrap();
        let out = dbinit()
            .args(["status", "--database-url", &url(&real)])
            .output()
            .unwrap();
        assert_eq!(code(&out), 23, "{suffix}: {}", stderr(&out));
        assert_eq!(fs::read(&victim).unwrap(), vec![b'V'; 100_000], "{suffix}");
        fs::remove_file(&companion).unwrap();
    }

    // Two names for one file (a hard link) would mean two locks.
    fs::hard_link(&real, dir.path().join("second-name.db")).unwrap();
    let out = init(&real, &["--no-seed"]);
    assert_eq!(code(&out), 23, "{}", stderr(&out));
    assert!(stderr(&out).contains("hard links"), "{}", stderr(&out));
}

#[test]
fn a_symlinked_parent_directory_shares_the_lock_of_the_real_path() {
    let dir = tempfile::tempdir().unwrap();
    let real_dir = dir.path().join("real");
    fs::create_dir(&real_dir).unwrap();
    symlink(&real_dir, dir.path().join("alias")).unwrap();
    let out = init(&dir.path().join("alias/app.db"), &["--no-seed"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(real_dir.join("app.db.lock").exists());
    // The same database by its other name is a no-op.
    let out = dbinit()
        .args([
            "init",
            "--json",
            "--no-seed",
            "--database-url",
            &url(&real_dir.join("app.db")),
        ])
        .output()
        .unwrap();
    assert_eq!(
        json(&out)["migrations"]["applied"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn a_foreign_wal_never_changes_the_database_file() {
    let dir = tempfile::tempdir().unwrap();
    let ours = dir.path().join("ours.db");
    assert_eq!(code(&init(&ours, &["--no-seed"])), 0);
    // Another database in WAL mode whose WAL still holds its frames.
    let other = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&other).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
         CREATE TABLE unrelated (x INTEGER); INSERT INTO unrelated VALUES (1), (2), (3);",
    )
    .unwrap();
    let copy = dir.path().join("copy.db");
    fs::copy(&ours, &copy).unwrap();
    fs::copy(
        dir.path().join("other.db-wal"),
        dir.path().join("copy.db-wal"),
    )
    .unwrap();
    drop(conn);
    let before = fs::read(&copy).unwrap();
    for args in [vec!["init", "--no-seed"], vec!["status"], vec!["health"]] {
        let out = dbinit()
            .args(&args)
            .args(["--database-url", &url(&copy)])
            .output()
            .unwrap();
        assert_no_panic(&out);
        assert_eq!(
            fs::read(&copy).unwrap(),
            before,
            "{args:?} changed the file: {}",
            stderr(&out)
        );
    }
}

#[test]
fn a_foreign_hot_journal_is_refused_and_the_file_stays_intact() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    assert_eq!(code(&init(&db, &["--no-seed"])), 0);
    let before = fs::read(&db).unwrap();
    // Another database's journal, taken while its writer was mid-transaction.
    let other = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&other).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = DELETE; CREATE TABLE t (x TEXT);
         WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 2000)
         INSERT INTO t SELECT hex(randomblob(100)) FROM c;
         PRAGMA cache_size = 1; BEGIN; UPDATE t SET x = upper(x) || 'z';",
    )
    .unwrap();
    fs::copy(
        dir.path().join("other.db-journal"),
        dir.path().join("app.db-journal"),
    )
    .unwrap();
    conn.execute_batch("ROLLBACK").unwrap();
    drop(conn);
    for args in [vec!["status"], vec!["health"], vec!["init", "--no-seed"]] {
        let out = dbinit()
            .args(&args)
            .args(["--database-url", &url(&db)])
            .output()
            .unwrap();
        assert_eq!(code(&out), 70, "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("unfinished transaction"),
            "{}",
            stderr(&out)
        );
        assert_eq!(fs::read(&db).unwrap(), before, "{args:?} changed the file");
    }
}

#[test]
fn a_signal_stops_a_wait_for_a_locked_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    assert_eq!(code(&init(&db, &["--no-seed"])), 0);
    // Another program writes and does not let go.
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let migrations = dbinit_tests::cli::migration_dir(
        "sqlite",
        &[("V6__waits", "CREATE TABLE waits (x INTEGER);")],
    );
    let started = Instant::now();
    let (out, took) = dbinit_tests::cli::signal_when(
        dbinit()
            .args([
                "init",
                "--json",
                "--no-seed",
                "--busy-timeout",
                "60s",
                "--migrations",
            ])
            .arg(migrations.path())
            .args(["--database-url", &url(&db)]),
        || started.elapsed() > Duration::from_millis(1500),
        nix::sys::signal::Signal::SIGINT,
    );
    assert_eq!(code(&out), 130, "{}", stderr(&out));
    assert!(
        took < Duration::from_secs(10),
        "the busy wait ignored the signal"
    );
    holder.execute_batch("ROLLBACK").unwrap();
    assert_eq!(
        holder
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'waits'",
                [],
                |r| { r.get::<_, i64>(0) }
            )
            .unwrap(),
        0
    );
}

#[test]
fn password_files_that_are_not_files_fail_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("password.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for (i, source) in [fifo.as_path(), Path::new("/dev/zero")]
        .into_iter()
        .enumerate()
    {
        let started = Instant::now();
        let out = dbinit()
            .env_remove("DBINIT_ADMIN_PASSWORD")
            .env("DBINIT_ADMIN_PASSWORD_FILE", source)
            .args([
                "init",
                "--database-url",
                &url(&dir.path().join(format!("{i}.db"))),
            ])
            .output()
            .unwrap();
        assert_eq!(code(&out), 50, "{}: {}", source.display(), stderr(&out));
        assert!(
            stderr(&out).contains("not a regular file"),
            "{}",
            stderr(&out)
        );
        assert!(started.elapsed() < Duration::from_secs(30));
    }
}

#[test]
fn a_fifo_or_device_is_not_a_database_and_nothing_is_left_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.db");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    for path in [fifo.as_path(), Path::new("/dev/zero")] {
        let started = Instant::now();
        let out = init(path, &["--no-seed"]);
        assert_eq!(code(&out), 23, "{}: {}", path.display(), stderr(&out));
        assert!(started.elapsed() < Duration::from_secs(30));
    }
    let left: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["pipe.db"]);
}

#[test]
fn sqlcipher_keys_and_unknown_parameters_are_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    for query in [
        "key=Zq-secret-1",
        "hexkey=00ff",
        "cache=shared&vfs=unix-none",
    ] {
        let db = dir.path().join("app.db");
        let out = dbinit()
            .args(["init", "--database-url", &format!("{}?{query}", url(&db))])
            .output()
            .unwrap();
        assert_eq!(code(&out), 10, "{query}: {}", stderr(&out));
        assert!(!stderr(&out).contains("Zq-secret"), "{}", stderr(&out));
        assert!(!db.exists(), "{query}");
    }
}

#[test]
fn a_generated_password_nobody_can_see_is_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let read_only = dir.path().join("read-only.txt");
    fs::write(&read_only, "").unwrap();
    for sink in [
        "/dev/null",
        "/dev/full",
        "/dev/zero",
        read_only.to_str().unwrap(),
    ] {
        let db = dir.path().join(format!("{}.db", sink.replace('/', "_")));
        let stream = if sink == read_only.to_str().unwrap() {
            fs::File::open(sink).unwrap()
        } else {
            fs::OpenOptions::new().write(true).open(sink).unwrap()
        };
        let out = dbinit()
            .env_remove("DBINIT_ADMIN_PASSWORD")
            .args(["init", "--json", "--database-url", &url(&db)])
            .stderr(stream)
            .output()
            .unwrap();
        assert_eq!(code(&out), 50, "{sink}");
        let report = json(&out);
        assert!(
            report["error"]["message"]
                .as_str()
                .unwrap()
                .contains("cannot be shown"),
            "{report:#}"
        );
        let conn = rusqlite::Connection::open(&db).unwrap();
        let users: i64 = conn
            .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            users, 0,
            "{sink}: a user was stored with a password nobody saw"
        );
    }
    // Shown on a real stream: the report says a password was generated,
    // never which.
    let db = dir.path().join("shown.db");
    let out = dbinit()
        .env_remove("DBINIT_ADMIN_PASSWORD")
        .args(["init", "--json", "--database-url", &url(&db)])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let admin = json(&out)["seeders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "admin_user")
        .cloned()
        .unwrap();
    assert_eq!(
        admin["secrets_shown"],
        serde_json::json!(["generated password for admin user `admin`"])
    );
    let password = stderr(&out)
        .lines()
        .find_map(|l| l.strip_prefix("==> generated password for admin user `admin`: "))
        .unwrap()
        .to_owned();
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&password));
}

#[test]
fn production_prerequisites_are_checked_before_the_first_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("prod.db");
    let out = dbinit()
        .env_remove("DBINIT_ADMIN_PASSWORD")
        .args(["init", "--env", "production", "--database-url", &url(&db)])
        .output()
        .unwrap();
    assert_eq!(code(&out), 50, "{}", stderr(&out));
    assert!(stderr(&out).contains("never generated"), "{}", stderr(&out));
    assert_eq!(tables(&db), 0, "migrations ran before the check");

    // Once the admin exists, production needs no password source.
    assert_eq!(code(&init(&db, &[])), 0);
    let out = dbinit()
        .env_remove("DBINIT_ADMIN_PASSWORD")
        .args(["init", "--env", "production", "--database-url", &url(&db)])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn password_sources_are_strict() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("password");
    let run = |cmd: &mut Command, db: &str| {
        cmd.env_remove("DBINIT_ADMIN_PASSWORD")
            .args(["init", "--database-url", &url(&dir.path().join(db))])
            .output()
            .unwrap()
    };
    fs::write(&file, "first-line-long-enough\nsecond-line\n").unwrap();
    let out = run(dbinit().env("DBINIT_ADMIN_PASSWORD_FILE", &file), "a.db");
    assert_eq!(code(&out), 50, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("more than one line"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("first-line"), "{}", stderr(&out));

    fs::write(&file, "one-line-long-enough\n").unwrap();
    fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out = run(dbinit().env("DBINIT_ADMIN_PASSWORD_FILE", &file), "b.db");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("can be read by other users"),
        "{}",
        stderr(&out)
    );

    // Not UTF-8: an error, never "unset" (which would generate one).
    let out = dbinit()
        .env(
            "DBINIT_ADMIN_PASSWORD",
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(
                b"long-enough-\xff-password",
            ),
        )
        .args(["init", "--database-url", &url(&dir.path().join("d.db"))])
        .output()
        .unwrap();
    assert_eq!(code(&out), 50, "{}", stderr(&out));
    assert!(stderr(&out).contains("not valid UTF-8"), "{}", stderr(&out));
}

#[test]
fn a_failing_statement_in_a_large_migration_is_named_by_line_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let mut sql = String::from("CREATE TABLE a (x INTEGER);\nCREATE TABL broken;\n");
    for i in 0..20_000 {
        sql.push_str(&format!("INSERT INTO a VALUES ({i}); -- filler\n"));
    }
    sql.push_str("SELECT 'Zq-last-line-token';\n");
    let migrations = dbinit_tests::cli::migration_dir("sqlite", &[("V6__big", &sql)]);
    let out = dbinit()
        .args(["init", "--json", "--no-seed", "--migrations"])
        .arg(migrations.path())
        .args(["--database-url", &url(&dir.path().join("app.db"))])
        .output()
        .unwrap();
    assert_eq!(code(&out), 41, "{}", stderr(&out));
    assert!(stderr(&out).contains("at line 2"), "{}", stderr(&out));
    assert!(
        stderr(&out).len() < 4_000,
        "stderr is {} bytes",
        stderr(&out).len()
    );
    assert!(
        out.stdout.len() < 8_000,
        "stdout is {} bytes",
        out.stdout.len()
    );
    for text in [
        stderr(&out),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    ] {
        assert!(!text.contains("Zq-last-line-token"));
    }
}

#[test]
fn migrations_may_not_touch_the_history() {
    for (name, sql) in [
        ("V6__drop_history", "DROP TABLE refinery_schema_history;"),
        (
            "V6__rewrite_history",
            "DELETE FROM refinery_schema_history WHERE version = 1;",
        ),
        ("V6__writable_schema", "PRAGMA writable_schema = ON;"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        let migrations = dbinit_tests::cli::migration_dir("sqlite", &[(name, sql)]);
        let out = dbinit()
            .args(["init", "--no-seed", "--migrations"])
            .arg(migrations.path())
            .args(["--database-url", &url(&db)])
            .output()
            .unwrap();
        assert_eq!(code(&out), 41, "{name}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("{name}.sql")),
            "{}",
            stderr(&out)
        );
        // The five bundled migrations stay applied, and the next run says
        // the same thing instead of failing differently.
        let conn = rusqlite::Connection::open(&db).unwrap();
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM refinery_schema_history", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(rows, 5, "{name}");
    }
}

#[test]
fn health_and_status_accept_no_seed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let migrations = dbinit_tests::cli::migration_dir("sqlite", &[]);
    let common = |cmd: &str| {
        let mut c = dbinit();
        c.args([cmd, "--no-seed", "--migrations"])
            .arg(migrations.path())
            .args(["--database-url", &url(&db)]);
        c
    };
    assert_eq!(code(&common("init").output().unwrap()), 0);
    let out = common("health").output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = common("health")
        .args(["--watch", "10ms", "--ticks", "2"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(code(&common("status").output().unwrap()), 0);
}

#[test]
fn hostile_flags_and_file_names_get_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let db = url(&dir.path().join("app.db"));
    // Refused by the parser (2), the configuration (13), or the listener (71).
    for (args, expected) in [
        (vec!["init", "--busy-timeout", "25days"], 2),
        (vec!["init", "--lock-timeout", "99999999999999999s"], 2),
        (vec!["init", "--connect-timeout", "-1s"], 2),
        (vec!["health", "--watch", "0s"], 2),
        (vec!["health", "--watch", "1ns", "--ticks", "1"], 2),
        (vec!["health", "--watch", "9ms", "--ticks", "1"], 2),
        (vec!["health", "--watch", "10ms", "--ticks", "-1"], 2),
        (vec!["health", "--watch", "10ms", "--ticks", "0"], 2),
        (vec!["health", "--ticks", "3"], 2),
        (vec!["init", "--skip-check", "no_such_check"], 13),
        (vec!["health", "--skip-check", "connectivty"], 13),
        (vec!["health", "--depends-on", "=tcp://127.0.0.1:1"], 13),
        (vec!["health", "--depends-on", "q=tcp://127.0.0.1:1:2"], 13),
        (vec!["health", "--serve", "localhost"], 71),
        (vec!["health", "--serve", "127.0.0.1:99999"], 71),
    ] {
        let out = dbinit()
            .args(&args)
            .args(["--database-url", &db])
            .output()
            .unwrap();
        assert_no_panic(&out);
        assert_eq!(code(&out), expected, "{args:?}: {}", stderr(&out));
    }
    for file in [
        "|1__pipe.sql",
        "V99999999999__big.sql",
        "V1__a b.sql",
        "V1__x.sql.sql",
    ] {
        let migrations = tempfile::tempdir().unwrap();
        fs::write(migrations.path().join(file), "SELECT 1;").unwrap();
        let out = dbinit()
            .args(["init", "--no-seed", "--migrations"])
            .arg(migrations.path())
            .args(["--database-url", &db])
            .output()
            .unwrap();
        assert_no_panic(&out);
        assert_eq!(code(&out), 40, "{file}: {}", stderr(&out));
        assert!(stderr(&out).contains(file), "{file}: {}", stderr(&out));
    }
}

#[test]
fn help_names_the_migration_file_pattern() {
    let out = dbinit().args(["init", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("V<N>__<NAME>.sql"), "{help}");
    assert!(!help.contains("`V` __"), "{help}");
}

#[test]
fn sigterm_and_sigint_roll_back_release_the_lock_and_exit_with_their_codes() {
    for (signal, expected) in [
        (nix::sys::signal::Signal::SIGTERM, 143),
        (nix::sys::signal::Signal::SIGINT, 130),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("app.db");
        // Seconds of work in one statement, after a table it creates.
        let slow = "CREATE TABLE half_done (x INTEGER);
            WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400000000)
            SELECT count(*) FROM c;";
        let migrations = dbinit_tests::cli::migration_dir("sqlite", &[("V6__slow", slow)]);
        // Signalled once the slow migration runs: the five before it are applied.
        let applied = || {
            rusqlite::Connection::open(&db)
                .and_then(|c| {
                    c.query_row("SELECT count(*) FROM refinery_schema_history", [], |r| {
                        r.get::<_, i64>(0)
                    })
                })
                .is_ok_and(|n| n == 5)
        };
        let (out, took) = dbinit_tests::cli::signal_when(
            dbinit()
                .args(["init", "--json", "--no-seed", "--migrations"])
                .arg(migrations.path())
                .args(["--database-url", &url(&db)]),
            applied,
            signal,
        );
        assert_eq!(code(&out), expected, "{signal}: {}", stderr(&out));
        assert!(
            took < Duration::from_secs(20),
            "the statement was not cancelled"
        );
        let report = json(&out);
        assert_eq!(report["error"]["kind"], "interrupted", "{report:#}");
        // Rolled back: no half-applied migration; the lock is free at once.
        let conn = rusqlite::Connection::open(&db).unwrap();
        let half: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE name = 'half_done'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(half, 0, "{signal}");
        drop(conn);
        let fixed = dbinit_tests::cli::migration_dir("sqlite", &[("V6__slow", "SELECT 1;")]);
        let out = dbinit()
            .args(["init", "--no-seed", "--lock-timeout", "1s", "--migrations"])
            .arg(fixed.path())
            .args(["--database-url", &url(&db)])
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
    }
}

/// Found by the third review: a `.env` that does not parse used to be
/// quoted whole in a warning (password included), and the run went on with
/// the embedded default database.
#[test]
fn a_malformed_env_file_fails_without_quoting_it() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join(".env"),
        "DATABASE_URL=\"postgres://u:Zq-hunter2@127.0.0.1:1/x\n",
    )
    .unwrap();
    let out = dbinit()
        .current_dir(dir.path())
        .args(["init", "--no-seed"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 13, "{}", stderr(&out));
    assert!(stderr(&out).contains(".env"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("Zq-hunter2"), "{}", stderr(&out));
}

/// A checkout in a 0700 home: a user who may not enter a directory above
/// the current one cannot have a `.env` there, and runs as if there were
/// none. A `.env` that is there but unreadable is still an error.
#[test]
fn a_dotenv_behind_a_closed_directory_is_passed_over() {
    use std::os::unix::fs::PermissionsExt;
    let chmod = |p: &Path, mode| fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    let closed = tempfile::tempdir().unwrap();
    chmod(closed.path(), 0o700);
    let inside = closed.path().join("checkout");
    fs::create_dir(&inside).unwrap();
    chmod(&inside, 0o755);
    let open = tempfile::tempdir().unwrap();
    chmod(open.path(), 0o777);
    let db = open.path().join("app.db");
    let user = dbinit_tests::cli::Unprivileged::new(env!("CARGO_BIN_EXE_dbinit-demo"));
    let run = |cwd: &Path| {
        user.command()
            .current_dir(cwd)
            .args(["init", "--no-seed", "--database-url", &url(&db)])
            .output()
            .unwrap()
    };
    let out = run(&inside);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let unreadable = open.path().join("with-env");
    fs::create_dir(&unreadable).unwrap();
    chmod(&unreadable, 0o755);
    fs::write(
        unreadable.join(".env"),
        "DATABASE_URL=sqlite://elsewhere.db\n",
    )
    .unwrap();
    chmod(&unreadable.join(".env"), 0o600);
    let out = run(&unreadable);
    if nix::unistd::Uid::effective().is_root() {
        assert_eq!(code(&out), 13, "{}", stderr(&out));
        assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));
    }
}
