//! Throwaway PostgreSQL clusters from the installed server binaries.
//!
//! `initdb` and `pg_ctl` in a temporary directory, listening on 127.0.0.1 and
//! a free port, run as the `postgres` user when we are root (PostgreSQL
//! refuses to run as root). Stopped on drop. `cargo xtask test` starts one
//! for the whole suite; tests that need their own server (one that starts
//! late, one with TLS) start another.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The superuser password of every test cluster.
pub const SUPERUSER_PASSWORD: &str = "dbinit-test-superuser";

/// Where the PostgreSQL server binaries are: `$DBINIT_PG_BIN`, else the
/// newest `/usr/lib/postgresql/*/bin` with `initdb`, else `pg_config --bindir`.
///
/// # Errors
///
/// A message saying how to install PostgreSQL.
pub fn bin_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("DBINIT_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let out = Command::new("pg_config").arg("--bindir").output();
    match out {
        Ok(o) if o.status.success() => {
            let dir = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
            if dir.join("initdb").exists() {
                return Ok(dir);
            }
        }
        _ => {}
    }
    Err(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install them \
         (apt-get install postgresql) or set DBINIT_PG_BIN"
            .to_owned(),
    )
}

/// A free TCP port on 127.0.0.1 (free when asked; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}

/// Waits until `child` (named `what`) accepts connections on 127.0.0.1:`port`.
///
/// # Panics
///
/// When it exits first, or does not listen within 30 s; `log` says why.
pub fn wait_until_listening(
    port: u16,
    child: &mut std::process::Child,
    what: &str,
    log: impl Fn() -> String,
) {
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited ({status}):\n{}", log());
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "{what} did not listen within 30 s:\n{}",
            log()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Options for [`Cluster::new`].
#[derive(Debug, Default, Clone)]
pub struct ClusterOptions {
    /// Listen on this port instead of a free one.
    pub port: Option<u16>,
    /// Serve TLS with this certificate and key (PEM).
    pub tls: Option<(String, String)>,
    /// Server binaries to use instead of [`bin_dir`]'s.
    pub bin: Option<PathBuf>,
}

/// An initialized (not necessarily running) cluster. Stopped when dropped.
pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

pub(crate) fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

impl Cluster {
    /// Runs `initdb` and writes the configuration. Does not start the server.
    ///
    /// # Errors
    ///
    /// When the binaries are missing or `initdb` fails.
    pub fn new(options: ClusterOptions) -> Result<Cluster, String> {
        let bin = match options.bin {
            Some(bin) => bin,
            None => bin_dir()?,
        };
        let dir = tempfile::Builder::new()
            .prefix("dbinit-pg-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let as_postgres = is_root();
        let cluster = Cluster {
            port: options.port.unwrap_or_else(free_port),
            dir,
            bin,
            as_postgres,
        };
        let pwfile = cluster.dir.path().join("pwfile");
        std::fs::write(&pwfile, SUPERUSER_PASSWORD).map_err(|e| e.to_string())?;
        if as_postgres {
            let user = nix::unistd::User::from_name("postgres")
                .map_err(|e| e.to_string())?
                .ok_or("running as root needs a `postgres` user to run the server")?;
            for path in [cluster.dir.path(), &pwfile] {
                std::os::unix::fs::chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
                    .map_err(|e| format!("chown {}: {e}", path.display()))?;
            }
        }
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data().display().to_string(),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                &format!("--pwfile={}", pwfile.display()),
                "--no-sync",
                "--no-instructions",
                "--encoding=UTF8",
                "--no-locale",
            ],
        )?;
        let mut conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n\
             max_connections = 200\nshared_buffers = 32MB\n",
            cluster.port,
            cluster.dir.path().display()
        );
        if let Some((cert, key)) = &options.tls {
            let (cert_path, key_path) = (
                cluster.dir.path().join("server.crt"),
                cluster.dir.path().join("server.key"),
            );
            cluster.write_private(&cert_path, cert)?;
            cluster.write_private(&key_path, key)?;
            conf += &format!(
                "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\n",
                cert_path.display(),
                key_path.display()
            );
        }
        let conf_path = cluster.data().join("postgresql.conf");
        let mut existing = std::fs::read_to_string(&conf_path).map_err(|e| e.to_string())?;
        existing.push_str(&conf);
        std::fs::write(&conf_path, existing).map_err(|e| e.to_string())?;
        Ok(cluster)
    }

    fn write_private(&self, path: &Path, text: &str) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, text).map_err(|e| e.to_string())?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| e.to_string())?;
        if self.as_postgres {
            let user = nix::unistd::User::from_name("postgres")
                .ok()
                .flatten()
                .ok_or("no postgres user")?;
            std::os::unix::fs::chown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server log (connection and authentication failures are there).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the server's Unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// A superuser URL for `database`.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres:{SUPERUSER_PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let path = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        let out = cmd
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{program} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Starts the server and waits until it accepts connections.
    ///
    /// # Errors
    ///
    /// When `pg_ctl start` fails (the log says why).
    pub fn start(&self) -> Result<(), String> {
        let log = self.log_path();
        if self.as_postgres && !log.exists() {
            self.write_private(&log, "")?;
        }
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-l",
                &log.display().to_string(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
        .map_err(|e| {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            format!("{e}\nserver log:\n{tail}")
        })
    }

    /// Stops the server now (`immediate`: like a crash) or cleanly (`fast`).
    ///
    /// # Errors
    ///
    /// When `pg_ctl stop` fails.
    pub fn stop(&self, mode: &str) -> Result<(), String> {
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-m",
                mode,
                "-w",
                "stop",
            ],
        )
    }

    /// Whether the server is running.
    pub fn is_running(&self) -> bool {
        self.data().join("postmaster.pid").exists()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.stop("fast");
        }
    }
}

/// A CA and a server certificate for `localhost` and `127.0.0.1`, as PEM.
pub struct TestCertificates {
    /// The CA certificate (what clients trust).
    pub ca_pem: String,
    /// The server certificate, signed by the CA.
    pub server_cert_pem: String,
    /// The server's private key.
    pub server_key_pem: String,
}

/// Generates [`TestCertificates`] with rcgen.
///
/// # Panics
///
/// If rcgen fails, which it does not for these fixed inputs.
pub fn test_certificates() -> TestCertificates {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "dbinit test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA certificate");
    let server_key = KeyPair::generate().expect("server key");
    let server_params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("server params");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server = server_params
        .signed_by(&server_key, &issuer)
        .expect("server certificate");
    TestCertificates {
        ca_pem: ca.pem(),
        server_cert_pem: server.pem(),
        server_key_pem: server_key.serialize_pem(),
    }
}

/// The `psql` beside the server binaries, else the one on the PATH:
/// server-only builds (the npm PostgreSQL) have none, and any installed
/// psql speaks to a newer server.
pub fn psql_bin() -> PathBuf {
    bin_dir()
        .map(|b| b.join("psql"))
        .ok()
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("psql"))
}

/// Runs `sql` with the installed `psql` against `url` and returns its
/// unaligned, tuples-only output.
///
/// # Panics
///
/// When psql is missing or the SQL fails: a test cannot go on then.
pub fn psql(url: &str, sql: &str) -> String {
    let out = Command::new(psql_bin())
        .args([
            "-X",
            "-A",
            "-t",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql failed on {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
