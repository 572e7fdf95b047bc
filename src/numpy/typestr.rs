//! `_convert_from_str`: what `numpy.dtype('...')` makes of a string. numpy works on
//! the UTF-8 bytes with C `strtol`, falls back to its `sctypeDict` of names, and
//! hands strings with commas or leading digits to `_commastring`.

use crate::numpy::commastring;
use crate::numpy::datetime;
use crate::numpy::dtype::{rej, Dtype, DtypeError, TypeNum};

fn not_understood<T>(s: &str) -> Result<T, DtypeError> {
    rej(format!("data type {s:?} not understood"))
}

/// C `strtol(s + start, &end, 10)` on a NUL-terminated string: leading white space
/// and a sign are accepted; overflow saturates to `LONG_MIN`/`LONG_MAX` with
/// `ERANGE`. Returns (value, end offset, overflowed); `end == start` when no digits.
pub(crate) fn strtol(s: &[u8], start: usize) -> (i64, usize, bool) {
    let mut i = start;
    while matches!(s.get(i), Some(b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')) {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let digits_at = i;
    let mut v: i128 = 0;
    let mut overflow = false;
    while let Some(&c) = s.get(i) {
        if !c.is_ascii_digit() {
            break;
        }
        v = v * 10 + i128::from(c - b'0');
        if v > i64::MAX as i128 + 1 {
            overflow = true;
            v = i64::MAX as i128 + 1;
        }
        i += 1;
    }
    if i == digits_at {
        return (0, start, false);
    }
    let v = if neg { -v } else { v };
    if v > i64::MAX as i128 {
        return (i64::MAX, i, true);
    }
    if overflow {
        return (if neg { i64::MIN } else { i64::MAX }, i, true);
    }
    (v as i64, i, false)
}

fn is_byteorder(c: u8) -> bool {
    matches!(c, b'>' | b'<' | b'|' | b'=')
}

/// `_check_for_commastring`.
fn is_commastring(t: &[u8]) -> bool {
    let len = t.len();
    if t[0].is_ascii_digit() || (len > 1 && is_byteorder(t[0]) && t[1].is_ascii_digit()) {
        return true;
    }
    if (len > 1 && t[0] == b'(' && t[1] == b')')
        || (len > 3 && is_byteorder(t[0]) && t[1] == b'(' && t[2] == b')')
    {
        return true;
    }
    let mut sq = 0i64;
    for &c in t {
        match c {
            b',' if sq == 0 => return true,
            b'[' => sq += 1,
            b']' => sq -= 1,
            _ => {}
        }
    }
    false
}

/// `is_datetime_typestr`.
fn is_datetime_typestr(t: &[u8]) -> bool {
    t.len() >= 2 && t[1] == b'8' && (t[0] == b'M' || t[0] == b'm')
        || t.starts_with(b"datetime64")
        || t.starts_with(b"timedelta64")
}

/// One-letter type codes (`_letter_to_num`), and whether the size is the same on all
/// 64-bit platforms.
fn letter(c: u8) -> Option<(TypeNum, bool)> {
    use TypeNum::*;
    Some(match c {
        b'?' => (Bool, true),
        b'b' => (Byte, true),
        b'B' => (UByte, true),
        b'h' => (Short, true),
        b'H' => (UShort, true),
        b'i' => (Int, true),
        b'I' => (UInt, true),
        b'l' => (Long, false),
        b'L' => (ULong, false),
        b'q' => (LongLong, true),
        b'Q' => (ULongLong, true),
        b'e' => (Half, true),
        b'f' => (Float, true),
        b'd' => (Double, true),
        b'g' => (LongDouble, false),
        b'F' => (CFloat, true),
        b'D' => (CDouble, true),
        b'G' => (CLongDouble, false),
        b'O' => (Object, true),
        b'S' => (String, true),
        b'U' => (Unicode, true),
        b'V' => (Void, true),
        b'M' => (Datetime, true),
        b'm' => (Timedelta, true),
        // intp and uintp (`long` on Linux, `long long` on Windows: 8 bytes both).
        b'n' | b'p' => (Long, true),
        b'N' | b'P' => (ULong, true),
        _ => return None,
    })
}

/// `PyArray_TypestrConvert`: kind letter and byte size (`'f'`, 8).
fn sized(kind: u8, size: i64) -> Option<(TypeNum, bool)> {
    use TypeNum::*;
    Some(match (kind, size) {
        (b'b', 1) => (Bool, true),
        (b'i', 1) => (Byte, true),
        (b'i', 2) => (Short, true),
        (b'i', 4) => (Int, true),
        (b'i', 8) => (Long, true),
        (b'u', 1) => (UByte, true),
        (b'u', 2) => (UShort, true),
        (b'u', 4) => (UInt, true),
        (b'u', 8) => (ULong, true),
        (b'f', 2) => (Half, true),
        (b'f', 4) => (Float, true),
        (b'f', 8) => (Double, true),
        // Only where long double is 16 bytes (x86-64 and aarch64 Linux).
        (b'f', 16) => (LongDouble, false),
        (b'c', 8) => (CFloat, true),
        (b'c', 16) => (CDouble, true),
        (b'c', 32) => (CLongDouble, false),
        // 'O4' and 'O8' both mean the object dtype (deprecated).
        (b'O', 4 | 8) => (Object, true),
        (b'M', 8) => (Datetime, true),
        (b'm', 8) => (Timedelta, true),
        _ => return None,
    })
}

/// The scalar types that are attributes of the `numpy` module.
pub(crate) fn scalar_type(name: &str) -> Option<(TypeNum, bool)> {
    use TypeNum::*;
    Some(match name {
        "bool" | "bool_" => (Bool, true),
        "byte" | "int8" => (Byte, true),
        "ubyte" | "uint8" => (UByte, true),
        "short" | "int16" => (Short, true),
        "ushort" | "uint16" => (UShort, true),
        "intc" | "int32" => (Int, true),
        "uintc" | "uint32" => (UInt, true),
        "int_" | "intp" | "int64" => (Long, true),
        "uint" | "uintp" | "uint64" => (ULong, true),
        "long" => (Long, false),
        "ulong" => (ULong, false),
        "longlong" => (LongLong, true),
        "ulonglong" => (ULongLong, true),
        "half" | "float16" => (Half, true),
        "single" | "float32" => (Float, true),
        "double" | "float64" => (Double, true),
        "longdouble" | "float128" => (LongDouble, false),
        "csingle" | "complex64" => (CFloat, true),
        "cdouble" | "complex128" => (CDouble, true),
        "clongdouble" | "complex256" => (CLongDouble, false),
        "object_" => (Object, true),
        "bytes_" => (String, true),
        "str_" => (Unicode, true),
        "void" => (Void, true),
        "datetime64" => (Datetime, true),
        "timedelta64" => (Timedelta, true),
        _ => return None,
    })
}

/// numpy's `sctypeDict` (the names `numpy.dtype` accepts), as of numpy 2.4.
fn type_dict(name: &str) -> Option<(TypeNum, bool)> {
    use TypeNum::*;
    Some(match name {
        "a" | "bytes" => (String, true),
        "str" | "unicode" => (Unicode, true),
        "object" => (Object, true),
        "float" => (Double, true),
        "complex" => (CDouble, true),
        "int" => (Long, true),
        n => return scalar_type(n),
    })
}

/// `numpy.dtype(s)`, `align` applying to the structured dtypes comma strings make.
pub(crate) fn convert_str(s: &str, align: bool, depth: usize) -> Result<Dtype, DtypeError> {
    let full = s.as_bytes();
    if full.is_empty() {
        return not_understood(s);
    }
    if is_commastring(full) {
        return commastring::convert(s, align, depth);
    }
    let (endian, t) = match full[0] {
        b'>' | b'<' | b'=' => (full[0], &full[1..]),
        b'|' => (b'=', &full[1..]),
        _ => (b'=', full),
    };
    if t.is_empty() {
        return not_understood(s);
    }
    // Byte order: '<' is native here, so only '>' changes anything.
    let swapped = endian == b'>';
    if is_datetime_typestr(t) {
        let mut d = datetime::from_typestr(t)?;
        if swapped {
            d.byteorder = '>';
        }
        return Ok(d);
    }

    enum Check {
        Type(TypeNum, bool),
        /// `NPY_NOTYPE + 10`: not a type code, try the names.
        Names,
        /// A one-character code.
        Char(u8),
    }
    let mut elsize: i64 = 0;
    let check = if t.len() == 1 {
        Check::Char(t[0])
    } else {
        let (v, end, overflow) = strtol(t, 1);
        if v > i32::MAX as i64 || v < 0 {
            return not_understood(s);
        }
        elsize = v;
        // numpy tests `type == typeend`, never true: "some parsing happened" always
        // holds, so only ERANGE and "the rest is consumed" matter.
        let consumed = end >= t.len() || t[end] == 0;
        let parsed = !overflow && consumed;
        if parsed && end == t.len() {
            match t[0] {
                b'S' | b'a' => Check::Type(TypeNum::String, true),
                b'U' => {
                    if elsize > (i32::MAX / 4) as i64 {
                        return not_understood(s);
                    }
                    elsize *= 4;
                    Check::Type(TypeNum::Unicode, true)
                }
                b'V' => Check::Type(TypeNum::Void, true),
                kind => {
                    let c = if elsize == 0 {
                        Check::Names
                    } else {
                        match sized(kind, elsize) {
                            Some((t, p)) => Check::Type(t, p),
                            None => Check::Names,
                        }
                    };
                    elsize = 0;
                    c
                }
            }
        } else if parsed {
            // An embedded NUL right after the digits.
            return not_understood(s);
        } else {
            Check::Names
        }
    };

    // PyArray_DescrFromType.
    let found: Option<Dtype> = match check {
        Check::Type(t, portable) => {
            let mut d = Dtype::builtin(t);
            d.portable &= portable;
            Some(d)
        }
        Check::Char(b'T') => {
            let mut d = Dtype::builtin(TypeNum::VString);
            d.builtin = false;
            Some(d)
        }
        Check::Char(c) if c < 24 => TypeNum::from_number(u32::from(c)).map(Dtype::builtin),
        Check::Char(b'c') => {
            // NPY_CHARLTR: a fresh 'S1'.
            let mut d = Dtype::builtin(TypeNum::String).copy();
            d.itemsize = 1;
            Some(d)
        }
        Check::Char(c) => letter(c).map(|(t, portable)| {
            let mut d = Dtype::builtin(t);
            d.portable &= portable;
            d
        }),
        Check::Names => None,
    };
    let Some(mut d) = found else {
        // The whole string, prefix included, is looked up in sctypeDict.
        return match type_dict(s) {
            // ('a' draws a DeprecationWarning.) The scalar type's singleton
            // descriptor, without the byte-order handling below.
            Some((t, portable)) => {
                let mut d = Dtype::builtin(t);
                d.portable &= portable;
                Ok(d)
            }
            None => {
                let removed = [
                    "int0", "uint0", "void0", "object0", "str0", "bytes0", "bool8",
                ];
                let stem = t.split(|&b| b == 0).next().unwrap_or(t);
                if removed.iter().any(|r| r.as_bytes() == stem) {
                    rej(format!("Alias {s:?} was removed in NumPy 2.0"))
                } else {
                    not_understood(s)
                }
            }
        };
    };
    if d.is_unsized() && d.itemsize != elsize {
        d = d.copy();
        d.itemsize = elsize;
    }
    if swapped && d.byteorder != '|' && d.byteorder != '>' {
        d = d.copy();
        d.byteorder = '>';
    }
    Ok(d)
}
