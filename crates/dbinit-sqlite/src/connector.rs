//! The SQLite [`Connector`]: file creation, header check, open and pragmas.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use dbinit_core::{
    async_trait, ConnectOptions, Connector, CoreError, DatabaseCreated, DatabaseUrl, ErrorKind,
    Session,
};
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

use crate::conn::{self, blocking};
use crate::error;
use crate::files::DbFile;
use crate::session::SqliteSession;
use crate::url::{self as sqlite_url, SqlitePath};

/// The SQLite backend. Claims `sqlite:` and `file:` URLs.
#[derive(Debug, Default, Clone, Copy)]
pub struct SqliteConnector;

#[async_trait]
impl Connector for SqliteConnector {
    fn name(&self) -> &'static str {
        crate::session::NAME
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["sqlite", "file"]
    }

    fn check_url(&self, raw: &str, _keywords: bool) -> Result<String, CoreError> {
        sqlite_url::check(raw)
    }

    async fn ensure_database(
        &self,
        url: &DatabaseUrl,
        options: &ConnectOptions,
    ) -> Result<DatabaseCreated, CoreError> {
        match target(url)? {
            (SqlitePath::Memory, _) => Ok(DatabaseCreated::Created),
            (SqlitePath::File(path), Mode::Create) => {
                blocking(options.run_inline, move || {
                    DbFile::create_or_open(&path).map(|(_, created)| created)
                })
                .await?
            }
            (SqlitePath::File(path), _) => {
                blocking(options.run_inline, move || {
                    DbFile::existing(&path).map(|_| DatabaseCreated::Existed)
                })
                .await?
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
        Ok(Box::new(open_session(url, options, false).await?.0))
    }

    /// Creates the file if needed (checking an existing one once), then opens
    /// it. WAL is switched on by the first migration, under the init lock.
    async fn open(
        &self,
        url: &DatabaseUrl,
        options: &ConnectOptions,
    ) -> Result<(Box<dyn Session>, DatabaseCreated), CoreError> {
        let (session, created) = open_session(url, options, true).await?;
        Ok((Box::new(session), created))
    }
}

/// Opens a session; with `create` (what `init` does), creates the file
/// first when the URL's mode allows it. The file is resolved and checked
/// once, here.
async fn open_session(
    url: &DatabaseUrl,
    options: &ConnectOptions,
    create: bool,
) -> Result<(SqliteSession, DatabaseCreated), CoreError> {
    let (path, mode) = target(url)?;
    let (busy, inline) = (options.busy_timeout, options.run_inline);
    blocking(inline, move || {
        let (mut conn, file, created) = match &path {
            SqlitePath::Memory => (
                Connection::open_in_memory()
                    .map_err(|e| error::sqlite("cannot open an in-memory database", e))?,
                None,
                DatabaseCreated::Created,
            ),
            SqlitePath::File(file) => {
                let (db, created) = if create && mode == Mode::Create {
                    DbFile::create_or_open(file)?
                } else {
                    (DbFile::existing(file)?, DatabaseCreated::Existed)
                };
                (open_file(&db, mode == Mode::ReadOnly)?, Some(db), created)
            }
        };
        let cancelled = Arc::new(AtomicBool::new(false));
        crate::busy::with_budget(busy, &cancelled, || conn::configure(&mut conn))?;
        Ok((
            SqliteSession::new(conn, file, inline, busy, cancelled),
            created,
        ))
    })
    .await?
}

fn not_sqlite(url: &DatabaseUrl) -> CoreError {
    CoreError::backend(ErrorKind::InvalidUrl, format!("{url} is not a SQLite url"))
}

/// How the URL asks for the file to be opened (`?mode=`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `rwc` (the default): read, write, create.
    Create,
    /// `rw`: the file must exist.
    ReadWrite,
    /// `ro`.
    ReadOnly,
}

/// The SQLite location and mode; refuses parameters this backend cannot
/// honour rather than ignoring them (a `key=` ignored means a plain-text
/// file the user believes is encrypted).
fn target(url: &DatabaseUrl) -> Result<(SqlitePath, Mode), CoreError> {
    let (path, _) = sqlite_url::parse(url.expose_secret()).map_err(|_| not_sqlite(url))?;
    let invalid = |reason: String| CoreError::InvalidUrl {
        url: url.redacted().to_owned(),
        reason,
    };
    let query = url.expose_secret().split_once('?').map_or("", |(_, q)| q);
    let mut mode = Mode::Create;
    for (key, value) in ::url::form_urlencoded::parse(query.as_bytes()) {
        match (key.as_ref(), value.as_ref()) {
            ("key" | "hexkey" | "textkey" | "hexrekey" | "rekey" | "cipher", _) => {
                return Err(invalid(format!(
                    "`{key}=` asks for SQLCipher encryption, which this build does not have: \
                     the file would be written in plain text; remove it (or encrypt the volume)"
                )))
            }
            ("mode", "rwc") | ("mode", "memory") => mode = Mode::Create,
            ("mode", "rw") => mode = Mode::ReadWrite,
            ("mode", "ro") => mode = Mode::ReadOnly,
            ("mode", other) => {
                return Err(invalid(format!(
                    "unknown mode `{other}` (expected ro, rw, rwc or memory)"
                )))
            }
            ("cache", "shared" | "private") => {}
            (other, _) => {
                return Err(invalid(format!(
                    "unsupported parameter `{other}` (supported: mode=ro|rw|rwc|memory, \
                     cache=shared|private)"
                )))
            }
        }
    }
    Ok((path, mode))
}

fn open_file(db: &DbFile, read_only: bool) -> Result<Connection, CoreError> {
    let mode = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    };
    let path = db.path();
    let conn = Connection::open_with_flags(
        path,
        mode | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )
    .map_err(|e| error::sqlite(format_args!("cannot open {}", path.display()), e))?;
    // Closing the last connection would checkpoint the WAL into the file,
    // even a WAL that belongs to another database. Until this session
    // writes, it must leave the file as it found it.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
        .map_err(|e| error::sqlite("cannot configure the connection", e))?;
    Ok(conn)
}
