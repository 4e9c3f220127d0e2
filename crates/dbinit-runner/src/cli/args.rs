//! The command line: every subcommand and its options (clap).

use std::path::PathBuf;
use std::time::Duration;

use dbinit_core::Environment;

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

impl Command {
    /// Whether it takes the init lock (and so handles SIGINT and SIGTERM).
    pub(crate) fn takes_lock(&self) -> bool {
        !matches!(self, Command::Status(_) | Command::Health(_))
    }

    /// Whether it serves HTTP until a signal (`health --serve`).
    pub(crate) fn serves(&self) -> bool {
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
