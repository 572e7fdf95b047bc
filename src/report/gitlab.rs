//! GitLab Code Quality report: a JSON array of issues.

use super::fingerprint;
use crate::finding::Severity;
use crate::scan::FileReport;
use serde_json::json;

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::Error => "major",
        Severity::Warning => "minor",
        Severity::Note => "info",
    }
}

pub fn render(reports: &[FileReport]) -> String {
    let mut issues = Vec::new();
    for r in reports {
        for f in &r.findings {
            let place = match &f.member {
                Some(m) => format!(" ({m}, byte {})", f.offset),
                None => format!(" (byte {})", f.offset),
            };
            let waived = match &f.suppressed {
                Some(s) => format!(
                    " (waived by the exception at {}: {})",
                    s.location, s.justification
                ),
                None => String::new(),
            };
            issues.push(json!({
                "type": "issue",
                "description": format!("[{}] {}{place}{waived}", f.rule.id(), f.message),
                "suppressed": f.suppressed.is_some(),
                "check_name": f.rule.id(),
                "fingerprint": fingerprint::of(&r.path, f),
                "severity": severity(f.severity),
                "categories": ["Security"],
                "location": {
                    "path": r.path.trim_start_matches("./"),
                    "lines": {"begin": 1},
                },
            }));
        }
    }
    serde_json::to_string_pretty(&issues).unwrap_or_else(|_| "[]".into())
}
