//! The lock file's mark: `pid=<pid> <state>` on its first line, saying
//! who held the initialization lock last and whether it was writing (see
//! `lock.rs` for when it is written and `files.rs` for what a `writing`
//! mark beside a hot journal means).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use dbinit_core::CoreError;

use crate::error;

/// What the holder is doing, as the lock file says it.
pub(crate) const HELD: &str = "held";
pub(crate) const WRITING: &str = "writing";
pub(crate) const DONE: &str = "done";

/// Writes `pid=<pid> <state>` over the file's first line. Fixed width and
/// in place: truncating first cost a metadata journal write on every run
/// (half a millisecond of a no-op `init`).
pub(crate) fn record(file: &File, state: &str) -> std::io::Result<()> {
    let line = format!("pid={:>10} {state:<7}\n", std::process::id());
    file.write_all_at(line.as_bytes(), 0)
}

/// Says, durably, that the holder of `file` is about to write the
/// database: from now until [`release`], a hot journal is its own.
pub(crate) fn mark_writing(file: &File, path: &Path) -> Result<(), CoreError> {
    record(file, WRITING)
        .and_then(|()| file.sync_data())
        .map_err(|e| error::io("write", path, e))
}

/// The pid of a dbinit that marked itself writing and never released: a
/// crashed writer, when nobody holds SQLite's locks any more.
pub(crate) fn crashed_writer(file: &File) -> Option<u32> {
    let text = first_line(file)?;
    let (pid, state) = holder_line(&text)?;
    (state == WRITING).then(|| pid.parse().ok()).flatten()
}

/// The start of the lock file, read in place.
pub(crate) fn first_line(file: &File) -> Option<String> {
    let mut buf = [0u8; 64];
    let n = file.read_at(&mut buf, 0).ok()?;
    String::from_utf8(buf[..n].to_vec()).ok()
}

/// `(pid, state)` from the lock file's first line.
pub(crate) fn holder_line(text: &str) -> Option<(&str, &str)> {
    let mut words = text
        .lines()
        .next()?
        .strip_prefix("pid=")?
        .split_whitespace();
    Some((words.next()?, words.next().unwrap_or(HELD)))
}

pub(crate) fn read_holder(file: &File) -> Option<String> {
    let text = first_line(file)?;
    let (pid, _) = holder_line(&text)?;
    Some(format!("pid {pid}"))
}
