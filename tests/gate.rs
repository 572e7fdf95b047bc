//! The gate in real git repositories, driven by the `git` CLI: staged content is read
//! from the index, ranges from the object database, LFS pointers from the local store.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(kind: &str, name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind)
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn evil() -> Vec<u8> {
    fixture("attacks", "a01_sequential_exec_head.pkl")
}

fn benign() -> Vec<u8> {
    fixture("benign", "torch_linear.pkl")
}

struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        let r = Repo {
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("{e}")),
        };
        r.git(&["init", "-q", "-b", "main"]);
        r.git(&["config", "user.email", "t@example.com"]);
        r.git(&["config", "user.name", "T"]);
        r
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.root())
            .output()
            .unwrap_or_else(|e| panic!("git: {e}"));
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn write(&self, rel: &str, data: &[u8]) {
        let p = self.root().join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(p, data).unwrap_or_else(|e| panic!("{e}"));
    }

    fn commit(&self, msg: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", msg]);
        self.git(&["rev-parse", "HEAD"])
    }

    fn scan(&self, args: &[&str]) -> (i32, Value, String) {
        scan_in(self.root(), args)
    }
}

fn scan_in(dir: &Path, args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_picklegate"))
        .arg("scan")
        .args(args)
        .args(["--format", "json"])
        .current_dir(dir)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITLAB_CI")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let v = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The report of one file in a JSON scan (a missing one fails the test).
fn report_for(v: &Value, path: &str) -> Value {
    v["files"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["path"] == path)
        .cloned()
        .unwrap_or_else(|| panic!("no report for {path}: {v:#}"))
}

fn paths(v: &Value) -> Vec<String> {
    v["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["path"].as_str().map(String::from))
        .collect()
}

#[test]
fn staged_content_is_what_gets_scanned() {
    let repo = Repo::new();
    repo.write("good.pkl", &benign());
    repo.commit("init");
    // Staged malicious, then edited clean in the working tree: still fails.
    repo.write("model.pkl", &evil());
    repo.git(&["add", "model.pkl"]);
    repo.write("model.pkl", &benign());
    let (code, v, err) = repo.scan(&["--staged"]);
    assert_eq!(code, 1, "{v:#} {err}");
    assert_eq!(paths(&v), vec!["model.pkl"]);
    assert_eq!(v["files"][0]["source"]["kind"], "staged");
    assert_eq!(v["files"][0]["source"]["status"], "added");
    assert_eq!(v["files"][0]["findings"][0]["rule"], "code-execution");
    // The working tree copy is clean.
    assert_eq!(repo.scan(&["model.pkl"]).0, 0);
    // Unstaged malicious content does not concern --staged.
    repo.git(&["add", "model.pkl"]);
    repo.write("model.pkl", &evil());
    let (code, v, _) = repo.scan(&["--staged"]);
    assert_eq!(code, 0, "{v:#}");
}

#[test]
fn an_unborn_branch_diffs_against_the_empty_tree() {
    let repo = Repo::new();
    repo.write("a/evil.bin", &evil());
    repo.write("a/ok.pkl", &benign());
    repo.git(&["add", "-A"]);
    let (code, v, _) = repo.scan(&["--staged"]);
    assert_eq!(code, 1);
    let mut p = paths(&v);
    p.sort();
    assert_eq!(p, vec!["a/evil.bin", "a/ok.pkl"]);
}

#[test]
fn ranges_scan_the_head_state_and_all_commits_on_request() {
    let repo = Repo::new();
    repo.write("keep.pkl", &benign());
    let base = repo.commit("base");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("tmp.pkl", &evil());
    repo.commit("add evil");
    repo.git(&["rm", "-q", "tmp.pkl"]);
    repo.write("new.pkl", &benign());
    repo.commit("remove evil");
    // Head state is clean: the malicious blob came and went inside the range.
    let (code, v, err) = repo.scan(&["--diff", &format!("{base}..HEAD")]);
    assert_eq!(code, 0, "{v:#} {err}");
    assert_eq!(paths(&v), vec!["new.pkl"]);
    let (code, v, _) = repo.scan(&["--diff", &format!("{base}..HEAD"), "--all-commits"]);
    assert_eq!(code, 1, "{v:#}");
    assert!(paths(&v).contains(&"tmp.pkl".to_string()));
    // A malicious blob in the head state fails the three-dot range from the merge base.
    repo.write("new.pkl", &evil());
    repo.commit("poison");
    let (code, v, _) = repo.scan(&["--diff", "main...feature"]);
    assert_eq!(code, 1);
    assert_eq!(v["files"][0]["source"]["range"], "main...feature");
    // Deletions are ignored.
    repo.git(&["rm", "-q", "keep.pkl"]);
    repo.write("new.pkl", &benign());
    repo.commit("cleanup");
    let (code, v, _) = repo.scan(&["--diff", "HEAD~1..HEAD"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(paths(&v), vec!["new.pkl"]);
}

#[test]
fn renames_are_followed() {
    let repo = Repo::new();
    repo.write("models/evil.pkl", &evil());
    let base = repo.commit("base");
    repo.git(&["mv", "models/evil.pkl", "models/renamed.pkl"]);
    repo.commit("rename");
    let (code, v, _) = repo.scan(&["--diff", &format!("{base}..HEAD")]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["files"][0]["path"], "models/renamed.pkl");
    assert_eq!(v["files"][0]["source"]["status"], "renamed");
    assert_eq!(v["files"][0]["source"]["renamed_from"], "models/evil.pkl");
}

#[test]
fn a_shallow_clone_without_the_base_explains_the_fix() {
    let origin = Repo::new();
    origin.write("a.pkl", &benign());
    let base = origin.commit("one");
    origin.write("b.pkl", &benign());
    origin.commit("two");
    origin.write("c.pkl", &evil());
    origin.commit("three");
    let clone = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let url = format!("file://{}", origin.root().display());
    let st = Command::new("git")
        .args(["clone", "-q", "--depth", "1", &url, "c"])
        .current_dir(clone.path())
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(st.success());
    let dir = clone.path().join("c");
    let (code, _, err) = scan_in(&dir, &["--diff", &format!("{base}...HEAD")]);
    assert_eq!(code, 2);
    assert!(
        err.contains("is not in this clone (the clone is shallow)"),
        "{err}"
    );
    assert!(
        err.contains("fetch-depth: 0") && err.contains("GIT_DEPTH"),
        "{err}"
    );
}

#[test]
fn hook_mode_reads_the_index_blobs_of_the_named_files() {
    let repo = Repo::new();
    repo.write("a.pkl", &benign());
    repo.commit("init");
    repo.write("m.pkl", &evil());
    repo.git(&["add", "m.pkl"]);
    repo.write("m.pkl", &benign());
    let (code, v, _) = repo.scan(&["--hook", "m.pkl", "a.pkl", "untracked.pkl"]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["files"][0]["source"]["kind"], "hook");
    // A named file that is not in the index at all is scanned from disk (fail closed).
    repo.write("new.pkl", &evil());
    let (code, v, _) = repo.scan(&["--hook", "new.pkl"]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["files"][0]["path"], "new.pkl");
    std::fs::remove_file(repo.root().join("new.pkl")).unwrap_or_else(|e| panic!("{e}"));
    // pre-push: the range from pre-commit's environment.
    let base = repo.git(&["rev-parse", "HEAD"]);
    repo.write("m.pkl", &evil());
    repo.commit("push me");
    let head = repo.git(&["rev-parse", "HEAD"]);
    let out = Command::new(env!("CARGO_BIN_EXE_picklegate"))
        .args(["scan", "--hook", "--format", "json"])
        .current_dir(repo.root())
        .env("PRE_COMMIT_FROM_REF", &base)
        .env("PRE_COMMIT_TO_REF", &head)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    assert_eq!(v["files"][0]["source"]["kind"], "range");
}

#[test]
fn symlinks_and_submodules_are_skipped() {
    let repo = Repo::new();
    repo.write("real.pkl", &benign());
    #[cfg(unix)]
    std::os::unix::fs::symlink("real.pkl", repo.root().join("link.pkl"))
        .unwrap_or_else(|e| panic!("{e}"));
    repo.git(&["add", "-A"]);
    let (code, v, _) = repo.scan(&["--staged"]);
    assert_eq!(code, 0);
    assert_eq!(paths(&v), vec!["real.pkl"]);
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn lfs_pointers_are_resolved_to_the_local_object() {
    let repo = Repo::new();
    let content = evil();
    let oid = sha256_hex(&content);
    let pointer = format!(
        "version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {}\n",
        content.len()
    );
    repo.write("model.bin", pointer.as_bytes());
    repo.git(&["add", "model.bin"]);
    // Without the object: a finding whose level the policy sets (warn by default).
    let (code, v, _) = repo.scan(&["--staged"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["files"][0]["format"], "lfs-pointer");
    assert_eq!(v["files"][0]["findings"][0]["rule"], "lfs-pointer");
    assert_eq!(v["files"][0]["findings"][0]["level"], "warn");
    assert_eq!(v["files"][0]["source"]["lfs_oid"], oid.as_str());
    let (code, _, _) = repo.scan(&["--staged", "--level", "lfs-pointer=deny"]);
    assert_eq!(code, 1);
    // An exception pinned to the oid applies without the content.
    repo.write(
        ".picklegate.yaml",
        format!("version: 1\nexceptions:\n  - path: model.bin\n    reason: vendored\n    sha256: {oid}\n").as_bytes(),
    );
    let (code, v, _) = repo.scan(&["--staged", "--level", "lfs-pointer=deny"]);
    assert_eq!(code, 0, "{v:#}");
    std::fs::remove_file(repo.root().join(".picklegate.yaml")).unwrap_or_else(|e| panic!("{e}"));
    // With the object in .git/lfs/objects: the real content is scanned.
    let obj = repo
        .root()
        .join(".git/lfs/objects")
        .join(&oid[..2])
        .join(&oid[2..4])
        .join(&oid);
    std::fs::create_dir_all(obj.parent().unwrap_or(Path::new(".")))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&obj, &content).unwrap_or_else(|e| panic!("{e}"));
    let (code, v, _) = repo.scan(&["--staged"]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["files"][0]["findings"][0]["rule"], "code-execution");
    // A corrupted local object is not trusted.
    std::fs::write(&obj, benign()).unwrap_or_else(|e| panic!("{e}"));
    let (code, v, _) = repo.scan(&["--staged"]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["files"][0]["findings"][0]["rule"], "not-inspectable");
}

#[test]
fn side_reports_are_written_in_the_same_run() {
    let repo = Repo::new();
    repo.write("m.pkl", &evil());
    repo.git(&["add", "-A"]);
    let summary = repo.root().join("summary.md");
    let out = Command::new(env!("CARGO_BIN_EXE_picklegate"))
        .args([
            "scan",
            "--staged",
            "--format",
            "github",
            "--report",
            "sarif=out.sarif",
            "--report",
            "gitlab=gl.json",
            "--report",
            "json=r.json",
        ])
        .current_dir(repo.root())
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .starts_with("::error file=m.pkl,line=1,title=picklegate code-execution (critical)::"),
        "{stdout}"
    );
    let sarif: Value = serde_json::from_str(
        &std::fs::read_to_string(repo.root().join("out.sarif")).unwrap_or_default(),
    )
    .unwrap_or(Value::Null);
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(sarif["runs"][0]["results"][0]["ruleId"], "code-execution");
    assert_eq!(
        sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["byteOffset"],
        2
    );
    let gl: Value = serde_json::from_str(
        &std::fs::read_to_string(repo.root().join("gl.json")).unwrap_or_default(),
    )
    .unwrap_or(Value::Null);
    assert_eq!(gl[0]["check_name"], "code-execution");
    assert_eq!(gl[0]["severity"], "critical");
    assert_eq!(gl[0]["location"]["path"], "m.pkl");
    assert_eq!(gl[0]["location"]["lines"]["begin"], 1);
    assert_eq!(gl[0]["fingerprint"].as_str().map(str::len), Some(64));
    let md = std::fs::read_to_string(&summary).unwrap_or_default();
    assert!(
        md.contains("| critical | `code-execution` | `m.pkl` |"),
        "{md}"
    );
}

#[test]
fn fix_writes_sanitized_replacements_and_restages_them() {
    let repo = Repo::new();
    repo.write("ok.pkl", &benign());
    repo.commit("init");
    repo.write("model.pkl", &fixture("attacks", "a04_bad_dict.pkl"));
    repo.git(&["add", "model.pkl"]);
    let (code, _, err) = repo.scan(&["--staged", "--fix", "--fix-stage"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("model.pkl: sanitized"), "{err}");
    // The index now holds the sanitized file, and so does the working tree.
    assert_eq!(repo.scan(&["--staged"]).0, 0);
    assert_eq!(repo.scan(&["model.pkl"]).0, 0);
    // A file whose attack is part of the object is refused: exit 1, left as it is.
    repo.write("bad.pkl", &fixture("attacks", "a07_protocol_mixing.pkl"));
    let (code, _, err) = repo.scan(&["bad.pkl", "--fix"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("bad.pkl: cannot be sanitized"), "{err}");
    assert_eq!(
        std::fs::read(repo.root().join("bad.pkl")).unwrap_or_default(),
        fixture("attacks", "a07_protocol_mixing.pkl")
    );
}

/// `--staged --fix` sanitizes the index blob and writes it to the work tree: when the
/// work-tree file has unstaged changes (or was deleted), that file is left alone, exit 1.
#[test]
fn fix_never_overwrites_unstaged_work() {
    let repo = Repo::new();
    repo.write("ok.pkl", &benign());
    repo.commit("init");
    repo.write("model.pkl", &fixture("attacks", "a04_bad_dict.pkl"));
    repo.git(&["add", "model.pkl"]);
    let mine = b"my unstaged edit".to_vec();
    repo.write("model.pkl", &mine);
    let (code, _, err) = repo.scan(&["--staged", "--fix", "--fix-stage"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("model.pkl: not fixed: the work-tree file differs"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(repo.root().join("model.pkl")).unwrap_or_default(),
        mine
    );
    // The index still holds the attack: the gate keeps failing.
    assert_eq!(repo.scan(&["--staged"]).0, 1);
    // Deleted in the work tree: not resurrected.
    std::fs::remove_file(repo.root().join("model.pkl")).unwrap_or_else(|e| panic!("{e}"));
    let (code, _, err) = repo.scan(&["--staged", "--fix"]);
    assert_eq!(code, 1, "{err}");
    assert!(!repo.root().join("model.pkl").exists());
}

/// A change that loosens `.picklegate.yaml` to let its own payload through: the range
/// scan reads the base revision's policy, so the payload is still refused and the edit is
/// called out; `--policy-from head` (asked for explicitly) and worktree discovery apply
/// the change's own configuration.
#[test]
fn a_range_scan_takes_its_policy_from_the_base_revision() {
    let repo = Repo::new();
    repo.write("keep.pkl", &benign());
    let base = repo.commit("base");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write(
        ".picklegate.yaml",
        b"version: 1\nlevels:\n  code-execution: {level: allow, accept-code-execution: true, reason: trust me}\n  trailing-data: allow\n  unresolved-call: {level: allow, accept-code-execution: true, reason: trust me}\n  malformed-pickle: allow\nexclude: ['vendor/**']\n",
    );
    repo.write("evil.pkl", &evil());
    repo.commit("loosen and add a payload");
    let range = format!("{base}..HEAD");

    let (code, v, err) = repo.scan(&["--diff", &range]);
    assert_eq!(code, 1, "{v:#} {err}");
    assert!(paths(&v).contains(&"evil.pkl".to_string()));
    assert!(
        err.contains("this change modifies .picklegate.yaml"),
        "{err}"
    );
    // The edit itself is a deny finding that lists each loosening at its line.
    let cfg = report_for(&v, ".picklegate.yaml");
    // A warning in a local range scan; deny in CI (below).
    assert_eq!(cfg["findings"][0]["rule"], "policy-loosened");
    assert_eq!(cfg["findings"][0]["level"], "warn", "{cfg:#}");
    let msg = cfg["findings"][0]["message"].as_str().unwrap_or_default();
    for want in [
        "line 3: lowers `code-execution` to allow (was deny), accepting code execution",
        "line 4: lowers `trailing-data` to allow (was deny)",
        "line 5: lowers `unresolved-call`",
        "line 6: lowers `malformed-pickle`",
        "line 7: excludes `vendor/**` from scanning",
    ] {
        assert!(msg.contains(want), "{want:?} not in {msg}");
    }
    assert_eq!(
        cfg["findings"][0]["related"].as_array().map(Vec::len),
        Some(5)
    );
    let head = repo.git(&["rev-parse", "HEAD"]);
    let ci = [
        ("GITLAB_CI", "true"),
        ("CI_COMMIT_SHA", head.as_str()),
        ("CI_COMMIT_BEFORE_SHA", base.as_str()),
    ];
    let (code, v, err) = scan_with_env(repo.root(), &["--ci"], &ci);
    assert_eq!(code, 1, "{v:#} {err}");
    let cfg = report_for(&v, ".picklegate.yaml");
    assert_eq!(cfg["status"], "findings", "{v:#}");
    assert_eq!(cfg["findings"][0]["level"], "deny");
    // The payload alone is removed: the loosening itself still fails the CI gate.
    std::fs::remove_file(repo.root().join("evil.pkl")).unwrap_or_else(|e| panic!("{e}"));
    let head2 = repo.commit("drop the payload");
    let ci2 = [
        ("GITLAB_CI", "true"),
        ("CI_COMMIT_SHA", head2.as_str()),
        ("CI_COMMIT_BEFORE_SHA", base.as_str()),
    ];
    let (code, v, err) = scan_with_env(repo.root(), &["--ci"], &ci2);
    assert_eq!(code, 1, "{v:#} {err}");
    assert_eq!(paths(&v), vec![".picklegate.yaml"], "{v:#}");
    // An explicit level (the command line, or the base configuration) decides, as for any rule.
    let (code, _, _) = scan_with_env(
        repo.root(),
        &["--ci", "--level", "policy-loosened=warn"],
        &ci2,
    );
    assert_eq!(code, 0);
    repo.git(&["reset", "-q", "--hard", &head]);
    let (code, _, _) = repo.scan(&["--diff", &range, "--policy-from", "base"]);
    assert_eq!(code, 1);

    // The head's own policy only when asked for.
    let (code, v, err) = repo.scan(&["--diff", &range, "--policy-from", "head"]);
    assert_eq!(code, 0, "{v:#} {err}");
    let (code, _, _) = repo.scan(&["--diff", &range, "--policy-from", "worktree"]);
    assert_eq!(code, 0);

    // A base policy is read from the base tree, with its location in messages, and a
    // broken one is a configuration error (exit 2) naming `base:.picklegate.yaml`.
    repo.git(&["checkout", "-q", "main"]);
    repo.write(
        ".picklegate.yaml",
        b"version: 1\nlevels: {code-execution: nope}\n",
    );
    let bad = repo.commit("broken policy");
    repo.git(&["checkout", "-q", "-b", "f2"]);
    repo.write("evil2.pkl", &evil());
    repo.commit("payload");
    let (code, _, err) = repo.scan(&["--diff", &format!("{bad}..HEAD")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("base:.picklegate.yaml"), "{err}");

    // Without a range there is no base to read from.
    let (code, _, err) = repo.scan(&["--staged", "--policy-from", "base"]);
    assert_eq!(code, 2);
    assert!(err.contains("needs a range"), "{err}");
}

/// Path arguments of git modes are pathspecs: a directory covers what is below it, `.` the
/// whole tree, paths are relative to the current directory, globs match; a path that names
/// nothing is exit 2 (it used to be `0 file(s) scanned`, exit 0, with a payload staged).
#[test]
fn git_mode_paths_are_pathspecs_and_never_fail_open() {
    let repo = Repo::new();
    repo.write("README.md", b"hi\n");
    repo.commit("base");
    repo.write("models/sub/evil.pkl", &evil());
    repo.write("data/ok.pkl", &benign());
    repo.git(&["add", "-A"]);
    let scanned = |dir: &Path, args: &[&str]| {
        let (code, v, err) = scan_in(dir, args);
        let mut p = paths(&v);
        p.sort();
        (code, p, err)
    };
    let root = repo.root().to_path_buf();
    for args in [
        &["--staged", "models"][..],
        &["--staged", "models/"],
        &["--staged", "."],
        &["--staged", "./models/sub/evil.pkl"],
        &["--staged", "models/**/*.pkl"],
    ] {
        let (code, p, err) = scanned(&root, args);
        assert_eq!(code, 1, "{args:?}: {p:?} {err}");
        assert!(
            p.contains(&"models/sub/evil.pkl".to_string()),
            "{args:?}: {p:?}"
        );
    }
    // Relative to the current directory, as git reads them.
    let (code, p, err) = scanned(&root.join("models"), &["--staged", "sub"]);
    assert_eq!(
        (code, p.clone()),
        (1, vec!["models/sub/evil.pkl".to_string()]),
        "{err}"
    );
    let (code, p, _) = scanned(&root.join("models"), &["--staged", "../data"]);
    assert_eq!((code, p), (0, vec!["data/ok.pkl".to_string()]));
    let (code, p, _) = scanned(&root.join("models"), &["--staged", "."]);
    assert_eq!((code, p), (1, vec!["models/sub/evil.pkl".to_string()]));
    // A path that names nothing is an error, not a clean pass.
    let (code, _, err) = scanned(&root, &["--staged", "modles"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("path `modles` matches no file"), "{err}");
    let (code, _, err) = scanned(&root, &["--staged", "../outside"]);
    assert_eq!(code, 2, "{err}");
    // An existing path with nothing staged under it: nothing to scan, exit 0.
    let (code, p, _) = scanned(&root, &["--staged", "README.md"]);
    assert_eq!((code, p), (0, Vec::<String>::new()));
    // Usage errors: --all-commits without a range, a malformed range.
    let (code, _, err) = scanned(&root, &["--staged", "--all-commits"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--all-commits needs a range"), "{err}");
    let (code, _, err) = scanned(&root, &["--diff", "HEAD..HEAD..HEAD"]);
    assert_eq!(code, 2, "{err}");
}

fn scan_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, Value, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_picklegate"));
    cmd.arg("scan")
        .args(args)
        .args(["--format", "json"])
        .current_dir(dir)
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITLAB_CI");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// pre-push of a new branch whose history reaches a root commit (pre-commit sets no range,
/// only PRE_COMMIT_LOCAL_BRANCH and PRE_COMMIT_REMOTE_NAME): the commits the push adds are
/// scanned from the pushed ref, never the index or the checked-out branch.
#[test]
fn a_pre_push_of_a_new_branch_scans_what_the_push_adds() {
    let remote = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let repo = Repo::new();
    Command::new("git")
        .args(["init", "-q", "--bare"])
        .arg(remote.path())
        .status()
        .unwrap_or_else(|e| panic!("{e}"));
    repo.git(&["remote", "add", "origin", &remote.path().to_string_lossy()]);
    repo.write("README.md", b"hi\n");
    repo.commit("root");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("models/evil.pt", &evil());
    repo.commit("payload");
    repo.git(&["rm", "-q", "models/evil.pt"]);
    repo.commit("hide it again");
    repo.git(&["checkout", "-q", "main"]);
    // A clean index on main; the dirty branch is pushed.
    let hook = [
        ("PRE_COMMIT_LOCAL_BRANCH", "refs/heads/feature"),
        ("PRE_COMMIT_REMOTE_BRANCH", "refs/heads/feature"),
        ("PRE_COMMIT_REMOTE_NAME", "origin"),
        ("PRE_COMMIT_REMOTE_URL", "unused"),
    ];
    let (code, v, err) = scan_with_env(repo.root(), &["--hook", "README.md"], &hook);
    assert_eq!(code, 1, "{v:#} {err}");
    assert!(paths(&v).contains(&"models/evil.pt".to_string()), "{v:#}");
    let evil_report = report_for(&v, "models/evil.pt");
    assert_eq!(evil_report["source"]["kind"], "push");
    assert_eq!(
        evil_report["source"]["range"],
        "refs/heads/feature --not --remotes=origin"
    );

    // What the remote already has is not scanned again: main is pushed, then a clean
    // branch from it passes while a malicious file is staged on the checked-out branch.
    repo.git(&["push", "-q", "origin", "main"]);
    repo.git(&["fetch", "-q", "origin"]);
    repo.git(&["checkout", "-q", "-b", "clean"]);
    repo.write("models/ok.pkl", &benign());
    repo.commit("a benign model");
    repo.git(&["checkout", "-q", "main"]);
    repo.write("staged-evil.pkl", &evil());
    repo.git(&["add", "staged-evil.pkl"]);
    let clean = [
        ("PRE_COMMIT_LOCAL_BRANCH", "refs/heads/clean"),
        ("PRE_COMMIT_REMOTE_NAME", "origin"),
    ];
    let (code, v, err) = scan_with_env(repo.root(), &["--hook", "staged-evil.pkl"], &clean);
    assert_eq!(code, 0, "{v:#} {err}");
    assert_eq!(paths(&v), vec!["models/ok.pkl"], "{v:#}");
}

/// `--all-history`: every blob of every commit reachable from HEAD, root commit included,
/// also those removed later.
#[test]
fn all_history_includes_the_root_commit_and_removed_files() {
    let repo = Repo::new();
    repo.write("root-evil.pkl", &evil());
    repo.commit("root with a payload");
    repo.git(&["rm", "-q", "root-evil.pkl"]);
    repo.write("ok.pkl", &benign());
    repo.commit("clean up");
    let (code, v, err) = repo.scan(&["--all-history"]);
    assert_eq!(code, 1, "{v:#} {err}");
    let mut p = paths(&v);
    p.sort();
    assert_eq!(p, vec!["ok.pkl", "root-evil.pkl"]);
    assert!(v["files"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|f| f["source"]["kind"] == "history"));
    // A pathspec narrows it, as in the other git modes.
    let (code, v, _) = repo.scan(&["--all-history", "ok.pkl"]);
    assert_eq!(code, 0, "{v:#}");
    let (code, _, err) = repo.scan(&["--all-history", "--staged"]);
    assert_eq!(code, 2, "{err}");
}

/// Bad revisions say which revision and why: a name that does not exist, an object id
/// that is not in the clone, a tree instead of a commit.
#[test]
fn bad_revisions_get_precise_errors() {
    let repo = Repo::new();
    repo.write("a.txt", b"a\n");
    let head = repo.commit("one");
    let (code, _, err) = repo.scan(&["--diff", "mian..HEAD"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("base revision `mian` names no commit"),
        "{err}"
    );
    assert!(!err.contains("fetch the full history"), "{err}");
    let missing = "0123456789abcdef0123456789abcdef01234567";
    let (code, _, err) = repo.scan(&["--diff", &format!("{missing}..HEAD")]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("base revision `{missing}` is not in this clone")),
        "{err}"
    );
    let tree = repo.git(&["rev-parse", "HEAD^{tree}"]);
    let (code, _, err) = repo.scan(&["--diff", &format!("{head}..{tree}")]);
    assert_eq!(code, 2);
    assert!(err.contains("is a tree, not a commit"), "{err}");
}

/// In `--ci`, an LFS pointer whose object was not fetched is deny (the model was not
/// seen); `--list-missing-lfs` names what to fetch.
#[test]
fn in_ci_a_missing_lfs_object_is_denied() {
    let repo = Repo::new();
    repo.write("README.md", b"hi\n");
    let base = repo.commit("base");
    let content = evil();
    let oid = sha256_hex(&content);
    repo.write(
        "model.bin",
        format!(
            "version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {}\n",
            content.len()
        )
        .as_bytes(),
    );
    let head = repo.commit("an LFS model");
    let ci = [
        ("GITLAB_CI", "true"),
        ("CI_COMMIT_SHA", head.as_str()),
        ("CI_COMMIT_BEFORE_SHA", base.as_str()),
    ];
    let (code, v, err) = scan_with_env(repo.root(), &["--ci"], &ci);
    assert_eq!(code, 1, "{v:#} {err}");
    assert_eq!(v["files"][0]["findings"][0]["rule"], "lfs-pointer");
    assert_eq!(v["files"][0]["findings"][0]["level"], "deny");
    // Outside CI the same pointer is a warning.
    let (code, _, _) = repo.scan(&["--diff", &format!("{base}..{head}")]);
    assert_eq!(code, 0);
    let out = Command::new(env!("CARGO_BIN_EXE_picklegate"))
        .args(["scan", "--ci", "--list-missing-lfs"])
        .current_dir(repo.root())
        .envs(ci)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "model.bin\n");
}

/// A staged checkpoint is scanned from the work tree only when git's own stat rule says the
/// file is the index blob (and it is not racily clean); any edit falls back to the blob.
#[test]
fn the_work_tree_file_stands_in_for_an_index_blob_only_when_git_would_trust_it() {
    let repo = Repo::new();
    repo.write("model.pt", &benign());
    // An mtime well before the index is written: not racily clean.
    let file = repo.root().join("model.pt");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .and_then(|f| f.set_modified(old))
        .unwrap_or_else(|e| panic!("{e}"));
    repo.git(&["add", "model.pt"]);
    let git_repo = git2::Repository::open(repo.root()).unwrap_or_else(|e| panic!("{e}"));
    let oid = git_repo
        .index()
        .ok()
        .and_then(|i| i.get_path(Path::new("model.pt"), 0))
        .map(|e| e.id)
        .unwrap_or(git2::Oid::ZERO_SHA1);
    let found = picklegate::git::worktree_copy_of_index_blob(&git_repo, "model.pt", oid);
    assert_eq!(found.as_deref(), Some(file.as_path()));
    // Another blob id never matches.
    assert!(picklegate::git::worktree_copy_of_index_blob(
        &git_repo,
        "model.pt",
        git2::Oid::ZERO_SHA1
    )
    .is_none());
    // An unstaged edit (new size and mtime): the blob is read instead.
    repo.write("model.pt", &evil());
    assert!(picklegate::git::worktree_copy_of_index_blob(&git_repo, "model.pt", oid).is_none());
    // Same size, restored old mtime, different inode (a rewrite): still not trusted.
    let mut same_size = benign();
    if let Some(b) = same_size.last_mut() {
        *b ^= 1;
    }
    std::fs::remove_file(&file).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&file, &same_size).unwrap_or_else(|e| panic!("{e}"));
    std::fs::File::options()
        .write(true)
        .open(&file)
        .and_then(|f| f.set_modified(old))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(picklegate::git::worktree_copy_of_index_blob(&git_repo, "model.pt", oid).is_none());
}

/// `--version` names the commit and the library versions the embedded presets come from.
#[test]
fn version_names_the_commit_and_the_preset_libraries() {
    let out = Command::new(env!("CARGO_BIN_EXE_picklegate"))
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        text.starts_with(&format!("picklegate {}\n", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.contains("\ncommit: "), "{text}");
    for lib in ["torch==", "numpy==", "scikit-learn==", "transformers=="] {
        assert!(text.contains(lib), "{lib} missing: {text}");
    }
}
