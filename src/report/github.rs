//! GitHub Actions workflow commands (`::error file=…::…`), most severe first, and a
//! markdown table for `$GITHUB_STEP_SUMMARY`.

use crate::config::Level;
use crate::finding::{Finding, Severity};
use crate::scan::FileReport;
use std::fmt::Write;

/// Escaping for the message part of a workflow command: `%`, CR and LF as the runner
/// expects (`%25`, `%0D`, `%0A`); every other control character and bidi override is
/// shown visibly (`\x1b`), so nothing from the input reaches the log viewer raw.
pub fn escape_data(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c if super::term::is_unsafe(c) => {
                out.push_str(&super::term::escape(c.encode_utf8(&mut [0; 4])))
            }
            c => out.push(c),
        }
    }
    out
}

/// Escaping for a property value (`file=`, `title=`): also `:` and `,`.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

fn command(f: &Finding) -> &'static str {
    if f.suppressed.is_some() {
        // Waived: visible in the log and the file view, never an error or warning.
        return "notice";
    }
    // What the finding does to the gate decides: a deny-level finding fails the job, so it
    // is an error even when the rule's severity is only a warning.
    match (f.level, f.severity) {
        (Level::Deny, _) => "error",
        (_, Severity::Note) => "notice",
        _ => "warning",
    }
}

fn sorted(reports: &[FileReport]) -> Vec<(&FileReport, &Finding)> {
    let mut all: Vec<(&FileReport, &Finding)> = reports
        .iter()
        .flat_map(|r| r.findings.iter().map(move |f| (r, f)))
        .collect();
    all.sort_by(|a, b| {
        b.1.severity
            .cmp(&a.1.severity)
            .then(a.0.path.cmp(&b.0.path))
            .then(a.1.offset.cmp(&b.1.offset))
    });
    all
}

fn clean_path(p: &str) -> &str {
    p.trim_start_matches("./")
}

pub fn render(reports: &[FileReport]) -> String {
    let mut out = String::new();
    for (r, f) in sorted(reports) {
        let place = match &f.member {
            Some(m) => format!(" [{m} @ byte {}]", f.offset),
            None => format!(" [byte {}]", f.offset),
        };
        let title = match &f.suppressed {
            Some(_) => format!("picklegate {} (waived)", f.rule.id()),
            None => format!("picklegate {} ({})", f.rule.id(), f.severity.as_str()),
        };
        let waived = match &f.suppressed {
            Some(s) => format!(
                "\nwaived by the exception at {}: {}",
                s.location, s.justification
            ),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "::{} file={},line=1,title={}::{}",
            command(f),
            escape_property(clean_path(&r.path)),
            escape_property(&title),
            escape_data(&format!("{}{place}{waived}\n{}", f.message, f.rule.help()))
        );
    }
    for r in reports {
        if let Some(e) = &r.error {
            let _ = writeln!(
                out,
                "::error file={}::{}",
                escape_property(clean_path(&r.path)),
                escape_data(e)
            );
        }
    }
    out.push_str(&super::human::summary_line(reports));
    out
}

fn cell(s: &str) -> String {
    super::term::escape(&s.replace('|', "\\|").replace('\n', " ")).into_owned()
}

/// The markdown appended to `$GITHUB_STEP_SUMMARY`.
pub fn step_summary(reports: &[FileReport]) -> String {
    let mut out = String::from("## picklegate\n\n");
    let all = sorted(reports);
    if all.is_empty() {
        let _ = writeln!(out, "No findings in {} file(s).", reports.len());
        return out;
    }
    out.push_str("| Severity | Rule | File | Member | Byte | Global | Message |\n");
    out.push_str("|---|---|---|---|---:|---|---|\n");
    for (r, f) in all {
        let _ = writeln!(
            out,
            "| {} | `{}` | `{}` | {} | {} | {} | {} |",
            if f.suppressed.is_some() {
                "waived"
            } else {
                f.severity.as_str()
            },
            f.rule.id(),
            cell(clean_path(&r.path)),
            f.member
                .as_deref()
                .map(|m| format!("`{}`", cell(m)))
                .unwrap_or_default(),
            f.offset,
            f.global
                .as_deref()
                .map(|g| format!("`{}`", cell(g)))
                .unwrap_or_default(),
            cell(&f.message)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_the_actions_toolkit() {
        assert_eq!(escape_data("50%\r\nx"), "50%25%0D%0Ax");
        assert_eq!(escape_property("a:b,c%"), "a%3Ab%2Cc%25");
    }

    #[test]
    fn workflow_commands_escape_terminal_controls() {
        assert_eq!(escape_data("a\x1b[2Jb\u{202e}"), "a\\x1b[2Jb\\u{202e}");
        assert_eq!(
            escape_property("x\x1b]8;;u\x07:,%\n"),
            "x\\x1b]8;;u\\x07%3A%2C%25%0A"
        );
        // `::` inside a property cannot end the command early.
        assert_eq!(escape_property("a::error b"), "a%3A%3Aerror b");
    }
}
