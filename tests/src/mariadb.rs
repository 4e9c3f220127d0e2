//! A throwaway MariaDB server (Debian's `mariadb-server`, installed by
//! `cargo xtask test`): `mariadb-install-db` in a temporary directory, then
//! `mariadbd` on 127.0.0.1 and a free port, as the `mysql` user when we are
//! root (the server refuses to run as root), with TLS from a throwaway CA
//! (`ca_path`). Not the system service. Killed on drop. A missing server
//! is an error, never a skip.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::pg::{free_port, is_root, wait_until_listening};

/// The test superuser, allowed from 127.0.0.1 over TCP.
pub const USER: &str = "dbinit";
/// Its password.
pub const PASSWORD: &str = "dbinit-test-mariadb";

/// A running `mariadbd`.
pub struct Server {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl Server {
    /// Initialises a data directory, starts the server, and creates the
    /// test superuser.
    ///
    /// # Errors
    ///
    /// When the server is not installed, does not start (its log says why)
    /// or refuses the setup.
    pub fn start() -> Result<Server, String> {
        let dir = tempfile::Builder::new()
            .prefix("dbinit-mariadb-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let mut server = Server {
            dir,
            port: free_port(),
            child: None,
        };
        if is_root() {
            let user = nix::unistd::User::from_name("mysql")
                .map_err(|e| e.to_string())?
                .ok_or("running as root needs a `mysql` user to run the server")?;
            std::os::unix::fs::chown(
                server.dir.path(),
                Some(user.uid.as_raw()),
                Some(user.gid.as_raw()),
            )
            .map_err(|e| format!("chown {}: {e}", server.dir.path().display()))?;
        }
        let data = server.dir.path().join("data");
        let mut install = Command::new(program("mariadb-install-db")?);
        install.args([
            "--no-defaults",
            &format!("--datadir={}", data.display()),
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ]);
        if is_root() {
            install.arg("--user=mysql");
        }
        run(&mut install, "mariadb-install-db")?;
        let certificates = crate::pg::test_certificates();
        for (file, pem) in [
            ("ca.pem", &certificates.ca_pem),
            ("server-cert.pem", &certificates.server_cert_pem),
            ("server-key.pem", &certificates.server_key_pem),
        ] {
            std::fs::write(server.dir.path().join(file), pem).map_err(|e| e.to_string())?;
        }
        server.launch()?;
        let setup = format!(
            "CREATE USER '{USER}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'; \
             GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'127.0.0.1' WITH GRANT OPTION;"
        );
        server.root_sql(&setup)?;
        Ok(server)
    }

    fn launch(&mut self) -> Result<(), String> {
        let dir = self.dir.path();
        let mut command = Command::new(program("mariadbd")?);
        command
            .args([
                "--no-defaults",
                &format!("--datadir={}", dir.join("data").display()),
                &format!("--socket={}", self.socket().display()),
                &format!("--pid-file={}", dir.join("mariadbd.pid").display()),
                &format!("--log-error={}", self.log_path().display()),
                &format!("--port={}", self.port),
                "--bind-address=127.0.0.1",
                "--skip-name-resolve",
                "--max-connections=400",
                "--innodb-buffer-pool-size=64M",
                // Throwaway data: durability is not what is tested here.
                "--innodb-flush-log-at-trx-commit=2",
                "--innodb-doublewrite=0",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_unicode_ci",
                &format!("--ssl-ca={}", self.ca_path().display()),
                &format!("--ssl-cert={}", dir.join("server-cert.pem").display()),
                &format!("--ssl-key={}", dir.join("server-key.pem").display()),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if is_root() {
            command.arg("--user=mysql");
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start mariadbd: {e}"))?;
        let log = self.log_path();
        wait_until_listening(self.port, &mut child, "mariadbd", || {
            std::fs::read_to_string(&log).unwrap_or_default()
        });
        self.child = Some(child);
        Ok(())
    }

    /// Runs `sql` as `root` over the Unix socket with the `mariadb` client.
    ///
    /// # Errors
    ///
    /// The client's output when it fails.
    pub fn root_sql(&self, sql: &str) -> Result<String, String> {
        let mut client = Command::new(program("mariadb")?);
        client.args([
            "--no-defaults",
            "-uroot",
            &format!("--socket={}", self.socket().display()),
            "--batch",
            "--skip-column-names",
            "-e",
            sql,
        ]);
        run(&mut client, "mariadb")
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA that signed the server's certificate (for `localhost` and
    /// `127.0.0.1`), as PEM.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The server's error log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("mariadbd.log")
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("mariadbd.sock")
    }

    /// The test superuser's URL for `database`.
    pub fn url(&self, database: &str) -> String {
        format!(
            "mysql://{USER}:{PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `name` from the PATH or the system directories Debian installs to.
fn program(name: &str) -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            format!("{name} is not installed: `cargo xtask test` installs mariadb-server")
        })
}

fn run(command: &mut Command, what: &str) -> Result<String, String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
