//! `picklegate sanitize`: write a replacement that keeps the legitimate object and drops
//! the attack, re-scanned before anything is written, written atomically.

pub mod emit;
mod legacy;
pub mod rebuild;
pub mod zipwrite;

use crate::check;
use crate::container::blob::{Blob, FileBlob, MemBlob};
use crate::container::{compress, zip};
use crate::pickle::graph::Graph;
use crate::pickle::vm::{self, Budgets};
use crate::policy::Policy;
use crate::scan::{self, ScanOptions};
use crate::spool::create_temp;
pub use rebuild::Change;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum Outcome {
    /// Nothing outside policy: the file is left as it is.
    Clean,
    /// A sanitized, verified replacement (not yet in place) and what changed.
    Rebuilt {
        output: Output,
        changes: Vec<Change>,
        format: &'static str,
    },
}

/// A verified replacement: in memory, or already written to a temp file in the spool
/// directory (large archives are streamed, not held in memory).
#[derive(Debug)]
pub enum Output {
    Bytes(Vec<u8>),
    File(PathBuf),
}

impl Output {
    /// Puts the replacement at `target` atomically (rename within the spool directory).
    pub fn commit(self, target: &Path) -> std::io::Result<()> {
        match self {
            Output::Bytes(b) => write_atomically(target, &b),
            Output::File(tmp) => {
                keep_permissions(&tmp, target);
                std::fs::rename(&tmp, target).inspect_err(|_| {
                    let _ = std::fs::remove_file(&tmp);
                })
            }
        }
    }

    /// Drops a replacement that will not be used.
    pub fn discard(self) {
        if let Output::File(tmp) = self {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SanitizeError {
    /// The file cannot be made safe; nothing is written.
    #[error("{0}")]
    Refused(String),
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn refuse<T>(s: impl Into<String>) -> Result<T, SanitizeError> {
    Err(SanitizeError::Refused(s.into()))
}

/// Whether a rebuilt pickle passes the policy: the sanitizer checks its own output.
fn verify(bytes: &[u8], policy: &Policy) -> Result<(), SanitizeError> {
    let g = vm::analyze(bytes, 0, Budgets::default());
    let findings = check::check(&g, bytes, policy);
    match findings.first() {
        None => Ok(()),
        Some(f) => refuse(format!(
            "the rebuilt pickle still has a finding ({}: {}); nothing was written",
            f.rule.id(),
            f.message
        )),
    }
}

/// The whole replacement, scanned as a file the way `scan` would: container structure,
/// storage references and every pickle in it.
fn verify_file(format: &str, bytes: &[u8], policy: &Policy) -> Result<(), SanitizeError> {
    verify_report(
        format,
        &scan::scan_bytes("sanitized", bytes, policy, &ScanOptions::default()),
    )
}

fn verify_report(format: &str, r: &scan::FileReport) -> Result<(), SanitizeError> {
    if let Some(e) = &r.error {
        return refuse(format!(
            "the replacement cannot be read back ({e}); nothing was written"
        ));
    }
    if r.format != format {
        return refuse(format!(
            "the replacement reads as {} instead of {format}; nothing was written",
            r.format
        ));
    }
    match r.findings.iter().find(|f| f.fails()) {
        None => Ok(()),
        Some(f) => refuse(format!(
            "the replacement would still have a finding ({}: {}); nothing was written",
            f.rule.id(),
            f.message
        )),
    }
}

/// What `sanitize` does beyond its default.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Re-emit files that have nothing outside policy too (a canonical copy; also how the
    /// reconstruction is proven on benign files).
    pub rebuild_clean: bool,
    /// Where archives are streamed to a temp file (the destination's directory, so that
    /// `Output::commit` is a rename); `None` keeps every replacement in memory.
    pub spool_dir: Option<PathBuf>,
    /// Budgets of the scans that decide what to rewrite (the configuration's `budgets:`).
    pub scan: ScanOptions,
}

/// The scanner's bomb rule: a ratio cap above a floor, never past the total budget.
fn decompress_budget(compressed: usize) -> u64 {
    let l = crate::container::Limits::default();
    (compressed as u64)
        .saturating_mul(l.max_ratio)
        .max(l.ratio_floor)
        .min(l.max_total_decompressed)
}

fn io_refusal(what: &str, e: impl std::fmt::Display) -> SanitizeError {
    SanitizeError::Refused(format!("{what}: {e}"))
}

/// Plans the sanitization of one file under `policy`.
pub fn sanitize_file(
    path: &Path,
    policy: &Policy,
    opts: &Options,
) -> Result<Outcome, SanitizeError> {
    let report = scan::scan_file(path, policy, &opts.scan);
    let io = |e: std::io::Error| SanitizeError::Io {
        path: path.display().to_string(),
        source: e,
    };
    if let Some(e) = &report.error {
        return Err(io(std::io::Error::other(e.clone())));
    }
    let blob = FileBlob::open(path).map_err(io)?;
    sanitize_blob(&blob, &report, policy, opts)
}

/// Plans the sanitization of bytes already in memory (a git index blob).
pub fn sanitize_bytes(
    name: &str,
    data: &[u8],
    policy: &Policy,
    opts: &Options,
) -> Result<Outcome, SanitizeError> {
    let report = scan::scan_bytes(name, data, policy, &opts.scan);
    sanitize_blob(&MemBlob(data), &report, policy, opts)
}

/// One decision per format, whatever the bytes come from; `report` is the blob's scan.
fn sanitize_blob(
    blob: &dyn Blob,
    report: &scan::FileReport,
    policy: &Policy,
    opts: &Options,
) -> Result<Outcome, SanitizeError> {
    sanitize_at(blob, report, policy, opts, 0)
}

/// Archives and wrappers nest; members are sanitized the same way, in memory.
const MAX_NESTING: usize = 8;

fn sanitize_at(
    blob: &dyn Blob,
    report: &scan::FileReport,
    policy: &Policy,
    opts: &Options,
    depth: usize,
) -> Result<Outcome, SanitizeError> {
    // A scan that stopped at a budget does not know the whole file: nothing can be said
    // to be kept safely, and re-walking it member by member would only repeat the cost.
    if let Some(f) = report
        .findings
        .iter()
        .find(|f| f.rule == crate::finding::Rule::BudgetExceeded && !f.counts_only)
    {
        return refuse(format!(
            "the scan stopped at a budget ({}), so the file is not fully known",
            f.message
        ));
    }
    if report.status == scan::Status::Clean && !opts.rebuild_clean {
        return Ok(Outcome::Clean);
    }
    if depth > MAX_NESTING {
        return refuse(format!(
            "archives and compressed streams nested more than {MAX_NESTING} deep"
        ));
    }
    let whole = || -> Result<Vec<u8>, SanitizeError> {
        blob.read_at(0, blob.len() as usize)
            .map(|d| d.into_owned())
            .map_err(|e| SanitizeError::Io {
                path: report.path.clone(),
                source: e,
            })
    };
    let archive = match report.format {
        "torch-zip" => Some(torch_zip_plan(blob, policy)?),
        "npz" => Some(zip_plan(blob, policy, opts, depth, ZipKind::Npz)?),
        "zip" => Some(zip_plan(blob, policy, opts, depth, ZipKind::Plain)?),
        _ => None,
    };
    if let Some((members, mut changes)) = archive {
        let output = write_archive(blob, &members, report.format, policy, opts)?;
        changes.sort_by_key(|c| c.offset);
        return Ok(Outcome::Rebuilt {
            output,
            changes,
            format: report.format,
        });
    }
    let (bytes, mut changes) = match report.format {
        "tar" => tar_rewrite(blob, policy, opts, depth)?,
        "gzip" | "bz2" | "xz" | "lzma" | "zlib" | "lz4" | "zstd" => {
            unwrap_rewrite(&whole()?, &report.path, policy, opts, depth)?
        }
        "joblib" => {
            let data = whole()?;
            if compress::sniff(&data).is_some() {
                unwrap_rewrite(&data, &report.path, policy, opts, depth)?
            } else {
                pickle_data(&data, policy)?
            }
        }
        "pickle" | "torch-legacy" => {
            let data = whole()?;
            if crate::container::tar::sniff(&data) {
                return refuse(
                    "legacy torch *tar* checkpoints interleave pickles with raw storages and are not \
                     rewritten (torch refuses this format with weights_only)",
                );
            }
            pickle_data(&data, policy)?
        }
        "npy" => sanitize_npy(&whole()?, policy)?,
        // --rebuild of a file the sanitizer does not rewrite: it is clean, leave it.
        _ if report.status == scan::Status::Clean => return Ok(Outcome::Clean),
        other => {
            return refuse(format!(
                "sanitizing {other} files is not supported (raw pickles, joblib files, PyTorch zip and \
                 legacy checkpoints, object .npy/.npz arrays, zip and tar archives of them and their \
                 gzip/bz2/xz/lzma/zlib/lz4/zstd wrappers are); nothing was written"
            ))
        }
    };
    verify_file(report.format, &bytes, policy)?;
    changes.sort_by_key(|c| c.offset);
    Ok(Outcome::Rebuilt {
        output: Output::Bytes(bytes),
        changes,
        format: report.format,
    })
}

/// A member of an archive or the content of a compressed stream: scanned, and rewritten
/// when it has findings (or `--rebuild`). `None`: keep it as it is.
fn sanitize_member(
    name: &str,
    data: &[u8],
    policy: &Policy,
    opts: &Options,
    depth: usize,
) -> Result<Option<Rewritten>, SanitizeError> {
    let report = scan::scan_bytes(name, data, policy, &opts.scan);
    let in_memory = Options {
        spool_dir: None,
        ..opts.clone()
    };
    match sanitize_at(&MemBlob(data), &report, policy, &in_memory, depth + 1)? {
        Outcome::Clean => Ok(None),
        Outcome::Rebuilt {
            output: Output::Bytes(b),
            changes,
            ..
        } => Ok(Some((b, changes))),
        Outcome::Rebuilt { output, .. } => {
            output.discard();
            refuse("internal: a member was spooled")
        }
    }
}

/// A compressed stream: unpacked (under the scanner's bomb budget), its content rewritten,
/// packed again with the same codec.
fn unwrap_rewrite(
    data: &[u8],
    name: &str,
    policy: &Policy,
    opts: &Options,
    depth: usize,
) -> Result<Rewritten, SanitizeError> {
    let Some(codec) = compress::sniff(data) else {
        return refuse("not a compressed stream");
    };
    let inner = compress::decompress(codec, data, decompress_budget(data.len()))
        .map_err(|e| io_refusal("cannot decompress", e))?;
    let inner_name = name
        .rsplit_once('.')
        .map_or(name, |(stem, _)| stem)
        .to_string();
    let Some((bytes, changes)) = sanitize_member(&inner_name, &inner, policy, opts, depth)? else {
        return refuse(format!(
            "the {} stream's content has nothing to remove: the finding is about the compressed \
             stream itself",
            codec.name()
        ));
    };
    let packed = compress::compress(codec, &bytes).map_err(|e| io_refusal("cannot compress", e))?;
    let changes = changes
        .into_iter()
        .map(|c| Change {
            what: format!("in the decompressed <{}> stream: {}", codec.name(), c.what),
            ..c
        })
        .collect();
    Ok((packed, changes))
}

/// Writes a planned archive and verifies it: streamed into a temp file in the spool
/// directory when there is one, else in memory.
fn write_archive(
    blob: &dyn Blob,
    members: &[zipwrite::Member],
    format: &str,
    policy: &Policy,
    opts: &Options,
) -> Result<Output, SanitizeError> {
    let Some(dir) = &opts.spool_dir else {
        let mut bytes = Vec::new();
        zipwrite::write(blob, members, &mut bytes).map_err(|e| io_refusal("zip write", e))?;
        verify_file(format, &bytes, policy)?;
        return Ok(Output::Bytes(bytes));
    };
    let (file, tmp) = create_temp(dir, "archive").map_err(|e| io_refusal("temp file", e))?;
    let written = (|| -> std::io::Result<()> {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        zipwrite::write(blob, members, &mut w)?;
        w.into_inner().map_err(|e| e.into_error())?.sync_all()
    })();
    let checked = written
        .map_err(|e| io_refusal("zip write", e))
        .and_then(|()| {
            verify_report(
                format,
                &scan::scan_file(&tmp, policy, &ScanOptions::default()),
            )
        });
    match checked {
        Ok(()) => Ok(Output::File(tmp)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

type Rewritten = (Vec<u8>, Vec<Change>);

/// A raw pickle, a joblib stream or a legacy torch file, in memory.
fn pickle_data(data: &[u8], policy: &Policy) -> Result<Rewritten, SanitizeError> {
    let five = Budgets {
        max_streams: 5,
        ..Budgets::default()
    };
    let g = vm::analyze(data, 0, five);
    if let Some(end) = crate::container::legacy_end(&g) {
        return legacy::sanitize(data, &g, end, policy);
    }
    let g = if g.streams.len() >= 5 && g.trailing.is_some() {
        vm::analyze(data, 0, Budgets::default())
    } else {
        g
    };
    rebuild_graph(&g, data, policy)
}

fn rebuild_graph(g: &Graph, data: &[u8], policy: &Policy) -> Result<Rewritten, SanitizeError> {
    let r = rebuild::rebuild(g, data, policy).map_err(SanitizeError::Refused)?;
    verify(&r.bytes, policy)?;
    Ok((r.bytes, r.changes))
}

fn rebuild_pickle(data: &[u8], policy: &Policy) -> Result<Rewritten, SanitizeError> {
    rebuild_graph(&vm::analyze(data, 0, Budgets::default()), data, policy)
}

/// An object-dtype `.npy`: the header is kept byte for byte, the pickle after it rebuilt.
fn sanitize_npy(data: &[u8], policy: &Policy) -> Result<Rewritten, SanitizeError> {
    let h = crate::container::npy::parse(data).map_err(SanitizeError::Refused)?;
    if !h.has_object {
        return Ok((data.to_vec(), Vec::new()));
    }
    let start = h.data_offset as usize;
    let (pickle, mut changes) = rebuild_pickle(&data[start..], policy)?;
    for c in &mut changes {
        c.offset += start as u64;
    }
    let mut bytes = data[..start].to_vec();
    bytes.extend_from_slice(&pickle);
    Ok((bytes, changes))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ZipKind {
    /// `.npz`: Python's zipfile (and so `numpy.load`) reads the last of duplicate names.
    Npz,
    /// Any other zip: which duplicate a consumer reads is unknown, so duplicates are refused.
    Plain,
}

/// A zip whose members are sanitized one by one: rewritten members stored, the others
/// copied byte for byte.
fn zip_plan(
    blob: &dyn Blob,
    policy: &Policy,
    opts: &Options,
    depth: usize,
    kind: ZipKind,
) -> Result<Plan, SanitizeError> {
    let arch = zip::read(blob, 100_000).map_err(|e| io_refusal("zip", e))?;
    let files: Vec<&zip::Entry> = arch.entries.iter().filter(|e| !e.is_dir()).collect();
    let mut last: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (i, e) in files.iter().enumerate() {
        last.insert(e.name.as_str(), i);
    }
    let mut changes = Vec::new();
    let mut members = Vec::new();
    // Like the scanner: what all members inflate to together is bounded too.
    let mut inflated = 0u64;
    let budget = crate::container::Limits::default().max_total_decompressed;
    for (i, e) in files.iter().enumerate() {
        check_member_name(e)?;
        if last.get(e.name.as_str()).is_some_and(|&l| l != i) {
            if kind == ZipKind::Plain {
                return refuse(format!(
                    "member `{}` appears more than once; which one a reader takes is not determined",
                    e.name
                ));
            }
            changes.push(Change {
                offset: e.header_offset,
                action: "removed",
                what: format!(
                    "member `{}`, shadowed by a later one of the same name",
                    e.name
                ),
            });
            continue;
        }
        let raw = blob
            .read_at(e.data_offset, e.compressed_size as usize)
            .map_err(|err| io_refusal("read error", err))?;
        let content = match e.method {
            0 => raw.into_owned(),
            8 => compress::inflate(&raw, decompress_budget(raw.len()))
                .map_err(|err| io_refusal(&format!("member `{}`", e.name), err))?,
            m => return refuse(format!("member `{}` uses compression method {m}", e.name)),
        };
        inflated += content.len() as u64;
        if inflated > budget {
            return refuse(format!(
                "the members decompress to more than {budget} bytes together"
            ));
        }
        match sanitize_member(&e.name, &content, policy, opts, depth)
            .map_err(|err| SanitizeError::Refused(format!("member `{}`: {err}", e.name)))?
        {
            Some((bytes, ch)) => {
                changes.extend(ch.into_iter().map(|c| Change {
                    what: format!("in member `{}`: {}", e.name, c.what),
                    ..c
                }));
                members.push(zipwrite::Member::Bytes(e.name.clone(), bytes));
            }
            None => members.push(zipwrite::Member::Copy((*e).clone())),
        }
    }
    Ok((members, changes))
}

/// A tar archive: every header and member copied, members with findings rewritten (their
/// size and header checksum updated).
fn tar_rewrite(
    blob: &dyn Blob,
    policy: &Policy,
    opts: &Options,
    depth: usize,
) -> Result<Rewritten, SanitizeError> {
    let data = blob
        .read_at(0, blob.len() as usize)
        .map_err(|e| io_refusal("read error", e))?;
    let (entries, truncated) = crate::container::tar::entries(&MemBlob(&data), 100_000)
        .map_err(|e| io_refusal("tar", e))?;
    if truncated {
        return refuse("too many tar members");
    }
    if let Some(e) = entries.iter().find(|e| e.pax_size) {
        return refuse(format!(
            "member `{}` takes its size from a pax record; rewriting such tars is not supported",
            e.name
        ));
    }
    let mut out = Vec::with_capacity(data.len());
    let mut changes = Vec::new();
    let mut pos = 0usize;
    for e in entries.iter().filter(|e| e.regular) {
        let start = e.data_offset as usize;
        let end = start + e.size as usize;
        let content = data.get(start..end).ok_or_else(|| {
            SanitizeError::Refused(format!("tar member `{}` is truncated", e.name))
        })?;
        let Some((bytes, ch)) = sanitize_member(&e.name, content, policy, opts, depth)
            .map_err(|err| SanitizeError::Refused(format!("member `{}`: {err}", e.name)))?
        else {
            continue;
        };
        // Everything before this member's header (earlier members, pax/GNU records) as is.
        let header = start.saturating_sub(512);
        if header < pos {
            return refuse(format!(
                "tar member `{}` overlaps the one before it",
                e.name
            ));
        }
        out.extend_from_slice(&data[pos..header]);
        let mut h = [0u8; 512];
        h.copy_from_slice(&data[header..start]);
        let size = format!("{:011o}\0", bytes.len());
        if size.len() != 12 {
            return refuse(format!(
                "member `{}` would be too large for a tar header",
                e.name
            ));
        }
        h[124..136].copy_from_slice(size.as_bytes());
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(&bytes);
        out.resize(out.len().div_ceil(512) * 512, 0);
        changes.extend(ch.into_iter().map(|c| Change {
            what: format!("in member `{}`: {}", e.name, c.what),
            ..c
        }));
        pos = start + (e.size as usize).div_ceil(512) * 512;
    }
    out.extend_from_slice(&data[pos.min(data.len())..]);
    Ok((out, changes))
}

/// The members of a rewritten archive and what changed.
type Plan = (Vec<zipwrite::Member>, Vec<Change>);

/// A name the repacked archive can carry unchanged: ASCII, or UTF-8 flagged as such (a
/// cp437 or undecodable name would come out renamed).
fn check_member_name(e: &zip::Entry) -> Result<(), SanitizeError> {
    if e.name.is_ascii() || (e.flags & 0x0800 != 0 && !e.name.contains('\u{fffd}')) {
        Ok(())
    } else {
        refuse(format!(
            "member `{}` has a non-UTF-8 (cp437) name; repacking would rename it",
            e.name
        ))
    }
}

fn torch_zip_plan(blob: &dyn Blob, policy: &Policy) -> Result<Plan, SanitizeError> {
    let arch = zip::read(blob, 100_000).map_err(|e| SanitizeError::Refused(format!("zip: {e}")))?;
    let mut seen = std::collections::HashSet::new();
    let mut keep: Vec<&zip::Entry> = Vec::new();
    let mut changes = Vec::new();
    for e in arch.entries.iter().filter(|e| !e.is_dir()) {
        check_member_name(e)?;
        // torch's reader takes the first of duplicate names: keep that one only.
        if !seen.insert(e.name.clone()) {
            changes.push(Change {
                offset: e.header_offset,
                action: "removed",
                what: format!("duplicate member `{}`", e.name),
            });
            continue;
        }
        keep.push(e);
    }
    let data_pkl = keep
        .iter()
        .find(|e| e.name.ends_with("/data.pkl") || e.name == "data.pkl")
        .copied()
        .ok_or_else(|| SanitizeError::Refused("no data.pkl member".into()))?;
    if data_pkl.method != 0 {
        return refuse("data.pkl is compressed; torch writes it stored");
    }
    let raw = blob
        .read_at(data_pkl.data_offset, data_pkl.compressed_size as usize)
        .map_err(|e| SanitizeError::Refused(format!("read error: {e}")))?
        .into_owned();
    let g = vm::analyze(&raw, 0, Budgets::default());
    let rebuilt = rebuild::rebuild(&g, &raw, policy).map_err(SanitizeError::Refused)?;
    verify(&rebuilt.bytes, policy)?;
    for c in &rebuilt.changes {
        changes.push(Change {
            offset: c.offset,
            action: c.action,
            what: format!("{}: {}", data_pkl.name, c.what),
        });
    }
    // Storages the rebuilt pickle references, and torch's own metadata, stay; any other
    // member (a hidden pickle, an unreferenced blob) is dropped.
    let root = data_pkl.name.strip_suffix("data.pkl").unwrap_or("");
    let g2 = vm::analyze(&rebuilt.bytes, 0, Budgets::default());
    let referenced: std::collections::HashSet<String> =
        crate::container::torch::storage_refs(&g2, &rebuilt.bytes)
            .into_iter()
            .map(|r| format!("{root}data/{}", r.key))
            .collect();
    let metadata = |n: &str| {
        let base = n.rsplit('/').next().unwrap_or(n);
        matches!(
            base,
            "byteorder" | "version" | ".format_version" | ".storage_alignment" | "serialization_id"
        )
    };
    let mut members = Vec::new();
    for e in keep {
        if std::ptr::eq(e, data_pkl) {
            members.push(zipwrite::Member::Bytes(
                e.name.clone(),
                rebuilt.bytes.clone(),
            ));
        } else if referenced.contains(&e.name) || metadata(&e.name) {
            members.push(zipwrite::Member::Copy(e.clone()));
        } else {
            changes.push(Change {
                offset: e.header_offset,
                action: "removed",
                what: format!(
                    "member `{}`, which the checkpoint does not reference",
                    e.name
                ),
            });
        }
    }
    Ok((members, changes))
}

/// A new temp file in `dir`, created exclusively (never through an existing file or a
/// symlink someone planted under a predictable name).
/// Gives the temp file the permissions of the file it replaces (a 0600 checkpoint stays 0600).
fn keep_permissions(tmp: &Path, target: &Path) {
    if let Ok(m) = std::fs::metadata(target) {
        let _ = std::fs::set_permissions(tmp, m.permissions());
    }
}

/// Fills a fresh temp file next to `target` and renames it over `target`: a reader sees the
/// old file or the new one. The temp file gets `perms_from`'s permissions.
fn replace_via_temp(
    target: &Path,
    perms_from: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (mut f, tmp) = create_temp(dir, &name)?;
    let result = (|| {
        fill(&mut f)?;
        f.sync_all()?;
        keep_permissions(&tmp, perms_from);
        std::fs::rename(&tmp, target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes `bytes` to `path` atomically.
/// The formats [`sanitize_bytes`] rewrites (each has its arm there); the scan's help names
/// `picklegate sanitize` only for these.
pub fn rewrites(format: &str) -> bool {
    matches!(
        format,
        "torch-zip"
            | "npz"
            | "zip"
            | "tar"
            | "gzip"
            | "bz2"
            | "xz"
            | "lzma"
            | "zlib"
            | "lz4"
            | "zstd"
            | "joblib"
            | "pickle"
            | "torch-legacy"
            | "npy"
    )
}

pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    replace_via_temp(path, path, |f| f.write_all(bytes))
}

/// A backup copy written the same way (a planted `FILE.orig` symlink is replaced, not followed).
pub fn copy_atomically(from: &Path, to: &Path) -> std::io::Result<()> {
    replace_via_temp(to, from, |f| {
        std::io::copy(&mut std::fs::File::open(from)?, f).map(|_| ())
    })
}
