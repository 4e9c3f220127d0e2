//! The MySQL init lock on the real MariaDB server: `GET_LOCK` and the lease
//! (`?dbinit_lock=lease`, for servers and proxies without `GET_LOCK`).
//! Waiters verify the holder's work side by side; a storm converges under
//! the lease; a killed holder's lease is taken over once it expires; a
//! holder whose lease was taken away stops; the two strategies exclude each
//! other.

use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use dbinit_tests::cli::{exit_code as code, stderr, stdout_json as json};
use dbinit_tests::dump::{dump_blocking, execute_blocking, scalar_blocking};
use dbinit_tests::{mysql_url, unique_database};

fn spawn(url: &str, extra: &[&str], env: &[(&str, &str)]) -> Child {
    let mut command = dbinit_tests::cli::command(env!("CARGO_BIN_EXE_dbinit-demo"));
    command
        .args(["init", "--json", "--database-url", url])
        .args(extra)
        .env("DBINIT_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    command.spawn().expect("spawn dbinit-demo")
}

fn init(url: &str, extra: &[&str]) -> Output {
    spawn(url, extra, &[]).wait_with_output().unwrap()
}

fn lease(database: &str, ttl: &str) -> String {
    format!(
        "{}?dbinit_lock=lease&dbinit_lease_ttl={ttl}",
        mysql_url(database)
    )
}

/// Waits until a statement containing `text` runs on the server.
fn running(text: &str) {
    let started = Instant::now();
    let sql = format!(
        "SELECT count(*) FROM information_schema.PROCESSLIST \
         WHERE INFO LIKE '%{text}%' AND ID <> CONNECTION_ID()"
    );
    while scalar_blocking(&mysql_url("mysql"), &sql) == "0" {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{text} never ran"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn lease_rows(database: &str) -> String {
    scalar_blocking(&mysql_url(database), "SELECT count(*) FROM dbinit_lock")
}

#[test]
fn a_lease_storm_of_16_converges_and_leaves_no_row() {
    let reference = mysql_url(&unique_database("mylease_ref"));
    assert_eq!(code(&init(&reference, &[])), 0);
    let database = unique_database("mylease_storm");
    let url = lease(&database, "30s");
    let children: Vec<Child> = (0..16).map(|_| spawn(&url, &[], &[])).collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let report = json(&out);
        let lock = report["lock"]["name"].as_str().unwrap_or_default();
        assert!(
            lock.contains("lease dbinit_lock") && lock.contains("dbinit_lock=lease"),
            "{report}"
        );
    }
    assert_eq!(
        dump_blocking(&mysql_url(&database)),
        dump_blocking(&reference)
    );
    assert_eq!(lease_rows(&database), "0", "a lease row was left");
}

/// Processes that find an initializer at work wait for it, then verify its
/// work side by side under a shared hold, with `GET_LOCK` and with the
/// lease: none applies or seeds anything, each names the holder.
#[test]
fn waiters_verify_the_holders_work_under_a_shared_hold() {
    let migrations =
        dbinit_tests::cli::migration_dir("mysql", &[("V10__slow", "SELECT SLEEP(2) AS slow_one;")]);
    let dir = migrations.path().to_str().unwrap().to_owned();
    let args = ["--migrations", dir.as_str()];
    for (url, holder_says) in [
        (mysql_url(&unique_database("mywait_get")), "connection"),
        (lease(&unique_database("mywait_lease"), "30s"), "pid"),
    ] {
        let holder = spawn(&url, &args, &[]);
        running("slow_one");
        let waiters: Vec<Child> = (0..4).map(|_| spawn(&url, &args, &[])).collect();
        let holder = holder.wait_with_output().unwrap();
        assert_eq!(code(&holder), 0, "{}", stderr(&holder));
        assert_eq!(json(&holder)["lock"]["mode"], "exclusive");
        for waiter in waiters {
            let out = waiter.wait_with_output().unwrap();
            assert_eq!(code(&out), 0, "{}", stderr(&out));
            let report = json(&out);
            assert_eq!(report["lock"]["mode"], "shared", "{report}");
            let waited_for = report["lock"]["waited_for"].as_str().unwrap_or_default();
            assert!(waited_for.contains(holder_says), "{report}");
            assert_eq!(report["migrations"]["applied"], serde_json::json!([]));
            let created: u64 = report["seeders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["created"].as_u64().unwrap())
                .sum();
            assert_eq!(created, 0, "{report}");
        }
    }
}

#[test]
fn a_killed_holder_is_taken_over_when_its_lease_expires() {
    let reference = mysql_url(&unique_database("mylease_ref2"));
    assert_eq!(code(&init(&reference, &[])), 0);
    // The next run on the lease takes it over; one on GET_LOCK waits for
    // it to expire, then clears it.
    for (next, says) in [("lease", "took over an expired"), ("advisory", "")] {
        let database = unique_database("mylease_crash");
        let url = lease(&database, "2s");
        let killed = spawn(&url, &[], &[("DBINIT_CRASH_AT", "migration.committed:1")])
            .wait_with_output()
            .unwrap();
        assert_eq!(killed.status.code(), None, "{}", stderr(&killed));
        let live = scalar_blocking(
            &mysql_url(&database),
            "SELECT count(*) FROM dbinit_lock WHERE expires_at > UTC_TIMESTAMP(6)",
        );
        assert_eq!(live, "1", "the killed holder's lease is still live");

        let url = url.replace("dbinit_lock=lease", &format!("dbinit_lock={next}"));
        let out = spawn(&url, &[], &[("DBINIT_LOG", "info")])
            .wait_with_output()
            .unwrap();
        assert_eq!(code(&out), 0, "{next}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{next}: {}", stderr(&out));
        let report = json(&out);
        let waited_for = report["lock"]["waited_for"].as_str().unwrap_or_default();
        assert!(waited_for.contains("pid"), "names the holder: {report}");
        assert_eq!(
            report["migrations"]["applied"].as_array().map(Vec::len),
            Some(4),
            "{next}"
        );
        assert_eq!(
            dump_blocking(&mysql_url(&database)),
            dump_blocking(&reference)
        );
        assert_eq!(lease_rows(&database), "0", "{next}");
    }
}

#[test]
fn a_lease_taken_away_from_its_holder_stops_the_run() {
    let database = unique_database("mylease_lost");
    let migrations = dbinit_tests::cli::migration_dir(
        "mysql",
        &[("V10__slow", "SELECT SLEEP(20) AS held_one;")],
    );
    let dir = migrations.path().to_str().unwrap().to_owned();
    let started = Instant::now();
    let child = spawn(&lease(&database, "1s"), &["--migrations", &dir], &[]);
    running("held_one");
    execute_blocking(
        &mysql_url(&database),
        "UPDATE dbinit_lock SET holder = 'someone else'",
    );
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(code(&out), 30, "{err}");
    assert!(err.contains("lease was lost"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the statement was not cancelled"
    );
    assert_eq!(
        scalar_blocking(
            &mysql_url(&database),
            "SELECT count(*) FROM refinery_schema_history WHERE version = 10"
        ),
        "0"
    );
}

/// A process on `GET_LOCK` and one on the lease (as when one replica goes
/// through a proxy without `GET_LOCK`) never work at once: whichever comes
/// second waits for the first and names it.
#[test]
fn get_lock_and_lease_holders_exclude_each_other() {
    let migrations = dbinit_tests::cli::migration_dir(
        "mysql",
        &[("V10__slow", "SELECT SLEEP(2) AS rival_one;")],
    );
    let dir = migrations.path().to_str().unwrap().to_owned();
    let args = ["--migrations", dir.as_str(), "--no-seed"];
    for (first_lease, names) in [(false, "connection"), (true, "pid")] {
        let database = unique_database("myrival");
        let (get_lock, leased) = (mysql_url(&database), lease(&database, "30s"));
        let (first, second) = if first_lease {
            (&leased, &get_lock)
        } else {
            (&get_lock, &leased)
        };
        let holder = spawn(first, &args, &[]);
        running("rival_one");
        let waiter = spawn(second, &args, &[]).wait_with_output().unwrap();
        let holder = holder.wait_with_output().unwrap();
        assert_eq!(code(&holder), 0, "{}", stderr(&holder));
        assert_eq!(code(&waiter), 0, "{}", stderr(&waiter));
        let report = json(&waiter);
        let waited_for = report["lock"]["waited_for"].as_str().unwrap_or_default();
        assert!(waited_for.contains(names), "{report}");
        assert_eq!(
            report["migrations"]["applied"],
            serde_json::json!([]),
            "{report}"
        );
        assert_eq!(lease_rows(&database), "0");
    }
}

#[test]
fn lock_parameters_are_checked() {
    let database = unique_database("mylockurl");
    for (query, says) in [
        ("dbinit_lock=mutex", "dbinit_lock"),
        ("dbinit_lease_ttl=0s", "dbinit_lease_ttl"),
        ("dbinit_lease_ttl=2h", "dbinit_lease_ttl"),
    ] {
        let out = init(&format!("{}?{query}", mysql_url(&database)), &[]);
        assert_eq!(code(&out), 10, "{query}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "{query}: {}", stderr(&out));
    }
    let out = init(
        &format!("{}?dbinit_lock=advisory", mysql_url(&database)),
        &["--no-seed"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(json(&out)["lock"]["name"]
        .as_str()
        .unwrap()
        .starts_with("dbinit:"));
}

/// A holder stopped (SIGSTOP) mid-migration past its lease's expiry is
/// taken over: the process that takes over ends the stopped holder's
/// session first (its statement would otherwise run on), and the stopped
/// holder, resumed, commits nothing more. Every statement runs once.
#[test]
fn a_holder_stopped_past_its_lease_commits_nothing_more() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let database = unique_database("mylease_stop");
    let url = lease(&database, "1s");
    let sql = "CREATE TABLE x (id INT PRIMARY KEY, a INT);\n\
               SELECT SLEEP(3) AS frozen_one;\n\
               ALTER TABLE x ADD INDEX (a);\n\
               ALTER TABLE x ADD COLUMN b INT;";
    let migrations = dbinit_tests::cli::migration_dir("mysql", &[("V10__frozen", sql)]);
    let dir = migrations.path().to_str().unwrap().to_owned();
    let args = [
        "--no-seed",
        "--migrations",
        dir.as_str(),
        "--lock-timeout",
        "30s",
    ];
    let a = spawn(&url, &args, &[]);
    running("frozen_one");
    let pid = Pid::from_raw(a.id() as i32);
    kill(pid, Signal::SIGSTOP).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let b = spawn(&url, &args, &[]).wait_with_output().unwrap();
    kill(pid, Signal::SIGCONT).unwrap();
    let a = a.wait_with_output().unwrap();
    assert_eq!(code(&b), 0, "{}", stderr(&b));
    assert!(stderr(&b).contains("ending the session"), "{}", stderr(&b));
    assert_ne!(code(&a), 0, "the stopped holder went on: {}", stderr(&a));
    let create = scalar_blocking(&mysql_url(&database), "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'x' AND COLUMN_NAME = 'a'");
    assert_eq!(create, "1", "the index was made twice");
    assert_eq!(
        scalar_blocking(
            &mysql_url(&database),
            "SELECT COUNT(*) FROM dbinit_statement_journal"
        ),
        "0",
        "journal rows were left"
    );
    // Run again: nothing left to do, nothing refused.
    let again = spawn(&url, &args, &[]).wait_with_output().unwrap();
    assert_eq!(code(&again), 0, "{}", stderr(&again));
    assert_eq!(json(&again)["migrations"]["applied"], serde_json::json!([]));
}

/// A user that may only read verifies a ready database (with `GET_LOCK`
/// and with the lease, whose table it may not create) and is refused work
/// as a permission problem (exit 22), not as bad SQL.
#[test]
fn a_user_that_may_only_read_verifies_and_is_refused_work() {
    let database = unique_database("myreader");
    let owner = mysql_url(&database);
    let ready = dbinit_tests::cli::migration_dir("mysql", &[]);
    let pending =
        dbinit_tests::cli::migration_dir("mysql", &[("V10__more", "CREATE TABLE more (id INT);")]);
    let dir = |d: &tempfile::TempDir| d.path().to_str().unwrap().to_owned();
    let out = init(&owner, &["--no-seed", "--migrations", &dir(&ready)]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let user = format!("r{}", &database[database.len() - 12..]);
    execute_blocking(
        &mysql_url("mysql"),
        &format!(
            "CREATE USER '{user}'@'%' IDENTIFIED BY 'Rd-pw-9'; \
             GRANT SELECT ON `{database}`.* TO '{user}'@'%'"
        ),
    );
    let (scheme, rest) = owner.split_once("://").unwrap();
    let host = rest.split_once('@').unwrap().1;
    let reader = format!("{scheme}://{user}:Rd-pw-9@{host}");
    for lock in ["", "?dbinit_lock=lease"] {
        let url = format!("{reader}{lock}");
        let out = init(&url, &["--no-seed", "--migrations", &dir(&ready)]);
        assert_eq!(code(&out), 0, "{lock}: {}", stderr(&out));
        let out = init(&url, &["--no-seed", "--migrations", &dir(&pending)]);
        assert_eq!(code(&out), 22, "{lock}: {}", stderr(&out));
        assert!(!stderr(&out).contains("Rd-pw-9"), "{}", stderr(&out));
    }
}
