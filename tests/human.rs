//! Snapshots of the human report (colours off) for representative findings.

use std::process::Command;

fn human(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_picklegate"))
        .arg("scan")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("NO_COLOR", "1")
        .env_remove("FORCE_COLOR")
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sequential_exec_in_a_state_dict() {
    insta::assert_snapshot!(human(&[
        "tests/fixtures/attacks/a01_sequential_exec_head.pkl"
    ]));
}

#[test]
fn bad_dict_with_related_call_sites() {
    insta::assert_snapshot!(human(&["tests/fixtures/attacks/a04_bad_dict.pkl"]));
}

#[test]
fn tampered_torch_zip_member() {
    insta::assert_snapshot!(human(&[
        "tests/fixtures/containers/mal_torch_zip_crc_zeroed.pt"
    ]));
}

#[test]
fn unresolved_stack_global() {
    insta::assert_snapshot!(human(&[
        "tests/fixtures/attacks/b04_module_attribute_override.pkl"
    ]));
}

#[test]
fn clean_file_summary() {
    insta::assert_snapshot!(human(&["tests/fixtures/benign/torch_linear.pkl"]));
}

#[test]
fn colour_follows_no_color_and_force_color() {
    let run = |env: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_picklegate"));
        c.args([
            "scan",
            "tests/fixtures/attacks/a01_sequential_exec_head.pkl",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("NO_COLOR")
        .env_remove("FORCE_COLOR");
        for (k, v) in env {
            c.env(k, v);
        }
        String::from_utf8_lossy(&c.output().unwrap_or_else(|e| panic!("{e}")).stdout).into_owned()
    };
    assert!(!run(&[]).contains('\x1b'), "not a terminal: no colour");
    assert!(run(&[("FORCE_COLOR", "1")]).contains('\x1b'));
    // An explicit FORCE_COLOR wins over an inherited NO_COLOR (CI logs render ANSI).
    assert!(run(&[("FORCE_COLOR", "1"), ("NO_COLOR", "1")]).contains('\x1b'));
    assert!(!run(&[("FORCE_COLOR", "0")]).contains('\x1b'));
}
