//! Realistic migration histories (tests/src/realistic.rs: 300 migrations per
//! dialect with every case real projects carry) through the whole pipeline:
//! applied as `psql` / `sqlite3` / `mariadb` would apply them, session state never leaks
//! from one migration into the next, a no-op rerun, all the way down and up
//! again to the same schema.

use dbinit_runner::dbinit_core::engine::RollbackTarget;
use dbinit_runner::dbinit_core::{ConnectOptions, DatabaseUrl, MigrationSet, Session, Value};
use dbinit_runner::Initializer;
use dbinit_tests::dump::dump;
use dbinit_tests::{mysql_url, pg_url, realistic, unique_database};

const COUNT: usize = 300;

fn migrations(dialect: &str) -> (tempfile::TempDir, MigrationSet) {
    let dir = tempfile::tempdir().unwrap();
    realistic::write(dir.path(), &realistic::migrations(dialect, COUNT));
    let set = MigrationSet::from_dir(dir.path()).unwrap();
    (dir, set)
}

fn initializer(url: &str, set: &MigrationSet) -> Initializer {
    let mut options = ConnectOptions::default();
    options.connect_timeout = std::time::Duration::from_secs(5);
    Initializer::new(DatabaseUrl::parse(url).unwrap())
        .migrations(set.clone())
        .seed(false)
        .connect_options(options)
}

async fn round_trip(url: &str, dialect: &str) {
    dbinit_tests::link();
    let (_dir, set) = migrations(dialect);
    let init = initializer(url, &set);
    let report = init.run().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.migrations.applied.len(), COUNT);
    assert_eq!(
        report.migrations.notes.len(),
        2 * COUNT / realistic::CYCLE,
        "empty and comment-only migrations are noted: {:?}",
        report.migrations.notes
    );
    let first = dump(url).await;

    let again = init.run().await.unwrap();
    assert!(again.migrations.applied.is_empty());
    assert_eq!(again.migrations.already_applied, COUNT);

    let down = init.rollback(RollbackTarget::To(0)).await.unwrap();
    assert_eq!(down.migrations.len(), COUNT);
    let emptied = dump(url).await;
    assert!(!emptied.contains("table "), "{emptied}");
    init.run().await.unwrap();
    assert_eq!(dump(url).await, first, "up, all the way down, and up again");
}

/// A session on `url`, and its probe tables (one per cycle).
async fn probes(url: &str) -> (Box<dyn Session>, Vec<String>) {
    let parsed = DatabaseUrl::parse(url).unwrap();
    let mut s = parsed
        .connector()
        .unwrap()
        .make()
        .connect(&parsed, &ConnectOptions::default())
        .await
        .unwrap();
    let probes: Vec<String> = s
        .tables()
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.starts_with("probe_"))
        .collect();
    assert_eq!(probes.len(), COUNT / realistic::CYCLE);
    (s, probes)
}

#[tokio::test]
async fn sqlite_applies_and_round_trips_a_realistic_history() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/real.db", dir.path().display());
    round_trip(&url, "sqlite").await;
}

#[tokio::test]
async fn postgres_applies_and_round_trips_a_realistic_history() {
    let url = pg_url(&unique_database("realistic"));
    round_trip(&url, "postgres").await;

    // Every probe ran in a clean session: its table in the default schema,
    // the server's time zone, no statement timeout.
    let (mut s, probes) = probes(&url).await;
    let server_zone = s
        .query("SELECT current_setting('TimeZone')", &[])
        .await
        .unwrap()[0]
        .values()[0]
        .clone();
    for probe in probes {
        let rows = s
            .query(
                &format!("SELECT zone, timeout, state::text AS state FROM {probe}"),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(
            rows[0].values()[0],
            server_zone,
            "{probe}: time zone leaked"
        );
        assert_eq!(
            rows[0].values()[1],
            Value::from("0"),
            "{probe}: timeout leaked"
        );
        assert_eq!(rows[0].values()[2], Value::from("archived"));
    }
}

#[tokio::test]
async fn mysql_applies_and_round_trips_a_realistic_history() {
    let url = mysql_url(&unique_database("realistic"));
    round_trip(&url, "mysql").await;

    // Every probe ran in a clean session: foreign keys checked, the
    // server's time zone and SQL mode.
    let (mut s, probes) = probes(&url).await;
    let server = s
        .query("SELECT @@time_zone, 1, @@sql_mode", &[])
        .await
        .unwrap()[0]
        .values()
        .to_vec();
    for probe in probes {
        let rows = s
            .query(
                &format!("SELECT zone, checks, sql_mode, state FROM {probe}"),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(
            rows[0].values()[..3],
            server[..],
            "{probe}: settings leaked"
        );
        assert_eq!(rows[0].values()[3], Value::from("archived"));
    }
    // The triggers' bodies kept their inner `;`.
    let named = s
        .query("SELECT name FROM t1 WHERE code = 'empty-1'", &[])
        .await
        .unwrap();
    assert_eq!(named[0].values()[0], Value::from("unnamed; really"));
}
