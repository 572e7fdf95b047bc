//! Output formats. JSON is the versioned contract the other formats build on.

pub mod fingerprint;
pub mod github;
pub mod gitlab;
pub mod human;
pub mod json;
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
                Status::Findings => {}
                Status::Error => s.errors += 1,
            }
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
