//! Issue 7's findings on PostgreSQL: signals, secrets smuggled through the
//! database name or the fragment, query parameters that must reach the
//! server as typed, libpq's password conventions, migrations that touch
//! the history.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use dbinit_tests::cli::{exit_code as code, stderr, stdout_json as json};
use dbinit_tests::pg::psql;
use dbinit_tests::{pg_url, unique_database};

fn dbinit() -> Command {
    dbinit_tests::cli::command(env!("CARGO_BIN_EXE_dbinit-demo"))
}

fn init(url: &str, extra: &[&str]) -> Output {
    dbinit()
        .args(["init", "--json", "--database-url", url])
        .args(extra)
        .output()
        .unwrap()
}

fn exists(database: &str) -> bool {
    psql(
        &pg_url("postgres"),
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{database}'"),
    ) == "1"
}

fn everything(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(out))
}

/// A login role with `password` that may create databases.
fn role(password: &str) -> String {
    let role = unique_database("role");
    psql(
        &pg_url("postgres"),
        &format!(
            "CREATE ROLE {role} LOGIN CREATEDB PASSWORD '{}'",
            password.replace('\'', "''")
        ),
    );
    role
}

/// `postgres://ROLE@127.0.0.1:PORT/DB` from the shared cluster's URL.
fn url_without_password(role: &str, database: &str) -> String {
    let base = pg_url(database);
    let host = base.rsplit_once('@').unwrap().1;
    format!("postgres://{role}@{host}")
}

#[test]
fn secrets_smuggled_into_the_name_or_fragment_are_refused_unshown() {
    let base = pg_url("postgres");
    let server = base.rsplit_once('/').unwrap().0;
    for (url, database) in [
        (
            format!("{server}/app;password=Zqzz-secret"),
            "app;password=Zqzz-secret",
        ),
        (format!("{server}/app#password=Zqzz-secret"), "app"),
    ] {
        let out = init(&url, &[]);
        assert_eq!(code(&out), 10, "{url}: {}", stderr(&out));
        assert!(!everything(&out).contains("Zqzz"), "{}", everything(&out));
        assert!(!exists(database), "{database} was created");
    }
}

#[test]
fn database_names_over_63_bytes_are_url_errors() {
    let name = "n".repeat(64);
    let out = init(&pg_url(&name), &[]);
    assert_eq!(code(&out), 10, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("at most 63 bytes"),
        "{}",
        stderr(&out)
    );
    assert!(!exists(&name[..63]));
}

#[test]
fn query_parameters_reach_the_server_as_typed() {
    let password = "Right Pass+1";
    let role = role(password);
    let database = unique_database("params");
    let url = format!(
        "{}?password=Right%20Pass%2B1&application_name=my%20app&options=-c%20search_path%3Dpublic",
        url_without_password(&role, &database)
    );
    let migrations = dbinit_tests::cli::migration_dir(
        "postgres",
        &[(
            "V6__seen",
            "CREATE TABLE seen AS SELECT current_setting('application_name') AS app, \
             current_setting('search_path') AS path;",
        )],
    );
    let out = init(
        &url,
        &[
            "--no-seed",
            "--migrations",
            migrations.path().to_str().unwrap(),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        psql(&pg_url(&database), "SELECT app || '|' || path FROM seen"),
        "my app|public"
    );
}

#[test]
fn conninfo_values_may_contain_scheme_separators() {
    let password = "Sec://ret-1234";
    let role = role(password);
    let database = unique_database("conninfo");
    let port = pg_url("x")
        .rsplit_once(':')
        .unwrap()
        .1
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let conninfo = format!(
        "host=127.0.0.1 port={port} user={role} dbname={database} password={password} \
         application_name=http://svc"
    );
    let out = init(&conninfo, &["--no-seed"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(!everything(&out).contains("ret-1234"));
}

#[test]
fn libpq_password_conventions_are_honoured() {
    let role = role("from-the-environment-1");
    let url = url_without_password(&role, &unique_database("pgpass"));
    let out = dbinit()
        .env_remove("PGPASSWORD")
        .env_remove("PGPASSFILE")
        .env("HOME", "/nonexistent")
        .args(["init", "--no-seed", "--database-url", &url])
        .output()
        .unwrap();
    assert_eq!(code(&out), 21, "{}", stderr(&out));
    assert!(stderr(&out).contains("PGPASSWORD"), "{}", stderr(&out));

    let out = dbinit()
        .env("PGPASSWORD", "from-the-environment-1")
        .args(["init", "--no-seed", "--database-url", &url])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let dir = tempfile::tempdir().unwrap();
    let passfile = dir.path().join("pgpass");
    std::fs::write(&passfile, format!("*:*:*:{role}:from-the-environment-1\n")).unwrap();
    std::fs::set_permissions(
        &passfile,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let out = dbinit()
        .env_remove("PGPASSWORD")
        .env("PGPASSFILE", &passfile)
        .args(["status", "--no-seed", "--database-url", &url])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn byte_order_marks_apply_on_postgres() {
    let database = unique_database("bom");
    let migrations = dbinit_tests::cli::migration_dir(
        "postgres",
        &[("V6__bom", "\u{feff}CREATE TABLE with_bom (x INTEGER);")],
    );
    let out = init(
        &pg_url(&database),
        &[
            "--no-seed",
            "--migrations",
            migrations.path().to_str().unwrap(),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn migrations_that_touch_the_history_fail_this_run_by_name() {
    for (name, sql) in [
        ("V6__drop_history", "DROP TABLE refinery_schema_history;"),
        (
            "V6__rename_history",
            "ALTER TABLE refinery_schema_history RENAME TO gone;",
        ),
        (
            "V6__rewrite_history",
            "UPDATE refinery_schema_history SET checksum = '1';",
        ),
    ] {
        let database = unique_database("history");
        let migrations = dbinit_tests::cli::migration_dir("postgres", &[(name, sql)]);
        let out = init(
            &pg_url(&database),
            &[
                "--no-seed",
                "--migrations",
                migrations.path().to_str().unwrap(),
            ],
        );
        assert_eq!(code(&out), 41, "{name}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(name) || stderr(&out).contains("modified the history table"),
            "{name}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn sigterm_cancels_the_running_migration_and_releases_the_lock() {
    let database = unique_database("sigterm");
    let url = pg_url(&database);
    let migrations = dbinit_tests::cli::migration_dir(
        "postgres",
        &[(
            "V6__slow",
            "CREATE TABLE half_done (x INT); SELECT pg_sleep(60);",
        )],
    );
    let dir = migrations.path().to_str().unwrap().to_owned();
    let sleeping = || {
        psql(
            &pg_url("postgres"),
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '{database}' \
                 AND query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()"
            ),
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
        sleeping,
        nix::sys::signal::Signal::SIGTERM,
    );
    assert_eq!(code(&out), 143, "{}", stderr(&out));
    assert!(took < Duration::from_secs(20));
    assert_eq!(json(&out)["error"]["kind"], "interrupted");
    // Nothing runs on, no advisory lock is held, nothing is half applied.
    let count = |sql: &str| psql(&pg_url(&database), sql);
    assert_eq!(
        count(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND query LIKE '%pg_sleep(60)%' AND pid <> pg_backend_pid()"
        ),
        "0"
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
        "0"
    );
    assert_eq!(
        count("SELECT count(*) FROM pg_tables WHERE tablename = 'half_done'"),
        "0"
    );
    assert_eq!(count("SELECT count(*) FROM refinery_schema_history"), "5");
    let fixed = dbinit_tests::cli::migration_dir("postgres", &[("V6__slow", "SELECT 1;")]);
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
}

/// Found by the third review: a signal while waiting for a server that is
/// not up waited out the whole connect timeout.
#[test]
fn a_signal_stops_the_wait_for_a_server() {
    let started = Instant::now();
    let (out, took) = dbinit_tests::cli::signal_when(
        dbinit()
            .args(["init", "--json", "--connect-timeout", "60s"])
            .args(["--database-url", "postgres://postgres@127.0.0.1:1/nowhere"]),
        || started.elapsed() > Duration::from_millis(1500),
        nix::sys::signal::Signal::SIGTERM,
    );
    assert_eq!(code(&out), 143, "{}", stderr(&out));
    assert!(
        took < Duration::from_secs(10),
        "waited out the connect timeout"
    );
    assert!(
        stderr(&out).contains("stopped while connecting"),
        "{}",
        stderr(&out)
    );
}

/// Found by the third review: a down script that rewrites the history, and
/// a role without CREATE on the schema using the existing audit table.
#[test]
fn rollback_checks_the_history_and_repair_needs_no_create_right() {
    let database = unique_database("down_history");
    let url = pg_url(&database);
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, sql: &str| std::fs::write(dir.path().join(name), sql).unwrap();
    write("V1__a.sql", "CREATE TABLE a (x INT);");
    write("V2__b.sql", "CREATE TABLE b (x INT);");
    write(
        "V2__b.down.sql",
        "DROP TABLE b; DELETE FROM refinery_schema_history;",
    );
    let m = dir.path().to_str().unwrap().to_owned();
    let run = |url: &str, args: &[&str]| {
        dbinit()
            .args(args)
            .args(["--no-seed", "--migrations", &m, "--database-url", url])
            .output()
            .unwrap()
    };
    assert_eq!(code(&run(&url, &["init"])), 0);
    let out = run(&url, &["rollback", "--steps", "1"]);
    assert_eq!(code(&out), 41, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("modified the history table"),
        "{}",
        stderr(&out)
    );

    // Repair as a role that owns the tables but may not create any.
    let fresh = pg_url(&unique_database("no_create"));
    write("V2__b.down.sql", "DROP TABLE b;");
    assert_eq!(code(&run(&fresh, &["init"])), 0);
    write("V1__a.sql", "CREATE TABLE a (x INT); -- reformatted");
    assert_eq!(code(&run(&fresh, &["repair", "--accept", "1"])), 0);
    let role = unique_database("app");
    let admin = |sql: &str| psql(&fresh, sql);
    admin(&format!("CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}'"));
    admin(&format!(
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC, {role}"
    ));
    admin(&format!("GRANT USAGE ON SCHEMA public TO {role}"));
    for table in [
        "refinery_schema_history",
        "dbinit_migration_audit",
        "a",
        "b",
    ] {
        admin(&format!("ALTER TABLE {table} OWNER TO {role}"));
    }
    write("V2__b.sql", "CREATE TABLE b (x INT); -- reformatted");
    let host = fresh.rsplit_once('@').unwrap().1;
    let as_role = format!("postgres://{role}:pw-{role}@{host}");
    let out = run(&as_role, &["repair", "--accept", "2"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = run(&as_role, &["rollback", "--steps", "1"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// `COPY … FROM STDIN` is psql's (it streams the rows that follow): refused
/// before anything of the file runs, naming the line, with what to do
/// instead; the connection and the next run are fine.
#[test]
fn copy_from_stdin_in_a_migration_is_refused_before_it_runs() {
    for header in ["", "-- dbinit:no-transaction\n"] {
        let migrations = dbinit_tests::cli::migration_dir(
            "postgres",
            &[(
                "V6__with_data",
                &format!(
                    "{header}CREATE TABLE made_first (id int);\n\
                     COPY made_first (id) FROM stdin;\n1\n2\n\\.\n"
                ),
            )],
        );
        let database = unique_database("copy_stdin");
        let url = pg_url(&database);
        let dir = migrations.path().to_str().unwrap();
        let out = init(&url, &["--no-seed", "--migrations", dir]);
        assert_eq!(code(&out), 41, "{header:?}: {}", stderr(&out));
        let err = stderr(&out);
        let line = if header.is_empty() { 2 } else { 3 };
        assert!(
            err.contains("V6__with_data.sql")
                && err.contains(&format!("FROM STDIN` (or `TO STDOUT`) at line {line}"))
                && err.contains("data file"),
            "{err}"
        );
        assert_eq!(
            psql(
                &url,
                "SELECT count(*) FROM pg_tables WHERE tablename = 'made_first'"
            ),
            "0",
            "{header:?}: part of the file ran"
        );
        assert_eq!(
            psql(&url, "SELECT max(version) FROM refinery_schema_history"),
            "5"
        );
    }
}
