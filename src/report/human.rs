//! Terminal report: each finding titled with its rule id and severity, drawn with
//! annotate-snippets over a disassembly excerpt of the pickle (primary label at the
//! opcode, related labels at call sites), with the policy as `note:` and the fix as
//! `help:`; then a summary line. Colour only when asked for (terminal, FORCE_COLOR).

use super::term::{escape, escape_lines_mapped};
use super::Summary;
use crate::finding::{Finding, Severity};
use crate::scan::{FileReport, Status};
use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use std::fmt::Write;

/// Options of the terminal report (`--color`, `-q`, `-v`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
    /// Only what fails the gate, and the summary.
    pub quiet: bool,
    /// Also a line per clean file.
    pub verbose: bool,
    /// The terminal's width, when writing to one: long lines are wrapped to it.
    pub width: Option<usize>,
    /// `scan --fix`: the blocked files are sanitized after this report, so it says so
    /// instead of announcing a blocked commit.
    pub fixing: bool,
}

/// `text` wrapped at spaces to `width` columns (continuation lines indented by `indent`);
/// unchanged without a width. A word longer than the line stays whole.
pub fn wrap(text: &str, width: Option<usize>, indent: usize) -> String {
    let Some(width) = width.filter(|w| *w > indent + 20) else {
        return text.to_string();
    };
    let mut out = String::with_capacity(text.len() + 16);
    for (n, line) in text.split('\n').enumerate() {
        if n > 0 {
            out.push('\n');
        }
        let mut col = 0;
        for (i, word) in line.split(' ').enumerate() {
            let w = word.chars().count();
            if i > 0 {
                if col + 1 + w > width {
                    out.push('\n');
                    out.push_str(&" ".repeat(indent));
                    col = indent;
                } else {
                    out.push(' ');
                    col += 1;
                }
            }
            out.push_str(word);
            col += w;
        }
    }
    out
}

/// The heading's level follows what the finding does to the gate: a failing finding is an
/// error (`critical` for the critical rules' severity), a non-failing one a warning or note,
/// whatever the rule's default severity.
fn level(f: &Finding) -> Level<'static> {
    match (f.fails(), f.severity) {
        (true, Severity::Critical) => Level::ERROR.with_name("critical"),
        (true, _) => Level::ERROR,
        (false, Severity::Note) => Level::NOTE,
        (false, _) => Level::WARNING,
    }
}

/// `blocks` / `warns`: the finding's effect, first words of its heading.
fn effect(f: &Finding) -> &'static str {
    if f.fails() {
        "blocks"
    } else {
        "warns"
    }
}

fn primary_label(f: &Finding) -> String {
    match &f.global {
        Some(g) => format!("{} `{}`", f.rule.id(), escape(g)),
        None => f.rule.id().to_string(),
    }
}

/// At most this many `also at` lines under a collapsed finding (every location stays in
/// JSON and SARIF).
const MAX_ALSO: usize = 20;

/// Rules whose generic help the file-level help replaces (it names the preset).
fn policy_matter(f: &Finding) -> bool {
    matches!(
        f.rule,
        crate::finding::Rule::GlobalNotAllowed
            | crate::finding::Rule::BuildNotAllowed
            | crate::finding::Rule::MethodCall
    )
}

fn render_finding(
    path: &str,
    f: &Finding,
    also: &[&Finding],
    file_help: bool,
    renderer: &Renderer,
) -> String {
    // Everything below may come from the input: escaped before it reaches a terminal.
    let path = escape(path);
    let place = match &f.member {
        Some(m) => format!("{path}!{}", escape(m)),
        None => path.to_string(),
    };
    let policy = f.policy.as_ref().map(|p| format!("policy {}", escape(p)));
    let located = format!("{place} @ byte {}", f.offset);
    let message = if also.is_empty() {
        format!("{}: {}", effect(f), escape(&f.message))
    } else {
        format!(
            "{}: {} (and {} more like it in this file)",
            effect(f),
            escape(&f.message),
            also.len()
        )
    };
    let title = level(f).primary_title(message).id(f.rule.id());
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
    for a in also.iter().take(MAX_ALSO) {
        let what = a
            .global
            .as_deref()
            .map(|g| format!("`{}`", escape(g)))
            .unwrap_or_else(|| escape(&a.message).into_owned());
        let member = a
            .member
            .as_deref()
            .map(|m| format!("!{}", escape(m)))
            .unwrap_or_default();
        group =
            group.element(Level::NOTE.message(format!("also {what} at {member}byte {}", a.offset)));
    }
    if also.len() > MAX_ALSO {
        group = group.element(Level::NOTE.message(format!(
            "… and {} more (every location is in the JSON and SARIF reports)",
            also.len() - MAX_ALSO
        )));
    }
    if let Some(p) = &policy {
        group = group.element(Level::NOTE.message(p));
    }
    if !(file_help && policy_matter(f)) {
        group = group.element(Level::HELP.message(f.rule.help()));
    }
    renderer.render(&[group]).to_string()
}

/// Findings of one kind in one place (rule, member, reading, effect) collapse into the first
/// of them: twelve refused pandas globals are one heading with eleven `also` lines.
fn collapse<'a>(findings: &[&'a Finding]) -> Vec<(&'a Finding, Vec<&'a Finding>)> {
    let mut groups: Vec<(&Finding, Vec<&Finding>)> = Vec::new();
    for f in findings {
        let same = |g: &Finding| {
            g.rule == f.rule
                && g.member == f.member
                && g.reading == f.reading
                && g.fails() == f.fails()
                && g.policy == f.policy
        };
        match groups.iter_mut().find(|(first, _)| same(first)) {
            Some((_, also)) => also.push(f),
            None => groups.push((f, Vec::new())),
        }
    }
    groups
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The line over a file's findings: path, what it does to the gate, format and readings.
fn header(r: &FileReport, shown: usize, waived: usize, fixing: bool) -> String {
    let state = match r.status {
        Status::Findings if fixing => "blocked, to be sanitized by --fix",
        Status::Findings => "blocked",
        Status::Error => "unreadable",
        Status::Clean if r.findings.iter().any(|f| f.suppressed.is_none()) => {
            "passes with warnings"
        }
        Status::Clean if waived > 0 => "passes, all findings waived",
        Status::Clean => "clean",
    };
    let mut what = vec![escape(r.format).into_owned()];
    let mut readings: Vec<String> = r
        .readings
        .iter()
        .take(4)
        .map(|x| match &x.member {
            Some(m) => format!("{} of {}", x.reading, escape(m)),
            None => x.reading.to_string(),
        })
        .collect();
    if r.readings.len() > 4 {
        readings.push(format!("{} more", r.readings.len() - 4));
    }
    let only_the_format = readings.len() == 1 && readings[0] == r.format;
    if !readings.is_empty() && !only_the_format {
        what.push(format!("read as {}", readings.join(", ")));
    }
    if shown > 0 {
        what.push(plural(shown, "finding", "findings"));
    }
    if waived > 0 {
        what.push(format!("{waived} waived"));
    }
    format!("{}: {state} ({})", escape(&r.path), what.join("; "))
}

pub fn render(reports: &[FileReport], style: Style) -> String {
    let renderer = if style.color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    let renderer = match style.width {
        Some(w) => renderer.term_width(w),
        None => renderer,
    };
    let bold = |t: &str| {
        if style.color {
            format!("\x1b[1m{t}\x1b[0m")
        } else {
            t.to_string()
        }
    };
    let mut out = String::new();
    for r in reports {
        if let Some(e) = &r.error {
            let _ = writeln!(
                out,
                "{}",
                bold(&wrap(&header(r, 0, 0, style.fixing), style.width, 2))
            );
            let e = escape(e);
            let g = Group::with_title(Level::ERROR.primary_title(e.as_ref()));
            let _ = writeln!(out, "{}\n", renderer.render(&[g]));
            continue;
        }
        let shown: Vec<&Finding> = r
            .findings
            .iter()
            .filter(|f| f.suppressed.is_none() && (f.fails() || !style.quiet))
            .collect();
        let waived: Vec<&Finding> = r
            .findings
            .iter()
            .filter(|f| f.suppressed.is_some())
            .collect();
        if shown.is_empty() && (waived.is_empty() || style.quiet) {
            if style.verbose {
                let _ = writeln!(out, "{}", header(r, 0, waived.len(), style.fixing));
            }
            continue;
        }
        let _ = writeln!(
            out,
            "{}",
            bold(&wrap(
                &header(r, shown.len(), waived.len(), style.fixing),
                style.width,
                2
            ))
        );
        let file_help = r.help.is_some() && r.status == Status::Findings;
        for (f, also) in collapse(&shown) {
            let _ = writeln!(
                out,
                "{}\n",
                render_finding(&r.path, f, &also, file_help, &renderer)
            );
        }
        if let (true, Some(h)) = (file_help, &r.help) {
            let line = format!("help: {}: {}", escape(&r.path), escape(h));
            let _ = writeln!(out, "{}\n", wrap(&line, style.width, 6));
        }
        // Waived findings: one line each under the exception, so they stay visible.
        if style.quiet || waived.is_empty() {
            continue;
        }
        if let Some(ex) = &r.exception {
            let _ = writeln!(
                out,
                "note: {}: {} finding(s) waived by exception {}",
                escape(&r.path),
                waived.len(),
                escape(ex)
            );
        }
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
    out.push_str(&wrap(&summary(reports, style.fixing), style.width, 12));
    out
}

/// One line per finding (`path!member@offset: blocks rule: message`), like ruff's concise
/// output, for hooks and logs; then the summary line.
pub fn render_concise(reports: &[FileReport], quiet: bool) -> String {
    let mut out = String::new();
    for r in reports {
        if let Some(e) = &r.error {
            let _ = writeln!(out, "{}: error: {}", escape(&r.path), escape(e));
            continue;
        }
        for f in &r.findings {
            if quiet && !f.fails() {
                continue;
            }
            let member = f
                .member
                .as_deref()
                .map(|m| format!("!{}", escape(m)))
                .unwrap_or_default();
            let what = if f.suppressed.is_some() {
                "waived"
            } else {
                effect(f)
            };
            let _ = writeln!(
                out,
                "{}{member}@{}: {what} {}: {}",
                escape(&r.path),
                f.offset,
                f.rule.id(),
                escape(&f.message)
            );
        }
    }
    out.push_str(&summary_line(reports));
    out
}

/// The closing line: what blocks, what only warns, what is waived, and what the exit code
/// means.
pub fn summary_line(reports: &[FileReport]) -> String {
    summary(reports, false)
}

/// [`summary_line`]; under `scan --fix` the exit code is the fix's, so that is said instead.
fn summary(reports: &[FileReport], fixing: bool) -> String {
    let s = Summary::of(reports);
    let meaning = match Summary::exit_code(reports) {
        0 => "exit 0: nothing outside policy",
        1 if fixing => "--fix sanitizes the blocked files next; its exit code follows",
        1 => "exit 1: blocked by findings outside policy",
        _ => "exit 2: a file could not be read or scanned",
    };
    format!(
        "picklegate: {} blocked, {}, {} waived; {} scanned, {} clean, {} unreadable ({meaning})\n",
        plural(s.blocked, "file", "files"),
        plural(s.warnings, "warning", "warnings"),
        s.suppressed,
        plural(s.files, "file", "files"),
        s.clean,
        s.errors,
    )
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wraps_at_spaces_with_an_indent() {
        let t = "help: models/frame.pkl: everything refused here is allowed by preset `pandas`";
        assert_eq!(wrap(t, None, 6), t);
        let w = wrap(t, Some(40), 6);
        assert!(w.lines().all(|l| l.chars().count() <= 40), "{w}");
        assert!(w.lines().skip(1).all(|l| l.starts_with("      ")), "{w}");
        assert_eq!(
            w.split_whitespace().collect::<Vec<_>>(),
            t.split_whitespace().collect::<Vec<_>>()
        );
        // A word longer than the width stays whole.
        let long = format!("x {}", "y".repeat(60));
        assert!(wrap(&long, Some(30), 2).contains(&"y".repeat(60)));
    }
}
