//! `cargo xtask test`: the whole suite, as CI runs it, against a throwaway
//! PostgreSQL cluster that is stopped on every exit path.

use std::process::Command;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use dbinit_tests::pg::{Cluster, ClusterOptions};
use dbinit_tests::{PG_LOG_VAR, PG_SOCKET_VAR, PG_URL_VAR};

use crate::project_root;

/// Starts PostgreSQL, runs the doctests, then every test in the workspace
/// (nextest), so that nextest's summary is the last thing printed.
#[derive(Debug, clap::Args)]
pub(crate) struct TestCmd {
    /// Extra arguments for `cargo nextest run` (a filter, `--no-capture`, ...).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    nextest_args: Vec<String>,
}

impl TestCmd {
    pub(crate) fn run(self) -> anyhow::Result<()> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        // Build first, so that compile time does not count against anything
        // the server does, and a compile error does not need a server.
        run(Command::new(&cargo).current_dir(project_root()).args([
            "nextest",
            "run",
            "--workspace",
            "--no-run",
        ]))?;

        let cluster = start_postgres()?;
        let url = cluster.url("postgres");
        println!("PostgreSQL test cluster on 127.0.0.1:{}", cluster.port());
        // Ctrl-C kills cargo and the tests, not the server: stop it ourselves.
        let shared = Arc::new(Mutex::new(Some(cluster)));
        let on_signal = shared.clone();
        ctrlc::set_handler(move || {
            if let Ok(mut guard) = on_signal.lock() {
                guard.take();
            }
            std::process::exit(130);
        })
        .context("cannot install the Ctrl-C handler")?;
        let (log, socket) = shared
            .lock()
            .ok()
            .and_then(|g| {
                g.as_ref()
                    .map(|c| (c.log_path(), c.socket_dir().to_path_buf()))
            })
            .context("cluster gone")?;

        let result = (|| {
            if self.nextest_args.is_empty() {
                run(Command::new(&cargo)
                    .current_dir(project_root())
                    .env(PG_URL_VAR, &url)
                    .env(PG_LOG_VAR, &log)
                    .env(PG_SOCKET_VAR, &socket)
                    .args(["test", "--doc", "--workspace"]))?;
            }
            run(Command::new(&cargo)
                .current_dir(project_root())
                .env(PG_URL_VAR, &url)
                .env(PG_LOG_VAR, &log)
                .env(PG_SOCKET_VAR, &socket)
                .args(["nextest", "run", "--workspace", "--no-fail-fast"])
                .args(&self.nextest_args))
        })();
        // Dropping the cluster stops it, on success and failure alike.
        if let Ok(mut guard) = shared.lock() {
            guard.take();
        }
        result
    }
}

/// Starts the suite's cluster. A missing PostgreSQL is an error, never a skip.
fn start_postgres() -> anyhow::Result<Cluster> {
    let cluster = Cluster::new(ClusterOptions::default())
        .map_err(anyhow::Error::msg)
        .context("cannot create the PostgreSQL test cluster (PostgreSQL tests never skip)")?;
    cluster
        .start()
        .map_err(anyhow::Error::msg)
        .context("cannot start the PostgreSQL test cluster")?;
    Ok(cluster)
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
