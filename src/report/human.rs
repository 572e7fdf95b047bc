//! Terminal report: each finding titled with its rule id and severity, drawn with
//! annotate-snippets over a disassembly excerpt of the pickle (primary label at the
//! opcode, related labels at call sites), with the policy as `note:` and the fix as
//! `help:`; then a summary line. Colour only when asked for (terminal, FORCE_COLOR).

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
        Some(g) => format!("{} `{g}`", f.rule.id()),
        None => f.rule.id().to_string(),
    }
}

fn render_finding(path: &str, f: &Finding, renderer: &Renderer) -> String {
    let place = match &f.member {
        Some(m) => format!("{path}!{m}"),
        None => path.to_string(),
    };
    let policy = f.policy.as_ref().map(|p| format!("policy {p}"));
    let located = format!("{place} @ byte {}", f.offset);
    let title = level(f).primary_title(&f.message).id(f.rule.id());
    let mut group = match &f.excerpt {
        Some(ex) => {
            // The listing carries byte offsets; excerpt line numbers would mislead.
            let mut snippet = Snippet::source(&ex.text)
                .line_numbering(false)
                .fold(false)
                .annotation(
                    AnnotationKind::Primary
                        .span(ex.primary.0..ex.primary.1)
                        .label(primary_label(f)),
                );
            for (s, e, label) in &ex.related {
                snippet = snippet.annotation(AnnotationKind::Context.span(*s..*e).label(label));
            }
            // The place goes in a note: an origin line would append excerpt line:column.
            Group::with_title(title)
                .element(snippet)
                .element(Level::NOTE.message(format!("at {located}")))
        }
        None => {
            let mut g = Group::with_title(title).element(annotate_snippets::Origin::path(&located));
            for r in &f.related {
                g = g.element(Level::NOTE.message(format!("byte {}: {}", r.offset, r.label)));
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
            let g = Group::with_title(Level::ERROR.primary_title(e.as_str()));
            let _ = writeln!(out, "{}\n", renderer.render(&[g]));
            continue;
        }
        for f in &r.findings {
            let _ = writeln!(out, "{}\n", render_finding(&r.path, f, &renderer));
        }
        if let Some(ex) = &r.exception {
            let _ = writeln!(out, "note: {}: findings waived by exception {ex}\n", r.path);
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
