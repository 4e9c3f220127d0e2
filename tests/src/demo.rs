//! The demo service's database CLI: what `cargo xtask init|status|health`
//! runs, and what the process tests in `tests/tests` run as the
//! `dbinit-demo` binary. One wiring, so the tests see what users run.

use std::process::ExitCode;

use dbinit_runner::cli::{self, CliConfig};
use dbinit_runner::dbinit_core::CoreError;

use crate::tree::workspace_root;

/// The embedded default: a SQLite file under the workspace's `data/`.
pub fn default_url() -> String {
    format!(
        "sqlite://{}",
        workspace_root().join("data/dbinit.db").display()
    )
}

/// Links the demo's plugins and loads `.env`: the current directory's (or
/// its parents'), then the workspace's; neither overrides what the
/// environment already says.
///
/// # Errors
///
/// When a `.env` is there but cannot be read or parsed.
pub fn prepare() -> Result<(), CoreError> {
    crate::link();
    cli::load_dotenv(None)?;
    cli::load_dotenv(Some(&workspace_root().join(".env")))
}

/// Runs one subcommand with the demo's schema, seeders and data files on
/// the embedded default.
pub fn run(command: cli::Command) -> ExitCode {
    let config = dbinit_accounts::migration_sets().and_then(|schema| {
        Ok(CliConfig::new(default_url())
            .migrations(schema)
            .seeds(dbinit_accounts::seed_files()?))
    });
    match config {
        Ok(config) => cli::run(command, &config),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(cli::exit::code(e.kind()))
        }
    }
}
