//! The bits of Python's object protocol numpy's dtype code leans on (`len`,
//! indexing, iteration, truth, the C integer converters), over [`Lit`] values.
//! [`Lit::Unknown`] always yields [`DtypeError::Unsure`]: its behaviour is unknown.

use crate::numpy::dtype::{rej, unsure, DtypeError};
use crate::numpy::literal::Lit;

/// `d[key]` for a dict given as pairs: the last pair whose key is `==` wins.
pub fn dict_get<'a>(pairs: &'a [(Lit, Lit)], key: &Lit) -> Option<&'a Lit> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k.py_eq(key))
        .map(|(_, v)| v)
}

/// `len(obj)`.
pub fn len(obj: &Lit) -> Result<usize, DtypeError> {
    match obj {
        Lit::Str(s) => Ok(s.chars().count()),
        Lit::Bytes(b) => Ok(b.len()),
        Lit::Tuple(t) | Lit::List(t) | Lit::Set(t) => Ok(t.len()),
        Lit::Dict(d) => Ok(d.len()),
        // len(dtype) is its number of fields.
        Lit::Dtype(d) => Ok(d.names().map_or(0, |n| n.len())),
        Lit::Unknown => unsure("len() of an object of unknown type"),
        _ => rej("object has no len()"),
    }
}

/// `obj[i]` for a non-negative int index.
pub fn getitem_index(obj: &Lit, i: usize) -> Result<Lit, DtypeError> {
    let found = match obj {
        Lit::Tuple(t) | Lit::List(t) => t.get(i).cloned(),
        Lit::Str(s) => s.chars().nth(i).map(|c| Lit::Str(c.to_string())),
        Lit::Bytes(b) => b.get(i).map(|&x| Lit::Int(x as i128)),
        Lit::Dict(d) => dict_get(d, &Lit::Int(i as i128)).cloned(),
        Lit::Dtype(_) | Lit::Unknown => {
            return unsure("indexing an object numpy may treat specially")
        }
        _ => return rej("object is not subscriptable"),
    };
    match found {
        Some(v) => Ok(v),
        None => rej("index out of range"),
    }
}

/// `list(obj)`.
pub fn iterate(obj: &Lit) -> Result<Vec<Lit>, DtypeError> {
    match obj {
        Lit::Tuple(t) | Lit::List(t) => Ok(t.clone()),
        Lit::Str(s) => Ok(s.chars().map(|c| Lit::Str(c.to_string())).collect()),
        Lit::Bytes(b) => Ok(b.iter().map(|&x| Lit::Int(x as i128)).collect()),
        Lit::Dict(d) => Ok(d.iter().map(|(k, _)| k.clone()).collect()),
        // A set's iteration order depends on hashes (randomised for str).
        Lit::Set(s) if s.len() <= 1 => Ok(s.clone()),
        Lit::Set(_) => unsure("iteration order of a set"),
        Lit::Dtype(_) | Lit::Unknown => unsure("iterating an object numpy may treat specially"),
        _ => rej("object is not iterable"),
    }
}

/// `bool(obj)`.
pub fn truth(obj: &Lit) -> Result<bool, DtypeError> {
    Ok(match obj {
        Lit::None => false,
        Lit::Bool(b) => *b,
        Lit::Int(i) => *i != 0,
        Lit::BigInt { .. } => true,
        Lit::Float(f) => *f != 0.0,
        Lit::Complex(a, b) => *a != 0.0 || *b != 0.0,
        Lit::Str(s) => !s.is_empty(),
        Lit::Bytes(b) => !b.is_empty(),
        Lit::Tuple(t) | Lit::List(t) | Lit::Set(t) => !t.is_empty(),
        Lit::Dict(d) => !d.is_empty(),
        Lit::Ellipsis | Lit::Dtype(_) | Lit::Global(..) => true,
        Lit::Unknown => return unsure("truth value of an object of unknown type"),
    })
}

/// An exact int (`int` or `bool`) as i128; `None` for other types.
fn int_value(obj: &Lit) -> Option<Result<i128, ()>> {
    match obj {
        Lit::Int(i) => Some(Ok(*i)),
        Lit::Bool(b) => Some(Ok(i128::from(*b))),
        Lit::BigInt { .. } => Some(Err(())),
        _ => None,
    }
}

/// `PyArray_PyIntAsInt`: an int (bools refused) that fits a C int.
pub fn as_c_int(obj: &Lit) -> Result<i32, DtypeError> {
    match obj {
        Lit::Bool(_) => rej("an integer is required"),
        Lit::Unknown => unsure("integer of unknown type"),
        _ => match int_value(obj) {
            Some(Ok(v)) => i32::try_from(v).or_else(|_| rej("integer won't fit into a C int")),
            Some(Err(())) => rej("Python int too large to convert to C long"),
            None => rej("an integer is required"),
        },
    }
}

/// A PyArg_ParseTuple integer: `'i'` (C int, `bits` 32) or `'n'` (Py_ssize_t, 64):
/// ints and bools, with overflow checks.
pub fn arg_int(obj: &Lit, bits: u32) -> Result<i64, DtypeError> {
    if *obj == Lit::Unknown {
        return unsure("integer argument of unknown type");
    }
    match int_value(obj) {
        Some(Ok(v)) => {
            let (lo, hi) = if bits == 32 {
                (i32::MIN as i128, i32::MAX as i128)
            } else {
                (i64::MIN as i128, i64::MAX as i128)
            };
            if v < lo || v > hi {
                rej("integer argument out of range")
            } else {
                Ok(v as i64)
            }
        }
        Some(Err(())) => rej("integer argument out of range"),
        None => rej("integer argument expected"),
    }
}

/// PyArg_ParseTuple `'k'`: any int, reduced modulo 2**64 without overflow checks.
pub fn arg_ulong_mask(obj: &Lit) -> Result<u64, DtypeError> {
    match obj {
        Lit::Int(i) => Ok(*i as u64),
        Lit::Bool(b) => Ok(u64::from(*b)),
        Lit::BigInt {
            negative,
            magnitude,
        } => {
            let low = magnitude.first().copied().unwrap_or(0);
            Ok(if *negative { low.wrapping_neg() } else { low })
        }
        Lit::Unknown => unsure("integer argument of unknown type"),
        _ => rej("integer argument expected"),
    }
}

/// `PyNumber_Check(obj)` followed by `int(obj)`, as `__setstate__` reads a scalar
/// subarray shape.
pub fn number_to_int(obj: &Lit) -> Option<Result<Lit, DtypeError>> {
    match obj {
        Lit::Int(_) | Lit::BigInt { .. } => Some(Ok(obj.clone())),
        Lit::Bool(b) => Some(Ok(Lit::Int(i128::from(*b)))),
        Lit::Float(f) => Some(if f.is_finite() && f.abs() < 1.7e38 {
            Ok(Lit::Int(f.trunc() as i128))
        } else if f.is_finite() {
            unsure("huge float as a shape")
        } else {
            rej("cannot convert float infinity or NaN to integer")
        }),
        Lit::Complex(..) => Some(rej("int() argument must not be complex")),
        Lit::Unknown => Some(unsure("number of unknown type")),
        _ => None,
    }
}

/// Python's `int(obj)` (base 10 for strings).
pub fn python_int(obj: &Lit) -> Result<i128, DtypeError> {
    match obj {
        Lit::Int(i) => Ok(*i),
        Lit::Bool(b) => Ok(i128::from(*b)),
        Lit::Float(f) if f.is_finite() && f.abs() < 1.7e38 => Ok(f.trunc() as i128),
        Lit::Float(_) | Lit::BigInt { .. } => rej("value out of range for numpy"),
        Lit::Str(s) => parse_int_text(s),
        Lit::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => parse_int_text(s),
            Err(_) => rej("invalid literal for int()"),
        },
        Lit::Unknown => unsure("int() of an object of unknown type"),
        _ => rej("int() argument must be a string, a bytes-like object or a real number"),
    }
}

fn parse_int_text(s: &str) -> Result<i128, DtypeError> {
    if !s.is_ascii() {
        return unsure("int() of a non-ASCII string");
    }
    let t = s.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b');
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let ok = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'_');
    if !ok {
        return rej("invalid literal for int() with base 10");
    }
    let clean: String = digits.chars().filter(|&c| c != '_').collect();
    match clean.parse::<i128>() {
        Ok(v) => Ok(if neg { -v } else { v }),
        Err(_) => rej("value out of range for numpy"),
    }
}
