//! How a command ends: its report or its error printed, and the
//! documented exit code.

use std::process::ExitCode;

use dbinit_core::CoreError;

use super::{exit, render, signals};
use crate::report::ErrorReport;

/// Prints a lifecycle command's report, or its error.
pub(crate) fn finish<T>(result: Result<T, CoreError>, json: bool, show: fn(&T, bool)) -> ExitCode {
    match result {
        Ok(report) => {
            show(&report, json);
            ExitCode::from(exit::OK)
        }
        Err(e) => fail(&e, json),
    }
}

pub(crate) fn fail(err: &CoreError, json: bool) -> ExitCode {
    let report = ErrorReport::from(err);
    if json {
        render::json(&serde_json::json!({ "outcome": "failed", "error": report }));
    }
    render::error(&report);
    ExitCode::from(exit_code(err))
}

/// The documented exit code of `err` (128 + the signal for an interruption).
pub(crate) fn exit_code(err: &CoreError) -> u8 {
    match err {
        CoreError::Interrupted { by, .. } => signals::exit_code(by),
        e => exit::code(e.kind()),
    }
}
