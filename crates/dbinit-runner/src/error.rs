//! [`RunnerError`]: a failed run, with the report of what it did.

use dbinit_core::report::InitReport;
use dbinit_core::{CoreError, ErrorKind};

/// An `init` run that failed. Carries the partial report (what was applied,
/// seeded and checked before the failure), like refinery's `Error::report`.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct RunnerError {
    report: Box<InitReport>,
    #[source]
    error: CoreError,
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
