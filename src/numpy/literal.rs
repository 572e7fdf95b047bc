//! Python literals as `ast.literal_eval` (CPython 3.11) reads them: the `.npy` header
//! is one, and numpy trusts whatever it evaluates to. Text matching cannot see that
//! `'|' 'O'`, `"|O"` or `'\x4f'` all mean the object dtype; a real tokenizer and
//! parser can. Anything this module cannot evaluate exactly is an error.

use crate::numpy::dtype::Dtype;
use std::collections::HashMap;

/// A Python value. The parser produces only the literal variants; `Dtype`, `Global`
/// and `Unknown` let callers (the pickle VM) describe the other objects numpy may be
/// handed, such as the `numpy.dtype` instances inside a dtype's pickled state.
#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    None,
    Bool(bool),
    Int(i128),
    /// An int outside `i128`: sign and magnitude (little-endian 64-bit limbs, no
    /// trailing zero limb).
    BigInt {
        negative: bool,
        magnitude: Vec<u64>,
    },
    Float(f64),
    Complex(f64, f64),
    Str(String),
    Bytes(Vec<u8>),
    Ellipsis,
    Tuple(Vec<Lit>),
    List(Vec<Lit>),
    /// In insertion order, keys unique under Python equality (the parser dedupes).
    Dict(Vec<(Lit, Lit)>),
    /// Members unique under Python equality; CPython's iteration order for sets of
    /// strings depends on hash randomisation, so consumers must not rely on order.
    Set(Vec<Lit>),
    /// A `numpy.dtype` instance.
    Dtype(Box<Dtype>),
    /// A class or function found by `GLOBAL` (module, qualified name).
    Global(String, String),
    /// Some object whose type and value are not known.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LitErrorKind {
    /// CPython raises `SyntaxError` (or `IndentationError`).
    Syntax,
    /// CPython raises `ValueError` (a valid expression that is not a literal) or
    /// `TypeError` (an unhashable dict key or set member).
    Value,
    /// Valid Python that this parser does not model (`\N{...}` escapes, lone
    /// surrogates, nesting beyond [`MAX_DEPTH`], inputs beyond [`MAX_LEN`]).
    Unsupported,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LitError {
    pub kind: LitErrorKind,
    /// Character offset into the (left-stripped) source.
    pub offset: usize,
    pub msg: String,
}

impl std::fmt::Display for LitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at character {}", self.msg, self.offset)
    }
}

/// Nesting limit for brackets and unary operators (CPython allows about 200).
pub const MAX_DEPTH: usize = 100;
/// Longest source accepted, in bytes.
pub const MAX_LEN: usize = 1 << 24;
/// CPython 3.11's `sys.get_int_max_str_digits()` default: longer nonzero decimal
/// literals are a `SyntaxError`.
const MAX_STR_DIGITS: usize = 4300;

/// `ast.literal_eval(src)`.
pub fn literal_eval(src: &str) -> Result<Lit, LitError> {
    eval(src, false)
}

/// `ast.literal_eval(numpy.lib.format._filter_header(src))`: like [`literal_eval`],
/// but a name token `L` right after a number token (Python 2's long suffix, `3L`)
/// is dropped first. `_filter_header` is a tokenize/untokenize round trip, which
/// also loses the indentation of the first line and a last line of only white
/// space; both are reproduced here.
pub fn literal_eval_dropping_long_suffix(src: &str) -> Result<Lit, LitError> {
    let ws = |c: char| matches!(c, ' ' | '\t' | '\x0c');
    let mut text = src.trim_start_matches(ws);
    if let Some(nl) = text.rfind('\n') {
        let tail = &text[nl + 1..];
        if !tail.is_empty() && tail.chars().all(ws) {
            text = &text[..nl + 1];
        }
    }
    eval(text, true)
}

fn eval(src: &str, drop_long_suffix: bool) -> Result<Lit, LitError> {
    if src.len() > MAX_LEN {
        return Err(err(LitErrorKind::Unsupported, 0, "literal is too long"));
    }
    if src.contains('\0') {
        // CPython: "source code string cannot contain null bytes".
        return Err(err(LitErrorKind::Value, 0, "source contains a null byte"));
    }
    // literal_eval strips leading spaces and tabs (not form feeds or newlines).
    let stripped = src.trim_start_matches([' ', '\t']);
    // The string tokenizer translates \r\n and lone \r into \n, inside string
    // literals too.
    let mut chars = Vec::with_capacity(stripped.len());
    let mut it = stripped.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\r' {
            if it.peek() == Some(&'\n') {
                it.next();
            }
            chars.push('\n');
        } else {
            chars.push(c);
        }
    }
    let toks = Lexer {
        s: &chars,
        pos: 0,
        level: 0,
        drop_long_suffix,
        out: Vec::new(),
    }
    .run()?;
    let mut p = Parser { toks: &toks, i: 0 };
    let node = p.top()?;
    to_lit(node, 0)
}

fn err(kind: LitErrorKind, offset: usize, msg: impl Into<String>) -> LitError {
    LitError {
        kind,
        offset,
        msg: msg.into(),
    }
}

fn syntax(offset: usize, msg: impl Into<String>) -> LitError {
    err(LitErrorKind::Syntax, offset, msg)
}

// ---------------------------------------------------------------------------------
// Tokens

#[derive(Debug, Clone, PartialEq)]
enum Num {
    Int(Vec<u64>),
    Float(f64),
    Imag(f64),
}

#[derive(Debug, Clone, PartialEq)]
enum StrVal {
    Str(String),
    Bytes(Vec<u8>),
    /// f-strings are `JoinedStr` nodes, which literal_eval rejects.
    Formatted,
}

#[derive(Debug, Clone, PartialEq)]
enum T {
    Num(Num),
    Str(StrVal),
    Name(String),
    /// One of `( ) [ ] { } , : + -`.
    Op(char),
    Ellipsis,
    Newline,
    End,
}

struct Tok {
    t: T,
    at: usize,
}

struct Lexer<'a> {
    s: &'a [char],
    pos: usize,
    level: usize,
    drop_long_suffix: bool,
    out: Vec<Tok>,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c as u32 >= 128
}

fn is_ident_char(c: char) -> bool {
    is_ident_start(c) || c.is_ascii_digit()
}

impl Lexer<'_> {
    fn peek(&self, k: usize) -> Option<char> {
        self.s.get(self.pos + k).copied()
    }

    fn push(&mut self, t: T, at: usize) {
        self.out.push(Tok { t, at });
    }

    fn run(mut self) -> Result<Vec<Tok>, LitError> {
        let mut at_bol = true;
        loop {
            if at_bol && self.level == 0 {
                // Indentation of a new logical line: eval input may not be indented,
                // but blank and comment-only lines are skipped.
                let mut col = 0usize;
                while let Some(c) = self.peek(0) {
                    match c {
                        ' ' => col += 1,
                        '\t' => col = (col / 8 + 1) * 8,
                        '\x0c' => col = 0,
                        _ => break,
                    }
                    self.pos += 1;
                }
                match self.peek(0) {
                    Some('#') => {
                        self.skip_comment();
                        continue;
                    }
                    Some('\n') => {
                        self.pos += 1;
                        continue;
                    }
                    // "  \<newline>": the continuation joins the next line.
                    Some('\\') if self.peek(1) == Some('\n') && col == 0 => {}
                    _ if col > 0 => return Err(syntax(self.pos, "unexpected indent")),
                    _ => {}
                }
                at_bol = false;
            }
            let Some(c) = self.peek(0) else {
                if self.level > 0 {
                    return Err(syntax(self.pos, "unexpected EOF: unclosed bracket"));
                }
                let at = self.pos;
                self.push(T::End, at);
                return Ok(self.out);
            };
            let at = self.pos;
            match c {
                ' ' | '\t' | '\x0c' => self.pos += 1,
                '\\' => {
                    if self.peek(1) != Some('\n') {
                        return Err(syntax(
                            at,
                            "unexpected character after line continuation character",
                        ));
                    }
                    self.pos += 2;
                    if self.peek(0).is_none() {
                        return Err(syntax(self.pos, "unexpected EOF while parsing"));
                    }
                }
                '#' => self.skip_comment(),
                '\n' => {
                    self.pos += 1;
                    if self.level == 0 {
                        self.push(T::Newline, at);
                        at_bol = true;
                    }
                }
                '(' | '[' | '{' => {
                    self.level += 1;
                    if self.level > MAX_DEPTH {
                        return Err(err(LitErrorKind::Unsupported, at, "nesting too deep"));
                    }
                    self.pos += 1;
                    self.push(T::Op(c), at);
                }
                ')' | ']' | '}' => {
                    if self.level == 0 {
                        return Err(syntax(at, format!("unmatched {c:?}")));
                    }
                    self.level -= 1;
                    self.pos += 1;
                    self.push(T::Op(c), at);
                }
                ',' | ':' | '+' | '-' => {
                    self.pos += 1;
                    self.push(T::Op(c), at);
                }
                '.' if self.peek(1) == Some('.') && self.peek(2) == Some('.') => {
                    self.pos += 3;
                    self.push(T::Ellipsis, at);
                }
                '.' if self.peek(1).is_some_and(|d| d.is_ascii_digit()) => self.number()?,
                '0'..='9' => self.number()?,
                '\'' | '"' => {
                    let v = self.string(false, false, false)?;
                    self.push(T::Str(v), at);
                }
                c if is_ident_start(c) => {
                    let start = self.pos;
                    while self.peek(0).is_some_and(is_ident_char) {
                        self.pos += 1;
                    }
                    let name: String = self.s[start..self.pos].iter().collect();
                    if matches!(self.peek(0), Some('\'' | '"')) {
                        let lower = name.to_ascii_lowercase();
                        let (raw, bytes, fmt) = match lower.as_str() {
                            "r" => (true, false, false),
                            "u" => (false, false, false),
                            "b" => (false, true, false),
                            "br" | "rb" => (true, true, false),
                            "f" => (false, false, true),
                            "fr" | "rf" => (true, false, true),
                            _ => return Err(syntax(at, "invalid syntax")),
                        };
                        let v = self.string(raw, bytes, fmt)?;
                        self.push(T::Str(v), at);
                    } else {
                        self.push(T::Name(name), at);
                    }
                }
                c => {
                    return Err(syntax(at, format!("invalid character {c:?}")));
                }
            }
        }
    }

    fn skip_comment(&mut self) {
        while self.peek(0).is_some_and(|c| c != '\n') {
            self.pos += 1;
        }
    }

    /// Digits with single underscores between them; at least one digit.
    fn digits(&mut self, radix: u32) -> Result<String, LitError> {
        let mut out = String::new();
        loop {
            match self.peek(0) {
                Some(c) if c.is_digit(radix) => {
                    out.push(c);
                    self.pos += 1;
                }
                Some('_') if self.peek(1).is_some_and(|d| d.is_digit(radix)) && !out.is_empty() => {
                    self.pos += 1;
                }
                _ => break,
            }
        }
        if out.is_empty() {
            return Err(syntax(self.pos, "invalid number literal"));
        }
        Ok(out)
    }

    fn number(&mut self) -> Result<(), LitError> {
        let at = self.pos;
        let radix = match (self.peek(0), self.peek(1)) {
            (Some('0'), Some('x' | 'X')) => 16,
            (Some('0'), Some('o' | 'O')) => 8,
            (Some('0'), Some('b' | 'B')) => 2,
            _ => 10,
        };
        let num = if radix != 10 {
            self.pos += 2;
            if self.peek(0) == Some('_') {
                self.pos += 1;
            }
            let d = self.digits(radix)?;
            Num::Int(parse_magnitude(&d, radix))
        } else {
            let mut text = String::new();
            let mut is_int = true;
            if self.peek(0) != Some('.') {
                text = self.digits(10)?;
            }
            if self.peek(0) == Some('.') {
                is_int = false;
                self.pos += 1;
                text.push('.');
                if self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
                    text.push_str(&self.digits(10)?);
                }
            }
            if matches!(self.peek(0), Some('e' | 'E')) {
                let sign = self.peek(1);
                let skip = if matches!(sign, Some('+' | '-')) {
                    2
                } else {
                    1
                };
                if self.peek(skip).is_some_and(|c| c.is_ascii_digit()) {
                    is_int = false;
                    text.push('e');
                    if skip == 2 {
                        text.push(sign.unwrap_or('+'));
                    }
                    self.pos += skip;
                    text.push_str(&self.digits(10)?);
                } else {
                    return Err(syntax(at, "invalid decimal literal"));
                }
            }
            if matches!(self.peek(0), Some('j' | 'J')) {
                self.pos += 1;
                Num::Imag(parse_float(&text, at)?)
            } else if is_int {
                let zero = text.bytes().all(|b| b == b'0');
                if text.starts_with('0') && !zero {
                    return Err(syntax(
                        at,
                        "leading zeros in decimal integer literals are not permitted",
                    ));
                }
                if !zero && text.len() > MAX_STR_DIGITS {
                    return Err(syntax(
                        at,
                        "Exceeds the limit (4300 digits) for integer string conversion",
                    ));
                }
                Num::Int(parse_magnitude(&text, 10))
            } else {
                Num::Float(parse_float(&text, at)?)
            }
        };
        // A number may not run into a name ("1L", "0x1g", "1_"), except that the
        // Python 2 filter reads "1L" as a number and a name and drops the name.
        if self.peek(0).is_some_and(is_ident_char) {
            let start = self.pos;
            let mut end = start;
            while self.s.get(end).copied().is_some_and(is_ident_char) {
                end += 1;
            }
            let is_l = end == start + 1 && self.s[start] == 'L';
            if !(self.drop_long_suffix && is_l) {
                return Err(syntax(at, "invalid number literal"));
            }
        }
        self.push(T::Num(num), at);
        if self.drop_long_suffix {
            // tokenize sees NUMBER then NAME 'L' (spaces and line continuations in
            // between are not tokens); _filter_header drops that NAME.
            let mut k = self.pos;
            loop {
                match self.s.get(k) {
                    Some(' ' | '\t' | '\x0c') => k += 1,
                    Some('\\') if self.s.get(k + 1) == Some(&'\n') => k += 2,
                    _ => break,
                }
            }
            if self.s.get(k) == Some(&'L') && !self.s.get(k + 1).copied().is_some_and(is_ident_char)
            {
                self.pos = k + 1;
            }
        }
        Ok(())
    }

    /// A string literal body starting at the opening quote.
    fn string(&mut self, raw: bool, bytes: bool, fmt: bool) -> Result<StrVal, LitError> {
        let at = self.pos;
        let q = self.peek(0).unwrap_or('\'');
        let triple = self.peek(1) == Some(q) && self.peek(2) == Some(q);
        self.pos += if triple { 3 } else { 1 };
        let mut text: Vec<char> = Vec::new();
        loop {
            let Some(c) = self.peek(0) else {
                return Err(syntax(at, "unterminated string literal"));
            };
            if c == q {
                if !triple {
                    self.pos += 1;
                    break;
                }
                if self.peek(1) == Some(q) && self.peek(2) == Some(q) {
                    self.pos += 3;
                    break;
                }
            }
            if c == '\n' && !triple {
                return Err(syntax(at, "unterminated string literal"));
            }
            if c == '\\' {
                // The backslash and the next character stay together: an escaped
                // quote does not end the string, even in a raw string.
                let Some(n) = self.peek(1) else {
                    return Err(syntax(at, "unterminated string literal"));
                };
                text.push(c);
                text.push(n);
                self.pos += 2;
                continue;
            }
            text.push(c);
            self.pos += 1;
        }
        if fmt {
            return Ok(StrVal::Formatted);
        }
        if bytes {
            if let Some(i) = text.iter().position(|c| !c.is_ascii()) {
                return Err(syntax(
                    at + i,
                    "bytes can only contain ASCII literal characters",
                ));
            }
            let v = if raw {
                text.iter().map(|&c| c as u8).collect()
            } else {
                unescape_bytes(&text, at)?
            };
            return Ok(StrVal::Bytes(v));
        }
        let v = if raw {
            text.iter().collect()
        } else {
            unescape_str(&text, at)?
        };
        Ok(StrVal::Str(v))
    }
}

fn parse_magnitude(digits: &str, radix: u32) -> Vec<u64> {
    let mut mag: Vec<u64> = Vec::new();
    if radix.is_power_of_two() {
        // Linear time for any length (hex literals have no digit limit).
        let bits = radix.trailing_zeros() as usize;
        for (i, d) in digits.chars().rev().enumerate() {
            let v = u64::from(d.to_digit(radix).unwrap_or(0));
            let (limb, shift) = (i * bits / 64, i * bits % 64);
            if mag.len() <= limb + 1 {
                mag.resize(limb + 2, 0);
            }
            mag[limb] |= v << shift;
            if shift + bits > 64 {
                mag[limb + 1] |= v >> (64 - shift);
            }
        }
        while mag.last() == Some(&0) {
            mag.pop();
        }
        return mag;
    }
    for d in digits.chars() {
        let mut carry = d.to_digit(radix).unwrap_or(0) as u128;
        for limb in mag.iter_mut() {
            let v = (*limb as u128) * radix as u128 + carry;
            *limb = v as u64;
            carry = v >> 64;
        }
        if carry > 0 {
            mag.push(carry as u64);
        }
    }
    mag
}

fn parse_float(text: &str, at: usize) -> Result<f64, LitError> {
    // Rust's float grammar wants a digit before an exponent ("1.e5" is fine for
    // Python); give it one.
    let t = text.replace(".e", ".0e");
    let t = if t.starts_with('.') {
        format!("0{t}")
    } else {
        t
    };
    t.parse::<f64>()
        .map_err(|_| syntax(at, "invalid float literal"))
}

fn hex_value(s: &[char], at: usize, n: usize, what: &str) -> Result<u32, LitError> {
    if s.len() < n || !s[..n].iter().all(|c| c.is_ascii_hexdigit()) {
        return Err(syntax(at, format!("truncated {what} escape")));
    }
    Ok(s[..n]
        .iter()
        .fold(0u32, |acc, c| acc * 16 + c.to_digit(16).unwrap_or(0)))
}

/// Escapes of a non-raw str literal. `text` still holds backslash pairs verbatim.
fn unescape_str(text: &[char], at: usize) -> Result<String, LitError> {
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        if c != '\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let n = text.get(i + 1).copied().unwrap_or('\\');
        i += 2;
        match n {
            '\n' => {}
            '\\' | '\'' | '"' => out.push(n),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            'v' => out.push('\x0b'),
            '0'..='7' => {
                let mut v = n.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match text.get(i).and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            i += 1;
                        }
                        None => break,
                    }
                }
                out.push(char::from_u32(v).unwrap_or('\0'));
            }
            'x' | 'u' | 'U' => {
                let (len, what) = match n {
                    'x' => (2, "\\xXX"),
                    'u' => (4, "\\uXXXX"),
                    _ => (8, "\\UXXXXXXXX"),
                };
                let v = hex_value(&text[i..], at, len, what)?;
                i += len;
                if v > 0x10FFFF {
                    return Err(syntax(at, "illegal Unicode character"));
                }
                let Some(ch) = char::from_u32(v) else {
                    return Err(err(
                        LitErrorKind::Unsupported,
                        at,
                        "lone surrogate in a string literal",
                    ));
                };
                out.push(ch);
            }
            'N' => {
                return Err(err(
                    LitErrorKind::Unsupported,
                    at,
                    "\\N{...} escapes are not supported",
                ));
            }
            // Unknown escapes keep the backslash (a DeprecationWarning in 3.11).
            other => {
                out.push('\\');
                out.push(other);
            }
        }
    }
    Ok(out)
}

/// Escapes of a non-raw bytes literal (all characters are ASCII here).
fn unescape_bytes(text: &[char], at: usize) -> Result<Vec<u8>, LitError> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let c = text[i];
        if c != '\\' {
            out.push(c as u8);
            i += 1;
            continue;
        }
        let n = text.get(i + 1).copied().unwrap_or('\\');
        i += 2;
        match n {
            '\n' => {}
            '\\' | '\'' | '"' => out.push(n as u8),
            'a' => out.push(7),
            'b' => out.push(8),
            'f' => out.push(12),
            'n' => out.push(b'\n'),
            'r' => out.push(b'\r'),
            't' => out.push(b'\t'),
            'v' => out.push(11),
            '0'..='7' => {
                let mut v = n.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match text.get(i).and_then(|c| c.to_digit(8)) {
                        Some(d) => {
                            v = v * 8 + d;
                            i += 1;
                        }
                        None => break,
                    }
                }
                // Values above 0o377 wrap to a byte.
                out.push(v as u8);
            }
            'x' => {
                let v = hex_value(&text[i..], at, 2, "\\xXX")?;
                i += 2;
                out.push(v as u8);
            }
            other => {
                out.push(b'\\');
                out.push(other as u8);
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------
// Parser: the expression grammar, into the few AST node kinds literal_eval looks at.

enum Node {
    Const(Lit),
    /// Adjacent string literals, still to be joined.
    Strs(Vec<(StrVal, usize)>),
    Tuple(Vec<Node>),
    List(Vec<Node>),
    Dict(Vec<(Node, Node)>, usize),
    Set(Vec<Node>, usize),
    /// `set()`.
    EmptySet,
    Unary(bool, Box<Node>, usize),
    /// Left, `true` for subtraction, right.
    BinOp(Box<Node>, bool, Box<Node>, usize),
    /// A name other than True/False/None: literal_eval rejects it, except as the
    /// callee of `set()`.
    Name(String, usize),
}

struct Parser<'a> {
    toks: &'a [Tok],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &T {
        self.toks.get(self.i).map_or(&T::End, |t| &t.t)
    }

    fn at(&self) -> usize {
        self.toks.get(self.i).map_or(0, |t| t.at)
    }

    fn is_op(&self, c: char) -> bool {
        *self.peek() == T::Op(c)
    }

    fn expect_op(&mut self, c: char) -> Result<(), LitError> {
        if self.is_op(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(syntax(self.at(), format!("expected {c:?}")))
        }
    }

    /// `eval_input: expressions NEWLINE* ENDMARKER`.
    fn top(&mut self) -> Result<Node, LitError> {
        let first = self.expr(0)?;
        let node = if self.is_op(',') {
            let mut items = vec![first];
            while self.is_op(',') {
                self.i += 1;
                if matches!(self.peek(), T::Newline | T::End) {
                    break;
                }
                items.push(self.expr(0)?);
            }
            Node::Tuple(items)
        } else {
            first
        };
        while *self.peek() == T::Newline {
            self.i += 1;
        }
        if *self.peek() != T::End {
            return Err(syntax(self.at(), "invalid syntax"));
        }
        Ok(node)
    }

    /// Sum of unary terms; literal_eval only accepts `num ± complex` from this.
    fn expr(&mut self, depth: usize) -> Result<Node, LitError> {
        let mut left = self.unary(depth)?;
        while let T::Op(c @ ('+' | '-')) = *self.peek() {
            let at = self.at();
            self.i += 1;
            let right = self.unary(depth)?;
            left = Node::BinOp(Box::new(left), c == '-', Box::new(right), at);
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<Node, LitError> {
        if depth > MAX_DEPTH {
            return Err(err(
                LitErrorKind::Unsupported,
                self.at(),
                "nesting too deep",
            ));
        }
        if let T::Op(c @ ('+' | '-')) = *self.peek() {
            let at = self.at();
            self.i += 1;
            let operand = self.unary(depth + 1)?;
            return Ok(Node::Unary(c == '-', Box::new(operand), at));
        }
        self.atom(depth)
    }

    /// Comma-separated items up to `close`, trailing comma allowed.
    fn items(&mut self, close: char, depth: usize) -> Result<Vec<Node>, LitError> {
        let mut out = Vec::new();
        while !self.is_op(close) {
            out.push(self.expr(depth + 1)?);
            if self.is_op(',') {
                self.i += 1;
            } else {
                break;
            }
        }
        self.expect_op(close)?;
        Ok(out)
    }

    /// `set()`, the one call literal_eval accepts.
    fn call_trailer(&mut self, node: Node) -> Result<Node, LitError> {
        match node {
            Node::Name(ref n, _) if n == "set" && self.is_op('(') => {
                self.i += 1;
                self.expect_op(')')?;
                Ok(Node::EmptySet)
            }
            other => Ok(other),
        }
    }

    fn atom(&mut self, depth: usize) -> Result<Node, LitError> {
        let at = self.at();
        let t = self.peek().clone();
        self.i += 1;
        match t {
            T::Num(n) => Ok(Node::Const(match n {
                Num::Int(mag) => make_int(false, mag),
                Num::Float(f) => Lit::Float(f),
                Num::Imag(f) => Lit::Complex(0.0, f),
            })),
            T::Str(s) => {
                let mut parts = vec![(s, at)];
                while let T::Str(s) = self.peek() {
                    parts.push((s.clone(), self.at()));
                    self.i += 1;
                }
                Ok(Node::Strs(parts))
            }
            T::Ellipsis => Ok(Node::Const(Lit::Ellipsis)),
            T::Name(n) => match n.as_str() {
                "True" => Ok(Node::Const(Lit::Bool(true))),
                "False" => Ok(Node::Const(Lit::Bool(false))),
                "None" => Ok(Node::Const(Lit::None)),
                _ => self.call_trailer(Node::Name(n, at)),
            },
            T::Op('(') => {
                if self.is_op(')') {
                    self.i += 1;
                    return Ok(Node::Tuple(Vec::new()));
                }
                let first = self.expr(depth + 1)?;
                if self.is_op(',') {
                    self.i += 1;
                    let mut rest = self.items(')', depth)?;
                    rest.insert(0, first);
                    return Ok(Node::Tuple(rest));
                }
                self.expect_op(')')?;
                // Parentheses leave no trace in the AST: `(set)()` is `set()`.
                self.call_trailer(first)
            }
            T::Op('[') => Ok(Node::List(self.items(']', depth)?)),
            T::Op('{') => {
                if self.is_op('}') {
                    self.i += 1;
                    return Ok(Node::Dict(Vec::new(), at));
                }
                let first = self.expr(depth + 1)?;
                if self.is_op(':') {
                    self.i += 1;
                    let v = self.expr(depth + 1)?;
                    let mut pairs = vec![(first, v)];
                    while self.is_op(',') {
                        self.i += 1;
                        if self.is_op('}') {
                            break;
                        }
                        let k = self.expr(depth + 1)?;
                        self.expect_op(':')?;
                        let v = self.expr(depth + 1)?;
                        pairs.push((k, v));
                    }
                    self.expect_op('}')?;
                    return Ok(Node::Dict(pairs, at));
                }
                let mut rest = if self.is_op(',') {
                    self.i += 1;
                    self.items('}', depth)?
                } else {
                    self.expect_op('}')?;
                    Vec::new()
                };
                rest.insert(0, first);
                Ok(Node::Set(rest, at))
            }
            _ => Err(syntax(at, "invalid syntax")),
        }
    }
}

fn make_int(negative: bool, mut magnitude: Vec<u64>) -> Lit {
    while magnitude.last() == Some(&0) {
        magnitude.pop();
    }
    let value: Option<u128> = match magnitude.len() {
        0 => Some(0),
        1 => Some(magnitude[0] as u128),
        2 => Some(magnitude[0] as u128 | (magnitude[1] as u128) << 64),
        _ => None,
    };
    match value {
        Some(v) if !negative && v <= i128::MAX as u128 => Lit::Int(v as i128),
        Some(v) if negative && v <= i128::MAX as u128 + 1 => Lit::Int((v as i128).wrapping_neg()),
        _ => Lit::BigInt {
            negative,
            magnitude,
        },
    }
}

fn malformed(at: usize) -> LitError {
    err(LitErrorKind::Value, at, "malformed node or string")
}

/// literal_eval's `_convert`.
fn to_lit(node: Node, depth: usize) -> Result<Lit, LitError> {
    if depth > MAX_DEPTH {
        return Err(err(LitErrorKind::Unsupported, 0, "nesting too deep"));
    }
    Ok(match node {
        Node::Const(l) => l,
        Node::Strs(parts) => join_strings(parts)?,
        Node::Tuple(items) => Lit::Tuple(convert_all(items, depth)?),
        Node::List(items) => Lit::List(convert_all(items, depth)?),
        Node::EmptySet => Lit::Set(Vec::new()),
        Node::Set(items, at) => {
            let mut out: Vec<Lit> = Vec::new();
            let mut seen: HashMap<EqKey, usize> = HashMap::new();
            for v in convert_all(items, depth)? {
                let Some(key) = v.eq_key() else {
                    return Err(err(LitErrorKind::Value, at, "unhashable set member"));
                };
                if let std::collections::hash_map::Entry::Vacant(e) = seen.entry(key) {
                    e.insert(out.len());
                    out.push(v);
                }
            }
            Lit::Set(out)
        }
        Node::Dict(pairs, at) => {
            let mut out: Vec<(Lit, Lit)> = Vec::new();
            let mut seen: HashMap<EqKey, usize> = HashMap::new();
            for (k, v) in pairs {
                let k = to_lit(k, depth + 1)?;
                let v = to_lit(v, depth + 1)?;
                let Some(key) = k.eq_key() else {
                    return Err(err(LitErrorKind::Value, at, "unhashable dict key"));
                };
                // dict(zip(keys, values)): the first key stays, the last value wins.
                match seen.get(&key) {
                    Some(&i) => out[i].1 = v,
                    None => {
                        seen.insert(key, out.len());
                        out.push((k, v));
                    }
                }
            }
            Lit::Dict(out)
        }
        Node::Unary(neg, operand, at) => signed(neg, num_const(*operand, at)?),
        Node::BinOp(left, sub, right, at) => {
            let l = match *left {
                Node::Unary(neg, operand, uat) => signed(neg, num_const(*operand, uat)?),
                other => num_const(other, at)?,
            };
            // `isinstance(left, (int, float)) and isinstance(right, complex)`.
            let Lit::Complex(rr, ri) = num_const(*right, at)? else {
                return Err(malformed(at));
            };
            if matches!(l, Lit::Complex(..)) {
                return Err(malformed(at));
            }
            let lr = l
                .to_f64()
                .ok_or_else(|| err(LitErrorKind::Value, at, "int too large for float"))?;
            // Python's float + complex: the real float's imaginary part is +0.0.
            if sub {
                Lit::Complex(lr - rr, 0.0 - ri)
            } else {
                Lit::Complex(lr + rr, 0.0 + ri)
            }
        }
        Node::Name(_, at) => return Err(malformed(at)),
    })
}

fn convert_all(items: Vec<Node>, depth: usize) -> Result<Vec<Lit>, LitError> {
    items.into_iter().map(|n| to_lit(n, depth + 1)).collect()
}

/// `_convert_num`: an int, float or complex constant (not a bool).
fn num_const(node: Node, at: usize) -> Result<Lit, LitError> {
    match node {
        Node::Const(l @ (Lit::Int(_) | Lit::BigInt { .. } | Lit::Float(_) | Lit::Complex(..))) => {
            Ok(l)
        }
        _ => Err(malformed(at)),
    }
}

fn signed(neg: bool, v: Lit) -> Lit {
    if !neg {
        return v;
    }
    match v {
        Lit::Int(i) => match i.checked_neg() {
            Some(n) => Lit::Int(n),
            None => Lit::BigInt {
                negative: false,
                magnitude: vec![0, 1 << 63],
            },
        },
        Lit::BigInt {
            negative,
            magnitude,
        } => make_int(!negative, magnitude),
        Lit::Float(f) => Lit::Float(-f),
        Lit::Complex(a, b) => Lit::Complex(-a, -b),
        other => other,
    }
}

fn join_strings(parts: Vec<(StrVal, usize)>) -> Result<Lit, LitError> {
    let at = parts.first().map_or(0, |p| p.1);
    if parts.iter().any(|p| p.0 == StrVal::Formatted) {
        return Err(malformed(at));
    }
    let n_bytes = parts
        .iter()
        .filter(|p| matches!(p.0, StrVal::Bytes(_)))
        .count();
    if n_bytes != 0 && n_bytes != parts.len() {
        return Err(syntax(at, "cannot mix bytes and nonbytes literals"));
    }
    if n_bytes > 0 {
        let mut out = Vec::new();
        for (p, _) in parts {
            if let StrVal::Bytes(b) = p {
                out.extend_from_slice(&b);
            }
        }
        return Ok(Lit::Bytes(out));
    }
    let mut out = String::new();
    for (p, _) in parts {
        if let StrVal::Str(s) = p {
            out.push_str(&s);
        }
    }
    Ok(Lit::Str(out))
}

// ---------------------------------------------------------------------------------
// Python equality and hashing, for dict keys and set members.

/// A canonical form under Python `==` for the hashable literal values, so that
/// dict keys and set members dedupe in linear time (`1`, `1.0`, `True` and `1+0j`
/// are one key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum EqKey {
    None,
    Ellipsis,
    /// An integral number: negative, magnitude.
    Int(bool, Vec<u64>),
    /// A non-integral (or infinite) float, by bits.
    Float(u64),
    /// A complex with a nonzero imaginary part, by bits (-0.0 read as 0.0).
    Complex(u64, u64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<EqKey>),
    Global(String, String),
}

fn float_key(f: f64) -> EqKey {
    match as_exact(&Lit::Float(f)) {
        Some((neg, mag)) => EqKey::Int(neg, mag),
        None => EqKey::Float(f.to_bits()),
    }
}

impl Lit {
    /// The [`EqKey`] of a hashable value; `None` for unhashable ones (and values
    /// whose equality is not modelled: dtypes, unknown objects).
    pub(crate) fn eq_key(&self) -> Option<EqKey> {
        let zero = |f: f64| if f == 0.0 { 0u64 } else { f.to_bits() };
        Some(match self {
            Lit::None => EqKey::None,
            Lit::Ellipsis => EqKey::Ellipsis,
            Lit::Bool(_) | Lit::Int(_) | Lit::BigInt { .. } => {
                let (neg, mag) = as_exact(self)?;
                EqKey::Int(neg, mag)
            }
            Lit::Float(f) => float_key(*f),
            Lit::Complex(r, i) if *i == 0.0 => float_key(*r),
            Lit::Complex(r, i) => EqKey::Complex(zero(*r), zero(*i)),
            Lit::Str(s) => EqKey::Str(s.clone()),
            Lit::Bytes(b) => EqKey::Bytes(b.clone()),
            Lit::Tuple(t) => EqKey::Tuple(t.iter().map(Lit::eq_key).collect::<Option<_>>()?),
            Lit::Global(m, n) => EqKey::Global(m.clone(), n.clone()),
            Lit::List(_) | Lit::Dict(_) | Lit::Set(_) | Lit::Dtype(_) | Lit::Unknown => {
                return Option::None
            }
        })
    }

    /// `hash(x)` would not raise.
    pub fn is_hashable(&self) -> bool {
        match self {
            Lit::List(_) | Lit::Dict(_) | Lit::Set(_) | Lit::Unknown => false,
            Lit::Tuple(items) => items.iter().all(Lit::is_hashable),
            _ => true,
        }
    }

    /// The value as a float, for numbers (`None` for ints beyond the float range).
    pub fn to_f64(&self) -> Option<f64> {
        match self {
            Lit::Bool(b) => Some(f64::from(u8::from(*b))),
            Lit::Int(i) => Some(*i as f64),
            Lit::BigInt {
                negative,
                magnitude,
            } => {
                let mut v = 0f64;
                for limb in magnitude.iter().rev() {
                    v = v * 18446744073709551616.0 + *limb as f64;
                }
                if v.is_finite() {
                    Some(if *negative { -v } else { v })
                } else {
                    None
                }
            }
            Lit::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// Python's `==` for the values the parser makes (numbers compare across
    /// bool, int, float and complex).
    pub fn py_eq(&self, other: &Lit) -> bool {
        use Lit::*;
        match (self, other) {
            (None, None) | (Ellipsis, Ellipsis) => true,
            (Str(a), Str(b)) => a == b,
            (Bytes(a), Bytes(b)) => a == b,
            (Tuple(a), Tuple(b)) | (List(a), List(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.py_eq(y))
            }
            (Dict(a), Dict(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .all(|(k, v)| b.iter().any(|(k2, v2)| k.py_eq(k2) && v.py_eq(v2)))
            }
            (Set(a), Set(b)) => {
                a.len() == b.len() && a.iter().all(|x| b.iter().any(|y| x.py_eq(y)))
            }
            (Global(m1, n1), Global(m2, n2)) => m1 == m2 && n1 == n2,
            (Complex(r1, i1), Complex(r2, i2)) => r1 == r2 && i1 == i2,
            (Complex(r, i), x) | (x, Complex(r, i)) => *i == 0.0 && Float(*r).py_eq(x),
            (
                Bool(_) | Int(_) | BigInt { .. } | Float(_),
                Bool(_) | Int(_) | BigInt { .. } | Float(_),
            ) => num_eq(self, other),
            _ => false,
        }
    }
}

/// Exact numeric equality of two real numbers.
fn num_eq(a: &Lit, b: &Lit) -> bool {
    match (as_exact(a), as_exact(b)) {
        (Some(x), Some(y)) => x == y,
        _ => match (a, b) {
            (Lit::Float(x), Lit::Float(y)) => x == y,
            _ => false,
        },
    }
}

/// A real number as (negative, magnitude limbs, fraction bits are zero) when it is an
/// integer; `None` for non-integral or non-finite floats.
fn as_exact(v: &Lit) -> Option<(bool, Vec<u64>)> {
    let norm = |neg: bool, mut m: Vec<u64>| {
        while m.last() == Some(&0) {
            m.pop();
        }
        (neg && !m.is_empty(), m)
    };
    match v {
        Lit::Bool(b) => Some(norm(false, vec![u64::from(*b)])),
        Lit::Int(i) => {
            let u = i.unsigned_abs();
            Some(norm(*i < 0, vec![u as u64, (u >> 64) as u64]))
        }
        Lit::BigInt {
            negative,
            magnitude,
        } => Some(norm(*negative, magnitude.clone())),
        Lit::Float(f) => {
            if !f.is_finite() || f.fract() != 0.0 {
                return Option::None;
            }
            let bits = f.abs().to_bits();
            let exp = ((bits >> 52) & 0x7ff) as i64;
            if exp == 0 {
                return Some(norm(false, Vec::new()));
            }
            let mant = (bits & ((1u64 << 52) - 1)) | (1u64 << 52);
            let shift = exp - 1075;
            let mut m = vec![mant];
            if shift < 0 {
                m[0] = mant >> (-shift);
            } else {
                let words = (shift / 64) as usize;
                let bitsh = (shift % 64) as u32;
                let mut out = vec![0u64; words];
                out.push(mant << bitsh);
                if bitsh > 0 {
                    out.push(mant >> (64 - bitsh));
                }
                m = out;
            }
            Some(norm(*f < 0.0, m))
        }
        _ => Option::None,
    }
}

// ---------------------------------------------------------------------------------
// repr()

fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::new();
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

// `repr()` of bytes and floats: the pickle engine's exact CPython forms.
use crate::pickle::pyrepr::{repr_bytes, repr_float};

impl Lit {
    /// Python's `repr()`, near enough for messages.
    pub fn repr(&self) -> String {
        let seq = |items: &[Lit]| items.iter().map(Lit::repr).collect::<Vec<_>>().join(", ");
        match self {
            Lit::None => "None".into(),
            Lit::Bool(b) => if *b { "True" } else { "False" }.into(),
            Lit::Int(i) => i.to_string(),
            Lit::BigInt {
                negative,
                magnitude,
            } => format!(
                "{}0x{}",
                if *negative { "-" } else { "" },
                magnitude
                    .iter()
                    .rev()
                    .enumerate()
                    .map(|(i, l)| if i == 0 {
                        format!("{l:x}")
                    } else {
                        format!("{l:016x}")
                    })
                    .collect::<String>()
            ),
            Lit::Float(f) => repr_float(*f),
            Lit::Complex(a, b) => format!("({}+{}j)", repr_float(*a), repr_float(*b)),
            Lit::Str(s) => repr_str(s),
            Lit::Bytes(b) => repr_bytes(b),
            Lit::Ellipsis => "Ellipsis".into(),
            Lit::Tuple(t) if t.len() == 1 => format!("({},)", t[0].repr()),
            Lit::Tuple(t) => format!("({})", seq(t)),
            Lit::List(t) => format!("[{}]", seq(t)),
            Lit::Set(t) if t.is_empty() => "set()".into(),
            Lit::Set(t) => format!("{{{}}}", seq(t)),
            Lit::Dict(d) => format!(
                "{{{}}}",
                d.iter()
                    .map(|(k, v)| format!("{}: {}", k.repr(), v.repr()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Lit::Dtype(d) => format!("dtype(<{:?} itemsize {}>)", d.type_num, d.itemsize),
            Lit::Global(m, n) => format!("{m}.{n}"),
            Lit::Unknown => "<unknown>".into(),
        }
    }
}
