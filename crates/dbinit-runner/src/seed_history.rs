//! The seed history: one row per seeder in `dbinit_seed_history` (name,
//! version, input checksum, environment, when it last wrote, and what it
//! created, updated and skipped then). A [`SeedPolicy::Once`] seeder whose
//! version and checksum are recorded is skipped without touching its
//! tables.
//!
//! A seeder's row is written inside the seeder's own transaction: the
//! record and the data commit together or not at all.

use std::collections::BTreeMap;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use dbinit_core::dialect::{self, ColumnType, Dialect, OnConflict, OwnColumn};
use dbinit_core::{CoreError, Environment, SeedOutcome, SeedPolicy, Seeder, Session, Value};

/// The table's name.
pub const TABLE: &str = "dbinit_seed_history";

const COLUMNS: &[OwnColumn] = &[
    OwnColumn::required("name", ColumnType::KeyText),
    OwnColumn::null("version", ColumnType::Int64),
    OwnColumn::null("checksum", ColumnType::Text),
    OwnColumn::required("environment", ColumnType::Text),
    OwnColumn::required("seeded_at", ColumnType::Text),
    OwnColumn::required("created", ColumnType::Int64),
    OwnColumn::required("updated", ColumnType::Int64),
    OwnColumn::required("skipped", ColumnType::Int64),
    OwnColumn::required("runs", ColumnType::Int64),
];

/// The row of a seeder that ran: inserted with `runs` 1, or updated with
/// `runs` counted up.
fn upsert(d: &dyn Dialect) -> String {
    let names: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
    let (key, rest) = names.split_at(1);
    let (update, runs) = rest.split_at(rest.len() - 1);
    let conflict = OnConflict {
        table: TABLE,
        key,
        update,
        only_if_changed: false,
        increment: runs.first().copied(),
    };
    format!(
        "{} {}",
        dialect::insert(d, TABLE, &names),
        d.on_conflict(&conflict)
    )
}

/// One seeder's row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeedRecord {
    /// The seeder's name.
    pub name: String,
    /// Its [`SeedPolicy::Once`] version; `None` for a converging seeder.
    pub version: Option<u32>,
    /// Its input checksum ([`Seeder::checksum`]).
    pub checksum: Option<String>,
    /// The environment it last wrote in.
    pub environment: String,
    /// When it last wrote (RFC 3339, UTC).
    pub seeded_at: String,
    /// What it created, updated and skipped then.
    pub outcome: SeedOutcome,
    /// How many runs wrote.
    pub runs: u64,
}

/// The recorded seeders, by name.
#[derive(Debug, Default, Clone)]
pub struct SeedHistory {
    records: BTreeMap<String, SeedRecord>,
    /// Whether the table exists: then recording needs no `CREATE`.
    stored: bool,
}

impl SeedHistory {
    /// Reads the history; empty when the table does not exist yet.
    ///
    /// # Errors
    ///
    /// The query's.
    pub async fn load(session: &mut dyn Session) -> Result<Self, CoreError> {
        let names: Vec<&str> = COLUMNS.iter().map(|c| c.name).collect();
        let sql = dialect::select(session.dialect(), TABLE, &names);
        let Some(rows) = session.query_table(TABLE, &sql).await? else {
            return Ok(SeedHistory::default());
        };
        let mut records = BTreeMap::new();
        for row in rows {
            let count = |c: &str| row.get::<i64>(c).map(|n| u64::try_from(n).unwrap_or(0));
            let record = SeedRecord {
                name: row.get("name")?,
                version: row
                    .get::<Option<i64>>("version")?
                    .and_then(|v| u32::try_from(v).ok()),
                checksum: row.get("checksum")?,
                environment: row.get("environment")?,
                seeded_at: row.get("seeded_at")?,
                outcome: SeedOutcome {
                    created: count("created")?,
                    updated: count("updated")?,
                    skipped: count("skipped")?,
                },
                runs: count("runs")?,
            };
            records.insert(record.name.clone(), record);
        }
        Ok(SeedHistory {
            records,
            stored: true,
        })
    }

    /// Notes that a transaction that recorded a seeder committed: the table
    /// exists from now on.
    pub fn committed(&mut self) {
        self.stored = true;
    }

    /// The record of the seeder named `name`.
    pub fn get(&self, name: &str) -> Option<&SeedRecord> {
        self.records.get(name)
    }

    /// Every record, by name.
    pub fn records(&self) -> impl Iterator<Item = &SeedRecord> {
        self.records.values()
    }

    /// Whether `seeder` is [`SeedPolicy::Once`] and the history records its
    /// current version and checksum: it has nothing to do.
    pub fn is_current(&self, seeder: &dyn Seeder) -> bool {
        let SeedPolicy::Once { version } = seeder.policy() else {
            return false;
        };
        self.get(seeder.name())
            .is_some_and(|r| r.version == Some(version) && r.checksum == seeder.checksum())
    }

    /// Records that `seeder` ran with `outcome`, in the caller's
    /// transaction (creating the table unless it is known to exist).
    ///
    /// # Errors
    ///
    /// The statements'.
    pub async fn record(
        &self,
        session: &mut dyn Session,
        seeder: &dyn Seeder,
        environment: Environment,
        outcome: SeedOutcome,
    ) -> Result<(), CoreError> {
        if !self.stored {
            session
                .execute_batch(&dialect::create_table(
                    session.dialect(),
                    TABLE,
                    COLUMNS,
                    true,
                ))
                .await?;
        }
        let version = match seeder.policy() {
            SeedPolicy::Once { version } => Value::Int(version.into()),
            SeedPolicy::Converge => Value::Null,
        };
        let now = time::OffsetDateTime::now_utc()
            .format(&Rfc3339)
            .unwrap_or_default();
        let count = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
        session
            .execute(
                &upsert(session.dialect()),
                &[
                    seeder.name().into(),
                    version,
                    seeder.checksum().into(),
                    environment.as_str().into(),
                    now.into(),
                    count(outcome.created),
                    count(outcome.updated),
                    count(outcome.skipped),
                    Value::Int(1),
                ],
            )
            .await?;
        Ok(())
    }
}
