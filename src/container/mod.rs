//! Every place a pickle hides: content sniffing and containers, read the way the
//! victims' loaders read them. The walker recurses through archives and compressed
//! streams under budgets, and hands every pickle stream to the VM and the checks.

pub mod blob;
pub mod compress;
pub mod npy;
mod sparse;
pub mod tar;
pub mod torch;
pub mod zip;

use crate::check::{self, Context};
use crate::finding::{Finding, Rule};
use crate::pickle::graph::Graph;
use crate::pickle::vm::{self, Budgets};
use crate::policy::Policy;
use blob::{Blob, MemBlob, SubBlob};
use std::borrow::Cow;

/// Findings per pickle that get a disassembly excerpt.
const MAX_EXCERPTS: usize = 32;
/// Bytes read to decide what a blob is.
const HEAD: usize = 4096;
/// Bytes a protocol 0/1 pickle probe may look at.
const PROBE: usize = 1 << 20;
/// Files above this size are read piecewise where their format allows it.
const LARGE_FILE: u64 = 32 << 20;
/// PROTO 2, LONG1 of 10 bytes: the legacy torch magic number as torch.save writes it.
const LEGACY_PREFIX: [u8; 14] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
];

/// Container budgets; exceeding one is a `budget-exceeded` finding.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_depth: usize,
    pub max_total_decompressed: u64,
    /// Decompressed/compressed ratio allowed once a member is above `ratio_floor`.
    pub max_ratio: u64,
    pub ratio_floor: u64,
    pub max_members: usize,
    /// Largest single pickle read into memory.
    pub max_pickle_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 16,
            max_total_decompressed: 4 << 30,
            max_ratio: 200,
            ratio_floor: 64 << 20,
            max_members: 10_000,
            max_pickle_bytes: 8 << 30,
        }
    }
}

/// What a scan of one top-level blob found.
#[derive(Debug, Default)]
pub struct Outcome {
    pub format: &'static str,
    pub findings: Vec<Finding>,
    pub streams: usize,
}

struct Walker<'p> {
    policy: &'p Policy,
    /// Attach disassembly excerpts to findings (for the human report).
    excerpts: bool,
    budgets: Budgets,
    limits: Limits,
    findings: Vec<Finding>,
    decompressed: u64,
    streams: usize,
    /// Payloads of the pickle being reported that were left unread (sparse reads).
    holes: Vec<(u64, u64)>,
}

fn join(path: Option<&str>, seg: &str) -> String {
    match path {
        Some(p) => format!("{p}!{seg}"),
        None => seg.to_string(),
    }
}

/// Scans a blob (a file, or bytes in memory) whose file name is `name`.
pub fn scan_blob(
    blob: &dyn Blob,
    name: &str,
    policy: &Policy,
    budgets: Budgets,
    limits: Limits,
    excerpts: bool,
) -> Outcome {
    let mut w = Walker {
        policy,
        excerpts,
        budgets,
        limits,
        findings: Vec::new(),
        decompressed: 0,
        streams: 0,
        holes: Vec::new(),
    };
    let format = w.scan(blob, None, 0);
    if let Some(f) = extension_mismatch(name, format) {
        w.findings.push(f);
    }
    w.findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.member.cmp(&b.member))
            .then(a.offset.cmp(&b.offset))
    });
    Outcome {
        format,
        findings: w.findings,
        streams: w.streams,
    }
}

/// Extensions of formats that never contain pickles: a pickle under such a name is a disguise.
const SAFE_EXTENSIONS: &[&str] = &[
    "safetensors",
    "png",
    "jpg",
    "jpeg",
    "gif",
    "bmp",
    "webp",
    "tiff",
    "svg",
    "txt",
    "md",
    "rst",
    "json",
    "yaml",
    "yml",
    "toml",
    "csv",
    "tsv",
    "onnx",
    "gguf",
    "ggml",
    "tflite",
    "h5",
    "hdf5",
    "pdf",
    "wav",
    "mp3",
    "mp4",
    "html",
    "xml",
    "py",
    "rs",
    "js",
    "ts",
];

fn extension_mismatch(name: &str, format: &str) -> Option<Finding> {
    let ext = std::path::Path::new(name)
        .extension()?
        .to_str()?
        .to_ascii_lowercase();
    let pickle_bearing = !matches!(
        format,
        "unknown" | "safetensors" | "lfs-pointer" | "npy-raw"
    );
    if !pickle_bearing || !SAFE_EXTENSIONS.contains(&ext.as_str()) {
        return None;
    }
    if ext == "safetensors" && format == "safetensors" {
        return None;
    }
    Some(Finding::new(
        Rule::ExtensionMismatch,
        0,
        format!("the file is named `.{ext}` but its content is {format}: loaders go by content, reviewers by name"),
    ))
}

fn lfs_pointer(head: &[u8]) -> bool {
    head.starts_with(b"version https://git-lfs.github.com/spec/v1\n") && head.len() < 1024
}

fn safetensors(blob: &dyn Blob, head: &[u8]) -> bool {
    if head.len() < 10 {
        return false;
    }
    let n = u64::from_le_bytes([
        head[0], head[1], head[2], head[3], head[4], head[5], head[6], head[7],
    ]);
    n >= 2 && n.saturating_add(8) <= blob.len() && head[8] == b'{'
}

impl Walker<'_> {
    fn push(&mut self, mut f: Finding, member: Option<&str>) {
        if f.member.is_none() {
            f.member = member.map(str::to_string);
        }
        self.findings.push(f);
    }

    fn read_all<'b>(&mut self, blob: &'b dyn Blob, member: Option<&str>) -> Option<Cow<'b, [u8]>> {
        if let Some(s) = blob.as_slice() {
            return Some(Cow::Borrowed(s));
        }
        if blob.len() > self.limits.max_pickle_bytes {
            self.push(
                Finding::new(
                    Rule::BudgetExceeded,
                    0,
                    format!(
                        "{} bytes exceed the {}-byte budget for one pickle",
                        blob.len(),
                        self.limits.max_pickle_bytes
                    ),
                ),
                member,
            );
            return None;
        }
        match blob.read_at(0, blob.len() as usize) {
            Ok(d) => Some(d),
            Err(e) => {
                self.push(
                    Finding::new(Rule::NotInspectable, 0, format!("read error: {e}")),
                    member,
                );
                None
            }
        }
    }

    /// Sniffs and scans one blob; returns its format name.
    fn scan(&mut self, blob: &dyn Blob, member: Option<&str>, depth: usize) -> &'static str {
        if depth > self.limits.max_depth {
            self.push(
                Finding::new(
                    Rule::BudgetExceeded,
                    0,
                    format!(
                        "containers nested deeper than {} levels; the innermost were not inspected",
                        self.limits.max_depth
                    ),
                ),
                member,
            );
            return "unknown";
        }
        let head = match blob.read_at(0, HEAD) {
            Ok(h) => h.into_owned(),
            Err(e) => {
                self.push(
                    Finding::new(Rule::NotInspectable, 0, format!("read error: {e}")),
                    member,
                );
                return "unknown";
            }
        };
        if zip::sniff(&head) {
            return self.scan_zip(blob, member, depth);
        }
        if let Some(codec) = compress::sniff(&head) {
            return self.scan_compressed(blob, codec, member, depth);
        }
        if head.starts_with(&[0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]) {
            self.push(
                Finding::new(
                    Rule::NotInspectable,
                    0,
                    "7z archive: picklegate cannot look inside it, so it cannot be judged safe",
                ),
                member,
            );
            return "7z";
        }
        if npy::sniff(&head) {
            return self.scan_npy(blob, member, depth);
        }
        if tar::sniff(&head) {
            return self.scan_tar(blob, member, depth);
        }
        if lfs_pointer(&head) {
            self.push(
                Finding::new(
                    Rule::LfsPointer,
                    0,
                    "Git LFS pointer: the model itself is not in this file and was not inspected",
                ),
                member,
            );
            return "lfs-pointer";
        }
        if safetensors(blob, &head) {
            return "safetensors";
        }
        // A PROTO opcode decides at once; protocol 0/1 needs a longer look.
        let is_pickle = if head.first() == Some(&0x80) {
            vm::looks_like_pickle(&head)
        } else {
            let probe = blob.read_at(0, PROBE).unwrap_or(Cow::Borrowed(&head[..]));
            vm::looks_like_pickle(&probe)
        };
        if is_pickle {
            let format = self.scan_pickle_blob(blob, member);
            // A pickle that is also a zip (polyglot): zip readers see the other half.
            if let Ok(arch) = zip::read(blob, self.limits.max_members) {
                if !arch.entries.is_empty() {
                    self.scan_archive(blob, arch, member, depth);
                }
            }
            return format;
        }
        // Zips with a prefix (self-extracting stubs, polyglots) have no magic at 0.
        if let Ok(arch) = zip::read(blob, self.limits.max_members) {
            if !arch.entries.is_empty() {
                return self.scan_archive(blob, arch, member, depth);
            }
        }
        "unknown"
    }

    fn budget_for(&self, compressed: u64) -> u64 {
        let by_ratio = compressed
            .saturating_mul(self.limits.max_ratio)
            .max(self.limits.ratio_floor);
        by_ratio.min(
            self.limits
                .max_total_decompressed
                .saturating_sub(self.decompressed),
        )
    }

    fn decompressed(&mut self, data: Vec<u8>) -> Vec<u8> {
        self.decompressed += data.len() as u64;
        data
    }

    fn scan_compressed(
        &mut self,
        blob: &dyn Blob,
        codec: compress::Codec,
        member: Option<&str>,
        depth: usize,
    ) -> &'static str {
        let Some(input) = self.read_all(blob, member) else {
            return codec.name();
        };
        let limit = self.budget_for(input.len() as u64);
        let seg = format!("<{}>", codec.name());
        let inner_path = join(member, &seg);
        match compress::decompress(codec, &input, limit) {
            Ok(out) => {
                drop(input);
                let out = self.decompressed(out);
                let inner = self.scan(&MemBlob(&out), Some(&inner_path), depth + 1);
                if inner == "joblib" {
                    "joblib"
                } else {
                    codec_format(codec)
                }
            }
            Err(compress::DecompressError::TooLarge(n)) => {
                self.push(
                    Finding::new(
                        Rule::BudgetExceeded,
                        0,
                        format!("{} stream decompresses past the budget of {n} bytes (compression bomb?)", codec.name()),
                    ),
                    Some(&inner_path),
                );
                codec_format(codec)
            }
            Err(e) => {
                self.push(
                    Finding::new(Rule::MalformedPickle, 0, format!("cannot decompress: {e}")),
                    member,
                );
                codec_format(codec)
            }
        }
    }

    /// Analyses a pickle-bearing blob (raw pickle, joblib, legacy torch).
    fn scan_pickle_blob(&mut self, blob: &dyn Blob, member: Option<&str>) -> &'static str {
        // A large legacy torch file is five small pickles and then raw storages: read a
        // growing prefix until the pickles are complete, never the storages themselves.
        if blob.as_slice().is_none() && blob.len() > LARGE_FILE {
            let head = blob
                .read_at(0, LEGACY_PREFIX.len())
                .map(|h| h.into_owned())
                .unwrap_or_default();
            if head[..] == LEGACY_PREFIX[..] {
                let mut n: u64 = 64 << 10;
                while n < blob.len() {
                    let Ok(prefix) = blob.read_at(0, n as usize) else {
                        break;
                    };
                    let five = Budgets {
                        max_streams: 5,
                        ..self.budgets
                    };
                    let g = vm::analyze(&prefix, 0, five);
                    if legacy_end(&g).is_some() {
                        return self.scan_legacy(g, &prefix, blob, member, Context::default());
                    }
                    n = n.saturating_mul(4);
                }
            }
        }
        if blob.as_slice().is_none()
            && blob.len() > LARGE_FILE
            && blob.len() <= self.limits.max_pickle_bytes
        {
            let read = sparse::read(blob).and_then(|img| {
                if img.complete && !img.holes.is_empty() {
                    let g = self.pickle_graph(&img.data);
                    // joblib arrays and legacy storages are raw bytes the walk cannot tell
                    // from opcodes: those are read completely below.
                    if g.arrays.is_empty() && legacy_end(&g).is_none() {
                        return Ok(Err((g, img)));
                    }
                }
                img.fill(blob).map(Ok)
            });
            return match read {
                Ok(Err((g, img))) => {
                    self.holes = img.holes;
                    self.report_graph(&g, &img.data, member, &Context::default());
                    self.holes.clear();
                    "pickle"
                }
                Ok(Ok(data)) => self.scan_pickle_bytes(&data, member, Context::default()),
                Err(e) => {
                    self.push(
                        Finding::new(Rule::NotInspectable, 0, format!("read error: {e}")),
                        member,
                    );
                    "pickle"
                }
            };
        }
        let Some(data) = self.read_all(blob, member) else {
            return "pickle";
        };
        self.scan_pickle_bytes(&data, member, Context::default())
    }

    /// The pickle's graph: five streams first (enough to recognise a legacy torch file),
    /// everything when there is more.
    fn pickle_graph(&self, data: &[u8]) -> Graph {
        let five = Budgets {
            max_streams: 5,
            ..self.budgets
        };
        let g = vm::analyze(data, 0, five);
        if legacy_end(&g).is_none() && g.streams.len() >= 5 && g.trailing.is_some() {
            vm::analyze(data, 0, self.budgets)
        } else {
            g
        }
    }

    fn scan_legacy(
        &mut self,
        mut g: Graph,
        data: &[u8],
        blob: &dyn Blob,
        member: Option<&str>,
        ctx: Context,
    ) -> &'static str {
        let Some(end) = legacy_end(&g) else {
            return "pickle";
        };
        // What follows the five pickles is raw storage data, walked below.
        g.trailing = None;
        if torch::legacy_magic(&g) != Some(true) {
            self.push(
                Finding::new(
                    Rule::LegacyMagic,
                    g.streams[0].start,
                    "legacy torch file whose magic number is computed by a call instead of written as a literal",
                ),
                member,
            );
        }
        let ctx = Context {
            expected_streams: 5,
            ..ctx
        };
        self.report_graph(&g, data, member, &ctx);
        self.legacy_storages(&g, data, end, blob, member);
        "torch-legacy"
    }

    fn scan_pickle_bytes(
        &mut self,
        data: &[u8],
        member: Option<&str>,
        ctx: Context,
    ) -> &'static str {
        let g = self.pickle_graph(data);
        if legacy_end(&g).is_some() {
            return self.scan_legacy(g, data, &MemBlob(data), member, ctx);
        }
        self.report_graph(&g, data, member, &ctx);
        if g.arrays.is_empty() {
            "pickle"
        } else {
            "joblib"
        }
    }

    fn report_graph(&mut self, g: &Graph, data: &[u8], member: Option<&str>, ctx: &Context) {
        self.streams += g.streams.len();
        for (i, mut f) in check::check_with(g, data, self.policy, ctx)
            .into_iter()
            .enumerate()
        {
            if self.excerpts && i < MAX_EXCERPTS {
                let related: Vec<(u64, String)> = f
                    .related
                    .iter()
                    .map(|r| (r.offset, r.label.clone()))
                    .collect();
                f.excerpt = crate::disasm::excerpt(data, g.base, f.offset, &related, &self.holes);
            }
            self.push(f, member);
        }
        // joblib skips raw array bytes, but a plain `pickle.load` (or `torch.load`) of the
        // same file runs them as opcodes, with the stack and memo as they are there: report
        // what that reading does inside those bytes. (Object-array payloads are pickles
        // joblib itself loads; they are analysed as such.)
        let raw: Vec<(u64, u64)> = g
            .arrays
            .iter()
            .filter(|a| !a.object && a.len > 0)
            .map(|a| (a.offset, a.offset + a.len))
            .collect();
        if raw.is_empty() {
            return;
        }
        let alt = vm::analyze_plain(data, g.base, self.budgets);
        for mut f in check::check(&alt, data, self.policy) {
            let inside = raw.iter().any(|&(s, e)| (s..e).contains(&f.offset));
            if !inside
                || matches!(
                    f.rule,
                    Rule::MalformedPickle | Rule::TrailingData | Rule::TrailingPickle
                )
            {
                continue;
            }
            f.message.push_str(
                " (a plain pickle loader reads joblib's raw array bytes here as opcodes)",
            );
            self.push(f, member);
        }
    }

    /// Legacy torch: after the storage-key pickle come `numel` (8 bytes) and the raw
    /// bytes of each storage, in key order. They are skipped by size, never parsed.
    fn legacy_storages(
        &mut self,
        g: &Graph,
        data: &[u8],
        end: u64,
        blob: &dyn Blob,
        member: Option<&str>,
    ) {
        let refs = torch::storage_refs(g, data);
        let keys = legacy_keys(g, data);
        let mut pos = end;
        for key in &keys {
            let hdr = blob
                .read_at(pos, 8)
                .map(|h| h.into_owned())
                .unwrap_or_default();
            if hdr.len() < 8 {
                self.push(
                    Finding::new(
                        Rule::StorageReference,
                        pos,
                        format!("storage `{key}` is missing: the file ends before its size header"),
                    ),
                    member,
                );
                return;
            }
            let numel = u64::from_le_bytes([
                hdr[0], hdr[1], hdr[2], hdr[3], hdr[4], hdr[5], hdr[6], hdr[7],
            ]);
            let elem = refs
                .iter()
                .find(|r| &r.key == key)
                .and_then(|r| torch::element_size(&r.class))
                .unwrap_or(1);
            let Some(len) = numel.checked_mul(elem).and_then(|n| n.checked_add(8)) else {
                self.push(
                    Finding::new(
                        Rule::StorageReference,
                        pos,
                        format!("storage `{key}` size overflows"),
                    ),
                    member,
                );
                return;
            };
            if pos.saturating_add(len) > blob.len() {
                self.push(
                    Finding::new(
                        Rule::StorageReference,
                        pos,
                        format!(
                            "storage `{key}` declares {numel} elements but the file ends first"
                        ),
                    ),
                    member,
                );
                return;
            }
            pos += len;
        }
        for r in &refs {
            if !keys.contains(&r.key) {
                self.push(
                    Finding::new(
                        Rule::StorageReference,
                        r.offset,
                        format!("persistent id names storage `{}`, which the storage key list does not contain", r.key),
                    ),
                    member,
                );
            }
        }
        if pos < blob.len() {
            let rest_len = blob.len() - pos;
            let probe = blob
                .read_at(pos, PROBE)
                .map(|p| p.into_owned())
                .unwrap_or_default();
            if vm::looks_like_pickle(&probe) {
                let rest = if rest_len as usize <= probe.len() {
                    probe
                } else {
                    blob.read_at(pos, rest_len as usize)
                        .map(|p| p.into_owned())
                        .unwrap_or_default()
                };
                let g2 = vm::analyze(&rest, pos, self.budgets);
                let ctx = Context {
                    expected_streams: 0,
                    ..Context::default()
                };
                self.report_graph(&g2, &rest, member, &ctx);
            } else {
                self.push(
                    Finding::new(
                        Rule::TrailingData,
                        pos,
                        format!("{rest_len} bytes after the last storage are not part of the checkpoint"),
                    ),
                    member,
                );
            }
        }
    }

    fn scan_npy(&mut self, blob: &dyn Blob, member: Option<&str>, _depth: usize) -> &'static str {
        let head = match blob.read_at(0, 1 << 16) {
            Ok(h) => h.into_owned(),
            Err(_) => return "npy",
        };
        match npy::parse(&head) {
            Ok(h) if h.has_object => {
                let sub = SubBlob {
                    inner: blob,
                    start: h.data_offset,
                    len: blob.len().saturating_sub(h.data_offset),
                };
                let Some(data) = self.read_all(&sub, member) else {
                    return "npy";
                };
                // Offsets in findings stay relative to the .npy file.
                let g = vm::analyze(&data, h.data_offset, self.budgets);
                self.streams += g.streams.len();
                for f in check::check(&g, &data, self.policy) {
                    self.push(f, member);
                }
                "npy"
            }
            Ok(_) => "npy",
            Err(e) => {
                self.push(
                    Finding::new(
                        Rule::MalformedPickle,
                        0,
                        format!("invalid .npy header: {e}"),
                    ),
                    member,
                );
                "npy"
            }
        }
    }

    fn scan_tar(&mut self, blob: &dyn Blob, member: Option<&str>, depth: usize) -> &'static str {
        let (entries, truncated) = match tar::entries(blob, self.limits.max_members) {
            Ok(e) => e,
            Err(e) => {
                self.push(
                    Finding::new(Rule::NotInspectable, 0, format!("tar read error: {e}")),
                    member,
                );
                return "tar";
            }
        };
        if truncated {
            self.push(
                Finding::new(
                    Rule::BudgetExceeded,
                    0,
                    format!(
                        "more than {} tar members; the rest were not inspected",
                        self.limits.max_members
                    ),
                ),
                member,
            );
        }
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        let legacy_tar = ["sys_info", "pickle", "storages", "tensors"]
            .iter()
            .all(|n| names.contains(n));
        for e in entries.iter().filter(|e| e.regular) {
            let path = join(member, &e.name);
            if e.data_offset + e.size > blob.len() {
                self.push(
                    Finding::new(
                        Rule::MalformedPickle,
                        e.data_offset,
                        format!("tar member `{}` is truncated", e.name),
                    ),
                    member,
                );
                continue;
            }
            if legacy_tar && (e.name == "storages" || e.name == "tensors") {
                // Legacy torch tar: pickled headers interleaved with raw storage bytes.
                self.push(
                    Finding::new(
                        Rule::NotInspectable,
                        0,
                        "legacy torch tar storages interleave pickles with raw data; not inspected (torch refuses this format with weights_only)",
                    ),
                    Some(&path),
                );
                continue;
            }
            let sub = SubBlob {
                inner: blob,
                start: e.data_offset,
                len: e.size,
            };
            self.scan(&sub, Some(&path), depth + 1);
        }
        if legacy_tar {
            "torch-legacy"
        } else {
            "tar"
        }
    }

    fn scan_zip(&mut self, blob: &dyn Blob, member: Option<&str>, depth: usize) -> &'static str {
        match zip::read(blob, self.limits.max_members) {
            Ok(arch) => self.scan_archive(blob, arch, member, depth),
            Err(zip::ZipError::TooManyMembers(n)) => {
                self.push(
                    Finding::new(
                        Rule::BudgetExceeded,
                        0,
                        format!("zip with more than {n} members; not inspected"),
                    ),
                    member,
                );
                "zip"
            }
            Err(e) => {
                self.push(
                    Finding::new(
                        Rule::NotInspectable,
                        0,
                        format!("zip archive cannot be read: {e}"),
                    ),
                    member,
                );
                "zip"
            }
        }
    }

    /// Reads a member's content (stored or deflated) under the decompression budget.
    fn member_bytes<'b>(
        &mut self,
        blob: &'b dyn Blob,
        e: &zip::Entry,
        path: &str,
    ) -> Option<Cow<'b, [u8]>> {
        let raw = match blob.read_at(e.data_offset, e.compressed_size as usize) {
            Ok(r) => r,
            Err(err) => {
                self.push(
                    Finding::new(Rule::NotInspectable, 0, format!("read error: {err}")),
                    Some(path),
                );
                return None;
            }
        };
        match e.method {
            0 => Some(raw),
            8 => {
                let limit = self.budget_for(e.compressed_size);
                match compress::inflate(&raw, limit) {
                    Ok(v) => Some(Cow::Owned(self.decompressed(v))),
                    Err(compress::DecompressError::TooLarge(n)) => {
                        self.push(
                            Finding::new(
                                Rule::BudgetExceeded,
                                0,
                                format!("member inflates past the budget of {n} bytes (zip bomb?)"),
                            ),
                            Some(path),
                        );
                        None
                    }
                    Err(err) => {
                        self.push(
                            Finding::new(Rule::NotInspectable, 0, format!("{err}")),
                            Some(path),
                        );
                        None
                    }
                }
            }
            m => {
                self.push(
                    Finding::new(
                        Rule::NotInspectable,
                        0,
                        format!("compression method {m} is not supported; the member cannot be judged safe"),
                    ),
                    Some(path),
                );
                None
            }
        }
    }

    fn check_crc(&mut self, e: &zip::Entry, content: &[u8], path: &str) {
        let mut crc = flate2::Crc::new();
        crc.update(content);
        if crc.sum() != e.crc {
            self.push(
                Finding::new(
                    Rule::ZipTampering,
                    e.header_offset,
                    format!(
                        "CRC-32 of `{}` is {:08x} but the archive says {:08x}: Python's zipfile refuses it, PyTorch does not check",
                        e.name,
                        crc.sum(),
                        e.crc
                    ),
                ),
                Some(path),
            );
        }
    }

    fn scan_archive(
        &mut self,
        blob: &dyn Blob,
        arch: zip::Archive,
        member: Option<&str>,
        depth: usize,
    ) -> &'static str {
        for a in &arch.anomalies {
            let rule = match a.kind {
                zip::AnomalyKind::Tampering | zip::AnomalyKind::Unlisted => Rule::ZipTampering,
                zip::AnomalyKind::Duplicate => Rule::ZipDuplicateMember,
                zip::AnomalyKind::Overlap => Rule::ZipOverlappingMembers,
            };
            let path = a.member.as_deref().map(|m| join(member, m));
            let f = Finding::new(rule, a.offset, a.message.clone());
            // Structure findings are about the archive itself: offsets are in the archive.
            self.push(f, path.as_deref().or(member));
        }
        let files: Vec<&zip::Entry> = arch.entries.iter().filter(|e| !e.is_dir()).collect();
        // Classify by central and local names: readers disagree on which one counts.
        let named = |e: &zip::Entry, f: &dyn Fn(&str) -> bool| {
            f(&e.name) || e.local_name.as_deref().is_some_and(f)
        };
        let is_torchscript = files.iter().any(|e| {
            named(e, &|n: &str| {
                n.ends_with("/constants.pkl")
                    || n == "constants.pkl"
                    || n.contains("/code/")
                    || n.starts_with("code/")
            })
        });
        let data_pkls: Vec<&zip::Entry> = files
            .iter()
            .copied()
            .filter(|e| named(e, &|n: &str| n.ends_with("/data.pkl") || n == "data.pkl"))
            .collect();
        let npz = !files.is_empty() && files.iter().all(|e| e.name.ends_with(".npy"));
        if is_torchscript {
            self.push(
                Finding::new(
                    Rule::TorchScript,
                    0,
                    "TorchScript archive: `torch.jit.load` runs its code/ and resolves its pickles against that code",
                ),
                member,
            );
            let ctx = Context {
                torchscript: true,
                ..Context::default()
            };
            for e in &files {
                let path = join(member, &e.name);
                if e.name.ends_with(".pkl") || e.name.ends_with(".debug_pkl") {
                    if let Some(c) = self.member_bytes(blob, e, &path) {
                        self.check_crc(e, &c, &path);
                        self.scan_pickle_bytes(&c, Some(&path), ctx);
                    }
                } else if !e.name.contains("/code/")
                    && !e.name.starts_with("code/")
                    && !is_torch_metadata(&e.name)
                    && !is_storage_name(&e.name)
                {
                    self.scan_member(blob, e, &path, depth, true);
                }
            }
            return "torchscript";
        }
        if !data_pkls.is_empty() {
            let mut referenced: std::collections::HashSet<String> =
                std::collections::HashSet::new();
            for dp in &data_pkls {
                let path = join(member, &dp.name);
                let real = if dp.name.ends_with("data.pkl") {
                    dp.name.as_str()
                } else {
                    dp.local_name.as_deref().unwrap_or("")
                };
                let root = real.strip_suffix("data.pkl").unwrap_or("");
                referenced.insert(dp.name.clone());
                let Some(c) = self.member_bytes(blob, dp, &path) else {
                    continue;
                };
                self.check_crc(dp, &c, &path);
                let g = vm::analyze(&c, 0, self.budgets);
                self.report_graph(&g, &c, Some(&path), &Context::default());
                for r in torch::storage_refs(&g, &c) {
                    let name = format!("{root}data/{}", r.key);
                    referenced.insert(name.clone());
                    match files.iter().find(|e| e.name == name) {
                        None => self.push(
                            Finding::new(
                                Rule::StorageReference,
                                r.offset,
                                format!("persistent id names storage `{}`, but the archive has no member `{name}`", r.key),
                            ),
                            Some(&path),
                        ),
                        Some(e) => {
                            let need = r.numel.zip(torch::element_size(&r.class)).and_then(|(n, s)| (n as u64).checked_mul(s));
                            if let Some(need) = need {
                                if e.size < need {
                                    self.push(
                                        Finding::new(
                                            Rule::StorageReference,
                                            r.offset,
                                            format!(
                                                "storage `{}` ({} × {} elements) needs {need} bytes but `{name}` holds {}",
                                                r.key,
                                                r.class,
                                                r.numel.unwrap_or(0),
                                                e.size
                                            ),
                                        ),
                                        Some(&path),
                                    );
                                }
                            }
                        }
                    }
                }
            }
            for e in &files {
                if referenced.contains(&e.name) || is_torch_metadata(&e.name) {
                    continue;
                }
                let path = join(member, &e.name);
                self.scan_member(blob, e, &path, depth, true);
            }
            return "torch-zip";
        }
        for e in &files {
            let path = join(member, &e.name);
            self.scan_member(blob, e, &path, depth, false);
        }
        if npz {
            "npz"
        } else {
            "zip"
        }
    }

    /// Scans one zip member as a blob of its own; in torch archives a pickle among the
    /// members the loader does not read by itself is reported as hidden.
    fn scan_member(
        &mut self,
        blob: &dyn Blob,
        e: &zip::Entry,
        path: &str,
        depth: usize,
        torch: bool,
    ) {
        if e.method == 0 {
            let sub = SubBlob {
                inner: blob,
                start: e.data_offset,
                len: e.compressed_size,
            };
            self.scan_member_blob(&sub, e, path, depth, torch);
        } else if let Some(c) = self.member_bytes(blob, e, path) {
            self.scan_member_blob(&MemBlob(&c), e, path, depth, torch);
        }
    }

    fn scan_member_blob(
        &mut self,
        sub: &dyn Blob,
        e: &zip::Entry,
        path: &str,
        depth: usize,
        torch: bool,
    ) {
        let before = self.findings.len();
        let format = self.scan(sub, Some(path), depth + 1);
        if matches!(format, "pickle" | "joblib" | "torch-legacy") {
            if let Ok(c) = sub.read_at(0, sub.len() as usize) {
                self.check_crc(e, &c, path);
            }
            if torch {
                self.findings.insert(
                    before,
                    Finding {
                        member: Some(path.to_string()),
                        ..Finding::new(
                            Rule::HiddenPickle,
                            0,
                            format!(
                                "`{}` is a pickle that torch.load does not read by itself; a crafted data.pkl or custom loader can",
                                e.name
                            ),
                        )
                    },
                );
            }
        }
    }
}

fn codec_format(c: compress::Codec) -> &'static str {
    match c {
        compress::Codec::Gzip => "gzip",
        compress::Codec::Bz2 => "bz2",
        compress::Codec::Xz | compress::Codec::Lzma => "xz",
        compress::Codec::Zlib => "zlib",
        compress::Codec::Lz4 => "lz4",
        compress::Codec::Zstd => "zstd",
    }
}

fn is_torch_metadata(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    matches!(
        base,
        "byteorder" | "version" | ".format_version" | ".storage_alignment" | "serialization_id"
    )
}

fn is_storage_name(name: &str) -> bool {
    name.rsplit_once("/data/")
        .is_some_and(|(_, k)| !k.is_empty() && !k.contains('/'))
}

/// Where a legacy torch file's five pickles end, if this is one: the first pickle is the
/// magic number (literal, or computed by a call) and the second is protocol 1001.
pub(crate) fn legacy_end(g: &Graph) -> Option<u64> {
    use crate::pickle::graph::Kind;
    let s: Vec<_> = g.streams.iter().filter(|s| !s.nested).collect();
    let first = torch::legacy_magic(g)?;
    let second_is_1001 = s
        .get(1)
        .and_then(|s| s.root)
        .is_some_and(|r| matches!(g.value(r).kind, Kind::Int(1001)));
    if !(first || second_is_1001) || s.len() < 5 || !s[4].stopped {
        return None;
    }
    Some(s[4].end)
}

/// The storage key list (the fifth legacy pickle): a list of strings.
pub(crate) fn legacy_keys(g: &Graph, data: &[u8]) -> Vec<String> {
    use crate::pickle::graph::{Kind, MutKind};
    let s: Vec<_> = g.streams.iter().filter(|s| !s.nested).collect();
    let Some(root) = s.get(4).and_then(|s| s.root) else {
        return Vec::new();
    };
    let mut ids = Vec::new();
    if let Kind::List(items) = g.value(root).kind {
        ids.extend_from_slice(g.items(items));
    }
    for m in g.mutations.iter().filter(|m| m.target == root) {
        if matches!(m.kind, MutKind::Append | MutKind::Appends) {
            ids.extend_from_slice(g.items(m.items));
        }
    }
    ids.iter()
        .filter_map(|&i| g.as_str(i, data).map(|s| s.into_owned()))
        .collect()
}
