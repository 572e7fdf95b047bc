//! Repository policies end to end: discovery, the YAML language and its errors (each
//! asserted with its exact location), rules, exceptions, levels and `policy learn`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(kind: &str, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind)
        .join(name)
}

struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir(dir.path().join(".git")).unwrap_or_else(|e| panic!("{e}"));
        Repo { dir }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, data: &[u8]) {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
        }
        std::fs::write(p, data).unwrap_or_else(|e| panic!("{e}"));
    }

    fn copy(&self, from: &Path, rel: &str) {
        let data = std::fs::read(from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        self.write(rel, &data);
    }

    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_picklegate"))
            .args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap_or_else(|e| panic!("cannot run picklegate: {e}"));
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn check(&self, yaml: &str) -> (i32, String) {
        self.write(".picklegate.yaml", yaml.as_bytes());
        let (code, out, err) = self.run(&["policy", "check"]);
        (code, format!("{out}{err}"))
    }
}

#[test]
fn a_good_configuration_checks_clean() {
    let repo = Repo::new();
    let yaml = "version: 1\npolicies:\n  models:\n    extends: [torch]\n    allow:\n      - mypkg.layers.Custom\nrules:\n  - paths: ['models/**']\n    policy: models\nexclude: ['vendor/**']\nexceptions:\n  - path: data/old.pkl\n    reason: reviewed\n    expires: 2999-01-01\n    rules: [global-not-allowed]\nlevels:\n  trailing-data: warn\n  code-execution: {level: warn, accept-code-execution: true, reason: research corpus}\n";
    let (code, out) = repo.check(yaml);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(".picklegate.yaml: ok"), "{out}");
}

#[test]
fn errors_point_at_line_and_column() {
    let repo = Repo::new();
    let cases: &[(&str, &str, &str)] = &[
        (
            "version: 1\npolicies:\n  p:\n    allow: [torch.Size]\n    colour: red\n",
            "unknown field `colour`",
            ".picklegate.yaml:5:5",
        ),
        (
            "version: 1\npolicies:\n  p:\n    allow:\n      - builtins.eval\n",
            "`builtins.eval` in policy `p` is a code-execution sink",
            ".picklegate.yaml:5:9",
        ),
        (
            "version: 1\npolicies:\n  a:\n    extends: [b]\n  b:\n    extends: [a]\n",
            "policy `extends` cycle: a -> b -> a",
            ".picklegate.yaml:",
        ),
        (
            "version: 1\nrules:\n  - paths: ['models/[a-']\n    policy: default\n",
            "invalid glob `models/[a-`",
            ".picklegate.yaml:3:13",
        ),
        (
            "version: 1\nexceptions:\n  - path: m.pkl\n    reason: old\n    expires: 2020-01-01\n    rules: [trailing-data]\n",
            "the exception for `m.pkl` expired on 2020-01-01",
            ".picklegate.yaml:5:14",
        ),
        (
            "version: 1\nrules:\n  - paths: ['**']\n    policy: nope\n",
            "rule names unknown policy `nope`",
            ".picklegate.yaml:4:13",
        ),
        (
            "version: 1\nexceptions:\n  - path: m.pkl\n",
            "missing field `reason`",
            ".picklegate.yaml:3:5",
        ),
        (
            "version: 1\npolicies:\n  p:\n    allow: ['torch*.Storage']\n",
            "a `*` may only appear once, in the last name component",
            ".picklegate.yaml:4:13",
        ),
        (
            "version: 1\nlevels:\n  no-such-rule: warn\n",
            "`levels` names unknown rule id `no-such-rule`",
            ".picklegate.yaml:3:17",
        ),
        // Critical rules: lowering needs an explicit acceptance with a reason, waiving a
        // pin to the file's content.
        (
            "version: 1\nlevels:\n  code-execution: allow\n",
            "lowering the critical rule `code-execution` to allow",
            ".picklegate.yaml:3:19",
        ),
        (
            "version: 1\nlevels:\n  trailing-data: warn\n  zip-duplicate-member: {level: warn, accept-code-execution: true}\n",
            "lowering the critical rule `zip-duplicate-member` to warn",
            ".picklegate.yaml:4:25",
        ),
        (
            "version: 1\nexceptions:\n  - path: m.pkl\n    reason: trust me\n",
            "the exception for `m.pkl` waives critical rules (all rules) without pinning the file",
            ".picklegate.yaml:3:11",
        ),
        (
            "version: 1\nexceptions:\n  - path: m.pkl\n    reason: trust me\n    rules: [trailing-data, unresolved-global, build-on-global]\n",
            "waives critical rules (unresolved-global, build-on-global)",
            ".picklegate.yaml:3:11",
        ),
        (
            "version: 1\npolicies:\n  p:\n  allow: [x.y]\n   - oops\n",
            "",
            ".picklegate.yaml:",
        ),
    ];
    for (yaml, message, location) in cases {
        let (code, out) = repo.check(yaml);
        assert_eq!(code, 2, "{yaml}\n{out}");
        assert!(
            out.contains(message),
            "want `{message}` for\n{yaml}\ngot:\n{out}"
        );
        assert!(
            out.contains(location),
            "want location {location} for\n{yaml}\ngot:\n{out}"
        );
        assert!(out.contains("^"), "no underline:\n{out}");
    }
}

#[test]
fn sinks_can_be_allowed_only_explicitly() {
    let repo = Repo::new();
    let (code, out) = repo.check(
        "version: 1\npolicies:\n  p:\n    allow:\n      - {name: builtins.eval, accept-code-execution: true, reason: legacy tests}\n",
    );
    assert_eq!(code, 0, "{out}");
}

#[test]
fn without_a_configuration_the_default_applies_with_a_notice() {
    let repo = Repo::new();
    repo.copy(&fixture("benign", "torch_linear.pkl"), "m.pkl");
    let (code, _, err) = repo.run(&["scan"]);
    assert_eq!(code, 0);
    assert!(
        err.contains("no .picklegate.yaml found; using the built-in default policy"),
        "{err}"
    );
}

#[test]
fn configuration_is_found_from_a_subdirectory_and_rules_pick_policies() {
    let repo = Repo::new();
    repo.copy(&fixture("benign", "torch_linear.pkl"), "models/a.pkl");
    repo.copy(&fixture("benign", "torch_linear.pkl"), "data/b.pkl");
    repo.copy(
        &fixture("attacks", "a01_sequential_exec_head.pkl"),
        "vendor/evil.pkl",
    );
    repo.write(
        ".picklegate.yaml",
        b"version: 1\npolicies:\n  strict:\n    extends: [python-data]\nrules:\n  - paths: ['data/**']\n    policy: strict\n  - paths: ['**/*.pkl']\n    policy: default\nexclude: ['vendor/**']\n",
    );
    let sub = repo.path("models");
    let out = Command::new(env!("CARGO_BIN_EXE_picklegate"))
        .args(["scan", "--format", "json", ".."])
        .current_dir(&sub)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(1));
    let files: Vec<serde_json::Value> = v["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["format"] != "unknown")
        .cloned()
        .collect();
    // vendor/ is excluded; data/b.pkl fails under `strict` (no torch); models/a.pkl passes.
    assert_eq!(files.len(), 2, "{v:#}");
    let status = |suffix: &str| {
        files
            .iter()
            .find(|f| f["path"].as_str().is_some_and(|p| p.ends_with(suffix)))
            .map(|f| f["status"].clone())
    };
    assert_eq!(status("a.pkl"), Some("clean".into()));
    assert_eq!(status("b.pkl"), Some("findings".into()));
    let (_, out, _) = repo.run(&[
        "policy",
        "explain",
        "data/b.pkl",
        "vendor/evil.pkl",
        "other.txt",
    ]);
    assert!(out.contains("policy: strict"), "{out}");
    assert!(
        out.contains("rule #1 (") && out.contains("matches `data/**`"),
        "{out}"
    );
    assert!(out.contains("excluded: yes"), "{out}");
    assert!(
        out.contains("no rule matches; the configuration's `default`"),
        "{out}"
    );
}

#[test]
fn removing_one_allow_entry_produces_exactly_that_finding() {
    let repo = Repo::new();
    repo.copy(&fixture("benign", "torch_linear.pkl"), "m.pkl");
    let (_, learned, _) = repo.run(&["policy", "learn", "m.pkl"]);
    repo.write(".picklegate.yaml", learned.as_bytes());
    assert_eq!(repo.run(&["scan", "m.pkl"]).0, 0, "{learned}");
    let without: String = learned
        .lines()
        .filter(|l| l.trim() != "- torch._utils._rebuild_tensor_v2")
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(without, learned);
    repo.write(".picklegate.yaml", without.as_bytes());
    let (code, out, _) = repo.run(&["scan", "--format", "json", "m.pkl"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}"));
    let findings = v["files"][0]["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(findings.len(), 1, "{v:#}");
    assert_eq!(findings[0]["rule"], "global-not-allowed");
    assert_eq!(findings[0]["global"], "torch._utils._rebuild_tensor_v2");
    assert!(
        findings[0]["policy"]
            .as_str()
            .is_some_and(|p| p.starts_with("learned (") && p.contains(".picklegate.yaml:")),
        "{v:#}"
    );
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{e}"));
    sha2::Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A waived finding is never invisible: every format keeps it, marked, and none fails.
#[test]
fn waived_findings_stay_in_every_report() {
    let repo = Repo::new();
    repo.copy(
        &fixture("attacks", "a01_sequential_exec_head.pkl"),
        "legacy/old.pkl",
    );
    let digest = sha256(&repo.path("legacy/old.pkl"));
    repo.write(
        ".picklegate.yaml",
        format!(
            "version: 1\nexceptions:\n  - path: legacy/old.pkl\n    reason: quarantined SEC-9\n    sha256: {digest}\n"
        )
        .as_bytes(),
    );
    let (code, out, _) = repo.run(&["scan", "--format", "json", "legacy/old.pkl"]);
    assert_eq!(code, 0, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}"));
    let findings = v["files"][0]["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(!findings.is_empty(), "{v:#}");
    for f in &findings {
        assert_eq!(f["suppressed"]["kind"], "external", "{f:#}");
        assert_eq!(f["suppressed"]["justification"], "quarantined SEC-9");
        assert!(f["suppressed"]["location"]
            .as_str()
            .is_some_and(|l| l.ends_with(".picklegate.yaml:3")));
    }
    assert_eq!(v["files"][0]["status"], "clean");
    assert_eq!(v["summary"]["findings"], 0);
    assert_eq!(v["summary"]["suppressed"], findings.len());

    let (code, out, _) = repo.run(&["scan", "--format", "sarif", "legacy/old.pkl"]);
    assert_eq!(code, 0);
    let sarif: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}"));
    let results = sarif["runs"][0]["results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(results.len(), findings.len());
    assert!(results
        .iter()
        .all(|r| r["suppressions"][0]["kind"] == "external"
            && r["suppressions"][0]["justification"]
                .as_str()
                .is_some_and(|j| j.contains("quarantined SEC-9"))));

    let (code, out, _) = repo.run(&["scan", "--format", "github", "legacy/old.pkl"]);
    assert_eq!(code, 0);
    let commands: Vec<&str> = out.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(commands.len(), findings.len(), "{out}");
    assert!(
        commands
            .iter()
            .all(|l| l.starts_with("::notice ") && l.contains("(waived)")),
        "{out}"
    );

    let (code, out, _) = repo.run(&["scan", "--format", "gitlab", "legacy/old.pkl"]);
    assert_eq!(code, 0);
    let gl: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}"));
    let issues = gl.as_array().cloned().unwrap_or_default();
    assert_eq!(issues.len(), findings.len());
    assert!(issues.iter().all(|i| i["suppressed"] == true
        && i["description"]
            .as_str()
            .is_some_and(|d| d.contains("quarantined SEC-9"))));

    let (code, out, _) = repo.run(&["scan", "legacy/old.pkl"]);
    assert_eq!(code, 0);
    assert!(
        out.contains(&format!(
            "{} finding(s) waived by exception",
            findings.len()
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(", {} waived", findings.len())),
        "{out}"
    );
    assert!(out.contains("waived code-execution @ byte"), "{out}");
}

#[test]
fn an_exception_pinned_to_a_digest_stops_when_the_file_changes() {
    let repo = Repo::new();
    repo.copy(
        &fixture("attacks", "a01_sequential_exec_head.pkl"),
        "legacy/old.pkl",
    );
    let digest = sha256(&repo.path("legacy/old.pkl"));
    let yaml = format!(
        "version: 1\nexceptions:\n  - path: legacy/old.pkl\n    reason: quarantined test artefact\n    sha256: {digest}\n"
    );
    repo.write(".picklegate.yaml", yaml.as_bytes());
    let (code, out, _) = repo.run(&["scan", "--format", "json"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("quarantined test artefact"), "{out}");
    // Same name, different bytes: the exception no longer applies.
    let mut data = std::fs::read(repo.path("legacy/old.pkl")).unwrap_or_default();
    data.extend_from_slice(b"N.");
    repo.write("legacy/old.pkl", &data);
    let (code, _, _) = repo.run(&["scan", "--format", "json"]);
    assert_eq!(code, 1);
}

#[test]
fn levels_from_configuration_and_command_line() {
    let repo = Repo::new();
    repo.copy(&fixture("attacks", "a13_trailing_data.pkl"), "t.pkl");
    repo.write(".picklegate.yaml", b"version: 1\n");
    assert_eq!(repo.run(&["scan", "t.pkl"]).0, 1);
    repo.write(
        ".picklegate.yaml",
        b"version: 1\nlevels:\n  trailing-data: warn\n",
    );
    let (code, out, _) = repo.run(&["scan", "--format", "json", "t.pkl"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\"level\": \"warn\""), "{out}");
    assert_eq!(
        repo.run(&["scan", "--level", "trailing-data=deny", "t.pkl"])
            .0,
        1
    );
    assert_eq!(
        repo.run(&["scan", "--level", "trailing-data=allow", "t.pkl"])
            .0,
        0
    );
    assert_eq!(repo.run(&["scan", "--level", "nope=allow", "t.pkl"]).0, 2);
}

#[test]
fn learned_policy_passes_benign_files_and_still_fails_attacks() {
    let repo = Repo::new();
    let benign = [
        "torch_checkpoint_adam.pkl",
        "hf_bert_tiny.pkl",
        "sklearn_random_forest_p4.pkl",
        "numpy_object_p5.pkl",
        "pandas_df.pkl",
        "data_p0.pkl",
    ];
    for b in benign {
        repo.copy(&fixture("benign", b), &format!("models/{b}"));
    }
    repo.copy(
        &fixture("containers", "joblib_logreg_zlib.joblib"),
        "models/logreg.joblib",
    );
    let (code, learned, err) = repo.run(&["policy", "learn", "models"]);
    assert_eq!(code, 0, "{err}");
    assert!(!learned.contains("!!!"), "{learned}");
    repo.write(".picklegate.yaml", learned.as_bytes());
    assert_eq!(repo.run(&["policy", "check"]).0, 0);
    let (code, out, _) = repo.run(&["scan"]);
    assert_eq!(code, 0, "{learned}\n{out}");
    repo.copy(&fixture("attacks", "a04_bad_dict.pkl"), "models/evil.pkl");
    let (code, out, _) = repo.run(&["scan"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("code-execution"), "{out}");
    // learn marks the sink loudly instead of allowing it.
    let (_, relearned, _) = repo.run(&["policy", "learn", "models"]);
    assert!(
        relearned.contains("# !!!") && relearned.contains("EXECUTES CODE"),
        "{relearned}"
    );
    assert!(!relearned.contains("- builtins.eval"), "{relearned}");
}

#[test]
fn unused_allow_entries_and_exceptions_are_reported_after_a_full_scan() {
    let repo = Repo::new();
    repo.copy(&fixture("benign", "torch_linear.pkl"), "m.pkl");
    repo.write(
        ".picklegate.yaml",
        b"version: 1\npolicies:\n  p:\n    extends: [default]\n    allow:\n      - mypkg.Unused\ndefault: p\nexceptions:\n  - path: gone.pkl\n    reason: removed long ago\n    rules: [trailing-data]\n",
    );
    let (code, _, err) = repo.run(&["scan"]);
    assert_eq!(code, 0);
    assert!(
        err.contains("allow entry `mypkg.Unused` (")
            && err.contains(".picklegate.yaml:6) matched nothing"),
        "{err}"
    );
    assert!(
        err.contains("exception for `gone.pkl`") && err.contains("matched nothing"),
        "{err}"
    );
}

#[test]
fn the_committed_schema_matches_the_types() {
    let repo = Repo::new();
    let (code, out, _) = repo.run(&["policy", "schema"]);
    assert_eq!(code, 0);
    let committed = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("policies/schema.json"),
    )
    .unwrap_or_default();
    assert_eq!(
        out.trim(),
        committed.trim(),
        "regenerate: picklegate policy schema > policies/schema.json"
    );
}

#[test]
fn the_presets_pass_every_benign_real_library_fixture() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let presets = [
        "--preset",
        "default",
        "--preset",
        "pandas",
        "--preset",
        "transformers",
        "--preset",
        "joblib",
    ];
    let repo = Repo::new();
    let benign = root.join("benign");
    let mut args: Vec<&str> = vec!["scan", "--format", "json"];
    args.extend(presets);
    let b = benign.to_string_lossy().into_owned();
    args.push(&b);
    let (code, out, _) = repo.run(&args);
    assert_eq!(code, 0, "{out}");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("containers/manifest.json")).unwrap_or_default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for e in manifest.as_array().into_iter().flatten() {
        let expected_rules = e["rules"].as_array().map_or(0, |r| r.len());
        if e["kind"] != "benign" || expected_rules > 0 {
            continue;
        }
        let f = root
            .join("containers")
            .join(e["file"].as_str().unwrap_or_default());
        let f = f.to_string_lossy().into_owned();
        let mut args: Vec<&str> = vec!["scan"];
        args.extend(presets);
        args.push(&f);
        let (code, out, _) = repo.run(&args);
        assert_eq!(code, 0, "{f}: {out}");
    }
}

/// `policy learn` of an append log (several pickles back to back): the globals in their
/// narrowest modes, and `trailing-pickle` lowered to `warn` as a level (a storage quirk,
/// not an import); the learned configuration then passes the file.
#[test]
fn learn_writes_modes_and_storage_levels() {
    let repo = Repo::new();
    let log = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ml/special/metrics_append.log.pkl");
    repo.copy(&log, "metrics.log.pkl");
    let (code, learned, err) = repo.run(&["policy", "learn", "metrics.log.pkl"]);
    assert_eq!(code, 0, "{err}");
    assert!(learned.contains("levels:\n"), "{learned}");
    assert!(learned.contains("  trailing-pickle: warn"), "{learned}");
    repo.write(".picklegate.yaml", learned.as_bytes());
    let (code, out, err) = repo.run(&["scan", "metrics.log.pkl"]);
    assert_eq!(code, 0, "{out}{err}");
}
