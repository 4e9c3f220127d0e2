//! `dbinit-demo init|status|health` (what `cargo xtask init` runs) as a user
//! runs them: a real process, a real SQLite file, exit codes, stdout, stderr and the JSON report.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dbinit_tests::cli::{exit_code as code, stderr, stdout_json as json};
use serde_json::Value;

fn dbinit() -> Command {
    dbinit_tests::cli::command(env!("CARGO_BIN_EXE_dbinit-demo"))
}

fn run(args: &[&str]) -> Output {
    dbinit().args(args).output().expect("run dbinit-demo")
}

fn url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

fn init_json(db: &Path, extra: &[&str]) -> (i32, Value) {
    let url = url(db);
    let mut args = vec!["init", "--json", "--database-url", url.as_str()];
    args.extend_from_slice(extra);
    let out = run(&args);
    (code(&out), json(&out))
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|e| e[key].as_str().unwrap().to_owned())
        .collect()
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn sqlite(db: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Behaviour 1 and 2.
#[test]
fn fresh_init_does_everything_and_the_second_run_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data/app.db");
    let (status, report) = init_json(&db, &[]);
    assert_eq!(status, 0, "{report:#}");
    assert_eq!(report["outcome"], "ready");
    assert_eq!(report["database_created"], "created");
    assert_eq!(report["migrations"]["applied"].as_array().unwrap().len(), 5);
    assert_eq!(
        names(&report["seeders"], "name"),
        [
            "system_tenant",
            "system_roles",
            "admin_user",
            "development/demo_tenants.csv"
        ]
    );
    assert!(report["seeders"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["created"].as_u64() > Some(0)));
    for check in report["health"].as_array().unwrap() {
        assert_eq!(check["status"], "healthy", "{check}");
        assert!(check["latency_ms"].as_f64().is_some());
    }
    assert_eq!(
        names(&report["steps"], "name"),
        ["connect", "lock", "migrate", "seed", "health"]
    );
    assert!(report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["duration_ms"].as_f64().is_some()));

    let (status, again) = init_json(&db, &[]);
    assert_eq!(status, 0, "{again:#}");
    assert_eq!(again["database_created"], "existed");
    assert_eq!(again["migrations"]["applied"].as_array().unwrap().len(), 0);
    assert_eq!(again["migrations"]["already_applied"], 5);
    for seeder in again["seeders"].as_array().unwrap() {
        assert_eq!(seeder["created"], 0, "{seeder}");
        // Seeders in code find their data; the data file is in the history.
        let file = seeder["name"].as_str().unwrap().starts_with("development/");
        let expected = if file { "recorded" } else { "present" };
        assert_eq!(seeder["status"], expected, "{seeder}");
    }
    assert_eq!(
        sqlite(&db, "SELECT count(*) FROM refinery_schema_history"),
        5
    );
    assert_eq!(sqlite(&db, "SELECT count(*) FROM users"), 1);
}

#[test]
fn human_output_says_what_was_done() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let out = run(&["init", "--database-url", &url(&db)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    for expected in [
        "created",
        "V5__performance_alerts",
        "admin_user: 2 created",
        "ready in",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

/// Behaviour 3: an edited or deleted applied migration stops everything.
#[test]
fn divergent_or_missing_migration_is_refused_before_any_write() {
    let dir = tempfile::tempdir().unwrap();
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/sqlite");
    for file in files_in(&source) {
        std::fs::copy(&file, migrations.join(file.file_name().unwrap())).unwrap();
    }
    let db = dir.path().join("app.db");
    let dir_arg = migrations.display().to_string();
    let (status, report) = init_json(&db, &["--migrations", &dir_arg]);
    assert_eq!(status, 0, "{report:#}");

    // Edited file: a new migration waits behind it and must not be applied.
    let roles = migrations.join("V2__roles.sql");
    let original = std::fs::read_to_string(&roles).unwrap();
    std::fs::write(&roles, format!("{original}\n-- edited\n")).unwrap();
    std::fs::write(
        migrations.join("V6__extra.sql"),
        "CREATE TABLE extra (id INTEGER);",
    )
    .unwrap();
    let before = std::fs::read(&db).unwrap();
    let (status, report) = init_json(&db, &["--migrations", &dir_arg]);
    assert_eq!(status, 40, "{report:#}");
    let message = report["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("V2__roles") && message.contains("V2__roles.sql"),
        "{message}"
    );
    assert_eq!(report["error"]["kind"], "migration_validation");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the database file changed"
    );

    // Deleted file.
    std::fs::write(&roles, original).unwrap();
    std::fs::remove_file(migrations.join("V6__extra.sql")).unwrap();
    std::fs::remove_file(migrations.join("V4__user_roles.sql")).unwrap();
    let (status, report) = init_json(&db, &["--migrations", &dir_arg]);
    assert_eq!(status, 40, "{report:#}");
    assert!(report["error"]["message"]
        .as_str()
        .unwrap()
        .contains("V4__user_roles is missing"));
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

/// Behaviour 4: bad input gets a clear error, a distinct code, and nothing is created.
#[test]
fn bad_urls_fail_clearly_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let text_file = dir.path().join("notes.txt");
    std::fs::write(&text_file, "precious, not a database").unwrap();
    let subdir = dir.path().join("a-directory");
    std::fs::create_dir(&subdir).unwrap();
    let before = files_in(dir.path());
    let cases: Vec<(String, i32, &str)> = vec![
        (
            "oracle://root@localhost/app".into(),
            11,
            "registered backends: mysql (mysql, mariadb), postgres (postgres, postgresql), \
             sqlite (sqlite, file)",
        ),
        ("".into(), 10, "the url is empty"),
        ("garbage".into(), 10, "no scheme"),
        (subdir.display().to_string(), 10, "a bare path is not a url"),
        (url(&subdir), 23, "is a directory"),
        (url(&text_file), 23, "not a SQLite database"),
        (
            url(&dir.path().join("missing-dir/..")),
            23,
            "is a directory",
        ),
    ];
    for (input, expected, message) in cases {
        let out = run(&["init", "--database-url", &input]);
        let err = stderr(&out);
        assert_eq!(code(&out), expected, "{input:?}: {err}");
        assert!(err.contains(message), "{input:?}: {err}");
        assert!(err.contains("hint:"), "{input:?} has no hint: {err}");
    }
    // The same through the environment: set-but-empty is not "unset".
    let out = dbinit()
        .env("DATABASE_URL", "")
        .arg("init")
        .output()
        .unwrap();
    assert_eq!(code(&out), 10, "{}", stderr(&out));
    assert_eq!(files_in(dir.path()), before, "something was created");
    assert_eq!(
        std::fs::read_to_string(&text_file).unwrap(),
        "precious, not a database"
    );
}

#[test]
fn production_never_falls_back_to_the_default_database() {
    let out = run(&["init", "--env", "production"]);
    assert_eq!(code(&out), 10, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("production never falls back"),
        "{}",
        stderr(&out)
    );
}

/// Behaviour 5: a password in the URL appears nowhere, on success or failure.
#[test]
fn passwords_in_urls_never_reach_output() {
    const SECRET: &str = "Sup3rS3cretValue";
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let failing = [
        format!("postgres://app:{SECRET}@127.0.0.1:1/app"),
        format!("mysql://root:{SECRET}@127.0.0.1:1/app"),
        format!("mariadb://root:{SECRET}@127.0.0.1:1/app?ssl-mode=REQUIRED"),
        format!("mysql://root:{SECRET}@127.0.0.1:1/app?password={SECRET}"),
        format!("host=localhost user=app password={SECRET} dbname=app"),
        format!("host=localhost password='{SECRET} with spaces"),
        format!("postgres//app:{SECRET}@localhost/app"),
        format!(
            "sqlite://{}?password={SECRET}",
            dir.path().join("nope/").display()
        ),
    ];
    // SQLite has no password: a `password=` there is refused, not ignored.
    let refused = [format!("sqlite://{}?password={SECRET}", db.display())];
    for input in failing.iter().chain(&refused) {
        for json_flag in [true, false] {
            let mut args = vec![
                "init",
                "--connect-timeout",
                "300ms",
                "--database-url",
                input.as_str(),
            ];
            if json_flag {
                args.push("--json");
            }
            let out = run(&args);
            let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
            assert!(!all.contains(SECRET), "{input:?} leaked:\n{all}");
            assert!(
                !all.contains("Sup3r"),
                "{input:?} leaked part of it:\n{all}"
            );
        }
    }
    let out = run(&["status", "--json", "--database-url", &refused[0]]);
    assert_eq!(code(&out), 10, "{}", stderr(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains(SECRET));
    assert!(json(&out)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("password=***"));
    assert!(!db.exists());
}

/// Behaviour 7: two processes on the same new file.
#[test]
fn concurrent_inits_apply_once_and_seed_once() {
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("race.db");
        let url = url(&db);
        let children: Vec<_> = (0..2)
            .map(|_| {
                dbinit()
                    .args(["init", "--json", "--database-url", &url])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut applied = 0;
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert_eq!(code(&out), 0, "round {round}: {}", stderr(&out));
            applied += json(&out)["migrations"]["applied"]
                .as_array()
                .unwrap()
                .len();
        }
        assert_eq!(applied, 5, "round {round}: migrations applied by both");
        assert_eq!(
            sqlite(&db, "SELECT count(*) FROM refinery_schema_history"),
            5
        );
        assert_eq!(
            sqlite(&db, "SELECT count(*) FROM users WHERE username = 'admin'"),
            1
        );
        // The system tenant and the demo's three (seeds/development/).
        assert_eq!(sqlite(&db, "SELECT count(*) FROM tenants"), 4);
    }
}

#[test]
fn a_held_lock_times_out_with_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let (status, _) = init_json(&db, &[]);
    assert_eq!(status, 0);
    let lock = std::fs::File::options()
        .read(true)
        .write(true)
        .open(dir.path().join("app.db.lock"))
        .unwrap();
    lock.lock().unwrap();
    let out = run(&[
        "init",
        "--lock-timeout",
        "200ms",
        "--database-url",
        &url(&db),
    ]);
    assert_eq!(code(&out), 30, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("initialization lock"),
        "{}",
        stderr(&out)
    );
    lock.unlock().unwrap();
    let (status, _) = init_json(&db, &[]);
    assert_eq!(status, 0);
}

#[test]
fn status_and_health_report_without_changing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let out = run(&["status", "--database-url", &url(&db)]);
    assert_eq!(code(&out), 20, "{}", stderr(&out));
    assert!(!db.exists(), "status created the database");

    init_json(&db, &[]);
    let before = std::fs::read(&db).unwrap();
    let out = run(&["status", "--json", "--database-url", &url(&db)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let status = json(&out);
    assert_eq!(status["migrations"]["applied"].as_array().unwrap().len(), 5);
    assert_eq!(status["migrations"]["pending"].as_array().unwrap().len(), 0);
    assert!(status["seeders"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["seeded"] == true));
    let out = run(&["health", "--json", "--database-url", &url(&db)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let checks = json(&out)["checks"].as_array().unwrap().clone();
    assert_eq!(
        checks.len(),
        6,
        "five database checks and Redis: {checks:?}"
    );
    assert_eq!(checks[5]["name"], "redis");
    assert_eq!(checks[5]["status"], "disabled", "REDIS_URL is not set");
    assert_eq!(std::fs::read(&db).unwrap(), before);

    // Remove the seed data: health says so, with the unhealthy exit code.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("DELETE FROM user_roles").unwrap();
    drop(conn);
    let out = run(&["health", "--database-url", &url(&db)]);
    assert_eq!(code(&out), 60, "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not seeded: admin_user"));
}

#[test]
fn generated_admin_password_is_shown_once_and_stored_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let out = dbinit()
        .env_remove("DBINIT_ADMIN_PASSWORD")
        .args(["init", "--json", "--database-url", &url(&db)])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    let line = err
        .lines()
        .find(|l| l.contains("generated password for admin user `admin`"))
        .unwrap_or_else(|| panic!("no generated password shown:\n{err}"));
    let password = line.rsplit(": ").next().unwrap().trim();
    assert_eq!(password.len(), 24, "{line}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(password),
        "password in the report"
    );
    let conn = rusqlite::Connection::open(&db).unwrap();
    let hash: String = conn
        .query_row("SELECT password_hash FROM users", [], |r| r.get(0))
        .unwrap();
    assert!(
        hash.starts_with("$argon2id$") && !hash.contains(password),
        "{hash}"
    );
    drop(conn);

    let again = dbinit()
        .env_remove("DBINIT_ADMIN_PASSWORD")
        .args(["init", "--database-url", &url(&db)])
        .output()
        .unwrap();
    assert_eq!(code(&again), 0);
    assert!(
        !stderr(&again).contains("generated password"),
        "shown twice"
    );
}

#[test]
fn short_configured_admin_password_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let out = dbinit()
        .env("DBINIT_ADMIN_PASSWORD", "short")
        .args(["init", "--json", "--database-url", &url(&db)])
        .output()
        .unwrap();
    assert_eq!(code(&out), 50, "{}", stderr(&out));
    let report = json(&out);
    assert!(report["error"]["message"]
        .as_str()
        .unwrap()
        .contains("shorter than 12"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("\"short\""));
    // Checked before the first write: not even the migrations ran.
    assert_eq!(
        sqlite(
            &db,
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table'"
        ),
        0
    );
}

/// Quiet logs: a monitor that fails on every tick logs the failure once per
/// window with a count, not once per tick.
#[test]
fn a_failing_monitor_logs_once_per_window() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("never-created.db");
    let started = std::time::Instant::now();
    let out = run(&[
        "health",
        "--json",
        "--watch",
        "10ms",
        "--ticks",
        "60",
        "--repeat-window",
        "300ms",
        "--database-url",
        &url(&missing),
    ]);
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(code(&out), 60, "{}", stderr(&out));
    let stats = json(&out);
    assert_eq!(stats["ticks"], 60);
    assert_eq!(stats["failing"], 60);
    let err = stderr(&out);
    let lines = err.lines().filter(|l| l.contains("health: ")).count();
    assert_eq!(stats["log_lines"].as_u64(), Some(lines as u64), "{err}");
    // At most one line per window the run lasted (timing-proof), and far
    // fewer lines than ticks unless the machine stalled every tick.
    let bound = (elapsed / 0.3).ceil() as usize + 1;
    assert!(
        (1..=bound).contains(&lines),
        "{lines} lines in {elapsed:.2} s:\n{err}"
    );
    if elapsed < 3.0 {
        assert!(
            lines < 20,
            "{lines} lines for 60 ticks in {elapsed:.2} s:\n{err}"
        );
        assert!(err.contains("times in the last"), "{err}");
    }
    assert!(!missing.exists(), "the monitor created the database");
}

/// Hostile migration sets: clear errors before anything runs, and a 50 MB
/// migration that simply works.
#[test]
fn hostile_migration_sets_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("V1__ok.sql", "CREATE TABLE a (id INTEGER);"),
                ("V2_one_underscore.sql", "SELECT 1;"),
            ],
            "V2_one_underscore.sql is not named",
        ),
        (
            &[
                ("V1__ok.sql", "CREATE TABLE a (id INTEGER);"),
                ("V2__has-dash.sql", "SELECT 1;"),
            ],
            "V2__has-dash.sql is not named",
        ),
        (
            &[
                ("V1__ok.sql", "CREATE TABLE a (id INTEGER);"),
                ("V2__orphan.down.sql", "DROP TABLE a;"),
            ],
            "V2__orphan.down.sql is a down script without its migration",
        ),
        (
            &[
                ("V1__a.sql", "CREATE TABLE a (id INTEGER);"),
                ("V1__b.sql", "CREATE TABLE b (id INTEGER);"),
            ],
            "share version 1",
        ),
    ];
    for (i, (files, expected)) in cases.iter().enumerate() {
        let migrations = dir.path().join(format!("set{i}"));
        std::fs::create_dir(&migrations).unwrap();
        for (name, sql) in *files {
            std::fs::write(migrations.join(name), sql).unwrap();
        }
        let db = dir.path().join(format!("db{i}.db"));
        let out = run(&[
            "init",
            "--no-seed",
            "--database-url",
            &url(&db),
            "--migrations",
            migrations.to_str().unwrap(),
        ]);
        assert_eq!(code(&out), 40, "{expected}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(expected),
            "{expected}: {}",
            stderr(&out)
        );
        assert!(
            !db.exists(),
            "{expected}: the database was created before the set was checked"
        );
    }
}

#[test]
fn a_fifty_megabyte_migration_applies() {
    let dir = tempfile::tempdir().unwrap();
    let migrations = dir.path().join("big");
    std::fs::create_dir(&migrations).unwrap();
    let mut sql =
        String::from("CREATE TABLE big (id INTEGER PRIMARY KEY, payload TEXT NOT NULL);\n");
    let payload = "x".repeat(90);
    let mut id = 0;
    while sql.len() < 50 * 1024 * 1024 {
        sql.push_str("INSERT INTO big VALUES ");
        let rows: Vec<String> = (0..1000)
            .map(|_| {
                id += 1;
                format!("({id}, '{payload}')")
            })
            .collect();
        sql.push_str(&rows.join(", "));
        sql.push_str(";\n");
    }
    std::fs::write(migrations.join("V1__big.sql"), &sql).unwrap();
    let db = dir.path().join("big.db");
    let out = run(&[
        "init",
        "--no-seed",
        "--database-url",
        &url(&db),
        "--migrations",
        migrations.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(sqlite(&db, "SELECT count(*) FROM big"), id);
    let again = run(&[
        "init",
        "--no-seed",
        "--database-url",
        &url(&db),
        "--migrations",
        migrations.to_str().unwrap(),
    ]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
}

/// Logs follow Rust conventions: `RUST_LOG` filters (`DBINIT_LOG` wins over
/// it), and a stream that is not a terminal gets no colour codes.
#[test]
fn logs_honour_rust_log_and_carry_no_colour_when_piped() {
    let dir = tempfile::tempdir().unwrap();
    let db = url(&dir.path().join("app.db"));
    let stderr_with = |vars: &[(&str, &str)]| {
        let mut cmd = dbinit();
        cmd.env_remove("NO_COLOR")
            .env_remove("RUST_LOG")
            .env_remove("DBINIT_LOG");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let out = cmd
            .args(["init", "--no-seed", "--database-url", &db])
            .output()
            .unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        stderr(&out)
    };
    let default = stderr_with(&[]);
    assert!(default.contains("INFO"), "{default}");
    assert!(
        !default.contains('\x1b'),
        "colour codes on a pipe: {default:?}"
    );
    assert!(!stderr_with(&[("RUST_LOG", "error")]).contains("INFO"));
    assert!(stderr_with(&[("RUST_LOG", "error"), ("DBINIT_LOG", "info")]).contains("INFO"));
}
