//! Runs one parsed subcommand against the [`Initializer`](crate::Initializer)
//! its options build.

use std::process::ExitCode;

use dbinit_core::engine::RollbackTarget;

use super::args::Command;
use super::outcome::{exit_code, fail, finish};
use super::setup::{build, CliConfig};
use super::{exit, health, render, signals};
use crate::report::ErrorReport;

/// Runs `command`; `standalone` when the process is the CLI's own (SQLite
/// calls inline, signals handled).
pub(crate) async fn execute(command: Command, config: &CliConfig, standalone: bool) -> ExitCode {
    let common = command.common();
    let json = common.json;
    let interrupt = crate::Interrupt::new();
    let handles_signals = standalone && (command.takes_lock() || command.serves());
    if handles_signals {
        // A signal cancels, rolls back and unlocks instead of killing; a
        // server stops serving. Installed first: a signal while the files
        // are read stops the run before it starts.
        let stopping = if command.serves() {
            "stopping the server"
        } else {
            "cancelling the running statement, rolling back and releasing the lock"
        };
        if let Err(e) = signals::cancel_on_signal(interrupt.clone(), stopping) {
            tracing::warn!(error = %e, "cannot handle SIGINT/SIGTERM; a signal kills the run");
        }
    }
    // A server keeps SQLite calls off the thread that answers requests.
    let mut initializer = match build(common, config, standalone && !command.serves()) {
        Ok(init) => init,
        Err(e) => return fail(&e, json),
    };
    if handles_signals {
        initializer = initializer.interrupt(interrupt.clone());
    }
    match command {
        Command::Init(args) => {
            let mut init = initializer.lock_timeout(args.lock_timeout);
            match crate::settings::resolve_fallback(
                args.fallback_url.as_ref().map(|f| f.0.as_str()),
            ) {
                Ok(Some(url)) => init = init.fallback(url),
                Ok(None) => {}
                Err(e) => return fail(&e, json),
            }
            match init.run().await {
                Ok(report) => {
                    render::init(&report, json);
                    ExitCode::from(exit::OK)
                }
                Err(err) => {
                    render::init(err.report(), json);
                    // stderr is for people, also when stdout is JSON.
                    render::error(&ErrorReport::from(err.error()));
                    ExitCode::from(exit_code(err.error()))
                }
            }
        }
        Command::Status(args) => match initializer.status().await {
            Ok(report) => {
                render::status(&report, json);
                if args.exit_code && !report.migrations.pending.is_empty() {
                    ExitCode::from(exit::PENDING)
                } else {
                    ExitCode::from(exit::OK)
                }
            }
            Err(e) => fail(&e, json),
        },
        Command::Plan(args) => {
            let init = initializer.lock_timeout(args.lock_timeout);
            finish(init.plan().await, json, render::plan)
        }
        Command::Seed(args) => {
            let init = initializer.lock_timeout(args.locked.lock_timeout);
            let options = crate::SeedOptions {
                only: args.only,
                dry_run: args.dry_run,
            };
            finish(init.run_seed(&options).await, json, render::seed)
        }
        Command::Rollback(args) => {
            let init = initializer.lock_timeout(args.locked.lock_timeout);
            let target = match (args.steps, args.to) {
                (Some(n), _) => RollbackTarget::Steps(n as usize),
                (None, Some(v)) => RollbackTarget::To(v),
                // clap requires one of the two.
                (None, None) => RollbackTarget::Steps(1),
            };
            finish(init.rollback(target).await, json, render::lifecycle)
        }
        Command::Baseline(args) => {
            let init = initializer.lock_timeout(args.locked.lock_timeout);
            finish(init.baseline(args.version).await, json, render::lifecycle)
        }
        Command::Repair(args) => {
            let init = initializer.lock_timeout(args.locked.lock_timeout);
            finish(init.repair(args.accept).await, json, render::lifecycle)
        }
        Command::Health(args) => health::run(&args, initializer, json, interrupt).await,
    }
}
