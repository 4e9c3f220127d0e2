//! The init lock: which strategy, `GET_LOCK`, and the hold.
//!
//! `dbinit_lock=advisory` takes `GET_LOCK`: it dies with the connection and
//! wakes a waiter at once, but its names are server-wide, so the name
//! carries the database. `dbinit_lock=lease` writes a row with an expiry
//! (see [`crate::lease`]), for servers and proxies where `GET_LOCK` is
//! unavailable. `dbinit_lock=auto`, the default, takes `GET_LOCK` unless the
//! server is TiDB (whose `GET_LOCK` was a no-op before 5.x) or refuses the
//! function. Each strategy looks at the other's lock after taking its own,
//! so a process connected directly and one behind a proxy never work at
//! once.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dbinit_core::{CoreError, ErrorKind, InitLock};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};

use crate::error::{self, server_code};
use crate::lease::{self, Lease, LeaseContext};

/// `?dbinit_lock=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice {
    Auto,
    Advisory,
    Lease,
}

/// The strategy in use, with why the lease was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Strategy {
    Advisory,
    Lease { why: String },
}

/// A hold on the lock, to give back on release.
enum Held {
    Advisory(String),
    Lease(Lease),
    /// A shared hold: nothing is held.
    Nothing,
}

/// Server errors that say `GET_LOCK` is not there: `ER_SP_DOES_NOT_EXIST`,
/// `ER_NOT_SUPPORTED_YET`, `ER_FUNCTION_NOT_DEFINED`.
const NO_GET_LOCK: [u16; 3] = [1305, 1235, 1128];

/// The init lock of one session.
pub(crate) struct Lock {
    choice: Choice,
    ttl: Duration,
    application: String,
    /// The `GET_LOCK` name: `dbinit:DATABASE`, hashed when too long.
    name: String,
    strategy: Option<Strategy>,
    held: Option<Held>,
    /// Set by the session's canceller: stops a lease wait between polls.
    pub(crate) cancelled: Arc<AtomicBool>,
}

/// What a lock needs of its session.
pub(crate) struct On<'a> {
    pub(crate) conn: &'a mut Conn,
    pub(crate) opts: &'a Opts,
    pub(crate) cancel: Arc<dyn dbinit_core::Canceller>,
}

impl Lock {
    pub(crate) fn new(database: &str, choice: Choice, ttl: Duration, application: &str) -> Self {
        Lock {
            choice,
            ttl,
            application: application.to_owned(),
            name: name(database),
            strategy: None,
            held: None,
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The held lease, if this session holds one (for the commit fence).
    pub(crate) fn lease(&self) -> Option<&Lease> {
        match &self.held {
            Some(Held::Lease(lease)) => Some(lease),
            _ => None,
        }
    }

    /// Takes the lock, waiting at most `wait`; with `share_if_busy`, a
    /// shared hold once a busy holder is done.
    pub(crate) async fn acquire(
        &mut self,
        on: On<'_>,
        wait: Duration,
        share_if_busy: bool,
    ) -> Result<InitLock, CoreError> {
        let started = Instant::now();
        let left = || wait.saturating_sub(started.elapsed());
        let mut waited_for = None;
        loop {
            let strategy = self.strategy(on.conn).await?;
            let taken = match &strategy {
                Strategy::Advisory => advisory(on.conn, &self.name, left(), share_if_busy).await,
                Strategy::Lease { why } => {
                    let cx = LeaseContext {
                        opts: on.opts,
                        ttl: self.ttl,
                        application: &self.application,
                        cancelled: &self.cancelled,
                        cancel: on.cancel.clone(),
                    };
                    lease::acquire(on.conn, cx, left(), share_if_busy)
                        .await
                        .map(|(lease, mut lock)| {
                            lock.name = format!("{}, because {why}", lock.name);
                            (lease.map_or(Held::Nothing, Held::Lease), lock)
                        })
                }
            };
            let (held, mut lock) = match taken {
                // No GET_LOCK here after all: the lease, from now on.
                Err(e) if self.choice == Choice::Auto && refused(&e) => {
                    tracing::warn!(error = %e, "GET_LOCK is unavailable; using the lease instead");
                    self.strategy = Some(Strategy::Lease {
                        why: "the server refused GET_LOCK".to_owned(),
                    });
                    continue;
                }
                taken => taken?,
            };
            let rival = match (&held, &strategy) {
                (Held::Nothing, _) => None,
                (_, Strategy::Advisory) => lease::live_holder(on.conn).await?,
                (_, Strategy::Lease { .. }) => advisory_holder(on.conn, &self.name).await,
            };
            let Some(rival) = rival else {
                lock.waited = started.elapsed();
                lock.waited_for = lock.waited_for.or(waited_for);
                self.held = Some(held);
                return Ok(lock);
            };
            self.held = Some(held);
            self.release(on.conn, on.opts).await?;
            if waited_for.is_none() {
                tracing::info!(holder = %rival, "another process holds the lock of the other strategy; waiting");
            }
            if started.elapsed() >= wait {
                return Err(CoreError::LockTimeout {
                    lock: lock.name,
                    waited: started.elapsed(),
                    holder: Some(rival),
                });
            }
            waited_for = Some(rival);
            tokio::time::sleep(Duration::from_millis(50).min(left())).await;
        }
    }

    /// Gives the hold back.
    pub(crate) async fn release(&mut self, conn: &mut Conn, opts: &Opts) -> Result<(), CoreError> {
        match self.held.take() {
            None | Some(Held::Nothing) => Ok(()),
            Some(Held::Advisory(name)) => conn
                .exec_drop("DO RELEASE_LOCK(?)", (name,))
                .await
                .map_err(|e| error::classify("cannot release the init lock", e)),
            Some(Held::Lease(held)) => lease::release(conn, opts, held, self.ttl).await,
        }
    }

    /// The strategy, chosen on first use.
    async fn strategy(&mut self, conn: &mut Conn) -> Result<Strategy, CoreError> {
        if let Some(strategy) = &self.strategy {
            return Ok(strategy.clone());
        }
        let strategy = match self.choice {
            Choice::Advisory => Strategy::Advisory,
            Choice::Lease => Strategy::Lease {
                why: "dbinit_lock=lease".to_owned(),
            },
            Choice::Auto => {
                let version: Option<String> = conn
                    .query_first("SELECT VERSION()")
                    .await
                    .map_err(|e| error::classify("cannot identify the server", e))?;
                if version.is_some_and(|v| v.contains("TiDB")) {
                    Strategy::Lease {
                        why: "the server is TiDB, whose GET_LOCK dbinit does not rely on"
                            .to_owned(),
                    }
                } else {
                    Strategy::Advisory
                }
            }
        };
        if let Strategy::Lease { why } = &strategy {
            tracing::info!(why = %why, "initialization lock: lease");
        }
        self.strategy = Some(strategy.clone());
        Ok(strategy)
    }
}

/// `dbinit:DATABASE`, or `dbinit:` and a hash when that is longer than the
/// server's 64 characters.
pub(crate) fn name(database: &str) -> String {
    let name = format!("dbinit:{database}");
    if name.chars().count() <= 64 {
        return name;
    }
    let hash = xxhash_rust::xxh3::xxh3_128(database.as_bytes());
    format!("dbinit:{hash:032x}")
}

/// Whether `e` says the server has no `GET_LOCK`.
fn refused(e: &CoreError) -> bool {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<mysql_async::Error>())
        .and_then(server_code)
        .is_some_and(|c| NO_GET_LOCK.contains(&c))
}

/// `GET_LOCK(name, wait)`: whether it was granted in time.
async fn get_lock(conn: &mut Conn, name: &str, wait: Duration) -> Result<bool, CoreError> {
    // Fractions of a second are honoured by MySQL 5.7+ and MariaDB.
    let seconds = format!("{:.3}", wait.as_secs_f64());
    let got: Option<Option<i64>> = conn
        .exec_first("SELECT GET_LOCK(?, ?)", (name, seconds))
        .await
        .map_err(|e| error::classify("cannot take the init lock", e))?;
    match got.flatten() {
        Some(1) => Ok(true),
        Some(_) => Ok(false),
        // Killed (a cancel) or an error inside the server.
        None => Err(CoreError::backend(
            ErrorKind::Interrupted,
            format!("GET_LOCK('{name}') was interrupted"),
        )),
    }
}

/// Takes `GET_LOCK`. A busy lock is waited for; with `share_if_busy`, it is
/// let go at once when granted, and the hold is shared: the processes that
/// lost the race verify the holder's work side by side.
async fn advisory(
    conn: &mut Conn,
    name: &str,
    wait: Duration,
    share_if_busy: bool,
) -> Result<(Held, InitLock), CoreError> {
    let started = Instant::now();
    if get_lock(conn, name, Duration::ZERO).await? {
        return Ok((
            Held::Advisory(name.to_owned()),
            InitLock::exclusive(name, started.elapsed()),
        ));
    }
    let holder = advisory_holder(conn, name).await;
    tracing::info!(
        holder = holder.as_deref(),
        "another process is initializing; waiting"
    );
    if !get_lock(conn, name, wait.saturating_sub(started.elapsed())).await? {
        return Err(CoreError::LockTimeout {
            lock: name.to_owned(),
            waited: started.elapsed(),
            holder: advisory_holder(conn, name).await.or(holder),
        });
    }
    if share_if_busy {
        conn.exec_drop("DO RELEASE_LOCK(?)", (name,))
            .await
            .map_err(|e| error::classify("cannot release the init lock", e))?;
        return Ok((
            Held::Nothing,
            InitLock::shared(name, started.elapsed(), holder),
        ));
    }
    let mut lock = InitLock::exclusive(name, started.elapsed());
    lock.waited_for = holder;
    Ok((Held::Advisory(name.to_owned()), lock))
}

/// Who holds `GET_LOCK(name)`: connection id, user and host, from the
/// process list (visible with the PROCESS privilege, or when it is the same
/// user). `None` when it is free or `GET_LOCK` is unavailable.
async fn advisory_holder(conn: &mut Conn, name: &str) -> Option<String> {
    let id: Option<u64> = conn
        .exec_first("SELECT IS_USED_LOCK(?)", (name,))
        .await
        .ok()
        .flatten()
        .flatten();
    let id = id?;
    let who: Option<(Option<String>, Option<String>)> = conn
        .exec_first(
            "SELECT USER, HOST FROM information_schema.PROCESSLIST WHERE ID = ?",
            (id,),
        )
        .await
        .ok()
        .flatten();
    Some(match who {
        Some((user, host)) => format!(
            "connection {id} ({}@{})",
            user.unwrap_or_default(),
            host.unwrap_or_default()
        ),
        None => format!("connection {id}"),
    })
}
