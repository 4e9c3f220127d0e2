//! What a run starts from: the mounting binary's [`CliConfig`], `.env`,
//! and the options every subcommand shares, made into an [`Initializer`].

use std::path::{Path, PathBuf};

use dbinit_core::{ConnectOptions, CoreError, MigrationSet, MigrationSets};
use dbinit_datafiles::SeedFiles;

use super::args::CommonArgs;
use super::progress;
use crate::Initializer;

/// What the mounting binary decides: the default URL when `DATABASE_URL` is
/// unset, and the application's migrations, so `myapp init` needs no flag.
#[derive(Clone)]
pub struct CliConfig {
    /// Used when neither `--database-url` nor `DATABASE_URL` is given.
    pub default_url: String,
    /// The application's migration sets, one per backend; `--migrations DIR`
    /// replaces them for one run.
    pub migrations: Option<MigrationSets>,
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
    pub fn migrations(mut self, sets: MigrationSets) -> Self {
        self.migrations = Some(sets);
        self
    }

    /// The application's data files.
    pub fn seeds(mut self, files: SeedFiles) -> Self {
        self.seeds = Some(files);
        self
    }
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
pub(crate) fn reachable(path: &Path) -> Option<PathBuf> {
    match std::fs::metadata(path) {
        Ok(meta) => meta.is_file().then(|| path.to_path_buf()),
        Err(e) => {
            use std::io::ErrorKind::{NotADirectory, NotFound, PermissionDenied};
            (!matches!(e.kind(), NotFound | PermissionDenied | NotADirectory))
                .then(|| path.to_path_buf())
        }
    }
}

/// Resolves the URL (flag, then `DATABASE_URL`, then the default) and options.
pub(crate) fn build(
    args: &CommonArgs,
    config: &CliConfig,
    run_inline: bool,
) -> Result<Initializer, CoreError> {
    let explicit = args.database_url.as_ref().map(|u| u.0.as_str());
    let (url, used_default) =
        crate::settings::resolve_url(explicit, &config.default_url, args.environment)?;
    if explicit.is_some() && url.redacted().contains("***") {
        tracing::warn!(
            "the password in --database-url is visible to every user of this machine (ps, \
             /proc); set DATABASE_URL in the environment or .env instead"
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
