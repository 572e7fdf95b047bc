//! Tar archives, walked exactly as CPython's `tarfile` (3.11) walks them: `TarFile.next`,
//! `TarInfo.frombuf`, `_proc_member` and its `_proc_builtin` / `_proc_gnulong` /
//! `_proc_sparse` / `_proc_pax`, `_apply_pax_info`, `nti`, `calc_chksums`. Nothing is
//! extracted; a member is a name and a data range.
//!
//! The walk reads on the way `tarfile.open(..., ignore_zeros=True)` (and GNU tar's
//! `--ignore-zeros`) does: past zero blocks and invalid headers, block by block. The
//! members before the first such block are what plain `tarfile` (torch's legacy loader,
//! pandas) returns; the others are only reached by readers that read on.
//!
//! Modelled: pax `x`/`X` records (a `size` or `path` for the next member; the next
//! header's position recomputed from the pax size), global `g` records (kept in
//! `tarfile.pax_headers` and applied to every later member in `_proc_builtin` *after*
//! the walk has stepped over the member's own size field), GNU `L`/`K` names, old GNU
//! sparse headers and their extension blocks, GNU sparse 1.0 maps (data offset),
//! base-256 numbers (positive and negative), the unsigned and signed checksums, Python's
//! `int()` for pax numbers (Unicode digits, `_`, signs, the 4300-digit limit) and octal
//! fields (`0o` prefixes, whitespace), ustar prefixes (used whatever the magic), V7
//! directories, and tarfile's stop rules (a zero block or an invalid header ends the
//! iteration; an invalid first header, or any bad header after a pax/GNU record, raises).
//!
//! Where newer Pythons differ (3.12/3.13 and the 3.11.10+ security releases): pax records
//! are parsed strictly (a malformed record raises `InvalidHeaderError` instead of ending
//! the record list, and with `ignore_zeros` the next header is then read without the pax
//! record's size and path), and later security releases refuse negative sizes and
//! offsets. Both mostly make newer versions stop earlier; the strict-pax plus
//! `ignore_zeros` combination is not modelled.
//!
//! Not modelled either: sparse members are scanned as their stored bytes, not as the
//! file `extractfile` assembles from the sparse map (holes as zeros); links are not
//! followed to their targets (the targets are members, scanned themselves); GNU names and
//! pax values are kept to 64 KiB.

use super::blob::Blob;
use std::io;

/// The reading of members tarfile returns.
pub const TARFILE: &str = "tarfile";
/// The reading of members only `ignore_zeros=True` (or GNU tar `-i`) reaches.
pub const IGNORE_ZEROS: &str = "tar-ignore-zeros";

const BLOCK: i128 = 512;
/// Python's default recursion limit allows about this many chained pax/GNU records.
const MAX_CHAIN: usize = 300;
/// Bytes of a GNU long name or pax path kept (tarfile keeps all of them).
const MAX_NAME: usize = 1 << 16;

#[derive(Debug, Clone)]
pub struct TarEntry {
    pub name: String,
    /// Where the member's first header is (the pax/GNU record before it, if any).
    pub header_offset: u64,
    pub data_offset: u64,
    /// The size tarfile extracts (`TarInfo.size`: pax `size`, global or local, over the
    /// header's own field).
    pub size: u64,
    /// The size field of the member's own header (what the walk steps over when only a
    /// global pax size applies).
    pub header_size: u64,
    pub typeflag: u8,
    /// `extractfile` returns its data: a regular file, or a type tarfile does not know.
    pub regular: bool,
    /// The size came from a pax record (which Python's tarfile honours).
    pub pax_size: bool,
    /// Only readers that read past zero blocks and invalid headers reach it.
    pub beyond_end: bool,
}

/// Everything one walk found.
#[derive(Debug, Default)]
pub struct TarWalk {
    /// tarfile's members, then the ones only `ignore_zeros` reaches (`beyond_end`).
    pub entries: Vec<TarEntry>,
    /// Where tarfile's iteration ends (the block it stops at).
    pub end: u64,
    /// Why it ends there.
    pub end_reason: String,
    /// tarfile raises there (`ReadError`, a loop, ...) instead of ending quietly.
    pub raises: bool,
    /// The first non-zero byte at or after `end` (content tarfile never looks at).
    pub content_after_end: Option<u64>,
    /// The member budget ended the walk.
    pub truncated: bool,
}

impl TarWalk {
    pub fn strict(&self) -> impl Iterator<Item = &TarEntry> {
        self.entries.iter().filter(|e| !e.beyond_end)
    }

    pub fn beyond(&self) -> impl Iterator<Item = &TarEntry> {
        self.entries.iter().filter(|e| e.beyond_end)
    }

    /// The member `tarfile.getmember(name)` returns: the last of that name.
    pub fn getmember(&self, name: &str) -> Option<&TarEntry> {
        self.strict().filter(|e| e.name == name).last()
    }
}

/// A tar header has a valid checksum (either sum) and parses as tarfile parses it.
pub fn sniff(head: &[u8]) -> bool {
    let Some(h) = head.get(..512) else {
        return false;
    };
    !h.iter().all(|b| *b == 0) && frombuf(h).is_ok()
}

/// tarfile's members (`getmembers()`), and whether the budget cut the list.
pub fn entries(blob: &dyn Blob, max_entries: usize) -> io::Result<(Vec<TarEntry>, bool)> {
    let w = walk(blob, max_entries)?;
    let truncated = w.truncated && w.beyond().next().is_none();
    Ok((w.strict().cloned().collect(), truncated))
}

/// Walks the archive as tarfile does, reading on past where it stops.
pub fn walk(blob: &dyn Blob, max_entries: usize) -> io::Result<TarWalk> {
    use std::hash::{Hash, Hasher};
    let mut t = Tarfile {
        r: Window::new(blob),
        pax: Vec::new(),
        offset: 0,
        pos: 0,
        depth: 0,
    };
    let mut out = TarWalk::default();
    let mut strict_end: Option<(u64, String, bool)> = None;
    // (header position, global pax state): seeing one twice means tarfile cycles.
    let mut visited = std::collections::HashSet::new();
    'members: loop {
        if out.entries.len() >= max_entries {
            out.truncated = true;
            end_at(&mut strict_end, t.pos, "the member budget", false);
            break;
        }
        // TarFile.next: "Advance the file pointer."
        if t.offset != i128::from(t.pos) {
            if t.offset == 0 {
                end_at(
                    &mut strict_end,
                    t.pos,
                    "tarfile.offset is 0 (TarFile.next returns None)",
                    false,
                );
                break;
            }
            if t.offset < 0 {
                end_at(
                    &mut strict_end,
                    t.pos,
                    "a negative member size moves the next header before the start (OSError)",
                    true,
                );
                break;
            }
            if t.offset > i128::from(t.r.len()) {
                end_at(
                    &mut strict_end,
                    t.r.len(),
                    "ReadError: unexpected end of data",
                    true,
                );
                break;
            }
            t.pos = t.offset as u64;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        t.pax.hash(&mut h);
        if !visited.insert((t.pos, h.finish())) {
            end_at(
                &mut strict_end,
                t.pos,
                "a negative size points the walk back at a header it read before: tarfile loops forever",
                true,
            );
            break;
        }
        loop {
            let at = t.pos;
            t.depth = 0;
            match t.fromtarfile() {
                Ok(mut m) => {
                    m.beyond_end = strict_end.is_some();
                    out.entries.push(m);
                    continue 'members;
                }
                Err(Stop::Eof) => {
                    end_at(&mut strict_end, at, "a zero block (EOFHeaderError)", false);
                    t.offset += BLOCK;
                }
                Err(Stop::Invalid(why)) => {
                    end_at(
                        &mut strict_end,
                        at,
                        &format!("an invalid header ({why})"),
                        at == 0,
                    );
                    t.offset += BLOCK;
                }
                Err(Stop::Empty) => {
                    end_at(&mut strict_end, at, "the end of the file", at == 0);
                    break 'members;
                }
                Err(Stop::Truncated) => {
                    end_at(&mut strict_end, at, "a truncated header", at == 0);
                    break 'members;
                }
                Err(Stop::Raise(why)) => {
                    end_at(&mut strict_end, at, &why, true);
                    break 'members;
                }
                Err(Stop::Io(e)) => return Err(e),
            }
        }
    }
    if let Some((end, reason, raises)) = strict_end {
        out.end = end;
        out.end_reason = reason;
        out.raises = raises;
    }
    out.content_after_end = t.r.first_nonzero(out.end)?;
    Ok(out)
}

fn end_at(slot: &mut Option<(u64, String, bool)>, at: u64, why: &str, raises: bool) {
    if slot.is_none() {
        *slot = Some((at, why.to_string(), raises));
    }
}

enum Stop {
    /// EmptyHeaderError: no bytes at all.
    Empty,
    /// TruncatedHeaderError: fewer than 512.
    Truncated,
    /// EOFHeaderError: a zero block.
    Eof,
    /// InvalidHeaderError.
    Invalid(String),
    /// An exception that ends the iteration whatever `ignore_zeros` says
    /// (SubsequentHeaderError -> ReadError, ValueError, RecursionError, ...).
    Raise(String),
    Io(io::Error),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Self {
        Stop::Io(e)
    }
}

/// Positioned reads through a 1 MiB window (the ignore-zeros walk goes block by block).
struct Window<'b> {
    blob: &'b dyn Blob,
    start: u64,
    buf: Vec<u8>,
}

impl<'b> Window<'b> {
    fn new(blob: &'b dyn Blob) -> Self {
        Window {
            blob,
            start: 0,
            buf: Vec::new(),
        }
    }

    fn len(&self) -> u64 {
        self.blob.len()
    }

    /// Up to `n` bytes at `at` (fewer at the end).
    fn read(&mut self, at: u64, n: usize) -> io::Result<Vec<u8>> {
        let end = at.saturating_add(n as u64).min(self.len());
        if at >= end {
            return Ok(Vec::new());
        }
        if at < self.start || end > self.start + self.buf.len() as u64 {
            if n > (1 << 20) {
                return Ok(self.blob.read_at(at, (end - at) as usize)?.into_owned());
            }
            self.start = at;
            self.buf = self.blob.read_at(at, 1 << 20)?.into_owned();
        }
        let s = (at - self.start) as usize;
        let e = ((end - self.start) as usize).min(self.buf.len());
        Ok(self.buf.get(s..e).unwrap_or(&[]).to_vec())
    }

    fn first_nonzero(&mut self, from: u64) -> io::Result<Option<u64>> {
        let mut at = from;
        while at < self.len() {
            let chunk = self.read(at, 1 << 20)?;
            if chunk.is_empty() {
                break;
            }
            if let Some(i) = chunk.iter().position(|b| *b != 0) {
                return Ok(Some(at + i as u64));
            }
            at += chunk.len() as u64;
        }
        Ok(None)
    }
}

/// A `TarInfo` while it is being built.
struct Info {
    name: String,
    typeflag: u8,
    size: i128,
    header_size: i128,
    offset: u64,
    offset_data: u64,
    pax_size: bool,
    sparse: Option<(bool, i128)>,
}

const SUPPORTED: &[u8] = b"0\x001256734LKS";
const REGULAR: &[u8] = b"0\x007S";
const GNU_TYPES: &[u8] = b"LKS";

impl Info {
    fn isreg(&self) -> bool {
        REGULAR.contains(&self.typeflag)
    }

    fn steps_over_data(&self) -> bool {
        self.isreg() || !SUPPORTED.contains(&self.typeflag)
    }

    fn isdir(&self) -> bool {
        self.typeflag == b'5'
    }

    fn entry(self) -> TarEntry {
        let clamp = |v: i128| u64::try_from(v.max(0)).unwrap_or(u64::MAX);
        TarEntry {
            regular: self.steps_over_data(),
            name: self.name,
            header_offset: self.offset,
            data_offset: self.offset_data,
            size: clamp(self.size),
            header_size: clamp(self.header_size),
            typeflag: self.typeflag,
            pax_size: self.pax_size,
            beyond_end: false,
        }
    }

    /// `_apply_pax_info`: every record in dict order.
    fn apply_pax(&mut self, pax: &[(String, String)]) -> Result<(), Stop> {
        for (k, v) in pax {
            match k.as_str() {
                "path" => self.name = v.trim_end_matches('/').to_string(),
                "GNU.sparse.name" => self.name = v.clone(),
                // PAX_NUMBER_FIELDS: a ValueError makes it 0.
                "size" => {
                    self.size = py_int(v).unwrap_or(0);
                    self.pax_size = true;
                }
                // `int(value)` without a guard: a ValueError escapes.
                "GNU.sparse.size" | "GNU.sparse.realsize" => {
                    self.size = py_int(v).ok_or_else(|| {
                        Stop::Raise(format!("ValueError: {k}={v:?} is not a number"))
                    })?;
                    self.pax_size = true;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// `_block`: rounded up to the next 512 (Python's floor division, so negative sizes too).
fn block(n: i128) -> i128 {
    let (q, r) = (n.div_euclid(BLOCK), n.rem_euclid(BLOCK));
    (if r != 0 { q + 1 } else { q }) * BLOCK
}

/// `nts`: up to the first NUL, decoded (utf-8 with surrogateescape: lossy here).
fn nts(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Whitespace as Python's `str.isspace` sees it.
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `nti`: base-256 (0o200 positive, 0o377 negative) or `int(nts(s).strip() or "0", 8)`.
fn nti(s: &[u8]) -> Result<i128, String> {
    if let Some(&first) = s.first() {
        if first == 0o200 || first == 0o377 {
            let mut n: i128 = 0;
            for &b in &s[1..] {
                n = (n << 8) + i128::from(b);
            }
            if first == 0o377 {
                n -= 1i128 << (8 * (s.len() - 1));
            }
            return Ok(n);
        }
    }
    let end = s.iter().position(|c| *c == 0).unwrap_or(s.len());
    let text = std::str::from_utf8(&s[..end])
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or_else(|| "invalid header".to_string())?;
    let t = text.trim_matches(py_space);
    if t.is_empty() {
        return Ok(0);
    }
    py_int_radix(t, 8).ok_or_else(|| "invalid header".to_string())
}

/// Python's `int(text, radix)` for an already stripped ASCII string: sign, `0o` prefix
/// (radix 8), digits with single underscores between them.
fn py_int_radix(t: &str, radix: u32) -> Option<i128> {
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let body = if radix == 8 {
        body.strip_prefix("0o")
            .or_else(|| body.strip_prefix("0O"))
            .map(|b| b.strip_prefix('_').unwrap_or(b))
            .unwrap_or(body)
    } else {
        body
    };
    if body.is_empty() || body.starts_with('_') || body.ends_with('_') || body.contains("__") {
        return None;
    }
    let mut n: i128 = 0;
    for c in body.chars().filter(|c| *c != '_') {
        let d = c.to_digit(radix)?;
        n = n
            .checked_mul(i128::from(radix))?
            .checked_add(i128::from(d))?;
    }
    Some(if neg { -n } else { n })
}

/// Code points of the Unicode decimal digit zeros (Python 3.11, Unicode 14): `int()`
/// reads every one of these runs of ten as 0-9.
const DIGIT_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6f0, 0x7c0, 0x966, 0x9e6, 0xa66, 0xae6, 0xb66, 0xbe6, 0xc66, 0xce6, 0xd66,
    0xde6, 0xe50, 0xed0, 0xf20, 0x1040, 0x1090, 0x17e0, 0x1810, 0x1946, 0x19d0, 0x1a80, 0x1a90,
    0x1b50, 0x1bb0, 0x1c40, 0x1c50, 0xa620, 0xa8d0, 0xa900, 0xa9d0, 0xa9f0, 0xaa50, 0xabf0, 0xff10,
    0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450, 0x114d0, 0x11650,
    0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60, 0x16ac0, 0x16b50,
    0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0,
];

/// Python's `int(value)` (base 10) for pax numbers; `None` where it raises ValueError.
fn py_int(v: &str) -> Option<i128> {
    let ascii: String = v
        .chars()
        .map(|c| {
            let cp = u32::from(c);
            match DIGIT_ZEROS.iter().find(|&&z| (z..z + 10).contains(&cp)) {
                Some(&z) => char::from_digit(cp - z, 10).unwrap_or(c),
                None if py_space(c) => ' ',
                None => c,
            }
        })
        .collect();
    let t = ascii.trim_matches(' ');
    if !t.is_ascii() || t.chars().filter(char::is_ascii_digit).count() > 4300 {
        return None;
    }
    py_int_radix(t, 10)
}

/// `int(bytes)`: ASCII only.
fn py_int_bytes(b: &[u8]) -> Option<i128> {
    if !b.is_ascii() {
        return None;
    }
    std::str::from_utf8(b).ok().and_then(py_int)
}

/// `calc_chksums`: 256 + the header's bytes, unsigned and signed, without 148..156.
fn chksums(h: &[u8]) -> (i128, i128) {
    let bytes = h[..148].iter().chain(&h[156..512]);
    let unsigned: i128 = 256 + bytes.clone().map(|&b| i128::from(b)).sum::<i128>();
    let signed: i128 = 256 + bytes.map(|&b| i128::from(b as i8)).sum::<i128>();
    (unsigned, signed)
}

/// `TarInfo.frombuf` for a full 512-byte block that is not all zeros.
fn frombuf(h: &[u8]) -> Result<Info, String> {
    let chksum = nti(&h[148..156])?;
    let (u, s) = chksums(h);
    if chksum != u && chksum != s {
        return Err("bad checksum".into());
    }
    let mut name = nts(&h[..100]);
    for r in [100..108, 108..116, 116..124, 136..148, 329..337, 337..345] {
        nti(&h[r])?;
    }
    let size = nti(&h[124..136])?;
    let mut typeflag = h[156];
    let prefix = nts(&h[345..500]);
    if typeflag == 0 && name.ends_with('/') {
        typeflag = b'5';
    }
    let mut sparse = None;
    if typeflag == b'S' {
        let mut pos = 386;
        for _ in 0..4 {
            nti(&h[pos..pos + 12])?;
            nti(&h[pos + 12..pos + 24])?;
            pos += 24;
        }
        sparse = Some((h[482] != 0, nti(&h[483..495])?));
    }
    if typeflag == b'5' {
        name = name.trim_end_matches('/').to_string();
    }
    if !prefix.is_empty() && !GNU_TYPES.contains(&typeflag) {
        name = format!("{prefix}/{name}");
    }
    Ok(Info {
        name,
        typeflag,
        size,
        header_size: size,
        offset: 0,
        offset_data: 0,
        pax_size: false,
        sparse,
    })
}

struct Tarfile<'b> {
    r: Window<'b>,
    /// `tarfile.pax_headers` (global records), in dict order.
    pax: Vec<(String, String)>,
    /// `tarfile.offset`: where the next header is expected.
    offset: i128,
    /// `tarfile.fileobj.tell()`.
    pos: u64,
    depth: usize,
}

fn dict_set(d: &mut Vec<(String, String)>, k: String, v: String) {
    match d.iter_mut().find(|(key, _)| *key == k) {
        Some(slot) => slot.1 = v,
        None => d.push((k, v)),
    }
}

impl Tarfile<'_> {
    /// `fileobj.read(n)`, Python semantics (a negative count reads to the end).
    fn read(&mut self, n: i128) -> io::Result<Vec<u8>> {
        let rest = self.r.len().saturating_sub(self.pos);
        let n = if n < 0 {
            rest
        } else {
            u64::try_from(n).unwrap_or(u64::MAX).min(rest)
        };
        let d = self
            .r
            .read(self.pos, usize::try_from(n).unwrap_or(usize::MAX))?;
        self.pos += d.len() as u64;
        Ok(d)
    }

    /// Skips `n` bytes as `read` would, keeping only the first `keep`.
    fn read_capped(&mut self, n: i128, keep: usize) -> io::Result<(Vec<u8>, u64)> {
        let start = self.pos;
        let rest = self.r.len().saturating_sub(self.pos);
        let n = if n < 0 {
            rest
        } else {
            u64::try_from(n).unwrap_or(u64::MAX).min(rest)
        };
        let d = self
            .r
            .read(start, usize::try_from(n.min(keep as u64)).unwrap_or(keep))?;
        self.pos += n;
        Ok((d, start))
    }

    /// `TarInfo.fromtarfile`.
    fn fromtarfile(&mut self) -> Result<TarEntry, Stop> {
        let info = self.fromtarfile_info()?;
        Ok(info.entry())
    }

    fn fromtarfile_info(&mut self) -> Result<Info, Stop> {
        self.depth += 1;
        if self.depth > MAX_CHAIN {
            return Err(Stop::Raise(
                "RecursionError: too many chained pax/GNU records".into(),
            ));
        }
        let at = self.pos;
        let h = self.read(BLOCK)?;
        if h.is_empty() {
            return Err(Stop::Empty);
        }
        if h.len() != 512 {
            return Err(Stop::Truncated);
        }
        if h.iter().all(|b| *b == 0) {
            return Err(Stop::Eof);
        }
        let mut info = frombuf(&h).map_err(Stop::Invalid)?;
        info.offset = at;
        match info.typeflag {
            b'L' | b'K' => self.proc_gnulong(info),
            b'S' => self.proc_sparse(info),
            b'x' | b'g' | b'X' => self.proc_pax(info),
            _ => self.proc_builtin(info),
        }
    }

    /// `_proc_builtin`.
    fn proc_builtin(&mut self, mut info: Info) -> Result<Info, Stop> {
        info.offset_data = self.pos;
        let mut offset = i128::from(info.offset_data);
        if info.steps_over_data() {
            offset += block(info.size);
        }
        self.offset = offset;
        let global = std::mem::take(&mut self.pax);
        let applied = info.apply_pax(&global);
        self.pax = global;
        applied?;
        if info.isdir() {
            info.name = info.name.trim_end_matches('/').to_string();
        }
        Ok(info)
    }

    /// Reads the next header for a pax or GNU record: any header error is a
    /// SubsequentHeaderError, which `next()` turns into ReadError.
    fn subsequent(&mut self) -> Result<Info, Stop> {
        match self.fromtarfile_info() {
            Ok(i) => Ok(i),
            Err(Stop::Empty) => Err(Stop::Raise(
                "ReadError: empty header after an extended header".into(),
            )),
            Err(Stop::Truncated) => Err(Stop::Raise(
                "ReadError: truncated header after an extended header".into(),
            )),
            Err(Stop::Eof) => Err(Stop::Raise(
                "ReadError: end of file header right after an extended header".into(),
            )),
            Err(Stop::Invalid(why)) => Err(Stop::Raise(format!(
                "ReadError: {why} (the header after an extended header)"
            ))),
            Err(other) => Err(other),
        }
    }

    /// `_proc_gnulong`.
    fn proc_gnulong(&mut self, info: Info) -> Result<Info, Stop> {
        let (buf, _) = self.read_capped(block(info.size), MAX_NAME)?;
        let mut next = self.subsequent()?;
        next.offset = info.offset;
        if info.typeflag == b'L' {
            next.name = nts(&buf);
        }
        if next.isdir() {
            if let Some(n) = next.name.strip_suffix('/') {
                next.name = n.to_string();
            }
        }
        Ok(next)
    }

    /// `_proc_sparse`: extension blocks, then the data.
    fn proc_sparse(&mut self, mut info: Info) -> Result<Info, Stop> {
        let (mut extended, origsize) = info.sparse.unwrap_or((false, info.size));
        while extended {
            let buf = self.read(BLOCK)?;
            if buf.len() < 512 {
                return Err(Stop::Raise(
                    "IndexError: truncated sparse extension block".into(),
                ));
            }
            let mut pos = 0;
            for _ in 0..21 {
                nti(&buf[pos..pos + 12]).map_err(Stop::Invalid)?;
                nti(&buf[pos + 12..pos + 24]).map_err(Stop::Invalid)?;
                pos += 24;
            }
            extended = buf[504] != 0;
        }
        info.offset_data = self.pos;
        self.offset = i128::from(info.offset_data) + block(info.size);
        info.size = origsize;
        Ok(info)
    }

    /// `_proc_pax`.
    fn proc_pax(&mut self, info: Info) -> Result<Info, Stop> {
        let (buf_len, buf_start) = {
            let (_, start) = self.read_capped(block(info.size), 0)?;
            (self.pos - start, start)
        };
        let global = info.typeflag == b'g';
        let mut headers = if global {
            std::mem::take(&mut self.pax)
        } else {
            self.pax.clone()
        };
        // Records are stored as they are parsed: a bad one leaves the earlier ones in
        // (for `g`, in tarfile.pax_headers itself).
        let (records, failed) = self.pax_records(buf_start, buf_len);
        for (k, v) in records {
            dict_set(&mut headers, k, v);
        }
        if global {
            self.pax = headers.clone();
        }
        if let Some(e) = failed {
            return Err(e);
        }
        let mut next = self.subsequent()?;
        if headers
            .iter()
            .any(|(k, v)| k == "GNU.sparse.major" && v == "1")
            && headers
                .iter()
                .any(|(k, v)| k == "GNU.sparse.minor" && v == "0")
            && !headers
                .iter()
                .any(|(k, _)| k == "GNU.sparse.map" || k == "GNU.sparse.size")
        {
            self.gnusparse_10(&mut next)?;
        } else if let Some((_, map)) = headers.iter().find(|(k, _)| k == "GNU.sparse.map") {
            if map.split(',').any(|x| py_int(x).is_none()) {
                return Err(Stop::Raise("ValueError: bad GNU.sparse.map".into()));
            }
        }
        if info.typeflag != b'g' {
            next.apply_pax(&headers)?;
            next.offset = info.offset;
            if headers.iter().any(|(k, _)| k == "size") {
                let mut offset = i128::from(next.offset_data);
                if next.steps_over_data() {
                    offset += block(next.size);
                }
                self.offset = offset;
            }
        }
        Ok(next)
    }

    /// The records of a pax header at `start..start + len`, as 3.11's regex reads them:
    /// `(\d+) ([^=]+)=` at the record's start, the value up to `start + length - 1`; and
    /// the error that ends them, if any.
    fn pax_records(&mut self, start: u64, len: u64) -> (Vec<(String, String)>, Option<Stop>) {
        let mut out = Vec::new();
        match self.pax_records_into(start, len, &mut out) {
            Ok(()) => (out, None),
            Err(e) => (out, Some(e)),
        }
    }

    fn pax_records_into(
        &mut self,
        start: u64,
        len: u64,
        out: &mut Vec<(String, String)>,
    ) -> Result<(), Stop> {
        let end = start + len;
        let mut p: u64 = 0;
        while p < len {
            // The digits, a space, a keyword of at least one byte, '='.
            let Some(space) = self.find_not(start + p, end, |b| b.is_ascii_digit())? else {
                break;
            };
            let digits = space - (start + p);
            if digits == 0 || self.r.read(space, 1)? != b" " {
                break;
            }
            if digits > 4300 {
                return Err(Stop::Raise(
                    "ValueError: a pax record length over 4300 digits".into(),
                ));
            }
            let text = self.r.read(start + p, digits as usize)?;
            let length = text.iter().fold(0u64, |n, d| {
                n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
            });
            if length == 0 {
                return Err(Stop::Invalid(
                    "invalid header (a pax record of length 0)".into(),
                ));
            }
            let kw_start = space + 1;
            // `[^=]+=`: the keyword runs to the first '='.
            let Some(eq) = self.find_not(kw_start, end, |b| b != b'=')? else {
                break;
            };
            if eq == kw_start {
                break;
            }
            let kw = self.r.read(kw_start, (eq - kw_start).min(4096) as usize)?;
            let keyword = String::from_utf8_lossy(&kw).into_owned();
            let value_start = eq + 1;
            let value_end = (start + p)
                .saturating_add(length)
                .saturating_sub(1)
                .min(end);
            let wanted = matches!(keyword.as_str(), "path" | "size" | "hdrcharset")
                || keyword.starts_with("GNU.sparse.");
            let value = if wanted && value_end > value_start {
                let n = (value_end - value_start).min(MAX_NAME as u64) as usize;
                String::from_utf8_lossy(&self.r.read(value_start, n)?).into_owned()
            } else {
                String::new()
            };
            out.push((keyword, value));
            p = p.saturating_add(length);
        }
        Ok(())
    }

    /// The first position in `from..to` whose byte fails `keep`.
    fn find_not(
        &mut self,
        from: u64,
        to: u64,
        keep: impl Fn(u8) -> bool,
    ) -> io::Result<Option<u64>> {
        let mut at = from;
        while at < to {
            let chunk = self.r.read(at, ((to - at).min(1 << 16)) as usize)?;
            if chunk.is_empty() {
                break;
            }
            if let Some(i) = chunk.iter().position(|b| !keep(*b)) {
                return Ok(Some(at + i as u64));
            }
            at += chunk.len() as u64;
        }
        Ok(None)
    }

    /// `_proc_gnusparse_10`: the map (a count, then numbers, one a line) before the data.
    fn gnusparse_10(&mut self, next: &mut Info) -> Result<(), Stop> {
        let mut buf = self.read(BLOCK)?;
        let Some(nl) = buf.iter().position(|b| *b == b'\n') else {
            return Err(Stop::Raise(
                "ValueError: GNU sparse 1.0 map without a count".into(),
            ));
        };
        let fields = py_int_bytes(&buf[..nl])
            .ok_or_else(|| Stop::Raise("ValueError: bad GNU sparse 1.0 count".into()))?;
        buf.drain(..=nl);
        let mut numbers: i128 = 0;
        while numbers < fields.saturating_mul(2) {
            if !buf.contains(&b'\n') {
                // One more block, then the split must succeed.
                let more = self.read(BLOCK)?;
                buf.extend(more);
            }
            let Some(nl) = buf.iter().position(|b| *b == b'\n') else {
                return Err(Stop::Raise(
                    "ValueError: truncated GNU sparse 1.0 map".into(),
                ));
            };
            if py_int_bytes(&buf[..nl]).is_none() {
                return Err(Stop::Raise(
                    "ValueError: bad GNU sparse 1.0 map entry".into(),
                ));
            }
            buf.drain(..=nl);
            numbers += 1;
        }
        next.offset_data = self.pos;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::blob::MemBlob;

    fn header(name: &str, size: u64, typeflag: u8) -> Vec<u8> {
        let mut h = vec![0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = typeflag;
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        seal(&mut h);
        h
    }

    fn seal(h: &mut [u8]) {
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }

    fn padded(mut d: Vec<u8>) -> Vec<u8> {
        d.resize(d.len().div_ceil(512) * 512, 0);
        d
    }

    fn member(name: &str, data: &[u8]) -> Vec<u8> {
        let mut t = header(name, data.len() as u64, b'0');
        t.extend(padded(data.to_vec()));
        t
    }

    fn pax(kind: u8, records: &[(&str, &str)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (k, v) in records {
            let rest = format!(" {k}={v}\n");
            let mut n = rest.len() + 1;
            while format!("{n}{rest}").len() != n {
                n += 1;
            }
            body.extend(format!("{n}{rest}").as_bytes());
        }
        let mut t = header("PaxHeader", body.len() as u64, kind);
        t.extend(padded(body));
        t
    }

    fn end() -> Vec<u8> {
        vec![0u8; 1024]
    }

    fn walked(t: &[u8]) -> TarWalk {
        walk(&MemBlob(t), 100).unwrap_or_else(|e| panic!("walk: {e}"))
    }

    fn content<'a>(t: &'a [u8], e: &TarEntry) -> &'a [u8] {
        let s = e.data_offset as usize;
        &t[s..(s + e.size as usize).min(t.len())]
    }

    #[test]
    fn a_pax_size_record_decides_the_member_size_as_tarfile_does() {
        // The ustar header says 0 bytes; the pax record says 600: Python reads 600.
        let mut t = pax(b'x', &[("size", "600")]);
        t.extend(header("model.pkl", 0, b'0'));
        t.extend(padded(vec![b'.'; 600]));
        t.extend(end());
        let w = walked(&t);
        let e: Vec<_> = w.strict().collect();
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].size, e[0].pax_size, e[0].header_size), (600, true, 0));
        assert_eq!(e[0].header_offset, 0);
        // ... and the walk steps over 600 bytes: nothing after.
        assert!(w.beyond().next().is_none());
        assert!(w.content_after_end.is_none());
    }

    #[test]
    fn a_local_pax_size_moves_the_next_header() {
        // pax says 0: the member's 512 stored bytes are read as the next header.
        let mut t = pax(b'x', &[("size", "0")]);
        t.extend(header("decoy.txt", 512, b'0'));
        t.extend(member("hidden.pkl", b"payload"));
        t.extend(end());
        let w = walked(&t);
        let names: Vec<_> = w.strict().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["decoy.txt", "hidden.pkl"]);
        assert_eq!(w.strict().next().map(|e| e.size), Some(0));
    }

    #[test]
    fn a_global_pax_size_changes_what_is_extracted_not_where_the_walk_goes() {
        // `g` size=1024: every later member extracts 1024 bytes, but the walk steps over
        // each header's own size field.
        let mut t = pax(b'g', &[("size", "1024")]);
        t.extend(member("a.txt", b"aaaa"));
        t.extend(member("b.pkl", b"bbbb"));
        t.extend(end());
        let w = walked(&t);
        let e: Vec<_> = w.strict().collect();
        assert_eq!(e.len(), 2);
        assert_eq!((e[0].size, e[0].header_size), (1024, 4));
        // a.txt's content (1024 bytes) runs over b.pkl's header.
        let a = content(&t, e[0]);
        assert_eq!(a.len(), 1024);
        assert!(a.windows(5).any(|w| w == b"b.pkl"));
        assert_eq!(e[1].name, "b.pkl");
    }

    #[test]
    fn a_zero_block_ends_tarfile_but_not_ignore_zeros() {
        let mut t = member("a.txt", b"aaaa");
        t.extend(vec![0u8; 512]);
        t.extend(member("hidden.pkl", b"payload"));
        t.extend(end());
        let w = walked(&t);
        assert_eq!(w.strict().count(), 1);
        assert_eq!(w.end, 1024);
        assert!(!w.raises);
        let extra: Vec<_> = w.beyond().collect();
        assert_eq!(extra.len(), 1);
        assert_eq!(extra[0].name, "hidden.pkl");
        assert_eq!(content(&t, extra[0]), b"payload");
        assert_eq!(w.content_after_end, Some(1536));
    }

    #[test]
    fn an_invalid_block_ends_tarfile_but_not_ignore_zeros() {
        let mut t = member("a.txt", b"aaaa");
        t.extend(padded(b"garbage, not a header".to_vec()));
        t.extend(member("hidden.pkl", b"payload"));
        t.extend(end());
        let w = walked(&t);
        assert_eq!(w.strict().count(), 1);
        assert!(w.end_reason.contains("invalid header"));
        assert_eq!(
            w.beyond().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            ["hidden.pkl"]
        );
    }

    #[test]
    fn a_pax_header_before_a_zero_block_raises() {
        let mut t = member("a.txt", b"aaaa");
        t.extend(pax(b'x', &[("path", "x.pkl")]));
        t.extend(end());
        let w = walked(&t);
        assert!(w.raises, "{}", w.end_reason);
        assert_eq!(w.strict().count(), 1);
    }

    #[test]
    fn gnu_long_names_and_pax_paths_apply_outermost_last() {
        let long = "d/".repeat(80) + "model.pkl";
        let mut t = header("././@LongLink", long.len() as u64 + 1, b'L');
        let mut name = long.clone().into_bytes();
        name.push(0);
        t.extend(padded(name));
        t.extend(member("short", b"x"));
        // pax path wins over a GNU name that comes after it.
        t.extend(pax(b'x', &[("path", "from-pax.pkl")]));
        let mut l = header("././@LongLink", 9, b'L');
        l.extend(padded(b"from-gnu\0".to_vec()));
        t.extend(l);
        t.extend(member("short2", b"y"));
        t.extend(end());
        let w = walked(&t);
        let names: Vec<_> = w.strict().map(|e| e.name.as_str()).collect();
        assert_eq!(names, [long.as_str(), "from-pax.pkl"]);
    }

    #[test]
    fn numbers_parse_as_python_parses_them() {
        assert_eq!(nti(b"0000644\0"), Ok(0o644));
        assert_eq!(nti(b" 0o17  \0"), Ok(0o17));
        assert_eq!(nti(b"\0\0\0\0\0\0\0\0"), Ok(0));
        assert!(nti(b"0000 44\0").is_err());
        assert!(nti(b"999\0\0\0\0\0").is_err());
        assert_eq!(nti(&[0o200, 0, 0, 0, 0, 0, 1, 0]), Ok(256));
        assert_eq!(
            nti(&[0o377, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Ok(-1)
        );
        assert_eq!(py_int(" 600\n"), Some(600));
        assert_eq!(py_int("6_00"), Some(600));
        assert_eq!(py_int("\u{666}\u{660}\u{660}"), Some(600));
        assert_eq!(py_int("-512"), Some(-512));
        assert_eq!(py_int("0x10"), None);
        assert_eq!(py_int(&"9".repeat(4301)), None);
        assert_eq!(block(-1), 0);
        assert_eq!(block(-512), -512);
        assert_eq!(block(513), 1024);
    }

    #[test]
    fn signed_checksums_count() {
        let mut h = header("caf\u{e9}.pkl", 1, b'0');
        // A Sun/NeXT-style signed sum.
        h[148..156].fill(b' ');
        let sum: i64 = h.iter().map(|&b| i64::from(b as i8)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let mut t = h;
        t.extend(padded(b"x".to_vec()));
        t.extend(end());
        assert_eq!(walked(&t).strict().count(), 1);
    }

    fn negative(name: &str, size: i128) -> Vec<u8> {
        let mut h = header(name, 0, b'0');
        let v = (1i128 << 88) + size;
        h[124] = 0o377;
        h[125..136].copy_from_slice(&v.to_be_bytes()[5..]);
        seal(&mut h);
        h
    }

    #[test]
    fn negative_sizes_end_or_loop_as_tarfile_does() {
        // Back to offset 0: TarFile.next returns None.
        let mut t = negative("neg", -512);
        t.extend(header("next", 0, b'0'));
        t.extend(end());
        let w = walked(&t);
        assert_eq!(
            w.strict().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            ["neg"]
        );
        assert!(!w.raises);
        // Back to an earlier header: tarfile 3.11 reads m2, m3, m2, m3, ... forever.
        let mut t = header("m1", 0, b'0');
        t.extend(header("m2", 0, b'0'));
        t.extend(negative("m3", -1024));
        t.extend(end());
        let w = walked(&t);
        assert!(w.raises, "{}", w.end_reason);
        assert_eq!(w.strict().count(), 3);
    }

    #[test]
    fn a_size_that_wraps_ends_the_walk() {
        let mut t = header("dir", 0, b'5');
        t[124] = 0x80;
        t[125..128].fill(0);
        t[128..136].copy_from_slice(&(u64::MAX - 100).to_be_bytes());
        seal(&mut t);
        t.extend(header("next", 0, b'0'));
        // A directory does not step over its data: `next` follows.
        let w = walked(&t);
        assert_eq!(w.strict().count(), 2);
        let mut r = header("big", 0, b'0');
        r[124] = 0x80;
        r[125..128].fill(0);
        r[128..136].copy_from_slice(&(u64::MAX - 100).to_be_bytes());
        seal(&mut r);
        r.extend(header("next", 0, b'0'));
        let w = walked(&r);
        assert_eq!(w.strict().count(), 1);
        assert!(w.raises);
    }

    #[test]
    fn a_zero_block_between_many_members_is_linear() {
        let mut t = Vec::new();
        for i in 0..50 {
            t.extend(member(&format!("m{i}"), b"x"));
            t.extend(vec![0u8; 512 * 3]);
        }
        let w = walked(&t);
        assert_eq!(w.strict().count(), 1);
        assert_eq!(w.beyond().count(), 49);
        let w = walk(&MemBlob(&t), 10).unwrap_or_default();
        assert!(w.truncated);
        assert_eq!(w.entries.len(), 10);
    }

    #[test]
    fn hostile_bytes_never_panic() {
        let mut t = pax(
            b'x',
            &[("size", "99999999999999999999999999999999"), ("path", "p")],
        );
        t.extend(member("a", b"a"));
        t.extend(pax(b'g', &[("size", "-1")]));
        t.extend(member("b", b"b"));
        let mut s = header("sparse", 512, b'S');
        s[482] = 1;
        seal(&mut s);
        t.extend(s);
        t.extend(vec![0x20u8; 512]);
        for cut in 0..t.len() {
            let _ = walk(&MemBlob(&t[..cut]), 100);
            let _ = walk(&MemBlob(&t[cut..]), 100);
        }
    }
}
