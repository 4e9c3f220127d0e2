//! The system roles every deployment starts with.

use dbinit_core::{async_trait, CoreError, SeedContext, SeedOutcome, Seeder, Value};

use crate::SYSTEM_TENANT_SLUG;

/// The system roles: name and description.
pub const SYSTEM_ROLES: &[(&str, &str)] = &[
    ("admin", "Full access to every tenant and setting"),
    ("member", "Regular access within a tenant"),
];

/// Seeds [`SYSTEM_ROLES`] in the system tenant.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRoles;

impl SystemRoles {
    async fn existing(&self, cx: &mut SeedContext<'_>) -> Result<Vec<String>, CoreError> {
        let rows = cx
            .session
            .query(
                &crate::sql(
                    cx,
                    "SELECT r.name FROM roles r JOIN tenants t ON t.id = r.tenant_id \
                     WHERE t.slug = $1",
                ),
                &[SYSTEM_TENANT_SLUG.into()],
            )
            .await?;
        rows.iter()
            .map(|r| Ok(r.get::<Option<String>>("name")?.unwrap_or_default()))
            .collect()
    }
}

#[async_trait]
impl Seeder for SystemRoles {
    fn name(&self) -> &'static str {
        "system_roles"
    }

    fn depends_on(&self) -> &'static [&'static str] {
        &["system_tenant"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["roles"]
    }

    async fn is_seeded(&self, cx: &mut SeedContext<'_>) -> Result<bool, CoreError> {
        let existing = self.existing(cx).await?;
        Ok(SYSTEM_ROLES
            .iter()
            .all(|(name, _)| existing.iter().any(|e| e == name)))
    }

    async fn seed(&self, cx: &mut SeedContext<'_>) -> Result<SeedOutcome, CoreError> {
        let existing = self.existing(cx).await?;
        let mut outcome = SeedOutcome::default();
        for (name, description) in SYSTEM_ROLES {
            if existing.iter().any(|e| e == name) {
                outcome.skipped += 1;
                continue;
            }
            let insert = crate::sql(
                cx,
                "INSERT INTO roles (tenant_id, name, description, is_system) \
                 SELECT id, $1, $2, $3 FROM tenants WHERE slug = $4",
            );
            cx.session
                .execute(
                    &insert,
                    &[
                        (*name).into(),
                        (*description).into(),
                        Value::Bool(true),
                        SYSTEM_TENANT_SLUG.into(),
                    ],
                )
                .await?;
            outcome.created += 1;
        }
        Ok(outcome)
    }
}
