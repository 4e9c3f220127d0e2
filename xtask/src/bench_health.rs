//! Health benchmarks on a `health --serve` process (release build): the
//! cost of one monitor tick against a bare round trip (the connectivity
//! check's) from the same snapshots, the process's CPU share and RSS at one
//! tick per second, and `/readyz` requests per second under `wrk` against
//! `/livez` of the same process (no health data) as the baseline.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use dbinit_tests::http::Served;

use crate::measure::run_ok;

pub(crate) struct HealthBench<'a> {
    pub(crate) xtask: &'a Path,
    /// Seconds of each `wrk` run and of the CPU share window.
    pub(crate) seconds: u64,
}

const ADMIN_PASSWORD: &str = "bench-password-0123456789";

impl HealthBench<'_> {
    fn command(&self, args: &[&str], url: &str) -> Command {
        let mut cmd = Command::new(self.xtask);
        cmd.args(args)
            .args(["--database-url", url])
            .env("DBINIT_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env_remove("REDIS_URL");
        cmd
    }

    fn serve(&self, url: &str, interval: &str) -> Served {
        let cmd = self.command(
            &["health", "--serve", "127.0.0.1:0", "--watch", interval],
            url,
        );
        Served::spawn(cmd, "serving health on http://")
    }

    /// Every measurement on the database at `url` (initialized here).
    pub(crate) fn run(&self, backend: &str, url: &str) -> anyhow::Result<()> {
        run_ok(&mut self.command(&["init"], url))?;
        self.tick_cost(backend, url)?;
        self.idle_share(backend, url)?;
        self.readyz_rate(backend, url)
    }

    /// Medians over 100 snapshots, 100 ms apart.
    fn tick_cost(&self, backend: &str, url: &str) -> anyhow::Result<()> {
        let served = self.serve(url, "100ms");
        served.wait_for("/readyz", "ready", |r| r.status == 200);
        let (mut ticks, mut pings, mut checks) = (Vec::new(), Vec::new(), 0);
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(100));
            let health = served.get("/health").json();
            ticks.push(health["tick_ms"].as_f64().unwrap_or(f64::NAN));
            let all = health["checks"].as_array().cloned().unwrap_or_default();
            checks = all.len();
            if let Some(c) = all.iter().find(|c| c["name"] == "connectivity") {
                pings.push(c["latency_ms"].as_f64().unwrap_or(f64::NAN));
            }
        }
        let (tick, ping) = (median(&mut ticks), median(&mut pings));
        println!("{backend}: one monitor tick ({checks} checks, medians of 100)");
        println!("  a SELECT 1 round trip (connectivity)  {ping:>8.3} ms");
        println!(
            "  the whole tick                        {tick:>8.3} ms  ({:.1}x)",
            tick / ping
        );
        Ok(())
    }

    /// CPU time and RSS of a process ticking once a second.
    fn idle_share(&self, backend: &str, url: &str) -> anyhow::Result<()> {
        let served = self.serve(url, "1s");
        served.wait_for("/readyz", "ready", |r| r.status == 200);
        std::thread::sleep(Duration::from_secs(2));
        let pid = served.pid();
        let (cpu0, at0) = (cpu_seconds(pid)?, std::time::Instant::now());
        std::thread::sleep(Duration::from_secs(self.seconds * 3));
        let share = (cpu_seconds(pid)? - cpu0) / at0.elapsed().as_secs_f64();
        println!(
            "{backend}: at one tick per second over {} s: {:.3}% of one core, RSS {:.1} MiB",
            self.seconds * 3,
            share * 100.0,
            rss_kib(pid)? as f64 / 1024.0
        );
        Ok(())
    }

    /// `wrk` on `/livez` (baseline) and `/readyz`, alternated twice; the
    /// best of each (noise on a shared machine only ever slows a run).
    fn readyz_rate(&self, backend: &str, url: &str) -> anyhow::Result<()> {
        let wrk = crate::servers::ensure_wrk()?;
        let served = self.serve(url, "1s");
        served.wait_for("/readyz", "ready", |r| r.status == 200);
        let (mut livez, mut readyz) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            livez.push(self.wrk(&wrk, &served.addr, "/livez")?);
            readyz.push(self.wrk(&wrk, &served.addr, "/readyz")?);
        }
        let best = |v: &[f64]| v.iter().copied().fold(f64::NAN, f64::max);
        let (l, r) = (best(&livez), best(&readyz));
        println!(
            "{backend}: wrk -t2 -c32 -d{}s, best of 2 each (one tick per second running)",
            self.seconds
        );
        println!("  /livez (no health data)   {l:>10.0} requests/s");
        println!(
            "  /readyz (cached summary)  {r:>10.0} requests/s  ({:.2}x)",
            r / l
        );
        Ok(())
    }

    fn wrk(&self, wrk: &Path, addr: &str, path: &str) -> anyhow::Result<f64> {
        let out = Command::new(wrk)
            .args(["-t2", "-c32", &format!("-d{}s", self.seconds)])
            .arg(format!("http://{addr}{path}"))
            .output()
            .context("run wrk")?;
        let text = String::from_utf8_lossy(&out.stdout);
        if text.contains("Non-2xx") {
            bail!("{path} answered errors under load:\n{text}");
        }
        text.lines()
            .find_map(|l| l.strip_prefix("Requests/sec:"))
            .and_then(|v| v.trim().parse().ok())
            .with_context(|| format!("no Requests/sec in wrk's output:\n{text}"))
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// User + system CPU seconds of `pid` (`/proc/PID/stat`, clock ticks).
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesized command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(user), Some(system)) => Ok((user + system) / clock_ticks()),
        _ => bail!("cannot read CPU times from /proc/{pid}/stat"),
    }
}

fn clock_ticks() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |t| t as f64)
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}
