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

/// Reading names (the `reading` of findings and of the JSON's `readings`).
pub const PICKLE: &str = "pickle";
pub const JOBLIB: &str = "joblib";
pub const NPY: &str = "npy";
pub const TORCH: &str = "torch";
pub const TORCH_LEGACY: &str = "torch-legacy";

/// Largest .npy header read (numpy itself has no limit with allow_pickle=True).
const NPY_MAX_HEADER: u64 = 16 << 20;

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
    /// Findings kept for one file; the rest are counted in one summary finding.
    pub max_findings: usize,
    /// Findings kept for a whole run (a tree of many hostile files); past it, each file
    /// keeps one finding per rule and a count.
    pub max_run_findings: usize,
    /// Wall-clock limit for one file (`crate::budget::arm`).
    pub timeout: Option<std::time::Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 16,
            max_total_decompressed: 512 << 20,
            max_ratio: 200,
            ratio_floor: 64 << 20,
            max_members: 10_000,
            max_pickle_bytes: 8 << 30,
            max_findings: 5_000,
            max_run_findings: 50_000,
            timeout: Some(std::time::Duration::from_secs(10)),
        }
    }
}

/// Distinct globals listed per reading in the JSON (the findings name every refused one).
const MAX_READING_GLOBALS: usize = 10_000;

/// What a scan of one top-level blob found.
#[derive(Debug, Default)]
pub struct Outcome {
    pub format: &'static str,
    pub findings: Vec<Finding>,
    pub streams: usize,
    pub readings: Vec<Reading>,
}

/// One loader's reading of one pickle-bearing member: the container as that reader
/// parses it, then the unpickler semantics it uses. The JSON lists every global each
/// reading imports, so the loader-differential oracle can hold it against the real loader.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reading {
    pub reading: &'static str,
    pub member: Option<String>,
    pub globals: Vec<String>,
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
    /// The reading being analysed (set by the container that hands a stream on).
    reading: &'static str,
    /// Bytes handed to the pickle analysis before the sniffer could decide: the full
    /// graph decides ([`vm::pickle_bearing`]), and nothing is reported if it says no.
    undecided: bool,
    readings: Vec<Reading>,
    /// The per-file findings cap (`budgets.findings`).
    cap: crate::budget::RuleCap,
    /// The file's clock ran out (reported once).
    timed_out: bool,
    /// Blobs opened so far in this file (members at every depth): overlapping archives
    /// that re-open each other's bytes grow this geometrically, so it is bounded.
    opened: usize,
    /// `disasm`: the pickle streams met, with their bytes for the member asked for.
    capture: Option<Capture>,
}

/// What [`pickle_streams`] collects.
struct Capture {
    /// The member whose bytes are kept (`None`: only list them).
    want: Option<String>,
    streams: Vec<Stream>,
}

/// A pickle stream some reader reads from a file: where, read by whom, and (when asked for)
/// the bytes exactly as the unpickler gets them.
#[derive(Debug, Clone)]
pub struct Stream {
    pub member: Option<String>,
    pub reading: &'static str,
    pub data: Option<Vec<u8>>,
}

/// Every pickle stream a loader reads from `blob` (container members, decompressed
/// payloads), found by the same walk as a scan; with `want`, the bytes of that member's
/// streams too. The container format is returned alongside.
pub fn pickle_streams(
    blob: &dyn Blob,
    policy: &Policy,
    budgets: Budgets,
    limits: Limits,
    want: Option<&str>,
) -> (&'static str, Vec<Stream>) {
    let mut w = Walker::new(policy, false, budgets, limits);
    w.capture = Some(Capture {
        want: want.map(str::to_string),
        streams: Vec::new(),
    });
    let _clock = crate::budget::arm(limits.timeout);
    let format = w.scan(blob, None, 0);
    (format, w.capture.map(|c| c.streams).unwrap_or_default())
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
    let mut w = Walker::new(policy, excerpts, budgets, limits);
    let _clock = crate::budget::arm(limits.timeout);
    let format = w.scan(blob, None, 0);
    // Only content some loader actually reads a pickle from is a disguise: a float
    // `.npy` or a zip of text under an image name is not.
    let bearing = w.streams > 0;
    if let Some(f) = extension_mismatch(name, format).filter(|_| bearing) {
        w.push(f, None);
    }
    let what = format!("budgets.findings: {} per file", w.limits.max_findings);
    if let Some(summary) = w.cap.summary(&what) {
        w.findings.push(summary);
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
        readings: w.readings,
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
    if matches!(format, "unknown" | "lfs-pointer") || !SAFE_EXTENSIONS.contains(&ext.as_str()) {
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

impl<'p> Walker<'p> {
    fn new(policy: &'p Policy, excerpts: bool, budgets: Budgets, limits: Limits) -> Self {
        Walker {
            policy,
            excerpts,
            budgets,
            limits,
            findings: Vec::new(),
            decompressed: 0,
            streams: 0,
            holes: Vec::new(),
            reading: PICKLE,
            undecided: false,
            readings: Vec::new(),
            cap: Default::default(),
            timed_out: false,
            opened: 0,
            capture: None,
        }
    }

    fn push(&mut self, mut f: Finding, member: Option<&str>) {
        if f.member.is_none() {
            f.member = member.map(str::to_string);
        }
        if f.reading.is_none() {
            f.reading = Some(self.reading);
        }
        if self.cap.admit(f.rule, self.limits.max_findings) {
            self.findings.push(f.clipped());
        }
    }

    /// Whether the file's clock has run out; the first time, a finding says so.
    fn out_of_time(&mut self, member: Option<&str>) -> bool {
        let Some(t) = crate::budget::expired() else {
            return false;
        };
        if !self.timed_out {
            self.timed_out = true;
            self.push(
                Finding::new(Rule::BudgetExceeded, 0, crate::budget::timeout_message(t)),
                member,
            );
        }
        true
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
        if self.out_of_time(member) {
            return "unknown";
        }
        self.opened += 1;
        let most = self.limits.max_members.saturating_mul(10);
        if self.opened > most {
            if self.opened == most + 1 {
                self.push(
                    Finding::new(
                        Rule::BudgetExceeded,
                        0,
                        format!("more than {most} members opened in one file (10 × budgets.members, every depth together); the rest were not inspected"),
                    ),
                    member,
                );
            }
            return "unknown";
        }
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
        let container = if zip::sniff(&head) {
            Some(self.scan_zip(blob, member, depth))
        } else if let Some(codec) = compress::sniff(&head) {
            Some(self.scan_compressed(blob, codec, member, depth))
        } else if head.starts_with(&[0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]) {
            self.push(
                Finding::new(
                    Rule::NotInspectable,
                    0,
                    "7z archive: picklegate cannot look inside it, so it cannot be judged safe",
                ),
                member,
            );
            Some("7z")
        } else if npy::sniff(&head) {
            Some(self.scan_npy(blob, member, depth))
        } else if tar::sniff(&head) {
            Some(self.scan_tar(blob, member, depth))
        } else if lfs_pointer(&head) {
            self.push(
                Finding::new(
                    Rule::LfsPointer,
                    0,
                    "Git LFS pointer: the model itself is not in this file and was not inspected",
                ),
                member,
            );
            Some("lfs-pointer")
        } else if safetensors(blob, &head) {
            Some("safetensors")
        } else {
            None
        };
        // Whatever else the bytes are, `pickle.load` (and pandas, joblib, torch's legacy
        // path) reads them from the first byte: that reading is always analysed, and the
        // file is pickle-bearing when it gets anywhere (a safetensors or tar polyglot).
        let pickle = self.scan_byte0(blob, &head, member);
        if let Some(c) = container {
            return match (c, pickle) {
                ("safetensors" | "lfs-pointer", Some(p)) => p,
                _ => c,
            };
        }
        // Zips with a prefix (self-extracting stubs, polyglots) have no magic at 0;
        // a pickle that is also a zip: zip readers see the other half.
        if let Ok(arch) = zip::read(blob, self.limits.max_members) {
            if !arch.entries.is_empty() {
                let z = self.scan_archive(blob, arch, member, depth);
                return pickle.unwrap_or(z);
            }
        }
        pickle.unwrap_or("unknown")
    }

    /// The plain-unpickler reading from the first byte, when some unpickler gets anywhere
    /// with it ([`vm::pickle_bearing`]); returns the pickle format it found.
    fn scan_byte0(
        &mut self,
        blob: &dyn Blob,
        head: &[u8],
        member: Option<&str>,
    ) -> Option<&'static str> {
        if vm::sniff(head, head.len() as u64 >= blob.len()) == vm::Sniff::No {
            return None;
        }
        let (reading, undecided) = (self.reading, self.undecided);
        self.reading = PICKLE;
        self.undecided = true;
        let f = self.scan_pickle_blob(blob, member);
        self.reading = reading;
        self.undecided = undecided;
        (f != "unknown").then_some(f)
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
            Err(compress::DecompressError::OutOfTime) => {
                self.out_of_time(Some(&inner_path));
                codec_format(codec)
            }
            Err(e @ compress::DecompressError::DecoderMemory(_)) => {
                self.push(
                    Finding::new(
                        Rule::BudgetExceeded,
                        0,
                        format!("{} stream: {e}", codec.name()),
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
                        self.undecided = false;
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
                    if std::mem::take(&mut self.undecided) && !vm::pickle_bearing(&g) {
                        return "unknown";
                    }
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
        let reading = std::mem::replace(&mut self.reading, TORCH_LEGACY);
        self.report_graph(&g, data, member, &ctx);
        self.reading = reading;
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
        if std::mem::take(&mut self.undecided) && !vm::pickle_bearing(&g) {
            return "unknown";
        }
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

    /// Records which globals a reading imports (for the JSON and the oracle).
    fn record_reading(&mut self, reading: &'static str, g: &Graph, member: Option<&str>) {
        let mut globals: Vec<String> = g
            .globals
            .iter()
            .map(|gl| crate::finding::clip(gl.qualified()))
            .collect();
        globals.sort();
        globals.dedup();
        let member = member.map(str::to_string);
        if let Some(r) = self
            .readings
            .iter_mut()
            .find(|r| r.reading == reading && r.member == member)
        {
            r.globals.extend(globals);
            r.globals.sort();
            r.globals.dedup();
            r.globals.truncate(MAX_READING_GLOBALS);
        } else {
            globals.truncate(MAX_READING_GLOBALS);
            self.readings.push(Reading {
                reading,
                member,
                globals,
            });
        }
    }

    fn report_graph(&mut self, g: &Graph, data: &[u8], member: Option<&str>, ctx: &Context) {
        self.streams += g.streams.len();
        // A graph with NumpyArrayWrapper arrays is joblib's reading of the stream.
        let reading = if g.arrays.is_empty() {
            self.reading
        } else {
            JOBLIB
        };
        self.record_reading(reading, g, member);
        if let Some(c) = &mut self.capture {
            let keep = c.want.is_some() && c.want.as_deref() == Some(member.unwrap_or(""));
            c.streams.push(Stream {
                member: member.map(str::to_string),
                reading,
                data: keep.then(|| data.to_vec()),
            });
            return;
        }
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
            f.reading = Some(reading);
            self.push(f, member);
        }
        // joblib skips raw array bytes, but a plain `pickle.load` (pandas, torch, numpy)
        // of the same bytes runs them as opcodes, with the stack and memo as they are
        // there: that is a reading of its own, analysed in full. Its findings that the
        // joblib reading already made are not repeated; its failures are not findings
        // (a plain loader that fails on array bytes runs nothing more).
        if !g.arrays.iter().any(|a| !a.object && a.len > 0) {
            return;
        }
        let alt = vm::analyze_plain(data, g.base, self.budgets);
        self.record_reading(PICKLE, &alt, member);
        let seen: std::collections::HashSet<(Rule, u64, Option<String>)> = self
            .findings
            .iter()
            .filter(|f| f.member.as_deref() == member)
            .map(|f| (f.rule, f.offset, f.global.clone()))
            .collect();
        let raw: Vec<(u64, u64)> = g
            .arrays
            .iter()
            .filter(|a| !a.object && a.len > 0)
            .map(|a| (a.offset, a.offset + a.len))
            .collect();
        // The plain loader's reading of joblib's array bytes is usually nonsense that ends
        // in an import of a module that exists nowhere (a string from the outer memo);
        // the real loader raises there, so nothing at or after it happens.
        let fails_at = vm::first_failing_import(&alt).unwrap_or(u64::MAX);
        for mut f in check::check(&alt, data, self.policy) {
            if matches!(
                f.rule,
                Rule::MalformedPickle | Rule::TrailingData | Rule::TrailingPickle
            ) || f.offset >= fails_at
                || seen.contains(&(f.rule, f.offset, f.global.clone()))
            {
                continue;
            }
            if raw.iter().any(|&(s, e)| (s..e).contains(&f.offset)) {
                f.message.push_str(
                    " (a plain pickle loader reads joblib's raw array bytes here as opcodes)",
                );
            } else {
                f.message
                    .push_str(" (the plain pickle.load reading of a joblib-shaped stream)");
            }
            f.reading = Some(PICKLE);
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
        // numpy.load(allow_pickle=True) reads the whole header, whatever its length
        // (max_header_size is ignored then): u16 length for version 1, u32 after.
        let Ok(fixed) = blob.read_at(0, 12) else {
            return "npy";
        };
        let hlen = match fixed.get(6) {
            Some(1) if fixed.len() >= 10 => 10 + u16::from_le_bytes([fixed[8], fixed[9]]) as u64,
            Some(2 | 3) if fixed.len() >= 12 => {
                12 + u32::from_le_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]) as u64
            }
            _ => 12,
        };
        if hlen > NPY_MAX_HEADER {
            self.push(
                Finding::new(
                    Rule::BudgetExceeded,
                    0,
                    format!(".npy header of {hlen} bytes exceeds the {NPY_MAX_HEADER}-byte budget"),
                ),
                member,
            );
            return "npy";
        }
        let head = match blob.read_at(0, hlen as usize) {
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
                // numpy.load reads the object array with a plain `pickle.load`: no joblib
                // array semantics (a NumpyArrayWrapper's "array bytes" are opcodes there).
                // Offsets in findings stay relative to the .npy file.
                let g = vm::analyze_plain(&data, h.data_offset, self.budgets);
                let reading = std::mem::replace(&mut self.reading, NPY);
                self.report_graph(&g, &data, member, &Context::default());
                self.reading = reading;
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
        let w = match tar::walk(blob, self.limits.max_members) {
            Ok(w) => w,
            Err(e) => {
                self.push(
                    Finding::new(Rule::NotInspectable, 0, format!("tar read error: {e}")),
                    member,
                );
                return "tar";
            }
        };
        if w.truncated {
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
        // torch's legacy loader and pandas use plain tarfile: its members only.
        let names: Vec<&str> = w.strict().map(|e| e.name.as_str()).collect();
        let legacy_tar = ["sys_info", "pickle", "storages", "tensors"]
            .iter()
            .all(|n| names.contains(n));
        let beyond: Vec<&tar::TarEntry> = w.beyond().collect();
        if !beyond.is_empty() || w.content_after_end.is_some() {
            let what = if beyond.is_empty() {
                format!(
                    "non-zero bytes follow from offset {}",
                    w.content_after_end.unwrap_or(w.end)
                )
            } else {
                let shown: Vec<String> = beyond
                    .iter()
                    .take(5)
                    .map(|e| format!("`{}`", e.name))
                    .collect();
                format!(
                    "{} more member(s) follow ({}{}) that GNU tar and tarfile.open(ignore_zeros=True) extract",
                    beyond.len(),
                    shown.join(", "),
                    if beyond.len() > 5 { ", ..." } else { "" }
                )
            };
            let mut f = Finding::new(
                Rule::TrailingData,
                w.end,
                format!(
                    "tarfile stops at offset {} ({}){}; {what}",
                    w.end,
                    w.end_reason,
                    if w.raises { ", raising an error" } else { "" }
                ),
            );
            f.reading = Some(tar::IGNORE_ZEROS);
            self.push(f, member);
        }
        for (list, reading) in [
            (w.strict().collect::<Vec<_>>(), None),
            (beyond, Some(tar::IGNORE_ZEROS)),
        ] {
            let before = self.findings.len();
            let saved = self.reading;
            if let Some(r) = reading {
                self.reading = r;
            }
            for e in list.into_iter().filter(|e| e.regular) {
                let path = join(member, &e.name);
                if e.data_offset.saturating_add(e.size) > blob.len() {
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
                if legacy_tar && !e.beyond_end && (e.name == "storages" || e.name == "tensors") {
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
            self.reading = saved;
            // Members only a reader that reads on reaches: every finding says so.
            if let Some(r) = reading {
                for f in &mut self.findings[before..] {
                    f.reading = Some(r);
                }
            }
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
            // The tolerant reading fails, but a real reader may still read the archive.
            Err(_)
                if zip::ZipReader::BOTH
                    .iter()
                    .any(|&r| zip::read_as(blob, self.limits.max_members, r).is_ok()) =>
            {
                self.scan_archive(blob, zip::Archive::default(), member, depth)
            }
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

    /// Reads a member's content (stored or deflated) under the decompression budget:
    /// the bytes the reading's reader takes (`read_len` of a stored member).
    fn member_bytes<'b>(
        &mut self,
        blob: &'b dyn Blob,
        e: &zip::Entry,
        path: &str,
    ) -> Option<Cow<'b, [u8]>> {
        let len = if e.method == 0 {
            e.read_len
        } else {
            e.compressed_size
        };
        let raw = match blob.read_at(e.data_offset, len as usize) {
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
                    Err(compress::DecompressError::OutOfTime) => {
                        self.out_of_time(Some(path));
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

    /// Scans a zip as each real reader reads it (see [`zip`]): once when PyTorch's miniz
    /// reader and Python's zipfile see the same directory, else each reading on its own,
    /// every finding naming its reading. `arch` (the tolerant reading) is scanned only
    /// when neither real reader accepts the archive.
    fn scan_archive(
        &mut self,
        blob: &dyn Blob,
        arch: zip::Archive,
        member: Option<&str>,
        depth: usize,
    ) -> &'static str {
        let [miniz, zipfile] = zip::readings(blob, self.limits.max_members);
        let starts_as_zip = blob
            .read_at(0, 4)
            .is_ok_and(|h| h.as_ref() == b"PK\x03\x04");
        let mut plan: Vec<(zip::Archive, Option<&'static str>)> = Vec::new();
        let mut refusals: Vec<(zip::ZipReader, zip::ZipError)> = Vec::new();
        match (miniz, zipfile) {
            (Ok(mut m), Ok(z)) if m.same_directory(&z) => {
                for a in z.anomalies {
                    if !m.anomalies.contains(&a) {
                        m.anomalies.push(a);
                    }
                }
                plan.push((m, None));
            }
            (Ok(m), Ok(z)) => {
                let note = if starts_as_zip {
                    ""
                } else {
                    " (the file does not start with PK\\x03\\x04, so torch.load and numpy.load read it as something else; torch.jit.load and PyTorchStreamReader take the miniz reading)"
                };
                let mut f = Finding::new(
                    Rule::ZipTampering,
                    m.cd_offset.min(z.cd_offset),
                    format!(
                        "the zip readers disagree: {} reads {}; {} reads {}{note}. No standard writer produces this; both readings are scanned",
                        zip::ZipReader::Miniz.who(),
                        m.describe(),
                        zip::ZipReader::Zipfile.who(),
                        z.describe()
                    ),
                );
                f.reading = Some(zip::BOTH_READERS);
                self.push(f, member);
                plan.push((m, Some(zip::ZipReader::Miniz.name())));
                plan.push((z, Some(zip::ZipReader::Zipfile.name())));
            }
            (Ok(m), Err(e)) => {
                refusals.push((zip::ZipReader::Zipfile, e));
                plan.push((m, Some(zip::ZipReader::Miniz.name())));
            }
            (Err(e), Ok(z)) => {
                refusals.push((zip::ZipReader::Miniz, e));
                plan.push((z, Some(zip::ZipReader::Zipfile.name())));
            }
            (Err(e1), Err(e2)) => {
                refusals.push((zip::ZipReader::Miniz, e1));
                refusals.push((zip::ZipReader::Zipfile, e2));
                if !arch.entries.is_empty() {
                    plan.push((arch, Some(zip::TOLERANT)));
                }
            }
        }
        let readers_left = plan.len();
        for (r, e) in refusals {
            let mut f = match e {
                zip::ZipError::TooManyMembers(n) => Finding::new(
                    Rule::BudgetExceeded,
                    0,
                    format!("zip with more than {n} members as {} reads it; that reading was not inspected", r.who()),
                ),
                e => Finding::new(
                    Rule::ZipTampering,
                    0,
                    format!(
                        "{} refuses this archive ({e}){}: a scanner built on one reader is blind to what the other loads",
                        r.who(),
                        if readers_left > 0 {
                            "; the readable reading is scanned"
                        } else {
                            "; neither real reader reads it, it is scanned as a lenient reader would"
                        }
                    ),
                ),
            };
            f.reading = Some(r.name());
            self.push(f, member);
        }
        let mut format = "zip";
        // Members only local headers list, scanned once whichever reading finds them.
        let mut seen_unlisted = std::collections::HashSet::new();
        for (arch, tag) in plan {
            let before = self.findings.len();
            let saved = self.reading;
            if let Some(t) = tag {
                self.reading = t;
            }
            // Stored bytes already analysed in this reading (shared or overlapping members).
            let mut cache = zip::RangeCache::default();
            let mut unlisted: Vec<(usize, usize)> = Vec::new();
            for a in &arch.anomalies {
                let rule = match a.kind {
                    zip::AnomalyKind::Tampering | zip::AnomalyKind::Unlisted => Rule::ZipTampering,
                    zip::AnomalyKind::Duplicate => Rule::ZipDuplicateMember,
                    zip::AnomalyKind::Overlap => Rule::ZipOverlappingMembers,
                };
                let path = a.member.as_deref().map(|m| join(member, m));
                let mut f = Finding::new(rule, a.offset, a.message.clone());
                f.reading = Some(tag.unwrap_or(zip::BOTH_READERS));
                // Structure findings are about the archive itself: offsets are in the archive.
                self.push(f, path.as_deref().or(member));
            }
            let files: Vec<&zip::Entry> = arch.entries.iter().filter(|e| !e.is_dir()).collect();
            // torch semantics for the torch reader's reading (and the tolerant one); Python's
            // zipfile users (numpy, pandas, anything else) read every member.
            let torch_reading = arch.reader != Some(zip::ZipReader::Zipfile);
            // Classify by central and local names: readers disagree on which one counts.
            let named = |e: &zip::Entry, f: &dyn Fn(&str) -> bool| {
                f(&e.name) || e.local_name.as_deref().is_some_and(f)
            };
            let is_torchscript = torch_reading
                && files.iter().any(|e| {
                    named(e, &|n: &str| {
                        n.ends_with("/constants.pkl")
                            || n == "constants.pkl"
                            || n.contains("/code/")
                            || n.starts_with("code/")
                    })
                });
            // What torch.load reads: `<root>/data.pkl`, root = the first entry's folder,
            // looked up as miniz looks names up.
            let root = arch.torch_root();
            let located = if torch_reading {
                root.as_deref()
                    .and_then(|r| arch.locate(&format!("{r}/data.pkl")))
                    .filter(|e| !e.is_dir())
            } else {
                None
            };
            let data_pkls: Vec<&zip::Entry> = if torch_reading {
                files
                    .iter()
                    .copied()
                    .filter(|e| named(e, &|n: &str| n.ends_with("/data.pkl") || n == "data.pkl"))
                    .collect()
            } else {
                Vec::new()
            };
            let npz = !files.is_empty() && files.iter().all(|e| e.name.ends_with(".npy"));
            let id = |e: &zip::Entry| e as *const zip::Entry as usize;
            let this = if is_torchscript {
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
                    if e.unlisted && !seen_unlisted.insert(e.header_offset) {
                        continue;
                    }
                    let start = self.findings.len();
                    let path = join(member, &e.name);
                    if e.name.ends_with(".pkl") || e.name.ends_with(".debug_pkl") {
                        let key = (e.data_offset, e.read_len, e.method, true);
                        if let Some(fs) = cache.replay(key, &path) {
                            for f in fs {
                                self.push(f, None);
                            }
                        } else {
                            if let Some(c) = self.member_bytes(blob, e, &path) {
                                self.check_crc(e, &c, &path);
                                self.scan_pickle_bytes(&c, Some(&path), ctx);
                            }
                            cache.insert(key, &path, &self.findings[start..]);
                        }
                    } else if !e.name.contains("/code/")
                        && !e.name.starts_with("code/")
                        && !is_torch_metadata(&e.name)
                        && !is_storage_name(&e.name)
                    {
                        self.scan_member(blob, e, &path, depth, true, &mut cache);
                    }
                    if e.unlisted {
                        unlisted.push((start, self.findings.len()));
                    }
                }
                "torchscript"
            } else if located.is_some() || !data_pkls.is_empty() {
                let mut referenced: std::collections::HashSet<usize> =
                    std::collections::HashSet::new();
                if let Some(dp) = located {
                    let path = join(member, &dp.name);
                    let root = root.as_deref().unwrap_or("");
                    referenced.insert(id(dp));
                    if let Some(c) = self.member_bytes(blob, dp, &path) {
                        self.check_crc(dp, &c, &path);
                        let g = vm::analyze(&c, 0, self.budgets);
                        let outer = std::mem::replace(&mut self.reading, TORCH);
                        self.report_graph(&g, &c, Some(&path), &Context::default());
                        self.reading = outer;
                        for r in torch::storage_refs(&g, &c) {
                            let name = format!("{root}/data/{}", r.key);
                            match arch.locate(&name) {
                                None => self.push(
                                    Finding::new(
                                        Rule::StorageReference,
                                        r.offset,
                                        format!("persistent id names storage `{}`, but the archive has no member `{name}`", r.key),
                                    ),
                                    Some(&path),
                                ),
                                Some(e) => {
                                    referenced.insert(id(e));
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
                }
                // Every other member (other `data.pkl`s included) is read as a blob of its
                // own: a pickle among them is one torch.load does not read by itself.
                for e in &files {
                    if referenced.contains(&id(e))
                        || is_torch_metadata(&e.name)
                        || (e.unlisted && !seen_unlisted.insert(e.header_offset))
                    {
                        continue;
                    }
                    let start = self.findings.len();
                    let path = join(member, &e.name);
                    self.scan_member(blob, e, &path, depth, true, &mut cache);
                    if e.unlisted {
                        unlisted.push((start, self.findings.len()));
                    }
                }
                "torch-zip"
            } else {
                for e in &files {
                    if e.unlisted && !seen_unlisted.insert(e.header_offset) {
                        continue;
                    }
                    let start = self.findings.len();
                    let path = join(member, &e.name);
                    self.scan_member(blob, e, &path, depth, false, &mut cache);
                    if e.unlisted {
                        unlisted.push((start, self.findings.len()));
                    }
                }
                if npz {
                    "npz"
                } else {
                    "zip"
                }
            };
            self.reading = saved;
            if let Some(t) = tag {
                for f in &mut self.findings[before..] {
                    f.reading = Some(t);
                }
            }
            for (a, b) in unlisted {
                for f in &mut self.findings[a..b] {
                    f.reading = Some(zip::LOCAL_HEADERS);
                }
            }
            let rank = |f: &str| match f {
                "torchscript" => 3,
                "torch-zip" => 2,
                "npz" => 1,
                _ => 0,
            };
            if rank(this) > rank(format) {
                format = this;
            }
        }
        format
    }

    /// Scans one zip member as a blob of its own; in torch archives a pickle among the
    /// members the loader does not read by itself is reported as hidden. Bytes analysed
    /// before in this reading (duplicate or overlapping entries) are not analysed again:
    /// their findings are repeated for this member.
    fn scan_member(
        &mut self,
        blob: &dyn Blob,
        e: &zip::Entry,
        path: &str,
        depth: usize,
        torch: bool,
        cache: &mut zip::RangeCache,
    ) {
        let key = (e.data_offset, e.read_len, e.method, torch);
        if let Some(fs) = cache.replay(key, path) {
            for f in fs {
                self.push(f, None);
            }
            return;
        }
        let before = self.findings.len();
        if e.method == 0 {
            // Offsets and sizes come from the file: the window never leaves the blob.
            let start = e.data_offset.min(blob.len());
            let sub = SubBlob {
                inner: blob,
                start,
                len: e.read_len.min(blob.len() - start),
            };
            self.scan_member_blob(&sub, e, path, depth, torch);
        } else if let Some(c) = self.member_bytes(blob, e, path) {
            self.scan_member_blob(&MemBlob(&c), e, path, depth, torch);
        }
        cache.insert(key, path, &self.findings[before..]);
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
                        reading: Some(self.reading),
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
        compress::Codec::JoblibZfile => "joblib",
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
