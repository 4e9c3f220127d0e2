//! Running commands and measuring them: wall times, medians, ratios
//! against a baseline measured in the same run, and peak memory.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};

/// Runs `cmd`; its failure is an error.
pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}

/// Runs `a` and `b` alternately `runs` times each, calling `reset` before
/// each pair; returns each command's wall times.
pub(crate) fn interleave(
    runs: usize,
    a: impl Fn() -> Command,
    b: impl Fn() -> Command,
    reset: impl Fn() -> anyhow::Result<()>,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let (mut ta, mut tb) = (Vec::with_capacity(runs), Vec::with_capacity(runs));
    for _ in 0..runs {
        reset()?;
        ta.push(timed(&mut a())?);
        tb.push(timed(&mut b())?);
    }
    Ok((ta, tb))
}

pub(crate) fn timed(cmd: &mut Command) -> anyhow::Result<Duration> {
    let started = Instant::now();
    run_ok(cmd)?;
    Ok(started.elapsed())
}

pub(crate) fn run_ok(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

pub(crate) fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

pub(crate) fn print_pair(base_name: &str, base: &[Duration], name: &str, ours: &[Duration]) {
    let (b, o) = (median(base), median(ours));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("  {base_name:<32} median {:>8.2} ms", ms(b));
    println!(
        "  {name:<32} median {:>8.2} ms   ratio {:.2}x",
        ms(o),
        o.as_secs_f64() / b.as_secs_f64()
    );
}

/// Peak RSS (KiB) of `cmd`, measured in a helper process whose only child it is.
pub(crate) fn max_rss(cmd: &Command) -> anyhow::Result<i64> {
    let me = std::env::current_exe()?;
    let mut helper = Command::new(me);
    helper
        .args(["bench", "--max-rss-of", "--"])
        .arg(cmd.get_program());
    helper.args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            helper.env(key, value);
        }
    }
    let out = helper.stderr(Stdio::inherit()).output()?;
    ensure!(out.status.success(), "measuring peak RSS of {cmd:?} failed");
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}
