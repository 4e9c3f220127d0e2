//! A clap CLI for `init`, `status` and `health`, mountable in any binary.
//!
//! Standalone:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     dbinit_runner::link_builtin_plugins();
//!     dbinit_runner::cli::main(&dbinit_runner::cli::CliConfig::new("sqlite://data/app.db"))
//! }
//! ```
//!
//! Mounted in your own clap parser (an `xtask`, say):
//!
//! ```no_run
//! use clap::Parser;
//!
//! #[derive(Parser)]
//! enum MyTask {
//!     #[command(flatten)]
//!     Db(dbinit_runner::cli::Command),
//!     Deploy,
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     dbinit_runner::link_builtin_plugins();
//!     if let Err(e) = dbinit_runner::cli::load_dotenv(None) {
//!         eprintln!("error: {e}");
//!         return std::process::ExitCode::from(13);
//!     }
//!     match MyTask::parse() {
//!         MyTask::Db(cmd) => dbinit_runner::cli::run(cmd, &dbinit_runner::cli::CliConfig::new("sqlite://data/app.db")),
//!         MyTask::Deploy => std::process::ExitCode::SUCCESS,
//!     }
//! }
//! ```

mod args;
mod dispatch;
pub mod exit;
mod health;
mod logging;
mod outcome;
mod progress;
mod render;
mod setup;
mod signals;

use std::process::ExitCode;

pub use args::{
    BaselineArgs, Cli, Command, CommonArgs, HealthArgs, InitArgs, LockedArgs, RepairArgs,
    RollbackArgs, SeedArgs, StatusArgs, UrlArg,
};
pub use setup::{load_dotenv, CliConfig};

use dispatch::execute;
use outcome::fail;

/// Parses the process arguments as [`Cli`] and runs it. Loads `.env` first.
pub fn main(config: &CliConfig) -> ExitCode {
    if let Err(e) = load_dotenv(None) {
        return fail(&e, false);
    }
    let cli = <Cli as clap::Parser>::parse();
    run(cli.command, config)
}

/// Runs one subcommand to completion and returns the process exit code.
///
/// Called from inside a tokio runtime (an application's `#[tokio::main]`),
/// it runs on a thread of its own rather than panicking; prefer
/// [`run_async`] there.
pub fn run(command: Command, config: &CliConfig) -> ExitCode {
    if tokio::runtime::Handle::try_current().is_ok() {
        return std::thread::scope(|scope| {
            scope
                .spawn(|| run(command, config))
                .join()
                .unwrap_or(ExitCode::from(exit::INTERNAL))
        });
    }
    logging::init();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::INTERNAL);
        }
    };
    // The process is ours: SQLite calls need not be handed to another
    // thread, and SIGINT/SIGTERM are handled.
    let code = runtime.block_on(execute(command, config, true));
    signals::settle();
    // A SQLite call still running on a blocking thread (a monitor stopped
    // mid-check, already cancelled) must not hold the exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

/// [`run`] for an application that already runs tokio: the same command,
/// on the caller's runtime (SQLite calls go to its blocking pool). It
/// installs no signal handler: the application owns its signals (give
/// the `Initializer` an [`Interrupt`](crate::Interrupt) instead).
pub async fn run_async(command: Command, config: &CliConfig) -> ExitCode {
    logging::init();
    execute(command, config, false).await
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    use super::setup::build;
    use super::*;

    /// Every flag that takes a value, on the subcommand that has it.
    const FLAGS: &[(&str, &str)] = &[
        ("init", "--database-url"),
        ("init", "--env"),
        ("init", "--migrations"),
        ("init", "--skip-check"),
        ("init", "--busy-timeout"),
        ("init", "--connect-timeout"),
        ("init", "--lock-timeout"),
        ("init", "--fallback-url"),
        ("health", "--watch"),
        ("health", "--ticks"),
        ("health", "--repeat-window"),
        ("health", "--serve"),
        ("health", "--depends-on"),
        ("health", "--dependency-fallback"),
        ("status", "--database-url"),
        ("rollback", "--steps"),
        ("rollback", "--to"),
        ("baseline", "--version"),
        ("repair", "--accept"),
        ("plan", "--lock-timeout"),
    ];

    proptest! {
        #![proptest_config(Config {
            cases: 3000,
            rng_seed: RngSeed::Fixed(0x0c11_a295),
            failure_persistence: None,
            ..Config::default()
        })]

        /// Any value for any flag parses to a usage error or to options that
        /// `build` turns into an initializer or a clear error: never a panic.
        #[test]
        fn any_flag_value_is_handled(
            flag in 0..FLAGS.len(),
            value in prop_oneof![
                "\\PC{0,40}",
                "[0-9]{1,30}(ns|ms|s|m|h|d|days|w|y)",
                "(sqlite|postgres|file)://[ -~]{0,30}",
            ],
        ) {
            let (command, flag) = FLAGS[flag];
            let mut args = vec!["dbinit", command, flag, value.as_str()];
            if command == "health" && flag == "--ticks" {
                args.extend(["--watch", "1s"]);
            }
            if let Ok(cli) = Cli::try_parse_from(&args) {
                let init = build(cli.command.common(), &CliConfig::new("sqlite::memory:"), true);
                if let (Ok(init), Command::Health(args)) = (init, &cli.command) {
                    let _ = health::configure(args, init).and_then(|i| i.settings().dependency_checks());
                }
            }
        }
    }

    /// `run` inside an application's runtime used to panic ("Cannot start
    /// a runtime from within a runtime"); `run_async` is the same command.
    #[tokio::test]
    async fn run_works_inside_a_runtime_and_run_async_agrees() {
        crate::link_builtin_plugins();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/a.db", dir.path().display());
        let parse = || {
            Cli::try_parse_from(["dbinit", "init", "--no-seed", "--database-url", &url])
                .unwrap()
                .command
        };
        let config = CliConfig::new("sqlite::memory:");
        assert_eq!(run(parse(), &config), ExitCode::from(exit::OK));
        assert_eq!(run_async(parse(), &config).await, ExitCode::from(exit::OK));
    }

    #[test]
    fn debug_of_parsed_arguments_hides_passwords() {
        let cli = Cli::try_parse_from([
            "dbinit",
            "init",
            "--database-url",
            "postgres://u:Secret9@h/db",
            "--fallback-url",
            "postgres//u:Secret9@h/db",
        ])
        .unwrap();
        let shown = format!("{cli:?} {:?}", CliConfig::new("host=h password=Secret9"));
        assert!(!shown.contains("Secret9"), "{shown}");
        assert!(shown.contains("u:***@h"), "{shown}");
    }
}
