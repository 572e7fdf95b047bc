//! Diagnostics that point into a source file (policy YAML), rendered with
//! annotate-snippets: the message, the file:line:column, the offending text underlined.

use annotate_snippets::{AnnotationKind, Level, Renderer, Snippet};

/// A problem at a place in a text file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    pub file: String,
    /// 1-based; 0 when unknown.
    pub line: u64,
    pub column: u64,
    /// Byte range in the file's text, when known.
    pub span: Option<(usize, usize)>,
    pub message: String,
    /// Short label under the underlined text.
    pub label: String,
    pub warning: bool,
}

impl std::fmt::Display for Diag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

impl Diag {
    pub fn new(file: &str, message: impl Into<String>) -> Self {
        Diag {
            file: file.to_string(),
            line: 0,
            column: 0,
            span: None,
            message: message.into(),
            label: String::new(),
            warning: false,
        }
    }

    pub fn at(mut self, line: u64, column: u64, span: Option<(usize, usize)>) -> Self {
        self.line = line;
        self.column = column;
        self.span = span;
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    pub fn warning(mut self) -> Self {
        self.warning = true;
        self
    }

    /// Byte range of (line, column) in `source`, one token long, when no span is known.
    /// Columns count characters (the YAML parser's), so they are mapped to bytes, and
    /// every range is snapped to character boundaries: a diagnostic never panics.
    fn range(&self, source: &str) -> Option<std::ops::Range<usize>> {
        let floor = |mut i: usize| {
            i = i.min(source.len());
            while !source.is_char_boundary(i) {
                i -= 1;
            }
            i
        };
        if let Some((s, l)) = self.span {
            if s <= source.len() {
                let start = floor(s);
                let end = floor(s.saturating_add(l.max(1))).max(start);
                return Some(start..end);
            }
        }
        if self.line == 0 {
            return None;
        }
        let mut offset = 0usize;
        for (i, line) in source.split_inclusive('\n').enumerate() {
            if i as u64 + 1 == self.line {
                let col = (self.column.max(1) - 1) as usize;
                let at = line.char_indices().nth(col).map_or(line.len(), |(b, _)| b);
                let token = line[at..]
                    .find(|c: char| c.is_whitespace() || c == ',' || c == ']')
                    .unwrap_or(line.len() - at);
                let start = offset + at;
                let end = floor(start + token.max(1)).max(start);
                return Some(start..end);
            }
            offset += line.len();
        }
        None
    }

    /// Renders against the file's text (plain when `color` is false).
    pub fn render(&self, source: Option<&str>, color: bool) -> String {
        let level = if self.warning {
            Level::WARNING
        } else {
            Level::ERROR
        };
        let renderer = if color {
            Renderer::styled()
        } else {
            Renderer::plain()
        };
        match source.and_then(|s| self.range(s).map(|r| (s, r))) {
            Some((src, range)) => {
                let report = &[level.primary_title(&self.message).element(
                    Snippet::source(src)
                        .line_start(1)
                        .path(&self.file)
                        .annotation(AnnotationKind::Primary.span(range).label(&self.label)),
                )];
                renderer.render(report).to_string()
            }
            None => {
                let title = format!("{}: {}", self.file, self.message);
                let report = &[level
                    .primary_title(&title)
                    .element(annotate_snippets::Origin::path(&self.file))];
                renderer.render(report).to_string()
            }
        }
    }
}
