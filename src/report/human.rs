//! Plain terminal report: one block per finding, most severe first, and a summary line.

use super::Summary;
use crate::config::Level;
use crate::scan::{FileReport, Status};
use std::fmt::Write;

fn paint(text: &str, code: &str, color: bool) -> String {
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

pub fn render(reports: &[FileReport], color: bool) -> String {
    let mut out = String::new();
    for r in reports {
        if let Some(e) = &r.error {
            let _ = writeln!(out, "{}: {e}", paint("error", "1;31", color));
            continue;
        }
        for f in &r.findings {
            let place = match &f.member {
                Some(m) => format!("{}!{m}", r.path),
                None => r.path.clone(),
            };
            let (label, code) = match (f.level, f.severity.as_str()) {
                (Level::Warn, _) => ("warning", "1;33"),
                (_, "critical") => ("critical", "1;35"),
                (_, "error") => ("error", "1;31"),
                (_, s) => (s, "1;33"),
            };
            let _ = writeln!(
                out,
                "{}: {}",
                paint(&format!("{label}[{}]", f.rule.id()), code, color),
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
        if let Some(ex) = &r.exception {
            let _ = writeln!(out, "note: {}: findings waived by exception {ex}", r.path);
        }
    }
    out.push_str(&summary_line(reports));
    out
}

pub fn summary_line(reports: &[FileReport]) -> String {
    let s = Summary::of(reports);
    let failing = reports
        .iter()
        .filter(|r| r.status == Status::Findings)
        .count();
    format!(
        "picklegate: {} file(s) scanned, {} clean, {} with findings ({} finding(s)), {} unreadable\n",
        s.files, s.clean, failing, s.findings, s.errors
    )
}
