//! SQLite under faults: read-only directories, a full disk, another
//! application's database, a writer that holds the lock too long. Each ends
//! in a clear error or a correct recovery, and an existing database is never
//! overwritten, truncated or re-initialized.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use dbinit_tests::dump::dump_blocking;

use dbinit_tests::cli::stderr;

fn dbinit() -> Command {
    dbinit_tests::cli::command(env!("CARGO_BIN_EXE_dbinit-demo"))
}

fn url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

fn init(db: &Path) -> Output {
    dbinit()
        .args(["init", "--database-url", &url(db)])
        .output()
        .unwrap()
}

/// Runs the binary as an unprivileged user when we are root, so that file
/// permissions apply.
fn unprivileged(args: &[&str]) -> Output {
    dbinit_tests::cli::Unprivileged::new(env!("CARGO_BIN_EXE_dbinit-demo"))
        .command()
        .args(args)
        .output()
        .unwrap()
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn read_only_directory_is_a_clear_error_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    chmod(dir.path(), 0o755);
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    chmod(&locked, 0o555);
    let db = locked.join("new.db");
    let out = unprivileged(&["init", "--database-url", &url(&db)]);
    assert_eq!(out.status.code(), Some(22), "{}", stderr(&out));
    assert!(stderr(&out).contains("hint:"), "{}", stderr(&out));
    assert!(!db.exists());

    // An existing, ready database (and its lock file) this user may read
    // but not write.
    chmod(&locked, 0o755);
    let ready = locked.join("ready.db");
    assert!(init(&ready).status.success());
    chmod(&ready, 0o444);
    chmod(&locked.join("ready.db.lock"), 0o444);
    chmod(&locked, 0o555);
    let before = std::fs::read(&ready).unwrap();
    let out = unprivileged(&["init", "--database-url", &url(&ready)]);
    assert_eq!(out.status.code(), Some(22), "{}", stderr(&out));
    assert!(stderr(&out).contains("hint:"), "{}", stderr(&out));
    assert!(
        std::fs::read(&ready).unwrap() == before,
        "the database changed"
    );
    chmod(&locked, 0o755);
}

#[test]
fn full_disk_is_a_clear_error_and_a_rerun_converges() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference.db");
    assert!(init(&reference).status.success());
    let db = dir.path().join("full.db");
    // A 48 KiB file size limit, with SIGXFSZ ignored so writes fail with EFBIG
    // the way they do on a full disk.
    let script = format!(
        "trap '' XFSZ; ulimit -f 48; exec '{}' init --database-url '{}'",
        env!("CARGO_BIN_EXE_dbinit-demo"),
        url(&db)
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .env("DBINIT_ADMIN_PASSWORD", dbinit_tests::cli::ADMIN_PASSWORD)
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(71), "{err}");
    assert!(err.contains("disk is full"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    let rerun = init(&db);
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    assert_eq!(dump_blocking(&url(&db)), dump_blocking(&url(&reference)));
}

#[test]
fn another_applications_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("theirs.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers VALUES (1, 'Ada');")
        .unwrap();
    drop(conn);
    let before = std::fs::read(&db).unwrap();
    let out = init(&db);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(40), "{err}");
    assert!(
        err.contains("already has 1 tables (customers) but no migration history"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "another application's database was changed"
    );
}

#[test]
fn a_writer_holding_the_lock_past_busy_timeout_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("busy.db");
    assert!(init(&db).status.success());
    let writer = rusqlite::Connection::open(&db).unwrap();
    writer
        .execute_batch("BEGIN IMMEDIATE; UPDATE tenants SET name = name;")
        .unwrap();
    let impatient_init = || {
        dbinit()
            .args([
                "init",
                "--busy-timeout",
                "200ms",
                "--database-url",
                &url(&db),
            ])
            .output()
            .unwrap()
    };
    // A no-op needs no write lock: it reads past the writer.
    let out = impatient_init();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // With the admin gone, the seeder must write: it waits, then says why.
    writer
        .execute_batch(
            "ROLLBACK; DELETE FROM user_roles; DELETE FROM users; \
             BEGIN IMMEDIATE; UPDATE tenants SET name = name;",
        )
        .unwrap();
    let out = impatient_init();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(70), "{err}");
    assert!(err.contains("database is locked"), "{err}");
    assert!(
        err.contains("holds a write lock longer than the busy timeout"),
        "{err}"
    );
    writer.execute_batch("ROLLBACK").unwrap();
    drop(writer);
    assert!(init(&db).status.success());
}

/// What a directory holds, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A path SQLite could open but not use (no room for `-journal` in the
/// name, or longer than SQLite takes) is refused before anything is made;
/// a path through directories that do not exist makes only the ones it
/// ends up in.
#[test]
fn unusable_paths_are_refused_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let long_name = dir.path().join("a".repeat(251));
    let deep = dir
        .path()
        .join("b".repeat(200))
        .join("c".repeat(200))
        .join(format!("{}.db", "d".repeat(100)));
    for (db, says) in [
        (&long_name, "its file name is 251 bytes"),
        (&deep, "SQLite opens paths of at most 504 bytes"),
    ] {
        let out = init(db);
        assert_eq!(out.status.code(), Some(10), "{}", stderr(&out));
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
        assert!(
            stderr(&out).contains("nothing was created"),
            "{}",
            stderr(&out)
        );
        assert_eq!(entries(dir.path()), Vec::<String>::new());
    }
    // The longest name that leaves room for `-journal` works.
    let longest = dir.path().join("e".repeat(247));
    assert!(init(&longest).status.success());

    let strays = tempfile::tempdir().unwrap();
    let out = dbinit()
        .args(["init", "--no-seed", "--database-url"])
        .arg(format!(
            "sqlite://{}/x/../y/../dd.db",
            strays.path().display()
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        entries(strays.path())
            .iter()
            .all(|n| n.starts_with("dd.db")),
        "{:?}",
        entries(strays.path())
    );
    // A directory that does not exist yet is made, once.
    let nested = strays.path().join("new/../made/app.db");
    assert!(init(&nested).status.success());
    assert!(strays.path().join("made/app.db").is_file());
    assert!(!strays.path().join("new").exists());
    // Climbing back into a linked directory resolves the link, as naming
    // it directly does: the database is where the link leads.
    let real = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(real.path(), strays.path().join("linked")).unwrap();
    assert!(init(&strays.path().join("gone/../linked/app.db"))
        .status
        .success());
    assert!(real.path().join("app.db").is_file());
    assert!(!strays.path().join("gone").exists());
}

/// A database named like another's `-journal`, `-wal`, `-shm` or `.lock`
/// would be deleted or overwritten by a run on that other database: it is
/// refused, and a database found where a companion file goes is never
/// touched.
#[test]
fn databases_named_like_another_ones_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for suffix in ["-journal", "-wal", "-shm", ".lock"] {
        let out = init(&dir.path().join(format!("y.db{suffix}")));
        assert_eq!(out.status.code(), Some(10), "{suffix}: {}", stderr(&out));
        assert!(stderr(&out).contains("named like the"), "{}", stderr(&out));
        assert_eq!(entries(dir.path()), Vec::<String>::new());
    }
    // One made by another program, where a companion of ours would go.
    let theirs = dir.path().join("x.db-wal");
    rusqlite::Connection::open(&theirs)
        .and_then(|c| {
            c.execute_batch("PRAGMA journal_mode = DELETE; CREATE TABLE kept (x INTEGER);")
        })
        .unwrap();
    let before = std::fs::read(&theirs).unwrap();
    let out = init(&dir.path().join("x.db"));
    assert_eq!(out.status.code(), Some(23), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is a SQLite database of its own"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&theirs).unwrap(), before);
    assert!(!dir.path().join("x.db").exists());
}
