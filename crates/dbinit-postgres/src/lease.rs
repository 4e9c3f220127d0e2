//! The lease strategy: a row in `dbinit_lock`, renewed by a heartbeat.
//!
//! Every statement is a transaction of its own, so it works through any
//! pooler and on engines without advisory locks. The holder writes who it is
//! (host, pid, application) and an expiry; a heartbeat on a second
//! connection pushes the expiry forward every third of the lease's life.
//! Nobody takes the row over before it expires, so a crashed holder delays
//! the others by at most `dbinit_lease_ttl`. All times are the server's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dbinit_core::{Canceller, CoreError, ErrorKind, InitLock};
use deadpool_postgres::Pool;
use tokio_postgres::types::Type;
use tokio_postgres::Client;

use crate::error;
use dbinit_core::lease::{self, Holder};
use dbinit_core::wait::Poll;

/// The table, in the current schema beside the migration history.
pub const TABLE: &str = "dbinit_lock";

const CREATE: &str = "CREATE TABLE IF NOT EXISTS dbinit_lock (\
     name text PRIMARY KEY, holder text NOT NULL, host text NOT NULL, pid integer NOT NULL, \
     application text NOT NULL, acquired_at timestamptz NOT NULL, \
     renewed_at timestamptz NOT NULL, expires_at timestamptz NOT NULL)";

/// Inserts our row, or replaces an expired one; returns whether we hold it,
/// and whoever held it before this statement.
const TAKE: &str = "WITH prev AS (SELECT host, pid, application, expires_at FROM dbinit_lock \
       WHERE name = 'init'), \
     took AS (INSERT INTO dbinit_lock AS l \
       (name, holder, host, pid, application, acquired_at, renewed_at, expires_at) \
       VALUES ('init', $1, $2, $3, $4, clock_timestamp(), clock_timestamp(), \
               clock_timestamp() + $5 * interval '1 millisecond') \
       ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, host = excluded.host, \
         pid = excluded.pid, application = excluded.application, \
         acquired_at = excluded.acquired_at, renewed_at = excluded.renewed_at, \
         expires_at = excluded.expires_at \
       WHERE l.expires_at < clock_timestamp() RETURNING 1) \
     SELECT EXISTS (SELECT 1 FROM took) AS taken, \
       (SELECT 'host ' || host || ' pid ' || pid || ' (' || application || ')' FROM prev) AS holder, \
       (SELECT expires_at < clock_timestamp() FROM prev) AS expired";

const HOLDER: &str = "SELECT 'host ' || host || ' pid ' || pid || ' (' || application || ')', \
       expires_at < clock_timestamp() FROM dbinit_lock WHERE name = 'init'";

const RENEW: &str = "UPDATE dbinit_lock SET renewed_at = clock_timestamp(), \
       expires_at = clock_timestamp() + $2 * interval '1 millisecond' \
     WHERE name = 'init' AND holder = $1";

const FENCE: &str = "SELECT 1 FROM dbinit_lock WHERE name = 'init' AND holder = $1 FOR UPDATE";

const CLAIM_EXPIRED: &str =
    "DELETE FROM dbinit_lock WHERE name = 'init' AND expires_at < clock_timestamp()";

const RELEASE: &str = "DELETE FROM dbinit_lock WHERE name = 'init' AND holder = $1";

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

/// What a lease acquisition needs besides the client.
pub(crate) struct LeaseContext<'a> {
    pub(crate) pool: &'a Pool,
    pub(crate) ttl: Duration,
    pub(crate) application: &'a str,
    /// Set by the session's canceller: stop waiting.
    pub(crate) cancelled: &'a AtomicBool,
    /// For the heartbeat to cancel the holder's statement if the lease is lost.
    pub(crate) cancel: Arc<dyn Canceller>,
}

fn name(ttl: Duration) -> String {
    format!("lease {TABLE} (ttl {}s)", ttl.as_secs())
}

fn unavailable_name(ttl: Duration) -> String {
    format!("{} unavailable to this role (verifying only)", name(ttl))
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Takes the lease, waiting at most `wait`. With `share_if_busy`, returns a
/// shared hold on nothing as soon as a busy lease is released: the caller
/// verifies and comes back for the lease only if work is left.
pub(crate) async fn acquire(
    client: &Client,
    cx: LeaseContext<'_>,
    wait: Duration,
    share_if_busy: bool,
) -> Result<(Option<Lease>, InitLock), CoreError> {
    let mut poll = Poll::new(wait, cx.cancelled);
    // A role that may not write the lease (read-only, or without CREATE on
    // the schema) can still verify; only work would need the lease.
    let unavailable = |e: CoreError, waited: Duration| {
        if share_if_busy && e.kind() == ErrorKind::PermissionDenied {
            tracing::info!(error = %e, "this role cannot take the lease; verifying only");
            Ok((
                None,
                InitLock::shared(unavailable_name(cx.ttl), waited, None),
            ))
        } else {
            Err(e.with_hint(
                "the lease needs CREATE on the schema (or INSERT, UPDATE and DELETE on an \
                 existing dbinit_lock table); run init once with a role that has them",
            ))
        }
    };
    if let Err(e) = ensure_table(client).await {
        return unavailable(e, poll.elapsed());
    }
    let me = Holder::current(cx.application);
    let mut waited_for: Option<String> = None;
    // The first turn tries to take it. While someone holds it, a process
    // that may share only looks, and tries again once the lease expired. A
    // role that may read the lease but not write it only looks.
    let mut take_now = true;
    let mut may_take = true;
    loop {
        let (free, expired, holder) = if !take_now {
            match client.query_typed_opt(HOLDER, &[]).await {
                Err(e) => {
                    return unavailable(
                        error::classify("cannot read the initialization lease", e),
                        poll.elapsed(),
                    )
                }
                Ok(None) => (true, false, None),
                Ok(Some(row)) => (false, row.get::<_, bool>(1), Some(row.get::<_, String>(0))),
            }
        } else {
            let (taken, holder, expired) = match take(client, &me, cx.ttl).await {
                Ok(taken) => taken,
                Err(e) if share_if_busy && e.kind() == ErrorKind::PermissionDenied => {
                    tracing::info!(error = %e, "this role cannot take the lease; waiting to verify");
                    (may_take, take_now) = (false, false);
                    continue;
                }
                Err(e) => return unavailable(e, poll.elapsed()),
            };
            if taken {
                if expired {
                    tracing::warn!(
                        previous = holder.as_deref(),
                        "took over an expired initialization lease: its holder stopped renewing it"
                    );
                }
                let lease = start_heartbeat(&cx, me.token.clone());
                let mut held = InitLock::exclusive(name(cx.ttl), poll.elapsed());
                held.waited_for = waited_for;
                return Ok((Some(lease), held));
            }
            (false, false, holder)
        };
        // A dead holder's lease is as good as none to a process that only
        // verifies.
        if free || (expired && !may_take) {
            let what = if may_take {
                name(cx.ttl)
            } else {
                unavailable_name(cx.ttl)
            };
            return Ok((None, InitLock::shared(what, poll.elapsed(), waited_for)));
        }
        if waited_for.is_none() {
            tracing::info!(
                holder = holder.as_deref(),
                "another process is initializing; waiting"
            );
            waited_for = Some(
                holder
                    .clone()
                    .unwrap_or_else(|| "another process".to_owned()),
            );
        }
        take_now = may_take && (expired || !share_if_busy);
        if expired {
            continue; // take it over now
        }
        poll.pause(&name(cx.ttl), holder.or_else(|| waited_for.clone()))
            .await?;
    }
}

/// One attempt: (taken, previous holder, whether it had expired).
async fn take(
    client: &Client,
    me: &Holder,
    ttl: Duration,
) -> Result<(bool, Option<String>, bool), CoreError> {
    let row = client
        .query_typed_one(
            TAKE,
            &[
                (&me.token, Type::TEXT),
                (&me.host, Type::TEXT),
                (&me.pid, Type::INT4),
                (&me.application, Type::TEXT),
                (&millis(ttl), Type::INT8),
            ],
        )
        .await
        .map_err(|e| error::classify("cannot take the initialization lease", e))?;
    Ok((
        row.get(0),
        row.get(1),
        row.get::<_, Option<bool>>(2).unwrap_or(false),
    ))
}

/// Creates the table unless its name resolves. Concurrent creators trip
/// over each other in the catalog (a unique violation on 15, "type already
/// exists" on 18): whoever fails looks again and is fine if the table is
/// there now.
async fn ensure_table(client: &Client) -> Result<(), CoreError> {
    if table_exists(client).await? {
        return Ok(());
    }
    match client.batch_execute(CREATE).await {
        Ok(()) => Ok(()),
        Err(_) if table_exists(client).await? => Ok(()),
        Err(e) => Err(error::classify(
            "cannot create the lease table dbinit_lock",
            e,
        )),
    }
}

/// `host H pid P (app)` of a lease that has not expired, if any. An
/// expired lease is deleted first: its holder may only be stopped, and its
/// fence must fail if it wakes up while the caller works.
pub(crate) async fn live_holder(client: &Client) -> Result<Option<String>, CoreError> {
    if !table_exists(client).await? {
        return Ok(None);
    }
    // Best effort: a role that may not delete it leaves it to expire.
    let _ = client.execute_typed(CLAIM_EXPIRED, &[]).await;
    let row = client
        .query_typed_opt(HOLDER, &[])
        .await
        .map_err(|e| error::classify("cannot read the initialization lease", e))?;
    Ok(row.filter(|r| !r.get::<_, bool>(1)).map(|r| r.get(0)))
}

async fn table_exists(client: &Client) -> Result<bool, CoreError> {
    Ok(client
        .query_typed_one("SELECT to_regclass('dbinit_lock') IS NOT NULL", &[])
        .await
        .map_err(|e| error::classify("cannot look up the lease table", e))?
        .get(0))
}

/// Renews the lease every third of its life on a connection of its own.
/// A renewal that finds the row gone or someone else's means the lease was
/// lost: the holder's running statement is cancelled and release fails.
fn start_heartbeat(cx: &LeaseContext<'_>, token: String) -> Lease {
    let lost = Arc::new(AtomicBool::new(false));
    let (pool, ttl, flag, mine) = (cx.pool.clone(), cx.ttl, lost.clone(), token.clone());
    let cancel = cx.cancel.clone();
    let heartbeat = tokio::spawn(async move {
        let period = ttl / 3;
        loop {
            tokio::time::sleep(period).await;
            let renewed = match pool.get().await {
                Ok(client) => client
                    .execute_typed(RENEW, &[(&mine, Type::TEXT), (&millis(ttl), Type::INT8)])
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
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
                Err(e) => tracing::warn!(error = %e, "cannot renew the initialization lease"),
            }
        }
    });
    Lease {
        token,
        heartbeat,
        lost,
    }
}

/// Whether the lease is still this holder's, checked inside the caller's
/// transaction just before it commits. The row lock keeps a takeover from
/// committing in between: a holder that lost its lease (stopped, cut off)
/// can then commit nothing more, and the process that took over never sees
/// its work half done.
///
/// # Errors
///
/// When it is not: the caller rolls back.
pub(crate) async fn fence(client: &Client, lease: &Lease) -> Result<(), CoreError> {
    let ours = client
        .query_typed_opt(FENCE, &[(&lease.token, Type::TEXT)])
        .await
        .map_err(|e| error::classify("cannot check the initialization lease", e))?
        .is_some();
    if ours && !lease.lost.load(Ordering::SeqCst) {
        return Ok(());
    }
    lease.lost.store(true, Ordering::SeqCst);
    Err(lease::lost())
}

/// How long a release over a fresh connection may take.
const FRESH_RELEASE: Duration = Duration::from_secs(10);

/// Stops the heartbeat and deletes the row: over the session's connection,
/// or, when that one is gone (a server restart, a pooler that closed it),
/// over a fresh one from `pool`. When neither works, says on stderr how to
/// clear it rather than let the next run wait out the TTL in silence.
///
/// # Errors
///
/// When the lease was lost while held, or cannot be deleted.
pub(crate) async fn release(
    client: &Client,
    pool: &Pool,
    lease: Lease,
    ttl: Duration,
) -> Result<(), CoreError> {
    let mut lease = lease;
    if lease.lost.load(Ordering::SeqCst) {
        // It is cancelling this process's statement: let the cancel
        // request finish (cut short, it crashes PgBouncer 1.18).
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut lease.heartbeat).await;
    } else {
        lease.heartbeat.abort();
    }
    let token: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 1] =
        [(&lease.token, Type::TEXT)];
    let deleted = match client.execute_typed(RELEASE, &token).await {
        Ok(n) => Ok(n),
        Err(first) if client.is_closed() || first.as_db_error().is_none() => {
            tracing::debug!(error = %first, "releasing the lease over a fresh connection");
            // Bounded: the server this path is for may be the one down.
            let fresh = async {
                match pool.get().await {
                    Ok(fresh) => fresh
                        .execute_typed(RELEASE, &token)
                        .await
                        .map_err(|e| error::classify("cannot release the initialization lease", e)),
                    Err(e) => Err(CoreError::backend(
                        ErrorKind::Unreachable,
                        format!("cannot release the initialization lease: {e}"),
                    )),
                }
            };
            tokio::time::timeout(FRESH_RELEASE, fresh)
                .await
                .unwrap_or_else(|_| {
                    Err(CoreError::backend(
                        ErrorKind::Unreachable,
                        format!(
                            "cannot release the initialization lease: no connection within {} s",
                            FRESH_RELEASE.as_secs()
                        ),
                    ))
                })
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
             for it. To clear it now: psql \"$DATABASE_URL\" -c \"DELETE FROM {TABLE} WHERE \
             name = 'init' AND holder = '{}'\"",
            ttl.as_secs(),
            lease.token
        );
    })?;
    if deleted == 1 && !lease.lost.load(Ordering::SeqCst) {
        return Ok(());
    }
    Err(lease::lost())
}
