//! The health monitor in-process, on a real SQLite file, with tokio's clock
//! paused: ten simulated minutes of an outage take a second, and the log
//! they produce is counted.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dbinit_runner::dbinit_core::{Environment, HealthStatus};
use dbinit_runner::{CancellationToken, HealthSnapshot, Initializer, Monitor};
use dbinit_tests::SqliteFile;
use tokio::sync::watch;

/// The log, as the fmt subscriber writes it.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Log {
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains("health: "))
            .map(str::to_owned)
            .collect()
    }
}

async fn wait_until(
    rx: &mut watch::Receiver<Arc<HealthSnapshot>>,
    done: impl Fn(&HealthSnapshot) -> bool,
) -> Arc<HealthSnapshot> {
    loop {
        let snapshot = Arc::clone(&rx.borrow_and_update());
        if done(&snapshot) {
            return snapshot;
        }
        rx.changed().await.expect("the monitor stopped");
    }
}

/// `wait` within 30 s of real time (not for a paused clock).
async fn within<T>(wait: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .expect("not within 30 s")
}

/// A migrated SQLite database (the demo schema, no seeding) and its
/// initializer.
async fn migrated() -> (SqliteFile, Initializer) {
    let db = SqliteFile::new();
    let init = Initializer::new(db.url())
        .migration_sets(dbinit_accounts::migration_sets().unwrap())
        .environment(Environment::Test)
        .seed(false);
    init.run().await.expect("init");
    (db, init)
}

fn sql(db: &SqliteFile, sql: &str) {
    rusqlite::Connection::open(&db.path)
        .and_then(|c| c.execute_batch(sql))
        .expect(sql);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_ten_minute_outage_logs_one_transition_a_bounded_number_of_repeats_and_one_recovery() {
    let (db, init) = migrated().await;
    let log = Log::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let log = log.clone();
            move || log.clone()
        })
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let interval = Duration::from_secs(1);
    let monitor = Monitor::new(init, interval).expect("monitor");
    let mut rx = monitor.subscribe();
    assert!(rx.borrow().readiness().is_err(), "not ready before a tick");
    let stop = CancellationToken::new();
    let task = tokio::spawn(monitor.run(stop.clone()));
    let healthy = wait_until(&mut rx, |s| s.ticks >= 3).await;
    assert!(healthy.ready, "{healthy:?}");
    assert_eq!(healthy.status, HealthStatus::Healthy, "{healthy:?}");

    // The outage: the migration history disappears (a restore gone wrong).
    sql(
        &db,
        "ALTER TABLE refinery_schema_history RENAME TO history_away",
    );
    let broken_at = rx.borrow().ticks;
    let down = wait_until(&mut rx, |s| !s.ready).await;
    assert!(
        down.ticks <= broken_at + 2,
        "not ready only at tick {} (broken after tick {broken_at})",
        down.ticks
    );
    let reasons = down.readiness().unwrap_err();
    assert!(
        reasons.iter().any(|r| r.starts_with("migrations_current:")),
        "{reasons:?}"
    );
    let outage = tokio::time::Instant::now();
    let long = wait_until(&mut rx, |s| s.ticks >= down.ticks + 600).await;
    assert!(!long.ready);
    assert!(
        outage.elapsed() >= Duration::from_secs(599),
        "{:?}",
        outage.elapsed()
    );

    sql(
        &db,
        "ALTER TABLE history_away RENAME TO refinery_schema_history",
    );
    let back = wait_until(&mut rx, |s| s.ready).await;
    assert_eq!(back.status, HealthStatus::Healthy);
    stop.cancel();
    let stats = task.await.expect("monitor task");

    let lines = log.lines();
    let count = |needle: &str| lines.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(count("health: healthy ("), 1, "{lines:#?}");
    assert_eq!(count("health: healthy → unhealthy"), 1, "{lines:#?}");
    assert_eq!(count("health: healthy again after 10m"), 1, "{lines:#?}");
    // One summary per 60 s window of the 600 s outage, give or take the
    // window the outage ended in.
    let repeats = count("health: still unhealthy");
    assert!((9..=10).contains(&repeats), "{repeats} repeats: {lines:#?}");
    assert_eq!(lines.len(), 3 + repeats, "{lines:#?}");
    assert_eq!(stats.lines as usize, lines.len());
    assert!(stats.failing >= 600, "{stats:?}");
}

/// A restore replaces the file under a running service, then someone
/// deletes it: the monitor's kept connection would still see the old file
/// through its descriptor; it notices, reconnects, and reports what is there.
#[tokio::test]
async fn a_replaced_or_deleted_sqlite_file_is_noticed() {
    replaced_or_deleted(false).await;
}

/// The same with the `connectivity` check turned off: the monitor proves
/// its kept connection itself.
#[tokio::test]
async fn a_replaced_or_deleted_sqlite_file_is_noticed_without_the_connectivity_check() {
    replaced_or_deleted(true).await;
}

async fn replaced_or_deleted(skip_connectivity: bool) {
    let (db, mut init) = migrated().await;
    if skip_connectivity {
        init = init.skip_check("connectivity");
    }
    let monitor = Monitor::new(init, Duration::from_millis(20)).expect("monitor");
    let mut rx = monitor.subscribe();
    let stop = CancellationToken::new();
    let task = tokio::spawn(monitor.run(stop.clone()));
    within(wait_until(&mut rx, |s| s.ready)).await;

    // The "restore": an empty database renamed over the file.
    let restored = db.dir.path().join("restored.db");
    rusqlite::Connection::open(&restored)
        .and_then(|c| c.execute_batch("CREATE TABLE t (x)"))
        .unwrap();
    std::fs::rename(&restored, &db.path).unwrap();
    let replaced = within(wait_until(&mut rx, |s| {
        s.not_ready
            .iter()
            .any(|r| r.starts_with("migrations_current:"))
    }))
    .await;
    assert!(!replaced.ready, "{replaced:?}");

    std::fs::remove_file(&db.path).unwrap();
    let gone = within(wait_until(&mut rx, |s| {
        s.not_ready.iter().any(|r| r.starts_with("connectivity:"))
    }))
    .await;
    assert!(!gone.ready, "{gone:?}");
    stop.cancel();
    task.await.unwrap();
}
