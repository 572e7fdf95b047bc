//! ustar/GNU/pax tar archives: entry names and data ranges, nothing extracted to disk.

use super::blob::Blob;
use std::io;

#[derive(Debug, Clone)]
pub struct TarEntry {
    pub name: String,
    pub data_offset: u64,
    pub size: u64,
    pub regular: bool,
}

fn octal(field: &[u8]) -> Option<u64> {
    // GNU base-256 for large sizes.
    if field.first().is_some_and(|b| b & 0x80 != 0) {
        let mut v: u64 = (field[0] & 0x7f) as u64;
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(b as u64)?;
        }
        return Some(v);
    }
    let s: Vec<u8> = field
        .iter()
        .copied()
        .filter(|b| *b != 0 && *b != b' ')
        .collect();
    if s.is_empty() {
        return Some(0);
    }
    let t = std::str::from_utf8(&s).ok()?;
    u64::from_str_radix(t, 8).ok()
}

/// A tar header has a valid checksum (and usually the `ustar` magic at 257).
pub fn sniff(head: &[u8]) -> bool {
    if head.len() < 512 {
        return false;
    }
    let magic = &head[257..262] == b"ustar";
    let Some(sum) = octal(&head[148..156]) else {
        return false;
    };
    let computed: u64 = head[..512]
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                b' ' as u64
            } else {
                *b as u64
            }
        })
        .sum();
    computed == sum && (magic || head[0] != 0)
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Lists entries; `max_entries` bounds the walk.
pub fn entries(blob: &dyn Blob, max_entries: usize) -> io::Result<(Vec<TarEntry>, bool)> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    let mut long_name: Option<String> = None;
    while pos + 512 <= blob.len() {
        if out.len() >= max_entries {
            return Ok((out, true));
        }
        let h = blob.read_at(pos, 512)?;
        if h.iter().all(|b| *b == 0) {
            break;
        }
        if !sniff(&h) {
            break;
        }
        let size = octal(&h[124..136]).unwrap_or(0);
        let typeflag = h[156];
        let data_offset = pos + 512;
        let prefix = cstr(&h[345..500]);
        let base = cstr(&h[..100]);
        let mut name = if prefix.is_empty() || &h[257..262] != b"ustar" {
            base
        } else {
            format!("{prefix}/{base}")
        };
        match typeflag {
            b'L' => {
                let data = blob.read_at(data_offset, size.min(1 << 16) as usize)?;
                long_name = Some(cstr(&data));
            }
            b'x' => {
                let data = blob.read_at(data_offset, size.min(1 << 16) as usize)?;
                for rec in String::from_utf8_lossy(&data).lines() {
                    if let Some(p) = rec.split_once(" path=").map(|x| x.1) {
                        long_name = Some(p.to_string());
                    }
                }
            }
            _ => {
                if let Some(l) = long_name.take() {
                    name = l;
                }
                out.push(TarEntry {
                    name,
                    data_offset,
                    size,
                    regular: typeflag == b'0' || typeflag == 0 || typeflag == b'7',
                });
            }
        }
        pos = data_offset + size.div_ceil(512) * 512;
    }
    Ok((out, false))
}
