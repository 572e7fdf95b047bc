//! Files in, reports out: reading, sniffing by content, analysing and checking.

use crate::check;
use crate::container::{self, blob::FileBlob, Limits};
use crate::finding::Finding;
use crate::pickle::vm::{self, Budgets};
use crate::policy::Policy;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Clean,
    Findings,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Clean => "clean",
            Status::Findings => "findings",
            Status::Error => "error",
        }
    }
}

#[derive(Debug, Clone)]
pub struct FileReport {
    pub path: String,
    /// What the content is: `pickle`, `unknown` (not pickle-bearing), or `unreadable`.
    pub format: &'static str,
    pub status: Status,
    pub findings: Vec<Finding>,
    pub error: Option<String>,
    /// Number of pickle streams analysed.
    pub streams: usize,
    /// Bytes read from disk (a checkpoint is read only where pickles live).
    pub bytes_read: u64,
    /// The configuration exception that waived findings, described.
    pub exception: Option<String>,
    /// Where the content came from when it is a git blob.
    pub source: Option<Source>,
    /// Every reading a loader performs of this file, with the globals it imports.
    pub readings: Vec<container::Reading>,
    /// The fix for the whole file when it is blocked ([`crate::hint::for_report`]).
    pub help: Option<String>,
}

/// A git object scanned instead of a file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Source {
    /// `staged`, `range`, `tree`, `hook`, `push` (a pre-push of a new branch) or `history`.
    pub kind: &'static str,
    pub blob: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    /// added, modified, renamed, ...
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub renamed_from: Option<String>,
    /// For Git LFS pointers: the object id and whether the object was found locally.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lfs_oid: Option<String>,
}

impl FileReport {
    /// Recomputes `status` after levels and exceptions changed the findings.
    pub fn refresh_status(&mut self) {
        if self.status == Status::Error {
            return;
        }
        self.status = if self.findings.iter().any(Finding::fails) {
            Status::Findings
        } else {
            Status::Clean
        };
    }
}

impl FileReport {
    /// A report of `findings` about `path` (content in `format`).
    pub fn from_findings(
        path: String,
        format: &'static str,
        findings: Vec<Finding>,
        streams: usize,
    ) -> Self {
        let status = if findings.iter().any(Finding::fails) {
            Status::Findings
        } else {
            Status::Clean
        };
        FileReport {
            path,
            format,
            status,
            findings,
            error: None,
            streams,
            bytes_read: 0,
            exception: None,
            source: None,
            readings: Vec::new(),
            help: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ScanOptions {
    pub budgets: Budgets,
    pub limits: Limits,
    /// Attach disassembly excerpts to findings (the human report shows them).
    pub excerpts: bool,
}

/// Analyses an in-memory buffer that is known or suspected to be a raw pickle.
pub fn scan_pickle_bytes(
    data: &[u8],
    policy: &Policy,
    opts: &ScanOptions,
) -> (Vec<Finding>, usize) {
    let g = vm::analyze(data, 0, opts.budgets);
    (check::check(&g, data, policy), g.streams.len())
}

/// Scans bytes already in memory (a git blob, a test buffer) named `name`.
pub fn scan_bytes(name: &str, data: &[u8], policy: &Policy, opts: &ScanOptions) -> FileReport {
    let o = container::scan_blob(
        &container::blob::MemBlob(data),
        name,
        policy,
        opts.budgets,
        opts.limits,
        opts.excerpts,
    );
    let mut r = FileReport::from_findings(name.to_string(), o.format, o.findings, o.streams);
    r.readings = o.readings;
    r
}

/// Scans one file: sniffs its content, and walks containers down to every pickle.
/// Large files are read only where their format says something lives.
pub fn scan_file(path: &Path, policy: &Policy, opts: &ScanOptions) -> FileReport {
    scan_file_as(path, &path.display().to_string(), policy, opts)
}

/// Scans the file at `path` as if it were named `display` (a git blob spooled to a temp
/// file: its repository path decides the name-based rules and the report's path).
pub fn scan_file_as(path: &Path, display: &str, policy: &Policy, opts: &ScanOptions) -> FileReport {
    let display = display.to_string();
    let blob = match FileBlob::open(path) {
        Ok(b) => b,
        Err(e) => {
            return FileReport {
                path: display,
                format: "unreadable",
                status: Status::Error,
                findings: Vec::new(),
                error: Some(format!("cannot read {}: {e}", path.display())),
                streams: 0,
                bytes_read: 0,
                exception: None,
                source: None,
                readings: Vec::new(),
                help: None,
            }
        }
    };
    let name = Path::new(&display)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let o = container::scan_blob(
        &blob,
        &name,
        policy,
        opts.budgets,
        opts.limits,
        opts.excerpts,
    );
    let mut r = FileReport::from_findings(display, o.format, o.findings, o.streams);
    r.readings = o.readings;
    r.bytes_read = container::blob::Blob::bytes_read(&blob);
    r
}

/// What the walk left out, for a notice: symlinks that leave the scanned root, FIFOs,
/// sockets and devices (never opened: a FIFO would block the scan).
pub type Skipped = Vec<String>;

/// What a path is, without opening it.
fn special_kind(m: &std::fs::Metadata) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_fifo() {
        Some("a named pipe (FIFO)")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_block_device() || t.is_char_device() {
        Some("a device")
    } else {
        None
    }
}

fn unreadable(path: &Path, error: String) -> FileReport {
    FileReport {
        path: path.display().to_string(),
        format: "unreadable",
        status: Status::Error,
        findings: Vec::new(),
        error: Some(error),
        streams: 0,
        bytes_read: 0,
        exception: None,
        source: None,
        readings: Vec::new(),
        help: None,
    }
}

/// Expands the command line's paths: files as given (a named symlink is followed),
/// directories walked (sorted, `.git` skipped). Inside a walk, a symlink is followed when
/// its target stays inside the directory being scanned (a Hugging Face cache's
/// `snapshots/<rev>/` links into `blobs/`) and reported under the link's path; anything
/// else that is not a regular file or directory is skipped with a notice, never opened.
/// Unreadable directories are reported.
pub fn collect(inputs: &[PathBuf]) -> (Vec<PathBuf>, Vec<FileReport>, Skipped) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let mut skipped = Vec::new();
    for input in inputs {
        match std::fs::metadata(input) {
            Ok(m) if m.is_dir() => {
                let root = std::fs::canonicalize(input).unwrap_or_else(|_| input.clone());
                let mut seen = std::collections::HashSet::new();
                seen.insert(root.clone());
                let mut w = Walk {
                    root: &root,
                    files: &mut files,
                    errors: &mut errors,
                    skipped: &mut skipped,
                    seen: &mut seen,
                };
                w.walk(input);
            }
            Ok(m) => match special_kind(&m) {
                Some(kind) => skipped.push(format!("{}: {kind}, not read", input.display())),
                None => files.push(input.clone()),
            },
            Err(e) => errors.push(unreadable(
                input,
                format!("cannot read {}: {e}", input.display()),
            )),
        }
    }
    (files, errors, skipped)
}

struct Walk<'a> {
    /// The canonical directory being scanned: symlinks may point anywhere below it.
    root: &'a Path,
    files: &'a mut Vec<PathBuf>,
    errors: &'a mut Vec<FileReport>,
    skipped: &'a mut Skipped,
    /// Canonical directories entered (a symlink cycle is walked once).
    seen: &'a mut std::collections::HashSet<PathBuf>,
}

impl Walk<'_> {
    fn walk(&mut self, dir: &Path) {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                self.errors.push(unreadable(
                    dir,
                    format!("cannot read directory {}: {e}", dir.display()),
                ));
                return;
            }
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for p in paths {
            let Ok(lmeta) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let meta = if lmeta.file_type().is_symlink() {
                match self.inside_target(&p) {
                    Ok(m) => m,
                    Err(why) => {
                        self.skipped
                            .push(format!("{}: a symlink {why}, not followed", p.display()));
                        continue;
                    }
                }
            } else {
                lmeta
            };
            if meta.is_dir() {
                if p.file_name().is_some_and(|n| n == ".git") {
                    continue;
                }
                let real = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
                if self.seen.insert(real) {
                    self.walk(&p);
                }
            } else if meta.is_file() {
                self.files.push(p);
            } else if let Some(kind) = special_kind(&meta) {
                self.skipped
                    .push(format!("{}: {kind}, not read", p.display()));
            }
        }
    }

    /// The metadata of a symlink's target when it stays inside the scanned root.
    fn inside_target(&self, link: &Path) -> Result<std::fs::Metadata, String> {
        let target =
            std::fs::canonicalize(link).map_err(|_| "whose target does not exist".to_string())?;
        if !target.starts_with(self.root) {
            return Err(format!(
                "to {} (outside the scanned directory)",
                target.display()
            ));
        }
        std::fs::metadata(&target).map_err(|e| format!("whose target cannot be read ({e})"))
    }
}
