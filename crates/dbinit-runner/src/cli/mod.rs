//! A clap CLI for `init`, `status` and `health`, mountable in any binary.
//!
//! Standalone:
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     dbinit_runner::link_builtin_backends();
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
//!     dbinit_runner::link_builtin_backends();
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

pub mod exit;
mod health;
mod logging;
mod progress;
mod render;
mod signals;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::report::ErrorReport;
use dbinit_core::engine::RollbackTarget;
use dbinit_core::{ConnectOptions, CoreError, Environment, MigrationSet};
use dbinit_datafiles::SeedFiles;

use crate::Initializer;

/// What the mounting binary decides: the default URL when `DATABASE_URL` is
/// unset, and the application's migrations, so `myapp init` needs no flag.
#[derive(Clone)]
pub struct CliConfig {
    /// Used when neither `--database-url` nor `DATABASE_URL` is given.
    pub default_url: String,
    /// The application's migration sets, one per backend; `--migrations DIR`
    /// replaces them for one run.
    pub migrations: Option<dbinit_core::MigrationSets>,
    /// The application's data files (`seeds/`, embedded with
    /// `dbinit_datafiles::embed`); `--seeds DIR` replaces them for
    /// one run.
    pub seeds: Option<SeedFiles>,
}

impl std::fmt::Debug for CliConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CliConfig")
            .field("default_url", &dbinit_core::redact(&self.default_url))
            .field(
                "migrations",
                &self.migrations.as_ref().map(|m| m.origin().to_owned()),
            )
            .field("seeds", &self.seeds.as_ref().map(SeedFiles::origin))
            .finish()
    }
}

/// A URL given on the command line: kept as typed (it is validated later,
/// with a proper error), shown redacted by `Debug`.
#[derive(Clone)]
pub struct UrlArg(pub String);

impl std::str::FromStr for UrlArg {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(UrlArg(s.to_owned()))
    }
}

impl std::fmt::Debug for UrlArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("UrlArg")
            .field(&dbinit_core::redact(&self.0))
            .finish()
    }
}

impl CliConfig {
    /// A configuration with `default_url` as the embedded default.
    pub fn new(default_url: impl Into<String>) -> Self {
        CliConfig {
            default_url: default_url.into(),
            migrations: None,
            seeds: None,
        }
    }

    /// The application's migrations, one set per backend (embedded with
    /// `dbinit_core::migration::embed_all`).
    pub fn migrations(mut self, sets: dbinit_core::MigrationSets) -> Self {
        self.migrations = Some(sets);
        self
    }

    /// The application's data files.
    pub fn seeds(mut self, files: SeedFiles) -> Self {
        self.seeds = Some(files);
        self
    }
}

/// The standalone parser: `<binary> init|status|health ...`.
#[derive(Debug, clap::Parser)]
#[command(
    version,
    about = "Make the database ready: create, lock, migrate, seed, check"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The dbinit subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create the database if missing, migrate, seed and check it. A no-op on
    /// a ready database.
    Init(InitArgs),
    /// Show applied and pending migrations and seed state. Changes nothing.
    Status(StatusArgs),
    /// Run the health checks. Changes nothing.
    Health(HealthArgs),
    /// Show what `init` would do (pending migrations with their SQL, seeders
    /// and their state), under the init lock. Changes nothing.
    Plan(LockedArgs),
    /// Run the seeders and load the data files (seeds/common/ and
    /// seeds/<env>/), under the init lock, on a migrated database.
    Seed(SeedArgs),
    /// Undo the newest migrations with their V<N>__<NAME>.down.sql scripts.
    Rollback(RollbackArgs),
    /// Adopt a database made before dbinit: record migrations up to VERSION
    /// as applied without running them.
    Baseline(BaselineArgs),
    /// Accept the edited file of an applied migration: record its new
    /// checksum, with an audit record of the old one.
    Repair(RepairArgs),
}

/// Options of commands that take the init lock.
#[derive(Debug, Clone, clap::Args)]
pub struct LockedArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    /// How long to wait for another process that is initializing.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "60s")]
    pub lock_timeout: Duration,
}

/// Options of `status`.
#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    /// Exit 42 when migrations are pending (for CI and deploy gates);
    /// divergent or missing migrations exit 40 either way.
    #[arg(long)]
    pub exit_code: bool,
}

/// Options of `rollback`: exactly one of `--steps` and `--to`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["steps", "to"])))]
pub struct RollbackArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub locked: LockedArgs,
    /// Roll back the newest N applied migrations.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub steps: Option<u32>,
    /// Roll back every applied migration above VERSION (0: all of them).
    #[arg(long, value_name = "VERSION", value_parser = clap::value_parser!(i64).range(0..=i64::from(i32::MAX)))]
    pub to: Option<i64>,
}

/// Options of `seed`.
#[derive(Debug, Clone, clap::Args)]
pub struct SeedArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub locked: LockedArgs,
    /// Run only this seeder (repeatable; a data file's name is
    /// <dir>/<path>, as `status` lists it). Its dependencies do not run.
    #[arg(long, value_name = "NAME")]
    pub only: Vec<String>,
    /// Run every seeder and roll it back: report what would be written.
    #[arg(long)]
    pub dry_run: bool,
}

/// Options of `baseline`.
#[derive(Debug, Clone, clap::Args)]
pub struct BaselineArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub locked: LockedArgs,
    /// The newest migration the database already has.
    #[arg(long, value_name = "VERSION", value_parser = clap::value_parser!(i64).range(1..=i64::from(i32::MAX)))]
    pub version: i64,
}

/// Options of `repair`.
#[derive(Debug, Clone, clap::Args)]
pub struct RepairArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub locked: LockedArgs,
    /// The applied migration whose edited file to accept.
    #[arg(long, value_name = "VERSION", value_parser = clap::value_parser!(i64).range(1..=i64::from(i32::MAX)))]
    pub accept: i64,
}

/// Options shared by every subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Database URL; overrides `DATABASE_URL` (also read from `.env`).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<UrlArg>,
    /// Deployment environment: development, test or production.
    #[arg(long = "env", env = "DBINIT_ENV", default_value = "development")]
    pub environment: Environment,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Load migrations named V<N>__<NAME>.sql from this directory (and its
    /// subdirectories) instead of the application's own.
    #[arg(long, value_name = "DIR")]
    pub migrations: Option<PathBuf>,
    /// Load data files from this directory (common/ and <env>/, each with
    /// a seeds.toml) instead of the application's own.
    #[arg(long, value_name = "DIR")]
    pub seeds: Option<PathBuf>,
    /// Turn off a health check by name (repeatable).
    #[arg(long = "skip-check", value_name = "NAME")]
    pub skip_checks: Vec<String>,
    /// How long a statement waits for a locked SQLite file.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "5s")]
    pub busy_timeout: Duration,
    /// How long to keep retrying an unreachable server.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "30s")]
    pub connect_timeout: Duration,
    /// Seeding is off: no seeder runs (`init`) or is expected (`status`,
    /// `health`).
    #[arg(long)]
    pub no_seed: bool,
}

/// The longest duration any flag takes: about 24 days, the most SQLite's
/// busy timeout (milliseconds in a C int) and the timers can hold.
const MAX_DURATION: Duration = Duration::from_millis(i32::MAX as u64);

/// A duration flag (`500ms`, `30s`, `2m`), bounded by [`MAX_DURATION`].
fn duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if d > MAX_DURATION {
        return Err("too long: at most 24 days".to_owned());
    }
    Ok(d)
}

/// The shortest `--watch` interval: checking more often only loads the
/// database (and a nanosecond is a busy loop).
const MIN_WATCH: Duration = Duration::from_millis(10);

/// A `--watch` interval: at least [`MIN_WATCH`].
fn watch_interval(text: &str) -> Result<Duration, String> {
    match duration(text)? {
        d if d < MIN_WATCH => Err("must be at least 10ms".to_owned()),
        d => Ok(d),
    }
}

/// Options of `health`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("monitoring").multiple(true)))]
pub struct HealthArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    /// Keep checking at this interval (a monitor), logging failures quietly.
    #[arg(long, value_name = "INTERVAL", value_parser = watch_interval, group = "monitoring")]
    pub watch: Option<Duration>,
    /// With --watch or --serve: stop after this many checks.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), requires = "monitoring")]
    pub ticks: Option<u64>,
    /// With --watch: log a repeated failure at most once per this window.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "60s")]
    pub repeat_window: Duration,
    /// Serve /livez /readyz /health /metrics on HOST:PORT while monitoring
    /// (every --watch interval, 30 s by default) until SIGINT or SIGTERM;
    /// port 0 picks a free one (printed on stdout).
    #[cfg(feature = "http")]
    #[arg(long, value_name = "HOST:PORT", group = "monitoring")]
    pub serve: Option<String>,
    /// Another service to check: NAME=tcp://HOST:PORT or
    /// NAME=http://HOST:PORT/PATH (repeatable; without the flag,
    /// DBINIT_DEPENDS_ON, separated by whitespace).
    #[arg(long, value_name = "NAME=URL")]
    pub depends_on: Vec<String>,
    /// The application runs without dependency NAME when it is down (doing
    /// WHAT instead): report it `fallback`, still ready, not `unhealthy`
    /// (repeatable; without the flag, DBINIT_DEPENDENCY_FALLBACK, separated
    /// by `;`).
    #[arg(long, value_name = "NAME[=WHAT]")]
    pub dependency_fallback: Vec<String>,
}

/// Options of `init`.
#[derive(Debug, Clone, clap::Args)]
pub struct InitArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    /// How long to wait for another process that is initializing.
    #[arg(long, value_name = "DURATION", value_parser = duration, default_value = "60s")]
    pub lock_timeout: Duration,
    /// A database to use if the primary is unreachable; refused in production.
    #[arg(long, value_name = "URL")]
    pub fallback_url: Option<UrlArg>,
}

/// Loads `.env` (from `path`, or the current directory and its parents)
/// without overriding variables already set. Call before parsing arguments.
///
/// # Errors
///
/// A `.env` that exists but cannot be read or parsed: running on would
/// silently use another database (the default) than the one it names. The
/// error never quotes the file (it holds secrets), only the position. A
/// `.env` behind a directory this user may not enter is not one it can
/// have meant, and is passed over like a missing one.
pub fn load_dotenv(path: Option<&Path>) -> Result<(), CoreError> {
    let found = match path {
        Some(p) => reachable(p),
        None => std::env::current_dir()
            .ok()
            .and_then(|dir| dir.ancestors().find_map(|d| reachable(&d.join(".env")))),
    };
    let Some(file) = found else {
        return Ok(());
    };
    dotenvy::from_path(&file).map_err(|e| CoreError::InvalidConfig {
        setting: ".env".to_owned(),
        reason: match e {
            dotenvy::Error::LineParse(_, at) => {
                format!("cannot parse it (at character {at}); quote values that hold spaces or #")
            }
            dotenvy::Error::Io(e) => format!("cannot read {}: {e}", file.display()),
            _ => "cannot load it".to_owned(),
        },
    })
}

/// `path` if a file is there to load. Only a directory on the way that
/// cannot be searched hides it; a `.env` that is there but cannot be read
/// is returned, for the error.
fn reachable(path: &Path) -> Option<PathBuf> {
    match std::fs::metadata(path) {
        Ok(meta) => meta.is_file().then(|| path.to_path_buf()),
        Err(e) => {
            use std::io::ErrorKind::{NotADirectory, NotFound, PermissionDenied};
            (!matches!(e.kind(), NotFound | PermissionDenied | NotADirectory))
                .then(|| path.to_path_buf())
        }
    }
}

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
/// Runs `command`; `standalone` when the process is the CLI's own (SQLite
/// calls inline, signals handled).
async fn execute(command: Command, config: &CliConfig, standalone: bool) -> ExitCode {
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
            match crate::initializer::resolve_fallback(
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

impl Command {
    /// Whether it takes the init lock (and so handles SIGINT and SIGTERM).
    fn takes_lock(&self) -> bool {
        !matches!(self, Command::Status(_) | Command::Health(_))
    }

    /// Whether it serves HTTP until a signal (`health --serve`).
    fn serves(&self) -> bool {
        #[cfg(feature = "http")]
        if let Command::Health(args) = self {
            return args.serve.is_some();
        }
        false
    }

    /// The options every subcommand has.
    pub fn common(&self) -> &CommonArgs {
        match self {
            Command::Init(a) => &a.common,
            Command::Status(a) => &a.common,
            Command::Health(a) => &a.common,
            Command::Plan(a) => &a.common,
            Command::Seed(a) => &a.locked.common,
            Command::Rollback(a) => &a.locked.common,
            Command::Baseline(a) => &a.locked.common,
            Command::Repair(a) => &a.locked.common,
        }
    }
}

/// Prints a lifecycle command's report, or its error.
fn finish<T>(result: Result<T, CoreError>, json: bool, show: fn(&T, bool)) -> ExitCode {
    match result {
        Ok(report) => {
            show(&report, json);
            ExitCode::from(exit::OK)
        }
        Err(e) => fail(&e, json),
    }
}

fn fail(err: &CoreError, json: bool) -> ExitCode {
    let report = ErrorReport::from(err);
    if json {
        render::json(&serde_json::json!({ "outcome": "failed", "error": report }));
    }
    render::error(&report);
    ExitCode::from(exit_code(err))
}

/// The documented exit code of `err` (128 + the signal for an interruption).
fn exit_code(err: &CoreError) -> u8 {
    match err {
        CoreError::Interrupted { by, .. } => signals::exit_code(by),
        e => exit::code(e.kind()),
    }
}

/// Resolves the URL (flag, then `DATABASE_URL`, then the default) and options.
fn build(
    args: &CommonArgs,
    config: &CliConfig,
    run_inline: bool,
) -> Result<Initializer, CoreError> {
    let explicit = args.database_url.as_ref().map(|u| u.0.as_str());
    let (url, used_default) =
        crate::initializer::resolve_url(explicit, &config.default_url, args.environment)?;
    if explicit.is_some() && url.redacted().contains("***") {
        tracing::warn!(
            "the password in --database-url is visible to every user of this machine (ps, \
             /proc); set DATABASE_URL in the environment or .env, or use PGPASSWORD / ~/.pgpass"
        );
    }
    let mut options = ConnectOptions::default();
    options.busy_timeout = args.busy_timeout;
    options.connect_timeout = args.connect_timeout;
    // The CLI's runtime runs nothing but this pipeline: no need to hand
    // every SQLite call to another thread.
    options.run_inline = run_inline;
    let mut init = Initializer::new(url)
        .seed(!args.no_seed)
        .used_default_url(used_default)
        .environment(args.environment)
        .connect_options(options);
    if let Some(dir) = &args.migrations {
        init = init.migrations(MigrationSet::from_dir(dir)?);
    } else if let Some(sets) = &config.migrations {
        init = init.migration_sets(sets.clone());
    }
    if let Some(dir) = &args.seeds {
        init = init.seed_files(SeedFiles::from_dir(dir)?);
    } else if let Some(files) = &config.seeds {
        init = init.seed_files(files.clone());
    }
    if !args.json {
        init = init.progress(progress::for_stderr().into());
    }
    for name in &args.skip_checks {
        init = init.skip_check(name.clone());
    }
    Ok(init)
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

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
                    let _ = health::configure(args, init).and_then(|i| i.dependency_checks());
                }
            }
        }
    }

    /// `run` inside an application's runtime used to panic ("Cannot start
    /// a runtime from within a runtime"); `run_async` is the same command.
    #[tokio::test]
    async fn run_works_inside_a_runtime_and_run_async_agrees() {
        crate::link_builtin_backends();
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
