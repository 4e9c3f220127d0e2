//! [`SchemaStep`]: schema work that runs after the migrations.

use async_trait::async_trait;
use serde::Serialize;

use crate::{CoreError, Session};

/// What a schema step did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepOutcome {
    /// Whether the step changed the database.
    pub changed: bool,
    /// A one-line summary.
    pub detail: String,
}

/// A named schema step. Registered steps run after the migrations, sorted by
/// [`SchemaStep::order`] then name, each inside its own transaction.
#[async_trait]
pub trait SchemaStep: Send + Sync + 'static {
    /// Unique name.
    fn name(&self) -> &str;

    /// Sort key among registered steps (lower first).
    fn order(&self) -> i32 {
        0
    }

    /// Applies (or checks) the step. Must be idempotent.
    async fn apply(&self, session: &mut dyn Session) -> Result<StepOutcome, CoreError>;
}
