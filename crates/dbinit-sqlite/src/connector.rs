//! The SQLite [`Connector`]: file creation, header check, open and pragmas.

use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use dbinit_core::{
    async_trait, ConnectOptions, Connector, CoreError, DatabaseCreated, DatabaseUrl, Dialect,
    ErrorKind, Session, SqlitePath, UrlForm,
};
use rusqlite::{Connection, OpenFlags};

use crate::error;
use crate::session::{blocking, SqliteSession};

/// The 16-byte magic every SQLite database file starts with.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// The SQLite backend. Claims `sqlite:` and `file:` URLs.
#[derive(Debug, Default, Clone, Copy)]
pub struct SqliteConnector;

#[async_trait]
impl Connector for SqliteConnector {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    async fn ensure_database(
        &self,
        url: &DatabaseUrl,
        options: &ConnectOptions,
    ) -> Result<DatabaseCreated, CoreError> {
        match target(url)? {
            SqlitePath::Memory => Ok(DatabaseCreated::Created),
            SqlitePath::File(path) => {
                let path = path.clone();
                blocking(options.run_inline, move || create_file(&path)).await?
            }
        }
    }

    /// Opens an existing database as it is: `status` and `health` never
    /// switch its journal mode.
    async fn connect(
        &self,
        url: &DatabaseUrl,
        options: &ConnectOptions,
    ) -> Result<Box<dyn Session>, CoreError> {
        Ok(Box::new(
            open_session(url, options, Purpose::Inspect).await?,
        ))
    }

    /// Creates the file if needed (checking an existing one once), then opens
    /// it. WAL is switched on by the first migration, under the init lock.
    async fn open(
        &self,
        url: &DatabaseUrl,
        options: &ConnectOptions,
    ) -> Result<(Box<dyn Session>, DatabaseCreated), CoreError> {
        let created = self.ensure_database(url, options).await?;
        let session = open_session(url, options, Purpose::Initialize).await?;
        Ok((Box::new(session), created))
    }
}

/// Why a session is opened.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Purpose {
    /// `status`, `health`: the file must exist.
    Inspect,
    /// `init`: `ensure_database` just created or checked the file.
    Initialize,
}

async fn open_session(
    url: &DatabaseUrl,
    options: &ConnectOptions,
    purpose: Purpose,
) -> Result<SqliteSession, CoreError> {
    let (path, params) = match url.form() {
        UrlForm::Sqlite { path, params } => (path.clone(), params.clone()),
        _ => return Err(not_sqlite(url)),
    };
    let read_only = params.iter().any(|(k, v)| k == "mode" && v == "ro");
    let (busy, inline) = (options.busy_timeout, options.run_inline);
    blocking(inline, move || {
        let conn = match &path {
            SqlitePath::Memory => Connection::open_in_memory()
                .map_err(|e| error::sqlite("cannot open an in-memory database", e))?,
            SqlitePath::File(file) => open_file(file, read_only, purpose == Purpose::Inspect)?,
        };
        configure(&conn, busy)?;
        Ok(SqliteSession::new(conn, path, inline, busy))
    })
    .await?
}

fn not_sqlite(url: &DatabaseUrl) -> CoreError {
    CoreError::backend(ErrorKind::InvalidUrl, format!("{url} is not a SQLite url"))
}

fn target(url: &DatabaseUrl) -> Result<&SqlitePath, CoreError> {
    url.sqlite_path().ok_or_else(|| not_sqlite(url))
}

/// Creates the parent directory (0700) and an empty database file (0600),
/// or verifies that an existing path is a SQLite database. Never writes to
/// an existing file.
fn create_file(path: &Path) -> Result<DatabaseCreated, CoreError> {
    if path.exists() {
        check_existing(path)?;
        return Ok(DatabaseCreated::Existed);
    }
    if path.file_name().is_none() {
        return Err(CoreError::backend(
            ErrorKind::NotADatabase,
            format!("{} is a directory, not a database file", path.display()),
        )
        .with_hint("name a file, e.g. sqlite://DIR/app.db"));
    }
    let created_dirs = create_parents(path)?;
    let result = create_new_file(path);
    if result.is_err() {
        // Leave nothing behind: remove the (empty) directories we made.
        for dir in created_dirs.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
    result
}

/// Creates the missing ancestors of `path` (mode 0700); returns those this
/// call created, outermost first.
fn create_parents(path: &Path) -> Result<Vec<std::path::PathBuf>, CoreError> {
    let mut missing: Vec<std::path::PathBuf> = path
        .ancestors()
        .skip(1)
        .filter(|p| !p.as_os_str().is_empty())
        .take_while(|p| !p.exists())
        .map(Path::to_path_buf)
        .collect();
    missing.reverse();
    let mut created = Vec::with_capacity(missing.len());
    for dir in missing {
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => created.push(dir),
            // Another process made it first: fine, but not ours to remove.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                for dir in created.iter().rev() {
                    let _ = fs::remove_dir(dir);
                }
                return Err(error::io("create directory", &dir, e));
            }
        }
    }
    Ok(created)
}

fn create_new_file(path: &Path) -> Result<DatabaseCreated, CoreError> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => {
            tracing::info!(path = %path.display(), "created database file");
            Ok(DatabaseCreated::Created)
        }
        // Another process created it between our check and our open.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            check_existing(path)?;
            Ok(DatabaseCreated::Existed)
        }
        Err(e) => Err(error::io("create", path, e)),
    }
}

/// Refuses a directory or a non-empty file without the SQLite header.
fn check_existing(path: &Path) -> Result<(), CoreError> {
    let meta = fs::metadata(path).map_err(|e| error::io("inspect", path, e))?;
    if meta.is_dir() {
        return Err(CoreError::backend(
            ErrorKind::NotADatabase,
            format!("{} is a directory, not a database file", path.display()),
        )
        .with_hint("name a file inside it, e.g. sqlite://DIR/app.db"));
    }
    if meta.len() == 0 {
        // An empty file is an empty database to SQLite (and what a racing
        // `init` leaves between creating the file and writing the schema).
        return Ok(());
    }
    let mut header = [0u8; 16];
    let readable = fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok();
    if !readable || &header != SQLITE_MAGIC {
        return Err(CoreError::backend(
            ErrorKind::NotADatabase,
            format!("{} exists but is not a SQLite database", path.display()),
        )
        .with_hint("nothing was written to it; point the url at another path"));
    }
    Ok(())
}

fn open_file(path: &Path, read_only: bool, check: bool) -> Result<Connection, CoreError> {
    if check {
        if !path.exists() {
            return Err(CoreError::backend(
                ErrorKind::Unreachable,
                format!("database file {} does not exist", path.display()),
            )
            .with_hint("run `cargo xtask init` to create it"));
        }
        check_existing(path)?;
    }
    let mode = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    };
    Connection::open_with_flags(path, mode | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| error::sqlite(format_args!("cannot open {}", path.display()), e))
}

/// Applies the connection settings every dbinit session runs with.
fn configure(conn: &Connection, busy: std::time::Duration) -> Result<(), CoreError> {
    conn.busy_timeout(busy)
        .map_err(|e| error::sqlite("cannot set busy_timeout", e))?;
    conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
        .map_err(|e| error::sqlite("cannot configure the connection", e))?;
    Ok(())
}

/// Switches to WAL unless already there (persistent: set once, by the first
/// migration of a new database). Switching needs exclusive access,
/// and SQLite does not run the busy handler for it (two processes opening a
/// new file at once would deadlock), so retry with backoff up to `busy`.
pub(crate) fn enable_wal(conn: &Connection, busy: std::time::Duration) -> Result<(), CoreError> {
    // Reading first keeps the common case (already WAL) free of any lock.
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(|e| error::sqlite("cannot read journal_mode", e))?;
    if mode.eq_ignore_ascii_case("wal") || mode.eq_ignore_ascii_case("memory") {
        return Ok(());
    }
    let started = std::time::Instant::now();
    let mut delays = dbinit_core::wait::lock_poll_delays();
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Ok(mode) if mode.eq_ignore_ascii_case("wal") => return Ok(()),
            Ok(mode) => {
                // Some file systems cannot do WAL; SQLite keeps the old mode.
                tracing::warn!(%mode, "SQLite refused WAL; continuing in this journal mode");
                return Ok(());
            }
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && started.elapsed() < busy =>
            {
                std::thread::sleep(delays.next().unwrap_or(busy / 10));
            }
            Err(e) => return Err(error::sqlite("cannot switch to WAL", e)),
        }
    }
}
