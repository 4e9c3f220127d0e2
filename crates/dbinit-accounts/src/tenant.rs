//! The `system` tenant that owns system roles and the admin user.

use dbinit_core::{async_trait, CoreError, SeedContext, SeedOutcome, Seeder, Value};

/// Slug of the tenant this crate seeds.
pub const SYSTEM_TENANT_SLUG: &str = "system";

/// Seeds the `system` tenant.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemTenant;

#[async_trait]
impl Seeder for SystemTenant {
    fn name(&self) -> &'static str {
        "system_tenant"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["tenants"]
    }

    async fn is_seeded(&self, cx: &mut SeedContext<'_>) -> Result<bool, CoreError> {
        let rows = cx
            .session
            .query(
                &crate::sql(cx, "SELECT id FROM tenants WHERE slug = $1"),
                &[SYSTEM_TENANT_SLUG.into()],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    async fn seed(&self, cx: &mut SeedContext<'_>) -> Result<SeedOutcome, CoreError> {
        if self.is_seeded(cx).await? {
            return Ok(SeedOutcome::skipped(1));
        }
        cx.session
            .execute(
                &crate::sql(
                    cx,
                    "INSERT INTO tenants (slug, name, is_system) VALUES ($1, $2, $3)",
                ),
                &[
                    SYSTEM_TENANT_SLUG.into(),
                    "System".into(),
                    Value::Bool(true),
                ],
            )
            .await?;
        Ok(SeedOutcome::created(1))
    }
}
