//! The demo's database CLI on its own (`dbinit-demo init|status|health …`):
//! the binary the process tests run. Test builds carry the crash points
//! (`dbinit-core/fault-injection`, a dev-dependency of this crate).

use std::process::ExitCode;

use clap::Parser;
use dbinit_runner::cli::{self, Cli};
use dbinit_tests::demo;

fn main() -> ExitCode {
    if let Err(e) = demo::prepare() {
        eprintln!("error: {e}");
        return ExitCode::from(cli::exit::code(e.kind()));
    }
    demo::run(Cli::parse().command)
}
