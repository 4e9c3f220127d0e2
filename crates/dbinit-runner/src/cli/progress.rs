//! Progress of long loads: a bar on a terminal (indicatif), a log line
//! every few seconds otherwise (CI logs, `kubectl logs`), and nothing in
//! `--json` mode (the CLI gives no reporter there).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dbinit_core::Progress;
use indicatif::{ProgressBar, ProgressStyle};

/// How often a line is logged when stderr is not a terminal;
/// `DBINIT_PROGRESS_INTERVAL` (`10s`, `500ms`) changes it.
const EVERY: Duration = Duration::from_secs(5);

/// The reporter for this process's stderr.
pub(crate) fn for_stderr() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(Bar(Mutex::new(None)))
    } else {
        let every = match std::env::var("DBINIT_PROGRESS_INTERVAL") {
            Err(_) => EVERY,
            Ok(v) => humantime::parse_duration(&v).unwrap_or_else(|e| {
                tracing::warn!("DBINIT_PROGRESS_INTERVAL is not a duration ({e}); using 5s");
                EVERY
            }),
        };
        Box::new(Lines {
            every,
            last: Mutex::new(None),
        })
    }
}

/// One bar per file, replaced by the next file's.
struct Bar(Mutex<Option<(String, ProgressBar)>>);

impl Progress for Bar {
    fn update(&self, label: &str, rows: u64, bytes: u64, total_bytes: u64) {
        let Ok(mut current) = self.0.lock() else {
            return;
        };
        if current.as_ref().is_none_or(|(l, _)| l != label) {
            let bar = ProgressBar::new(total_bytes);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {percent:>3}% {binary_bytes}/{binary_total_bytes} {msg} ({eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(label.to_owned());
            *current = Some((label.to_owned(), bar));
        }
        if let Some((_, bar)) = current.as_ref() {
            bar.set_position(bytes);
            bar.set_message(format!("{rows} rows"));
        }
    }

    fn finish(&self, label: &str, _rows: u64) {
        if let Ok(mut current) = self.0.lock() {
            if let Some((l, bar)) = current.take() {
                if l == label {
                    bar.finish_and_clear();
                } else {
                    *current = Some((l, bar));
                }
            }
        }
    }
}

/// A line at most every `every`, per file.
struct Lines {
    every: Duration,
    /// The file being loaded, when it started, and when its last line was.
    last: Mutex<Option<(String, Instant, Instant)>>,
}

impl Progress for Lines {
    fn update(&self, label: &str, rows: u64, bytes: u64, total_bytes: u64) {
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let now = Instant::now();
        match last.as_mut() {
            Some((l, _, at)) if l == label => {
                if now.duration_since(*at) < self.every {
                    return;
                }
                *at = now;
            }
            _ => {
                *last = Some((label.to_owned(), now, now));
                return;
            }
        }
        let percent = (bytes * 100).checked_div(total_bytes).unwrap_or(100);
        tracing::info!(file = label, rows, "loading: {percent}% read");
    }

    fn finish(&self, label: &str, rows: u64) {
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        if let Some((l, started, _)) = last.take() {
            let took = started.elapsed();
            // Only loads long enough to have been reported get a last line.
            if l == label && took >= self.every {
                tracing::info!(file = label, rows, seconds = took.as_secs_f64(), "loaded");
            }
        }
    }
}
