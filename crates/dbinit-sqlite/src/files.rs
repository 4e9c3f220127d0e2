//! The files a SQLite database owns, found and opened without following a
//! link dbinit did not make.
//!
//! A database is `app.db` plus what SQLite and dbinit put beside it:
//! `app.db-wal`, `app.db-shm`, `app.db-journal` and dbinit's `app.db.lock`.
//! Each is checked before SQLite opens anything: a symlink, a FIFO, a device
//! or a hard-linked lock file is refused, so that no run can write through
//! one into another file. The database is named by its canonical path, so
//! two paths to one file (a symlinked parent directory, `a/../app.db`) share
//! one lock.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use dbinit_core::{CoreError, DatabaseCreated, ErrorKind};

use crate::error;

/// The 16-byte magic every SQLite database file starts with.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";
/// The first bytes of a rollback journal that still holds a transaction.
const JOURNAL_MAGIC: [u8; 8] = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];
/// The byte SQLite's unix VFS locks for RESERVED (`PENDING_BYTE + 1`).
const RESERVED_BYTE: libc::off_t = 0x4000_0001;

/// A database file resolved to its canonical path.
#[derive(Debug, Clone)]
pub(crate) struct DbFile {
    path: PathBuf,
}

impl DbFile {
    /// The canonical path of the database file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// `app.db` -> `app.db<suffix>`.
    fn companion(&self, suffix: &str) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    }

    /// dbinit's lock file beside the database.
    pub(crate) fn lock_path(&self) -> PathBuf {
        self.companion(".lock")
    }

    /// SQLite's rollback journal beside the database.
    pub(crate) fn journal_path(&self) -> PathBuf {
        self.companion("-journal")
    }

    /// Resolves an existing database (`status`, `health`): it must exist.
    pub(crate) fn existing(path: &Path) -> Result<DbFile, CoreError> {
        not_a_companion(path)?;
        match fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(CoreError::backend(
                ErrorKind::Unreachable,
                format!("database file {} does not exist", path.display()),
            )
            .with_hint("run `init` to create it")),
            Err(e) => Err(inspect_failed(path, e)),
            Ok(meta) => {
                let db = Self::checked(path, &meta)?;
                db.check_companions()?;
                Ok(db)
            }
        }
    }

    /// Resolves the database for `init`, creating an empty file (0600, and
    /// missing parent directories 0700) when there is none. Never writes to
    /// an existing file.
    pub(crate) fn create_or_open(path: &Path) -> Result<(DbFile, DatabaseCreated), CoreError> {
        not_a_companion(path)?;
        match fs::symlink_metadata(path) {
            Ok(meta) => {
                let db = Self::checked(path, &meta)?;
                db.check_companions()?;
                Ok((db, DatabaseCreated::Existed))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::create(path),
            Err(e) => Err(inspect_failed(path, e)),
        }
    }

    /// Refuses anything but a regular file with a SQLite header (or empty).
    fn checked(path: &Path, meta: &fs::Metadata) -> Result<DbFile, CoreError> {
        let kind = meta.file_type();
        if kind.is_symlink() {
            let target = fs::canonicalize(path);
            let hint = match &target {
                Ok(real) => format!(
                    "name the file itself in the url: sqlite://{}",
                    real.display()
                ),
                Err(_) => "it points nowhere; name a real path in the url".to_owned(),
            };
            return Err(not_a_database(format!(
                "{} is a symbolic link; dbinit never opens or creates a database through a link",
                path.display()
            ))
            .with_hint(hint));
        }
        if kind.is_dir() {
            return Err(not_a_database(format!(
                "{} is a directory, not a database file",
                path.display()
            ))
            .with_hint("name a file inside it, e.g. sqlite://DIR/app.db"));
        }
        if !kind.is_file() {
            return Err(not_a_database(format!(
                "{} is {}, not a database file",
                path.display(),
                describe(meta)
            ))
            .with_hint("nothing was opened or written; point the url at a regular file"));
        }
        if meta.nlink() > 1 {
            return Err(not_a_database(format!(
                "{} has {} names (hard links); SQLite's journal and dbinit's lock would differ \
                 from one name to the next",
                path.display(),
                meta.nlink()
            ))
            .with_hint("nothing was opened or written; give the database one name"));
        }
        // An empty file is an empty database to SQLite (and what a racing
        // `init` leaves between creating the file and writing the schema).
        if meta.len() > 0 {
            let mut header = [0u8; 16];
            let readable = open_nofollow(path)
                .and_then(|mut f| f.read_exact(&mut header))
                .is_ok();
            if !readable || &header != SQLITE_MAGIC {
                return Err(not_a_database(format!(
                    "{} exists but is not a SQLite database",
                    path.display()
                ))
                .with_hint("nothing was written to it; point the url at another path"));
            }
        }
        let path = fs::canonicalize(path).map_err(|e| error::io("resolve", path, e))?;
        Ok(DbFile { path })
    }

    /// Creates the file, and the directories it needs, once the path is
    /// known to work: nothing is made for a name SQLite cannot use, and a
    /// failure removes what was made.
    fn create(path: &Path) -> Result<(DbFile, DatabaseCreated), CoreError> {
        let Some(file_name) = path.file_name() else {
            return Err(not_a_database(format!(
                "{} is a directory, not a database file",
                path.display()
            ))
            .with_hint("name a file, e.g. sqlite://DIR/app.db"));
        };
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let (existing, missing) = resolve_dir(parent)?;
        let mut dir = existing.clone();
        dir.extend(&missing);
        let db = DbFile {
            path: dir.join(file_name),
        };
        db.check_name(&existing)?;
        if missing.is_empty() {
            // A link or a foreign file where its lock or journal would go:
            // refused before the database is made.
            db.check_companions()?;
        }
        let created_dirs = create_dirs(&existing, &missing)?;
        let result = create_new_file(&db.path).map(|created| (db, created));
        if result.is_err() {
            for dir in created_dirs.iter().rev() {
                let _ = fs::remove_dir(dir);
            }
        }
        result
    }

    /// Refuses a path SQLite could open but not use: a name with no room
    /// for `-journal` within the file system's name limit, or a path longer
    /// than SQLite's unix VFS takes.
    fn check_name(&self, existing_dir: &Path) -> Result<(), CoreError> {
        let name_max = nix::sys::statvfs::statvfs(existing_dir)
            .map(|s| s.name_max() as usize)
            .unwrap_or(255);
        let name = self.path.file_name().map_or(0, |n| n.len());
        let longest = LONGEST_SUFFIX.len();
        let too_long = if name + longest > name_max {
            Some(format!(
                "its file name is {name} bytes; with `{LONGEST_SUFFIX}` added for SQLite's \
                 journal it must fit the file system's {name_max}-byte limit (at most {} bytes)",
                name_max.saturating_sub(longest)
            ))
        } else if self.path.as_os_str().len() > MAX_PATH {
            Some(format!(
                "its full path is {} bytes; SQLite opens paths of at most {MAX_PATH} bytes (512 \
                 with `{LONGEST_SUFFIX}`)",
                self.path.as_os_str().len()
            ))
        } else {
            None
        };
        match too_long {
            Some(why) => Err(CoreError::backend(
                ErrorKind::InvalidUrl,
                format!("cannot create {}: {why}", self.path.display()),
            )
            .with_hint("nothing was created; use a shorter name or directory")),
            None => Ok(()),
        }
    }

    /// Refuses a companion file that is not a regular file: SQLite (or the
    /// lock) would write through it.
    fn check_companions(&self) -> Result<(), CoreError> {
        // The lock file before the journal: the journal's check reads it.
        for suffix in ["-wal", "-shm", ".lock", "-journal"] {
            let path = self.companion(suffix);
            let meta = match fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(error::io("inspect", &path, e)),
            };
            if !meta.file_type().is_file() || meta.nlink() != 1 {
                let what = if meta.file_type().is_file() {
                    "a hard link to another file"
                } else {
                    describe(&meta)
                };
                return Err(not_a_database(format!(
                    "{} is {what}; refusing to open {} (SQLite or dbinit would write through it)",
                    path.display(),
                    self.path.display()
                ))
                .with_hint("nothing was opened or written; remove it if it is not yours"));
            }
            if starts_like_a_database(&path) {
                return Err(not_a_database(format!(
                    "{} is a SQLite database of its own, not a file of {}: opening {} would \
                     delete or overwrite it",
                    path.display(),
                    self.path.display(),
                    self.path.display()
                ))
                .with_hint(
                    "nothing was opened or written; give one of the two databases another name",
                ));
            }
            if suffix == "-journal" && self.is_hot(&path)? {
                self.recoverable(&path)?;
            }
        }
        Ok(())
    }

    /// Accepts a hot journal that a crashed dbinit left (its lock file
    /// still says it was writing): rolling it back is SQLite's crash
    /// recovery, and the next read does it. Any other hot journal may
    /// belong to another database, and rolling it back would write that
    /// database's pages into this one: refused.
    fn recoverable(&self, journal: &Path) -> Result<(), CoreError> {
        let lock_file = open_nofollow(&self.lock_path()).ok();
        if let Some(pid) = lock_file.as_ref().and_then(crate::mark::crashed_writer) {
            tracing::warn!(
                pid,
                journal = %journal.display(),
                "dbinit (pid {pid}) stopped in the middle of a write; SQLite rolls its \
                 unfinished transaction back"
            );
            return Ok(());
        }
        Err(CoreError::backend(
            ErrorKind::Database,
            format!(
                "{} holds an unfinished transaction that dbinit did not write, and no process \
                 is writing {}: opening it would roll that journal back into the database",
                journal.display(),
                self.path.display()
            ),
        )
        .with_hint(
            "nothing was opened or written. If a program writing this database crashed, open \
             it once with `sqlite3` to recover; if the journal belongs to another database, \
             move it away",
        ))
    }

    /// A hot journal, as SQLite decides (`hasHotJournal`): a database of at
    /// least one page (SQLite deletes a journal beside an empty one), a
    /// journal with its header intact, and no process holding the
    /// database's RESERVED lock. A live writer deletes or clears its
    /// journal before it unlocks, and a new one locks before it writes one;
    /// so the lock is looked at before and after the journal, and only a
    /// journal seen between two free looks is hot.
    fn is_hot(&self, journal: &Path) -> Result<bool, CoreError> {
        let db = match open_nofollow(&self.path) {
            Ok(db) => db,
            // Not made yet: SQLite deletes a journal without its database.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(error::io("inspect", &self.path, e)),
        };
        let empty = db
            .metadata()
            .map_err(|e| error::io("inspect", &self.path, e))?
            .len()
            == 0;
        if empty || self.reserved(&db)? {
            return Ok(false);
        }
        let mut magic = [0u8; 8];
        let intact = open_nofollow(journal)
            .and_then(|mut f| f.read_exact(&mut magic))
            .is_ok_and(|()| magic == JOURNAL_MAGIC);
        Ok(intact && !self.reserved(&db)?)
    }

    /// Whether another process holds SQLite's RESERVED lock (a POSIX write
    /// lock on one byte) on the database.
    fn reserved(&self, db: &File) -> Result<bool, CoreError> {
        let mut probe = libc::flock {
            l_type: libc::F_WRLCK as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: RESERVED_BYTE,
            l_len: 1,
            l_pid: 0,
        };
        nix::fcntl::fcntl(db, nix::fcntl::FcntlArg::F_GETLK(&mut probe))
            .map_err(|e| error::io("inspect the locks of", &self.path, e.into()))?;
        Ok(probe.l_type != libc::F_UNLCK as libc::c_short)
    }
}

/// Refuses a database named like a file SQLite or dbinit keeps beside
/// another (`app.db-wal`, `app.db.lock`): a run on that other database
/// would delete or overwrite it.
fn not_a_companion(path: &Path) -> Result<(), CoreError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    match ["-wal", "-shm", "-journal", ".lock"]
        .iter()
        .find(|s| name.ends_with(*s))
    {
        Some(suffix) => Err(CoreError::backend(
            ErrorKind::InvalidUrl,
            format!(
                "{} is named like the `{suffix}` file of another database ({}); a run on that \
                 database would delete or overwrite it",
                path.display(),
                name.trim_end_matches(suffix)
            ),
        )
        .with_hint("nothing was opened or created; name the database otherwise")),
        None => Ok(()),
    }
}

/// Whether `path` begins with the SQLite header.
fn starts_like_a_database(path: &Path) -> bool {
    let mut header = [0u8; 16];
    open_nofollow(path)
        .and_then(|mut f| f.read_exact(&mut header))
        .is_ok_and(|()| &header == SQLITE_MAGIC)
}

/// A failed look at the database path; a name too long for the file
/// system is the URL's fault.
fn inspect_failed(path: &Path, e: io::Error) -> CoreError {
    if e.raw_os_error() == Some(libc::ENAMETOOLONG) {
        return CoreError::backend(
            ErrorKind::InvalidUrl,
            format!(
                "{}: the file name is too long for the file system",
                path.display()
            ),
        )
        .with_hint("nothing was created; use a shorter name");
    }
    error::io("inspect", path, e)
}

fn not_a_database(message: String) -> CoreError {
    CoreError::backend(ErrorKind::NotADatabase, message)
}

fn describe(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading without following a final symlink, and without
/// blocking on a FIFO.
pub(crate) fn open_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
}

/// Opens (creating 0600 if missing) dbinit's lock file: never through a
/// symlink, never a file with other names (a hard link), never anything but
/// a regular file.
pub(crate) fn open_lock_file(path: &Path) -> Result<File, CoreError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                not_a_database(format!(
                    "{} is a symbolic link; dbinit never writes through a link",
                    path.display()
                ))
                .with_hint("nothing was written; remove the link")
            } else {
                error::io("open lock file", path, e)
            }
        })?;
    let meta = file.metadata().map_err(|e| error::io("inspect", path, e))?;
    if !meta.file_type().is_file() || meta.nlink() != 1 {
        return Err(not_a_database(format!(
            "{} is {}; refusing to use it as the lock file",
            path.display(),
            if meta.nlink() != 1 {
                "a hard link to another file"
            } else {
                describe(&meta)
            }
        ))
        .with_hint("nothing was written; remove it if it is not yours"));
    }
    Ok(file)
}

/// The longest name SQLite and dbinit add to the database's.
const LONGEST_SUFFIX: &str = "-journal";
/// The longest database path that leaves room for [`LONGEST_SUFFIX`]
/// within the 512 bytes of SQLite's unix VFS.
const MAX_PATH: usize = 512 - LONGEST_SUFFIX.len();

/// Splits `dir` into its longest existing prefix, resolved, and the
/// directories still to make below it. The missing part is taken by its
/// letter: `x/../y` below an existing directory is `y`, since a directory
/// dbinit makes is never a link; a `..` that climbs out of the missing part
/// climbs from the resolved prefix.
fn resolve_dir(dir: &Path) -> Result<(PathBuf, Vec<std::ffi::OsString>), CoreError> {
    use std::path::Component;
    let components: Vec<Component<'_>> = dir.components().collect();
    let mut existing = PathBuf::new();
    let mut found = 0;
    for component in &components {
        let next = existing.join(component);
        if fs::symlink_metadata(&next).is_err() {
            break;
        }
        existing = next;
        found += 1;
    }
    if existing.as_os_str().is_empty() {
        existing.push(".");
    }
    let mut resolved =
        fs::canonicalize(&existing).map_err(|e| error::io("resolve", &existing, e))?;
    let mut missing = Vec::new();
    let mut climbed = false;
    for component in &components[found..] {
        match component {
            Component::Normal(name) => missing.push(name.to_os_string()),
            Component::ParentDir => {
                climbed = true;
                if missing.pop().is_none() {
                    resolved.pop();
                }
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    if climbed {
        // `new/../existing` climbed back into what exists: resolve that
        // again, links and all (the path has no `..` left).
        let mut again = resolved;
        again.extend(&missing);
        return resolve_dir(&again);
    }
    Ok((resolved, missing))
}

/// Makes `missing` below `existing`, one level at a time (mode 0700);
/// returns those this call made, outermost first. On failure, removes them.
fn create_dirs(existing: &Path, missing: &[std::ffi::OsString]) -> Result<Vec<PathBuf>, CoreError> {
    let mut dir = existing.to_path_buf();
    let mut created = Vec::with_capacity(missing.len());
    for name in missing {
        dir.push(name);
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => created.push(dir.clone()),
            // Another process made it first: fine, but not ours to remove;
            // and a directory, not a link to one somewhere else.
            Err(e)
                if e.kind() == io::ErrorKind::AlreadyExists
                    && fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir()) => {}
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
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(_) => {
            tracing::info!(path = %path.display(), "created database file");
            Ok(DatabaseCreated::Created)
        }
        // Another process created it between our check and our open.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta = fs::symlink_metadata(path).map_err(|e| error::io("inspect", path, e))?;
            DbFile::checked(path, &meta)?;
            Ok(DatabaseCreated::Existed)
        }
        Err(e) => Err(error::io("create", path, e)),
    }
}
