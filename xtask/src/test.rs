//! `cargo xtask test`: the whole suite, as CI runs it.

use std::process::Command;

use anyhow::{bail, Context};

use crate::project_root;

/// Runs the doctests, then every test in the workspace (nextest), so that
/// nextest's summary is the last thing printed.
#[derive(Debug, clap::Args)]
pub(crate) struct TestCmd {
    /// Extra arguments for `cargo nextest run` (a filter, `--no-capture`, ...).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    nextest_args: Vec<String>,
}

impl TestCmd {
    pub(crate) fn run(self) -> anyhow::Result<()> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        if self.nextest_args.is_empty() {
            run(Command::new(&cargo).current_dir(project_root()).args([
                "test",
                "--doc",
                "--workspace",
            ]))?;
        }
        run(Command::new(&cargo)
            .current_dir(project_root())
            .args(["nextest", "run", "--workspace", "--no-fail-fast"])
            .args(&self.nextest_args))
    }
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}
