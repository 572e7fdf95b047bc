//! A tolerant zip reader, reading archives the way PyTorch's miniz-based reader does
//! (offsets from the central directory, CRCs and encryption flags not enforced, local
//! names ignored) while reporting every place where the archive disagrees with itself.
//! Python's `zipfile` refuses such archives; scanners built on it never look inside.

use super::blob::Blob;
use std::io;

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;

fn u16le(b: &[u8], at: usize) -> u16 {
    b.get(at..at + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

fn u32le(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64le(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).map_or(0, |s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_le_bytes(a)
    })
}

/// One member as the central directory describes it, checked against its local header.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub flags: u16,
    pub method: u16,
    pub crc: u32,
    pub compressed_size: u64,
    pub size: u64,
    /// Absolute offset of the local header in the blob.
    pub header_offset: u64,
    /// Absolute offset of the member's data.
    pub data_offset: u64,
    pub local_name: Option<String>,
    pub local_crc: u32,
    pub local_flags: u16,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        self.name.ends_with('/')
    }
}

/// Something about the archive's structure a reader could interpret in two ways.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    pub member: Option<String>,
    pub offset: u64,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnomalyKind {
    Tampering,
    Duplicate,
    Overlap,
    /// A member the central directory does not list (found by walking local headers).
    Unlisted,
}

#[derive(Debug, Default)]
pub struct Archive {
    pub entries: Vec<Entry>,
    pub anomalies: Vec<Anomaly>,
    /// Bytes before the archive (self-extracting stubs, polyglots).
    pub prefix: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    #[error("no end of central directory record")]
    NoEndRecord,
    #[error("central directory is truncated or out of range")]
    BadCentralDirectory,
    #[error("too many members (more than {0})")]
    TooManyMembers(usize),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Whether the bytes start a zip (local header, or an empty archive's end record).
pub fn sniff(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06")
}

/// Finds the end-of-central-directory record within the last 64 KiB + 22 bytes.
fn find_eocd(blob: &dyn Blob) -> io::Result<Option<(u64, Vec<u8>)>> {
    let len = blob.len();
    let window = len.min(65_535 + 22 + 20);
    let start = len - window;
    let tail = blob.read_at(start, window as usize)?;
    let tail = tail.into_owned();
    if tail.len() < 22 {
        return Ok(None);
    }
    for i in (0..=tail.len() - 22).rev() {
        if u32le(&tail, i) == EOCD_SIG {
            return Ok(Some((start + i as u64, tail)));
        }
    }
    Ok(None)
}

/// Reads the central directory and every local header it points at.
pub fn read(blob: &dyn Blob, max_members: usize) -> Result<Archive, ZipError> {
    let Some((eocd_at, tail)) = find_eocd(blob)? else {
        return Err(ZipError::NoEndRecord);
    };
    let tail_start = blob.len() - tail.len() as u64;
    let e = (eocd_at - tail_start) as usize;
    let mut total = u16le(&tail, e + 10) as u64;
    let mut cd_size = u32le(&tail, e + 12) as u64;
    let mut cd_offset = u32le(&tail, e + 16) as u64;
    let mut cd_end = eocd_at;
    // ZIP64: the locator sits right before the end record.
    if e >= 20 && u32le(&tail, e - 20) == ZIP64_LOCATOR_SIG {
        let z64_at = u64le(&tail, e - 20 + 8);
        let rec = blob.read_at(z64_at, 56)?;
        if u32le(&rec, 0) == ZIP64_EOCD_SIG {
            total = u64le(&rec, 32);
            cd_size = u64le(&rec, 40);
            cd_offset = u64le(&rec, 48);
            cd_end = z64_at;
        }
    }
    if total as usize > max_members {
        return Err(ZipError::TooManyMembers(max_members));
    }
    // Prefixed archives: the directory really ends where the end record starts.
    let prefix = cd_end
        .checked_sub(cd_size)
        .and_then(|s| s.checked_sub(cd_offset))
        .unwrap_or(0);
    let cd_start = cd_offset + prefix;
    if cd_start.checked_add(cd_size).is_none_or(|e| e > blob.len()) {
        return Err(ZipError::BadCentralDirectory);
    }
    let cd = blob.read_at(cd_start, cd_size as usize)?;
    let mut arch = Archive {
        prefix,
        ..Archive::default()
    };
    let mut p = 0usize;
    while p + 46 <= cd.len() && u32le(&cd, p) == CENTRAL_SIG {
        if arch.entries.len() >= max_members {
            return Err(ZipError::TooManyMembers(max_members));
        }
        let flags = u16le(&cd, p + 8);
        let method = u16le(&cd, p + 10);
        let crc = u32le(&cd, p + 16);
        let mut csize = u32le(&cd, p + 20) as u64;
        let mut size = u32le(&cd, p + 24) as u64;
        let nlen = u16le(&cd, p + 28) as usize;
        let xlen = u16le(&cd, p + 30) as usize;
        let clen = u16le(&cd, p + 32) as usize;
        let mut hdr = u32le(&cd, p + 42) as u64;
        let name_bytes = cd
            .get(p + 46..p + 46 + nlen)
            .ok_or(ZipError::BadCentralDirectory)?;
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        let extra = cd.get(p + 46 + nlen..p + 46 + nlen + xlen).unwrap_or(&[]);
        parse_zip64_extra(extra, &mut size, &mut csize, &mut hdr);
        p += 46 + nlen + xlen + clen;
        let header_offset = hdr + prefix;
        let mut entry = Entry {
            name,
            flags,
            method,
            crc,
            compressed_size: csize,
            size,
            header_offset,
            data_offset: header_offset,
            local_name: None,
            local_crc: 0,
            local_flags: 0,
        };
        check_local(blob, &mut entry, &mut arch.anomalies)?;
        arch.entries.push(entry);
    }
    if arch.entries.len() as u64 != total {
        arch.anomalies.push(Anomaly {
            kind: AnomalyKind::Tampering,
            member: None,
            offset: cd_start,
            message: format!(
                "the end record announces {total} members but the central directory holds {}",
                arch.entries.len()
            ),
        });
    }
    find_duplicates_and_overlaps(&mut arch);
    find_unlisted(blob, &mut arch, max_members)?;
    Ok(arch)
}

fn parse_zip64_extra(extra: &[u8], size: &mut u64, csize: &mut u64, hdr: &mut u64) {
    let mut i = 0;
    while i + 4 <= extra.len() {
        let id = u16le(extra, i);
        let len = u16le(extra, i + 2) as usize;
        let body = extra.get(i + 4..i + 4 + len).unwrap_or(&[]);
        if id == 1 {
            let mut j = 0;
            for field in [&mut *size, &mut *csize, &mut *hdr] {
                if *field == 0xFFFF_FFFF && j + 8 <= body.len() {
                    *field = u64le(body, j);
                    j += 8;
                }
            }
        }
        i += 4 + len;
    }
}

fn check_local(blob: &dyn Blob, e: &mut Entry, out: &mut Vec<Anomaly>) -> io::Result<()> {
    let h = blob.read_at(e.header_offset, 30)?;
    if h.len() < 30 || u32le(&h, 0) != LOCAL_SIG {
        out.push(Anomaly {
            kind: AnomalyKind::Tampering,
            member: Some(e.name.clone()),
            offset: e.header_offset,
            message: format!(
                "`{}`: no local header where the central directory points",
                e.name
            ),
        });
        return Ok(());
    }
    let local_flags = u16le(&h, 6);
    let local_method = u16le(&h, 8);
    let local_crc = u32le(&h, 14);
    let nlen = u16le(&h, 26) as u64;
    let xlen = u16le(&h, 28) as u64;
    let name = blob.read_at(e.header_offset + 30, nlen as usize)?;
    let local_name = String::from_utf8_lossy(&name).into_owned();
    e.data_offset = e.header_offset + 30 + nlen + xlen;
    e.local_crc = local_crc;
    e.local_flags = local_flags;
    let m = Some(e.name.clone());
    if local_name != e.name {
        out.push(Anomaly {
            kind: AnomalyKind::Tampering,
            member: m.clone(),
            offset: e.header_offset,
            message: format!(
                "the central directory names the member `{}` but its local header says `{local_name}`; \
                 Python's zipfile refuses it, PyTorch reads it",
                e.name
            ),
        });
    }
    e.local_name = Some(local_name);
    let suspicious = 0x0001 | 0x0020 | 0x0040;
    let bad = (e.flags | local_flags) & suspicious;
    if bad != 0 {
        let mut what = Vec::new();
        if bad & 0x0001 != 0 {
            what.push("encrypted (0x1)");
        }
        if bad & 0x0020 != 0 {
            what.push("patched data (0x20)");
        }
        if bad & 0x0040 != 0 {
            what.push("strong encryption (0x40)");
        }
        out.push(Anomaly {
            kind: AnomalyKind::Tampering,
            member: m.clone(),
            offset: e.header_offset,
            message: format!(
                "`{}` carries general-purpose flag bits {}: Python's zipfile refuses it, PyTorch ignores them",
                e.name,
                what.join(", ")
            ),
        });
    }
    if local_method != e.method {
        out.push(Anomaly {
            kind: AnomalyKind::Tampering,
            member: m.clone(),
            offset: e.header_offset,
            message: format!(
                "`{}`: compression method {} in the central directory but {local_method} in the local header",
                e.name, e.method
            ),
        });
    }
    let descriptor = (e.flags | local_flags) & 0x0008 != 0;
    if descriptor {
        // Data descriptor after the data: [signature] crc, compressed size, size.
        let d = blob.read_at(e.data_offset + e.compressed_size, 16)?;
        let off = if u32le(&d, 0) == 0x0807_4b50 { 4 } else { 0 };
        if d.len() >= off + 4 {
            let dcrc = u32le(&d, off);
            if dcrc != e.crc {
                out.push(Anomaly {
                    kind: AnomalyKind::Tampering,
                    member: m.clone(),
                    offset: e.data_offset + e.compressed_size,
                    message: format!(
                        "`{}`: CRC-32 {:08x} in the central directory but {dcrc:08x} in its data descriptor",
                        e.name, e.crc
                    ),
                });
            }
        }
    }
    if !descriptor && local_crc != e.crc {
        out.push(Anomaly {
            kind: AnomalyKind::Tampering,
            member: m,
            offset: e.header_offset,
            message: format!(
                "`{}`: CRC-32 {:08x} in the central directory but {local_crc:08x} in the local header",
                e.name, e.crc
            ),
        });
    }
    Ok(())
}

fn find_duplicates_and_overlaps(arch: &mut Archive) {
    let mut by_name: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut dups = Vec::new();
    for (i, e) in arch.entries.iter().enumerate() {
        if let Some(&first) = by_name.get(e.name.as_str()) {
            dups.push(Anomaly {
                kind: AnomalyKind::Duplicate,
                member: Some(e.name.clone()),
                offset: e.header_offset,
                message: format!(
                    "`{}` appears twice (local headers at {} and {}); different readers load different copies",
                    e.name, arch.entries[first].header_offset, e.header_offset
                ),
            });
        } else {
            by_name.insert(&e.name, i);
        }
    }
    let mut spans: Vec<(u64, u64, &str)> = arch
        .entries
        .iter()
        .filter(|e| !e.is_dir())
        .map(|e| {
            (
                e.header_offset,
                e.data_offset + e.compressed_size,
                e.name.as_str(),
            )
        })
        .collect();
    spans.sort_unstable();
    for w in spans.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if b.0 < a.1 {
            dups.push(Anomaly {
                kind: AnomalyKind::Overlap,
                member: Some(b.2.to_string()),
                offset: b.0,
                message: format!("`{}` overlaps `{}` (bytes {}..{})", b.2, a.2, b.0, a.1),
            });
        }
    }
    arch.anomalies.extend(dups);
}

/// Walks local headers from the start of the archive and reports members that the
/// central directory does not list: streaming readers would still extract them.
fn find_unlisted(blob: &dyn Blob, arch: &mut Archive, max_members: usize) -> io::Result<()> {
    let known: std::collections::HashSet<u64> =
        arch.entries.iter().map(|e| e.header_offset).collect();
    let mut pos = arch.prefix;
    let mut walked = 0;
    while walked < max_members {
        walked += 1;
        let h = blob.read_at(pos, 30)?;
        if h.len() < 30 || u32le(&h, 0) != LOCAL_SIG {
            break;
        }
        let flags = u16le(&h, 6);
        let nlen = u16le(&h, 26) as u64;
        let xlen = u16le(&h, 28) as u64;
        let mut csize = u32le(&h, 18) as u64;
        if !known.contains(&pos) {
            let name = blob.read_at(pos + 30, nlen as usize)?;
            let name = String::from_utf8_lossy(&name).into_owned();
            let data_offset = pos + 30 + nlen + xlen;
            arch.anomalies.push(Anomaly {
                kind: AnomalyKind::Unlisted,
                member: Some(name.clone()),
                offset: pos,
                message: format!("local member `{name}` at {pos} is not in the central directory"),
            });
            arch.entries.push(Entry {
                name,
                flags,
                method: u16le(&h, 8),
                crc: u32le(&h, 14),
                compressed_size: csize,
                size: u32le(&h, 22) as u64,
                header_offset: pos,
                data_offset,
                local_name: None,
                local_crc: u32le(&h, 14),
                local_flags: flags,
            });
        } else if let Some(e) = arch.entries.iter().find(|e| e.header_offset == pos) {
            csize = e.compressed_size;
        }
        if flags & 0x0008 != 0 && csize == 0 {
            // Sizes only in a data descriptor: the central directory is the only guide.
            break;
        }
        pos += 30 + nlen + xlen + csize;
        if flags & 0x0008 != 0 {
            let d = blob.read_at(pos, 4)?;
            pos += if u32le(&d, 0) == 0x0807_4b50 { 16 } else { 12 };
        }
    }
    Ok(())
}
