//! A throwaway PgBouncer in front of the suite's PostgreSQL cluster.
//!
//! Debian's `pgbouncer` (installed by `cargo xtask test`), run in the
//! foreground as the `postgres` user when we are root (it refuses root),
//! listening on 127.0.0.1 and a free port, every database forwarded to the
//! cluster. Killed on drop. A missing `pgbouncer` is an error, never a skip.

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::pg::{free_port, SUPERUSER_PASSWORD};

/// A second login the pooler knows, for a role a test creates (read-only,
/// say).
pub const READER: &str = "dbinit_reader";
/// Its password.
pub const READER_PASSWORD: &str = "reader-password-for-tests";

/// A running PgBouncer.
pub struct PgBouncer {
    dir: tempfile::TempDir,
    port: u16,
    child: Child,
}

/// `pool_mode`.
#[derive(Debug, Clone, Copy)]
pub enum PoolMode {
    /// A server connection per transaction.
    Transaction,
    /// A server connection per client session.
    Session,
    /// A server connection per statement: no transaction spans two.
    Statement,
}

impl PgBouncer {
    /// Starts PgBouncer in `mode` with `pool_size` server connections per
    /// database, in front of the test cluster on 127.0.0.1:`server_port`.
    ///
    /// # Panics
    ///
    /// When it cannot be started: pooler tests never skip.
    pub fn start(server_port: u16, mode: PoolMode, pool_size: u32) -> PgBouncer {
        let dir = tempfile::Builder::new()
            .prefix("dbinit-pgbouncer-")
            .tempdir()
            .expect("temp dir");
        let port = free_port();
        let mode = match mode {
            PoolMode::Transaction => "transaction",
            PoolMode::Session => "session",
            PoolMode::Statement => "statement",
        };
        let d = dir.path().display();
        let ini = format!(
            "[databases]\n* = host=127.0.0.1 port={server_port}\n\n[pgbouncer]\n\
             listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
             auth_type = scram-sha-256\nauth_file = {d}/userlist.txt\n\
             pool_mode = {mode}\ndefault_pool_size = {pool_size}\nmax_client_conn = 500\n\
             logfile = {d}/pgbouncer.log\npidfile = {d}/pgbouncer.pid\n\
             server_login_retry = 1\n"
        );
        write(dir.path(), "pgbouncer.ini", &ini);
        write(
            dir.path(),
            "userlist.txt",
            &format!("\"postgres\" \"{SUPERUSER_PASSWORD}\"\n\"{READER}\" \"{READER_PASSWORD}\"\n"),
        );
        let config = dir.path().join("pgbouncer.ini");
        let mut command = if crate::pg::is_root() {
            chown_to_postgres(dir.path());
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", "pgbouncer"]);
            c
        } else {
            Command::new("pgbouncer")
        };
        let child = command
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start pgbouncer ({e}): run the suite with `cargo xtask test`, which installs it")
            });
        let mut bouncer = PgBouncer { dir, port, child };
        let log = bouncer.dir.path().join("pgbouncer.log");
        crate::pg::wait_until_listening(port, &mut bouncer.child, "pgbouncer", || {
            std::fs::read_to_string(&log).unwrap_or_default()
        });
        bouncer
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A superuser URL for `database`, through the pooler.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres:{SUPERUSER_PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// A URL for `user` with `password`, through the pooler.
    pub fn url_as(&self, user: &str, password: &str, database: &str) -> String {
        format!(
            "postgres://{user}:{password}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// Its log, for assertion messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pgbouncer.log")).unwrap_or_default()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // runuser forwards nothing once killed: stop the daemon by its pid.
        if let Ok(pid) = std::fs::read_to_string(self.dir.path().join("pgbouncer.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    let mut file = std::fs::File::create(dir.join(name)).expect("write pgbouncer config");
    file.write_all(text.as_bytes())
        .expect("write pgbouncer config");
}

fn chown_to_postgres(dir: &Path) {
    let user = nix::unistd::User::from_name("postgres")
        .ok()
        .flatten()
        .expect("running as root needs a `postgres` user to run pgbouncer");
    for entry in std::iter::once(dir.to_path_buf()).chain(
        std::fs::read_dir(dir)
            .expect("read dir")
            .flatten()
            .map(|e| e.path()),
    ) {
        std::os::unix::fs::chown(&entry, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
            .expect("chown to postgres");
    }
}
