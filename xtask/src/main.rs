//! `cargo xtask`: the project's one entry point.
//!
//! `init`, `status` and `health` are the runner's mountable CLI; `test` and
//! `bench` are development tasks. One module per task.

mod bench;
mod bench_health;
mod bench_seed;
mod measure;
mod migration_gen;
mod paths;
mod servers;
mod test;

use std::process::ExitCode;

use clap::Parser;
use dbinit_runner::cli::{self, CliConfig};

use paths::{default_url, project_root};

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    about = "dbinit development and operations tasks"
)]
enum Task {
    #[command(flatten)]
    Db(cli::Command),
    /// Run the whole test suite (what CI runs).
    Test(test::TestCmd),
    /// Measure no-op and fresh `init` against the sqlite3 CLI.
    Bench(bench::BenchCmd),
}

fn main() -> ExitCode {
    dbinit_runner::link_builtin_plugins();
    // The demo's seeders (the schema is passed below).
    dbinit_accounts::link();
    // Redis as a dependency of the monitor (`REDIS_URL`).
    dbinit_redis::link();
    // The current directory's `.env` (or its parents'), then the workspace's;
    // neither overrides what the environment already says.
    if let Err(e) =
        cli::load_dotenv(None).and_then(|()| cli::load_dotenv(Some(&project_root().join(".env"))))
    {
        eprintln!("error: {e}");
        return ExitCode::from(cli::exit::code(e.kind()));
    }
    match Task::parse() {
        Task::Db(command) => {
            match dbinit_accounts::migration_sets()
                .and_then(|m| Ok((m, dbinit_accounts::seed_files()?)))
            {
                // The demo: its schema, seeders and data files are what
                // `cargo xtask init` makes.
                Ok((schema, data)) => cli::run(
                    command,
                    &CliConfig::new(default_url()).migrations(schema).seeds(data),
                ),
                Err(e) => report(Err(e.into())),
            }
        }
        Task::Test(cmd) => report(cmd.run()),
        Task::Bench(cmd) => report(cmd.run()),
    }
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
