//! Files in, reports out: reading, sniffing by content, analysing and checking.

use crate::check;
use crate::finding::Finding;
use crate::pickle::vm::{self, Budgets};
use crate::policy::Policy;
use std::io::Read;
use std::path::{Path, PathBuf};

/// How much of a file is read to decide whether it is pickle-bearing.
const SNIFF_BYTES: usize = 1 << 20;

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
}

impl FileReport {
    fn from_findings(
        path: String,
        format: &'static str,
        findings: Vec<Finding>,
        streams: usize,
    ) -> Self {
        let status = if findings.iter().any(|f| f.severity.fails()) {
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
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ScanOptions {
    pub budgets: Budgets,
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

/// Scans one file: sniffs its content, and analyses it when it is pickle-bearing.
pub fn scan_file(path: &Path, policy: &Policy, opts: &ScanOptions) -> FileReport {
    let display = path.display().to_string();
    let unreadable = |e: std::io::Error| FileReport {
        path: display.clone(),
        format: "unreadable",
        status: Status::Error,
        findings: Vec::new(),
        error: Some(format!("cannot read {}: {e}", path.display())),
        streams: 0,
    };
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => return unreadable(e),
    };
    let mut head = Vec::with_capacity(SNIFF_BYTES.min(64 * 1024));
    if let Err(e) = (&mut file).take(SNIFF_BYTES as u64).read_to_end(&mut head) {
        return unreadable(e);
    }
    if !vm::looks_like_pickle(&head) {
        return FileReport::from_findings(display, "unknown", Vec::new(), 0);
    }
    let mut data = head;
    if data.len() == SNIFF_BYTES {
        if let Err(e) = file.read_to_end(&mut data) {
            return unreadable(e);
        }
    }
    let (findings, streams) = scan_pickle_bytes(&data, policy, opts);
    FileReport::from_findings(display, "pickle", findings, streams)
}

/// Expands the command line's paths: files as given, directories walked (sorted,
/// `.git` skipped, symlinks not followed). Unreadable directories are reported.
pub fn collect(inputs: &[PathBuf]) -> (Vec<PathBuf>, Vec<FileReport>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for input in inputs {
        match std::fs::symlink_metadata(input) {
            Ok(m) if m.is_dir() => walk(input, &mut files, &mut errors),
            Ok(_) => files.push(input.clone()),
            Err(e) => errors.push(FileReport {
                path: input.display().to_string(),
                format: "unreadable",
                status: Status::Error,
                findings: Vec::new(),
                error: Some(format!("cannot read {}: {e}", input.display())),
                streams: 0,
            }),
        }
    }
    (files, errors)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, errors: &mut Vec<FileReport>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(FileReport {
                path: dir.display().to_string(),
                format: "unreadable",
                status: Status::Error,
                findings: Vec::new(),
                error: Some(format!("cannot read directory {}: {e}", dir.display())),
                streams: 0,
            });
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if p.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            walk(&p, files, errors);
        } else if meta.is_file() {
            files.push(p);
        }
    }
}
