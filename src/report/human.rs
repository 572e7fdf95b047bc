//! Plain terminal report: one block per finding, most severe first, and a summary line.

use super::Summary;
use crate::scan::{FileReport, Status};
use std::fmt::Write;

pub fn render(reports: &[FileReport]) -> String {
    let mut out = String::new();
    for r in reports {
        if let Some(e) = &r.error {
            let _ = writeln!(out, "error: {e}");
            continue;
        }
        for f in &r.findings {
            let place = match &f.member {
                Some(m) => format!("{}!{m}", r.path),
                None => r.path.clone(),
            };
            let _ = writeln!(
                out,
                "{}[{}]: {}",
                f.severity.as_str(),
                f.rule.id(),
                f.message
            );
            let _ = writeln!(out, "  --> {place} @ byte {}", f.offset);
            for rel in &f.related {
                let _ = writeln!(out, "   = related: byte {}: {}", rel.offset, rel.label);
            }
            if let Some(p) = &f.policy {
                let _ = writeln!(out, "   = note: policy {p}");
            }
            let _ = writeln!(out, "   = help: {}", f.rule.help());
            out.push('\n');
        }
    }
    let s = Summary::of(reports);
    let failing = reports
        .iter()
        .filter(|r| r.status == Status::Findings)
        .count();
    let _ = writeln!(
        out,
        "picklegate: {} file(s) scanned, {} clean, {} with findings ({} finding(s)), {} unreadable",
        s.files, s.clean, failing, s.findings, s.errors
    );
    out
}
