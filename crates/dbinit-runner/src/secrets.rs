//! The runner's default [`SecretSink`]: standard error, outside any log.

use std::io::Write as _;

use dbinit_core::SecretSink;

/// Writes secrets to standard error, outside of any log format. Refuses
/// when standard error goes nowhere (`/dev/null`, which is also what a
/// closed stream becomes in a Rust program) or cannot be written.
#[derive(Debug, Default, Clone, Copy)]
pub struct StderrSecretSink;

impl SecretSink for StderrSecretSink {
    fn show_once(&self, label: &str, secret: &str) -> std::io::Result<()> {
        use std::os::fd::AsFd;
        // A duplicate of fd 2 as a plain file: Rust's `stderr()` reports a
        // failed write to a closed or read-only descriptor as success.
        let mut err = std::fs::File::from(std::io::stderr().as_fd().try_clone_to_owned()?);
        if goes_nowhere(&err) {
            return Err(std::io::Error::other(
                "standard error is a device that is not a terminal (/dev/null, or a closed \
                 stream), so nobody would see it",
            ));
        }
        writeln!(
            err,
            "\n==> {label}: {secret}\n    Shown once and never stored in clear; keep it now.\n"
        )?;
        err.flush()
    }

    fn retract(&self, label: &str) {
        let _ = writeln!(
            std::io::stderr().lock(),
            "==> the {label} shown above was NOT stored (its transaction failed); ignore it\n"
        );
    }
}

/// Whether `stream` is a character device other than a terminal:
/// `/dev/null`, `/dev/zero` and their kind swallow what is written. (A
/// closed standard error is `/dev/null` in a Rust program.)
fn goes_nowhere(stream: &std::fs::File) -> bool {
    use std::io::IsTerminal;
    use std::os::unix::fs::FileTypeExt;
    stream
        .metadata()
        .is_ok_and(|m| m.file_type().is_char_device() && !stream.is_terminal())
}
