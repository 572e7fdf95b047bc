//! ustar/GNU/pax tar archives: entry names and data ranges, nothing extracted to disk.

use super::blob::Blob;
use std::io;

#[derive(Debug, Clone)]
pub struct TarEntry {
    pub name: String,
    pub data_offset: u64,
    pub size: u64,
    pub regular: bool,
    /// The size came from a pax `size` record (which Python's tarfile honours).
    pub pax_size: bool,
}

/// `size` and `path` from pax records (`"%d %s=%s\n"`).
fn pax_records(data: &[u8]) -> (Option<u64>, Option<String>) {
    let text = String::from_utf8_lossy(data);
    let mut size = None;
    let mut path = None;
    for rec in text.lines() {
        if let Some(v) = rec.split_once(" size=").map(|x| x.1) {
            size = v.trim().parse().ok();
        }
        if let Some(p) = rec.split_once(" path=").map(|x| x.1) {
            path = Some(p.to_string());
        }
    }
    (size, path)
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
    let mut pax_size: Option<u64> = None;
    let mut global_size: Option<u64> = None;
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
        let header_size = octal(&h[124..136]).unwrap_or(0);
        let mut size = header_size;
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
            b'x' | b'g' => {
                let data = blob.read_at(data_offset, size.min(1 << 16) as usize)?;
                let (s, p) = pax_records(&data);
                if typeflag == b'g' {
                    global_size = s.or(global_size);
                } else {
                    pax_size = s;
                    if p.is_some() {
                        long_name = p;
                    }
                }
            }
            _ => {
                if let Some(l) = long_name.take() {
                    name = l;
                }
                let from_pax = pax_size.take().or(global_size);
                size = from_pax.unwrap_or(header_size);
                out.push(TarEntry {
                    name,
                    data_offset,
                    size,
                    regular: typeflag == b'0' || typeflag == 0 || typeflag == b'7',
                    pax_size: from_pax.is_some(),
                });
            }
        }
        // Sizes come from the file: a wrapping or non-advancing walk ends it.
        let Some(next) = size
            .checked_next_multiple_of(512)
            .and_then(|n| data_offset.checked_add(n))
            .filter(|&n| n > pos)
        else {
            break;
        };
        pos = next;
    }
    Ok((out, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::blob::MemBlob;

    fn header(name: &str, size: u64, typeflag: u8) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[156] = typeflag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }

    fn padded(mut d: Vec<u8>) -> Vec<u8> {
        d.resize(d.len().div_ceil(512) * 512, 0);
        d
    }

    #[test]
    fn a_pax_size_record_decides_the_member_size_as_tarfile_does() {
        // The ustar header says 0 bytes; the pax record says 600: Python reads 600.
        let record = b"12 size=600\n".to_vec();
        let mut t = header("PaxHeader", record.len() as u64, b'x');
        t.extend(padded(record));
        t.extend(header("model.pkl", 0, b'0'));
        t.extend(padded(vec![b'.'; 600]));
        t.extend(vec![0u8; 1024]);
        let (entries, _) = entries(&MemBlob(&t), 10).unwrap_or_default();
        assert_eq!(entries.len(), 1);
        assert_eq!((entries[0].size, entries[0].pax_size), (600, true));
    }

    #[test]
    fn a_size_that_wraps_ends_the_walk() {
        let mut t = header("dir", 0, b'5');
        // GNU base-256 size near 2^64
        t[124] = 0x80;
        t[125..128].fill(0);
        t[128..136].copy_from_slice(&(u64::MAX - 100).to_be_bytes());
        t[148..156].fill(b' ');
        let sum: u32 = t.iter().map(|&b| u32::from(b)).sum();
        t[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        t.extend(header("next", 0, b'0'));
        let (entries, _) = entries(&MemBlob(&t), 10).unwrap_or_default();
        assert_eq!(entries.len(), 1);
    }
}
