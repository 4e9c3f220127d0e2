//! Seeding benchmarks: a 1,000,000-row CSV loaded by `seed` into an empty
//! indexed table against `sqlite3 .import` and `psql \copy` of the same
//! file, its peak RSS, a no-op `init` with ten data files recorded
//! against one without them, and 1,000 one-row files against one file of
//! the same 1,000 rows (what each file costs). Ratios against baselines
//! measured in the same run.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::measure::{interleave, max_rss, median, print_pair, run_ok, timed};
use dbinit_tests::tree::workspace_root;

/// The loaded table: integer, text, text, real, boolean, timestamp, and an
/// index besides the primary key.
const SCHEMA: &str = "CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, \
    email TEXT NOT NULL, score REAL, active BOOLEAN, created_at TIMESTAMP);\n\
    CREATE INDEX people_email ON people (email);\n";

/// Files of the many-small-files comparison (and rows of its one file).
const MANY: usize = 1000;

/// Small tables for the ten data files of the no-op comparison, and the
/// table of the many small files.
fn small_schema() -> String {
    (1..=10).fold(
        String::from("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL);\n"),
        |mut sql, i| {
            let _ = writeln!(
            sql,
            "CREATE TABLE lookup_{i} (code TEXT PRIMARY KEY, label TEXT NOT NULL, rank INTEGER);"
        );
            sql
        },
    )
}

pub(crate) struct SeedBench<'a> {
    pub(crate) xtask: &'a Path,
    pub(crate) dir: &'a Path,
    pub(crate) rows: usize,
    pub(crate) runs: usize,
    pub(crate) noop_runs: usize,
}

/// The migrations, the seeds directory of the big file, and one of ten
/// small files.
struct Fixture {
    migrations: PathBuf,
    seeds: PathBuf,
    small_seeds: PathBuf,
    /// [`MANY`] one-row files, and one file of the same rows.
    many_seeds: PathBuf,
    one_seeds: PathBuf,
    csv: PathBuf,
}

impl SeedBench<'_> {
    fn fixture(&self, backend: &str) -> anyhow::Result<Fixture> {
        let root = self.dir.join(format!("seed-{backend}"));
        let migrations = root.join("migrations");
        let seeds = root.join("seeds/common");
        let small = root.join("small-seeds/common");
        for dir in [&migrations, &seeds, &small] {
            std::fs::create_dir_all(dir)?;
        }
        // The demo's schema (its three seeders need it), then ours.
        for entry in std::fs::read_dir(workspace_root().join("migrations").join(backend))? {
            let path = entry?.path();
            if let Some(name) = path.file_name() {
                std::fs::copy(&path, migrations.join(name))?;
            }
        }
        std::fs::write(migrations.join("V6__people.sql"), SCHEMA)?;
        std::fs::write(migrations.join("V7__lookups.sql"), small_schema())?;
        let csv = seeds.join("people.csv");
        write_people(&csv, self.rows)?;
        std::fs::write(
            seeds.join("seeds.toml"),
            "[[file]]\npath = \"people.csv\"\ntable = \"people\"\nkey = [\"id\"]\n",
        )?;
        let mut manifest = String::new();
        for i in 1..=10 {
            let _ = write!(
                manifest,
                "[[file]]\npath = \"lookup_{i}.csv\"\ntable = \"lookup_{i}\"\nkey = [\"code\"]\n"
            );
            let rows: String = (1..=100).fold(String::from("code,label,rank\n"), |mut s, r| {
                let _ = writeln!(s, "c{r},Label {r} of {i},{r}");
                s
            });
            std::fs::write(small.join(format!("lookup_{i}.csv")), rows)?;
        }
        std::fs::write(small.join("seeds.toml"), manifest)?;
        let (many, one) = (
            root.join("many-seeds/common"),
            root.join("one-seeds/common"),
        );
        for dir in [&many, &one] {
            std::fs::create_dir_all(dir)?;
        }
        let (mut manifest, mut rows) = (String::new(), String::from("k,v\n"));
        for i in 0..MANY {
            let _ = write!(
                manifest,
                "[[file]]\npath = \"kv_{i:04}.csv\"\ntable = \"kv\"\nkey = [\"k\"]\n"
            );
            std::fs::write(
                many.join(format!("kv_{i:04}.csv")),
                format!("k,v\nkey{i},value {i}\n"),
            )?;
            let _ = writeln!(rows, "key{i},value {i}");
        }
        std::fs::write(many.join("seeds.toml"), manifest)?;
        std::fs::write(one.join("kv.csv"), rows)?;
        std::fs::write(
            one.join("seeds.toml"),
            "[[file]]\npath = \"kv.csv\"\ntable = \"kv\"\nkey = [\"k\"]\n",
        )?;
        Ok(Fixture {
            migrations,
            seeds: root.join("seeds"),
            small_seeds: root.join("small-seeds"),
            many_seeds: root.join("many-seeds"),
            one_seeds: root.join("one-seeds"),
            csv,
        })
    }

    fn xtask(&self, args: &[&str], url: &str, f: &Fixture) -> Command {
        self.xtask_with(args, url, f, &f.seeds)
    }

    fn xtask_with(&self, args: &[&str], url: &str, f: &Fixture, seeds: &Path) -> Command {
        let mut cmd = Command::new(self.xtask);
        cmd.args(args)
            .args(["--database-url", url, "--migrations"])
            .arg(&f.migrations)
            .arg("--seeds")
            .arg(seeds)
            .env("DBINIT_ADMIN_PASSWORD", "bench-password-0123456789")
            .env("DBINIT_LOG", "warn");
        cmd
    }

    /// `seed` of the big file alone into a migrated, empty database.
    fn load(&self, url: &str, f: &Fixture) -> Command {
        self.xtask(&["seed", "--only", "common/people.csv"], url, f)
    }

    pub(crate) fn sqlite(&self, sqlite3: &Path) -> anyhow::Result<()> {
        let f = self.fixture("sqlite")?;
        let dbs = self.dir.join("seed-sqlite-dbs");
        std::fs::create_dir_all(&dbs)?;
        let n = std::cell::Cell::new(0);
        let fresh = |name: &str| -> anyhow::Result<String> {
            n.set(n.get() + 1);
            let url = format!("sqlite://{}/{name}-{}.db", dbs.display(), n.get());
            run_ok(&mut self.xtask(&["init", "--no-seed"], &url, &f))?;
            Ok(url)
        };
        let (mut theirs, mut ours) = (Vec::new(), Vec::new());
        for _ in 0..self.runs {
            let base = dbs.join(format!("import-{}.db", n.get()));
            run_ok(Command::new(sqlite3).arg(&base).arg(SCHEMA))?;
            theirs.push(timed(
                Command::new(sqlite3)
                    .arg(&base)
                    .arg(format!(".import --csv --skip 1 {} people", f.csv.display())),
            )?);
            let url = fresh("seed")?;
            ours.push(timed(&mut self.load(&url, &f))?);
            check_rows_sqlite(sqlite3, &url, self.rows)?;
        }
        self.report("SQLite", "sqlite3 .import", &theirs, &ours);
        let url = fresh("rss")?;
        print_rss(&self.load(&url, &f))?;
        self.many_files(&fresh, &f)?;
        self.noop([&fresh("noop")?, &fresh("plain")?, &fresh("code")?], &f)
    }

    pub(crate) fn postgres(
        &self,
        psql: &Path,
        cluster_url: &dyn Fn(&str) -> String,
    ) -> anyhow::Result<()> {
        let f = self.fixture("postgres")?;
        let n = std::cell::Cell::new(0);
        let fresh = |name: &str| -> anyhow::Result<String> {
            n.set(n.get() + 1);
            let url = cluster_url(&format!("seed_{name}_{}", n.get()));
            run_ok(&mut self.xtask(&["init", "--no-seed"], &url, &f))?;
            Ok(url)
        };
        let (mut theirs, mut ours) = (Vec::new(), Vec::new());
        for _ in 0..self.runs {
            let base = fresh("copy")?;
            theirs.push(timed(
                Command::new(psql)
                    .args(["-X", "-q", "-d", &base, "-c"])
                    .arg(format!(
                        "\\copy people FROM '{}' WITH (FORMAT csv, HEADER true)",
                        f.csv.display()
                    )),
            )?);
            let url = fresh("seed")?;
            ours.push(timed(&mut self.load(&url, &f))?);
            check_rows_psql(psql, &url, self.rows)?;
        }
        self.report("PostgreSQL", "psql \\copy", &theirs, &ours);
        let url = fresh("rss")?;
        print_rss(&self.load(&url, &f))?;
        self.many_files(&fresh, &f)?;
        self.noop([&fresh("noop")?, &fresh("plain")?, &fresh("code")?], &f)
    }

    /// [`MANY`] one-row files against one file of the same rows, each
    /// `seed` into a freshly migrated database: what a file costs beyond
    /// its rows (a transaction, the history row, the table's lookup).
    fn many_files(
        &self,
        fresh: &dyn Fn(&str) -> anyhow::Result<String>,
        f: &Fixture,
    ) -> anyhow::Result<()> {
        let seed = |name: &str, seeds: &Path| -> anyhow::Result<Duration> {
            timed(&mut self.xtask_with(&["seed"], &fresh(name)?, f, seeds))
        };
        let (mut one, mut many) = (Vec::new(), Vec::new());
        for _ in 0..self.runs {
            one.push(seed("one", &f.one_seeds)?);
            many.push(seed("many", &f.many_seeds)?);
        }
        println!(
            "  {MANY} one-row data files vs one file of the same rows ({} runs each)",
            self.runs
        );
        print_pair(
            "seed (1 file)",
            &one,
            &format!("seed ({MANY} files)"),
            &many,
        );
        println!(
            "  per file: {:.2} ms",
            median(&many).saturating_sub(median(&one)).as_secs_f64() * 1e3 / MANY as f64
        );
        Ok(())
    }

    fn report(&self, backend: &str, baseline: &str, theirs: &[Duration], ours: &[Duration]) {
        let rate = |d: Duration| self.rows as f64 / d.as_secs_f64();
        println!(
            "{backend}: {} rows from CSV into an empty indexed table ({} runs each, interleaved)",
            self.rows, self.runs
        );
        print_pair(baseline, theirs, "xtask seed", ours);
        let (t, o) = (rate(median(theirs)), rate(median(ours)));
        println!(
            "  rows/s: {baseline} {:.0}k, xtask seed {:.0}k: {:.2}x the baseline's rate",
            t / 1e3,
            o / 1e3,
            o / t
        );
    }

    /// A no-op `init` with ten data files recorded (and the demo's three
    /// seeders) against one with seeding off.
    ///
    /// Then the data files' own share: the same seeded database against one
    /// whose only seeders are the three in code.
    fn noop(&self, [seeded, plain, code]: [&str; 3], f: &Fixture) -> anyhow::Result<()> {
        let small = &f.small_seeds;
        let none = self.dir.join("no-seeds");
        std::fs::create_dir_all(&none)?;
        run_ok(&mut self.xtask_with(&["init"], seeded, f, small))?;
        run_ok(&mut self.xtask_with(&["init"], code, f, &none))?;
        let with = || self.xtask_with(&["init"], seeded, f, small);
        let without = || self.xtask_with(&["init", "--no-seed"], plain, f, small);
        let (base, ours) = interleave(self.noop_runs, without, with, || Ok(()))?;
        println!(
            "  no-op init, seeded ({} runs each, interleaved): 3 seeders in code and 10 data files \
             recorded, vs seeding off",
            self.noop_runs
        );
        print_pair(
            "init --no-seed (no seeders)",
            &base,
            "init (all seeders)",
            &ours,
        );
        let only_code = || self.xtask_with(&["init"], code, f, &none);
        let (base, ours) = interleave(self.noop_runs, only_code, with, || Ok(()))?;
        println!("  the data files' share: the same, vs the 3 seeders in code alone");
        print_pair(
            "init (3 seeders in code)",
            &base,
            "init (and 10 data files)",
            &ours,
        );
        println!();
        Ok(())
    }
}

fn print_rss(cmd: &Command) -> anyhow::Result<()> {
    let kib = max_rss(cmd)?;
    println!("  peak RSS of xtask seed: {:.1} MiB", kib as f64 / 1024.0);
    Ok(())
}

fn check_rows_sqlite(sqlite3: &Path, url: &str, rows: usize) -> anyhow::Result<()> {
    let path = url.trim_start_matches("sqlite://");
    let out = Command::new(sqlite3)
        .arg(path)
        .arg("SELECT count(*) FROM people")
        .output()?;
    let got = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    anyhow::ensure!(got == rows.to_string(), "loaded {got} rows, not {rows}");
    Ok(())
}

fn check_rows_psql(psql: &Path, url: &str, rows: usize) -> anyhow::Result<()> {
    let out = Command::new(psql)
        .args([
            "-X",
            "-A",
            "-t",
            "-d",
            url,
            "-c",
            "SELECT count(*) FROM people",
        ])
        .output()?;
    let got = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    anyhow::ensure!(got == rows.to_string(), "loaded {got} rows, not {rows}");
    Ok(())
}

/// `rows` people: an integer key, two texts, a real, a boolean and a
/// timestamp, deterministic.
pub(crate) fn write_people(path: &Path, rows: usize) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "id,name,email,score,active,created_at")?;
    for i in 1..=rows {
        writeln!(
            out,
            "{i},Person {i},person{i}@example.com,{}.{:02},{},2024-{:02}-{:02} {:02}:{:02}:{:02}",
            i % 1000,
            i % 100,
            i % 3 == 0,
            1 + i % 12,
            1 + i % 28,
            i % 24,
            i % 60,
            (i * 7) % 60
        )?;
    }
    out.flush()?;
    Ok(())
}
