//! NumPy `.npy` headers: an array whose dtype has objects stores its data as a
//! pickle (read by `numpy.load(allow_pickle=True)`); any other dtype is raw data.
//!
//! The header is read the way `numpy.lib.format.read_array` reads it (magic,
//! version, length, `ast.literal_eval` of the text, `descr_to_dtype`), so that
//! "holds objects" is numpy's verdict, not a guess from the text.

use crate::numpy::dtype;
use crate::numpy::literal::{self, Lit};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// Offset of the data (the pickle for object arrays).
    pub data_offset: u64,
    /// The header's `descr`, as Python would print it.
    pub descr: String,
    /// `dtype.hasobject`: the data is a pickle.
    pub has_object: bool,
    /// `dtype.itemsize` (negative for some malformed structured dtypes).
    pub itemsize: i64,
    /// `false` when the item size differs between numpy's 64-bit platforms.
    pub portable: bool,
    /// The shape as Python ints. numpy multiplies them in int64 before reading any
    /// data, which wraps for entries up to 2**64 - 1 and fails beyond.
    pub shape: Vec<i128>,
    pub fortran_order: bool,
    pub version: (u8, u8),
}

const MAGIC: &[u8] = b"\x93NUMPY";

pub fn sniff(head: &[u8]) -> bool {
    head.starts_with(MAGIC)
}

/// Where the header text starts and how long it is, from the first 12 bytes.
fn header_span(head: &[u8]) -> Result<((u8, u8), usize, usize), String> {
    if !sniff(head) {
        return Err("not an .npy file".into());
    }
    let (Some(&major), Some(&minor)) = (head.get(6), head.get(7)) else {
        return Err("truncated .npy magic".into());
    };
    let wide = match (major, minor) {
        (1, 0) => false,
        (2, 0) | (3, 0) => true,
        v => {
            return Err(format!(
                "we only support format version (1,0), (2,0), and (3,0), not {v:?}"
            ))
        }
    };
    let (len, start) = if wide {
        match head.get(8..12) {
            Some(b) => (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12),
            None => return Err("truncated .npy header length".into()),
        }
    } else {
        match head.get(8..10) {
            Some(b) => (u16::from_le_bytes([b[0], b[1]]) as usize, 10),
            None => return Err("truncated .npy header length".into()),
        }
    };
    Ok(((major, minor), start, len))
}

/// The data offset (the end of the header), from the first 12 bytes: how much a
/// caller has to read to [`parse`] the header.
pub fn data_offset(head: &[u8]) -> Result<u64, String> {
    let (_, start, len) = header_span(head)?;
    Ok(start as u64 + len as u64)
}

/// Parses the magic, version and header dict (`{'descr': ..., 'fortran_order': ...,
/// 'shape': ...}`) as `numpy.lib.format._read_array_header` does; `head` must hold
/// the whole header. Every error is a file numpy refuses to load, or one whose
/// meaning cannot be determined.
pub fn parse(head: &[u8]) -> Result<NpyHeader, String> {
    let (version, start, len) = header_span(head)?;
    let raw = head
        .get(start..start + len)
        .ok_or_else(|| "truncated .npy header".to_string())?;
    // Versions 1 and 2 are latin-1, version 3 is UTF-8. numpy.load ignores
    // max_header_size once allow_pickle=True, so no size limit applies.
    let text: String = if version.0 == 3 {
        std::str::from_utf8(raw)
            .map_err(|e| format!("header is not UTF-8: {e}"))?
            .to_string()
    } else {
        raw.iter().map(|&b| b as char).collect()
    };
    let d = match literal::literal_eval(&text) {
        Ok(d) => d,
        // Python 2 wrote longs as `3L`; for format versions up to 2.0 numpy strips
        // that suffix (`_filter_header`) and tries again.
        Err(e) if version <= (2, 0) => literal::literal_eval_dropping_long_suffix(&text)
            .map_err(|_| format!("Cannot parse header: {e}"))?,
        Err(e) => return Err(format!("Cannot parse header: {e}")),
    };
    let Lit::Dict(pairs) = &d else {
        return Err(format!("Header is not a dictionary: {}", d.repr()));
    };
    let get = |k: &str| {
        pairs
            .iter()
            .find(|(key, _)| *key == Lit::Str(k.to_string()))
            .map(|(_, v)| v)
    };
    let (Some(descr), Some(fortran), Some(shape)) =
        (get("descr"), get("fortran_order"), get("shape"))
    else {
        return Err("Header does not contain the correct keys".into());
    };
    if pairs.len() != 3 {
        return Err("Header does not contain the correct keys".into());
    }
    let Lit::Tuple(dims) = shape else {
        return Err(format!("shape is not valid: {}", shape.repr()));
    };
    // isinstance(x, int) admits bools. read_array then multiplies the shape in
    // int64 (via uint64 for large entries), which fails before any data is read
    // for ints outside [-2**63, 2**64).
    let mut out_shape = Vec::with_capacity(dims.len());
    for x in dims {
        match x {
            Lit::Bool(b) => out_shape.push(i128::from(*b)),
            Lit::Int(i) if *i >= i128::from(i64::MIN) && *i <= i128::from(u64::MAX) => {
                out_shape.push(*i)
            }
            Lit::Int(_) | Lit::BigInt { .. } => {
                return Err(format!("shape {} does not fit in int64", shape.repr()))
            }
            _ => return Err(format!("shape is not valid: {}", shape.repr())),
        }
    }
    let Lit::Bool(fortran_order) = fortran else {
        return Err(format!(
            "fortran_order is not a valid bool: {}",
            fortran.repr()
        ));
    };
    let dt = dtype::from_descr(descr).map_err(|e| {
        format!(
            "descr {} is not a valid dtype descriptor: {e}",
            descr.repr()
        )
    })?;
    Ok(NpyHeader {
        data_offset: (start + len) as u64,
        descr: descr.repr(),
        has_object: dt.hasobject(),
        itemsize: dt.itemsize,
        portable: dt.portable,
        shape: out_shape,
        fortran_order: *fortran_order,
        version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(dict: &str) -> Vec<u8> {
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend_from_slice(&(dict.len() as u16).to_le_bytes());
        v.extend_from_slice(dict.as_bytes());
        v
    }

    fn npy3(dict: &str) -> Vec<u8> {
        let mut v = b"\x93NUMPY\x03\x00".to_vec();
        v.extend_from_slice(&(dict.len() as u32).to_le_bytes());
        v.extend_from_slice(dict.as_bytes());
        v
    }

    fn obj(dict: &str) -> Option<bool> {
        parse(&npy(dict)).ok().map(|h| h.has_object)
    }

    #[test]
    fn detects_object_arrays() {
        let h = parse(&npy(
            "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }\n",
        ))
        .ok();
        assert!(h.is_some_and(|h| h.has_object));
        let h = parse(&npy(
            "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n",
        ))
        .ok();
        assert!(h.is_some_and(|h| !h.has_object));
        let h = parse(&npy(
            "{'descr': [('a', '<i4'), ('b', '|O')], 'fortran_order': False, 'shape': (2,), }\n",
        ))
        .ok();
        assert!(h.is_some_and(|h| h.has_object));
    }

    #[test]
    fn spellings_of_object() {
        for d in [
            r#"{"descr": "|O", "fortran_order": False, "shape": (2,)}"#,
            "{'descr' : '|O' , 'fortran_order':False,'shape':()}",
            "{'descr': '|' 'O', 'fortran_order': False, 'shape': (2,)}",
            "{'descr': 'object', 'fortran_order': False, 'shape': (2,)}",
            "{'descr': 'O,f8', 'fortran_order': False, 'shape': (2,)}",
            "{'descr': [('a','<f8'),('b',('|O',(2,)))], 'fortran_order': False, 'shape': (2,)}",
            "{'descr': '\\x4f', 'fortran_order': False, 'shape': (2,)}",
            "{'descr': '\\x11', 'fortran_order': False, 'shape': (2,)}",
            "{'descr': u'O8', 'fortran_order': False, 'shape': (2,)}",
            "{'descr': '3O', 'fortran_order': False, 'shape': (2,)}",
            "{'descr': ('|V', '|O'), 'fortran_order': False, 'shape': (2,)}",
            "{'descr': [('a', '<f8', (2,)), ('b', 'O')], 'fortran_order': False, 'shape': (1,)}",
            "{'descr': '<f8', 'descr': '|O', 'fortran_order': False, 'shape': (2,)}",
            "{'descr': [(('title', 'name'), 'O')], 'fortran_order': False, 'shape': (2,)}",
            "{'descr': 'T', 'fortran_order': False, 'shape': (2,)}",
            "{'descr': '|O', # comment\n 'fortran_order': False, 'shape': (2,)}",
            "{'descr': '''|O''', 'fortran_order': False, 'shape': (2L,)}",
        ] {
            assert_eq!(obj(d), Some(true), "{d}");
        }
    }

    #[test]
    fn raw_data_and_padding() {
        for d in [
            "{'descr': '<f8', 'fortran_order': True, 'shape': (3, 4)}",
            // An unnamed void field is padding, however it hides an object.
            "{'descr': [('a', '<i4'), ('', ('|V', '|O'))], 'fortran_order': False, 'shape': (2,)}",
            "{'descr': 'S10', 'fortran_order': False, 'shape': (True, 2)}",
            "{'descr': [('', '|V4'), ('x', '<f4')], 'fortran_order': False, 'shape': ()}",
        ] {
            assert_eq!(obj(d), Some(false), "{d}");
        }
        let h = parse(&npy(
            "{'descr': [('', '|V4'), ('x', '<f4')], 'fortran_order': False, 'shape': ()}",
        ));
        assert_eq!(h.map(|h| h.itemsize), Ok(8));
    }

    #[test]
    fn rejects_what_numpy_rejects() {
        for d in [
            "{'descr': '|O', 'fortran_order': False}",
            "{'descr': '|O', 'fortran_order': False, 'shape': (2,), 'x': 1}",
            "{'descr': '|O', 'fortran_order': 0, 'shape': (2,)}",
            "{'descr': '|O', 'fortran_order': False, 'shape': [2]}",
            "{'descr': '|O', 'fortran_order': False, 'shape': (2.0,)}",
            "{'descr': 'Q8', 'fortran_order': False, 'shape': (2,)}",
            "{'descr': f'|O', 'fortran_order': False, 'shape': (2,)}",
            // A bytes descr is iterated as a list of fields (ints).
            "{'descr': b'O', 'fortran_order': False, 'shape': (2,)}",
            "{'descr': b'|' '|O', 'fortran_order': False, 'shape': (2,)}",
            "{'descr': '|O', 'fortran_order': False, 'shape': (2**70,)}",
            "{'descr': '|O', 'fortran_order': False, 'shape': (99999999999999999999,)}",
            "['descr', '|O']",
            "{'descr': '|O', 'fortran_order': False, 'shape': (2,)}\n  x",
        ] {
            assert!(parse(&npy(d)).is_err(), "{d}");
        }
        // Version 3 does not get the Python 2 fallback.
        assert!(parse(&npy3(
            "{'descr': '|O', 'fortran_order': False, 'shape': (2L,)}"
        ))
        .is_err());
        assert!(parse(&npy3(
            "{'descr': '|O', 'fortran_order': False, 'shape': (2,)}"
        ))
        .is_ok());
        // Unknown versions, truncation.
        let mut v = npy("{'descr': '|O', 'fortran_order': False, 'shape': (2,)}");
        v[7] = 1;
        assert!(parse(&v).is_err());
        let v = npy("{'descr': '|O', 'fortran_order': False, 'shape': (2,)}");
        assert!(parse(&v[..v.len() - 1]).is_err());
    }

    #[test]
    fn offsets_and_shape() {
        let v = npy("{'descr': '<i4', 'fortran_order': False, 'shape': (2, -3)}");
        let h = parse(&v);
        assert_eq!(h.as_ref().map(|h| h.data_offset), Ok(v.len() as u64));
        assert_eq!(data_offset(&v[..12]), Ok(v.len() as u64));
        assert_eq!(h.map(|h| h.shape), Ok(vec![2, -3]));
    }
}
