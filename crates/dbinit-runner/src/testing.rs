//! Testing your own seeders: run one twice against a fresh in-memory SQLite
//! database with the migrations it needs, and fail when the second run
//! creates anything. See `docs/writing-a-seeder.md`.

use dbinit_core::{
    engine, ConnectOptions, Connector, CoreError, DatabaseUrl, Environment, MigrationFile,
    SecretSink, SeedContext, SeedOutcome, Seeder,
};

/// Swallows generated secrets: a test has no operator to show them to.
struct NoOperator;

impl SecretSink for NoOperator {
    fn show_once(&self, _label: &str, _secret: &str) -> std::io::Result<()> {
        Ok(())
    }
}

/// Applies `migrations` (`(stem, sql)`, e.g. `("V1__plans", "CREATE TABLE
/// ...")`) to a new in-memory SQLite database, runs `seeder` twice in the
/// `test` environment, each time in its own transaction as `init` does, and
/// returns both outcomes.
///
/// # Errors
///
/// A migration or seeder error, or [`CoreError::SeedFailed`] when the second
/// run created records (the seeder is not idempotent).
pub async fn seed_twice(
    seeder: &dyn Seeder,
    migrations: &[(&str, &str)],
) -> Result<(SeedOutcome, SeedOutcome), CoreError> {
    let files = migrations
        .iter()
        .map(|(stem, sql)| MigrationFile::new(stem, sql))
        .collect::<Result<Vec<_>, _>>()?;
    let url = DatabaseUrl::parse("sqlite::memory:")?;
    let (mut session, _) = dbinit_sqlite::SqliteConnector
        .open(&url, &ConnectOptions::default())
        .await?;
    engine::apply(&mut *session, &files.iter().collect::<Vec<_>>())
        .await
        .map_err(|batch| batch.error)?;
    let mut outcomes = Vec::with_capacity(2);
    for _ in 0..2 {
        session.begin().await?;
        let mut cx = SeedContext {
            session: &mut *session,
            environment: Environment::Test,
            secrets: &NoOperator,
            progress: &dbinit_core::NoProgress,
        };
        let outcome = seeder.seed(&mut cx).await;
        match outcome {
            Ok(outcome) => {
                session.commit().await?;
                outcomes.push(outcome);
            }
            Err(e) => {
                let _ = session.rollback().await;
                return Err(e);
            }
        }
    }
    let (first, second) = (outcomes[0], outcomes[1]);
    if second.created > 0 {
        return Err(CoreError::SeedFailed {
            seeder: seeder.name().to_owned(),
            message: format!(
                "not idempotent: its second run created {} records (the first created {})",
                second.created, first.created
            ),
            source: None,
        });
    }
    Ok((first, second))
}

#[cfg(test)]
mod tests {
    use dbinit_core::async_trait;

    use super::*;

    const PLANS: &[(&str, &str)] = &[("V1__plans", "CREATE TABLE plans (code TEXT)")];

    /// The doc's seeder, and one that forgets to check.
    struct Plans {
        check: bool,
    }

    #[async_trait]
    impl Seeder for Plans {
        fn name(&self) -> &'static str {
            "plans"
        }
        async fn is_seeded(&self, cx: &mut SeedContext<'_>) -> Result<bool, CoreError> {
            Ok(self.check && cx.exists("SELECT 1 FROM plans", &[]).await?)
        }
        async fn seed(&self, cx: &mut SeedContext<'_>) -> Result<SeedOutcome, CoreError> {
            cx.insert_unless_seeded(self, "INSERT INTO plans VALUES ($1)", &["free".into()])
                .await
        }
    }

    #[tokio::test]
    async fn an_idempotent_seeder_passes_and_a_careless_one_fails() {
        let (first, second) = seed_twice(&Plans { check: true }, PLANS).await.unwrap();
        assert_eq!((first.created, second.created, second.skipped), (1, 0, 1));
        let err = seed_twice(&Plans { check: false }, PLANS)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not idempotent"), "{err}");
    }
}
