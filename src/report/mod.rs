//! Output formats. JSON is the versioned contract the other formats build on.

pub mod fingerprint;
pub mod github;
pub mod gitlab;
pub mod human;
pub mod json;
pub mod progress;
pub mod sarif;
pub mod term;

use crate::scan::{FileReport, Status};

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Summary {
    pub files: usize,
    pub clean: usize,
    /// Findings that are not waived.
    pub findings: usize,
    pub errors: usize,
    /// Findings waived by a configuration exception (still listed, never failing).
    pub suppressed: usize,
    /// Files with a finding that fails the gate.
    pub blocked: usize,
    /// Findings that are reported but do not fail the gate (level `warn`), not waived.
    pub warnings: usize,
}

impl Summary {
    pub fn of(reports: &[FileReport]) -> Self {
        let mut s = Summary {
            files: reports.len(),
            ..Summary::default()
        };
        for r in reports {
            match r.status {
                Status::Clean => s.clean += 1,
                Status::Findings => s.blocked += 1,
                Status::Error => s.errors += 1,
            }
            s.warnings += r
                .findings
                .iter()
                .filter(|f| f.suppressed.is_none() && !f.fails())
                .count();
            let waived = r.findings.iter().filter(|f| f.suppressed.is_some()).count();
            s.suppressed += waived;
            s.findings += r.findings.len() - waived;
        }
        s
    }

    /// The gate's exit code: 2 when a file could not be read, 1 on failing findings, else 0.
    pub fn exit_code(reports: &[FileReport]) -> i32 {
        if reports.iter().any(|r| r.status == Status::Error) {
            2
        } else if reports.iter().any(|r| r.status == Status::Findings) {
            1
        } else {
            0
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC), for SARIF's invocation times.
pub fn utc_timestamp(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let day = crate::config::civil_date((secs / 86_400) as i64);
    let s = secs % 86_400;
    format!(
        "{day}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60,
        d.subsec_millis()
    )
}

/// What the reports say about the run itself (SARIF `invocations`, JSON `exit_code`).
#[derive(Debug, Clone, Copy)]
pub struct Run {
    pub exit_code: i32,
    pub start: std::time::SystemTime,
    pub end: std::time::SystemTime,
}

impl Run {
    pub fn of(reports: &[FileReport], start: std::time::SystemTime) -> Run {
        Run {
            exit_code: Summary::exit_code(reports),
            start,
            end: std::time::SystemTime::now(),
        }
    }
}
