//! Python's `repr()` of the values `pickletools.genops` yields as opcode arguments, so that
//! `picklegate disasm` prints byte-for-byte what `python -m pickletools` prints.

use super::decode::{Arg, Op};
use super::op::ArgKind;
use super::pytext::{self, PyInt};

/// Unicode characters `str.isprintable()` rejects. Exact for ASCII and Latin-1 and for
/// the separator/format blocks; unassigned code points elsewhere are treated as printable
/// (Python's table is not reproduced here; see the README's limitations).
fn is_printable(c: u32) -> bool {
    match c {
        0x20..=0x7e => true,
        0..=0x1f | 0x7f..=0xa0 | 0xad => false,
        0x0600..=0x0605 | 0x061c | 0x06dd | 0x070f | 0x180e => false,
        0x1680 | 0x2000..=0x200f | 0x2028..=0x202f | 0x205f..=0x2064 | 0x2066..=0x206f => false,
        0x3000 | 0xd800..=0xdfff | 0xe000..=0xf8ff | 0xfeff | 0xfff9..=0xfffb | 0xfffe | 0xffff => {
            false
        }
        0x110bd | 0x1bca0..=0x1bca3 | 0x1d173..=0x1d17a | 0xe0001 | 0xe0020..=0xe007f => false,
        0xf0000..=0x10ffff => false,
        _ => true,
    }
}

/// `repr(str)` from code points.
pub fn repr_str(cps: &[u32]) -> String {
    let has_sq = cps.contains(&(b'\'' as u32));
    let has_dq = cps.contains(&(b'"' as u32));
    let quote = if has_sq && !has_dq { '"' } else { '\'' };
    let mut s = String::with_capacity(cps.len() + 2);
    s.push(quote);
    for &c in cps {
        match c {
            0x5c => s.push_str("\\\\"),
            0x09 => s.push_str("\\t"),
            0x0a => s.push_str("\\n"),
            0x0d => s.push_str("\\r"),
            _ if c == quote as u32 => {
                s.push('\\');
                s.push(quote);
            }
            _ if is_printable(c) => s.push(char::from_u32(c).unwrap_or('\u{FFFD}')),
            _ if c < 0x100 => s.push_str(&format!("\\x{c:02x}")),
            _ if c < 0x10000 => s.push_str(&format!("\\u{c:04x}")),
            _ => s.push_str(&format!("\\U{c:08x}")),
        }
    }
    s.push(quote);
    s
}

/// `repr(bytes)`.
pub fn repr_bytes(b: &[u8]) -> String {
    let has_sq = b.contains(&b'\'');
    let has_dq = b.contains(&b'"');
    let quote = if has_sq && !has_dq { b'"' } else { b'\'' };
    let mut s = String::with_capacity(b.len() + 3);
    s.push('b');
    s.push(quote as char);
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'\t' => s.push_str("\\t"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            _ if c == quote => {
                s.push('\\');
                s.push(quote as char);
            }
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push(quote as char);
    s
}

/// `repr(float)` (`float_repr_style == 'short'`).
pub fn repr_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let sci = format!("{:e}", x);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.push_str(&"0".repeat(int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.push_str(&"0".repeat((-exp - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    }
    out
}

fn repr_int(v: &PyInt) -> String {
    v.to_string()
}

/// The argument of `op` exactly as `repr(arg)` of `pickletools.genops` prints it.
/// `Ok(None)` for opcodes without argument; `Err` where pickletools itself raises.
pub fn pickletools_arg_repr(op: &Op<'_>) -> Result<Option<String>, String> {
    let kind = op.code.info().arg;
    let r = match (kind, op.arg) {
        (ArgKind::None, _) => return Ok(None),
        (_, Arg::Int(v)) => v.to_string(),
        (_, Arg::U64(v)) => v.to_string(),
        (_, Arg::Float(v)) => repr_float(v),
        (ArgKind::DecimalNlShort, Arg::Line(l)) => match l {
            b"00" => "False".into(),
            b"01" => "True".into(),
            _ => repr_int(&pytext::parse_int(l, false).ok_or("invalid literal for int()")?),
        },
        (ArgKind::DecimalNlLong, Arg::Line(l)) => {
            let l = l.strip_suffix(b"L").unwrap_or(l);
            repr_int(&pytext::parse_int(l, false).ok_or("invalid literal for int()")?)
        }
        (ArgKind::FloatNl, Arg::Line(l)) => {
            repr_float(pytext::parse_float(l).ok_or("could not convert string to float")?)
        }
        (ArgKind::StringNl, Arg::Line(l)) => repr_str(&stringnl(l, true)?),
        (ArgKind::StringNlNoEscape, Arg::Line(l)) => repr_str(&stringnl(l, false)?),
        (ArgKind::StringNlNoEscapePair, Arg::Pair(a, b)) => {
            let mut v = stringnl(a, false)?;
            v.push(b' ' as u32);
            v.extend(stringnl(b, false)?);
            repr_str(&v)
        }
        (ArgKind::UnicodeStringNl, Arg::Line(l)) => {
            repr_str(&pytext::raw_unicode_escape_decode(l).map_err(|e| e.to_string())?)
        }
        (ArgKind::String1 | ArgKind::String4, Arg::Data(d)) => {
            repr_str(&d.iter().map(|b| *b as u32).collect::<Vec<_>>())
        }
        (ArgKind::Bytes1 | ArgKind::Bytes4 | ArgKind::Bytes8, Arg::Data(d)) => repr_bytes(d),
        (ArgKind::ByteArray8, Arg::Data(d)) => format!("bytearray({})", repr_bytes(d)),
        (
            ArgKind::UnicodeString1 | ArgKind::UnicodeString4 | ArgKind::UnicodeString8,
            Arg::Data(d),
        ) => repr_str(&pytext::utf8_surrogatepass(d).map_err(|e| e.to_string())?),
        (ArgKind::Long1 | ArgKind::Long4, Arg::Long(d)) => match pytext::decode_long(d) {
            Some(v) => repr_int(&v),
            None => {
                return Err("Exceeds the limit (4300 digits) for integer string conversion".into())
            }
        },
        _ => return Err("argument does not match its opcode".into()),
    };
    Ok(Some(r))
}

/// `pickletools.read_stringnl(decode=True, stripquotes=...)`.
fn stringnl(l: &[u8], stripquotes: bool) -> Result<Vec<u32>, String> {
    let mut data = l;
    if stripquotes {
        let q = match data.first() {
            Some(q @ (b'"' | b'\'')) => *q,
            _ => return Err(format!("no string quotes around {}", repr_bytes(data))),
        };
        if data.last() != Some(&q) {
            return Err("string quote not found at both ends".into());
        }
        data = if data.len() >= 2 {
            &data[1..data.len() - 1]
        } else {
            &[]
        };
    }
    let decoded = pytext::escape_decode(data).map_err(|e| e.to_string())?;
    if !decoded.is_ascii() {
        return Err("'ascii' codec can't decode".into());
    }
    Ok(decoded.iter().map(|b| *b as u32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        assert_eq!(repr_float(0.1), "0.1");
        assert_eq!(repr_float(1e16), "1e+16");
        assert_eq!(repr_float(1e15), "1000000000000000.0");
        assert_eq!(repr_float(1e-5), "1e-05");
        assert_eq!(repr_float(0.0001), "0.0001");
        assert_eq!(repr_float(-0.0), "-0.0");
        assert_eq!(repr_float(1.5), "1.5");
        assert_eq!(repr_float(123456789012345678.0), "1.2345678901234568e+17");
        assert_eq!(repr_float(f64::NEG_INFINITY), "-inf");
    }

    #[test]
    fn str_and_bytes_repr_match_python() {
        let cps = |s: &str| s.chars().map(|c| c as u32).collect::<Vec<_>>();
        assert_eq!(repr_str(&cps("it's")), "\"it's\"");
        assert_eq!(repr_str(&cps("a'b\"")), "'a\\'b\"'");
        assert_eq!(repr_str(&cps("\u{e9}\n\u{0}")), "'\u{e9}\\n\\x00'");
        assert_eq!(repr_str(&[0xd800]), "'\\ud800'");
        assert_eq!(repr_bytes(b"a\x00'"), "b\"a\\x00'\"");
        assert_eq!(repr_bytes(b"\\"), "b'\\\\'");
    }
}
