//! Running the real binary from tests: a clean environment, and readers for
//! what a run printed. Test files pass `env!("CARGO_BIN_EXE_xtask")`.

use std::path::Path;
use std::process::{Command, Output};

/// The admin password every test run configures (so no password is
/// generated unless a test asks for it).
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// `bin` with nothing inherited that changes dbinit's behaviour: no
/// `DATABASE_URL`, environment, fallback, crash point or password file; the
/// admin password set; colours off.
pub fn command(bin: &str) -> Command {
    let mut cmd = Command::new(bin);
    for var in [
        "DATABASE_URL",
        "DBINIT_ENV",
        "DBINIT_FALLBACK_URL",
        "DBINIT_CRASH_AT",
        "DBINIT_ADMIN_PASSWORD_FILE",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("DBINIT_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("NO_COLOR", "1");
    cmd
}

/// The exit code.
///
/// # Panics
///
/// When the process was killed by a signal.
pub fn exit_code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

/// Standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Standard output parsed as the JSON report.
///
/// # Panics
///
/// When it is not JSON (the message shows both streams).
pub fn stdout_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            stderr(out)
        )
    })
}

/// A migration directory: the bundled schema of `dialect` (`sqlite` or
/// `postgres`) plus `extra` files (`(stem, sql)`).
///
/// # Panics
///
/// When the files cannot be copied or written.
pub fn migration_dir(dialect: &str, extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../migrations")
        .join(dialect);
    for entry in std::fs::read_dir(bundled).expect("bundled migrations") {
        let path = entry.expect("directory entry").path();
        std::fs::copy(&path, dir.path().join(path.file_name().expect("a file"))).expect("copy");
    }
    for (stem, sql) in extra {
        std::fs::write(dir.path().join(format!("{stem}.sql")), sql).expect("write migration");
    }
    dir
}
