//! `dbinit-demo init` (what `cargo xtask init` runs) against a real PostgreSQL server: the shared cluster
//! `cargo xtask test` starts, and private ones for servers that start late.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use dbinit_tests::pg::{free_port, psql, Cluster, ClusterOptions};
use dbinit_tests::{pg_url, unique_database, PG_LOG_VAR};

use dbinit_tests::cli::{exit_code as code, stderr, stdout_json as json, ADMIN_PASSWORD};

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

fn count(url: &str, sql: &str) -> i64 {
    psql(url, sql)
        .parse()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn migration_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, sql) in files {
        std::fs::write(dir.path().join(format!("{name}.sql")), sql).unwrap();
    }
    dir
}

/// Behaviour 1.
#[test]
fn init_creates_migrates_seeds_and_then_does_nothing() {
    let url = pg_url(&unique_database("cli_fresh"));
    let out = init(&url, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["backend"], "postgres");
    assert_eq!(report["database_created"], "created");
    assert_eq!(report["migrations"]["applied"].as_array().unwrap().len(), 5);
    assert!(
        report["health"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] == "healthy"),
        "{report:#}"
    );
    assert!(!report["database"]
        .as_str()
        .unwrap()
        .contains("dbinit-test-superuser"));

    let again = init(&url, &[]);
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    let report = json(&again);
    assert_eq!(report["database_created"], "existed");
    assert_eq!(report["migrations"]["applied"].as_array().unwrap().len(), 0);
    assert!(report["seeders"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["created"] == 0));
    assert_eq!(count(&url, "SELECT count(*) FROM users"), 1);
    let hash = psql(&url, "SELECT password_hash FROM users");
    assert!(hash.starts_with("$argon2id$") && !hash.contains(ADMIN_PASSWORD));
}

/// Behaviour 2: the server comes up while `init` waits.
#[test]
fn init_waits_for_a_server_that_starts_late() {
    let cluster = Cluster::new(ClusterOptions::default()).expect("initdb");
    let url = cluster.url("late_app");
    let child = dbinit()
        .args([
            "init",
            "--json",
            "--connect-timeout",
            "60s",
            "--database-url",
            &url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(2));
    cluster.start().expect("start the server late");
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(code(&out), 0, "{err}");
    assert_eq!(json(&out)["outcome"], "ready");
    assert_eq!(
        err.matches("database not reachable yet").count(),
        1,
        "{err}"
    );
    let ended = err.matches("database reachable").count()
        + err.matches("database server reachable").count();
    assert_eq!(ended, 1, "one line when the wait ends: {err}");
}

/// Behaviour 2: a server that never comes up.
#[test]
fn init_gives_up_on_a_server_that_never_starts() {
    let url = format!("postgres://app:NeverShown99@127.0.0.1:{}/app", free_port());
    let out = dbinit()
        .args(["init", "--connect-timeout", "2s", "--database-url", &url])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(code(&out), 20, "{err}");
    assert!(err.contains("pg_isready"), "{err}");
    assert!(err.contains("attempts"), "{err}");
    assert_eq!(
        err.matches("database not reachable yet").count(),
        1,
        "one line, not one per attempt: {err}"
    );
    assert!(
        !err.contains("NeverShown99")
            && !String::from_utf8_lossy(&out.stdout).contains("NeverShown99")
    );
}

/// Behaviour 3: one attempt, a clear error, no retry storm.
#[test]
fn wrong_password_fails_once_without_retrying() {
    let role = unique_database("role");
    psql(
        &pg_url("postgres"),
        &format!("CREATE ROLE {role} LOGIN PASSWORD 'right-password'"),
    );
    let url = pg_url("postgres").replace(
        "postgres:dbinit-test-superuser@",
        &format!("{role}:WrongPass77@"),
    );
    let out = init(&url, &["--connect-timeout", "30s"]);
    assert_eq!(code(&out), 21, "{}", stderr(&out));
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(all.contains("password authentication failed"), "{all}");
    assert!(!all.contains("WrongPass77"), "{all}");
    let log =
        std::fs::read_to_string(std::env::var(PG_LOG_VAR).expect("cargo xtask test sets the log"))
            .unwrap();
    let attempts = log
        .matches(&format!(
            "password authentication failed for user \"{role}\""
        ))
        .count();
    assert_eq!(attempts, 1, "the server saw {attempts} attempts");
}

/// Behaviour 4: sixteen processes at once on a new database.
#[test]
fn sixteen_concurrent_inits_apply_and_seed_once() {
    let url = pg_url(&unique_database("storm"));
    let children: Vec<_> = (0..16)
        .map(|_| {
            dbinit()
                .args(["init", "--json", "--database-url", &url])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut applied = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let report = json(&out);
        assert_eq!(report["outcome"], "ready");
        applied += report["migrations"]["applied"].as_array().unwrap().len();
    }
    assert_eq!(applied, 5);
    assert_eq!(
        count(&url, "SELECT count(*) FROM refinery_schema_history"),
        5
    );
    assert_eq!(
        count(
            &url,
            "SELECT count(DISTINCT version) FROM refinery_schema_history"
        ),
        5
    );
    assert_eq!(
        count(&url, "SELECT count(*) FROM users WHERE username = 'admin'"),
        1
    );
    assert_eq!(
        count(&url, "SELECT count(*) FROM tenants WHERE is_system"),
        1
    );
}

/// Behaviour 5: a lock held elsewhere times out, naming the holder; nothing changes.
#[test]
fn a_held_lock_times_out_naming_the_holder() {
    let db = unique_database("held");
    psql(&pg_url("postgres"), &format!("CREATE DATABASE {db}"));
    let url = pg_url(&db);
    let mut holder = Command::new(dbinit_tests::pg::psql_bin())
        .args(["-X", "-q", "-d", &url])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let stdin = holder.stdin.as_mut().unwrap();
        writeln!(
            stdin,
            "SET application_name = 'lock-holder'; SELECT pg_advisory_lock({});",
            dbinit_postgres::INIT_LOCK_KEY_SQL
        )
        .unwrap();
        stdin.flush().unwrap();
    }
    // Wait until the holder has it.
    let mut held = false;
    for _ in 0..100 {
        if count(
            &url,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted",
        ) == 1
        {
            held = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(held, "the holder never got the lock");
    let out = init(&url, &["--lock-timeout", "1s"]);
    let err = stderr(&out);
    assert_eq!(code(&out), 30, "{err}");
    assert!(
        err.contains("(lock-holder)") && err.contains("held by pid"),
        "{err}"
    );
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ),
        0,
        "something changed"
    );
    holder.kill().unwrap();
    holder.wait().unwrap();
    let out = init(&url, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// Behaviour 6: a migration failing halfway leaves no trace; fixing it converges.
#[test]
fn failed_migration_names_the_file_and_converges_after_the_fix() {
    let url = pg_url(&unique_database("halfway"));
    let dir = migration_dir(&[
        ("V1__a", "CREATE TABLE a (id BIGINT PRIMARY KEY);"),
        (
            "V2__b",
            "CREATE TABLE b (id INT);\nINSERT INTO a VALUES (1);\nSELECT * FROM no_such_table;\n",
        ),
    ]);
    let args = ["--no-seed", "--migrations", dir.path().to_str().unwrap()];
    let out = init(&url, &args);
    assert_eq!(code(&out), 41, "{}", stderr(&out));
    let message = json(&out)["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("V2__b.sql"), "{message}");
    assert!(
        message.contains("relation \"no_such_table\" does not exist"),
        "{message}"
    );
    assert!(message.contains("line 3"), "{message}");
    assert_eq!(
        count(&url, "SELECT count(*) FROM pg_tables WHERE tablename = 'b'"),
        0
    );
    assert_eq!(count(&url, "SELECT count(*) FROM a"), 0);
    assert_eq!(
        count(&url, "SELECT count(*) FROM refinery_schema_history"),
        1
    );
    assert_eq!(
        count(
            &url,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
        ),
        0
    );

    std::fs::write(
        dir.path().join("V2__b.sql"),
        "CREATE TABLE b (id INT);\nINSERT INTO a VALUES (1);\n",
    )
    .unwrap();
    let out = init(&url, &args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        count(&url, "SELECT count(*) FROM refinery_schema_history"),
        2
    );
    assert_eq!(count(&url, "SELECT count(*) FROM a"), 1);
}

/// Behaviour 7: divergent or missing migrations are refused before any change.
#[test]
fn divergent_and_missing_migrations_change_nothing() {
    let url = pg_url(&unique_database("divergent"));
    let dir = migration_dir(&[
        ("V1__a", "CREATE TABLE a (id BIGINT PRIMARY KEY);"),
        ("V2__b", "CREATE TABLE b (id INT);"),
    ]);
    let args = ["--no-seed", "--migrations", dir.path().to_str().unwrap()];
    assert_eq!(code(&init(&url, &args)), 0);
    std::fs::write(dir.path().join("V2__b.sql"), "CREATE TABLE b (id BIGINT);").unwrap();
    std::fs::write(dir.path().join("V3__c.sql"), "CREATE TABLE c (id INT);").unwrap();
    let out = init(&url, &args);
    assert_eq!(code(&out), 40, "{}", stderr(&out));
    assert!(json(&out)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("V2__b.sql"));
    assert_eq!(
        count(&url, "SELECT count(*) FROM pg_tables WHERE tablename = 'c'"),
        0
    );

    std::fs::write(dir.path().join("V2__b.sql"), "CREATE TABLE b (id INT);").unwrap();
    std::fs::remove_file(dir.path().join("V1__a.sql")).unwrap();
    let out = init(&url, &args);
    assert_eq!(code(&out), 40, "{}", stderr(&out));
    assert!(json(&out)["error"]["message"]
        .as_str()
        .unwrap()
        .contains("V1__a is missing"));
    assert_eq!(
        count(&url, "SELECT count(*) FROM pg_tables WHERE tablename = 'c'"),
        0
    );
    assert_eq!(
        count(&url, "SELECT count(*) FROM refinery_schema_history"),
        2
    );
}

#[test]
fn missing_database_without_createdb_gets_the_sql_an_admin_would_run() {
    let role = unique_database("nocreate");
    psql(
        &pg_url("postgres"),
        &format!("CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}' NOCREATEDB"),
    );
    let db = unique_database("wanted");
    let url = pg_url(&db).replace(
        "postgres:dbinit-test-superuser@",
        &format!("{role}:pw-{role}@"),
    );
    let out = init(&url, &[]);
    let err = stderr(&out);
    assert_eq!(code(&out), 22, "{err}");
    assert!(
        err.contains(&format!("CREATE DATABASE \"{db}\" OWNER \"{role}\";")),
        "{err}"
    );
}

#[test]
fn libpq_key_value_strings_work_end_to_end() {
    let db = unique_database("kv");
    let port = pg_url("postgres")
        .rsplit_once(':')
        .unwrap()
        .1
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let conninfo = format!(
        "host=127.0.0.1 port={port} user=postgres password='dbinit-test-superuser' dbname={db} application_name=kv-test"
    );
    let out = init(&conninfo, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json(&out);
    assert!(
        report["database"]
            .as_str()
            .unwrap()
            .contains("password=***"),
        "{report}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("dbinit-test-superuser"));
}

/// Fallback: only when configured, only for an unreachable primary, never
/// in production, and loud when used.
#[test]
fn fallback_is_explicit_loud_and_refused_in_production() {
    let dir = tempfile::tempdir().unwrap();
    let fallback = dir.path().join("fallback.db");
    let fallback_url = format!("sqlite://{}", fallback.display());
    let unreachable = format!("postgres://app:Fb-Secret-1@127.0.0.1:{}/app", free_port());

    let out = init(&unreachable, &["--connect-timeout", "300ms"]);
    assert_eq!(code(&out), 20, "no fallback configured: no switch");
    assert!(!fallback.exists());

    let out = init(
        &unreachable,
        &[
            "--connect-timeout",
            "300ms",
            "--env",
            "production",
            "--fallback-url",
            &fallback_url,
        ],
    );
    assert_eq!(code(&out), 10, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("refused in production"),
        "{}",
        stderr(&out)
    );
    assert!(!fallback.exists(), "production touched the fallback");

    let role = unique_database("fbrole");
    psql(
        &pg_url("postgres"),
        &format!("CREATE ROLE {role} LOGIN PASSWORD 'right'"),
    );
    let wrong_password =
        pg_url("postgres").replace("postgres:dbinit-test-superuser@", &format!("{role}:wrong@"));
    let out = init(&wrong_password, &["--fallback-url", &fallback_url]);
    assert_eq!(
        code(&out),
        21,
        "an authentication failure is not a reason to switch"
    );
    assert!(!fallback.exists());

    // The shared server has no TLS: a TLS failure is not "unreachable".
    let tls_required = format!("{}?sslmode=require", pg_url("postgres"));
    let out = init(&tls_required, &["--fallback-url", &fallback_url]);
    assert_eq!(code(&out), 24, "{}", stderr(&out));
    assert!(!fallback.exists(), "a TLS failure switched to the fallback");

    let out = dbinit()
        .env("DBINIT_FALLBACK_URL", &fallback_url)
        .args([
            "init",
            "--json",
            "--connect-timeout",
            "300ms",
            "--database-url",
            &unreachable,
        ])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["database"], fallback_url.as_str());
    assert_eq!(report["backend"], "sqlite");
    assert!(
        report["fallback"]["primary"]
            .as_str()
            .unwrap()
            .contains("app:***@"),
        "{report}"
    );
    assert!(
        stderr(&out).contains("USING THE CONFIGURED FALLBACK DATABASE"),
        "{}",
        stderr(&out)
    );
    assert!(!format!("{report}{}", stderr(&out)).contains("Fb-Secret-1"));
    assert!(fallback.exists());
}

/// Quiet logs on PostgreSQL: an unreachable server checked on every tick
/// makes a handful of lines, and no per-attempt connection noise.
#[test]
fn a_monitor_of_an_unreachable_server_stays_quiet() {
    let url = format!("postgres://app:Mon-Secret-2@127.0.0.1:{}/app", free_port());
    let started = std::time::Instant::now();
    let out = dbinit()
        .args([
            "health",
            "--json",
            "--watch",
            "10ms",
            "--ticks",
            "50",
            "--repeat-window",
            "300ms",
            "--database-url",
            &url,
        ])
        .output()
        .unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(code(&out), 60, "{}", stderr(&out));
    let err = stderr(&out);
    let lines = err.lines().count();
    let bound = (elapsed / 0.3).ceil() as usize + 1;
    assert!(
        lines <= bound,
        "{lines} log lines in {elapsed:.2} s:\n{err}"
    );
    assert!(
        !err.contains("not reachable yet"),
        "per-attempt wait noise: {err}"
    );
    assert!(!err.contains("Mon-Secret-2"), "{err}");
    assert_eq!(json(&out)["failing"], 50);
}

/// Secrets: every error path this test can reach, with the password in the
/// userinfo, in `?password=` and in a libpq `password=` field. It appears in
/// none of stdout, stderr or the JSON report.
#[test]
fn the_password_never_appears_on_any_path() {
    const SECRET: &str = "Sekr1t-Value-77";
    let port = pg_url("postgres")
        .rsplit_once(':')
        .unwrap()
        .1
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let dead = free_port();
    let role = unique_database("secret_role");
    psql(
        &pg_url("postgres"),
        &format!("CREATE ROLE {role} LOGIN PASSWORD '{SECRET}' NOCREATEDB"),
    );
    let missing_db = unique_database("secret_missing");
    let forms = |host_port: &str, user: &str, db: &str, extra: &str| {
        vec![
            format!(
                "postgres://{user}:{SECRET}@{host_port}/{db}{}",
                if extra.is_empty() {
                    String::new()
                } else {
                    format!("?{extra}")
                }
            ),
            format!(
                "postgresql://{user}@{host_port}/{db}?password={SECRET}{}",
                if extra.is_empty() {
                    String::new()
                } else {
                    format!("&{extra}")
                }
            ),
            {
                let (host, port) = host_port.split_once(':').unwrap();
                let extra = extra.replace('&', " ");
                format!(
                    "host={host} port={port} user={user} password='{SECRET}' dbname={db} {extra}"
                )
            },
        ]
    };
    let mut urls = Vec::new();
    // unreachable, wrong password (as postgres), no CREATEDB, bad option, success
    urls.extend(forms(&format!("127.0.0.1:{dead}"), "app", "app", ""));
    urls.extend(forms(
        &format!("127.0.0.1:{port}"),
        "postgres",
        "postgres",
        "",
    ));
    urls.extend(forms(&format!("127.0.0.1:{port}"), &role, &missing_db, ""));
    urls.extend(forms(
        &format!("127.0.0.1:{port}"),
        &role,
        "postgres",
        "sslmode=sometimes",
    ));
    urls.extend(forms(
        &format!("127.0.0.1:{port}"),
        &role,
        "postgres",
        "sslmode=verify-full",
    ));
    let mut codes = Vec::new();
    for url in &urls {
        for command in ["init", "status", "health"] {
            let out = dbinit()
                .args([
                    command,
                    "--json",
                    "--connect-timeout",
                    "200ms",
                    "--database-url",
                    url,
                ])
                .output()
                .unwrap();
            let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
            assert!(
                !all.contains(SECRET) && !all.contains("Sekr1t"),
                "{command} leaked:\n{all}"
            );
            codes.push(code(&out));
        }
    }
    // The paths really were different failures (and some successes).
    for expected in [10, 20, 21, 22] {
        assert!(
            codes.contains(&expected),
            "exit {expected} never reached: {codes:?}"
        );
    }
}
