//! Python's text conventions that the protocol-0 opcodes rely on: `int(s, base)`,
//! `float(s)`, `codecs.escape_decode`, `raw-unicode-escape`, UTF-8 with
//! `surrogatepass`. Implemented from CPython's rules, not approximated by Rust's.

/// A parsed Python integer: small values exactly, larger ones as normalized decimal text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PyInt {
    Small(i64),
    /// Decimal digits with an optional leading `-`, no leading zeros.
    Big(String),
}

impl std::fmt::Display for PyInt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PyInt::Small(v) => write!(f, "{v}"),
            PyInt::Big(s) => f.write_str(s),
        }
    }
}

fn is_py_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|b| !is_py_space(*b)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|b| !is_py_space(*b))
        .map_or(start, |i| i + 1);
    &s[start..end.max(start)]
}

/// The C string `_pickle.c` hands to strtol/PyLong_FromString/PyOS_string_to_double:
/// everything before the first NUL byte.
pub fn c_string(s: &[u8]) -> &[u8] {
    match s.iter().position(|&b| b == 0) {
        Some(i) => &s[..i],
        None => s,
    }
}

/// `int(s, base)` for base 10 or base 0 (prefixes; no leading zeros on non-zero decimals).
pub fn parse_int(s: &[u8], base0: bool) -> Option<PyInt> {
    let s = trim(s);
    let (neg, mut rest) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut radix = 10u32;
    if base0 && rest.len() >= 2 && rest[0] == b'0' {
        match rest[1] | 0x20 {
            b'x' => radix = 16,
            b'o' => radix = 8,
            b'b' => radix = 2,
            _ => {}
        }
        if radix != 10 {
            rest = &rest[2..];
            // `0x_1f` is legal: one underscore may follow the prefix.
            if rest.first() == Some(&b'_') {
                rest = &rest[1..];
            }
        }
    }
    if rest.is_empty() || rest[0] == b'_' || rest[rest.len() - 1] == b'_' {
        return None;
    }
    let mut digits: Vec<u8> = Vec::with_capacity(rest.len());
    let mut prev_us = false;
    for &b in rest {
        if b == b'_' {
            if prev_us {
                return None;
            }
            prev_us = true;
            continue;
        }
        prev_us = false;
        let d = (b as char).to_digit(radix)?;
        digits.push(d as u8);
    }
    if base0 && radix == 10 && digits.len() > 1 && digits[0] == 0 && digits.iter().any(|d| *d != 0)
    {
        return None;
    }
    Some(from_digits(&digits, radix, neg))
}

/// C's `strtol(s, &end, 0)` acceptance, used by `_pickle.c` for INT before falling back
/// to `int(s, 0)`: leading zeros mean octal there.
pub fn parse_int_c(s: &[u8]) -> Option<PyInt> {
    let t = trim(s);
    let (neg, rest) = match t.first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if rest.len() > 1 && rest[0] == b'0' && rest.iter().all(|b| (b'0'..=b'7').contains(b)) {
        let digits: Vec<u8> = rest.iter().map(|b| b - b'0').collect();
        return Some(from_digits(&digits, 8, neg));
    }
    None
}

fn from_digits(digits: &[u8], radix: u32, neg: bool) -> PyInt {
    let mut acc: i128 = 0;
    let mut overflow = false;
    for &d in digits {
        match acc
            .checked_mul(radix as i128)
            .and_then(|v| v.checked_add(d as i128))
        {
            Some(v) if v <= i64::MAX as i128 + 1 => acc = v,
            _ => {
                overflow = true;
                break;
            }
        }
    }
    if !overflow {
        let v = if neg { -acc } else { acc };
        if let Ok(small) = i64::try_from(v) {
            return PyInt::Small(small);
        }
    }
    if radix == 10 {
        // Already decimal: the text is the value (linear, however long).
        let start = digits.iter().position(|&d| d != 0).unwrap_or(digits.len());
        let mut s = String::with_capacity(digits.len() - start + 1);
        if neg {
            s.push('-');
        }
        s.extend(digits[start..].iter().map(|&d| char::from(b'0' + d)));
        return PyInt::Big(s);
    }
    if digits.len() > MAX_STR_DIGITS {
        // Power-of-two bases have no digit limit in Python; converting them to decimal
        // is quadratic, so a huge one is kept by size only (as a huge LONG4 is).
        return PyInt::Big(format!("<{}-digit base-{radix} integer>", digits.len()));
    }
    // Arbitrary precision: base-10^9 limbs, little-endian.
    let mut limbs: Vec<u32> = vec![0];
    for &d in digits {
        let mut carry = d as u64;
        for limb in limbs.iter_mut() {
            let v = *limb as u64 * radix as u64 + carry;
            *limb = (v % 1_000_000_000) as u32;
            carry = v / 1_000_000_000;
        }
        while carry > 0 {
            limbs.push((carry % 1_000_000_000) as u32);
            carry /= 1_000_000_000;
        }
    }
    PyInt::Big(limbs_to_decimal(&limbs, neg))
}

fn limbs_to_decimal(limbs: &[u32], neg: bool) -> String {
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    let mut iter = limbs.iter().rev().skip_while(|l| **l == 0).peekable();
    if iter.peek().is_none() {
        return "0".to_string();
    }
    let mut first = true;
    for l in iter {
        if first {
            s.push_str(&l.to_string());
            first = false;
        } else {
            s.push_str(&format!("{l:09}"));
        }
    }
    s
}

/// `sys.int_info.default_max_str_digits`: the most decimal digits Python converts.
pub const MAX_STR_DIGITS: usize = 4300;

/// Largest LONG1/LONG4 payload converted to decimal; Python itself refuses to print
/// ints above 4300 digits (`sys.int_info.str_digits_check_threshold`).
pub const MAX_LONG_DECIMAL_BYTES: usize = 1786;

/// `pickle.decode_long`: little-endian two's complement.
pub fn decode_long(bytes: &[u8]) -> Option<PyInt> {
    if bytes.is_empty() {
        return Some(PyInt::Small(0));
    }
    if bytes.len() <= 8 {
        let mut buf = if bytes[bytes.len() - 1] & 0x80 != 0 {
            [0xffu8; 8]
        } else {
            [0u8; 8]
        };
        buf[..bytes.len()].copy_from_slice(bytes);
        return Some(PyInt::Small(i64::from_le_bytes(buf)));
    }
    if bytes.len() > MAX_LONG_DECIMAL_BYTES {
        return None;
    }
    let neg = bytes[bytes.len() - 1] & 0x80 != 0;
    let mut mag: Vec<u8> = bytes.to_vec();
    if neg {
        // Two's complement negate: invert and add one.
        let mut carry = 1u16;
        for b in mag.iter_mut() {
            let v = (!*b) as u16 + carry;
            *b = v as u8;
            carry = v >> 8;
        }
    }
    // Big-endian base-256 digits into base-10^9 limbs.
    let mut limbs: Vec<u32> = vec![0];
    for &byte in mag.iter().rev() {
        let mut carry = byte as u64;
        for limb in limbs.iter_mut() {
            let v = *limb as u64 * 256 + carry;
            *limb = (v % 1_000_000_000) as u32;
            carry = v / 1_000_000_000;
        }
        while carry > 0 {
            limbs.push((carry % 1_000_000_000) as u32);
            carry /= 1_000_000_000;
        }
    }
    Some(PyInt::Big(limbs_to_decimal(&limbs, neg)))
}

/// `float(s)`: decimal floats, `inf`/`infinity`/`nan` with optional sign, underscores.
pub fn parse_float(s: &[u8]) -> Option<f64> {
    let t = trim(s);
    let txt = std::str::from_utf8(t).ok()?;
    let lower = txt.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    if lower.len() - body.len() > 1 {
        return None;
    }
    let neg = lower.starts_with('-');
    let special = match body {
        "inf" | "infinity" => Some(f64::INFINITY),
        "nan" => Some(f64::NAN),
        _ => None,
    };
    if let Some(v) = special {
        return Some(if neg { -v } else { v });
    }
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_digit() || b"._e+-".contains(&b))
    {
        return None;
    }
    if body.contains("__") || body.starts_with('_') || body.ends_with('_') {
        return None;
    }
    lower.replace('_', "").parse::<f64>().ok()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("invalid \\x escape at position {0}")]
    BadHexEscape(usize),
    #[error("trailing \\ in string")]
    TrailingBackslash,
    #[error("truncated \\uXXXX escape at position {0}")]
    BadUnicodeEscape(usize),
    #[error("\\Uxxxxxxxx out of range at position {0}")]
    UnicodeOutOfRange(usize),
    #[error("invalid UTF-8")]
    BadUtf8,
}

/// `codecs.escape_decode` (`PyBytes_DecodeEscape`).
pub fn escape_decode(s: &[u8]) -> Result<Vec<u8>, TextError> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let Some(&e) = s.get(i) else {
            return Err(TextError::TrailingBackslash);
        };
        i += 1;
        match e {
            b'\n' => {}
            b'\\' => out.push(b'\\'),
            b'\'' => out.push(b'\''),
            b'"' => out.push(b'"'),
            b'b' => out.push(0x08),
            b'f' => out.push(0x0c),
            b't' => out.push(b'\t'),
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b'v' => out.push(0x0b),
            b'a' => out.push(0x07),
            b'0'..=b'7' => {
                let mut v = (e - b'0') as u32;
                for _ in 0..2 {
                    match s.get(i) {
                        Some(&d @ b'0'..=b'7') => {
                            v = v * 8 + (d - b'0') as u32;
                            i += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            b'x' => {
                let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
                match (hex(s.get(i)), hex(s.get(i + 1))) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 2;
                    }
                    _ => return Err(TextError::BadHexEscape(i - 2)),
                }
            }
            _ => {
                out.push(b'\\');
                i -= 1;
            }
        }
    }
    Ok(out)
}

/// `bytes.decode('raw-unicode-escape')` as code points.
pub fn raw_unicode_escape_decode(s: &[u8]) -> Result<Vec<u32>, TextError> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let c = s[i];
        if c != b'\\' {
            out.push(c as u32);
            i += 1;
            continue;
        }
        // Only a backslash that is not itself escaped (odd run) can start \u / \U.
        let run_start = i;
        while i < s.len() && s[i] == b'\\' {
            i += 1;
        }
        let run = i - run_start;
        let next = s.get(i).copied();
        let width = match next {
            Some(b'u') if run % 2 == 1 => 4,
            Some(b'U') if run % 2 == 1 => 8,
            _ => 0,
        };
        if width == 0 {
            out.extend(std::iter::repeat_n(b'\\' as u32, run));
            continue;
        }
        out.extend(std::iter::repeat_n(b'\\' as u32, run - 1));
        let esc_pos = i - 1;
        i += 1;
        let mut v: u32 = 0;
        for _ in 0..width {
            match s.get(i).and_then(|b| (*b as char).to_digit(16)) {
                Some(d) => {
                    v = v * 16 + d;
                    i += 1;
                }
                None => return Err(TextError::BadUnicodeEscape(esc_pos)),
            }
        }
        if v > 0x10FFFF {
            return Err(TextError::UnicodeOutOfRange(esc_pos));
        }
        out.push(v);
    }
    Ok(out)
}

/// UTF-8 decoding with `surrogatepass` (what both unpicklers use for BINUNICODE*).
pub fn utf8_surrogatepass(s: &[u8]) -> Result<Vec<u32>, TextError> {
    if let Ok(t) = std::str::from_utf8(s) {
        return Ok(t.chars().map(|c| c as u32).collect());
    }
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let b0 = s[i] as u32;
        let cont = |j: usize| -> Result<u32, TextError> {
            match s.get(j) {
                Some(b) if b & 0xC0 == 0x80 => Ok((*b & 0x3F) as u32),
                _ => Err(TextError::BadUtf8),
            }
        };
        if b0 < 0x80 {
            out.push(b0);
            i += 1;
        } else if (0xC2..0xE0).contains(&b0) {
            out.push(((b0 & 0x1F) << 6) | cont(i + 1)?);
            i += 2;
        } else if (0xE0..0xF0).contains(&b0) {
            let v = ((b0 & 0x0F) << 12) | (cont(i + 1)? << 6) | cont(i + 2)?;
            if v < 0x800 {
                return Err(TextError::BadUtf8);
            }
            out.push(v);
            i += 3;
        } else if (0xF0..0xF5).contains(&b0) {
            let v = ((b0 & 0x07) << 18) | (cont(i + 1)? << 12) | (cont(i + 2)? << 6) | cont(i + 3)?;
            if !(0x10000..=0x10FFFF).contains(&v) {
                return Err(TextError::BadUtf8);
            }
            out.push(v);
            i += 4;
        } else {
            return Err(TextError::BadUtf8);
        }
    }
    Ok(out)
}

/// Code points to a Rust string; surrogates (legal in Python `str`) become U+FFFD.
pub fn codepoints_to_string(cps: &[u32]) -> String {
    cps.iter()
        .map(|c| char::from_u32(*c).unwrap_or('\u{FFFD}'))
        .collect()
}

/// UTF-8 with lone surrogates written as their 3-byte forms (Python's `surrogatepass`).
pub fn encode_surrogatepass(cps: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    for &c in cps {
        match char::from_u32(c) {
            Some(ch) => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
            }
            None => {
                out.push(0xE0 | ((c >> 12) & 0x0F) as u8);
                out.push(0x80 | ((c >> 6) & 0x3F) as u8);
                out.push(0x80 | (c & 0x3F) as u8);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints_follow_python_rules() {
        assert_eq!(parse_int(b" 12\n", false), Some(PyInt::Small(12)));
        assert_eq!(parse_int(b"1_000", false), Some(PyInt::Small(1000)));
        assert_eq!(parse_int(b"1__0", false), None);
        assert_eq!(parse_int(b"0x10", true), Some(PyInt::Small(16)));
        assert_eq!(parse_int(b"012", true), None);
        assert_eq!(parse_int_c(b"012\n"), Some(PyInt::Small(10)));
        assert_eq!(parse_int(b"000", true), Some(PyInt::Small(0)));
        assert_eq!(
            parse_int(b"-1267650600228229401496703205376", false),
            Some(PyInt::Big("-1267650600228229401496703205376".into()))
        );
    }

    #[test]
    fn decode_long_matches_pickle() {
        assert_eq!(decode_long(b""), Some(PyInt::Small(0)));
        assert_eq!(decode_long(b"\xff"), Some(PyInt::Small(-1)));
        assert_eq!(decode_long(b"\x00\x80"), Some(PyInt::Small(-32768)));
        assert_eq!(decode_long(b"\x00\x80\x00"), Some(PyInt::Small(32768)));
        let mut two_64 = vec![0u8; 8];
        two_64.push(1);
        assert_eq!(
            decode_long(&two_64),
            Some(PyInt::Big("18446744073709551616".into()))
        );
        let mut neg = vec![0u8; 12];
        neg.push(0xf0);
        // -(2**100) = 0xf0 << 96 in 13 bytes two's complement
        assert_eq!(
            decode_long(&neg),
            Some(PyInt::Big("-1267650600228229401496703205376".into()))
        );
    }

    #[test]
    fn escape_decode_matches_codecs() {
        assert_eq!(
            escape_decode(br"a\nb\x41\101\q").ok(),
            Some(b"a\nbAA\\q".to_vec())
        );
        assert_eq!(escape_decode(b"a\\"), Err(TextError::TrailingBackslash));
        assert!(escape_decode(br"\x4").is_err());
    }

    #[test]
    fn raw_unicode_escape_counts_backslashes() {
        assert_eq!(
            raw_unicode_escape_decode(br"a\u0041").ok(),
            Some(vec![97, 65])
        );
        assert_eq!(
            raw_unicode_escape_decode(br"\\u0041").ok().map(|v| v.len()),
            Some(7)
        );
        assert!(raw_unicode_escape_decode(br"\u00").is_err());
    }

    #[test]
    fn surrogatepass_accepts_lone_surrogates() {
        assert_eq!(utf8_surrogatepass(b"\xed\xa0\x80").ok(), Some(vec![0xD800]));
        assert!(utf8_surrogatepass(b"\xff").is_err());
    }

    #[test]
    fn floats_follow_python_rules() {
        assert_eq!(parse_float(b"1.5"), Some(1.5));
        assert_eq!(parse_float(b"-inf"), Some(f64::NEG_INFINITY));
        assert!(parse_float(b"nan").is_some_and(f64::is_nan));
        assert_eq!(parse_float(b"1e5"), Some(1e5));
        assert_eq!(parse_float(b"abc"), None);
    }
}
