//! The lease: a row in `dbinit_lock` with an expiry, for servers where
//! `GET_LOCK` is unavailable (TiDB, proxies that do not pin a connection)
//! or when the URL asks for it (`?dbinit_lock=lease`).
//!
//! Every statement commits on its own, so nothing depends on one server
//! connection. The holder writes who it is and an expiry; a heartbeat on a
//! second connection pushes the expiry forward every third of the lease's
//! life and cancels the holder's statement if the row is gone or someone
//! else's. Nobody takes the row over before it expires, so a crashed holder
//! delays the others by at most `dbinit_lease_ttl`. All times are the
//! server's, in UTC (a session's time zone would skew them).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dbinit_core::lease::{self, Holder};
use dbinit_core::wait::Poll;
use dbinit_core::{Canceller, CoreError, ErrorKind, InitLock};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};

use crate::error::{self, code, server_code};

/// The table, beside the migration history.
pub(crate) const TABLE: &str = "dbinit_lock";

const CREATE: &str = "CREATE TABLE IF NOT EXISTS dbinit_lock (\
     name VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY, \
     holder VARCHAR(255) NOT NULL, host VARCHAR(255) NOT NULL, pid INT NOT NULL, \
     application VARCHAR(255) NOT NULL, connection BIGINT UNSIGNED NOT NULL, \
     acquired_at DATETIME(6) NOT NULL, expires_at DATETIME(6) NOT NULL) ENGINE=InnoDB";

/// The holder as waiters name it, whether its lease expired, and its
/// session's connection id.
const HOLDER: &str = "SELECT CONCAT('host ', host, ' pid ', pid, ' (', application, ')'), \
       expires_at < UTC_TIMESTAMP(6), connection FROM dbinit_lock WHERE name = 'init'";

/// Whether the lease is this holder's and not expired. A locking read: it
/// sees the row as it is now, not as the transaction's snapshot had it.
const CHECK: &str = "SELECT 1 FROM dbinit_lock \
     WHERE name = 'init' AND holder = ? AND expires_at > UTC_TIMESTAMP(6) FOR UPDATE";

const CLAIM_EXPIRED: &str =
    "DELETE FROM dbinit_lock WHERE name = 'init' AND expires_at < UTC_TIMESTAMP(6)";

const TAKE: &str = "INSERT INTO dbinit_lock \
       (name, holder, host, pid, application, connection, acquired_at, expires_at) \
       VALUES ('init', ?, ?, ?, ?, CONNECTION_ID(), UTC_TIMESTAMP(6), \
               UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND)";

const RENEW: &str =
    "UPDATE dbinit_lock SET expires_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND \
       WHERE name = 'init' AND holder = ?";

const RELEASE: &str = "DELETE FROM dbinit_lock WHERE name = 'init' AND holder = ?";

/// `ER_DUP_ENTRY`: someone else inserted the row first.
const DUPLICATE: u16 = 1062;

/// A held lease. Dropping it stops the heartbeat; the row then expires.
pub(crate) struct Lease {
    token: String,
    heartbeat: tokio::task::JoinHandle<()>,
    lost: Arc<AtomicBool>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// What taking the lease needs besides the connection.
pub(crate) struct LeaseContext<'a> {
    /// For the heartbeat's connection.
    pub(crate) opts: &'a Opts,
    pub(crate) ttl: Duration,
    pub(crate) application: &'a str,
    /// Set by the session's canceller: stop waiting.
    pub(crate) cancelled: &'a AtomicBool,
    /// Cancels the holder's statement when the lease is lost.
    pub(crate) cancel: Arc<dyn Canceller>,
}

/// How the lock is named in reports.
pub(crate) fn name(ttl: Duration) -> String {
    format!("lease {TABLE} (ttl {}s)", ttl.as_secs())
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// Takes the lease, waiting at most `wait`. With `share_if_busy`, returns a
/// shared hold on nothing once a busy lease is gone: the caller verifies
/// and comes back for the lease only if work is left. A role that may not
/// write the lease verifies only.
pub(crate) async fn acquire(
    conn: &mut Conn,
    cx: LeaseContext<'_>,
    wait: Duration,
    share_if_busy: bool,
) -> Result<(Option<Lease>, InitLock), CoreError> {
    let mut poll = Poll::new(wait, cx.cancelled);
    let verify_only = |e: CoreError, waited: Duration| {
        if share_if_busy && e.kind() == ErrorKind::PermissionDenied {
            tracing::info!(error = %e, "this user cannot take the lease; verifying only");
            let what = format!("{} unavailable to this user (verifying only)", name(cx.ttl));
            Ok((None, InitLock::shared(what, waited, None)))
        } else {
            Err(e.with_hint(
                "the lease needs CREATE, INSERT, UPDATE and DELETE on the database; run init \
                 once with a user that has them",
            ))
        }
    };
    if let Err(e) = conn.query_drop(CREATE).await {
        return verify_only(
            error::classify("cannot create the lease table dbinit_lock", e),
            poll.elapsed(),
        );
    }
    let me = Holder::current(cx.application);
    let mut waited_for: Option<String> = None;
    loop {
        let held: Option<(String, bool, u64)> = conn
            .query_first(HOLDER)
            .await
            .map_err(|e| error::classify("cannot read the initialization lease", e))?;
        match held {
            Some((holder, false, _)) => {
                let holder = shown(&holder);
                if waited_for.is_none() && implausible(conn).await? {
                    return Err(CoreError::backend(
                        ErrorKind::LockTimeout,
                        format!(
                            "the lease in {TABLE} (held by {holder}) expires more than an hour \
                             from now, longer than any lease dbinit takes: no dbinit process \
                             wrote it so, or the server's clock went back"
                        ),
                    )
                    .with_hint(format!(
                        "if no process is initializing, delete it: DELETE FROM {TABLE} WHERE \
                         name = 'init'"
                    )));
                }
                if waited_for.is_none() {
                    tracing::info!(holder = %holder, "another process is initializing; waiting");
                }
                waited_for = Some(holder.clone());
                poll.pause(&name(cx.ttl), Some(holder)).await?;
                continue;
            }
            Some((holder, true, connection)) => {
                tracing::warn!(
                    previous = %shown(&holder),
                    "took over an expired initialization lease: its holder stopped renewing it"
                );
                end_session(conn, connection, &mut poll).await?;
                conn.query_drop(CLAIM_EXPIRED)
                    .await
                    .map_err(|e| error::classify("cannot claim the expired lease", e))?;
            }
            // The holder finished while this process waited: verify.
            None if share_if_busy && waited_for.is_some() => {
                return Ok((
                    None,
                    InitLock::shared(name(cx.ttl), poll.elapsed(), waited_for),
                ));
            }
            None => {}
        }
        let taken = conn
            .exec_drop(
                TAKE,
                (&me.token, &me.host, me.pid, &me.application, micros(cx.ttl)),
            )
            .await;
        match taken {
            Ok(()) => {
                let lease = heartbeat(&cx, me.token.clone());
                let mut held = InitLock::exclusive(name(cx.ttl), poll.elapsed());
                held.waited_for = waited_for;
                return Ok((Some(lease), held));
            }
            // Another process inserted it first: look again.
            Err(e) if server_code(&e) == Some(DUPLICATE) => {}
            Err(e) => {
                return verify_only(
                    error::classify("cannot take the initialization lease", e),
                    poll.elapsed(),
                )
            }
        }
    }
}

/// Whether the lease row expires further ahead than the longest TTL.
async fn implausible(conn: &mut Conn) -> Result<bool, CoreError> {
    let far: Option<i64> = conn
        .query_first(
            "SELECT 1 FROM dbinit_lock \
             WHERE name = 'init' AND expires_at > UTC_TIMESTAMP(6) + INTERVAL 1 HOUR",
        )
        .await
        .map_err(|e| error::classify("cannot read the initialization lease", e))?;
    Ok(far.is_some())
}

/// The holder as read from the row, with any control character escaped
/// (the row is anyone's to write).
fn shown(holder: &str) -> String {
    holder.chars().flat_map(char::escape_debug).collect()
}

/// Ends the session of an expired lease's holder before taking over: a
/// holder killed mid-statement leaves the statement running on the server,
/// and DDL commits on its own. `KILL` stops it; without the privilege to,
/// the wait lasts until the statement ends.
async fn end_session(conn: &mut Conn, id: u64, poll: &mut Poll<'_>) -> Result<(), CoreError> {
    if !session_alive(conn, id).await? {
        return Ok(());
    }
    tracing::warn!(
        connection = id,
        "ending the session of the expired lease's holder"
    );
    if let Err(e) = conn.query_drop(format!("KILL CONNECTION {id}")).await {
        tracing::warn!(error = %error::describe(&e), "cannot end it; waiting for it to end");
    }
    while session_alive(conn, id).await? {
        let what = format!("the session of an expired lease (connection {id})");
        poll.pause(&what, Some(format!("connection {id}"))).await?;
    }
    Ok(())
}

/// Whether connection `id` (not this one) is still on the server.
async fn session_alive(conn: &mut Conn, id: u64) -> Result<bool, CoreError> {
    let alive: Option<i64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
             WHERE ID = ? AND ID <> CONNECTION_ID()",
            (id,),
        )
        .await
        .map_err(|e| error::classify("cannot look up the expired holder's session", e))?;
    Ok(alive.unwrap_or(0) > 0)
}

/// Fails once the lease is no longer this holder's, or has expired:
/// checked before anything commits. Inside a transaction, just before
/// `COMMIT`: the row lock keeps a takeover from committing in between.
/// Before a statement that commits on its own, which no transaction can
/// fence, the heartbeat's cancel covers the rest.
///
/// # Errors
///
/// When it is not: the caller rolls back, or stops.
pub(crate) async fn check(conn: &mut Conn, lease: &Lease) -> Result<(), CoreError> {
    let ours: Option<i64> = conn
        .exec_first(CHECK, (&lease.token,))
        .await
        .map_err(|e| error::classify("cannot check the initialization lease", e))?;
    if ours.is_some() && !lease.lost.load(Ordering::SeqCst) {
        return Ok(());
    }
    lease.lost.store(true, Ordering::SeqCst);
    Err(lease::lost())
}

/// `host H pid P (app)` of a lease that has not expired, if any (none
/// when there is no lease table). An expired lease whose holder's session
/// is still on the server (a killed client's statement runs on) counts as
/// held until that session ends; then the row is deleted.
pub(crate) async fn live_holder(conn: &mut Conn) -> Result<Option<String>, CoreError> {
    let row = match conn.query_first::<(String, bool, u64), _>(HOLDER).await {
        Ok(row) => row,
        Err(e) if server_code(&e) == Some(code::NO_SUCH_TABLE) => return Ok(None),
        Err(e) => return Err(error::classify("cannot read the initialization lease", e)),
    };
    match row {
        None => Ok(None),
        Some((holder, false, _)) => Ok(Some(shown(&holder))),
        Some((_, true, id)) if session_alive(conn, id).await? => Ok(Some(format!(
            "connection {id}, the session of an expired lease, still on the server"
        ))),
        Some(_) => {
            // Best effort: a user that may not delete it leaves it be.
            let _ = conn.query_drop(CLAIM_EXPIRED).await;
            Ok(None)
        }
    }
}

/// Renews the lease every third of its life on a connection of its own.
/// A renewal that finds the row gone or someone else's means the lease was
/// lost: the holder's running statement is cancelled and release fails.
fn heartbeat(cx: &LeaseContext<'_>, token: String) -> Lease {
    let lost = Arc::new(AtomicBool::new(false));
    let (opts, ttl, flag, mine) = (cx.opts.clone(), cx.ttl, lost.clone(), token.clone());
    let cancel = cx.cancel.clone();
    let heartbeat = tokio::spawn(async move {
        let mut conn: Option<Conn> = None;
        loop {
            tokio::time::sleep(ttl / 3).await;
            let renewed = async {
                let c = match &mut conn {
                    Some(c) => c,
                    None => conn.insert(Conn::new(opts.clone()).await?),
                };
                c.exec_drop(RENEW, (micros(ttl), &mine)).await?;
                Ok::<_, mysql_async::Error>(c.affected_rows())
            }
            .await;
            // The table dropped under it counts as the lease taken away.
            let renewed = match renewed {
                Err(e) if server_code(&e) == Some(code::NO_SUCH_TABLE) => Ok(0),
                other => other,
            };
            match renewed {
                Ok(1) => tracing::debug!("initialization lease renewed"),
                Ok(_) => {
                    tracing::error!(
                        "the initialization lease was lost: it expired and another process \
                         took it over; stopping this run"
                    );
                    flag.store(true, Ordering::SeqCst);
                    cancel.cancel().await;
                    return;
                }
                // The next beat may still be in time; if not, the row
                // expires and the renewal after that finds it lost.
                Err(e) => {
                    conn = None;
                    tracing::warn!(error = %error::describe(&e), "cannot renew the initialization lease");
                }
            }
        }
    });
    Lease {
        token,
        heartbeat,
        lost,
    }
}

/// Stops the heartbeat and deletes the row: over the session's connection,
/// or over a fresh one when that one is gone. When neither works, says how
/// to clear it rather than let the next run wait out the TTL in silence.
///
/// # Errors
///
/// When the lease was lost while held, or cannot be deleted.
pub(crate) async fn release(
    conn: &mut Conn,
    opts: &Opts,
    lease: Lease,
    ttl: Duration,
) -> Result<(), CoreError> {
    lease.heartbeat.abort();
    let deleted = match conn.exec_drop(RELEASE, (&lease.token,)).await {
        Ok(()) => Ok(conn.affected_rows()),
        // The table is gone: so is the lease.
        Err(e) if server_code(&e) == Some(code::NO_SUCH_TABLE) => Ok(0),
        Err(first) if server_code(&first).is_none() => {
            tracing::debug!(error = %error::describe(&first), "releasing the lease over a fresh connection");
            let fresh = async {
                let mut fresh = Conn::new(opts.clone()).await?;
                fresh.exec_drop(RELEASE, (&lease.token,)).await?;
                let n = fresh.affected_rows();
                let _ = fresh.disconnect().await;
                Ok::<_, mysql_async::Error>(n)
            };
            match tokio::time::timeout(Duration::from_secs(10), fresh).await {
                Ok(done) => {
                    done.map_err(|e| error::classify("cannot release the initialization lease", e))
                }
                Err(_) => Err(CoreError::backend(
                    ErrorKind::Unreachable,
                    "cannot release the initialization lease: no connection within 10 s",
                )),
            }
        }
        Err(e) => Err(error::classify(
            "cannot release the initialization lease",
            e,
        )),
    };
    let deleted = deleted.inspect_err(|e| {
        tracing::error!(
            error = %e,
            "the initialization lease stays until it expires (at most {}s): the next run waits \
             for it. To clear it now: DELETE FROM {TABLE} WHERE name = 'init' AND holder = '{}'",
            ttl.as_secs(),
            lease.token
        );
    })?;
    if deleted == 1 && !lease.lost.load(Ordering::SeqCst) {
        return Ok(());
    }
    Err(lease::lost())
}
