//! NumPy `.npy` headers: an object-dtype array's data is a pickle (read by
//! `numpy.load(allow_pickle=True)`); any other dtype is raw data.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// Offset of the data (the pickle for object arrays).
    pub data_offset: u64,
    pub descr: String,
    pub has_object: bool,
}

pub fn sniff(head: &[u8]) -> bool {
    head.starts_with(b"\x93NUMPY")
}

/// Parses the magic, version and header dict (`{'descr': ..., 'fortran_order': ..., 'shape': ...}`).
pub fn parse(head: &[u8]) -> Result<NpyHeader, String> {
    if !sniff(head) || head.len() < 10 {
        return Err("not an .npy file".into());
    }
    let major = head[6];
    let (hlen, start) = match major {
        1 => (u16::from_le_bytes([head[8], head[9]]) as usize, 10),
        2 | 3 => {
            if head.len() < 12 {
                return Err("truncated .npy header".into());
            }
            (
                u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize,
                12,
            )
        }
        v => return Err(format!("unsupported .npy format version {v}")),
    };
    let text = head
        .get(start..start + hlen)
        .ok_or_else(|| "truncated .npy header".to_string())?;
    let text = String::from_utf8_lossy(text);
    let descr = text
        .split_once("'descr':")
        .map(|x| x.1.trim_start())
        .unwrap_or("")
        .to_string();
    // The descr is a Python literal: a string ('<f8', '|O') or a list of fields for
    // structured dtypes. Any 'O' type code anywhere means the array holds objects.
    let descr_end = if descr.starts_with('[') {
        matching_bracket(&descr).unwrap_or(descr.len())
    } else {
        descr.find(',').unwrap_or(descr.len())
    };
    let d = &descr[..descr_end];
    let has_object = d
        .split('\'')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .any(|(_, s)| s.trim_start_matches(['<', '>', '|', '=']).starts_with('O'));
    Ok(NpyHeader {
        data_offset: (start + hlen) as u64,
        descr: d.to_string(),
        has_object,
    })
}

fn matching_bracket(s: &str) -> Option<usize> {
    let mut depth = 0i32;
    for (i, c) in s.char_indices() {
        match c {
            '[' | '(' => depth += 1,
            ']' | ')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
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
}
