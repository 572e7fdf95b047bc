//! Zip archives, read the way each real reader reads them.
//!
//! A *reading* is the archive as one reader parses it. Two readers matter for pickles:
//!
//! * [`ZipReader::Miniz`]: PyTorch's `PyTorchStreamReader` (caffe2/serialize/
//!   inline_container.cc) over its vendored miniz 3.0.2 (`mz_zip_reader_*`), used by
//!   `torch.load` and `torch.jit.load`. The end record is the last `PK\x05\x06` with 22
//!   bytes after it, searched backwards in 4 KiB steps (`mz_zip_reader_locate_header_sig`);
//!   a zip64 locator right before it is followed to wherever it points
//!   (`mz_zip_reader_read_central_dir`); the central directory is read at its offset as
//!   written (no prefix inference) and walked for exactly the announced number of
//!   entries; names are looked up case-insensitively by binary search over a heap-sorted
//!   index (`mz_zip_locate_file_binary_search`), so of two equal names the one found is
//!   whichever the search meets; CRCs are not checked (PyTorch builds miniz with
//!   `MINIZ_DISABLE_ZIP_READER_CRC32_CHECKS`); stored members are read for their
//!   *uncompressed* size.
//! * [`ZipReader::Zipfile`]: CPython's `zipfile` (3.11), used by `numpy.load` (.npz),
//!   `pandas.read_pickle` (.zip) and most Python code. `_EndRecData` takes the last 22
//!   bytes when they are an end record without comment, else the LAST `PK\x05\x06` in the
//!   final 64 KiB + 22 (and gives up when fewer than 22 bytes follow it); `_EndRecData64`
//!   reads a zip64 end record at the fixed place right before the locator and ignores the
//!   locator's offset; `_RealGetContents` reads the directory at `end record - size`
//!   (`concat = location - size - offset`, added to every header offset), walks it by
//!   size (the entry count is ignored), decodes names as cp437 unless flagged UTF-8 and
//!   cuts them at the first NUL; `NameToInfo` keeps the last of equal names; `open()`
//!   refuses a local header whose name differs from the central one.
//!
//! [`read`] is the older tolerant reading (prefix inference, locator followed), kept for
//! the sanitizer and as the fallback when neither real reader accepts an archive.
//! Every reading also reports where the archive disagrees with itself.
//!
//! The walker scans once when both readings list the same members at the same places
//! (structure findings then name the reading [`BOTH_READERS`]); otherwise it scans each
//! reading and every finding names it ([`ZipReader::name`], or [`TOLERANT`]). Members
//! only local headers show are the reading [`LOCAL_HEADERS`].
//!
//! Newer Pythons: 3.11.8+/3.12.2+ refuse to open members that overlap the next local
//! header ("Overlapped entries"), and the 2025 zip64 fixes make zipfile use and check the
//! locator's offset (as miniz does); both are covered by scanning both readings. The
//! Unicode Path extra field (0x7075) that the newest zipfile uses to rename a member is
//! not modelled (the member's bytes are scanned under its central name).

use super::blob::Blob;
use std::collections::HashMap;
use std::io;

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;
const U32_MAX: u64 = 0xFFFF_FFFF;
/// The header offset of a member a reader lists but cannot locate.
const NOWHERE: u64 = u64::MAX;

fn u16le(b: &[u8], at: usize) -> u16 {
    b.get(at..at.saturating_add(2))
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

fn u32le(b: &[u8], at: usize) -> u32 {
    b.get(at..at.saturating_add(4))
        .map_or(0, |s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn u64le(b: &[u8], at: usize) -> u64 {
    b.get(at..at.saturating_add(8)).map_or(0, |s| {
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        u64::from_le_bytes(a)
    })
}

/// `n` bytes at `at`, or `None` when the blob ends first.
fn exact(blob: &dyn Blob, at: u64, n: usize) -> io::Result<Option<Vec<u8>>> {
    if at.checked_add(n as u64).is_none_or(|e| e > blob.len()) {
        return Ok(None);
    }
    let d = blob.read_at(at, n)?;
    Ok((d.len() == n).then(|| d.into_owned()))
}

/// The reading name of the tolerant [`read`] when neither real reader accepts a zip.
pub const TOLERANT: &str = "zip-tolerant";
/// Structure findings about a directory both real readers read alike.
pub const BOTH_READERS: &str = "miniz+zipfile";
/// Members only local headers show (streaming readers: `unzip -`, `ZipInputStream`, ...).
pub const LOCAL_HEADERS: &str = "zip-local-headers";

/// Which program's reading of a zip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ZipReader {
    /// PyTorch's miniz-based `PyTorchStreamReader` (`torch.load`, `torch.jit.load`).
    Miniz,
    /// CPython's `zipfile` (`numpy.load`, `pandas.read_pickle`, ...).
    Zipfile,
}

impl ZipReader {
    pub const BOTH: [ZipReader; 2] = [ZipReader::Miniz, ZipReader::Zipfile];

    /// The reading's name in findings.
    pub fn name(self) -> &'static str {
        match self {
            ZipReader::Miniz => "miniz",
            ZipReader::Zipfile => "zipfile",
        }
    }

    /// Who reads zips this way.
    pub fn who(self) -> &'static str {
        match self {
            ZipReader::Miniz => "PyTorch's miniz reader (torch.load, torch.jit.load)",
            ZipReader::Zipfile => "Python's zipfile (numpy.load, pandas.read_pickle, ...)",
        }
    }
}

/// One member as the central directory describes it, checked against its local header.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The name the reader files the member under (zipfile: decoded, cut at NUL).
    pub name: String,
    /// The central directory's name bytes.
    pub raw_name: Vec<u8>,
    pub flags: u16,
    pub method: u16,
    pub crc: u32,
    pub compressed_size: u64,
    pub size: u64,
    /// Absolute offset of the local header in the blob.
    pub header_offset: u64,
    /// Absolute offset of the member's data.
    pub data_offset: u64,
    /// Bytes the reader takes from `data_offset` (stored members: miniz reads `size`
    /// bytes, zipfile `compressed_size` bytes cut to `size`).
    pub read_len: u64,
    /// The reader treats the entry as a directory and returns no content for it.
    pub dir: bool,
    /// Found by walking local headers; the central directory does not list it.
    pub unlisted: bool,
    pub local_name: Option<String>,
    pub local_crc: u32,
    pub local_flags: u16,
}

impl Entry {
    pub fn is_dir(&self) -> bool {
        self.dir
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

#[derive(Debug, Default, Clone)]
pub struct Archive {
    pub entries: Vec<Entry>,
    pub anomalies: Vec<Anomaly>,
    /// Bytes before the archive (self-extracting stubs, polyglots): zipfile's `concat`.
    pub prefix: u64,
    /// The reader this is the reading of; `None` for the tolerant [`read`].
    pub reader: Option<ZipReader>,
    /// Where the end of central directory record is.
    pub eocd_offset: u64,
    /// Where the zip64 end record that was used is.
    pub zip64_offset: Option<u64>,
    /// Where the reader reads the central directory, and how many bytes of it.
    pub cd_offset: u64,
    pub cd_size: u64,
    /// Listed entries in miniz's sorted order (miniz readings only).
    sorted: Vec<usize>,
}

impl Archive {
    /// The entry the reader returns for `name`: miniz by its case-insensitive binary
    /// search, zipfile the last of equal names (`NameToInfo`).
    pub fn locate(&self, name: &str) -> Option<&Entry> {
        match self.reader {
            Some(ZipReader::Miniz) => {
                let key = name.as_bytes();
                let key = &key[..key.iter().position(|b| *b == 0).unwrap_or(key.len())];
                miniz_search(&self.entries, &self.sorted, key).and_then(|i| self.entries.get(i))
            }
            _ => self
                .entries
                .iter()
                .rev()
                .find(|e| !e.unlisted && e.name == name),
        }
    }

    /// PyTorch's archive root: the first central entry's name up to its first `/`.
    pub fn torch_root(&self) -> Option<String> {
        let first = self.entries.first().filter(|e| !e.unlisted)?;
        let slash = first.raw_name.iter().position(|b| *b == b'/')?;
        Some(String::from_utf8_lossy(&first.raw_name[..slash]).into_owned())
    }

    /// The two readings list the same members at the same places, with the same bytes.
    pub fn same_directory(&self, other: &Archive) -> bool {
        let key = |e: &Entry| {
            (
                e.raw_name.clone(),
                e.header_offset,
                e.data_offset,
                e.read_len,
                e.method,
                e.size,
                e.dir,
            )
        };
        let a: Vec<_> = self
            .entries
            .iter()
            .filter(|e| !e.unlisted)
            .map(key)
            .collect();
        let b: Vec<_> = other
            .entries
            .iter()
            .filter(|e| !e.unlisted)
            .map(key)
            .collect();
        a == b
    }

    /// Where the reading found its directory, in words.
    pub fn describe(&self) -> String {
        let listed = self.entries.iter().filter(|e| !e.unlisted).count();
        let z64 = self
            .zip64_offset
            .map(|z| format!(", zip64 end record at {z}"))
            .unwrap_or_default();
        let prefix = if self.prefix > 0 {
            format!(", header offsets shifted by {}", self.prefix)
        } else {
            String::new()
        };
        format!(
            "end record at {}{z64}, central directory at {} ({} bytes, {listed} members{prefix})",
            self.eocd_offset, self.cd_offset, self.cd_size
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ZipError {
    #[error("no end of central directory record")]
    NoEndRecord,
    #[error("central directory is truncated or out of range")]
    BadCentralDirectory,
    #[error("too many members (more than {0})")]
    TooManyMembers(usize),
    /// The reader refuses the archive (miniz's error, zipfile's exception).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

fn refused<T>(why: impl Into<String>) -> Result<T, ZipError> {
    Err(ZipError::Refused(why.into()))
}

/// Whether the bytes start a zip (local header, or an empty archive's end record).
pub fn sniff(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06")
}

/// The archive as `reader` reads it.
pub fn read_as(
    blob: &dyn Blob,
    max_members: usize,
    reader: ZipReader,
) -> Result<Archive, ZipError> {
    let mut arch = match reader {
        ZipReader::Miniz => miniz_directory(blob, max_members)?,
        ZipReader::Zipfile => zipfile_directory(blob, max_members)?,
    };
    for e in &mut arch.entries {
        if e.header_offset == NOWHERE {
            e.read_len = 0;
            continue;
        }
        check_local(blob, e, Some(reader), &mut arch.anomalies)?;
    }
    find_duplicates_and_overlaps(&mut arch);
    find_unlisted(blob, &mut arch, max_members)?;
    Ok(arch)
}

/// Both readings, miniz first.
pub fn readings(blob: &dyn Blob, max_members: usize) -> [Result<Archive, ZipError>; 2] {
    ZipReader::BOTH.map(|r| read_as(blob, max_members, r))
}

// ---------------------------------------------------------------------------------------
// miniz (PyTorch's third_party/miniz-3.0.2, mz_zip_reader_read_central_dir)
// ---------------------------------------------------------------------------------------

/// `mz_zip_reader_locate_header_sig`: 4 KiB windows from the end, overlapping by 3
/// bytes; the last signature with 22 bytes after it; give up once a window starts
/// 65535 + 22 bytes or more before the end.
fn miniz_find_eocd(blob: &dyn Blob) -> io::Result<Option<u64>> {
    let size = blob.len();
    if size < 22 {
        return Ok(None);
    }
    let mut cur = size.saturating_sub(4096);
    loop {
        let n = (size - cur).min(4096) as usize;
        let buf = blob.read_at(cur, n)?;
        if buf.len() != n {
            return Ok(None);
        }
        for i in (0..=n.saturating_sub(4)).rev() {
            if u32le(&buf, i) == EOCD_SIG && size - (cur + i as u64) >= 22 {
                return Ok(Some(cur + i as u64));
            }
        }
        if cur == 0 || size - cur >= 0xFFFF + 22 {
            return Ok(None);
        }
        cur = cur.saturating_sub(4096 - 3);
    }
}

fn miniz_directory(blob: &dyn Blob, max_members: usize) -> Result<Archive, ZipError> {
    let size = blob.len();
    let Some(eocd) = miniz_find_eocd(blob)? else {
        return Err(ZipError::NoEndRecord);
    };
    let Some(rec) = exact(blob, eocd, 22)? else {
        return Err(ZipError::NoEndRecord);
    };
    let mut zip64: Option<(u64, Vec<u8>, Vec<u8>)> = None;
    if eocd >= 20 + 56 {
        if let Some(loc) = exact(blob, eocd - 20, 20)? {
            if u32le(&loc, 0) == ZIP64_LOCATOR_SIG {
                let at = u64le(&loc, 8);
                if at > size - 56 {
                    return refused(
                        "the zip64 locator points past the end (MZ_ZIP_NOT_AN_ARCHIVE)",
                    );
                }
                if let Some(r) = exact(blob, at, 56)? {
                    if u32le(&r, 0) == ZIP64_EOCD_SIG {
                        zip64 = Some((at, loc, r));
                    }
                }
            }
        }
    }
    let mut total = u64::from(u16le(&rec, 10));
    let mut on_disk = u64::from(u16le(&rec, 8));
    let mut this_disk = u64::from(u16le(&rec, 4));
    let mut cd_disk = u64::from(u16le(&rec, 6));
    let mut cd_size = u64::from(u32le(&rec, 12));
    let mut cd_ofs = u64::from(u32le(&rec, 16));
    if let Some((_, loc, r)) = &zip64 {
        if u64le(r, 4) < 56 - 12 {
            return refused("zip64 end record too small (MZ_ZIP_INVALID_HEADER_OR_CORRUPTED)");
        }
        if u32le(loc, 16) != 1 {
            return refused("zip64 locator announces several disks (MZ_ZIP_UNSUPPORTED_MULTIDISK)");
        }
        total = u64le(r, 32);
        on_disk = u64le(r, 24);
        if total > U32_MAX || on_disk > U32_MAX {
            return refused("more than 2^32 members (MZ_ZIP_TOO_MANY_FILES)");
        }
        cd_size = u64le(r, 40);
        if cd_size > U32_MAX {
            return refused("central directory over 4 GiB (MZ_ZIP_UNSUPPORTED_CDIR_SIZE)");
        }
        this_disk = u64::from(u32le(r, 16));
        cd_disk = u64::from(u32le(r, 20));
        cd_ofs = u64le(r, 48);
    }
    if total != on_disk || ((this_disk | cd_disk) != 0 && (this_disk != 1 || cd_disk != 1)) {
        return refused("multi-disk archive (MZ_ZIP_UNSUPPORTED_MULTIDISK)");
    }
    if cd_size < total * 46 || cd_ofs.checked_add(cd_size).is_none_or(|e| e > size) {
        return Err(ZipError::BadCentralDirectory);
    }
    if total as usize > max_members {
        return Err(ZipError::TooManyMembers(max_members));
    }
    let cd = blob.read_at(cd_ofs, cd_size as usize)?;
    if cd.len() as u64 != cd_size {
        return Err(ZipError::BadCentralDirectory);
    }
    let mut arch = Archive {
        reader: Some(ZipReader::Miniz),
        eocd_offset: eocd,
        zip64_offset: zip64.as_ref().map(|z| z.0),
        cd_offset: cd_ofs,
        cd_size,
        ..Archive::default()
    };
    let mut p = 0usize;
    for _ in 0..total {
        let n = cd.len() - p;
        if n < 46 || u32le(&cd, p) != CENTRAL_SIG {
            return Err(ZipError::BadCentralDirectory);
        }
        let h = &cd[p..];
        let mut comp = u64::from(u32le(h, 20));
        let mut decomp = u64::from(u32le(h, 24));
        let mut lho = u64::from(u32le(h, 42));
        let nlen = usize::from(u16le(h, 28));
        let xlen = usize::from(u16le(h, 30));
        let clen = usize::from(u16le(h, 32));
        if 46 + nlen + xlen + clen > n {
            return Err(ZipError::BadCentralDirectory);
        }
        let extra = &h[46 + nlen..46 + nlen + xlen];
        if xlen > 0 && comp.max(decomp).max(lho) == U32_MAX {
            // PyTorch's copy reads the zip64 field for these checks (and reads 8-byte
            // values up to the end of the extra data, not of the field).
            let mut at = 0usize;
            let mut remaining = xlen;
            loop {
                if remaining < 4 {
                    return Err(ZipError::BadCentralDirectory);
                }
                let id = u16le(extra, at);
                let fsize = usize::from(u16le(extra, at + 2));
                if fsize + 4 > remaining {
                    return Err(ZipError::BadCentralDirectory);
                }
                if id == 1 {
                    break;
                }
                at += 4 + fsize;
                remaining -= 4 + fsize;
                if remaining == 0 {
                    break;
                }
            }
            if remaining >= 4 {
                remaining -= 4;
                at += 4;
                for v in [&mut decomp, &mut comp, &mut lho] {
                    if *v == U32_MAX && remaining >= 8 {
                        *v = u64le(extra, at);
                        remaining -= 8;
                        at += 8;
                    }
                }
            }
        }
        // `MZ_READ_LE32(p + METHOD_OFS)`: the method and the modification time together.
        if comp != U32_MAX
            && decomp != U32_MAX
            && ((u32le(h, 10) == 0 && decomp != comp) || (decomp != 0 && comp == 0))
        {
            return Err(ZipError::BadCentralDirectory);
        }
        let disk = u64::from(u16le(h, 34));
        if disk == 0xFFFF || (disk != this_disk && disk != 1) {
            return refused("member on another disk (MZ_ZIP_UNSUPPORTED_MULTIDISK)");
        }
        if comp != U32_MAX && lho.saturating_add(30).saturating_add(comp) > size {
            return Err(ZipError::BadCentralDirectory);
        }
        let flags = u16le(h, 8);
        if flags & 0x2000 != 0 {
            return refused("masked local headers (MZ_ZIP_UNSUPPORTED_ENCRYPTION)");
        }
        let raw_name = h[46..46 + nlen].to_vec();
        let method = u16le(h, 10);
        // What `mz_zip_reader_file_stat` reports (its own zip64 parse).
        let (csize, usize_, hdr) = miniz_stat_sizes(h, extra);
        let dir = raw_name.last() == Some(&b'/') || u32le(h, 38) & 0x10 != 0;
        let read_len = if dir || csize == 0 {
            0
        } else if method == 0 {
            usize_
        } else {
            csize
        };
        arch.entries.push(Entry {
            name: String::from_utf8_lossy(&raw_name).into_owned(),
            raw_name,
            flags,
            method,
            crc: u32le(h, 16),
            compressed_size: csize,
            size: usize_,
            header_offset: hdr,
            data_offset: hdr,
            read_len,
            dir,
            unlisted: false,
            local_name: None,
            local_crc: 0,
            local_flags: 0,
        });
        p += 46 + nlen + xlen + clen;
    }
    arch.sorted = miniz_sort(&arch.entries);
    Ok(arch)
}

/// `mz_zip_file_stat_internal`'s sizes and header offset.
fn miniz_stat_sizes(h: &[u8], extra: &[u8]) -> (u64, u64, u64) {
    let mut comp = u64::from(u32le(h, 20));
    let mut uncomp = u64::from(u32le(h, 24));
    let mut lho = u64::from(u32le(h, 42));
    if comp.max(uncomp).max(lho) == U32_MAX {
        let mut at = 0usize;
        while at + 4 <= extra.len() {
            let id = u16le(extra, at);
            let fsize = usize::from(u16le(extra, at + 2));
            let Some(field) = extra.get(at + 4..at + 4 + fsize) else {
                break;
            };
            if id == 1 {
                let mut j = 0;
                for v in [&mut uncomp, &mut comp, &mut lho] {
                    if *v == U32_MAX && j + 8 <= field.len() {
                        *v = u64le(field, j);
                        j += 8;
                    }
                }
                break;
            }
            at += 4 + fsize;
        }
    }
    (comp, uncomp, lho)
}

fn miniz_lower(c: u8) -> u8 {
    c.to_ascii_lowercase()
}

/// `mz_zip_reader_filename_less`.
fn miniz_less(l: &[u8], r: &[u8]) -> bool {
    for (a, b) in l.iter().zip(r) {
        let (a, b) = (miniz_lower(*a), miniz_lower(*b));
        if a != b {
            return a < b;
        }
    }
    l.len() < r.len()
}

/// `mz_zip_reader_sort_central_dir_offsets_by_filename`: miniz's heap sort, step by step
/// (it is not stable, and which of two equal names a lookup finds depends on it).
fn miniz_sort(entries: &[Entry]) -> Vec<usize> {
    let size = entries.len();
    let mut idx: Vec<usize> = (0..size).collect();
    if size <= 1 {
        return idx;
    }
    let less = |idx: &[usize], a: usize, b: usize| {
        miniz_less(&entries[idx[a]].raw_name, &entries[idx[b]].raw_name)
    };
    let sift = |idx: &mut Vec<usize>, mut root: usize, end: usize| loop {
        let mut child = (root << 1) + 1;
        if child >= end {
            break;
        }
        if child + 1 < end && less(idx, child, child + 1) {
            child += 1;
        }
        if !less(idx, root, child) {
            break;
        }
        idx.swap(root, child);
        root = child;
    };
    let mut start = (size - 2) >> 1;
    loop {
        sift(&mut idx, start, size);
        if start == 0 {
            break;
        }
        start -= 1;
    }
    let mut end = size - 1;
    while end > 0 {
        idx.swap(end, 0);
        sift(&mut idx, 0, end);
        end -= 1;
    }
    idx
}

/// `mz_zip_filename_compare` against a C string.
fn miniz_compare(name: &[u8], key: &[u8]) -> std::cmp::Ordering {
    for (a, b) in name.iter().zip(key) {
        let (a, b) = (miniz_lower(*a), miniz_lower(*b));
        if a != b {
            return a.cmp(&b);
        }
    }
    name.len().cmp(&key.len())
}

/// `mz_zip_locate_file_binary_search`.
fn miniz_search(entries: &[Entry], sorted: &[usize], key: &[u8]) -> Option<usize> {
    let (mut l, mut h) = (0i64, sorted.len() as i64 - 1);
    while l <= h {
        let m = l + ((h - l) >> 1);
        let i = *sorted.get(m as usize)?;
        match miniz_compare(&entries.get(i)?.raw_name, key) {
            std::cmp::Ordering::Equal => return Some(i),
            std::cmp::Ordering::Less => l = m + 1,
            std::cmp::Ordering::Greater => h = m - 1,
        }
    }
    None
}

// ---------------------------------------------------------------------------------------
// CPython zipfile (Lib/zipfile.py 3.11: _EndRecData, _EndRecData64, _RealGetContents)
// ---------------------------------------------------------------------------------------

/// cp437, bytes 0x80..=0xFF, as Python decodes them.
const CP437_HIGH: [char; 128] = [
    'Ç', 'ü', 'é', 'â', 'ä', 'à', 'å', 'ç', 'ê', 'ë', 'è', 'ï', 'î', 'ì', 'Ä', 'Å', 'É', 'æ', 'Æ',
    'ô', 'ö', 'ò', 'û', 'ù', 'ÿ', 'Ö', 'Ü', '¢', '£', '¥', '₧', 'ƒ', 'á', 'í', 'ó', 'ú', 'ñ', 'Ñ',
    'ª', 'º', '¿', '⌐', '¬', '½', '¼', '¡', '«', '»', '░', '▒', '▓', '│', '┤', '╡', '╢', '╖', '╕',
    '╣', '║', '╗', '╝', '╜', '╛', '┐', '└', '┴', '┬', '├', '─', '┼', '╞', '╟', '╚', '╔', '╩', '╦',
    '╠', '═', '╬', '╧', '╨', '╤', '╥', '╙', '╘', '╒', '╓', '╫', '╪', '┘', '┌', '█', '▄', '▌', '▐',
    '▀', 'α', 'ß', 'Γ', 'π', 'Σ', 'σ', 'µ', 'τ', 'Φ', 'Θ', 'Ω', 'δ', '∞', 'φ', 'ε', '∩', '≡', '±',
    '≥', '≤', '⌠', '⌡', '÷', '≈', '°', '∙', '·', '√', 'ⁿ', '²', '■', '\u{a0}',
];

/// A name as zipfile decodes it: UTF-8 when flag bit 11 is set (strictly), else cp437.
fn zipfile_decode(raw: &[u8], flags: u16) -> Option<String> {
    if flags & 0x0800 != 0 {
        return String::from_utf8(raw.to_vec()).ok();
    }
    Some(
        raw.iter()
            .map(|&b| {
                if b < 0x80 {
                    char::from(b)
                } else {
                    CP437_HIGH[usize::from(b - 0x80)]
                }
            })
            .collect(),
    )
}

/// An end record: its offset and bytes.
type Record = (u64, Vec<u8>);

/// `_EndRecData` (and `_EndRecData64`): the end record's position and fields as zipfile
/// uses them, and where it took a zip64 end record from.
fn zipfile_endrec(blob: &dyn Blob) -> Result<(u64, Vec<u8>, Option<Record>), ZipError> {
    let size = blob.len();
    if size < 22 {
        return Err(ZipError::NoEndRecord);
    }
    let mut eocd = None;
    if let Some(last) = exact(blob, size - 22, 22)? {
        if u32le(&last, 0) == EOCD_SIG && last[20..22] == [0, 0] {
            eocd = Some(size - 22);
        }
    }
    if eocd.is_none() {
        let start = size.saturating_sub((1 << 16) + 22);
        let data = blob.read_at(start, (size - start) as usize)?;
        let found = data.windows(4).rposition(|w| w == b"PK\x05\x06");
        match found {
            Some(i) if data.len() - i >= 22 => eocd = Some(start + i as u64),
            _ => return Err(ZipError::NoEndRecord),
        }
    }
    let Some(eocd) = eocd else {
        return Err(ZipError::NoEndRecord);
    };
    let Some(rec) = exact(blob, eocd, 22)? else {
        return Err(ZipError::NoEndRecord);
    };
    // _EndRecData64: a locator right before the end record, then a zip64 end record right
    // before the locator ("Assume no 'zip64 extensible data'"); the locator's offset is
    // not used.
    if eocd < 20 {
        return Ok((eocd, rec, None));
    }
    let Some(loc) = exact(blob, eocd - 20, 20)? else {
        return Ok((eocd, rec, None));
    };
    if u32le(&loc, 0) != ZIP64_LOCATOR_SIG {
        return Ok((eocd, rec, None));
    }
    if u32le(&loc, 4) != 0 || u32le(&loc, 16) > 1 {
        return refused("BadZipFile: zipfiles that span multiple disks are not supported");
    }
    let Some(at) = eocd.checked_sub(20 + 56) else {
        // The second seek is outside the try: OSError, "File is not a zip file".
        return refused("BadZipFile: File is not a zip file (zip64 locator at the start)");
    };
    match exact(blob, at, 56)? {
        Some(r) if u32le(&r, 0) == ZIP64_EOCD_SIG => Ok((eocd, rec, Some((at, r)))),
        _ => Ok((eocd, rec, None)),
    }
}

fn zipfile_directory(blob: &dyn Blob, max_members: usize) -> Result<Archive, ZipError> {
    let (eocd, rec, zip64) = zipfile_endrec(blob)?;
    let (size_cd, offset_cd) = match &zip64 {
        Some((_, r)) => (u64le(r, 40), u64le(r, 48)),
        None => (u64::from(u32le(&rec, 12)), u64::from(u32le(&rec, 16))),
    };
    // concat = location - size_cd - offset_cd (- 76 with zip64), in Python integers.
    let mut concat = i128::from(eocd) - i128::from(size_cd) - i128::from(offset_cd);
    if zip64.is_some() {
        concat -= 56 + 20;
    }
    let start_dir = i128::from(offset_cd) + concat;
    let Ok(start_dir) = u64::try_from(start_dir) else {
        return refused("BadZipFile: Bad offset for central directory");
    };
    let avail = blob.len().saturating_sub(start_dir).min(size_cd);
    let data = blob.read_at(start_dir, avail as usize)?;
    let mut arch = Archive {
        reader: Some(ZipReader::Zipfile),
        eocd_offset: eocd,
        zip64_offset: zip64.as_ref().map(|z| z.0),
        cd_offset: start_dir,
        cd_size: size_cd,
        prefix: u64::try_from(concat).unwrap_or(0),
        ..Archive::default()
    };
    let mut total: u64 = 0;
    let mut p = 0usize;
    let mut walked = 0usize;
    while total < size_cd {
        walked += 1;
        if walked > max_members {
            return Err(ZipError::TooManyMembers(max_members));
        }
        let Some(h) = data.get(p..p + 46) else {
            return refused("BadZipFile: Truncated central directory");
        };
        if u32le(h, 0) != CENTRAL_SIG {
            return refused("BadZipFile: Bad magic number for central directory");
        }
        let nlen = usize::from(u16le(h, 28));
        let xlen = usize::from(u16le(h, 30));
        let clen = usize::from(u16le(h, 32));
        let flags = u16le(h, 8);
        let take = |from: usize, n: usize| -> &[u8] {
            let s = from.min(data.len());
            &data[s..from.saturating_add(n).min(data.len())]
        };
        let raw_name = take(p + 46, nlen).to_vec();
        let extra = take(p + 46 + nlen, xlen).to_vec();
        let Some(orig) = zipfile_decode(&raw_name, flags) else {
            return refused("UnicodeDecodeError: a name flagged UTF-8 is not UTF-8");
        };
        if h[6] > 63 {
            return refused(format!(
                "zip file version {:.1} needs a newer zipfile (it raises, as for any version above 6.3)",
                f64::from(h[6]) / 10.0
            ));
        }
        let mut csize = u64::from(u32le(h, 20));
        let mut size = u64::from(u32le(h, 24));
        let mut hdr = u64::from(u32le(h, 42));
        zipfile_extra(&extra, &mut size, &mut csize, &mut hdr)?;
        let name = match orig.find('\0') {
            Some(i) => orig[..i].to_string(),
            None => orig.clone(),
        };
        total = total + 46 + nlen as u64 + xlen as u64 + clen as u64;
        p = p.saturating_add(46 + nlen + xlen + clen);
        // A negative offset (the directory claims more bytes before it than there are):
        // zipfile still lists the member (namelist, NameToInfo) but cannot open it.
        let header_offset = match u64::try_from(i128::from(hdr) + concat) {
            Ok(o) => o,
            Err(_) => {
                arch.anomalies.push(Anomaly {
                    kind: AnomalyKind::Tampering,
                    member: Some(name.clone()),
                    offset: start_dir,
                    message: format!(
                        "`{name}`: zipfile computes a negative header offset ({hdr} + {concat}); it lists the member but cannot open it"
                    ),
                });
                NOWHERE
            }
        };
        let method = u16le(h, 10);
        arch.entries.push(Entry {
            dir: name.ends_with('/'),
            name,
            raw_name,
            flags,
            method,
            crc: u32le(h, 16),
            compressed_size: csize,
            size,
            header_offset,
            data_offset: header_offset,
            read_len: if method == 0 { csize.min(size) } else { csize },
            unlisted: false,
            local_name: None,
            local_crc: 0,
            local_flags: 0,
        });
    }
    Ok(arch)
}

/// `ZipInfo._decodeExtra` (3.11): every zip64 field, in order.
fn zipfile_extra(
    extra: &[u8],
    size: &mut u64,
    csize: &mut u64,
    hdr: &mut u64,
) -> Result<(), ZipError> {
    let mut rest = extra;
    while rest.len() >= 4 {
        let tp = u16le(rest, 0);
        let ln = usize::from(u16le(rest, 2));
        if ln + 4 > rest.len() {
            return refused(format!(
                "BadZipFile: Corrupt extra field {tp:04x} (size={ln})"
            ));
        }
        if tp == 1 {
            let mut data = &rest[4..ln + 4];
            let mut next = |what: &str| -> Result<u64, ZipError> {
                let Some(v) = data.get(..8) else {
                    return refused(format!(
                        "BadZipFile: Corrupt zip64 extra field. {what} not found."
                    ));
                };
                let v = u64le(v, 0);
                data = &data[8..];
                Ok(v)
            };
            if *size == u64::MAX || *size == U32_MAX {
                *size = next("File size")?;
            }
            if *csize == U32_MAX {
                *csize = next("Compress size")?;
            }
            if *hdr == U32_MAX {
                *hdr = next("Header offset")?;
            }
        }
        rest = &rest[ln + 4..];
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The tolerant reading
// ---------------------------------------------------------------------------------------

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

/// The tolerant reading: the central directory where the end record's size says it
/// ends (prefixes inferred), the zip64 locator followed, and every local header it
/// points at. Neither real reader reads exactly this way (see [`read_as`]).
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
    let mut zip64_offset = None;
    // ZIP64: the locator sits right before the end record.
    if e >= 20 && u32le(&tail, e - 20) == ZIP64_LOCATOR_SIG {
        let z64_at = u64le(&tail, e - 20 + 8);
        let rec = blob.read_at(z64_at, 56)?;
        if u32le(&rec, 0) == ZIP64_EOCD_SIG {
            total = u64le(&rec, 32);
            cd_size = u64le(&rec, 40);
            cd_offset = u64le(&rec, 48);
            cd_end = z64_at;
            zip64_offset = Some(z64_at);
        }
    }
    if total > max_members as u64 {
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
        eocd_offset: eocd_at,
        zip64_offset,
        cd_offset: cd_start,
        cd_size,
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
        let raw_name = name_bytes.to_vec();
        let extra = cd.get(p + 46 + nlen..p + 46 + nlen + xlen).unwrap_or(&[]);
        parse_zip64_extra(extra, &mut size, &mut csize, &mut hdr);
        p += 46 + nlen + xlen + clen;
        let header_offset = hdr.saturating_add(prefix);
        let mut entry = Entry {
            dir: name.ends_with('/'),
            name,
            raw_name,
            flags,
            method,
            crc,
            compressed_size: csize,
            size,
            header_offset,
            data_offset: header_offset,
            read_len: csize,
            unlisted: false,
            local_name: None,
            local_crc: 0,
            local_flags: 0,
        };
        check_local(blob, &mut entry, None, &mut arch.anomalies)?;
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
                if *field == U32_MAX && j + 8 <= body.len() {
                    *field = u64le(body, j);
                    j += 8;
                }
            }
        }
        i += 4 + len;
    }
}

// ---------------------------------------------------------------------------------------
// Checks every reading makes
// ---------------------------------------------------------------------------------------

fn check_local(
    blob: &dyn Blob,
    e: &mut Entry,
    reader: Option<ZipReader>,
    out: &mut Vec<Anomaly>,
) -> io::Result<()> {
    let h = blob.read_at(e.header_offset, 30)?;
    if h.len() < 30 || u32le(&h, 0) != LOCAL_SIG {
        out.push(Anomaly {
            kind: AnomalyKind::Tampering,
            member: Some(e.name.clone()),
            offset: e.header_offset,
            message: match reader {
                Some(r) => format!(
                    "`{}`: no local header where {} looks for it (offset {}); it cannot read the member",
                    e.name,
                    r.name(),
                    e.header_offset
                ),
                None => format!(
                    "`{}`: no local header where the central directory points",
                    e.name
                ),
            },
        });
        if reader.is_some() {
            e.read_len = 0;
        }
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
    // zipfile compares the names decoded by their own flags (the central one before it
    // is cut at NUL); miniz never looks at the local name.
    let same = match (
        zipfile_decode(&e.raw_name, e.flags),
        zipfile_decode(&name, local_flags),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    };
    if !same {
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
    if e.method == 0 && e.compressed_size != e.size && !e.dir {
        out.push(Anomaly {
            kind: AnomalyKind::Tampering,
            member: m.clone(),
            offset: e.header_offset,
            message: format!(
                "`{}` is stored but its sizes differ ({} compressed, {} uncompressed): miniz reads {} bytes, zipfile {}",
                e.name,
                e.compressed_size,
                e.size,
                e.size,
                e.compressed_size.min(e.size)
            ),
        });
    }
    let descriptor = (e.flags | local_flags) & 0x0008 != 0;
    if descriptor {
        // Data descriptor after the data: [signature] crc, compressed size, size.
        let d = blob.read_at(e.data_offset.saturating_add(e.compressed_size), 16)?;
        let off = if u32le(&d, 0) == 0x0807_4b50 { 4 } else { 0 };
        if d.len() >= off + 4 {
            let dcrc = u32le(&d, off);
            if dcrc != e.crc {
                out.push(Anomaly {
                    kind: AnomalyKind::Tampering,
                    member: m.clone(),
                    offset: e.data_offset.saturating_add(e.compressed_size),
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
    // The key a lookup compares: miniz ignores ASCII case, zipfile compares exactly.
    let key = |e: &Entry| -> Vec<u8> {
        match arch.reader {
            Some(ZipReader::Miniz) => e.raw_name.to_ascii_lowercase(),
            _ => e.name.as_bytes().to_vec(),
        }
    };
    let mut groups: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
    let mut order = Vec::new();
    for (i, e) in arch.entries.iter().enumerate() {
        if e.unlisted {
            continue;
        }
        let g = groups.entry(key(e)).or_default();
        if g.is_empty() {
            order.push(key(e));
        }
        g.push(i);
    }
    let mut dups = Vec::new();
    for k in &order {
        let Some(g) = groups.get(k) else { continue };
        if g.len() < 2 {
            continue;
        }
        let offsets: Vec<String> = g
            .iter()
            .map(|&i| arch.entries[i].header_offset.to_string())
            .collect();
        let first = &arch.entries[g[0]];
        let chosen = match arch.reader {
            Some(ZipReader::Miniz) => miniz_search(&arch.entries, &arch.sorted, &first.raw_name)
                .map(|i| {
                    format!(
                        "; miniz (torch) looks names up case-insensitively by binary search and takes the one at {}",
                        arch.entries[i].header_offset
                    )
                })
                .unwrap_or_default(),
            Some(ZipReader::Zipfile) => g
                .last()
                .map(|&i| {
                    format!(
                        "; zipfile (`read`/`open` by name, numpy.load) takes the last, at {}",
                        arch.entries[i].header_offset
                    )
                })
                .unwrap_or_default(),
            None => String::new(),
        };
        for &i in &g[1..] {
            let e = &arch.entries[i];
            dups.push(Anomaly {
                kind: AnomalyKind::Duplicate,
                member: Some(e.name.clone()),
                offset: e.header_offset,
                message: if g.len() == 2 && arch.reader.is_none() {
                    format!(
                        "`{}` appears twice (local headers at {} and {}); different readers load different copies",
                        e.name, first.header_offset, e.header_offset
                    )
                } else {
                    format!(
                        "`{}` appears {} times (local headers at {}); different readers load different copies{chosen}",
                        e.name,
                        g.len(),
                        offsets.join(", ")
                    )
                },
            });
        }
    }
    let mut spans: Vec<(u64, u64, &str)> = arch
        .entries
        .iter()
        .filter(|e| !e.is_dir())
        .map(|e| {
            (
                e.header_offset,
                e.data_offset.saturating_add(e.compressed_size),
                e.name.as_str(),
            )
        })
        .collect();
    spans.sort_unstable();
    // Each span is compared with the furthest-reaching one before it: linear, and every
    // member that starts inside an earlier one is reported once.
    let mut reach: Option<(u64, &str)> = None;
    for b in &spans {
        if let Some((end, name)) = reach {
            if b.0 < end {
                dups.push(Anomaly {
                    kind: AnomalyKind::Overlap,
                    member: Some(b.2.to_string()),
                    offset: b.0,
                    message: format!("`{}` overlaps `{name}` (bytes {}..{end})", b.2, b.0),
                });
            }
        }
        if reach.is_none_or(|(end, _)| b.1 > end) {
            reach = Some((b.1, b.2));
        }
    }
    arch.anomalies.extend(dups);
}

/// Walks local headers from the start of the archive and reports members that the
/// central directory does not list: streaming readers would still extract them.
fn find_unlisted(blob: &dyn Blob, arch: &mut Archive, max_members: usize) -> io::Result<()> {
    let known: HashMap<u64, u64> = arch
        .entries
        .iter()
        .map(|e| (e.header_offset, e.compressed_size))
        .collect();
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
        if let Some(&listed) = known.get(&pos) {
            csize = listed;
        } else {
            let name = blob.read_at(pos + 30, nlen as usize)?;
            let raw_name = name.into_owned();
            let name = String::from_utf8_lossy(&raw_name).into_owned();
            let data_offset = pos + 30 + nlen + xlen;
            arch.anomalies.push(Anomaly {
                kind: AnomalyKind::Unlisted,
                member: Some(name.clone()),
                offset: pos,
                message: format!("local member `{name}` at {pos} is not in the central directory"),
            });
            arch.entries.push(Entry {
                dir: name.ends_with('/'),
                name,
                raw_name,
                flags,
                method: u16le(&h, 8),
                crc: u32le(&h, 14),
                compressed_size: csize,
                size: u32le(&h, 22) as u64,
                header_offset: pos,
                data_offset,
                read_len: csize,
                unlisted: true,
                local_name: None,
                local_crc: u32le(&h, 14),
                local_flags: flags,
            });
        }
        if flags & 0x0008 != 0 && csize == 0 {
            // Sizes only in a data descriptor: the central directory is the only guide.
            break;
        }
        let Some(next) = pos
            .checked_add(30 + nlen + xlen)
            .and_then(|p| p.checked_add(csize))
        else {
            break;
        };
        pos = next;
        if flags & 0x0008 != 0 {
            let d = blob.read_at(pos, 4)?;
            pos += if u32le(&d, 0) == 0x0807_4b50 { 16 } else { 12 };
        }
    }
    Ok(())
}

/// Analyses already made of a stored range, so that members sharing bytes (duplicates,
/// overlaps, many entries pointing at one record) are analysed once per reading.
#[derive(Default)]
pub(crate) struct RangeCache {
    seen: HashMap<RangeKey, (String, Vec<crate::finding::Finding>)>,
}

/// Data offset, length taken, compression method, and whether it is read as a torch
/// archive's member.
pub(crate) type RangeKey = (u64, u64, u16, bool);

impl RangeCache {
    /// The findings recorded for `key`, re-addressed to `path`.
    pub(crate) fn replay(&self, key: RangeKey, path: &str) -> Option<Vec<crate::finding::Finding>> {
        let (first, findings) = self.seen.get(&key)?;
        let nested = format!("{first}!");
        Some(
            findings
                .iter()
                .cloned()
                .map(|mut f| {
                    f.member = f.member.map(|m| {
                        if m == *first {
                            path.to_string()
                        } else if let Some(rest) = m.strip_prefix(&nested) {
                            format!("{path}!{rest}")
                        } else {
                            m
                        }
                    });
                    f
                })
                .collect(),
        )
    }

    pub(crate) fn insert(
        &mut self,
        key: RangeKey,
        path: &str,
        findings: &[crate::finding::Finding],
    ) {
        self.seen
            .entry(key)
            .or_insert_with(|| (path.to_string(), findings.to_vec()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::blob::MemBlob;

    /// One member to place: its local record goes at `at` (or next), the central
    /// entry points at `point` (or the local record).
    struct M {
        name: &'static str,
        data: Vec<u8>,
    }

    fn local(name: &[u8], data: &[u8]) -> Vec<u8> {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let mut v = Vec::new();
        v.extend_from_slice(&LOCAL_SIG.to_le_bytes());
        v.extend_from_slice(&20u16.to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes()); // flags
        v.extend_from_slice(&0u16.to_le_bytes()); // stored
        v.extend_from_slice(&0u32.to_le_bytes()); // time, date
        v.extend_from_slice(&crc.sum().to_le_bytes());
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(&(name.len() as u16).to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(name);
        v.extend_from_slice(data);
        v
    }

    fn central(name: &[u8], data: &[u8], offset: u32) -> Vec<u8> {
        let mut crc = flate2::Crc::new();
        crc.update(data);
        let mut v = Vec::new();
        v.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
        v.extend_from_slice(&20u16.to_le_bytes());
        v.extend_from_slice(&20u16.to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&crc.sum().to_le_bytes());
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(&(name.len() as u16).to_le_bytes());
        v.extend_from_slice(&[0; 8]); // extra, comment, disk, internal attributes
        v.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        v.extend_from_slice(&offset.to_le_bytes());
        v.extend_from_slice(name);
        v
    }

    fn eocd(count: u16, size: u32, offset: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&EOCD_SIG.to_le_bytes());
        v.extend_from_slice(&[0; 4]);
        v.extend_from_slice(&count.to_le_bytes());
        v.extend_from_slice(&count.to_le_bytes());
        v.extend_from_slice(&size.to_le_bytes());
        v.extend_from_slice(&offset.to_le_bytes());
        v.extend_from_slice(&0u16.to_le_bytes());
        v
    }

    /// Local records of `members`, their offsets (relative to `base`).
    fn locals(out: &mut Vec<u8>, members: &[M], base: usize) -> Vec<u32> {
        members
            .iter()
            .map(|m| {
                let at = (out.len() - base) as u32;
                out.extend(local(m.name.as_bytes(), &m.data));
                at
            })
            .collect()
    }

    fn directory(members: &[M], offsets: &[u32]) -> Vec<u8> {
        members
            .iter()
            .zip(offsets)
            .flat_map(|(m, &o)| central(m.name.as_bytes(), &m.data, o))
            .collect()
    }

    fn both(z: &[u8]) -> (Archive, Archive) {
        let [m, p] = readings(&MemBlob(z), 100);
        match (m, p) {
            (Ok(m), Ok(p)) => (m, p),
            other => panic!("a reading failed: {other:?}"),
        }
    }

    fn content(a: &Archive, z: &[u8], name: &str) -> Vec<u8> {
        let e = a
            .locate(name)
            .unwrap_or_else(|| panic!("{:?} finds no `{name}`", a.reader));
        let s = e.data_offset as usize;
        z[s..s + e.read_len as usize].to_vec()
    }

    fn m(name: &'static str, data: &[u8]) -> M {
        M {
            name,
            data: data.to_vec(),
        }
    }

    #[test]
    fn a_plain_archive_reads_the_same_for_both() {
        let ms = [m("archive/data.pkl", b"good"), m("archive/version", b"3\n")];
        let mut z = Vec::new();
        let offs = locals(&mut z, &ms, 0);
        let cd = directory(&ms, &offs);
        let at = z.len() as u32;
        z.extend(&cd);
        z.extend(eocd(2, cd.len() as u32, at));
        let (mz, zf) = both(&z);
        assert!(mz.same_directory(&zf));
        assert!(
            mz.anomalies.is_empty() && zf.anomalies.is_empty(),
            "{:?}",
            mz.anomalies
        );
        assert_eq!(content(&mz, &z, "archive/data.pkl"), b"good");
        assert_eq!(mz.torch_root().as_deref(), Some("archive"));
    }

    #[test]
    fn two_central_directories_give_two_readings() {
        // [good @0][CD1 -> good][evil][CD2 -> evil][end record]: the end record gives
        // CD1's offset (miniz reads there) and CD1's size, so zipfile reads the same
        // number of bytes right before the end record: CD2, whose offset it shifts by
        // concat = CD2 - CD1.
        let good = m("archive/data.pkl", b"good");
        let evil = m("archive/data.pkl", b"evil");
        let mut z = Vec::new();
        let good_at = locals(&mut z, std::slice::from_ref(&good), 0);
        let cd1_at = z.len();
        let cd1 = directory(std::slice::from_ref(&good), &good_at);
        z.extend(&cd1);
        let evil_at = z.len();
        z.extend(local(evil.name.as_bytes(), &evil.data));
        let cd2_at = z.len();
        let concat = cd2_at - cd1_at;
        let cd2 = directory(std::slice::from_ref(&evil), &[(evil_at - concat) as u32]);
        assert_eq!(cd1.len(), cd2.len());
        z.extend(&cd2);
        z.extend(eocd(1, cd1.len() as u32, cd1_at as u32));
        let (mz, zf) = both(&z);
        assert!(!mz.same_directory(&zf));
        assert_eq!((mz.cd_offset, zf.cd_offset), (cd1_at as u64, cd2_at as u64));
        assert_eq!(zf.prefix, concat as u64);
        assert_eq!(content(&mz, &z, "archive/data.pkl"), b"good");
        assert_eq!(content(&zf, &z, "archive/data.pkl"), b"evil");
    }

    #[test]
    fn a_prefix_with_relative_offsets_splits_the_readers() {
        // A zip written alone (offsets from its own start) appended to a prefix that is
        // itself the start of a zip: an evil local record at 0 and, at the real
        // directory's *relative* offset, a directory pointing at it. miniz reads the
        // offsets as written (the prefix's directory, the evil member; the file starts
        // with PK\x03\x04, so torch.load takes it as a zip); zipfile adds concat.
        let evil = m("archive/data.pkl", b"evil");
        let good = m("archive/data.pkl", b"good");
        let mut z = local(evil.name.as_bytes(), &evil.data);
        let real_cd_rel = local(good.name.as_bytes(), &good.data).len();
        assert!(z.len() <= real_cd_rel);
        z.resize(real_cd_rel, 0);
        z.extend(directory(std::slice::from_ref(&evil), &[0]));
        let prefix = z.len();
        let offs = locals(&mut z, std::slice::from_ref(&good), prefix);
        let cd = directory(std::slice::from_ref(&good), &offs);
        let at = (z.len() - prefix) as u32;
        assert_eq!(at as usize, real_cd_rel);
        z.extend(&cd);
        z.extend(eocd(1, cd.len() as u32, at));
        let (mz, zf) = both(&z);
        assert!(!mz.same_directory(&zf));
        assert_eq!((mz.prefix, zf.prefix), (0, prefix as u64));
        assert_eq!(content(&mz, &z, "archive/data.pkl"), b"evil");
        assert_eq!(content(&zf, &z, "archive/data.pkl"), b"good");
    }

    #[test]
    fn a_prefix_with_absolute_offsets_reads_the_same() {
        let mut z = b"#!/bin/sh\nexit 0\n".to_vec();
        let ms = [m("archive/data.pkl", b"good")];
        let offs = locals(&mut z, &ms, 0);
        let cd = directory(&ms, &offs);
        let at = z.len() as u32;
        z.extend(&cd);
        z.extend(eocd(1, cd.len() as u32, at));
        let (mz, zf) = both(&z);
        assert!(mz.same_directory(&zf));
        assert_eq!(content(&mz, &z, "archive/data.pkl"), b"good");
    }

    /// Zip64 end record pointing at a directory.
    fn zip64_record(count: u64, size: u64, offset: u64) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&ZIP64_EOCD_SIG.to_le_bytes());
        v.extend_from_slice(&44u64.to_le_bytes());
        v.extend_from_slice(&45u16.to_le_bytes());
        v.extend_from_slice(&45u16.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&count.to_le_bytes());
        v.extend_from_slice(&count.to_le_bytes());
        v.extend_from_slice(&size.to_le_bytes());
        v.extend_from_slice(&offset.to_le_bytes());
        v
    }

    fn locator(at: u64) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&ZIP64_LOCATOR_SIG.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&at.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        v
    }

    #[test]
    fn a_zip64_locator_pointing_elsewhere_splits_the_readers() {
        // [locals][CD1][zip64 A -> CD1][CD2][zip64 B -> CD2][locator -> A][end record]:
        // miniz follows the locator to A, zipfile takes B (right before the locator).
        let ms = [
            m("archive/data.pkl", b"good"),
            m("archive/data.pkl", b"evil"),
        ];
        let mut z = Vec::new();
        let offs = locals(&mut z, &ms, 0);
        let cd1_at = z.len() as u64;
        let cd1 = directory(&ms[..1], &offs[..1]);
        z.extend(&cd1);
        let a_at = z.len() as u64;
        z.extend(zip64_record(1, cd1.len() as u64, cd1_at));
        let cd2_at = z.len() as u64;
        let cd2 = directory(&ms[1..], &offs[1..]);
        z.extend(&cd2);
        z.extend(zip64_record(1, cd2.len() as u64, cd2_at));
        z.extend(locator(a_at));
        let mut end = eocd(0xFFFF, 0xFFFF_FFFF, 0xFFFF_FFFF);
        end[8..10].copy_from_slice(&0xFFFFu16.to_le_bytes());
        z.extend(end);
        let (mz, zf) = both(&z);
        assert_eq!(mz.zip64_offset, Some(a_at));
        assert_eq!(zf.zip64_offset, Some(cd2_at + cd2.len() as u64));
        assert!(!mz.same_directory(&zf));
        assert_eq!(content(&mz, &z, "archive/data.pkl"), b"good");
        assert_eq!(content(&zf, &z, "archive/data.pkl"), b"evil");
    }

    #[test]
    fn duplicate_names_resolve_as_each_reader_resolves_them() {
        // Far apart: miniz's search meets the first; zipfile keeps the last.
        let ms = [
            m("archive/data.pkl", b"evil"),
            m("archive/byteorder", b"little"),
            m("archive/data/0", b"\0\0\0\0"),
            m("archive/version", b"3\n"),
            m("archive/data.pkl", b"good"),
        ];
        let mut z = Vec::new();
        let offs = locals(&mut z, &ms, 0);
        let cd = directory(&ms, &offs);
        let at = z.len() as u32;
        z.extend(&cd);
        z.extend(eocd(ms.len() as u16, cd.len() as u32, at));
        let (mz, zf) = both(&z);
        assert!(mz.same_directory(&zf));
        assert_eq!(content(&mz, &z, "archive/data.pkl"), b"evil");
        assert_eq!(content(&zf, &z, "archive/data.pkl"), b"good");
        assert!(mz
            .anomalies
            .iter()
            .any(|a| a.kind == AnomalyKind::Duplicate));
        // miniz ignores ASCII case; zipfile does not.
        assert!(mz.locate("ARCHIVE/Data.PKL").is_some());
        assert!(zf.locate("ARCHIVE/Data.PKL").is_none());
    }

    #[test]
    fn adjacent_duplicates_follow_the_heap_sort() {
        // What torch 2.15's PyTorchFileReader returns for this very layout (checked with
        // the real reader): the first. The heap sort is not stable; the search decides.
        let ms = [
            m("archive/byteorder", b"little"),
            m("archive/data.pkl", b"first"),
            m("archive/data.pkl", b"second"),
            m("archive/data/0", b"\0\0\0\0"),
            m("archive/version", b"3\n"),
        ];
        let mut z = Vec::new();
        let offs = locals(&mut z, &ms, 0);
        let cd = directory(&ms, &offs);
        let at = z.len() as u32;
        z.extend(&cd);
        z.extend(eocd(ms.len() as u16, cd.len() as u32, at));
        let (mz, zf) = both(&z);
        let sorted: Vec<&str> = mz
            .sorted
            .iter()
            .map(|&i| mz.entries[i].name.as_str())
            .collect();
        let mut names: Vec<&str> = ms.iter().map(|m| m.name).collect();
        names.sort();
        assert_eq!(sorted, names);
        assert_eq!(content(&mz, &z, "archive/data.pkl"), b"first");
        assert_eq!(content(&zf, &z, "archive/data.pkl"), b"second");
    }

    #[test]
    fn zipfile_cuts_names_at_nul_and_decodes_cp437() {
        let ms = [m("model.pkl\0.txt", b"x"), m("caf\u{e9}", b"y")];
        let mut z = Vec::new();
        // The second name as cp437 byte 0x82 (é), no UTF-8 flag.
        let raw: [&[u8]; 2] = [b"model.pkl\0.txt", b"caf\x82"];
        let mut offs = Vec::new();
        for (r, mm) in raw.iter().zip(&ms) {
            offs.push(z.len() as u32);
            z.extend(local(r, &mm.data));
        }
        let cd: Vec<u8> = raw
            .iter()
            .zip(&ms)
            .zip(&offs)
            .flat_map(|((r, mm), &o)| central(r, &mm.data, o))
            .collect();
        let at = z.len() as u32;
        z.extend(&cd);
        z.extend(eocd(2, cd.len() as u32, at));
        let (mz, zf) = both(&z);
        assert_eq!(zf.entries[0].name, "model.pkl");
        assert_eq!(zf.entries[1].name, "café");
        assert!(zf.locate("model.pkl").is_some());
        assert!(mz.locate("model.pkl").is_none());
        assert!(zf.anomalies.is_empty(), "{:?}", zf.anomalies);
    }

    #[test]
    fn miniz_walks_the_announced_count_zipfile_the_size() {
        let ms = [m("a.pkl", b"a"), m("b.pkl", b"b")];
        let mut z = Vec::new();
        let offs = locals(&mut z, &ms, 0);
        let cd = directory(&ms, &offs);
        let at = z.len() as u32;
        z.extend(&cd);
        z.extend(eocd(1, cd.len() as u32, at));
        let (mz, zf) = both(&z);
        assert_eq!(mz.entries.iter().filter(|e| !e.unlisted).count(), 1);
        assert_eq!(zf.entries.len(), 2);
        assert!(!mz.same_directory(&zf));
    }

    #[test]
    fn hostile_numbers_never_panic() {
        let mut z = local(b"a", b"a");
        let mut cd = central(b"a", b"a", 0xFFFF_FFFF);
        cd[20..28].fill(0xFF);
        cd[30..32].copy_from_slice(&12u16.to_le_bytes());
        cd.extend_from_slice(&[1, 0, 8, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]);
        let at = z.len() as u32;
        z.extend(&cd);
        z.extend(eocd(1, cd.len() as u32, at));
        for r in ZipReader::BOTH {
            let _ = read_as(&MemBlob(&z), 100, r);
        }
        let _ = read(&MemBlob(&z), 100);
        let mut z2 = z.clone();
        let n = z2.len();
        z2[n - 6..n - 2].copy_from_slice(&u32::MAX.to_le_bytes());
        for r in ZipReader::BOTH {
            let _ = read_as(&MemBlob(&z2), 100, r);
        }
        for cut in 0..z.len() {
            for r in ZipReader::BOTH {
                let _ = read_as(&MemBlob(&z[cut..]), 100, r);
                let _ = read_as(&MemBlob(&z[..cut]), 100, r);
            }
        }
    }

    #[test]
    fn the_end_record_search_windows_differ() {
        // A comment holding "PK\x05\x06" in its last 21 bytes: zipfile gives up (the last
        // signature has too few bytes after it), miniz skips it for the real record.
        let ms = [m("a.pkl", b"a")];
        let mut z = Vec::new();
        let offs = locals(&mut z, &ms, 0);
        let cd = directory(&ms, &offs);
        let at = z.len() as u32;
        z.extend(&cd);
        let mut end = eocd(1, cd.len() as u32, at);
        let comment = b"xxxxPK\x05\x06yyyy";
        let n = end.len();
        end[n - 2..].copy_from_slice(&(comment.len() as u16).to_le_bytes());
        z.extend(end);
        z.extend_from_slice(comment);
        assert!(read_as(&MemBlob(&z), 100, ZipReader::Miniz).is_ok());
        assert!(read_as(&MemBlob(&z), 100, ZipReader::Zipfile).is_err());
    }
}
