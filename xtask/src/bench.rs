//! `cargo xtask bench`: whole-process timings of `init` against the sqlite3
//! CLI, measured in the same run and reported as medians and ratios.
//!
//! - no-op `init` on a ready database vs `sqlite3 FILE 'SELECT max(version)
//!   FROM refinery_schema_history'` (the floor: start a process, open the
//!   file, read the history);
//! - fresh `init` of 200 generated migrations vs the same SQL applied by
//!   `sqlite3` in one transaction;
//! - peak RSS of the no-op `init`;
//! - on a throwaway PostgreSQL cluster: no-op `init` vs the real `psql`
//!   reading `max(version)`, fresh 200-migration `init` vs `psql -1 -f`, and
//!   sixteen concurrent `init`s on a new database vs one;
//! - on a throwaway MariaDB server: the same against the `mariadb` client
//!   (`bench_mysql.rs`).
//!
//! Runs are interleaved (A, B, A, B, ...) so that machine noise hits both.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};

use crate::measure::{interleave, max_rss, median, print_pair, run_ok, timed};
use crate::migration_gen;
use dbinit_tests::tree::workspace_root;

/// Measure `init` against the sqlite3 CLI.
#[derive(Debug, clap::Args)]
pub(crate) struct BenchCmd {
    /// Runs of each command for the no-op comparison.
    #[arg(long, default_value_t = 200)]
    noop_runs: usize,
    /// Runs of each command for the fresh 200-migration comparison.
    #[arg(long, default_value_t = 15)]
    fresh_runs: usize,
    /// Number of generated migrations.
    #[arg(long, default_value_t = 200)]
    migrations: usize,
    /// Runs of each command for the PostgreSQL comparisons.
    #[arg(long, default_value_t = 100)]
    pg_runs: usize,
    /// Skip the PostgreSQL part.
    #[arg(long)]
    skip_postgres: bool,
    /// Skip the MySQL part.
    #[arg(long)]
    skip_mysql: bool,
    /// Skip the SQLite part (and the example service on SQLite).
    #[arg(long)]
    skip_sqlite: bool,
    /// Rows of the CSV file the seeding comparison loads.
    #[arg(long, default_value_t = 1_000_000)]
    seed_rows: usize,
    /// Runs of each command for the seeding comparison.
    #[arg(long, default_value_t = 3)]
    seed_runs: usize,
    /// Skip the seeding comparisons.
    #[arg(long, conflicts_with = "seed_only")]
    skip_seed: bool,
    /// Only the seeding comparisons.
    #[arg(long)]
    seed_only: bool,
    /// Only the health monitor's measurements.
    #[arg(long, conflicts_with = "seed_only")]
    health_only: bool,
    /// Seconds of each load-generator run (health; the CPU share window is
    /// three times as long).
    #[arg(long, default_value_t = 10)]
    health_seconds: u64,
    /// Only write the generated migration set to DIR (to inspect or reuse it).
    #[arg(long, value_name = "DIR")]
    generate_only: Option<PathBuf>,
    /// Internal: run the command after `--`, then print its peak RSS in KiB.
    #[arg(long, hide = true)]
    max_rss_of: bool,
    #[arg(last = true, hide = true)]
    command: Vec<String>,
}

impl BenchCmd {
    pub(crate) fn run(self) -> anyhow::Result<()> {
        if self.max_rss_of {
            return print_max_rss(&self.command);
        }
        if let Some(dir) = &self.generate_only {
            let set = migration_gen::generate(dir, self.migrations)?;
            std::fs::write(
                dir.join("all.sql"),
                format!("BEGIN;\n{}COMMIT;\n", set.all_sql),
            )?;
            println!(
                "wrote {} migrations and all.sql to {}",
                self.migrations,
                dir.display()
            );
            return Ok(());
        }
        let sqlite3 = which("sqlite3").context(
            "the sqlite3 CLI is the baseline and is not installed (apt-get install sqlite3)",
        )?;
        let xtask = build_release()?;
        let dir = tempfile::tempdir()?;
        println!(
            "binary: {}\nbaseline: {}\n",
            xtask.display(),
            sqlite3.display()
        );
        if self.health_only {
            let health = crate::bench_health::HealthBench {
                xtask: &xtask,
                seconds: self.health_seconds,
            };
            if !self.skip_sqlite {
                let url = format!("sqlite://{}", dir.path().join("health.db").display());
                health.run("SQLite", &url)?;
            }
            if !self.skip_postgres {
                use dbinit_tests::pg::{Cluster, ClusterOptions};
                let cluster =
                    Cluster::new(ClusterOptions::default()).map_err(anyhow::Error::msg)?;
                cluster.start().map_err(anyhow::Error::msg)?;
                health.run("PostgreSQL", &cluster.url("health"))?;
            }
            return Ok(());
        }
        if self.seed_only {
            if !self.skip_sqlite {
                self.seeding(&xtask, dir.path()).sqlite(&sqlite3)?;
            }
            if !self.skip_postgres {
                self.postgres_seeding(&xtask, dir.path())?;
            }
            return Ok(());
        }
        let service = example_service()?;
        if !self.skip_sqlite {
            self.noop(&xtask, &sqlite3, dir.path())?;
            self.fresh(&xtask, &sqlite3, dir.path())?;
            self.engine_sqlite(&xtask, &sqlite3, dir.path())?;
            let ready = format!("sqlite://{}", dir.path().join("service.db").display());
            service_startup(&service, &ready, self.fresh_runs * 3, "SQLite")?;
            if !self.skip_seed {
                self.seeding(&xtask, dir.path()).sqlite(&sqlite3)?;
            }
        }
        if !self.skip_postgres {
            self.postgres(&xtask, dir.path())?;
        }
        if !self.skip_mysql {
            crate::bench_mysql::MysqlBench {
                xtask: &xtask,
                dir: dir.path(),
                runs: self.pg_runs,
                fresh_runs: self.fresh_runs,
                migrations: self.migrations,
                seed: (!self.skip_seed).then_some((self.seed_rows, self.seed_runs)),
            }
            .run()?;
        }
        Ok(())
    }

    fn seeding<'a>(&self, xtask: &'a Path, dir: &'a Path) -> crate::bench_seed::SeedBench<'a> {
        crate::bench_seed::SeedBench {
            xtask,
            dir,
            rows: self.seed_rows,
            runs: self.seed_runs,
            noop_runs: self.noop_runs.min(self.pg_runs),
        }
    }

    /// The seeding comparisons alone, on a cluster of their own.
    fn postgres_seeding(&self, xtask: &Path, dir: &Path) -> anyhow::Result<()> {
        use dbinit_tests::pg::{psql_bin, Cluster, ClusterOptions};
        let cluster = Cluster::new(ClusterOptions::default()).map_err(anyhow::Error::msg)?;
        cluster.start().map_err(anyhow::Error::msg)?;
        self.seeding(xtask, dir)
            .postgres(&psql_bin(), &|name| cluster.url(name))
    }

    fn postgres(&self, xtask: &Path, dir: &Path) -> anyhow::Result<()> {
        use dbinit_tests::pg::{psql, psql_bin, Cluster, ClusterOptions};
        let psql_bin = psql_bin();
        let cluster = Cluster::new(ClusterOptions::default()).map_err(anyhow::Error::msg)?;
        cluster.start().map_err(anyhow::Error::msg)?;
        println!(
            "PostgreSQL: {} (server on 127.0.0.1:{})",
            psql_bin.display(),
            cluster.port()
        );
        let admin = cluster.url("postgres");
        let init = |url: &str, extra: &[&str]| {
            let mut cmd = Command::new(xtask);
            cmd.args(["init", "--database-url", url])
                .args(extra)
                .env("DBINIT_ADMIN_PASSWORD", "bench-password-0123456789");
            cmd
        };

        // No-op on a ready database.
        let ready = cluster.url("ready");
        run_ok(&mut init(&ready, &[]))?;
        let floor = || {
            let mut cmd = Command::new(&psql_bin);
            cmd.args(["-X", "-A", "-t", "-d", &ready, "-c"])
                .arg("SELECT max(version) FROM refinery_schema_history");
            cmd
        };
        let (floor_t, init_t) = interleave(self.pg_runs, floor, || init(&ready, &[]), || Ok(()))?;
        println!(
            "PostgreSQL no-op init on a ready database ({} runs each, interleaved)",
            self.pg_runs
        );
        print_pair(
            "psql read of max(version)",
            &floor_t,
            "xtask init (no-op)",
            &init_t,
        );

        // Fresh 200 migrations into an existing empty database, each run anew.
        let migrations = dir.join("generated-pg");
        let set = migration_gen::generate(&migrations, self.migrations)?;
        let script = dir.join("all-pg.sql");
        std::fs::write(&script, &set.all_sql)?;
        let runs = self.fresh_runs;
        let counter = std::cell::Cell::new(0usize);
        let db = |side: &str| format!("fresh_{side}_{}", counter.get());
        let reset = || -> anyhow::Result<()> {
            counter.set(counter.get() + 1);
            psql(&admin, &format!("CREATE DATABASE {}", db("ours")));
            psql(&admin, &format!("CREATE DATABASE {}", db("psql")));
            Ok(())
        };
        let baseline = || {
            let mut cmd = Command::new(&psql_bin);
            cmd.args([
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-1",
                "-d",
                &cluster.url(&db("psql")),
                "-f",
            ])
            .arg(&script);
            cmd
        };
        let migration_arg = migrations.display().to_string();
        let ours = || {
            init(
                &cluster.url(&db("ours")),
                &["--no-seed", "--migrations", &migration_arg],
            )
        };
        let (base_t, ours_t) = interleave(runs, baseline, ours, reset)?;
        println!(
            "PostgreSQL fresh init: {} migrations ({} tables, {} indexes) ({runs} runs each, interleaved)",
            self.migrations, set.tables, set.indexes
        );
        print_pair(
            "psql -1 -f (one transaction)",
            &base_t,
            "xtask init --no-seed",
            &ours_t,
        );

        // The realistic history, fresh, vs one psql session.
        let (real, ups, downs) = realistic_set(dir, "postgres")?;
        let psql_file = |db: String, script: &Path| {
            let mut cmd = Command::new(&psql_bin);
            cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &db, "-f"])
                .arg(script);
            cmd
        };
        let real_arg = real.display().to_string();
        let (base_t, ours_t) = interleave(
            runs,
            || psql_file(cluster.url(&db("psql")), &ups),
            || {
                init(
                    &cluster.url(&db("ours")),
                    &["--no-seed", "--migrations", &real_arg],
                )
            },
            reset,
        )?;
        println!("PostgreSQL fresh init of the realistic history ({REALISTIC} migrations, {runs} runs each)");
        print_pair(
            "psql -f, one session",
            &base_t,
            "xtask init --no-seed",
            &ours_t,
        );

        // Rolling back 200 of them vs psql running the same downs, each on a
        // copy of one applied database.
        run_ok(&mut init(
            &cluster.url("applied_tpl"),
            &["--no-seed", "--migrations", &real_arg],
        ))?;
        let copies = || -> anyhow::Result<()> {
            counter.set(counter.get() + 1);
            for side in ["ours", "psql"] {
                psql(
                    &admin,
                    &format!("CREATE DATABASE {} TEMPLATE applied_tpl", db(side)),
                );
            }
            Ok(())
        };
        let steps = ROLLBACK_STEPS.to_string();
        let (base_t, ours_t) = interleave(
            runs,
            || psql_file(cluster.url(&db("psql")), &downs),
            || {
                let mut cmd = Command::new(xtask);
                cmd.args(["rollback", "--steps", &steps, "--migrations", &real_arg])
                    .args(["--database-url", &cluster.url(&db("ours"))]);
                cmd
            },
            copies,
        )?;
        println!("PostgreSQL rollback of {ROLLBACK_STEPS} migrations ({runs} runs each)");
        print_pair(
            "psql -f, the same downs",
            &base_t,
            "xtask rollback",
            &ours_t,
        );

        // The example service's startup on a ready database.
        let service = example_service_path();
        service_startup(&service, &cluster.url("service"), runs * 3, "PostgreSQL")?;

        // Storms on new databases vs one init on a new database.
        for size in [16, 32] {
            let (one, storm) = storm_vs_one(runs, size, |name| init(&cluster.url(name), &[]))?;
            println!(
                "PostgreSQL: {size} concurrent inits on a new database vs one ({runs} runs each)"
            );
            print_pair(
                "one init",
                &one,
                &format!("{size} concurrent inits"),
                &storm,
            );
        }
        if !self.skip_seed {
            self.seeding(xtask, dir)
                .postgres(&psql_bin, &|name| cluster.url(name))?;
        }
        self.through_pgbouncer(&cluster, &init)
    }

    /// Issue 9's measurements through PgBouncer in transaction pooling:
    /// a no-op vs the same no-op direct, and storms on databases created
    /// beforehand (a pooler cannot create one) vs one init.
    fn through_pgbouncer(
        &self,
        cluster: &dbinit_tests::pg::Cluster,
        init: &dyn Fn(&str, &[&str]) -> Command,
    ) -> anyhow::Result<()> {
        use dbinit_tests::pg::psql;
        use dbinit_tests::pgbouncer::{PgBouncer, PoolMode};
        crate::servers::ensure_debian_servers()?;
        let bouncer = PgBouncer::start(cluster.port(), PoolMode::Transaction, 4);
        let runs = self.pg_runs;
        let (direct, pooled) = interleave(
            runs,
            || init(&cluster.url("ready"), &[]),
            || init(&bouncer.url("ready"), &[]),
            || Ok(()),
        )?;
        println!("PgBouncer (transaction pooling, pool of 4): no-op init ({runs} runs each, interleaved)");
        print_pair("direct", &direct, "through PgBouncer", &pooled);
        let admin = cluster.url("postgres");
        for size in [16, 32] {
            let created = std::cell::RefCell::new(std::collections::HashSet::new());
            let (one, storm) = storm_vs_one(self.fresh_runs, size, |name| {
                let name = format!("pooled_{name}");
                if created.borrow_mut().insert(name.clone()) {
                    psql(&admin, &format!("CREATE DATABASE {name}"));
                }
                init(&bouncer.url(&name), &[])
            })?;
            println!(
                "PgBouncer (transaction pooling): {size} concurrent inits on a created database vs one ({} runs each)",
                self.fresh_runs
            );
            print_pair(
                "one init",
                &one,
                &format!("{size} concurrent inits"),
                &storm,
            );
        }
        Ok(())
    }

    /// Issue 8's measurements on SQLite: a no-op over a long history, a
    /// realistic history applied fresh, and a 200-migration rollback, each
    /// against sqlite3 running the same SQL in one session.
    fn engine_sqlite(&self, xtask: &Path, sqlite3: &Path, dir: &Path) -> anyhow::Result<()> {
        let init = |db: &Path, migrations: &Path| {
            let mut cmd = Command::new(xtask);
            cmd.args(["init", "--no-seed", "--database-url"])
                .arg(format!("sqlite://{}", db.display()))
                .arg("--migrations")
                .arg(migrations);
            cmd
        };
        let sqlite3_read = |db: &Path, script: &Path| {
            let mut cmd = Command::new(sqlite3);
            cmd.arg(db).arg(format!(".read {}", script.display()));
            cmd
        };

        // No-op with 2,000 applied migrations.
        let long = dir.join("long-history");
        migration_gen::generate(&long, LONG_HISTORY)?;
        let db = dir.join("long.db");
        run_ok(&mut init(&db, &long)).context("applying the long history")?;
        let floor = || {
            let mut cmd = Command::new(sqlite3);
            cmd.arg(&db)
                .arg("SELECT max(version) FROM refinery_schema_history");
            cmd
        };
        let (floor_t, init_t) =
            interleave(self.noop_runs / 2, floor, || init(&db, &long), || Ok(()))?;
        println!(
            "no-op init with {LONG_HISTORY} applied migrations ({} runs each)",
            self.noop_runs / 2
        );
        print_pair(
            "sqlite3 read of max(version)",
            &floor_t,
            "xtask init --no-seed",
            &init_t,
        );

        // The realistic history, fresh, vs one sqlite3 session (one
        // transaction per file, as dbinit commits them).
        let (real, ups, downs) = realistic_set(dir, "sqlite")?;
        let (ours, theirs) = (dir.join("real-init.db"), dir.join("real-sqlite3.db"));
        let clean = || remove_databases(&[&ours, &theirs]);
        let (base_t, ours_t) = interleave(
            self.fresh_runs,
            || sqlite3_read(&theirs, &ups),
            || init(&ours, &real),
            clean,
        )?;
        println!(
            "fresh init of the realistic history ({REALISTIC} migrations, {} runs each)",
            self.fresh_runs
        );
        print_pair(
            "sqlite3, one session",
            &base_t,
            "xtask init --no-seed",
            &ours_t,
        );

        // Rolling back 200 of them vs sqlite3 running the same downs.
        let applied = dir.join("real-applied.db");
        run_ok(&mut init(&applied, &real))?;
        let reset = || -> anyhow::Result<()> {
            clean()?;
            std::fs::copy(&applied, &ours)?;
            std::fs::copy(&applied, &theirs)?;
            Ok(())
        };
        let steps = ROLLBACK_STEPS.to_string();
        let rollback = || {
            let mut cmd = Command::new(xtask);
            cmd.args(["rollback", "--steps", &steps, "--database-url"])
                .arg(format!("sqlite://{}", ours.display()))
                .arg("--migrations")
                .arg(&real);
            cmd
        };
        let (base_t, ours_t) = interleave(
            self.fresh_runs,
            || sqlite3_read(&theirs, &downs),
            rollback,
            reset,
        )?;
        println!(
            "rollback of {ROLLBACK_STEPS} migrations ({} runs each)",
            self.fresh_runs
        );
        print_pair(
            "sqlite3, the same downs",
            &base_t,
            "xtask rollback",
            &ours_t,
        );
        println!();
        Ok(())
    }

    fn noop(&self, xtask: &Path, sqlite3: &Path, dir: &Path) -> anyhow::Result<()> {
        let db = dir.join("ready.db");
        let url = format!("sqlite://{}", db.display());
        let init = || {
            let mut cmd = Command::new(xtask);
            cmd.args(["init", "--database-url", &url])
                .env("DBINIT_ADMIN_PASSWORD", "bench-password-0123456789");
            cmd
        };
        run_ok(&mut init()).context("preparing the ready database")?;
        let floor = || {
            let mut cmd = Command::new(sqlite3);
            cmd.arg(&db)
                .arg("SELECT max(version) FROM refinery_schema_history");
            cmd
        };
        let (floor_t, init_t) = interleave(self.noop_runs, floor, init, || Ok(()))?;
        println!(
            "no-op init on a ready database ({} runs each, interleaved)",
            self.noop_runs
        );
        print_pair(
            "sqlite3 read of max(version)",
            &floor_t,
            "xtask init (no-op)",
            &init_t,
        );

        let init_rss = max_rss(&init())?;
        let floor_rss = max_rss(&floor())?;
        println!(
            "  peak RSS: xtask init (no-op) {:.1} MiB, sqlite3 floor {:.1} MiB\n",
            init_rss as f64 / 1024.0,
            floor_rss as f64 / 1024.0
        );
        Ok(())
    }

    fn fresh(&self, xtask: &Path, sqlite3: &Path, dir: &Path) -> anyhow::Result<()> {
        let migrations = dir.join("generated");
        let set = migration_gen::generate(&migrations, self.migrations)?;
        let script = dir.join("all.sql");
        std::fs::write(&script, format!("BEGIN;\n{}COMMIT;\n", set.all_sql))?;
        let (ours, theirs) = (dir.join("fresh-init.db"), dir.join("fresh-sqlite3.db"));
        let clean = || remove_databases(&[&ours, &theirs]);
        let url = format!("sqlite://{}", ours.display());
        let init = || {
            let mut cmd = Command::new(xtask);
            cmd.args(["init", "--no-seed", "--database-url", &url, "--migrations"])
                .arg(&migrations);
            cmd
        };
        let baseline = || {
            let mut cmd = Command::new(sqlite3);
            cmd.arg(&theirs).arg(format!(".read {}", script.display()));
            cmd
        };
        clean()?;
        let (base_t, init_t) = interleave(self.fresh_runs, baseline, init, clean)?;
        println!(
            "fresh init: {} migrations ({} tables, {} indexes, {} ALTER TABLE) ({} runs each, interleaved)",
            self.migrations, set.tables, set.indexes, set.alters, self.fresh_runs
        );
        print_pair(
            "sqlite3, one transaction",
            &base_t,
            "xtask init --no-seed",
            &init_t,
        );

        let runs = self.fresh_runs;
        let storm_dir = dir.join("storms");
        std::fs::create_dir_all(&storm_dir)?;
        let init = |name: &str| {
            let mut cmd = Command::new(xtask);
            cmd.args(["init", "--database-url"])
                .arg(format!("sqlite://{}/{name}.db", storm_dir.display()))
                .env("DBINIT_ADMIN_PASSWORD", "bench-password-0123456789");
            cmd
        };
        let (one, storm) = storm_vs_one(runs, 32, init)?;
        println!("SQLite: 32 concurrent inits on a new database vs one ({runs} runs each)");
        print_pair("one init", &one, "32 concurrent inits", &storm);
        Ok(())
    }
}

/// Builds the example service in release (one backend, then both), prints
/// binary sizes and crate counts, and returns the path of the full build.
fn example_service() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let package = ["--package", "dbinit-example-service"];
    let one = ["--no-default-features", "--features", "sqlite"];
    let mut sizes = Vec::new();
    for features in [&one[..], &[]] {
        let status = Command::new(&cargo)
            .current_dir(workspace_root())
            .args(["build", "--release", "--quiet"])
            .args(package)
            .args(features)
            .status()?;
        ensure!(
            status.success(),
            "cargo build of the example service failed"
        );
        let size = std::fs::metadata(example_service_path())?.len();
        let tree = Command::new(&cargo)
            .current_dir(workspace_root())
            .args([
                "tree",
                "--offline",
                "-e",
                "normal",
                "--prefix",
                "none",
                "--format",
                "{p}",
            ])
            .args(package)
            .args(features)
            .output()?;
        let mut crates: Vec<&str> = std::str::from_utf8(&tree.stdout)?
            .lines()
            .map(|l| l.split(' ').next().unwrap_or(l))
            .collect();
        crates.sort_unstable();
        crates.dedup();
        sizes.push((size, crates.len()));
    }
    println!("example service, release build");
    for ((size, crates), what) in sizes.iter().zip(["SQLite only", "SQLite and PostgreSQL"]) {
        println!(
            "  {what:<32} binary {:>6.1} MiB   {crates} crates (cargo tree, normal edges)",
            *size as f64 / (1024.0 * 1024.0)
        );
    }
    Ok(example_service_path())
}

fn example_service_path() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("release/dbinit-example-service")
}

/// Process start to listener bound, with dbinit's call and without it, on
/// a database made ready by a first run.
fn service_startup(service: &Path, url: &str, runs: usize, backend: &str) -> anyhow::Result<()> {
    use std::io::BufRead;
    let start = |skip: bool| -> anyhow::Result<Duration> {
        let started = Instant::now();
        let mut cmd = Command::new(service);
        cmd.arg("127.0.0.1:0");
        if skip {
            cmd.arg("--bench-without-dbinit");
        }
        let mut child = cmd
            .env("DATABASE_URL", url)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut line = String::new();
        let stdout = child.stdout.take().context("stdout")?;
        std::io::BufReader::new(stdout).read_line(&mut line)?;
        let took = started.elapsed();
        let _ = child.kill();
        let _ = child.wait();
        ensure!(
            line.starts_with("listening on"),
            "the service did not start: {line:?}"
        );
        Ok(took)
    };
    start(false)?; // creates and migrates the database
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        without.push(start(true)?);
        with.push(start(false)?);
    }
    println!("{backend}: example service, process start to listener bound, ready database ({runs} runs each)");
    print_pair(
        "without dbinit's call",
        &without,
        "with dbinit's call",
        &with,
    );
    println!(
        "  difference of medians: {:.2} ms",
        (median(&with).as_secs_f64() - median(&without).as_secs_f64()) * 1e3
    );
    Ok(())
}

/// Migrations in the long history of the no-op measurement.
const LONG_HISTORY: usize = 2000;
/// Migrations in the realistic history.
const REALISTIC: usize = 300;
/// Migrations the rollback measurement undoes.
const ROLLBACK_STEPS: usize = 200;

/// Writes the realistic history of `dialect` to a directory, and the two
/// scripts a database CLI would run in one session: every up (one
/// transaction per file, none for no-transaction files), and the downs of
/// the newest [`ROLLBACK_STEPS`], newest first. The scripts run with the
/// settings dbinit runs with (SQLite: WAL, `synchronous=NORMAL`), and on
/// PostgreSQL reset the session after each file as dbinit does (this
/// history changes `search_path` in some files: without a reset, one
/// session cannot apply it at all).
fn realistic_set(dir: &Path, dialect: &str) -> anyhow::Result<(PathBuf, PathBuf, PathBuf)> {
    use dbinit_runner::dbinit_core::migration::is_no_transaction;
    use dbinit_tests::realistic;
    let set = realistic::migrations(dialect, REALISTIC);
    let migrations = dir.join(format!("realistic-{dialect}"));
    std::fs::create_dir_all(&migrations)?;
    realistic::write(&migrations, &set);
    let (prologue, reset) = if dialect == "postgres" {
        (
            "",
            "RESET SESSION AUTHORIZATION; RESET ROLE; RESET ALL; CLOSE ALL; UNLISTEN *; \
             DISCARD TEMP; DISCARD SEQUENCES;\n",
        )
    } else {
        (
            "PRAGMA journal_mode = WAL;\nPRAGMA synchronous = NORMAL;\nPRAGMA foreign_keys = ON;\n",
            "",
        )
    };
    let script = |sqls: &mut dyn Iterator<Item = &str>| {
        let body: String = sqls
            .map(|sql| {
                if is_no_transaction(sql) {
                    format!("{sql}\n;\n{reset}")
                } else {
                    format!("BEGIN;\n{sql}\n;\n{reset}COMMIT;\n")
                }
            })
            .collect();
        format!("{prologue}{body}")
    };
    let ups = dir.join(format!("realistic-{dialect}-up.sql"));
    std::fs::write(&ups, script(&mut set.iter().map(|m| m.up.as_str())))?;
    let downs = dir.join(format!("realistic-{dialect}-down.sql"));
    let newest = set
        .iter()
        .rev()
        .take(ROLLBACK_STEPS)
        .map(|m| m.down.as_str());
    std::fs::write(&downs, script(&mut newest.into_iter()))?;
    Ok((migrations, ups, downs))
}

/// Removes SQLite databases and their companion files.
fn remove_databases(bases: &[&Path]) -> anyhow::Result<()> {
    for base in bases {
        for suffix in ["", "-wal", "-shm", "-journal", ".lock"] {
            let mut p = base.as_os_str().to_owned();
            p.push(suffix);
            match std::fs::remove_file(PathBuf::from(p)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
    }
    Ok(())
}

/// `runs` times: one `init` on a new database, then `size` at once on
/// another new database. `init(name)` builds the command for database `name`.
fn storm_vs_one(
    runs: usize,
    size: usize,
    init: impl Fn(&str) -> Command,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let (mut one, mut storm) = (Vec::new(), Vec::new());
    for i in 0..runs {
        one.push(timed(&mut init(&format!("single_{size}_{i}")))?);
        let started = Instant::now();
        let children = (0..size)
            .map(|_| {
                init(&format!("storm_{size}_{i}"))
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .map_err(anyhow::Error::from)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        for child in children {
            let out = child.wait_with_output()?;
            ensure!(
                out.status.success(),
                "a concurrent init failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        storm.push(started.elapsed());
    }
    Ok((one, storm))
}

fn print_max_rss(command: &[String]) -> anyhow::Result<()> {
    let (program, args) = command.split_first().context("no command given")?;
    run_ok(Command::new(program).args(args))?;
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)?;
    println!("{}", usage.max_rss());
    Ok(())
}

fn build_release() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["build", "--release", "--quiet", "--package", "xtask"])
        .status()?;
    ensure!(status.success(), "cargo build --release failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    Ok(target.join("release/xtask"))
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join(program))
        .find(|p| p.is_file())
}
