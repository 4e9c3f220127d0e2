//! Running the real binary from tests: a clean environment, and readers for
//! what a run printed. Test files pass `env!("CARGO_BIN_EXE_dbinit-demo")`.

use std::path::Path;
use std::process::{Command, Output};

/// The admin password every test run configures (so no password is
/// generated unless a test asks for it).
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// `bin` with nothing inherited that changes dbinit's behaviour: no
/// `DATABASE_URL`, environment, fallback, crash point, password file or
/// dependency; the
/// admin password set; colours off.
pub fn command(bin: &str) -> Command {
    let mut cmd = Command::new(bin);
    for var in [
        "DATABASE_URL",
        "DBINIT_ENV",
        "DBINIT_FALLBACK_URL",
        "DBINIT_CRASH_AT",
        "DBINIT_ADMIN_PASSWORD_FILE",
        "REDIS_URL",
        "DBINIT_DEPENDS_ON",
        "DBINIT_DEPENDENCY_FALLBACK",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("DBINIT_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("NO_COLOR", "1");
    cmd
}

/// Runs a binary as the unprivileged `nobody` when the tests run as root,
/// so that file permissions apply. The binary is copied into a directory
/// anyone can traverse: the checkout may sit in a 0700 home or temp dir.
pub struct Unprivileged {
    dir: tempfile::TempDir,
}

impl Unprivileged {
    /// A copy of `bin` that `nobody` can execute.
    ///
    /// # Panics
    ///
    /// When the copy cannot be made.
    pub fn new(bin: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temporary directory");
        let copy = dir.path().join("bin");
        std::fs::copy(bin, &copy).expect("copy the binary");
        for (path, mode) in [(dir.path(), 0o755), (copy.as_path(), 0o755)] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
        Unprivileged { dir }
    }

    /// The copied binary, run through `runuser -u nobody` when root, with
    /// [`command`]'s clean environment.
    pub fn command(&self) -> Command {
        let bin = self.dir.path().join("bin");
        let bin = bin.to_str().expect("UTF-8 temp path");
        if !nix::unistd::Uid::effective().is_root() {
            return command(bin);
        }
        let mut cmd = command("runuser");
        cmd.args(["-u", "nobody", "--", bin]);
        cmd
    }
}

/// Waits (at most 60 s) until process `pid` catches SIGINT: until then a
/// signal would kill it rather than reach dbinit's handler.
///
/// # Panics
///
/// When it never does.
pub fn wait_for_signal_handler(pid: u32) {
    use std::time::{Duration, Instant};
    const SIGINT_BIT: u64 = 1 << (2 - 1);
    let started = Instant::now();
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let caught = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
            .unwrap_or(0);
        if caught & SIGINT_BIT != 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "process {pid} never installed its signal handler"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Spawns `cmd` (stdout and stderr captured), waits for its signal
/// handler, polls `ready` every 100 ms for at most 60 s, sends `signal`,
/// and returns the output and how long the process took to exit after the
/// signal.
///
/// # Panics
///
/// When the process cannot be spawned or signalled.
pub fn signal_when(
    cmd: &mut Command,
    ready: impl Fn() -> bool,
    signal: nix::sys::signal::Signal,
) -> (Output, std::time::Duration) {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_for_signal_handler(child.id());
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && !ready() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let sent = Instant::now();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("a pid"));
    nix::sys::signal::kill(pid, signal).expect("signal");
    let out = child.wait_with_output().expect("wait");
    (out, sent.elapsed())
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

/// A seeds directory holding `files` (`(path, contents)`, paths relative
/// to it: `development/seeds.toml`, `development/a.csv`).
///
/// # Panics
///
/// When the files cannot be written.
pub fn seeds_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temporary directory");
    for (path, contents) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("create directory");
        std::fs::write(path, contents).expect("write seed file");
    }
    dir
}

/// A CSV of `rows` rows for a table `(id INTEGER PRIMARY KEY, label TEXT,
/// amount REAL, active BOOLEAN, at TIMESTAMP)`, with a header; `label`
/// says which edition of the file it is.
pub fn rows_csv(rows: usize, label: &str) -> String {
    let mut csv = String::from("id,label,amount,active,at\n");
    for i in 1..=rows {
        csv += &format!(
            "{i},\"{label} {i}, quoted\",{}.25,{},2024-05-{:02} 12:{:02}:00\n",
            i % 1000,
            i % 2 == 0,
            1 + i % 28,
            i % 60
        );
    }
    csv
}
