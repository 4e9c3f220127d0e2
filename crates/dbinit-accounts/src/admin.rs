//! The admin user of the system tenant, holding the `admin` role.

use dbinit_core::{async_trait, CoreError, Environment, SeedContext, SeedOutcome, Seeder, Value};

use crate::{password, SYSTEM_TENANT_SLUG};

/// Seeds the admin user and grants it the `admin` role.
#[derive(Debug, Default, Clone, Copy)]
pub struct AdminUser;

fn username() -> String {
    std::env::var("DBINIT_ADMIN_USERNAME").unwrap_or_else(|_| "admin".to_owned())
}

fn email() -> String {
    std::env::var("DBINIT_ADMIN_EMAIL").unwrap_or_else(|_| "admin@localhost".to_owned())
}

/// The admin's user id and whether it holds the admin role, if it exists.
async fn find(cx: &mut SeedContext<'_>, username: &str) -> Result<Option<(i64, bool)>, CoreError> {
    let rows = cx
        .session
        .query(
            &crate::sql(
                cx,
                "SELECT u.id, (SELECT count(*) FROM user_roles ur JOIN roles r ON r.id = ur.role_id \
                               WHERE ur.user_id = u.id AND r.name = 'admin' AND r.tenant_id = t.id) \
                        AS granted \
                 FROM users u JOIN tenants t ON t.id = u.tenant_id \
                 WHERE t.slug = $1 AND u.username = $2",
            ),
            &[SYSTEM_TENANT_SLUG.into(), username.into()],
        )
        .await?;
    rows.first()
        .map(|r| Ok((r.get::<i64>("id")?, r.get::<i64>("granted")? > 0)))
        .transpose()
}

#[async_trait]
impl Seeder for AdminUser {
    fn name(&self) -> &'static str {
        "admin_user"
    }

    fn depends_on(&self) -> &'static [&'static str] {
        &["system_roles"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["users", "user_roles"]
    }

    /// A configured password must be valid; in production, where none is
    /// generated, one must be configured unless the admin already exists.
    async fn preflight(&self, cx: &mut SeedContext<'_>) -> Result<(), CoreError> {
        if password::configured()?.is_some() || cx.environment != Environment::Production {
            return Ok(());
        }
        let tables = cx.session.tables().await?;
        let schema_ready = ["tenants", "roles", "users", "user_roles"]
            .iter()
            .all(|t| tables.iter().any(|have| have == t));
        if schema_ready && self.is_seeded(cx).await? {
            return Ok(());
        }
        Err(password::production_needs_one())
    }

    async fn is_seeded(&self, cx: &mut SeedContext<'_>) -> Result<bool, CoreError> {
        Ok(matches!(find(cx, &username()).await?, Some((_, true))))
    }

    async fn seed(&self, cx: &mut SeedContext<'_>) -> Result<SeedOutcome, CoreError> {
        let username = username();
        let mut outcome = SeedOutcome::default();
        let user_id = match find(cx, &username).await? {
            Some((id, granted)) => {
                outcome.skipped += 1;
                if granted {
                    outcome.skipped += 1;
                    return Ok(outcome);
                }
                id
            }
            None => {
                // Hash only when the user is really created: the no-op path
                // must not pay for argon2.
                let password = password::obtain(cx.secrets, &username, cx.environment)?;
                let hash = password::hash(&password)?;
                // No RETURNING: MySQL has none; the user is looked up again.
                let insert = crate::sql(
                    cx,
                    "INSERT INTO users (tenant_id, username, email, password_hash) \
                     SELECT id, $1, $2, $3 FROM tenants WHERE slug = $4",
                );
                cx.session
                    .execute(
                        &insert,
                        &[
                            username.as_str().into(),
                            email().into(),
                            Value::Text(hash),
                            SYSTEM_TENANT_SLUG.into(),
                        ],
                    )
                    .await?;
                outcome.created += 1;
                find(cx, &username)
                    .await?
                    .ok_or_else(|| CoreError::SeedFailed {
                        seeder: self.name().to_owned(),
                        message: format!("the `{SYSTEM_TENANT_SLUG}` tenant does not exist"),
                        source: None,
                    })?
                    .0
            }
        };
        let granted = cx
            .session
            .execute(
                &crate::sql(
                    cx,
                    "INSERT INTO user_roles (user_id, role_id) \
                     SELECT $1, r.id FROM roles r JOIN tenants t ON t.id = r.tenant_id \
                     WHERE t.slug = $2 AND r.name = 'admin'",
                ),
                &[Value::Int(user_id), SYSTEM_TENANT_SLUG.into()],
            )
            .await?;
        if granted == 0 {
            return Err(CoreError::SeedFailed {
                seeder: self.name().to_owned(),
                message: "the system `admin` role does not exist".to_owned(),
                source: None,
            });
        }
        outcome.created += granted;
        Ok(outcome)
    }
}
