//! `sqlite_quick_check`: SQLite's own structural check of the file.

use dbinit_core::{async_trait, CoreError, HealthCheck, HealthContext, HealthOutcome};

/// Runs `PRAGMA quick_check`. It reads the whole file, so `init` runs it only
/// when the run wrote something (a no-op start of a large database would
/// otherwise read all of it every time), the monitor never; `health` always
/// runs it. Disable it
/// by name on a huge database (`--skip-check sqlite_quick_check`).
pub(crate) struct QuickCheck;

#[async_trait]
impl HealthCheck for QuickCheck {
    fn name(&self) -> &'static str {
        "sqlite_quick_check"
    }

    fn applies_to(&self, backend: &str) -> bool {
        backend == crate::session::NAME
    }

    async fn check(&self, cx: &mut HealthContext<'_>) -> Result<HealthOutcome, CoreError> {
        if cx.run.is_some_and(|r| !r.wrote) {
            return Ok(HealthOutcome::disabled(
                "this run wrote nothing; `health` runs the full check",
            ));
        }
        if cx.periodic {
            return Ok(HealthOutcome::disabled(
                "not run by the monitor (it reads the whole file); `health` runs it",
            ));
        }
        let rows = cx.session.query("PRAGMA quick_check", &[]).await?;
        let problems: Vec<String> = rows
            .iter()
            .filter_map(|r| r.values().first())
            .filter_map(|v| match v {
                dbinit_core::Value::Text(t) if t != "ok" => Some(t.clone()),
                _ => None,
            })
            .collect();
        Ok(if problems.is_empty() {
            HealthOutcome::healthy("ok")
        } else {
            HealthOutcome::unhealthy(problems.join("; "))
        })
    }
}
