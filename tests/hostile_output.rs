//! Output under attack: names and strings from the input never reach a terminal raw, and a
//! closed stdout (`| head -c 10`) ends a command quietly instead of panicking.

use std::path::Path;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_picklegate");

fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("FORCE_COLOR")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn assert_no_raw_controls(what: &str, text: &str) {
    for c in text.chars() {
        let bad = (c.is_control() && c != '\n')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        assert!(!bad, "{what}: raw {c:?} in\n{text}");
    }
}

const EVIL_NAME: &str = "evil\x1b]0;pwned\x07\u{202e}lkp.pkl";

#[test]
fn file_names_and_globals_are_escaped_in_terminal_output() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join(EVIL_NAME),
        fixture("attacks/a01_sequential_exec_head.pkl"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for format in ["human", "github"] {
        let out = run(dir.path(), &["scan", "--format", format, "."]);
        assert_eq!(out.status.code(), Some(1), "{format}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_no_raw_controls(format, &stdout);
        assert_no_raw_controls(format, &stderr);
        assert!(
            stdout.contains("evil\\x1b]0;pwned\\x07\\u{202e}lkp.pkl"),
            "{format}:\n{stdout}"
        );
    }
    // JSON keeps the exact name (serde escapes it).
    let out = run(dir.path(), &["scan", "--format", "json", "."]);
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert!(v
        .to_string()
        .contains("\\u001b]0;pwned\\u0007\u{202e}lkp.pkl"));

    // The `picklegate:` lines of sanitize.
    let out = run(
        dir.path(),
        &["sanitize", "--in-place", "--no-backup", EVIL_NAME],
    );
    assert_ne!(out.status.code(), Some(101));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_raw_controls("sanitize", &text);
    assert!(text.contains("evil\\x1b]0;pwned"), "{text}");
    // A global whose name carries terminal escapes: the annotation quotes it escaped.
    std::fs::write(
        dir.path().join("global.pkl"),
        b"\x80\x02cev\x1b[2Jil\nf\x07n\n0N.",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = run(dir.path(), &["disasm", "global.pkl"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_no_raw_controls("disasm", &stdout);
    assert!(stdout.contains("; import ev\\x1b[2Jil.f\\x07n"), "{stdout}");
}

/// Runs `args` with stdout closed before the command writes anything.
fn with_closed_stdout(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_closed_stdout_ends_commands_quietly() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let mut many = vec![0x80, 2];
    for _ in 0..2_000 {
        many.extend_from_slice(b"cos\nsystem\n0");
    }
    many.extend_from_slice(b"N.");
    std::fs::write(dir.path().join("many.pkl"), &many).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("a.pkl"),
        fixture("attacks/a01_sequential_exec_head.pkl"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let cases: [(&[&str], i32); 5] = [
        (&["scan", "--format", "json", "many.pkl"], 1),
        (&["scan", "many.pkl"], 1),
        (
            &["sanitize", "--format", "json", "-o", "out.pkl", "a.pkl"],
            0,
        ),
        (&["sanitize", "-o", "out2.pkl", "a.pkl"], 0),
        (&["disasm", "many.pkl"], 0),
    ];
    for (args, code) in cases {
        let (status, stderr) = with_closed_stdout(dir.path(), args);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(status, Some(code), "{args:?}: {stderr}");
    }
}
