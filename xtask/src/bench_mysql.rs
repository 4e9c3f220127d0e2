//! `cargo xtask bench`'s MySQL part, on a throwaway MariaDB server (the
//! one `cargo xtask test` starts), against the `mariadb` client measured
//! in the same run:
//!
//! - no-op `init` on a ready database vs `mariadb -e 'SELECT max(version)
//!   FROM refinery_schema_history'`;
//! - fresh `init` of the 200 generated migrations vs the client applying
//!   the same SQL in one session;
//! - a 1,000,000-row CSV loaded by `seed` vs `LOAD DATA LOCAL INFILE`.

use std::path::Path;
use std::process::Command;

use anyhow::Context;

use crate::measure::{interleave, median, print_pair, run_ok, timed};
use dbinit_tests::mariadb::{Server, PASSWORD, USER};
use dbinit_tests::tree::workspace_root;

/// The loaded table, as `bench_seed`'s in MySQL's SQL.
const PEOPLE: &str = "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, \
    email VARCHAR(255) NOT NULL, score DOUBLE, active BOOLEAN, created_at DATETIME);\n\
    CREATE INDEX people_email ON people (email);\n";

pub(crate) struct MysqlBench<'a> {
    pub(crate) xtask: &'a Path,
    pub(crate) dir: &'a Path,
    pub(crate) runs: usize,
    pub(crate) fresh_runs: usize,
    pub(crate) migrations: usize,
    /// Rows and runs of the load comparison; `None`: skipped.
    pub(crate) seed: Option<(usize, usize)>,
}

impl MysqlBench<'_> {
    pub(crate) fn run(&self) -> anyhow::Result<()> {
        crate::servers::ensure_debian_servers()?;
        let server = Server::start().map_err(anyhow::Error::msg)?;
        println!("MariaDB: server on 127.0.0.1:{}", server.port());
        let client = |database: &str| {
            let mut cmd = Command::new("mariadb");
            // Plain TCP, as dbinit connects without `ssl-mode`.
            cmd.args([
                "--no-defaults",
                "--batch",
                "--skip-column-names",
                "--skip-ssl",
            ])
            .args(["-h", "127.0.0.1", "-P", &server.port().to_string()])
            .args(["-u", USER, database])
            .env("MYSQL_PWD", PASSWORD);
            cmd
        };
        let init = |url: &str, extra: &[&str]| {
            let mut cmd = Command::new(self.xtask);
            cmd.args(["init", "--database-url", url])
                .args(extra)
                .env("DBINIT_ADMIN_PASSWORD", "bench-password-0123456789");
            cmd
        };

        // No-op on a ready database.
        let ready = server.url("ready");
        run_ok(&mut init(&ready, &[]))?;
        let floor = || {
            let mut cmd = client("ready");
            cmd.args(["-e", "SELECT max(version) FROM refinery_schema_history"]);
            cmd
        };
        let (floor_t, init_t) = interleave(self.runs, floor, || init(&ready, &[]), || Ok(()))?;
        println!(
            "MySQL no-op init on a ready database ({} runs each, interleaved)",
            self.runs
        );
        print_pair(
            "mariadb -e max(version)",
            &floor_t,
            "xtask init (no-op)",
            &init_t,
        );

        // Fresh 200 migrations into a new database, each run anew.
        let migrations = self.dir.join("generated-mysql");
        let set = crate::migration_gen::generate_in(&migrations, self.migrations, true)?;
        let script = self.dir.join("all-mysql.sql");
        std::fs::write(&script, &set.all_sql)?;
        let counter = std::cell::Cell::new(0usize);
        let db = |side: &str| format!("fresh_{side}_{}", counter.get());
        let reset = || -> anyhow::Result<()> {
            counter.set(counter.get() + 1);
            server
                .root_sql(&format!("CREATE DATABASE {}", db("client")))
                .map_err(anyhow::Error::msg)?;
            Ok(())
        };
        let baseline = || {
            let mut cmd = client(&db("client"));
            cmd.arg("-e").arg(format!("source {}", script.display()));
            cmd
        };
        let migration_arg = migrations.display().to_string();
        let ours = || {
            init(
                &server.url(&db("ours")),
                &["--no-seed", "--migrations", &migration_arg],
            )
        };
        let (base_t, ours_t) = interleave(self.fresh_runs, baseline, ours, reset)?;
        println!(
            "MySQL fresh init: {} migrations ({} tables, {} indexes) ({} runs each, interleaved)",
            self.migrations, set.tables, set.indexes, self.fresh_runs
        );
        print_pair(
            "mariadb < all.sql (one session)",
            &base_t,
            "xtask init --no-seed",
            &ours_t,
        );

        if let Some((rows, runs)) = self.seed {
            self.load(&server, &client, &init, rows, runs)?;
        }
        Ok(())
    }

    /// A `rows`-row CSV into an empty indexed table: `seed` vs the client's
    /// `LOAD DATA LOCAL INFILE`.
    fn load(
        &self,
        server: &Server,
        client: &dyn Fn(&str) -> Command,
        init: &dyn Fn(&str, &[&str]) -> Command,
        rows: usize,
        runs: usize,
    ) -> anyhow::Result<()> {
        let root = self.dir.join("seed-mysql");
        let migrations = root.join("migrations");
        let seeds = root.join("seeds/common");
        std::fs::create_dir_all(&migrations)?;
        std::fs::create_dir_all(&seeds)?;
        for entry in std::fs::read_dir(workspace_root().join("migrations/mysql"))? {
            let path = entry?.path();
            std::fs::copy(&path, migrations.join(path.file_name().context("a file")?))?;
        }
        std::fs::write(migrations.join("V6__people.sql"), PEOPLE)?;
        let csv = seeds.join("people.csv");
        crate::bench_seed::write_people(&csv, rows)?;
        std::fs::write(
            seeds.join("seeds.toml"),
            "[[file]]\npath = \"people.csv\"\ntable = \"people\"\nkey = [\"id\"]\n",
        )?;
        let migration_arg = migrations.display().to_string();
        let seeds_arg = root.join("seeds").display().to_string();
        let n = std::cell::Cell::new(0);
        let fresh = |side: &str| -> anyhow::Result<String> {
            n.set(n.get() + 1);
            let name = format!("seed_{side}_{}", n.get());
            let url = server.url(&name);
            run_ok(&mut init(
                &url,
                &["--no-seed", "--migrations", &migration_arg],
            ))?;
            Ok(name)
        };
        let count = |database: &str| -> anyhow::Result<String> {
            let out = client(database)
                .args(["-e", "SELECT count(*) FROM people"])
                .output()?;
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        };
        let (mut theirs, mut ours) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let base = fresh("load")?;
            theirs.push(timed(client(&base).arg("--local-infile=1").args([
                "-e",
                &format!(
                    "LOAD DATA LOCAL INFILE '{}' INTO TABLE people FIELDS TERMINATED BY ',' \
                     IGNORE 1 LINES (id, name, email, score, @active, created_at) \
                     SET active = (@active = 'true')",
                    csv.display()
                ),
            ]))?);
            anyhow::ensure!(
                count(&base)? == rows.to_string(),
                "LOAD DATA loaded too little"
            );
            let name = fresh("seed")?;
            let mut seed = Command::new(self.xtask);
            seed.args(["seed", "--only", "common/people.csv"])
                .args(["--database-url", &server.url(&name)])
                .args(["--migrations", &migration_arg, "--seeds", &seeds_arg])
                .env("DBINIT_ADMIN_PASSWORD", "bench-password-0123456789")
                .env("DBINIT_LOG", "warn");
            ours.push(timed(&mut seed)?);
            anyhow::ensure!(count(&name)? == rows.to_string(), "seed loaded too little");
        }
        println!("MySQL: {rows} rows from CSV into an empty indexed table ({runs} runs each)");
        print_pair("LOAD DATA LOCAL INFILE", &theirs, "xtask seed", &ours);
        let rate = |d: std::time::Duration| rows as f64 / d.as_secs_f64();
        let (t, o) = (rate(median(&theirs)), rate(median(&ours)));
        println!(
            "  rows/s: LOAD DATA {:.0}k, xtask seed {:.0}k: {:.2}x the baseline's rate",
            t / 1e3,
            o / 1e3,
            o / t
        );
        Ok(())
    }
}
