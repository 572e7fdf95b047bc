//! Datetime and timedelta dtype strings (`'M8[ns]'`, `'datetime64[25s]'`,
//! `'m8[7D/2]'`) and the `(unit, num[, den, event])` metadata of their pickles
//! (numpy/_core/src/multiarray/datetime.c). Their item size is always 8; what
//! matters is exactly which spellings numpy accepts.

use crate::numpy::dtype::{rej, unsure, Dtype, DtypeError, TypeNum};
use crate::numpy::literal::Lit;
use crate::numpy::pyops;
use crate::numpy::typestr::strtol;

/// `NPY_DATETIMEUNIT` values (3 is the removed business-day unit).
const Y: i32 = 0;
const W: i32 = 2;
const D: i32 = 4;
const S: i32 = 7;
const AS: i32 = 13;
const GENERIC: i32 = 14;

/// `parse_datetime_unit_from_string`.
fn unit(s: &[u8]) -> Result<i32, DtypeError> {
    Ok(match s {
        b"Y" => Y,
        b"M" => 1,
        b"W" => W,
        b"D" => D,
        b"h" => 5,
        b"m" => 6,
        b"s" => S,
        b"ms" => 8,
        b"us" | b"\xce\xbcs" => 9,
        b"ns" => 10,
        b"ps" => 11,
        b"fs" => 12,
        b"as" => AS,
        b"generic" => GENERIC,
        _ => return rej("Invalid datetime unit in metadata string"),
    })
}

/// `convert_datetime_divisor_to_multiple`: whether `1/den` of `base` is a whole
/// number of a smaller unit.
fn divisor(base: i32, den: i32) -> Result<(), DtypeError> {
    if base == GENERIC {
        return rej("Can't use 'den' divisor with generic units");
    }
    if den == 0 {
        return unsure("numpy divides by zero (SIGFPE) on a zero datetime divisor");
    }
    // _multiples_table; the week row has a fourth, zero, entry numpy reads.
    let totry: &[i32] = match base {
        Y => &[12, 52, 365],
        1 => &[4, 30, 720],
        W => &[7, 168, 10080, 0],
        D => &[24, 1440, 86400],
        5 => &[60, 3600],
        6 => &[60, 60000],
        12 => &[1000],
        AS => &[],
        _ => &[1000, 1_000_000],
    };
    if totry.iter().any(|&t| t % den == 0) {
        Ok(())
    } else {
        rej("divisor is not a multiple of a lower-unit in datetime metadata")
    }
}

/// `parse_datetime_extended_unit_from_string` on `m[1..close]`, where `m[close]`
/// is the `]`.
fn extended_unit(m: &[u8], close: usize) -> Result<(), DtypeError> {
    let bad = || rej("Invalid datetime metadata string");
    let (v, end, overflow) = strtol(m, 1);
    if end != 1 && (overflow || v > i32::MAX as i64 || v < 0) {
        return bad();
    }
    let mut p = end;
    while p < close && m[p] != b'/' {
        p += 1;
    }
    if p == end {
        return bad();
    }
    let base = unit(&m[end..p])?;
    if p < close {
        let (den, dend, _) = strtol(m, p + 1);
        if dend == p + 1 || m.get(dend) != Some(&b']') {
            return bad();
        }
        // `(int)strtol(...)`.
        let den = den as i32;
        if den != 1 {
            divisor(base, den)?;
        }
    }
    Ok(())
}

/// `parse_datetime_metadata_from_metastr`: `""` or `"[...]"`.
fn metastr(m: &[u8]) -> Result<(), DtypeError> {
    if m.is_empty() {
        return Ok(());
    }
    if m.len() < 3 || m[0] != b'[' {
        return rej("Invalid datetime metadata string");
    }
    let Some(close) = m.iter().position(|&c| c == b']') else {
        return rej("Invalid datetime metadata string");
    };
    if close == 1 {
        return rej("Invalid datetime metadata string");
    }
    extended_unit(m, close)?;
    if close + 1 != m.len() {
        return rej("Invalid datetime metadata string");
    }
    Ok(())
}

/// `parse_dtype_from_datetime_typestr`: a fresh datetime or timedelta descriptor.
pub(crate) fn from_typestr(t: &[u8]) -> Result<Dtype, DtypeError> {
    let (kind, rest) = if let Some(r) = t.strip_prefix(b"m8") {
        (TypeNum::Timedelta, r)
    } else if let Some(r) = t.strip_prefix(b"M8") {
        (TypeNum::Datetime, r)
    } else if let Some(r) = t.strip_prefix(b"timedelta64") {
        (TypeNum::Timedelta, r)
    } else if let Some(r) = t.strip_prefix(b"datetime64") {
        (TypeNum::Datetime, r)
    } else {
        return rej("Invalid datetime typestr");
    };
    metastr(rest)?;
    Ok(Dtype::builtin(kind).copy())
}

/// `PyLong_AsLong` into a C int field.
fn long_as_int(v: &Lit) -> Result<i32, DtypeError> {
    Ok(pyops::arg_int(v, 64)? as i32)
}

/// `convert_datetime_metadata_tuple_to_datetime_metadata(tuple, from_pickle=True)`.
pub(crate) fn check_metadata_tuple(t: &Lit) -> Result<(), DtypeError> {
    let Lit::Tuple(t) = t else {
        return match t {
            Lit::Unknown => unsure("datetime metadata of unknown type"),
            _ => rej("Require tuple for tuple to NumPy datetime metadata conversion"),
        };
    };
    if t.len() < 2 || t.len() > 4 {
        return rej("Require tuple of size 2 to 4 for tuple to NumPy datetime metadata conversion");
    }
    let base = match &t[0] {
        Lit::Str(s) => unit(s.as_bytes())?,
        Lit::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => unit(s.as_bytes())?,
            Err(_) => return rej("datetime unit is not UTF-8"),
        },
        Lit::Unknown => return unsure("datetime unit of unknown type"),
        _ => return rej("datetime unit is not a string"),
    };
    let num = long_as_int(&t[1])?;
    if t.len() == 3 {
        return rej("Use (unit, num) with no event");
    }
    let mut den = 1;
    if t.len() == 4 {
        // `event == 1` is only compared (for a warning).
        if t[3] == Lit::Unknown {
            return unsure("datetime event of unknown type");
        }
        den = long_as_int(&t[2])?;
    }
    if num <= 0 || den <= 0 {
        return rej("Invalid tuple values for tuple to NumPy datetime metadata conversion");
    }
    if den != 1 {
        divisor(base, den)?;
    }
    Ok(())
}
