//! Human and JSON renderings of the reports. Reports hold no secrets.

use std::io::Write;

use crate::report::{
    ErrorReport, HealthSummary, InitReport, LifecycleReport, PlanReport, SeedReport, StatusReport,
};
use serde::Serialize;

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn json<T: Serialize>(value: &T) {
    let mut out = std::io::stdout().lock();
    // Serializing plain data types cannot fail; a closed stdout is ignored.
    let _ = serde_json::to_writer_pretty(&mut out, value);
    let _ = writeln!(out);
}

pub(crate) fn error(report: &ErrorReport) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "error: {}", report.message);
    if let Some(hint) = &report.hint {
        let _ = writeln!(err, "  hint: {hint}");
    }
}

pub(crate) fn init(report: &InitReport, as_json: bool) {
    if as_json {
        return json(report);
    }
    print(&report.to_string());
}

pub(crate) fn seed(report: &SeedReport, as_json: bool) {
    if as_json {
        return json(report);
    }
    print(&report.to_string());
}

pub(crate) fn status(report: &StatusReport, as_json: bool) {
    if as_json {
        return json(report);
    }
    let mut s = format!("database  {} ({})\n", report.database, report.backend);
    s += &format!("migrations from {}\n", report.migrations.source);
    for m in &report.migrations.applied {
        s += &format!("  applied  {}  {}\n", m.file_stem(), m.applied_on);
    }
    for name in &report.migrations.pending {
        s += &format!("  pending  {name}\n");
    }
    for seeder in &report.seeders {
        let state = if seeder.seeded {
            "seeded"
        } else {
            "not seeded"
        };
        s += &format!("  seeder   {}: {state}\n", seeder.name);
    }
    s += &format!(
        "{} applied, {} pending\n",
        report.migrations.applied.len(),
        report.migrations.pending.len()
    );
    print(&s);
}

pub(crate) fn health(summary: &HealthSummary, as_json: bool) {
    if as_json {
        return json(summary);
    }
    let mut s = format!("database  {} ({})\n", summary.database, summary.backend);
    let _ = crate::report::health_lines(&mut s, &summary.checks);
    let failures = summary.failures();
    s += &if failures.is_empty() {
        format!("{}\n", summary.status.as_str())
    } else {
        format!("unhealthy: {}\n", failures.join("; "))
    };
    print(&s);
}

fn print(s: &str) {
    let _ = std::io::stdout().lock().write_all(s.as_bytes());
}

pub(crate) fn plan(report: &PlanReport, as_json: bool) {
    if as_json {
        return json(report);
    }
    let mut s = format!(
        "database  {} ({})
migrations {} applied, {} pending ({})
",
        report.database,
        report.backend,
        report.already_applied,
        report.pending.len(),
        report.source
    );
    for m in &report.pending {
        let mode = if m.in_transaction {
            ""
        } else {
            " (no transaction)"
        };
        s += &format!(
            "-- would apply {}{mode}\n{}\n",
            m.migration,
            m.sql.trim_end()
        );
    }
    for seeder in &report.seeders {
        let state = if seeder.seeded {
            "present"
        } else {
            "would seed"
        };
        s += &format!("  seeder     {}: {state}\n", seeder.name);
    }
    print(&s);
}

pub(crate) fn lifecycle(report: &LifecycleReport, as_json: bool) {
    if as_json {
        return json(report);
    }
    let mut s = format!("database  {} ({})\n", report.database, report.backend);
    let verb = match report.action {
        "rollback" => "rolled back",
        "baseline" => "baselined",
        _ => "repaired",
    };
    for m in &report.migrations {
        s += &format!("  {verb:<11} {}\n", m.file_stem());
    }
    if let Some(r) = &report.repaired {
        s += &format!(
            "  repaired    V{}__{}: checksum {} -> {} (audit record written)\n",
            r.version, r.name, r.old_checksum, r.new_checksum
        );
    }
    if report.migrations.is_empty() && report.repaired.is_none() {
        s += &format!("  nothing to {}\n", report.action);
    }
    print(&s);
}
