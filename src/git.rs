//! Where files come from in a gate: the staged index (exactly what will be committed),
//! a commit range (a pull/merge request), or the blobs pre-commit names. Content is
//! always read from the object database, never from the working tree.

use git2::{Delta, DiffFindOptions, DiffOptions, ObjectType, Oid, Repository, Tree};
use std::path::{Path, PathBuf};

const MODE_LINK: u32 = 0o120000;
const MODE_SUBMODULE: u32 = 0o160000;

/// One blob to scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Path in the repository (`/` separators).
    pub path: String,
    pub oid: Oid,
    pub status: &'static str,
    /// For renames and copies: the old path.
    pub from: Option<String>,
    /// The commit the blob was taken from (range and tree modes).
    pub commit: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("not in a git repository: {0}")]
    NoRepository(String),
    #[error(
        "{what} `{rev}` is not in this clone{shallow}: fetch the full history \
         (GitHub Actions: actions/checkout with `fetch-depth: 0`; GitLab CI: `GIT_DEPTH: \"0\"`; \
         locally: `git fetch --unshallow`)"
    )]
    MissingRevision {
        what: &'static str,
        rev: String,
        shallow: &'static str,
    },
    #[error("{what} `{rev}` names no commit: no branch, tag or commit of that name in this repository ({reason})")]
    UnknownRevision {
        what: &'static str,
        rev: String,
        reason: String,
    },
    #[error("{what} `{rev}` is not in this clone: fetch it first (`git fetch origin {rev}`)")]
    MissingObject { what: &'static str, rev: String },
    #[error("{what} `{rev}` is a {kind}, not a commit")]
    NotACommit {
        what: &'static str,
        rev: String,
        kind: &'static str,
    },
    #[error("invalid range `{0}`: expected BASE..HEAD or BASE...HEAD")]
    BadRange(String),
    #[error("CI detection: {0}")]
    Ci(String),
    #[error("cannot copy the blob to a temp file: {0}")]
    Spool(String),
    #[error(transparent)]
    Git(#[from] git2::Error),
}

pub fn open() -> Result<Repository, GitError> {
    // open_from_env honours GIT_DIR, GIT_INDEX_FILE and friends, as hooks set them.
    Repository::open_from_env().map_err(|e| GitError::NoRepository(e.message().to_string()))
}

fn scannable(mode: u32) -> bool {
    mode != MODE_LINK && mode != MODE_SUBMODULE && mode != 0
}

fn path_of(p: Option<&std::path::Path>) -> String {
    p.map(|p| p.to_string_lossy().replace('\\', "/"))
        .unwrap_or_default()
}

fn status_name(d: Delta) -> Option<&'static str> {
    match d {
        Delta::Added => Some("added"),
        Delta::Modified => Some("modified"),
        Delta::Renamed => Some("renamed"),
        Delta::Copied => Some("copied"),
        Delta::Typechange => Some("typechange"),
        _ => None,
    }
}

fn collect(diff: &mut git2::Diff<'_>, commit: Option<String>) -> Result<Vec<Change>, GitError> {
    let mut find = DiffFindOptions::new();
    find.renames(true).copies(false);
    diff.find_similar(Some(&mut find))?;
    let mut out = Vec::new();
    for d in diff.deltas() {
        let Some(status) = status_name(d.status()) else {
            continue;
        };
        let new = d.new_file();
        if !scannable(u32::from(new.mode())) || new.id().is_zero() {
            continue;
        }
        out.push(Change {
            path: path_of(new.path()),
            oid: new.id(),
            status,
            from: matches!(d.status(), Delta::Renamed | Delta::Copied)
                .then(|| path_of(d.old_file().path())),
            commit: commit.clone(),
        });
    }
    Ok(out)
}

fn diff_options() -> DiffOptions {
    let mut o = DiffOptions::new();
    o.include_typechange(true).ignore_submodules(true);
    o
}

/// HEAD (or the empty tree on an unborn branch) against the index.
pub fn staged(repo: &Repository) -> Result<Vec<Change>, GitError> {
    let head = match repo.head() {
        Ok(h) => Some(h.peel_to_tree()?),
        Err(_) => None,
    };
    let index = repo.index()?;
    let mut diff =
        repo.diff_tree_to_index(head.as_ref(), Some(&index), Some(&mut diff_options()))?;
    collect(&mut diff, None)
}

/// The index blobs of the named paths (pre-commit passes names relative to the root),
/// and the names that are not in the index (the caller scans those from disk: fail closed).
pub fn index_blobs(
    repo: &Repository,
    paths: &[String],
) -> Result<(Vec<Change>, Vec<String>), GitError> {
    let index = repo.index()?;
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for p in paths {
        let rel = p.trim_start_matches("./").replace('\\', "/");
        let Some(entry) = index.get_path(std::path::Path::new(&rel), 0) else {
            missing.push(p.clone());
            continue;
        };
        if !scannable(entry.mode) {
            continue;
        }
        out.push(Change {
            path: rel,
            oid: entry.id,
            status: "staged",
            from: None,
            commit: None,
        });
    }
    Ok((out, missing))
}

fn shallow_hint(repo: &Repository) -> &'static str {
    if repo.is_shallow() {
        " (the clone is shallow)"
    } else {
        ""
    }
}

fn commit_of<'r>(
    repo: &'r Repository,
    rev: &str,
    what: &'static str,
) -> Result<git2::Commit<'r>, GitError> {
    let object = match repo.revparse_single(rev) {
        Ok(o) => o,
        Err(e) => {
            // Why it failed decides the advice: missing history only explains a shallow
            // clone (CI checkouts) or an object id that is absent; anything else is a name
            // that does not exist (a typo, a branch that was never fetched).
            let id_like = rev.len() >= 7 && rev.bytes().all(|b| b.is_ascii_hexdigit());
            return Err(if repo.is_shallow() {
                GitError::MissingRevision {
                    what,
                    rev: rev.to_string(),
                    shallow: shallow_hint(repo),
                }
            } else if id_like {
                GitError::MissingObject {
                    what,
                    rev: rev.to_string(),
                }
            } else {
                GitError::UnknownRevision {
                    what,
                    rev: rev.to_string(),
                    reason: e.message().to_string(),
                }
            });
        }
    };
    let kind = object.kind().map_or("object", |k| k.str());
    object.peel_to_commit().map_err(|_| GitError::NotACommit {
        what,
        rev: rev.to_string(),
        kind,
    })
}

/// A parsed `BASE..HEAD` / `BASE...HEAD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    pub base: String,
    pub head: String,
    /// Three dots: diff from the merge base.
    pub merge_base: bool,
}

impl Range {
    pub fn parse(spec: &str) -> Result<Range, GitError> {
        let (base, head, merge_base) = if let Some((a, b)) = spec.split_once("...") {
            (a, b, true)
        } else if let Some((a, b)) = spec.split_once("..") {
            (a, b, false)
        } else {
            return Err(GitError::BadRange(spec.to_string()));
        };
        let head = if head.is_empty() { "HEAD" } else { head };
        // `a..b..c` and `a...b...c` name no range (git rejects them too).
        if base.is_empty() || head.contains("..") {
            return Err(GitError::BadRange(spec.to_string()));
        }
        Ok(Range {
            base: base.to_string(),
            head: head.to_string(),
            merge_base,
        })
    }

    pub fn display(&self) -> String {
        format!(
            "{}{}{}",
            self.base,
            if self.merge_base { "..." } else { ".." },
            self.head
        )
    }
}

/// Every added or modified blob between the range's base and head trees; with
/// `all_commits`, also every blob any commit of the range added (even if removed later).
pub fn range(repo: &Repository, r: &Range, all_commits: bool) -> Result<Vec<Change>, GitError> {
    let head = commit_of(repo, &r.head, "head revision")?;
    let base = commit_of(repo, &r.base, "base revision")?;
    let base_oid = if r.merge_base {
        repo.merge_base(base.id(), head.id())
            .map_err(|_| GitError::MissingRevision {
                what: "merge base of",
                rev: r.display(),
                shallow: shallow_hint(repo),
            })?
    } else {
        base.id()
    };
    let base_tree = repo.find_commit(base_oid)?.tree()?;
    let head_tree = head.tree()?;
    let mut diff = repo.diff_tree_to_tree(
        Some(&base_tree),
        Some(&head_tree),
        Some(&mut diff_options()),
    )?;
    let mut out = collect(&mut diff, Some(head.id().to_string()))?;
    if all_commits {
        let mut walk = repo.revwalk()?;
        walk.push(head.id())?;
        walk.hide(base_oid)?;
        commit_changes(repo, walk, &mut out)?;
    }
    Ok(out)
}

/// Appends what each commit of `walk` added or modified (against its first parent; a root
/// commit against the empty tree), each (path, blob) once.
fn commit_changes(
    repo: &Repository,
    walk: git2::Revwalk<'_>,
    out: &mut Vec<Change>,
) -> Result<(), GitError> {
    let mut seen: std::collections::HashSet<(String, Oid)> =
        out.iter().map(|c| (c.path.clone(), c.oid)).collect();
    for id in walk {
        let c = repo.find_commit(id?)?;
        let parent_tree: Option<Tree<'_>> = match c.parent(0) {
            Ok(p) => Some(p.tree()?),
            Err(_) => None,
        };
        let tree = c.tree()?;
        let mut d =
            repo.diff_tree_to_tree(parent_tree.as_ref(), Some(&tree), Some(&mut diff_options()))?;
        for ch in collect(&mut d, Some(c.id().to_string()))? {
            if seen.insert((ch.path.clone(), ch.oid)) {
                out.push(ch);
            }
        }
    }
    Ok(())
}

/// What a push adds that the remote does not have yet: every blob that any commit
/// reachable from `local` but from no ref of `refs/remotes/<remote>/` added or modified,
/// each commit diffed against its first parent (a root commit against the empty tree).
/// This is `git rev-list <local> --not --remotes=<remote>`, the set pre-commit computes
/// for a new remote branch; it reads the pushed ref, never the index or another branch.
pub fn pushed(repo: &Repository, local: &str, remote: &str) -> Result<Vec<Change>, GitError> {
    let tip = commit_of(repo, local, "pushed revision")?;
    let mut walk = repo.revwalk()?;
    walk.push(tip.id())?;
    let prefix = format!("refs/remotes/{remote}/");
    for r in repo.references()?.flatten() {
        if r.name().is_ok_and(|n| n.starts_with(&prefix)) {
            if let Ok(c) = r.peel_to_commit() {
                walk.hide(c.id())?;
            }
        }
    }
    let mut out = Vec::new();
    commit_changes(repo, walk, &mut out)?;
    Ok(out)
}

/// Every blob of every commit reachable from `rev`, root commit included: each commit
/// diffed against its first parent (the root against the empty tree), each (path, blob)
/// once. A blob that was removed later is still scanned: it stays in the history.
pub fn all_history(repo: &Repository, rev: &str) -> Result<Vec<Change>, GitError> {
    let tip = commit_of(repo, rev, "revision")?;
    let mut walk = repo.revwalk()?;
    walk.push(tip.id())?;
    let mut out = Vec::new();
    commit_changes(repo, walk, &mut out)?;
    Ok(out)
}

/// The commit a range's changes are measured from: its base, or with three dots the merge
/// base. The policy of a range scan is read from here (the trusted side).
pub fn range_base(repo: &Repository, r: &Range) -> Result<Oid, GitError> {
    let head = commit_of(repo, &r.head, "head revision")?;
    let base = commit_of(repo, &r.base, "base revision")?;
    if !r.merge_base {
        return Ok(base.id());
    }
    repo.merge_base(base.id(), head.id())
        .map_err(|_| GitError::MissingRevision {
            what: "merge base of",
            rev: r.display(),
            shallow: shallow_hint(repo),
        })
}

/// The commit `rev` names.
pub fn commit_id(repo: &Repository, rev: &str) -> Result<Oid, GitError> {
    Ok(commit_of(repo, rev, "revision")?.id())
}

/// The text of the first of `names` (paths from the repository root) that the tree of
/// `commit` holds as a regular file, with its path and blob id.
pub fn file_at(
    repo: &Repository,
    commit: Oid,
    names: &[String],
) -> Result<Option<(String, Vec<u8>, Oid)>, GitError> {
    let tree = repo.find_commit(commit)?.tree()?;
    for n in names {
        let Ok(entry) = tree.get_path(Path::new(n)) else {
            continue;
        };
        if entry.kind() != Some(ObjectType::Blob) || entry.filemode() as u32 == MODE_LINK {
            continue;
        }
        let blob = repo.find_blob(entry.id())?;
        return Ok(Some((n.clone(), blob.content().to_vec(), entry.id())));
    }
    Ok(None)
}

/// Every blob of a commit's tree (a new branch has no base to diff against).
pub fn whole_tree(repo: &Repository, rev: &str) -> Result<Vec<Change>, GitError> {
    let commit = commit_of(repo, rev, "revision")?;
    let tree = commit.tree()?;
    let mut out = Vec::new();
    let id = commit.id().to_string();
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() == Some(ObjectType::Blob) && scannable(entry.filemode() as u32) {
            out.push(Change {
                path: format!("{dir}{}", entry.name().unwrap_or_default()),
                oid: entry.id(),
                status: "tree",
                from: None,
                commit: Some(id.clone()),
            });
        }
        git2::TreeWalkResult::Ok
    })?;
    Ok(out)
}

/// Size of a blob without reading it.
pub fn blob_size(repo: &Repository, oid: Oid) -> Result<u64, GitError> {
    let (size, _) = repo.odb()?.read_header(oid)?;
    Ok(size as u64)
}

pub fn read_blob(repo: &Repository, oid: Oid) -> Result<Vec<u8>, GitError> {
    Ok(repo.find_blob(oid)?.content().to_vec())
}

/// The work-tree file of an index entry when git itself would take it to hold exactly the
/// entry's blob without reading it: a regular file whose stat data (size, mtime, ctime,
/// inode, device, mode, owner) equals what the index recorded, and that is not racily clean
/// (modified in the same instant the index was written, which stat data cannot tell apart).
/// This is git's own rule (`ie_match_stat`, `is_racy_timestamp`); it lets a multi-GB staged
/// checkpoint be scanned from disk with sparse reads instead of being copied out.
#[cfg(unix)]
pub fn worktree_copy_of_index_blob(repo: &Repository, path: &str, oid: Oid) -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let workdir = repo.workdir()?;
    let index = repo.index().ok()?;
    let entry = index.get_path(Path::new(path), 0)?;
    if entry.id != oid {
        return None;
    }
    let file = workdir.join(path);
    let meta = std::fs::symlink_metadata(&file).ok()?;
    if !meta.file_type().is_file() {
        return None;
    }
    // Truncated to 32 bits as the index stores them.
    let same = u64::from(entry.file_size) == (meta.size() & 0xffff_ffff)
        && i64::from(entry.mtime.seconds()) == meta.mtime()
        && i64::from(entry.mtime.nanoseconds()) == meta.mtime_nsec()
        && i64::from(entry.ctime.seconds()) == meta.ctime()
        && i64::from(entry.ctime.nanoseconds()) == meta.ctime_nsec()
        && u64::from(entry.ino) == (meta.ino() & 0xffff_ffff)
        && u64::from(entry.dev) == (meta.dev() & 0xffff_ffff)
        && entry.uid == meta.uid()
        && entry.gid == meta.gid()
        && (entry.mode & 0o100) == (meta.mode() & 0o100);
    if !same {
        return None;
    }
    // Racily clean: the file changed in the same timestamp tick as the index was written.
    let index_meta = std::fs::metadata(repo.path().join("index")).ok()?;
    let racy = (meta.mtime(), meta.mtime_nsec()) >= (index_meta.mtime(), index_meta.mtime_nsec());
    (!racy).then_some(file)
}

#[cfg(not(unix))]
pub fn worktree_copy_of_index_blob(_: &Repository, _: &str, _: Oid) -> Option<PathBuf> {
    None
}

/// Blobs above this are copied to a temp file in bounded chunks and scanned from disk
/// (sparse reads), never inflated into memory whole.
pub const STREAM_BLOBS_ABOVE: u64 = 64 << 20;

/// Copies a blob to a fresh temp file in `dir` without holding it in memory: libgit2's
/// streaming reader for loose objects, else `git cat-file blob` (libgit2 cannot stream
/// packed objects). `expected` is the blob's size ([`blob_size`]). Returns the file and the
/// blob's sha256.
pub fn spool_blob(
    repo: &Repository,
    oid: Oid,
    expected: u64,
    dir: &Path,
) -> Result<(crate::spool::TempFile, String), GitError> {
    use sha2::Digest;
    use std::io::{Read, Write};
    let io_err = |e: std::io::Error| GitError::Spool(e.to_string());
    let (mut file, path) = crate::spool::create_temp(dir, "blob").map_err(io_err)?;
    let temp = crate::spool::TempFile { path };
    let mut hasher = sha2::Sha256::new();
    let mut copy = |r: &mut dyn Read| -> std::io::Result<u64> {
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])?;
            total += n as u64;
        }
        Ok(total)
    };
    let odb = repo.odb()?;
    let copied = match odb.reader(oid) {
        Ok((mut r, _, _)) => copy(&mut r).map_err(io_err)?,
        Err(_) => {
            let mut child = std::process::Command::new("git")
                .arg("--git-dir")
                .arg(repo.path())
                .args(["cat-file", "blob"])
                .arg(oid.to_string())
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(|e| GitError::Spool(format!("cannot run `git cat-file`: {e}")))?;
            let n = match child.stdout.take() {
                Some(mut out) => copy(&mut out).map_err(io_err)?,
                None => 0,
            };
            let status = child.wait().map_err(io_err)?;
            if !status.success() {
                return Err(GitError::Spool(format!("`git cat-file blob {oid}` failed")));
            }
            n
        }
    };
    if copied != expected {
        return Err(GitError::Spool(format!(
            "blob {oid} gave {copied} bytes, expected {expected}"
        )));
    }
    file.flush().map_err(io_err)?;
    Ok((temp, crate::digest::hex(&hasher.finalize())))
}

/// A Git LFS pointer: (oid, size).
pub fn lfs_pointer(data: &[u8]) -> Option<(String, u64)> {
    if data.len() > 1024 || !data.starts_with(b"version https://git-lfs.github.com/spec/v1\n") {
        return None;
    }
    let text = std::str::from_utf8(data).ok()?;
    let mut oid = None;
    let mut size = None;
    for line in text.lines() {
        if let Some(o) = line.strip_prefix("oid sha256:") {
            let o = o.trim().to_ascii_lowercase();
            if o.len() == 64 && o.bytes().all(|b| b.is_ascii_hexdigit()) {
                oid = Some(o);
            }
        } else if let Some(s) = line.strip_prefix("size ") {
            size = s.trim().parse().ok();
        }
    }
    Some((oid?, size?))
}

/// Where git-lfs keeps an object locally (in the common git directory, shared by worktrees).
pub fn lfs_object_path(repo: &Repository, oid: &str) -> PathBuf {
    repo.commondir()
        .join("lfs")
        .join("objects")
        .join(&oid[..2])
        .join(&oid[2..4])
        .join(oid)
}

/// The range a CI job should scan, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CiTarget {
    Range(Range),
    /// A new branch: no base to diff against, so the whole tree of this commit.
    Tree(String),
}

const ZERO: &str = "0000000000000000000000000000000000000000";

fn is_zero(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b == b'0')
}

/// GitHub Actions (`GITHUB_EVENT_PATH`) or GitLab CI (`CI_*`) detection.
pub fn detect_ci(env: &dyn Fn(&str) -> Option<String>) -> Result<CiTarget, GitError> {
    if let Some(path) =
        env("GITHUB_EVENT_PATH").filter(|_| env("GITHUB_ACTIONS").as_deref() == Some("true"))
    {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| GitError::Ci(format!("cannot read {path}: {e}")))?;
        let ev: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| GitError::Ci(format!("{path} is not JSON: {e}")))?;
        let s = |v: &serde_json::Value| v.as_str().map(str::to_string);
        if let (Some(base), Some(head)) = (
            s(&ev["pull_request"]["base"]["sha"]),
            s(&ev["pull_request"]["head"]["sha"]),
        ) {
            return Ok(CiTarget::Range(Range {
                base,
                head,
                merge_base: true,
            }));
        }
        // A merge queue: the group's head is the base branch plus the queued changes.
        if let (Some(base), Some(head)) = (
            s(&ev["merge_group"]["base_sha"]),
            s(&ev["merge_group"]["head_sha"]),
        ) {
            return Ok(CiTarget::Range(Range {
                base,
                head,
                merge_base: false,
            }));
        }
        let after = s(&ev["after"]).or_else(|| env("GITHUB_SHA"));
        return match (s(&ev["before"]), after) {
            (Some(before), Some(after)) if !is_zero(&before) => Ok(CiTarget::Range(Range {
                base: before,
                head: after,
                merge_base: false,
            })),
            (_, Some(after)) => Ok(CiTarget::Tree(after)),
            _ => Err(GitError::Ci(format!(
                "{path}: neither pull_request base/head nor push before/after"
            ))),
        };
    }
    if env("GITLAB_CI").as_deref() == Some("true") {
        let head =
            env("CI_COMMIT_SHA").ok_or_else(|| GitError::Ci("CI_COMMIT_SHA is not set".into()))?;
        if let Some(base) = env("CI_MERGE_REQUEST_DIFF_BASE_SHA").filter(|s| !s.is_empty()) {
            return Ok(CiTarget::Range(Range {
                base,
                head,
                merge_base: false,
            }));
        }
        return match env("CI_COMMIT_BEFORE_SHA").filter(|s| !s.is_empty() && !is_zero(s)) {
            Some(before) => Ok(CiTarget::Range(Range {
                base: before,
                head,
                merge_base: false,
            })),
            None => Ok(CiTarget::Tree(head)),
        };
    }
    let _ = ZERO;
    Err(GitError::Ci(
        "neither GitHub Actions (GITHUB_ACTIONS, GITHUB_EVENT_PATH) nor GitLab CI (GITLAB_CI) detected".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse() {
        let r = Range::parse("main...feature").ok();
        assert_eq!(
            r.map(|r| (r.base, r.head, r.merge_base)),
            Some(("main".into(), "feature".into(), true))
        );
        let r = Range::parse("a..").ok();
        assert_eq!(
            r.map(|r| (r.head, r.merge_base)),
            Some(("HEAD".into(), false))
        );
        assert!(Range::parse("main").is_err());
        assert!(Range::parse("a..b..c").is_err());
        assert!(Range::parse("a...b...c").is_err());
        assert!(Range::parse("a...b..c").is_err());
        assert!(Range::parse("..b").is_err());
    }

    #[test]
    fn lfs_pointers_parse() {
        let p = b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n";
        assert_eq!(lfs_pointer(p).map(|x| x.1), Some(12345));
        assert!(lfs_pointer(b"hello").is_none());
    }

    #[test]
    fn ci_detection() {
        let dir = std::env::temp_dir().join(format!("pg-ci-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let ev = dir.join("event.json");
        let _ = std::fs::write(
            &ev,
            r#"{"pull_request":{"base":{"sha":"aaa"},"head":{"sha":"bbb"}}}"#,
        );
        let evs = ev.to_string_lossy().into_owned();
        let gh = |k: &str| match k {
            "GITHUB_ACTIONS" => Some("true".to_string()),
            "GITHUB_EVENT_PATH" => Some(evs.clone()),
            _ => None,
        };
        assert_eq!(
            detect_ci(&gh).ok(),
            Some(CiTarget::Range(Range {
                base: "aaa".into(),
                head: "bbb".into(),
                merge_base: true
            }))
        );
        let _ = std::fs::write(&ev, format!(r#"{{"before":"{ZERO}","after":"ccc"}}"#));
        assert_eq!(detect_ci(&gh).ok(), Some(CiTarget::Tree("ccc".into())));
        // merge_group (a merge queue): base_sha..head_sha.
        let _ = std::fs::write(
            &ev,
            r#"{"action":"checks_requested","merge_group":{"base_sha":"b0","head_sha":"h1","head_ref":"gh-readonly-queue/main/pr-1"}}"#,
        );
        assert_eq!(
            detect_ci(&gh).ok(),
            Some(CiTarget::Range(Range {
                base: "b0".into(),
                head: "h1".into(),
                merge_base: false
            }))
        );
        let gl = |k: &str| match k {
            "GITLAB_CI" => Some("true".to_string()),
            "CI_COMMIT_SHA" => Some("head".to_string()),
            "CI_MERGE_REQUEST_DIFF_BASE_SHA" => Some("base".to_string()),
            _ => None,
        };
        assert_eq!(
            detect_ci(&gl).ok(),
            Some(CiTarget::Range(Range {
                base: "base".into(),
                head: "head".into(),
                merge_base: false
            }))
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
