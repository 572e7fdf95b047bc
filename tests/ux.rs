//! What a person sees: the human and concise reports (insta snapshots, colours off), the
//! help each blocked file's report names, terminal conventions (`--color`, `-q`, `-v`,
//! NO_COLOR/CLICOLOR_FORCE/FORCE_COLOR, the once-per-repository notice), broken pipes on
//! every command, `disasm` of containers, `init`, `completions`, and the run metadata in
//! JSON and SARIF.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const ATTACK: &str = "tests/fixtures/attacks/a01_sequential_exec_head.pkl";
const CLEAN: &str = "tests/fixtures/benign/torch_linear.pkl";
const PANDAS: &str = "tests/fixtures/benign/pandas_df.pkl";
const LFS: &str = "tests/fixtures/containers/lfs_pointer.bin";
const TORCH_ZIP: &str = "tests/fixtures/containers/mal_torch_zip_constants_pkl.pt";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn pg_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut c = Command::new(env!("CARGO_BIN_EXE_picklegate"));
    c.args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .env_remove("FORCE_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("GITHUB_ACTIONS")
        .env_remove("GITLAB_CI");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("cannot run picklegate: {e}"));
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `text` contains `needle`, else the test fails showing `text`.
#[track_caller]
fn assert_has(text: &str, needle: impl AsRef<str>) {
    let needle = needle.as_ref();
    assert!(text.contains(needle), "`{needle}` not in:\n{text}");
}

fn pg(args: &[&str]) -> Out {
    pg_in(&root(), args, &[])
}

fn copy(from: &str, to: &Path) {
    if let Some(p) = to.parent() {
        std::fs::create_dir_all(p).unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::copy(root().join(from), to).unwrap_or_else(|e| panic!("{from}: {e}"));
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .status()
        .unwrap_or_else(|e| panic!("git: {e}"))
        .success();
    assert!(ok, "git {args:?}");
}

/// Both formats of one scan, for one snapshot: the human report, then the concise one.
fn both(args: &[&str]) -> String {
    let human = pg(&[&["scan"], args].concat());
    let concise = pg(&[&["scan", "--format", "concise"], args].concat());
    assert_eq!(human.code, concise.code, "same exit code in both formats");
    format!(
        "exit {}\n--- human ---\n{}--- concise ---\n{}",
        human.code, human.stdout, concise.stdout
    )
}

// --- the reports ---------------------------------------------------------------------------

#[test]
fn clean_file() {
    insta::assert_snapshot!(both(&[CLEAN]));
}

#[test]
fn blocked_file_with_the_sanitize_command() {
    insta::assert_snapshot!(both(&[ATTACK]));
}

#[test]
fn file_with_only_warnings() {
    // An LFS pointer is a warning outside --ci: reported, exit 0, said so in the heading.
    let s = both(&[LFS]);
    assert!(s.starts_with("exit 0"), "{s}");
    assert!(s.contains("note[lfs-pointer]: warns: "), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn a_deny_level_warning_severity_finding_is_shown_as_blocking() {
    // trailing-data is a warning-severity rule at level deny: it fails the gate, so the
    // report says `error … blocks`, never `warning` over an exit code 1.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut data = std::fs::read(root().join(CLEAN)).unwrap_or_else(|e| panic!("{e}"));
    data.extend_from_slice(b"appended bytes");
    std::fs::write(dir.path().join("m.pkl"), &data).unwrap_or_else(|e| panic!("{e}"));
    let o = pg_in(dir.path(), &["scan", "--format", "concise", "m.pkl"], &[]);
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert_has(&o.stdout, "m.pkl@");
    assert_has(&o.stdout, ": blocks trailing-data: ");
    let h = pg_in(dir.path(), &["scan", "m.pkl"], &[]);
    assert_has(&h.stdout, "error[trailing-data]: blocks: ");
}

#[test]
fn pandas_dataframe_under_the_default_policy_names_the_preset() {
    let s = both(&[PANDAS]);
    assert!(
        s.contains("allowed by preset `pandas`: scan with `--preset pandas`, or put `extends: [default, pandas]`"),
        "{s}"
    );
    // Twelve refused globals are one heading, every location listed under it.
    assert_eq!(s.matches("error[global-not-allowed]").count(), 1, "{s}");
    assert!(
        !s.contains("add it to an `allow:` list"),
        "the generic help is replaced: {s}"
    );
    insta::assert_snapshot!(s);
    // And the preset it names makes the file pass.
    assert_eq!(pg(&["scan", "--preset", "pandas", PANDAS]).code, 0);
    // JSON carries the help, and every finding (nothing is collapsed there).
    let j = pg(&["scan", "--format", "json", PANDAS]);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert!(v["files"][0]["help"]
        .as_str()
        .is_some_and(|h| h.contains("--preset pandas")));
    assert_eq!(v["files"][0]["findings"].as_array().map(Vec::len), Some(14));
}

#[test]
fn waived_finding() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    copy(PANDAS, &dir.path().join("data/frame.pkl"));
    std::fs::write(
        dir.path().join(".picklegate.yaml"),
        "version: 1\nexceptions:\n  - path: data/frame.pkl\n    rules: [global-not-allowed, build-not-allowed]\n    reason: reviewed by the data team\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let human = pg_in(dir.path(), &["scan", "data/frame.pkl"], &[]);
    let concise = pg_in(
        dir.path(),
        &["scan", "--format", "concise", "data/frame.pkl"],
        &[],
    );
    assert_eq!(human.code, 0, "{}", human.stdout);
    assert_has(&concise.stdout, "@32: waived global-not-allowed");
    let quiet = pg_in(dir.path(), &["scan", "-q", "data/frame.pkl"], &[]);
    assert!(
        !quiet.stdout.contains("waived global"),
        "-q shows only what blocks: {}",
        quiet.stdout
    );
    let tmp = dir.path().display().to_string();
    insta::assert_snapshot!(format!(
        "--- human ---\n{}--- concise ---\n{}",
        human.stdout, concise.stdout
    )
    .replace(&tmp, "[TMP]"));
}

#[test]
fn quiet_and_verbose() {
    let q = pg(&["scan", "-q", CLEAN, ATTACK, LFS]);
    assert_eq!(q.code, 1);
    assert_has(&q.stdout, "code-execution");
    assert!(
        !q.stdout.contains("lfs-pointer"),
        "-q drops warnings: {}",
        q.stdout
    );
    assert!(
        !q.stderr.contains("no .picklegate.yaml"),
        "-q drops notices: {}",
        q.stderr
    );
    let v = pg(&["scan", "-v", CLEAN, ATTACK]);
    assert_has(&v.stdout, format!("{CLEAN}: clean (pickle"));
    assert!(
        pg(&["scan", "-q", "-v", CLEAN]).code == 2,
        "-q and -v conflict"
    );
}

#[test]
fn summary_counts_blocked_warnings_and_waived() {
    let o = pg(&["scan", CLEAN, ATTACK, LFS]);
    let last = o.stdout.lines().last().unwrap_or_default().to_string();
    assert_eq!(
        last,
        "picklegate: 1 file blocked, 1 warning, 0 waived; 3 files scanned, 2 clean, 0 unreadable (exit 1: blocked by findings outside policy)"
    );
}

// --- terminal conventions --------------------------------------------------------------------

#[test]
fn color_choice_and_environment() {
    let has_ansi = |args: &[&str], env: &[(&str, &str)]| {
        pg_in(&root(), &[args, &["scan", ATTACK]].concat(), env)
            .stdout
            .contains('\x1b')
    };
    assert!(!has_ansi(&[], &[]), "not a terminal: no colour");
    assert!(has_ansi(&["--color", "always"], &[("NO_COLOR", "1")]));
    assert!(!has_ansi(&["--color", "never"], &[("FORCE_COLOR", "1")]));
    assert!(has_ansi(&[], &[("CLICOLOR_FORCE", "1")]));
    assert!(has_ansi(&[], &[("FORCE_COLOR", "1")]));
    assert!(!has_ansi(&[], &[("CLICOLOR_FORCE", "0")]));
    // A global option: after the subcommand too.
    let o = pg(&["scan", "--color", "always", ATTACK]);
    assert!(o.stdout.contains('\x1b'));
}

#[test]
fn the_no_config_notice_is_shown_once_per_repository_and_never_in_hooks() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    git(dir.path(), &["init", "-q"]);
    copy(CLEAN, &dir.path().join("m.pkl"));
    let notice = "no .picklegate.yaml found";
    let hook = pg_in(dir.path(), &["scan", "--hook", "m.pkl"], &[]);
    assert!(!hook.stderr.contains(notice), "{}", hook.stderr);
    let first = pg_in(dir.path(), &["scan", "m.pkl"], &[]);
    assert_has(&first.stderr, notice);
    let second = pg_in(dir.path(), &["scan", "m.pkl"], &[]);
    assert!(!second.stderr.contains(notice), "{}", second.stderr);
}

/// Every command that writes to stdout, with the reader gone before the first byte: no
/// panic (exit 101), no "panicked" on stderr.
#[test]
fn broken_pipes_end_quietly_in_every_command() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = dir.path().join("out.pkl");
    let out = out.to_string_lossy();
    let commands: Vec<Vec<&str>> = vec![
        vec!["scan", "tests/fixtures"],
        vec!["scan", "--format", "json", "tests/fixtures/benign"],
        vec!["scan", "--format", "sarif", "tests/fixtures/benign"],
        vec!["scan", "--format", "concise", "tests/fixtures/attacks"],
        vec!["scan", "--format", "github", "tests/fixtures/attacks"],
        vec!["scan", "--format", "gitlab", "tests/fixtures/attacks"],
        vec![
            "disasm",
            "tests/fixtures/benign/sklearn_random_forest_p4.pkl",
        ],
        vec![
            "disasm",
            "--format",
            "json",
            "tests/fixtures/benign/sklearn_random_forest_p4.pkl",
        ],
        vec!["disasm", TORCH_ZIP],
        vec!["sanitize", "--format", "json", ATTACK, "-o", &out],
        vec!["policy", "schema"],
        vec!["policy", "learn", "tests/fixtures/benign"],
        vec!["policy", "explain", CLEAN],
        vec!["policy", "check"],
        vec!["completions", "bash"],
        vec!["init", "--stdout", "tests/fixtures/benign"],
        vec!["--help"],
    ];
    for args in commands {
        let mut child = Command::new(env!("CARGO_BIN_EXE_picklegate"))
            .args(&args)
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        drop(child.stdout.take()); // the reader is gone (`| head -c 0`)
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let status = child.wait().unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(status.code(), Some(101), "{args:?} panicked: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn every_option_and_argument_has_help() {
    for sub in [
        vec!["scan"],
        vec!["disasm"],
        vec!["sanitize"],
        vec!["init"],
        vec!["completions"],
        vec!["policy", "check"],
        vec!["policy", "explain"],
        vec!["policy", "learn"],
    ] {
        let o = pg(&[sub.as_slice(), &["--help"]].concat());
        assert_eq!(o.code, 0, "{sub:?}");
        // clap puts an option's help after it on the same line, or (when long) on the
        // next, more indented line; an option without help has neither.
        let lines: Vec<&str> = o.stdout.lines().collect();
        let indent = |l: &str| l.len() - l.trim_start().len();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            if !(t.starts_with('-') || t.starts_with('<') || t.starts_with('['))
                || t.starts_with("[default")
                || t.starts_with("[possible")
                || t.starts_with("[aliases")
            {
                continue;
            }
            // A possible value of an enum (`- json: …`) needs its description too.
            if let Some(v) = t.strip_prefix("- ") {
                assert!(v.contains(": "), "{sub:?}: no help for the value `{v}`");
                continue;
            }
            let same_line = t
                .split_once("  ")
                .is_some_and(|(_, h)| !h.trim().is_empty());
            let next_line = lines
                .get(i + 1)
                .is_some_and(|n| !n.trim().is_empty() && indent(n) > indent(line));
            assert!(same_line || next_line, "{sub:?}: no help for `{t}`");
        }
    }
}

#[test]
fn disasm_lists_a_containers_pickles_and_takes_a_member() {
    let list = pg(&["disasm", TORCH_ZIP]);
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(
        list.stdout
            .contains(&format!("{TORCH_ZIP}!archive/data.pkl")),
        "{}",
        list.stdout
    );
    assert!(
        list.stdout
            .contains(&format!("{TORCH_ZIP}!archive/constants.pkl")),
        "{}",
        list.stdout
    );
    let member = pg(&["disasm", &format!("{TORCH_ZIP}!archive/data.pkl")]);
    assert_eq!(member.code, 0, "{}", member.stderr);
    insta::assert_snapshot!(member.stdout);
    // The member's bytes, not the zip's: the listing starts at a PROTO opcode at byte 0.
    assert!(
        member.stdout.trim_start().starts_with("0: \\x80 PROTO"),
        "{}",
        member.stdout
    );
    let missing = pg(&["disasm", &format!("{TORCH_ZIP}!archive/nothing.pkl")]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("archive/data.pkl"),
        "names the members: {}",
        missing.stderr
    );
}

#[test]
fn disasm_of_a_compressed_joblib_file_reads_the_payload() {
    let o = pg(&[
        "disasm",
        "tests/fixtures/containers/joblib_logreg_gzip.joblib",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_has(&o.stdout, "sklearn.linear_model._logistic");
}

#[test]
fn disasm_of_a_file_without_a_pickle_is_exit_2() {
    let o = pg(&["disasm", "LICENSE"]);
    assert_eq!(o.code, 2);
    assert_has(&o.stderr, "LICENSE holds no pickle");
    assert!(o.stdout.is_empty());
}

// --- init and completions ------------------------------------------------------------------------

#[test]
fn init_writes_a_config_under_which_the_repository_is_clean_and_attacks_still_blocked() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    git(d, &["init", "-q"]);
    copy(CLEAN, &d.join("models/linear.pt"));
    copy(
        "tests/fixtures/benign/torch_checkpoint_adam.pkl",
        &d.join("models/ckpt.pt"),
    );
    copy(
        "tests/fixtures/benign/sklearn_random_forest_p4.pkl",
        &d.join("models/rf.pkl"),
    );
    copy(
        "tests/fixtures/containers/joblib_logreg_gzip.joblib",
        &d.join("models/logreg.joblib"),
    );
    copy(PANDAS, &d.join("data/frame.pkl"));
    assert_eq!(
        pg_in(d, &["scan", "-q"], &[]).code,
        1,
        "the default policy blocks the DataFrame"
    );
    let init = pg_in(d, &["init"], &[]);
    assert_eq!(init.code, 0, "{}", init.stderr);
    let yaml =
        std::fs::read_to_string(d.join(".picklegate.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert!(yaml.contains("extends: [default, pandas]"), "{yaml}");
    assert_eq!(pg_in(d, &["policy", "check"], &[]).code, 0);
    let rescan = pg_in(d, &["scan"], &[]);
    assert_eq!(rescan.code, 0, "{}", rescan.stdout);
    copy(ATTACK, &d.join("models/evil.pt"));
    let attacked = pg_in(d, &["scan", "-q"], &[]);
    assert_eq!(attacked.code, 1, "{}", attacked.stdout);
    assert_has(&attacked.stdout, "models/evil.pt");
    // A second init refuses to replace the file; --stdout only prints.
    assert_eq!(pg_in(d, &["init"], &[]).code, 2);
    let printed = pg_in(d, &["init", "--stdout"], &[]);
    assert_eq!(printed.code, 0);
    assert!(
        printed.stdout.contains("# !!!"),
        "the attack is listed, never allowed: {}",
        printed.stdout
    );
    assert!(
        !printed.stdout.contains("builtins.exec\n"),
        "{}",
        printed.stdout
    );
}

#[test]
fn init_learns_what_no_preset_covers() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let d = dir.path();
    git(d, &["init", "-q"]);
    // A pickle of a class no preset knows: learned as an allow entry naming the file.
    let pickle = b"\x80\x04\x95\x1d\x00\x00\x00\x00\x00\x00\x00\x8c\x0bmylib.model\x94\x8c\x05Model\x94\x93\x94)\x81\x94.";
    std::fs::write(d.join("custom.pkl"), pickle).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pg_in(d, &["scan", "-q"], &[]).code, 1);
    let init = pg_in(d, &["init"], &[]);
    assert_eq!(init.code, 0, "{}", init.stderr);
    let yaml =
        std::fs::read_to_string(d.join(".picklegate.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert!(yaml.contains("# ./custom.pkl"), "{yaml}");
    assert!(yaml.contains("mylib.model.Model"), "{yaml}");
    assert_eq!(pg_in(d, &["scan"], &[]).code, 0);
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let o = pg(&["completions", shell]);
        assert_eq!(o.code, 0, "{shell}");
        assert!(
            o.stdout.contains("picklegate") && o.stdout.contains("sanitize"),
            "{shell}"
        );
    }
    assert_eq!(pg(&["completions", "tcsh"]).code, 2);
}

// --- machine output ----------------------------------------------------------------------------

#[test]
fn json_and_sarif_carry_the_run() {
    let j = pg(&["scan", "--format", "json", CLEAN, ATTACK, LFS]);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(v["version"], 1);
    assert_eq!(v["tool"]["name"], "picklegate");
    assert_eq!(v["tool"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["exit_code"], 1);
    assert_eq!(v["summary"]["blocked"], 1);
    assert_eq!(v["summary"]["warnings"], 1);
    assert_eq!(v["summary"]["clean"], 2);
    let s = pg(&["scan", "--format", "sarif", CLEAN, ATTACK]);
    let v: serde_json::Value = serde_json::from_str(&s.stdout).unwrap_or_else(|e| panic!("{e}"));
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        run["tool"]["driver"]["informationUri"],
        "https://github.com/picklegate/picklegate"
    );
    let inv = &run["invocations"][0];
    assert_eq!(inv["exitCode"], 1);
    assert_eq!(inv["executionSuccessful"], true);
    for k in ["startTimeUtc", "endTimeUtc"] {
        let t = inv[k].as_str().unwrap_or_default();
        assert!(
            t.len() == 24 && t.ends_with('Z') && t.as_bytes()[10] == b'T',
            "{k}: {t}"
        );
    }
    assert!(inv["startTimeUtc"].as_str() <= inv["endTimeUtc"].as_str());
}

// --- configuration diagnostics ----------------------------------------------------------------

#[test]
fn policy_check_reports_every_error_of_a_file_in_one_run() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join(".picklegate.yaml"),
        r#"version: 1
default_policy: mine
policies:
  mine:
    extends: [default, nosuchpreset]
    allow:
      - "not a dotted name"
      - os.system
      - torch.*.x*
    build: sometimes
rules:
  - paths: ["models/[*.pkl"]
    policy: ghost
  - paths: ["ok/*"]
levels:
  no-such-rule: warn
  code-execution: allow
exceptions:
  - path: a.pkl
    rules: [code-execution]
    reason: x
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let o = pg_in(dir.path(), &["policy", "check"], &[]);
    assert_eq!(o.code, 2);
    let text = o.stderr.replace(&dir.path().display().to_string(), "[TMP]");
    let errors = text.lines().filter(|l| l.starts_with("error: ")).count();
    assert!(errors >= 10, "{text}");
    for what in [
        "unknown field `default_policy`",        // an unknown key
        "extends unknown policy `nosuchpreset`", // a name
        "is not a `module.qualname` entry",      // an entry's shape
        "is a code-execution sink",              // a sink
        "a `*` may only appear once",            // a pattern
        "unknown variant `sometimes`",           // a type
        "invalid glob `models/[*.pkl`",          // a glob
        "unknown policy `ghost`",                // a rule's policy
        "missing field `policy`",                // a missing key
        "unknown rule id `no-such-rule`",        // a level's rule
        "lowering the critical rule",            // a critical level
        "without pinning the file",              // an exception
    ] {
        assert!(text.contains(what), "missing `{what}`:\n{text}");
    }
    insta::assert_snapshot!(text);
}

#[test]
fn a_tab_error_points_at_its_own_line() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join(".picklegate.yaml"),
        "version: 1\npolicies:\n  p:\n\tallow: [a.b]\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let o = pg_in(dir.path(), &["policy", "check"], &[]);
    assert_eq!(o.code, 2);
    assert_has(&o.stderr, ".picklegate.yaml:4:");
    assert_has(&o.stderr, "tab");
}

// --- on a terminal (a pseudo-terminal from util-linux `script`) --------------------------------

/// Runs `cmd` in bash on a 40×60 pseudo-terminal; the session's output with CRs kept.
fn on_a_terminal(cmd: &str, env: &[(&str, &str)]) -> String {
    let log = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("{e}"));
    let mut c = Command::new("script");
    c.args(["-qec", &format!("stty rows 40 cols 60; {cmd}")])
        .arg(log.path())
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .env_remove("NO_COLOR")
        .env_remove("FORCE_COLOR");
    for (k, v) in env {
        c.env(k, v);
    }
    let status = c
        .status()
        .unwrap_or_else(|e| panic!("util-linux `script` is needed: {e}"));
    assert!(status.code().is_some(), "script did not run");
    std::fs::read_to_string(log.path()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn a_progress_line_on_a_terminal_and_never_elsewhere() {
    let bin = env!("CARGO_BIN_EXE_picklegate");
    let tty = on_a_terminal(
        &format!("{bin} scan --format json tests/fixtures > /dev/null"),
        &[("PICKLEGATE_PROGRESS_AFTER_MS", "0")],
    );
    assert!(tty.contains("picklegate: ["), "{tty:?}");
    assert!(tty.contains(" files"), "{tty:?}");
    // The line is erased when the scan ends.
    assert!(tty.contains("\r\x1b[2K"), "{tty:?}");
    let quiet = on_a_terminal(
        &format!("{bin} scan -q --format json tests/fixtures > /dev/null"),
        &[("PICKLEGATE_PROGRESS_AFTER_MS", "0")],
    );
    assert!(
        !quiet.contains("picklegate: ["),
        "-q: no progress: {quiet:?}"
    );
    let piped = pg_in(
        &root(),
        &["scan", "tests/fixtures"],
        &[("PICKLEGATE_PROGRESS_AFTER_MS", "0")],
    );
    assert!(
        !piped.stderr.contains("picklegate: ["),
        "not a terminal: {}",
        piped.stderr
    );
}

#[test]
fn long_lines_wrap_to_the_terminal_width() {
    let bin = env!("CARGO_BIN_EXE_picklegate");
    let tty = on_a_terminal(&format!("{bin} --color never scan {PANDAS}"), &[]).replace('\r', "");
    let help: Vec<&str> = tty
        .lines()
        .skip_while(|l| !l.starts_with("help: "))
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(help.len() > 1, "{tty}");
    assert!(help.iter().all(|l| l.chars().count() <= 60), "{help:?}");
    assert!(
        help[1..].iter().all(|l| l.starts_with("      ")),
        "{help:?}"
    );
    // Not a terminal: one line.
    let piped = pg(&["scan", PANDAS]);
    assert!(piped
        .stdout
        .lines()
        .any(|l| l.starts_with("help: ") && l.contains("--preset pandas")));
}

#[test]
fn scan_fix_does_not_announce_a_blocked_commit() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    git(dir.path(), &["init", "-q"]);
    copy(ATTACK, &dir.path().join("m.pkl"));
    let o = pg_in(dir.path(), &["scan", "--fix", "m.pkl"], &[]);
    assert_eq!(o.code, 0, "{}{}", o.stdout, o.stderr);
    assert!(
        o.stdout
            .contains("m.pkl: blocked, to be sanitized by --fix"),
        "{}",
        o.stdout
    );
    assert!(!o.stdout.contains("exit 1: blocked"), "{}", o.stdout);
    assert_has(&o.stdout, "--fix sanitizes the blocked files next");
    assert!(
        o.stderr
            .contains("--fix: 1 file(s) sanitized, 0 still with findings"),
        "{}",
        o.stderr
    );
}
