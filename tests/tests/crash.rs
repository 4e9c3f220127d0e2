//! Crash convergence: kill `init` with SIGKILL at every crash point (inside a
//! migration's transaction, between migrations, around each seeder's commit,
//! while holding the lock, during health checks), rerun, and require the
//! same database as one uninterrupted run. Every backend; on MySQL also
//! before and after each statement of scripts whose DDL commits implicitly
//! (the statement journal).
//!
//! The `dbinit-demo` binary built for tests has `dbinit-core/fault-injection`:
//! `DBINIT_CRASH_AT=NAME:N` kills it the Nth time it reaches point NAME.
//! Kills that land in the database's own work, where no crash point of
//! ours can be, come from a file size limit (SQLite: the kernel kills the
//! process at its first write past the limit) and from a timer (both).

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use dbinit_tests::cli::stderr;
use dbinit_tests::dump::{dump_blocking, execute_blocking};
use dbinit_tests::Backend;

/// Migrations in the set: the bundled five plus these generated ones.
const EXTRA_MIGRATIONS: usize = 15;
/// The extra migration that runs without a transaction.
const NO_TRANSACTION: usize = 10;
/// `rollback --to` this version undoes the newest three migrations.
const ROLLBACK_TO: usize = 5 + EXTRA_MIGRATIONS - 3;

/// A URL for a database nobody has used yet.
fn fresh_url(backend: Backend, dir: &Path) -> String {
    backend.fresh_url(dir, "crash")
}

fn health_checks(backend: Backend) -> usize {
    match backend {
        Backend::Sqlite => 5,
        Backend::Postgres | Backend::Mysql => 4,
    }
}

/// MySQL statements crashed before and after: the bundled schema's ten,
/// the first extra migration's five ([`MYSQL_V6`]) and the next one's three.
const MYSQL_STATEMENTS: usize = 10 + 5 + 3;

/// MySQL's first extra migration: a setting a resumed script must set
/// again in its new session, and a foreign key to a table made after it.
const MYSQL_V6: &str = "SET FOREIGN_KEY_CHECKS = 0;\n\
    CREATE TABLE extra_6 (id INTEGER PRIMARY KEY, later_id BIGINT, label VARCHAR(255) NOT NULL, \
    FOREIGN KEY (later_id) REFERENCES later_6 (id));\n\
    CREATE TABLE later_6 (id BIGINT PRIMARY KEY);\n\
    INSERT INTO extra_6 (id, label) VALUES (1, 'first'), (2, 'second');\n\
    CREATE INDEX extra_6_label ON extra_6 (label);\n";

/// The bundled schema of `backend` plus small extra migrations.
fn migration_set(backend: Backend) -> tempfile::TempDir {
    let insert_new = match backend {
        Backend::Mysql => "INSERT IGNORE INTO",
        Backend::Sqlite | Backend::Postgres => "INSERT INTO",
    };
    let or_nothing = match backend {
        Backend::Mysql => "",
        Backend::Sqlite | Backend::Postgres => " ON CONFLICT DO NOTHING",
    };
    let extra: Vec<(String, String)> = (6..6 + EXTRA_MIGRATIONS)
        .map(|v| {
            if v == 6 && backend == Backend::Mysql {
                return (format!("V{v}__extra_{v}"), MYSQL_V6.to_owned());
            }
            if v == NO_TRANSACTION {
                // Outside a transaction, so written to be re-run.
                return (
                    format!("V{v}__extra_{v}"),
                    format!(
                        "-- dbinit:no-transaction\n\
                         CREATE TABLE IF NOT EXISTS extra_{v} (id INTEGER PRIMARY KEY, label VARCHAR(255) NOT NULL);\n\
                         CREATE INDEX IF NOT EXISTS extra_{v}_label ON extra_{v} (label);\n\
                         {insert_new} extra_{v} (id, label) VALUES (1, 'first'), (2, 'second'){or_nothing};\n"
                    ),
                );
            }
            (
                format!("V{v}__extra_{v}"),
                format!(
                    "CREATE TABLE extra_{v} (id INTEGER PRIMARY KEY, tenant_id BIGINT REFERENCES tenants (id), label VARCHAR(255) NOT NULL);\n\
                     CREATE INDEX extra_{v}_label ON extra_{v} (label);\n\
                     INSERT INTO extra_{v} (id, label) VALUES (1, 'first'), (2, 'second');\n"
                ),
            )
        })
        .collect();
    let downs: Vec<(String, String)> = (ROLLBACK_TO + 1..=5 + EXTRA_MIGRATIONS)
        .map(|v| {
            (
                format!("V{v}__extra_{v}.down"),
                format!("DROP TABLE extra_{v};\n"),
            )
        })
        .collect();
    let extra: Vec<(&str, &str)> = extra
        .iter()
        .chain(&downs)
        .map(|(n, s)| (n.as_str(), s.as_str()))
        .collect();
    let dir = dbinit_tests::cli::migration_dir(backend.name(), &extra);
    write_seeds(&dir.path().join("seeds"));
    dir
}

/// Rows in the data file that loads in batches (the last one partial).
const FILE_ROWS: usize = 10_000;
/// Calls for a batch during one `init`: the big file's batches and its
/// end, then the small file's one batch and its end.
const BATCH_CALLS: usize = FILE_ROWS.div_ceil(2048) + 1 + 2;
/// Seeders in one run: the three demo seeders and the two data files.
const SEEDERS: usize = 5;

/// Data files for the extra tables: a big CSV upserted over the rows the
/// migration inserted, and a small JSON Lines file. `--migrations` ignores
/// them (not `.sql`); the demo binary passes `--seeds`.
fn write_seeds(dir: &Path) {
    let development = dir.join("development");
    std::fs::create_dir_all(&development).unwrap();
    std::fs::write(
        development.join("seeds.toml"),
        "[[file]]\npath = \"rows.csv\"\ntable = \"extra_7\"\nkey = [\"id\"]\n\
         [[file]]\npath = \"labels.jsonl\"\ntable = \"extra_8\"\nkey = [\"id\"]\n",
    )
    .unwrap();
    let mut csv = String::from("id,label\n");
    for i in 1..=FILE_ROWS {
        csv += &format!("{i},row {i}\n");
    }
    std::fs::write(development.join("rows.csv"), csv).unwrap();
    std::fs::write(
        development.join("labels.jsonl"),
        "{\"id\": 2, \"label\": \"from the file\"}\n{\"id\": 3, \"label\": \"new\"}\n",
    )
    .unwrap();
}

/// How a run is stopped short, if it is.
enum Stop {
    Never,
    /// SIGKILL at a crash point of ours: `NAME:N`.
    At(String),
    /// SIGKILL this long after the start, wherever the run is.
    After(Duration),
    /// The kernel's SIGXFSZ at the first write past this many bytes into
    /// any file: a kill inside SQLite's own I/O, wherever it writes.
    FileSizeOver(u64),
}

/// `dbinit-demo COMMAND...` on `url` with `migrations`, stopped as `stop` says.
fn dbinit(command: &[&str], url: &str, migrations: &Path, stop: Stop) -> Output {
    let bin = env!("CARGO_BIN_EXE_dbinit-demo");
    let mut cmd = match &stop {
        Stop::FileSizeOver(bytes) => {
            let mut cmd = dbinit_tests::cli::command("prlimit");
            cmd.arg(format!("--fsize={bytes}")).args(["--", bin]);
            cmd
        }
        _ => dbinit_tests::cli::command(bin),
    };
    cmd.args(command)
        .args([
            "--lock-timeout",
            "10s",
            "--database-url",
            url,
            "--migrations",
        ])
        .arg(migrations)
        .arg("--seeds")
        .arg(migrations.join("seeds"))
        .env("DBINIT_LOG", "error");
    match stop {
        Stop::At(at) => cmd.env("DBINIT_CRASH_AT", at).output(),
        Stop::After(delay) => {
            let child = cmd
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn dbinit-demo");
            std::thread::sleep(delay);
            // It may have finished already: then there is nothing to kill.
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            child.wait_with_output()
        }
        Stop::Never | Stop::FileSizeOver(_) => cmd.output(),
    }
    .expect("run dbinit-demo")
}

/// Every crash point of one run, with how many times it is reached.
fn points(backend: Backend) -> Vec<(String, usize)> {
    let migrations = 5 + EXTRA_MIGRATIONS;
    let mut points = vec![
        ("init.connected".to_owned(), 1),
        ("init.locked".to_owned(), 1),
        ("init.before_unlock".to_owned(), 1),
    ];
    for step in [
        "migration.executed",
        "migration.recorded",
        "migration.committed",
    ] {
        points.extend((1..=migrations).map(|n| (step.to_owned(), n)));
    }
    for step in ["seed.before_commit", "seed.committed"] {
        points.extend((1..=SEEDERS).map(|n| (step.to_owned(), n)));
    }
    points.extend((1..=BATCH_CALLS).map(|n| ("seed.load.batch".to_owned(), n)));
    points.extend((1..=health_checks(backend)).map(|n| ("health.check".to_owned(), n)));
    for step in [
        "rollback.executed",
        "rollback.recorded",
        "rollback.committed",
    ] {
        points.extend((1..=3).map(|n| (step.to_owned(), n)));
    }
    points.push(("baseline.recorded".to_owned(), 1));
    points.push(("repair.recorded".to_owned(), 1));
    if backend == Backend::Mysql {
        for step in ["mysql.statement.before", "mysql.statement.after"] {
            points.extend((1..=MYSQL_STATEMENTS).map(|n| (step.to_owned(), n)));
        }
    }
    points
}

/// The lifecycle command a crash point belongs to, with what must run on
/// the database before it; `None` for `init`'s own points.
fn lifecycle(point: &str) -> Option<(Vec<String>, bool)> {
    let to = ROLLBACK_TO.to_string();
    match point.split('.').next()? {
        "rollback" => Some((vec!["rollback".into(), "--to".into(), to], true)),
        "baseline" => Some((
            vec!["baseline".into(), "--version".into(), "5".into()],
            false,
        )),
        "repair" => Some((vec!["repair".into(), "--accept".into(), "6".into()], true)),
        _ => None,
    }
}

/// Crash a lifecycle command at every point of `family`, rerun it, and
/// require the result of one uninterrupted run.
fn crash_lifecycle_and_converge(backend: Backend, family: &str) {
    let set = migration_set(backend);
    let (args, needs_init) = lifecycle(family).expect("a lifecycle family");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // `repair` accepts an edited V6: init with the original, then edit it.
    let edited = migration_set(backend);
    let v6 = edited.path().join("V6__extra_6.sql");
    let text = std::fs::read_to_string(&v6).unwrap();
    std::fs::write(&v6, format!("-- reformatted\n{text}")).unwrap();
    let command_set = if family.starts_with("repair") {
        edited.path()
    } else {
        set.path()
    };
    let prepare = |url: &str| {
        let command: &[&str] = if needs_init {
            &["init"]
        } else {
            &["init", "--no-seed"]
        };
        let out = dbinit(command, url, set.path(), Stop::Never);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if !needs_init {
            // Baseline adopts a database made before dbinit: no history.
            drop_history(url);
        }
    };
    converge(backend, family, &args, command_set, &prepare);
}

/// Runs `args` once uninterrupted on a prepared database, then on a fresh
/// prepared database for every crash point of `family`: killed there, the
/// rerun of the same command must exit 0 (the dead process's lock never
/// blocks it) and leave the same dump.
fn converge(
    backend: Backend,
    family: &str,
    args: &[&str],
    migrations: &Path,
    prepare: &dyn Fn(&str),
) -> String {
    let dir = tempfile::tempdir().unwrap();
    let reference_url = fresh_url(backend, dir.path());
    prepare(&reference_url);
    let out = dbinit(args, &reference_url, migrations, Stop::Never);
    assert!(
        out.status.success(),
        "reference: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference = dump_blocking(&reference_url);
    let ours =
        |p: &str| p.starts_with(family) && (lifecycle(family).is_some() == lifecycle(p).is_some());
    let mut tried = 0;
    for (point, n) in points(backend).into_iter().filter(|(p, _)| ours(p)) {
        let url = fresh_url(backend, dir.path());
        prepare(&url);
        let crashed = dbinit(args, &url, migrations, Stop::At(format!("{point}:{n}")));
        assert_eq!(
            crashed.status.signal(),
            Some(9),
            "{backend:?} {point}:{n} was not reached (status {:?}): {}",
            crashed.status,
            String::from_utf8_lossy(&crashed.stderr)
        );
        let rerun = dbinit(args, &url, migrations, Stop::Never);
        assert!(
            rerun.status.success(),
            "{backend:?} rerun after {point}:{n}: {}",
            String::from_utf8_lossy(&rerun.stderr)
        );
        assert_eq!(
            dump_blocking(&url),
            reference,
            "{backend:?}: after a crash at {point}:{n}"
        );
        tried += 1;
    }
    assert!(tried > 0, "no crash point in family {family}");
    eprintln!("{backend:?} {family}: {tried} crash points, all converged");
    reference
}

/// Empties a database's history (what a database made before dbinit has).
fn drop_history(url: &str) {
    execute_blocking(url, "DROP TABLE refinery_schema_history");
}

fn crash_and_converge(backend: Backend, family: &str) {
    let set = migration_set(backend);
    let reference = converge(backend, family, &["init"], set.path(), &|_: &str| {});
    assert!(reference.contains("history 20 extra_20"), "{reference}");
    // The data files loaded whole: every row of the big one (two of them
    // over the migration's), and the small one's new row.
    let rows_of = |table: &str| {
        let section = reference
            .split(&format!("table {table}\n"))
            .nth(1)
            .unwrap_or("");
        section.split("table ").next().unwrap_or("").to_owned()
    };
    assert!(
        rows_of("extra_7").contains(&format!("rows {FILE_ROWS}\n")),
        "{reference}"
    );
    assert!(rows_of("extra_8").contains("rows 3\n"), "{reference}");
    for file in ["rows.csv", "labels.jsonl"] {
        assert!(
            reference.contains(&format!("seed history development/{file} Some(1)")),
            "{reference}"
        );
    }
}

/// Every crash point in the code is exercised here: adding a
/// `fault::point` without a convergence test fails this test.
#[test]
fn every_crash_point_in_the_code_is_tried() {
    fn scan(dir: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                scan(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for piece in text.split("fault::point(\"").skip(1) {
                    found.push(piece.split('"').next().unwrap().to_owned());
                }
            }
        }
    }
    let mut in_code = Vec::new();
    scan(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates"),
        &mut in_code,
    );
    in_code.sort();
    in_code.dedup();
    assert!(in_code.len() >= 9, "{in_code:?}");
    let backends = [Backend::Sqlite, Backend::Postgres, Backend::Mysql];
    for backend in backends {
        let tried: Vec<String> = points(backend).into_iter().map(|(p, _)| p).collect();
        // A point named after a backend (`mysql.…`) is that backend's alone.
        let others = |point: &str| {
            backends
                .iter()
                .any(|b| *b != backend && point.starts_with(&format!("{}.", b.name())))
        };
        for point in in_code.iter().filter(|p| !others(p)) {
            assert!(
                tried.contains(point),
                "{backend:?}: crash point {point} is never tried"
            );
        }
        // 3 + 3 x 20 + 6 + checks: at least 50 per backend.
        assert!(tried.len() >= 50, "{backend:?}: {}", tried.len());
    }
}

#[test]
fn sqlite_crash_while_connecting_locking_and_unlocking() {
    crash_and_converge(Backend::Sqlite, "init.");
}

#[test]
fn sqlite_crash_inside_and_between_migrations() {
    crash_and_converge(Backend::Sqlite, "migration.");
}

#[test]
fn sqlite_crash_around_seeders_and_health_checks() {
    crash_and_converge(Backend::Sqlite, "seed.");
    crash_and_converge(Backend::Sqlite, "health.");
}

#[test]
fn postgres_crash_while_connecting_locking_and_unlocking() {
    crash_and_converge(Backend::Postgres, "init.");
}

#[test]
fn postgres_crash_inside_migrations() {
    crash_and_converge(Backend::Postgres, "migration.executed");
    crash_and_converge(Backend::Postgres, "migration.recorded");
}

#[test]
fn postgres_crash_between_migrations() {
    crash_and_converge(Backend::Postgres, "migration.committed");
}

#[test]
fn postgres_crash_around_seeders_and_health_checks() {
    crash_and_converge(Backend::Postgres, "seed.");
    crash_and_converge(Backend::Postgres, "health.");
}

#[test]
fn mysql_crash_while_connecting_locking_and_unlocking() {
    crash_and_converge(Backend::Mysql, "init.");
}

#[test]
fn mysql_crash_before_and_after_each_statement() {
    crash_and_converge(Backend::Mysql, "mysql.statement.before");
    crash_and_converge(Backend::Mysql, "mysql.statement.after");
}

#[test]
fn mysql_crash_inside_and_between_migrations() {
    crash_and_converge(Backend::Mysql, "migration.");
}

#[test]
fn mysql_crash_around_seeders_and_health_checks() {
    crash_and_converge(Backend::Mysql, "seed.");
    crash_and_converge(Backend::Mysql, "health.");
}

#[test]
fn mysql_crash_during_rollback_baseline_and_repair() {
    for family in ["rollback.", "baseline.", "repair."] {
        crash_lifecycle_and_converge(Backend::Mysql, family);
    }
}

#[test]
fn sqlite_crash_during_rollback_baseline_and_repair() {
    for family in ["rollback.", "baseline.", "repair."] {
        crash_lifecycle_and_converge(Backend::Sqlite, family);
    }
}

#[test]
fn postgres_crash_during_rollback_baseline_and_repair() {
    for family in ["rollback.", "baseline.", "repair."] {
        crash_lifecycle_and_converge(Backend::Postgres, family);
    }
}

/// The database a crashed run of `init` is checked against: one
/// uninterrupted run on a fresh database.
fn reference_dump(backend: Backend, dir: &Path, set: &Path) -> (String, Duration) {
    let url = fresh_url(backend, dir);
    let started = Instant::now();
    let out = dbinit(&["init"], &url, set, Stop::Never);
    let took = started.elapsed();
    assert!(out.status.success(), "reference: {}", stderr(&out));
    (dump_blocking(&url), took)
}

/// The rerun after a kill exits 0 and leaves the reference database.
fn rerun_converges(url: &str, set: &Path, reference: &str, after: &str) {
    let rerun = dbinit(&["init"], url, set, Stop::Never);
    assert!(
        rerun.status.success(),
        "rerun after {after}: {}",
        stderr(&rerun)
    );
    assert_eq!(dump_blocking(url), reference, "after {after}");
}

/// SIGXFSZ at the first write past a file size limit, swept from the first
/// byte to a limit the whole run fits under: kills inside the journal-mode
/// switch and first transaction of a new database (a torn first page and
/// a journal for a database of no pages), inside WAL appends and
/// checkpoints. Also on a database made before dbinit in rollback-journal
/// mode, whose switch to WAL journals its first page.
#[test]
fn sqlite_killed_inside_its_own_writes_converges() {
    const SIGXFSZ: i32 = 25;
    let set = migration_set(Backend::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    let (reference, _) = reference_dump(Backend::Sqlite, dir.path(), set.path());
    for legacy in [false, true] {
        let (mut limit, mut killed) = (1u64, 0);
        loop {
            let url = fresh_url(Backend::Sqlite, dir.path());
            if legacy {
                let conn = rusqlite::Connection::open(url.trim_start_matches("sqlite://")).unwrap();
                conn.execute_batch("PRAGMA journal_mode = DELETE; PRAGMA user_version = 7;")
                    .unwrap();
            }
            let out = dbinit(&["init"], &url, set.path(), Stop::FileSizeOver(limit));
            let finished = out.status.success();
            if !finished {
                assert_eq!(
                    out.status.signal(),
                    Some(SIGXFSZ),
                    "limit {limit}: {}",
                    stderr(&out)
                );
                killed += 1;
            }
            rerun_converges(
                &url,
                set.path(),
                &reference,
                &format!("a kill past byte {limit} (legacy: {legacy})"),
            );
            if finished {
                break;
            }
            // Every sector of the first pages, then wider steps.
            limit = if limit < 12 * 1024 {
                limit.next_multiple_of(1024).max(limit + 511)
            } else {
                limit * 3 / 2
            };
        }
        assert!(killed >= 12, "only {killed} kills (legacy: {legacy})");
        eprintln!(
            "sqlite (legacy: {legacy}): {killed} kills inside SQLite's writes, all converged"
        );
    }
}

/// SIGKILL at moments spread over a fresh `init`, none of them a crash
/// point of ours: the first milliseconds (SQLite's first transaction and
/// switch to WAL; PostgreSQL's CREATE DATABASE), then evenly over the rest.
fn killed_at_random_moments_converges(backend: Backend, kills: u32) {
    let set = migration_set(backend);
    let dir = tempfile::tempdir().unwrap();
    let (reference, took) = reference_dump(backend, dir.path(), set.path());
    let early = (0..8).map(|i| Duration::from_millis(4 * i + 2));
    let spread = (1..=kills).map(|i| took * i / kills);
    for delay in early.chain(spread) {
        let url = fresh_url(backend, dir.path());
        dbinit(&["init"], &url, set.path(), Stop::After(delay));
        rerun_converges(
            &url,
            set.path(),
            &reference,
            &format!("a kill after {delay:?}"),
        );
    }
}

#[test]
fn sqlite_killed_at_random_moments_converges() {
    killed_at_random_moments_converges(Backend::Sqlite, 24);
}

#[test]
fn postgres_killed_at_random_moments_converges() {
    killed_at_random_moments_converges(Backend::Postgres, 16);
}
