//! Seeders that run once per version, through the library, on a real
//! SQLite file and the test PostgreSQL cluster: skipped without touching
//! their tables while the history records them, run again for a new
//! version, and a seeder added later runs on a database seeded before it.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use dbinit_runner::dbinit_core::{
    async_trait, inventory, ConnectOptions, CoreError, DatabaseUrl, Environment, Environments,
    MigrationFile, MigrationSet, MigrationSets, SecretSink, SeedContext, SeedOutcome, SeedPolicy,
    Seeder, SeederRegistration,
};
use dbinit_runner::report::{InitReport, SeedStatus};
use dbinit_runner::seed_history::SeedHistory;
use dbinit_runner::Initializer;

/// Times `Catalog::seed` ran.
static CATALOG_RUNS: AtomicU32 = AtomicU32::new(0);
/// `Catalog`'s version.
static CATALOG_VERSION: AtomicU32 = AtomicU32::new(1);
/// Whether `Late` is part of "this release".
static LATE_RELEASED: AtomicBool = AtomicBool::new(false);

struct Catalog;

#[async_trait]
impl Seeder for Catalog {
    fn name(&self) -> &'static str {
        "catalog"
    }
    fn policy(&self) -> SeedPolicy {
        SeedPolicy::Once {
            version: CATALOG_VERSION.load(Ordering::SeqCst),
        }
    }
    async fn is_seeded(&self, _: &mut SeedContext<'_>) -> Result<bool, CoreError> {
        unreachable!("a once-per-version seeder is never asked")
    }
    async fn seed(&self, cx: &mut SeedContext<'_>) -> Result<SeedOutcome, CoreError> {
        CATALOG_RUNS.fetch_add(1, Ordering::SeqCst);
        let version = i64::from(CATALOG_VERSION.load(Ordering::SeqCst));
        let n = cx
            .session
            .execute(
                "INSERT INTO catalog (version) VALUES ($1)",
                &[version.into()],
            )
            .await?;
        Ok(SeedOutcome::created(n))
    }
}

struct Late;

#[async_trait]
impl Seeder for Late {
    fn name(&self) -> &'static str {
        "late"
    }
    fn policy(&self) -> SeedPolicy {
        SeedPolicy::Once { version: 1 }
    }
    fn environments(&self) -> Environments {
        if LATE_RELEASED.load(Ordering::SeqCst) {
            Environments::ALL
        } else {
            Environments::only(Environment::Production)
        }
    }
    async fn is_seeded(&self, _: &mut SeedContext<'_>) -> Result<bool, CoreError> {
        Ok(false)
    }
    async fn seed(&self, cx: &mut SeedContext<'_>) -> Result<SeedOutcome, CoreError> {
        let n = cx
            .session
            .execute("INSERT INTO catalog (version) VALUES (100)", &[])
            .await?;
        Ok(SeedOutcome::created(n))
    }
}

inventory::submit! { SeederRegistration::new(|| Box::new(Catalog)) }
inventory::submit! { SeederRegistration::new(|| Box::new(Late)) }

struct Quiet;

impl SecretSink for Quiet {
    fn show_once(&self, _: &str, _: &str) -> std::io::Result<()> {
        Ok(())
    }
}

/// The demo's schema and a `catalog` table, for both backends.
fn migrations() -> MigrationSets {
    let demo = dbinit_accounts::migration_sets().unwrap();
    let mut sets = demo.clone();
    for backend in ["sqlite", "postgres"] {
        let mut files = demo.get(backend).unwrap().migrations().to_vec();
        files.push(
            MigrationFile::new(
                "V6__catalog",
                "CREATE TABLE catalog (version INTEGER NOT NULL)",
            )
            .unwrap(),
        );
        sets = sets.with(backend, MigrationSet::new("test", files).unwrap());
    }
    sets
}

async fn init(url: &DatabaseUrl) -> InitReport {
    Initializer::new(url.clone())
        .migration_sets(migrations())
        .environment(Environment::Test)
        .secret_sink(Arc::new(Quiet))
        .run()
        .await
        .unwrap_or_else(|e| panic!("{}", e.error()))
}

fn status(report: &InitReport, name: &str) -> Option<SeedStatus> {
    report
        .seeders
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.status)
}

async fn count(url: &DatabaseUrl, sql: &str) -> i64 {
    let connector = url.connector().unwrap().make();
    let mut s = connector
        .connect(url, &ConnectOptions::default())
        .await
        .unwrap();
    s.query(sql, &[]).await.unwrap()[0].get("n").unwrap()
}

async fn history_version(url: &DatabaseUrl, name: &str) -> Option<u32> {
    let connector = url.connector().unwrap().make();
    let mut s = connector
        .connect(url, &ConnectOptions::default())
        .await
        .unwrap();
    SeedHistory::load(&mut *s).await.unwrap().get(name)?.version
}

async fn once_per_version(url: DatabaseUrl) {
    CATALOG_RUNS.store(0, Ordering::SeqCst);
    CATALOG_VERSION.store(1, Ordering::SeqCst);
    LATE_RELEASED.store(false, Ordering::SeqCst);

    let report = init(&url).await;
    assert_eq!(status(&report, "catalog"), Some(SeedStatus::Ran));
    assert_eq!(status(&report, "late"), None);
    assert_eq!(CATALOG_RUNS.load(Ordering::SeqCst), 1);
    assert_eq!(history_version(&url, "catalog").await, Some(1));

    // Recorded: not run, its table not read, even with its rows gone.
    let report = init(&url).await;
    assert_eq!(status(&report, "catalog"), Some(SeedStatus::Recorded));
    count(&url, "DELETE FROM catalog RETURNING 1 AS n").await;
    let report = init(&url).await;
    assert_eq!(status(&report, "catalog"), Some(SeedStatus::Recorded));
    assert_eq!(CATALOG_RUNS.load(Ordering::SeqCst), 1);
    assert_eq!(count(&url, "SELECT count(*) AS n FROM catalog").await, 0);

    // A new version runs again, and is recorded.
    CATALOG_VERSION.store(2, Ordering::SeqCst);
    let report = init(&url).await;
    assert_eq!(status(&report, "catalog"), Some(SeedStatus::Ran));
    assert_eq!(CATALOG_RUNS.load(Ordering::SeqCst), 2);
    assert_eq!(history_version(&url, "catalog").await, Some(2));
    assert_eq!(
        count(&url, "SELECT count(*) AS n FROM catalog WHERE version = 2").await,
        1
    );

    // A seeder of a later release runs on this long-seeded database, once.
    LATE_RELEASED.store(true, Ordering::SeqCst);
    let report = init(&url).await;
    assert_eq!(status(&report, "late"), Some(SeedStatus::Ran));
    assert_eq!(status(&report, "catalog"), Some(SeedStatus::Recorded));
    let report = init(&url).await;
    assert_eq!(status(&report, "late"), Some(SeedStatus::Recorded));
    assert_eq!(
        count(
            &url,
            "SELECT count(*) AS n FROM catalog WHERE version = 100"
        )
        .await,
        1
    );
}

/// One test for both backends: the seeders' switches are process-wide.
#[tokio::test]
async fn once_per_version_seeders_on_sqlite_and_postgres() {
    dbinit_tests::link();
    let file = dbinit_tests::SqliteFile::new();
    once_per_version(file.url()).await;
    let pg = DatabaseUrl::parse(&dbinit_tests::pg_url(&dbinit_tests::unique_database(
        "once",
    )))
    .unwrap();
    once_per_version(pg).await;
}
