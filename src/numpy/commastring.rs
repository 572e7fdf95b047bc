//! `numpy._core._internal._commastring`: strings such as `'i4,f8'`, `'(2,3)f8'` or
//! `'3O'` become a list of fields or a `(format, repeats)` tuple. numpy matches
//! them with regular expressions; this follows those expressions step by step
//! (they never backtrack: every part is optional and greedy).

use crate::numpy::dtype::{self, rej, unsure, DtypeError};
use crate::numpy::literal::{self, Lit, LitErrorKind};

/// Python's `\s` for str patterns (`str.isspace`).
pub(crate) fn is_py_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n'
            | '\x0b'
            | '\x0c'
            | '\r'
            | '\x1c'..='\x1f'
            | ' '
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

fn is_order(c: char) -> bool {
    matches!(c, '<' | '>' | '|' | '=')
}

/// One `format_re` match at `p`: (order1, repeats, order2, dtype, end).
fn format_match(s: &[char], mut p: usize) -> (String, String, String, String, usize) {
    let at = |i: usize| s.get(i).copied();
    let mut order1 = String::new();
    if let Some(c) = at(p).filter(|&c| is_order(c)) {
        order1.push(c);
        p += 1;
    }
    let r0 = p;
    while at(p) == Some(' ') {
        p += 1;
    }
    if at(p) == Some('(') {
        p += 1;
    }
    while at(p).is_some_and(|c| c == ' ' || c == ',' || c.is_ascii_digit()) {
        p += 1;
    }
    if at(p) == Some(')') {
        p += 1;
    }
    while at(p) == Some(' ') {
        p += 1;
    }
    let repeats: String = s[r0..p].iter().collect();
    let mut order2 = String::new();
    if let Some(c) = at(p).filter(|&c| is_order(c)) {
        order2.push(c);
        p += 1;
    }
    let d0 = p;
    while at(p).is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '?') {
        p += 1;
    }
    if at(p) == Some('[') {
        let mut q = p + 1;
        while at(q).is_some_and(|c| c.is_ascii_alphanumeric() || c == ',' || c == '.') {
            q += 1;
        }
        if q > p + 1 && at(q) == Some(']') {
            p = q + 1;
        }
    }
    let dtype: String = s[d0..p].iter().collect();
    (order1, repeats, order2, dtype, p)
}

/// `_commastring(astr)`: a list of items, or a single item when no separator was
/// seen. Items are format strings or `(format, repeats)` tuples.
fn commastring(astr: &str) -> Result<(Vec<Lit>, bool), DtypeError> {
    let s: Vec<char> = astr.chars().collect();
    let mut start = 0;
    let mut result = Vec::new();
    let mut islist = false;
    while start < s.len() {
        let (order1, repeats, order2, dt, end) = format_match(&s, start);
        start = end;
        if start < s.len() {
            if s[start..].iter().all(|&c| is_py_space(c)) {
                start = s.len();
            } else {
                // sep_re: \s*,\s*
                let mut p = start;
                while s.get(p).copied().is_some_and(is_py_space) {
                    p += 1;
                }
                if s.get(p) != Some(&',') {
                    return rej(format!(
                        "format number {} of {astr:?} is not recognized",
                        result.len() + 1
                    ));
                }
                p += 1;
                while s.get(p).copied().is_some_and(is_py_space) {
                    p += 1;
                }
                start = p;
                islist = true;
            }
        }
        let native = |o: &str| {
            if o == "=" {
                "<".to_string()
            } else {
                o.to_string()
            }
        };
        let order = if order2.is_empty() {
            order1
        } else if order1.is_empty() {
            order2
        } else {
            let (a, b) = (native(&order1), native(&order2));
            if a != b {
                return rej(format!("inconsistent byte-order specification {a} and {b}"));
            }
            a
        };
        let order = if matches!(order.as_str(), "|" | "=" | "<") {
            String::new()
        } else {
            order
        };
        let dt = Lit::Str(order + &dt);
        if repeats.is_empty() {
            result.push(dt);
        } else {
            let r = match literal::literal_eval(&repeats) {
                Ok(r) => r,
                Err(e) if e.kind == LitErrorKind::Unsupported => return unsure(e.msg),
                Err(e) => return rej(format!("repeats {repeats:?}: {}", e.msg)),
            };
            result.push(Lit::Tuple(vec![dt, r]));
        }
    }
    Ok((result, islist))
}

/// `_convert_from_commastring`.
pub(crate) fn convert(s: &str, align: bool, depth: usize) -> Result<dtype::Dtype, DtypeError> {
    let (items, islist) = commastring(s)?;
    if islist {
        return dtype::from_format_list(&items, align, depth + 1);
    }
    match items.into_iter().next() {
        Some(Lit::Tuple(t)) if t.len() == 2 => dtype::from_tuple(&t, align, depth + 1),
        _ => rej("_commastring should return a tuple with len == 2, or a list with len >= 1"),
    }
}
