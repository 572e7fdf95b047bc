//! Budgets through the built binary: each one configurable under `budgets:`, each one
//! reached ends in a `budget-exceeded` finding (exit 1), the clock included; large git
//! blobs are spooled, temp files are recognisable and swept, `-o IN` keeps a backup.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_picklegate");

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("TMPDIR", dir)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn findings(v: &Value) -> Vec<(String, String)> {
    v["files"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|f| f["findings"].as_array().cloned().unwrap_or_default())
        .map(|f| {
            (
                f["rule"].as_str().unwrap_or_default().to_string(),
                f["message"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"))
}

fn write(dir: &Path, name: &str, data: &[u8]) {
    std::fs::write(dir.join(name), data).unwrap_or_else(|e| panic!("{e}"));
}

/// A benign protocol-2 pickle of a list of `n` small ints: about 2n opcodes and n values.
fn int_list(n: usize) -> Vec<u8> {
    let mut p = b"\x80\x02](".to_vec();
    for i in 0..n {
        p.push(b'K');
        p.push((i % 256) as u8);
    }
    p.extend_from_slice(b"e.");
    p
}

fn scan_with(dir: &Path, budgets: &str, file: &str) -> (i32, Vec<(String, String)>) {
    write(
        dir,
        ".picklegate.yaml",
        format!("version: 1\nbudgets:\n{budgets}").as_bytes(),
    );
    let out = run(dir, &["scan", "--format", "json", file]);
    (out.status.code().unwrap_or(-1), findings(&json(&out)))
}

#[test]
fn each_budget_is_configurable_and_reaching_it_is_a_finding() {
    let d = tmp();
    write(d.path(), "ints.pkl", &int_list(50_000));
    // Within the defaults the file is clean.
    let out = run(d.path(), &["scan", "--format", "json", "ints.pkl"]);
    assert_eq!(out.status.code(), Some(0), "{:?}", findings(&json(&out)));
    for (budgets, says) in [
        ("  opcodes: 1000\n", "more than 1000 opcodes"),
        ("  values: 1000\n", "more than 1000 values"),
        ("  memory: 64KiB\n", "MiB of memory"),
    ] {
        let (code, f) = scan_with(d.path(), budgets, "ints.pkl");
        assert_eq!(code, 1, "{budgets}: {f:?}");
        assert!(
            f.iter()
                .any(|(r, m)| r == "budget-exceeded" && m.contains(says)),
            "{budgets}: {f:?}"
        );
    }
}

#[test]
fn the_findings_cap_keeps_one_of_every_rule_and_counts_the_rest() {
    let d = tmp();
    // 300 refused imports and calls, then trailing bytes (another rule).
    let mut p = b"\x80\x02(".to_vec();
    for _ in 0..300 {
        p.extend_from_slice(b"cos\nsystem\n(S'x'\ntR");
    }
    p.extend_from_slice(b"l.garbage");
    write(d.path(), "many.pkl", &p);
    let (code, f) = scan_with(d.path(), "  findings: 20\n", "many.pkl");
    assert_eq!(code, 1);
    assert!(f.len() <= 20 + 8, "{} findings kept", f.len());
    let summary = f
        .iter()
        .find(|(r, m)| r == "budget-exceeded" && m.contains("not kept"))
        .unwrap_or_else(|| panic!("no summary in {f:?}"));
    assert!(summary.1.contains("code-execution ×"), "{}", summary.1);
    for rule in ["code-execution", "trailing-data"] {
        assert!(f.iter().any(|(r, _)| r == rule), "{rule} lost: {f:?}");
    }
}

#[test]
fn the_clock_is_a_finding_and_can_be_switched_off() {
    let d = tmp();
    // About 6 M cheap opcodes (MARK / POP_MARK): well above a millisecond.
    let mut p = b"\x80\x02".to_vec();
    for _ in 0..3_000_000 {
        p.extend_from_slice(b"(1");
    }
    p.extend_from_slice(b"N.");
    write(d.path(), "slow.pkl", &p);
    let out = run(
        d.path(),
        &["scan", "--format", "json", "--timeout", "0.001", "slow.pkl"],
    );
    let f = findings(&json(&out));
    assert_eq!(out.status.code(), Some(1), "{f:?}");
    assert!(
        f.iter()
            .any(|(r, m)| r == "budget-exceeded" && m.contains("time limit")),
        "{f:?}"
    );
    let out = run(
        d.path(),
        &["scan", "--format", "json", "--timeout", "0", "slow.pkl"],
    );
    assert_eq!(out.status.code(), Some(0), "{:?}", findings(&json(&out)));
    // The configuration's clock applies when the command line says nothing.
    let (code, f) = scan_with(d.path(), "  timeout: 0.001\n", "slow.pkl");
    assert_eq!(code, 1, "{f:?}");
}

#[test]
fn a_bad_budget_is_a_configuration_error_naming_the_file() {
    let d = tmp();
    write(d.path(), "ints.pkl", &int_list(10));
    for bad in ["  memory: 1GB\n", "  opcodes: -1\n", "  colour: 3\n"] {
        write(
            d.path(),
            ".picklegate.yaml",
            format!("version: 1\nbudgets:\n{bad}").as_bytes(),
        );
        let out = run(d.path(), &["policy", "check"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {err}");
        assert!(err.contains(".picklegate.yaml"), "{bad}: {err}");
    }
}

#[test]
fn large_staged_blobs_are_spooled_and_leave_no_temp_file() {
    let d = tmp();
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args(args)
            .current_dir(d.path())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    // 80 MiB of bytes payload, then the attack: above the 64 MiB spooling threshold.
    let n: u64 = 80 << 20;
    let mut p = b"\x80\x04\x8e".to_vec();
    p.extend_from_slice(&n.to_le_bytes());
    p.resize(p.len() + n as usize, 0);
    p.extend_from_slice(b"0cos\nsystem\n(S'echo'\ntR.");
    write(d.path(), "big.pkl", &p);
    drop(p);
    git(&["add", "big.pkl"]);
    std::fs::remove_file(d.path().join("big.pkl")).unwrap_or_else(|e| panic!("{e}"));
    let out = run(d.path(), &["scan", "--staged", "--format", "json"]);
    let v = json(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert!(findings(&v).iter().any(|(r, _)| r == "code-execution"));
    assert_eq!(v["files"][0]["path"], "big.pkl");
    let left: Vec<_> = std::fs::read_dir(d.path())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".picklegate-tmp-")
        })
        .collect();
    assert!(left.is_empty(), "temp files left: {left:?}");
}

#[test]
fn output_equal_to_input_keeps_a_backup_and_stale_temps_are_swept() {
    let d = tmp();
    let evil = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/attacks/a01_sequential_exec_head.pkl"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    write(d.path(), "model.pkl", &evil);
    // What a `kill -9` leaves: a temp of a process that is gone (pid above pid_max), an hour old.
    let stale = d
        .path()
        .join(".picklegate-tmp-4194304-0000abcd-3-model.pkl");
    let f = std::fs::File::create(&stale).unwrap_or_else(|e| panic!("{e}"));
    f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(3600))
        .unwrap_or_else(|e| panic!("{e}"));
    drop(f);
    let out = run(d.path(), &["sanitize", "model.pkl", "-o", "./model.pkl"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let backup = std::fs::read(d.path().join("model.pkl.orig")).unwrap_or_default();
    assert_eq!(
        backup, evil,
        "-o naming the input keeps the original as .orig"
    );
    assert_ne!(
        std::fs::read(d.path().join("model.pkl")).unwrap_or_default(),
        evil
    );
    assert!(!stale.exists(), "a dead run's temp file is swept");
}

#[test]
fn sanitize_decides_under_the_configured_budgets() {
    let d = tmp();
    let mut p = int_list(5_000);
    p.pop(); // the STOP: an attack follows the list, then STOP.
    p.extend_from_slice(b"0cos\nsystem\n(S'x'\ntR.");
    write(d.path(), "m.pkl", &p);
    write(
        d.path(),
        ".picklegate.yaml",
        b"version: 1\nbudgets:\n  opcodes: 100\n",
    );
    let out = run(
        d.path(),
        &["sanitize", "m.pkl", "-o", "out.pkl", "--format", "json"],
    );
    let v = json(&out);
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("more than 100 opcodes"),
        "{v}"
    );
    assert!(!d.path().join("out.pkl").exists());
}
