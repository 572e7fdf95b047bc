//! Terminal report: each finding titled with its rule id and severity, drawn with
//! annotate-snippets over a disassembly excerpt of the pickle (primary label at the
//! opcode, related labels at call sites), with the policy as `note:` and the fix as
//! `help:`; then a summary line. Colour only when asked for (terminal, FORCE_COLOR).

use super::term::{escape, escape_lines_mapped};
use super::Summary;
use crate::config::Level as GateLevel;
use crate::finding::{Finding, Severity};
use crate::scan::{FileReport, Status};
use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use std::fmt::Write;

fn level(f: &Finding) -> Level<'static> {
    match (f.level, f.severity) {
        (GateLevel::Warn, _) | (_, Severity::Warning) => Level::WARNING,
        (_, Severity::Note) => Level::NOTE,
        (_, Severity::Critical) => Level::ERROR.with_name("critical"),
        _ => Level::ERROR,
    }
}

fn primary_label(f: &Finding) -> String {
    match &f.global {
        Some(g) => format!("{} `{}`", f.rule.id(), escape(g)),
        None => f.rule.id().to_string(),
    }
}

fn render_finding(path: &str, f: &Finding, renderer: &Renderer) -> String {
    // Everything below may come from the input: escaped before it reaches a terminal.
    let path = escape(path);
    let place = match &f.member {
        Some(m) => format!("{path}!{}", escape(m)),
        None => path.to_string(),
    };
    let policy = f.policy.as_ref().map(|p| format!("policy {}", escape(p)));
    let located = format!("{place} @ byte {}", f.offset);
    let message = escape(&f.message);
    let title = level(f).primary_title(message.as_ref()).id(f.rule.id());
    let mut group = match &f.excerpt {
        Some(ex) => {
            let (mut p0, mut p1) = ex.primary;
            let mut related: Vec<(usize, usize, String)> = ex
                .related
                .iter()
                .map(|(s, e, l)| (*s, *e, escape(l).into_owned()))
                .collect();
            let text = {
                let mut offsets: Vec<&mut usize> = vec![&mut p0, &mut p1];
                for (s, e, _) in &mut related {
                    offsets.push(s);
                    offsets.push(e);
                }
                escape_lines_mapped(&ex.text, &mut offsets).into_owned()
            };
            // The listing carries byte offsets; excerpt line numbers would mislead.
            let mut snippet = Snippet::source(text)
                .line_numbering(false)
                .fold(false)
                .annotation(AnnotationKind::Primary.span(p0..p1).label(primary_label(f)));
            for (s, e, label) in related {
                snippet = snippet.annotation(AnnotationKind::Context.span(s..e).label(label));
            }
            // The place goes in a note: an origin line would append excerpt line:column.
            Group::with_title(title)
                .element(snippet)
                .element(Level::NOTE.message(format!("at {located}")))
        }
        None => {
            let mut g = Group::with_title(title).element(annotate_snippets::Origin::path(&located));
            for r in &f.related {
                g = g.element(Level::NOTE.message(format!(
                    "byte {}: {}",
                    r.offset,
                    escape(&r.label)
                )));
            }
            g
        }
    };
    if let Some(p) = &policy {
        group = group.element(Level::NOTE.message(p));
    }
    group = group.element(Level::HELP.message(f.rule.help()));
    renderer.render(&[group]).to_string()
}

pub fn render(reports: &[FileReport], color: bool) -> String {
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    let mut out = String::new();
    for r in reports {
        if let Some(e) = &r.error {
            let e = escape(e);
            let g = Group::with_title(Level::ERROR.primary_title(e.as_ref()));
            let _ = writeln!(out, "{}\n", renderer.render(&[g]));
            continue;
        }
        for f in r.findings.iter().filter(|f| f.suppressed.is_none()) {
            let _ = writeln!(out, "{}\n", render_finding(&r.path, f, &renderer));
        }
        // Waived findings: one line each under the exception, so they stay visible.
        let waived: Vec<&Finding> = r
            .findings
            .iter()
            .filter(|f| f.suppressed.is_some())
            .collect();
        if let (Some(ex), false) = (&r.exception, waived.is_empty()) {
            let _ = writeln!(
                out,
                "note: {}: {} finding(s) waived by exception {}",
                escape(&r.path),
                waived.len(),
                escape(ex)
            );
            for f in waived {
                let member = f
                    .member
                    .as_deref()
                    .map(|m| format!("!{}", escape(m)))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  waived {} @ byte {}{member}: {}",
                    f.rule.id(),
                    f.offset,
                    escape(&f.message)
                );
            }
            out.push('\n');
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
    let waived = if s.suppressed > 0 {
        format!(", {} waived", s.suppressed)
    } else {
        String::new()
    };
    format!(
        "picklegate: {} file(s) scanned, {} clean, {} with findings ({} finding(s)), {} unreadable{waived}\n",
        s.files, s.clean, failing, s.findings, s.errors
    )
}
