//! `cargo xtask test`: the whole suite, as CI runs it, against throwaway
//! PostgreSQL clusters (the installed server, then the newest the package
//! registries carry) that are stopped on every exit path, and a throwaway
//! MariaDB server.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use dbinit_tests::pg::{Cluster, ClusterOptions};
use dbinit_tests::{MYSQL_CA_VAR, MYSQL_URL_VAR, PG_LOG_VAR, PG_SOCKET_VAR, PG_URL_VAR};

use crate::measure::run;
use crate::servers;
use dbinit_tests::tree::workspace_root;

/// The tests that talk to PostgreSQL, for the pass on the newer server.
const POSTGRES_TESTS: &str = "binary(postgres_backend) | binary(postgres_cli) | \
     binary(faults_postgres) | binary(hardening_postgres) | binary(pooler) | \
     binary(newer_postgres) | test(/postgres/)";

/// Which PostgreSQL servers to run against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Servers {
    /// The installed PostgreSQL (Debian's 15), then the newer one.
    Both,
    /// The installed PostgreSQL only.
    Installed,
    /// The newer PostgreSQL only.
    Newer,
}

/// Installs PgBouncer and fetches the newer PostgreSQL if needed, then
/// runs the doctests and every test in the workspace (nextest) against a
/// throwaway cluster of the installed PostgreSQL, then the PostgreSQL tests
/// against a cluster of the newer one. Nextest's summary is the last thing
/// each pass prints.
#[derive(Debug, clap::Args)]
pub(crate) struct TestCmd {
    /// Which PostgreSQL servers to run against.
    #[arg(long, value_enum, default_value_t = Servers::Both)]
    servers: Servers,
    /// Extra arguments for `cargo nextest run` (a filter, `--no-capture`,
    /// ...). They replace the newer server's filter (its PostgreSQL tests).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    nextest_args: Vec<String>,
}

impl TestCmd {
    pub(crate) fn run(self) -> anyhow::Result<()> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        // Build first, so that compile time does not count against anything
        // the server does, and a compile error does not need a server.
        run(Command::new(&cargo).current_dir(workspace_root()).args([
            "nextest",
            "run",
            "--workspace",
            "--no-run",
        ]))?;
        servers::ensure_debian_servers()?;
        // One MariaDB server for both passes; killed when this returns.
        let mariadb = dbinit_tests::mariadb::Server::start()
            .map_err(anyhow::Error::msg)
            .context("cannot start the MariaDB test server (MySQL tests never skip)")?;
        println!("MariaDB test server on 127.0.0.1:{}", mariadb.port());
        let newer = match self.servers {
            Servers::Installed => None,
            Servers::Both | Servers::Newer => Some(servers::newer_postgres()?),
        };
        // Both passes run even if the first fails; either failing fails the run.
        let installed = if self.servers == Servers::Newer {
            Ok(())
        } else {
            pass(
                &cargo,
                None,
                &mariadb,
                self.nextest_args.is_empty(),
                &self.nextest_args,
            )
        };
        let newer = match newer {
            Some(bin) => {
                let args = if self.nextest_args.is_empty() {
                    vec!["-E".to_owned(), POSTGRES_TESTS.to_owned()]
                } else {
                    self.nextest_args.clone()
                };
                pass(&cargo, Some(&bin), &mariadb, false, &args).context(format!(
                    "the pass on PostgreSQL {}",
                    servers::NEWER_POSTGRES
                ))
            }
            None => Ok(()),
        };
        installed.and(newer)
    }
}

/// One pass, beside the `mariadb` server: a cluster from `bin` (default:
/// the installed server), the doctests if asked, then nextest with `args`.
/// The cluster is stopped on every exit path, Ctrl-C included.
fn pass(
    cargo: &str,
    bin: Option<&Path>,
    mariadb: &dbinit_tests::mariadb::Server,
    doctests: bool,
    args: &[String],
) -> anyhow::Result<()> {
    let cluster = start_postgres(bin)?;
    let url = cluster.url("postgres");
    println!(
        "PostgreSQL test cluster ({}) on 127.0.0.1:{}",
        bin.map_or("installed".to_owned(), |b| b.display().to_string()),
        cluster.port()
    );
    let (log, socket) = (cluster.log_path(), cluster.socket_dir().to_path_buf());
    // Ctrl-C kills cargo and the tests, not the server: stop it ourselves.
    let shared = Arc::new(Mutex::new(Some(cluster)));
    *CURRENT.lock().map_err(|_| anyhow::anyhow!("poisoned"))? = Some(shared.clone());
    INSTALL_HANDLER.call_once(|| {
        let _ = ctrlc::set_handler(|| {
            if let Some(current) = CURRENT.lock().ok().and_then(|mut c| c.take()) {
                if let Ok(mut guard) = current.lock() {
                    guard.take();
                }
            }
            std::process::exit(130);
        });
    });
    let command = |args: &[&str]| {
        let mut c = Command::new(cargo);
        c.current_dir(workspace_root())
            .env(PG_URL_VAR, &url)
            .env(PG_LOG_VAR, &log)
            .env(PG_SOCKET_VAR, &socket)
            .env(MYSQL_URL_VAR, mariadb.url("mysql"))
            .env(MYSQL_CA_VAR, mariadb.ca_path())
            .args(args);
        if let Some(bin) = bin {
            // Tests that start a server of their own start this one too.
            c.env("DBINIT_PG_BIN", bin);
        }
        c
    };
    let result = (|| {
        if doctests {
            run(&mut command(&["test", "--doc", "--workspace"]))?;
        }
        run(command(&["nextest", "run", "--workspace", "--no-fail-fast"]).args(args))
    })();
    // Dropping the cluster stops it, on success and failure alike.
    if let Ok(mut guard) = shared.lock() {
        guard.take();
    }
    result
}

type SharedCluster = Arc<Mutex<Option<Cluster>>>;
/// The running pass's cluster, for the Ctrl-C handler (installed once).
static CURRENT: Mutex<Option<SharedCluster>> = Mutex::new(None);
static INSTALL_HANDLER: std::sync::Once = std::sync::Once::new();

/// Starts the suite's cluster. A missing PostgreSQL is an error, never a skip.
fn start_postgres(bin: Option<&Path>) -> anyhow::Result<Cluster> {
    let cluster = Cluster::new(ClusterOptions {
        bin: bin.map(Path::to_path_buf),
        ..ClusterOptions::default()
    })
    .map_err(anyhow::Error::msg)
    .context("cannot create the PostgreSQL test cluster (PostgreSQL tests never skip)")?;
    cluster
        .start()
        .map_err(anyhow::Error::msg)
        .context("cannot start the PostgreSQL test cluster")?;
    Ok(cluster)
}
