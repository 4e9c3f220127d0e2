//! [`RunnerError`]: a failed run, with the report of what it did.

use crate::report::InitReport;
use dbinit_core::{CoreError, ErrorKind};

/// An `init` run that failed. Carries the partial report (what was applied,
/// seeded and checked before the failure), like refinery's `Error::report`.
///
/// `Display` is the error's message and, when there is one, its hint on a
/// second line. `source()` skips to the error's own cause (the native
/// driver error), so a chain printer shows each message once.
#[derive(Debug)]
pub struct RunnerError {
    report: Box<InitReport>,
    error: CoreError,
}

impl std::fmt::Display for RunnerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.error)?;
        if let Some(hint) = self.error.hint() {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for RunnerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

impl RunnerError {
    pub(crate) fn new(report: InitReport, error: CoreError) -> Self {
        RunnerError {
            report: Box::new(report),
            error,
        }
    }

    /// The report up to the failure; its `error` field describes it.
    pub fn report(&self) -> &InitReport {
        &self.report
    }

    /// The error that stopped the run.
    pub fn error(&self) -> &CoreError {
        &self.error
    }

    /// The stable kind of the error.
    pub fn kind(&self) -> ErrorKind {
        self.error.kind()
    }
}
