//! Escaping for text that reaches a terminal (or a log viewer that interprets escape
//! sequences): file names, member names, global names and message fragments come from the
//! input, so control characters (C0, DEL, C1) and bidi overrides are shown visibly
//! (`\x1b`, `\u{202e}`) instead of being interpreted. Backslashes are left alone: the
//! escapes are for reading, not for round-tripping.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` must not reach a terminal raw.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() // C0, DEL and C1
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_escaped(out: &mut String, c: char) {
    if (c as u32) < 0x100 {
        let _ = write!(out, "\\x{:02x}", c as u32);
    } else {
        let _ = write!(out, "\\u{{{:x}}}", c as u32);
    }
}

/// `s` with every control character and bidi override escaped visibly.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Like [`escape`] but keeps line breaks (`\n`) of multi-line text such as a listing.
pub fn escape_lines(s: &str) -> Cow<'_, str> {
    escape_lines_mapped(s, &mut [])
}

/// [`escape_lines`], also moving the byte offsets in `offsets` (offsets into `s`, at char
/// boundaries) to the matching offsets in the escaped text.
pub fn escape_lines_mapped<'a>(s: &'a str, offsets: &mut [&mut usize]) -> Cow<'a, str> {
    let unsafe_here = |c: char| c != '\n' && is_unsafe(c);
    if !s.chars().any(unsafe_here) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut moved = vec![false; offsets.len()];
    for (i, c) in s.char_indices() {
        for (o, done) in offsets.iter_mut().zip(moved.iter_mut()) {
            if !*done && **o == i {
                **o = out.len();
                *done = true;
            }
        }
        if unsafe_here(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    for (o, done) in offsets.iter_mut().zip(moved.iter()) {
        if !*done {
            **o = if **o >= s.len() {
                out.len()
            } else {
                out.len().min(**o)
            };
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_controls_and_bidi_overrides() {
        assert_eq!(escape("plain/näme.pkl"), "plain/näme.pkl");
        assert!(matches!(escape("ok"), Cow::Borrowed(_)));
        assert_eq!(escape("a\x1b]0;pwned\x07b"), "a\\x1b]0;pwned\\x07b");
        assert_eq!(escape("x\ny\r\t\x7f\u{9b}"), "x\\x0ay\\x0d\\x09\\x7f\\x9b");
        assert_eq!(
            escape("evil\u{202e}lkp.exe\u{2066}"),
            "evil\\u{202e}lkp.exe\\u{2066}"
        );
    }

    #[test]
    fn listing_keeps_lines_and_moves_offsets() {
        let s = "a\x1bb\nc\u{202e}d\n";
        let (mut p, mut q, mut end) = (2usize, 5usize, s.len());
        let e = escape_lines_mapped(s, &mut [&mut p, &mut q, &mut end]);
        assert_eq!(e, "a\\x1bb\nc\\u{202e}d\n");
        assert_eq!(&e[p..p + 1], "b");
        assert_eq!(&e[q..q + 1], "\\");
        assert_eq!(end, e.len());
    }
}
