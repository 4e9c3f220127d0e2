//! Through a real PgBouncer (issue 9): storms in transaction and session
//! pooling, a lock holder killed behind the pooler, a missing database.
//! Every statement dbinit sends must survive a pooler that hands the server
//! connection to another client between statements, and no lock may be left
//! on a pooled server connection.

use std::process::{Child, Output, Stdio};

use dbinit_tests::cli::{exit_code, stderr, stdout_json};
use dbinit_tests::dump::dump_blocking;
use dbinit_tests::pg::psql;
use dbinit_tests::pgbouncer::{PgBouncer, PoolMode};
use dbinit_tests::{pg_port, pg_url, unique_database};

const STORM: usize = 16;

fn spawn(url: &str, extra_env: &[(&str, &str)]) -> Child {
    let mut command = dbinit_tests::cli::command(env!("CARGO_BIN_EXE_dbinit-demo"));
    command
        .args(["init", "--json", "--database-url", url])
        .env("DBINIT_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in extra_env {
        command.env(k, v);
    }
    command.spawn().expect("spawn dbinit-demo")
}

fn init(url: &str) -> Output {
    spawn(url, &[]).wait_with_output().unwrap()
}

/// A database created directly, as an operator would before pointing
/// replicas at a pooler.
fn created(prefix: &str) -> String {
    let name = unique_database(prefix);
    psql(&pg_url("postgres"), &format!("CREATE DATABASE {name}"));
    name
}

/// A reference database initialized directly, uninterrupted.
fn reference() -> String {
    let url = pg_url(&unique_database("pool_ref"));
    let out = init(&url);
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    url
}

/// A text field of the report's `lock` ("" when absent).
fn lock_field<'a>(report: &'a serde_json::Value, field: &str) -> &'a str {
    report["lock"][field].as_str().unwrap_or_default()
}

/// No advisory lock on any server connection, no lease row.
fn nothing_left(database: &str) {
    let direct = pg_url(database);
    let advisory = psql(
        &direct,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    );
    assert_eq!(
        advisory, "0",
        "an advisory lock was left on a server connection"
    );
    if psql(&direct, "SELECT to_regclass('dbinit_lock') IS NOT NULL") == "t" {
        let leases = psql(&direct, "SELECT count(*) FROM dbinit_lock");
        assert_eq!(leases, "0", "a lease row was left");
    }
}

fn storm_through(mode: PoolMode) {
    let bouncer = PgBouncer::start(pg_port(), mode, 4);
    let reference = reference();
    let database = created("pooled");
    let url = bouncer.url(&database);
    let children: Vec<Child> = (0..STORM).map(|_| spawn(&url, &[])).collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for out in &outputs {
        assert_eq!(
            exit_code(out),
            0,
            "{}\npgbouncer log:\n{}",
            stderr(out),
            bouncer.log()
        );
    }
    let applied: usize = outputs
        .iter()
        .map(|o| {
            stdout_json(o)["migrations"]["applied"]
                .as_array()
                .map_or(0, Vec::len)
        })
        .sum();
    assert_eq!(applied, 5, "every migration applied exactly once");
    // The report names the strategy, and why it was chosen.
    let detail = lock_field(&stdout_json(&outputs[0]), "name").to_owned();
    assert!(
        detail.contains("lease dbinit_lock") && detail.contains("pooler or proxy"),
        "{detail}"
    );
    let dump = dump_blocking(&pg_url(&database));
    assert_eq!(dump, dump_blocking(&reference));
    assert_eq!(dump.matches("\nuser admin").count(), 1, "{dump}");
    nothing_left(&database);
    // And once more, on the ready database: a no-op through the pooler.
    let again = init(&url);
    assert_eq!(exit_code(&again), 0, "{}", stderr(&again));
    assert_eq!(
        stdout_json(&again)["migrations"]["applied"],
        serde_json::json!([])
    );
    nothing_left(&database);
}

#[test]
fn sixteen_processes_through_transaction_pooling() {
    storm_through(PoolMode::Transaction);
}

#[test]
fn sixteen_processes_through_session_pooling() {
    storm_through(PoolMode::Session);
}

#[test]
fn a_holder_killed_behind_the_pooler_is_taken_over_when_its_lease_expires() {
    let bouncer = PgBouncer::start(pg_port(), PoolMode::Transaction, 4);
    let reference = reference();
    let database = created("pool_crash");
    let url = format!("{}?dbinit_lease_ttl=2s", bouncer.url(&database));
    // Killed between its first and second migration, lease held.
    let killed = spawn(&url, &[("DBINIT_CRASH_AT", "migration.committed:1")])
        .wait_with_output()
        .unwrap();
    assert_eq!(killed.status.code(), None, "{}", stderr(&killed));
    let held = psql(
        &pg_url(&database),
        "SELECT count(*) FROM dbinit_lock WHERE expires_at > clock_timestamp()",
    );
    assert_eq!(held, "1", "the killed holder's lease is still live");

    let out = init(&url);
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    let report = stdout_json(&out);
    let detail = lock_field(&report, "waited_for");
    assert!(
        detail.contains("pid"),
        "names the holder it waited for: {detail}"
    );
    assert_eq!(
        report["migrations"]["applied"].as_array().map(Vec::len),
        Some(4),
        "the rest of the migrations, once"
    );
    assert_eq!(dump_blocking(&pg_url(&database)), dump_blocking(&reference));
    nothing_left(&database);
}

#[test]
fn a_missing_database_behind_a_pooler_says_to_create_it_directly() {
    let bouncer = PgBouncer::start(pg_port(), PoolMode::Transaction, 4);
    let database = unique_database("pool_missing");
    let out = init(&bouncer.url(&database));
    let err = stderr(&out);
    assert_eq!(exit_code(&out), 20, "{err}");
    assert!(err.contains("pooler"), "{err}");
    assert!(err.contains("directly"), "{err}");
    let exists = psql(
        &pg_url("postgres"),
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{database}'"),
    );
    assert_eq!(exists, "0");
}

#[test]
fn an_explicit_advisory_lock_is_honoured_and_an_unknown_strategy_refused() {
    let bouncer = PgBouncer::start(pg_port(), PoolMode::Session, 2);
    let database = created("pool_explicit");
    let out = init(&format!("{}?dbinit_lock=advisory", bouncer.url(&database)));
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    let steps = stdout_json(&out)["steps"].to_string();
    assert!(steps.contains("advisory lock"), "{steps}");
    assert!(
        stderr(&out).contains("dbinit_lock=advisory, but"),
        "{}",
        stderr(&out)
    );
    // Session pooling runs DISCARD ALL when the client leaves.
    nothing_left(&database);

    let bad = init(&format!("{}?dbinit_lock=mutex", bouncer.url(&database)));
    assert_eq!(exit_code(&bad), 10, "{}", stderr(&bad));
    assert!(stderr(&bad).contains("dbinit_lock"), "{}", stderr(&bad));
}

#[test]
fn a_lease_taken_away_from_its_holder_stops_the_run() {
    let database = created("lease_lost");
    let direct = pg_url(&database);
    let migrations =
        dbinit_tests::cli::migration_dir("postgres", &[("V10__slow", "SELECT pg_sleep(20);")]);
    let child = start_init(
        &format!("{direct}?dbinit_lock=lease&dbinit_lease_ttl=1s"),
        migrations.path(),
    );
    let started = std::time::Instant::now();
    running(&database, "SELECT pg_sleep(20);");
    psql(&direct, "UPDATE dbinit_lock SET holder = 'someone else'");
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(exit_code(&out), 30, "{err}");
    assert!(err.contains("lease was lost"), "{err}");
    assert!(
        started.elapsed().as_secs() < 15,
        "the statement was not cancelled"
    );
    assert_eq!(
        psql(
            &direct,
            "SELECT count(*) FROM refinery_schema_history WHERE version = 10"
        ),
        "0"
    );
}

/// Processes that find an initializer at work wait for it, then verify its
/// work side by side under a shared hold: none of them applies or seeds
/// anything, each names the holder. Directly (advisory lock) and through
/// transaction pooling (lease).
#[test]
fn waiters_verify_the_holders_work_under_a_shared_hold() {
    let bouncer = PgBouncer::start(pg_port(), PoolMode::Transaction, 4);
    let migrations =
        dbinit_tests::cli::migration_dir("postgres", &[("V10__slow", "SELECT pg_sleep(2);")]);
    for (database, through) in [
        (created("waiters_direct"), None),
        (created("waiters_pooled"), Some(&bouncer)),
    ] {
        let url = through.map_or_else(|| pg_url(&database), |b| b.url(&database));
        let start = || start_init(&url, migrations.path());
        let holder = start();
        running(&database, "SELECT pg_sleep(2);");
        let waiters: Vec<Child> = (0..4).map(|_| start()).collect();
        let holder = holder.wait_with_output().unwrap();
        assert_eq!(exit_code(&holder), 0, "{}", stderr(&holder));
        assert_eq!(stdout_json(&holder)["lock"]["mode"], "exclusive");
        for waiter in waiters {
            let out = waiter.wait_with_output().unwrap();
            assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
            let report = stdout_json(&out);
            assert_eq!(report["lock"]["mode"], "shared", "{report}");
            assert!(
                lock_field(&report, "waited_for").contains("pid"),
                "{report}"
            );
            assert_eq!(report["migrations"]["applied"], serde_json::json!([]));
            assert_eq!(report["migrations"]["already_applied"], 6);
            let created: u64 = report["seeders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["created"].as_u64().unwrap())
                .sum();
            assert_eq!(created, 0, "{report}");
        }
        nothing_left(&database);
    }
}

/// Waits until `sql` (a migration's whole text) is running on `database`.
fn running(database: &str, sql: &str) {
    let started = std::time::Instant::now();
    while psql(
        &pg_url(database),
        // The shared cluster runs other tests' (and earlier runs') statements.
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND query = '{sql}'"
        ),
    ) != "1"
    {
        assert!(started.elapsed().as_secs() < 30, "{sql} never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn start_init(url: &str, migrations: &std::path::Path) -> Child {
    dbinit_tests::cli::command(env!("CARGO_BIN_EXE_dbinit-demo"))
        .args(["init", "--json", "--database-url", url, "--migrations"])
        .arg(migrations)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
}

/// A holder stopped (SIGSTOP) past its lease's expiry is taken over; when
/// it resumes it commits nothing more: the commit checks the lease first.
/// The one that takes over holds the lease, or (connected directly) the
/// advisory lock, having claimed the expired lease. Losing the lease behind
/// the pooler leaves the pooler up (its cancel is not cut short).
#[test]
fn a_holder_that_lost_its_lease_commits_nothing_more() {
    let bouncer = PgBouncer::start(pg_port(), PoolMode::Transaction, 4);
    const SLOW: &str = "CREATE TABLE slow (id int); SELECT pg_sleep(1.5);";
    let migrations = dbinit_tests::cli::migration_dir(
        "postgres",
        &[
            ("V10__slow", SLOW),
            ("V11__after", "CREATE TABLE after_slow (id int);"),
        ],
    );
    for (a_pooled, b_pooled, b_lease) in [
        (false, false, true),
        (true, true, true),
        (true, false, false),
    ] {
        let database = created("lease_fence");
        let url = |pooled: bool, lease: bool| {
            let base = if pooled {
                bouncer.url(&database)
            } else {
                pg_url(&database)
            };
            if lease {
                format!("{base}?dbinit_lock=lease&dbinit_lease_ttl=1s")
            } else {
                base
            }
        };
        let a = start_init(&url(a_pooled, true), migrations.path());
        running(&database, SLOW);
        signal(&a, nix::sys::signal::Signal::SIGSTOP);
        std::thread::sleep(std::time::Duration::from_millis(2500));
        // B takes over, then blocks behind A's open transaction (its
        // uncommitted `slow`) until A resumes.
        let b = start_init(&url(b_pooled, b_lease), migrations.path());
        std::thread::sleep(std::time::Duration::from_millis(1000));
        signal(&a, nix::sys::signal::Signal::SIGCONT);
        let a = a.wait_with_output().unwrap();
        let b = b.wait_with_output().unwrap();
        assert_eq!(exit_code(&a), 30, "{}", stderr(&a));
        assert!(stderr(&a).contains("lease was lost"), "{}", stderr(&a));
        assert_eq!(exit_code(&b), 0, "{}\n{}", stderr(&b), bouncer.log());
        assert_eq!(
            psql(
                &pg_url(&database),
                "SELECT string_agg(version::text, ',' ORDER BY version) \
                 FROM refinery_schema_history WHERE version >= 10"
            ),
            "10,11"
        );
        assert_eq!(
            psql(&bouncer.url(&database), "SELECT 1"),
            "1",
            "{}",
            bouncer.log()
        );
        nothing_left(&database);
    }
}

/// A replica connected directly (advisory lock) and one through the pooler
/// (lease) exclude each other: the second waits for the first.
#[test]
fn direct_and_pooled_processes_exclude_each_other() {
    let bouncer = PgBouncer::start(pg_port(), PoolMode::Transaction, 4);
    const SLOW: &str = "CREATE TABLE slow (id int); SELECT pg_sleep(1);";
    let migrations = dbinit_tests::cli::migration_dir("postgres", &[("V10__slow", SLOW)]);
    for direct_first in [true, false] {
        let database = created("mixed");
        let (direct, pooled) = (pg_url(&database), bouncer.url(&database));
        let (first, second) = if direct_first {
            (direct, pooled)
        } else {
            (pooled, direct)
        };
        let a = start_init(&first, migrations.path());
        running(&database, SLOW);
        let b = start_init(&second, migrations.path())
            .wait_with_output()
            .unwrap();
        let a = a.wait_with_output().unwrap();
        assert_eq!(exit_code(&a), 0, "{}", stderr(&a));
        assert_eq!(exit_code(&b), 0, "{}", stderr(&b));
        let report = stdout_json(&b);
        assert_eq!(
            report["migrations"]["applied"],
            serde_json::json!([]),
            "{report}"
        );
        assert!(
            lock_field(&report, "waited_for").contains("pid"),
            "{report}"
        );
        nothing_left(&database);
    }
}

/// SIGTERM of a holder behind PgBouncer: its statement is cancelled the
/// way libpq cancels (PgBouncer 1.18 used to abort on tokio-postgres's
/// cancel), the lease is released, and the pooler keeps serving.
/// SIGINT of a waiter queued in the pooler for a server connection exits
/// at once.
#[test]
fn signals_behind_the_pooler_cancel_cleanly_and_keep_it_up() {
    let bouncer = PgBouncer::start(pg_port(), PoolMode::Transaction, 1);
    const SLOW: &str = "SELECT pg_sleep(20);";
    let migrations = dbinit_tests::cli::migration_dir("postgres", &[("V10__slow", SLOW)]);
    let database = created("pool_signals");
    let url = bouncer.url(&database);
    // Idle server connections in the pool, as a running service leaves them.
    for _ in 0..3 {
        assert_eq!(exit_code(&init(&url)), 0);
    }
    let holder = start_init(&url, migrations.path());
    running(&database, SLOW);
    let waiter = start_init(&url, migrations.path());
    // A signal before the handler is installed kills the process; after
    // it, the waiter has little to do before it queues in the pooler.
    dbinit_tests::cli::wait_for_signal_handler(waiter.id());
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let started = std::time::Instant::now();
    signal(&waiter, nix::sys::signal::Signal::SIGINT);
    let waiter = waiter.wait_with_output().unwrap();
    assert_eq!(exit_code(&waiter), 130, "{}", stderr(&waiter));
    assert!(
        started.elapsed().as_secs() < 5,
        "the waiter did not stop at once"
    );

    signal(&holder, nix::sys::signal::Signal::SIGTERM);
    let holder = holder.wait_with_output().unwrap();
    assert_eq!(exit_code(&holder), 143, "{}", stderr(&holder));
    assert!(
        started.elapsed().as_secs() < 15,
        "the statement was not cancelled"
    );
    assert_eq!(
        psql(&url, "SELECT 1"),
        "1",
        "the pooler went down:\n{}",
        bouncer.log()
    );
    assert_eq!(
        psql(
            &pg_url(&database),
            &format!(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND query = '{SLOW}'"
            )
        ),
        "0"
    );
    nothing_left(&database);

    // A second signal forces the exit at once, but never while a cancel
    // request is in flight: the pooler stays up every time.
    let quick = format!("{url}?dbinit_lease_ttl=1s");
    for _ in 0..3 {
        let holder = start_init(&quick, migrations.path());
        running(&database, SLOW);
        signal(&holder, nix::sys::signal::Signal::SIGINT);
        std::thread::sleep(std::time::Duration::from_millis(1));
        signal(&holder, nix::sys::signal::Signal::SIGINT);
        let out = holder.wait_with_output().unwrap();
        assert_eq!(exit_code(&out), 130, "{}", stderr(&out));
        assert_eq!(
            psql(&url, "SELECT 1"),
            "1",
            "the pooler went down:\n{}",
            bouncer.log()
        );
    }
}

/// Logins refused by the pooler are authentication errors (exit 21), and a
/// read-only role through the pooler can verify a ready database but not
/// take the lease to change one.
#[test]
fn the_poolers_refusals_and_a_read_only_role() {
    use dbinit_tests::pgbouncer::{READER, READER_PASSWORD};
    let bouncer = PgBouncer::start(pg_port(), PoolMode::Transaction, 2);
    let database = created("pool_roles");
    let wrong = bouncer.url_as("postgres", "not-the-password", &database);
    let out = init(&wrong);
    assert_eq!(exit_code(&out), 21, "{}", stderr(&out));
    assert!(!stderr(&out).contains("not-the-password"));

    let ready = init(&bouncer.url(&database));
    assert_eq!(exit_code(&ready), 0, "{}", stderr(&ready));
    let direct = pg_url(&database);
    psql(
        &direct,
        &format!(
            "DROP ROLE IF EXISTS {READER}; CREATE ROLE {READER} LOGIN PASSWORD '{READER_PASSWORD}'; \
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO {READER}"
        ),
    );
    let reader = bouncer.url_as(READER, READER_PASSWORD, &database);
    let out = init(&reader);
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["lock"]["mode"], "shared");

    let out = dbinit_tests::cli::command(env!("CARGO_BIN_EXE_dbinit-demo"))
        .args(["plan", "--database-url", &reader])
        .output()
        .unwrap();
    assert_eq!(exit_code(&out), 0, "plan is read-only: {}", stderr(&out));

    // While a holder works, the reader waits for it, then verifies.
    const SLOW: &str = "SELECT pg_sleep(1);";
    let slow = dbinit_tests::cli::migration_dir("postgres", &[("V10__slow", SLOW)]);
    let holder = start_init(&bouncer.url(&database), slow.path());
    running(&database, SLOW);
    let out = start_init(&reader, slow.path()).wait_with_output().unwrap();
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    let report = stdout_json(&out);
    assert_eq!(report["lock"]["mode"], "shared", "{report}");
    assert!(
        lock_field(&report, "waited_for").contains("pid"),
        "{report}"
    );
    assert_eq!(exit_code(&holder.wait_with_output().unwrap()), 0);

    // Work left: the reader cannot take the lease, and says what it needs.
    psql(
        &direct,
        "DELETE FROM refinery_schema_history WHERE version = 5",
    );
    let out = start_init(&reader, slow.path()).wait_with_output().unwrap();
    assert_eq!(exit_code(&out), 22, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("CREATE on the schema"),
        "{}",
        stderr(&out)
    );
    psql(
        &pg_url("postgres"),
        &format!("DROP DATABASE {database} WITH (FORCE)"),
    );
    psql(&pg_url("postgres"), &format!("DROP ROLE {READER}"));
}

/// The health monitor through transaction pooling: its kept session's
/// every statement may land on another server connection, and every tick
/// still passes (no prepared-statement name collides, nothing stays set).
#[test]
fn the_monitor_keeps_passing_through_transaction_pooling() {
    let database = unique_database("pool_monitor");
    let out = init(&pg_url(&database));
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    let bouncer = PgBouncer::start(pg_port(), PoolMode::Transaction, 2);
    let out = dbinit_tests::cli::command(env!("CARGO_BIN_EXE_dbinit-demo"))
        .args(["health", "--json", "--watch", "20ms", "--ticks", "40"])
        .args(["--database-url", &bouncer.url(&database)])
        .output()
        .unwrap();
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    let stats = stdout_json(&out);
    assert_eq!(stats["ticks"], 40, "{stats}");
    assert_eq!(stats["failing"], 0, "{}", stderr(&out));
    nothing_left(&database);
}

/// A run that fails without crashing releases its lease, also when its own
/// connection is gone: PgBouncer in statement mode takes the lease (one
/// statement), then refuses the migration's transaction and closes the
/// connection. The release goes over a fresh one, and the next run does not
/// wait out the lease.
#[test]
fn a_failed_run_releases_its_lease_over_a_fresh_connection() {
    let bouncer = PgBouncer::start(pg_port(), PoolMode::Statement, 2);
    let database = created("lease_release");
    let out = init(&format!("{}?dbinit_lease_ttl=1h", bouncer.url(&database)));
    assert_ne!(exit_code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        psql(&pg_url(&database), "SELECT count(*) FROM dbinit_lock"),
        "0",
        "the lease stayed: {}",
        stderr(&out)
    );
    let next = dbinit_tests::cli::command(env!("CARGO_BIN_EXE_dbinit-demo"))
        .args(["init", "--json", "--lock-timeout", "5s", "--database-url"])
        .arg(pg_url(&database))
        .output()
        .unwrap();
    assert_eq!(exit_code(&next), 0, "{}", stderr(&next));

    // The pooler gone mid-migration: no connection can delete the row. The
    // run says so, with the command that clears it, and that command works.
    let bouncer = PgBouncer::start(pg_port(), PoolMode::Transaction, 2);
    let database = created("lease_stuck");
    const SLOW: &str = "SELECT pg_sleep(30);";
    let migrations = dbinit_tests::cli::migration_dir("postgres", &[("V10__slow", SLOW)]);
    let holder = start_init(
        &format!("{}?dbinit_lease_ttl=1h", bouncer.url(&database)),
        migrations.path(),
    );
    running(&database, SLOW);
    drop(bouncer);
    let out = holder.wait_with_output().unwrap();
    assert_ne!(exit_code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    let command = err
        .split("To clear it now: psql \"$DATABASE_URL\" -c \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no command to clear the lease: {err}"));
    assert_eq!(
        psql(&pg_url(&database), "SELECT count(*) FROM dbinit_lock"),
        "1"
    );
    psql(&pg_url(&database), command);
    assert_eq!(
        psql(&pg_url(&database), "SELECT count(*) FROM dbinit_lock"),
        "0"
    );
    psql(
        &pg_url("postgres"),
        &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}' AND query = '{SLOW}'"),
    );
}

/// A monitor through PgBouncer while the server behind it restarts: the
/// pooler stays up and closes each tick's connection. Dependency crates log
/// that (deadpool's "Connection error") through the same limiter as dbinit's
/// own lines: once per window, not once per tick.
#[test]
fn a_monitor_through_a_pooler_while_the_server_restarts_logs_quietly() {
    use dbinit_tests::pg::{Cluster, ClusterOptions};
    let cluster = Cluster::new(ClusterOptions::default()).expect("initdb");
    cluster.start().expect("start");
    let database = unique_database("restarting");
    let out = init(&cluster.url(&database));
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    let bouncer = PgBouncer::start(cluster.port(), PoolMode::Transaction, 2);
    let monitor = dbinit_tests::cli::command(env!("CARGO_BIN_EXE_dbinit-demo"))
        .args([
            "health",
            "--json",
            "--no-seed",
            "--watch",
            "200ms",
            "--ticks",
            "50",
        ])
        .args(["--database-url", &bouncer.url(&database)])
        .env("DBINIT_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(2));
    cluster.stop("fast").expect("stop");
    std::thread::sleep(std::time::Duration::from_secs(5));
    cluster.start().expect("start again");
    let out = monitor.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(
        err.matches("Connection error").count() <= 1,
        "a line per tick:\n{err}"
    );
    assert!(err.lines().count() <= 6, "{err}");
    assert_eq!(stdout_json(&out)["ticks"], 50, "{err}");
}
