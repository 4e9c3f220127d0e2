//! What every backend's lease shares: a row with an expiry that a
//! heartbeat renews, for servers and proxies where a session lock is
//! unsafe or unavailable. The SQL is the backend's; the settings, the
//! holder's identity and the error of a lost lease are here.

use std::time::Duration;

use crate::{CoreError, ErrorKind};

/// How long a lease lives without a heartbeat unless `dbinit_lease_ttl`
/// says: a crashed holder delays the others at most this long.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);

/// Bounds for `dbinit_lease_ttl`: below a second, a busy server or network
/// could miss heartbeats; above an hour a crash blocks deploys for hours.
const TTL_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(3600);

/// Reads `dbinit_lease_ttl`: `30s`, `2m`, or bare seconds, within 1 s to
/// 1 h.
///
/// # Errors
///
/// A message naming the parameter when the text is no duration or out of
/// range.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let ttl = match text.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => humantime::parse_duration(text)
            .map_err(|e| format!("dbinit_lease_ttl `{text}`: {e}"))?,
    };
    if TTL_RANGE.contains(&ttl) {
        Ok(ttl)
    } else {
        Err(format!(
            "dbinit_lease_ttl `{text}` is outside 1s..=1h: shorter leases expire under a \
             busy server, longer ones block the other processes that long after a crash"
        ))
    }
}

/// Who takes a lease, as written into its row: waiters name the host, pid
/// and application; the token tells this acquisition from any other.
#[derive(Debug, Clone)]
pub struct Holder {
    /// Unique to this acquisition: `host/pid/nanoseconds`.
    pub token: String,
    /// The machine's host name (`unknown` when it cannot be read).
    pub host: String,
    /// This process's id.
    pub pid: i32,
    /// The application name the connection uses.
    pub application: String,
}

impl Holder {
    /// This process, now.
    pub fn current(application: &str) -> Holder {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown".to_owned());
        let pid = std::process::id();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Holder {
            token: format!("{host}/{pid}/{nanos}"),
            host,
            pid: i32::try_from(pid).unwrap_or(i32::MAX),
            application: application.to_owned(),
        }
    }
}

/// The error of a holder whose lease was taken over: it stopped renewing
/// in time and another process took the lease.
pub fn lost() -> CoreError {
    CoreError::backend(
        ErrorKind::LockTimeout,
        "the initialization lease was lost while this process held it (no heartbeat reached \
         the server for longer than dbinit_lease_ttl, and another process took it over); \
         this process committed nothing after that. Run init again to verify",
    )
}
