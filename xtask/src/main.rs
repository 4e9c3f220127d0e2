//! `cargo xtask`: the project's one entry point.
//!
//! `init`, `status` and `health` are the runner's mountable CLI; `test` and
//! `bench` are development tasks. One module per task.

mod bench;
mod bench_health;
mod bench_mysql;
mod bench_seed;
mod measure;
mod migration_gen;
mod servers;
mod test;

use std::process::ExitCode;

use clap::Parser;
use dbinit_runner::cli;
use dbinit_tests::demo;

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
    if let Err(e) = demo::prepare() {
        eprintln!("error: {e}");
        return ExitCode::from(cli::exit::code(e.kind()));
    }
    match Task::parse() {
        // The demo: its schema, seeders and data files are what
        // `cargo xtask init` makes.
        Task::Db(command) => demo::run(command),
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
