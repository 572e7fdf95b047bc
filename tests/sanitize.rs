//! `picklegate sanitize` through the built binary: policy-declared substitutes (and their
//! validation), the layouts the rewriters must reproduce (joblib's position-dependent array
//! alignment, legacy torch's magic and storage records, the compressor of a wrapper), and
//! what is never written. Loading the outputs with the victims' loaders is
//! tests/oracle/test_sanitize.py.

use picklegate::pickle::vm::{self, Budgets};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(kind: &str, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind)
        .join(name)
}

fn run_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_picklegate"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run picklegate: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A temp directory that is a repository root (so no outer `.picklegate.yaml` applies).
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir(dir.path().join(".git")).unwrap_or_else(|e| panic!("{e}"));
    dir
}

fn sanitize(dir: &Path, src: &Path, extra: &[&str]) -> (i32, Value, PathBuf) {
    let out = dir.join("out.bin");
    let _ = std::fs::remove_file(&out);
    let mut args = vec![
        "sanitize",
        src.to_str().unwrap_or_default(),
        "-o",
        out.to_str().unwrap_or_default(),
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let (code, stdout, stderr) = run_in(dir, &args);
    let v: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"));
    (code, v, out)
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

const OWN_POLICY: &str = "version: 1
policies:
  weights:
    extends: [python-data]
    allow:
      - collections.OrderedDict
      - torch._utils._rebuild_tensor_v2
      - torch.FloatStorage
    containers: [collections.OrderedDict]
    build: instances
    persistent_ids: torch-storage
";

#[test]
fn a_bad_dict_is_only_replaced_when_the_policy_declares_the_substitute() {
    let dir = repo();
    std::fs::write(
        dir.path().join(".picklegate.yaml"),
        format!("{OWN_POLICY}default: weights\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let src = fixture("attacks", "a04_bad_dict.pkl");
    let (code, v, out) = sanitize(dir.path(), &src, &[]);
    assert_eq!(code, 1, "{v}");
    let reason = v["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("the policy declares no substitutes"),
        "{reason}"
    );
    assert!(!out.exists());

    let with_sub = format!(
        "{OWN_POLICY}    substitutes:\n      - {{used-as: mapping, with: collections.OrderedDict}}\ndefault: weights\n"
    );
    std::fs::write(dir.path().join(".picklegate.yaml"), with_sub).unwrap_or_else(|e| panic!("{e}"));
    let (code, v, out) = sanitize(dir.path(), &src, &[]);
    assert_eq!(code, 0, "{v}");
    let changes = v["changes"].as_array().cloned().unwrap_or_default();
    assert!(
        changes.iter().any(|c| c["action"] == "substituted"
            && c["what"]
                .as_str()
                .unwrap_or_default()
                .contains("collections.OrderedDict()")),
        "{v}"
    );
    assert_eq!(
        run_in(dir.path(), &["scan", out.to_str().unwrap_or_default()]).0,
        0
    );
}

#[test]
fn a_computed_callable_is_replaced_only_for_its_declared_argument_shape() {
    let dir = repo();
    let src = fixture("attacks", "a05_interwoven_rebuild_tensor.pkl");
    // The torch preset declares the substitute with _rebuild_tensor_v2's argument shape.
    let (code, v, _) = sanitize(dir.path(), &src, &[]);
    assert_eq!(code, 0, "{v}");
    // A shape that does not match (a str first) does not substitute.
    let wrong = format!(
        "{OWN_POLICY}    substitutes:\n      - {{used-as: callable, with: torch._utils._rebuild_tensor_v2, args: [str, int, tuple, tuple, bool, any, \"any?\"]}}\ndefault: weights\n"
    );
    std::fs::write(dir.path().join(".picklegate.yaml"), wrong).unwrap_or_else(|e| panic!("{e}"));
    let (code, v, out) = sanitize(dir.path(), &src, &[]);
    assert_eq!(code, 1, "{v}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("none of the policy's substitutes applies"),
        "{v}"
    );
    assert!(!out.exists());
}

#[test]
fn substitutes_are_validated_where_they_are_written() {
    let dir = repo();
    for (entry, expected) in [
        (
            "{used-as: callable, with: torch._utils._rebuild_tensor_v2}",
            "needs `args`",
        ),
        (
            "{used-as: mapping, with: collections.OrderedDict, args: [int]}",
            "`args` does not apply",
        ),
        (
            "{used-as: callable, with: torch._utils._rebuild_tensor_v2, args: [tensor]}",
            "unknown argument kind `tensor`",
        ),
        (
            "{used-as: callable, with: x.y, args: [\"int?\", int]}",
            "only trailing arguments can be optional",
        ),
        (
            "{used-as: mapping, with: builtins.eval}",
            "is a code-execution sink",
        ),
        (
            "{used-as: mapping, with: OrderedDict}",
            "not an exact `module.qualname`",
        ),
    ] {
        let yaml = format!("{OWN_POLICY}    substitutes:\n      - {entry}\n");
        std::fs::write(dir.path().join(".picklegate.yaml"), yaml).unwrap_or_else(|e| panic!("{e}"));
        let (code, out, err) = run_in(dir.path(), &["policy", "check"]);
        assert_eq!(code, 2, "{entry}: {out}{err}");
        assert!(
            format!("{out}{err}").contains(expected),
            "{entry}: expected `{expected}` in {out}{err}"
        );
        assert!(
            format!("{out}{err}").contains(".picklegate.yaml:13:"),
            "{entry}: the error points at the entry: {out}{err}"
        );
    }
}

#[test]
fn joblib_arrays_are_realigned_to_their_new_positions() {
    let dir = repo();
    let src = fixture("containers", "mal_joblib_arrays_seq.joblib");
    let (code, v, out) = sanitize(dir.path(), &src, &[]);
    assert_eq!(code, 0, "{v}");
    let before = vm::analyze(&read(&src), 0, Budgets::default());
    let data = read(&out);
    let after = vm::analyze(&data, 0, Budgets::default());
    assert_eq!(before.arrays.len(), after.arrays.len());
    assert!(!after.arrays.is_empty());
    for a in after.arrays.iter().filter(|a| !a.object) {
        // joblib writes (and reads) a padding byte, then pads to 16 from the file start
        assert_eq!(a.align, Some(16));
        assert_eq!(a.data_start % 16, 0, "array at {} is not aligned", a.offset);
    }
    // The attack moved every array; the copies hold the same bytes.
    let src_data = read(&src);
    for (a, b) in before.arrays.iter().zip(&after.arrays) {
        let end = |r: &picklegate::pickle::graph::ArrayRegion| (r.offset + r.len) as usize;
        assert_eq!(
            &src_data[a.data_start as usize..end(a)],
            &data[b.data_start as usize..end(b)]
        );
    }
}

#[test]
fn wrappers_keep_their_codec_and_legacy_files_their_magic() {
    let dir = repo();
    for (name, magic) in [
        ("mal_pickle.pkl.gz", &b"\x1f\x8b"[..]),
        ("mal_pickle.pkl.bz2", b"BZh"),
        ("mal_pickle.pkl.xz", b"\xfd7zXZ\x00"),
        ("mal_pickle.pkl.zst", b"\x28\xb5\x2f\xfd"),
        ("mal_joblib_logreg_seq_lz4.joblib", b"\x04\x22\x4d\x18"),
        ("mal_joblib_logreg_seq_zlib.joblib", b"\x78"),
        (
            "mal_torch_legacy_computed_magic.pt",
            b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19",
        ),
    ] {
        let (code, v, out) = sanitize(dir.path(), &fixture("containers", name), &[]);
        assert_eq!(code, 0, "{name}: {v}");
        assert!(read(&out).starts_with(magic), "{name}");
        let (scan, stdout, _) = run_in(dir.path(), &["scan", out.to_str().unwrap_or_default()]);
        assert_eq!(scan, 0, "{name}: {stdout}");
    }
    let (_, v, _) = sanitize(
        dir.path(),
        &fixture("containers", "mal_torch_legacy_computed_magic.pt"),
        &[],
    );
    assert!(v["changes"][0]["what"]
        .as_str()
        .unwrap_or_default()
        .contains("magic number"));
}

#[test]
fn clean_files_are_only_rewritten_when_asked() {
    let dir = repo();
    let src = fixture("containers", "joblib_arrays_gzip.joblib");
    let (code, v, out) = sanitize(dir.path(), &src, &[]);
    assert_eq!((code, v["status"].as_str()), (0, Some("clean")));
    assert!(!out.exists());
    let (code, v, out) = sanitize(dir.path(), &src, &["--rebuild"]);
    assert_eq!((code, v["status"].as_str()), (0, Some("sanitized")), "{v}");
    assert!(out.exists());
    // Nothing to rewrite in a file without a pickle: it stays clean.
    let (code, v, out) = sanitize(
        dir.path(),
        &fixture("containers", "model.safetensors"),
        &["--rebuild"],
    );
    assert_eq!((code, v["status"].as_str()), (0, Some("clean")), "{v}");
    assert!(!out.exists());
}

#[test]
fn refusals_name_the_reason_and_write_nothing() {
    let dir = repo();
    for (name, why) in [
        ("mal_gzip_bomb.gz", "decompresses past the budget"),
        ("mal_pickle.7z", "7z files is not supported"),
        ("mal_zip_bomb.zip", "past the budget"),
        ("mal_nested_gzip_60.gz", "nested deeper than"),
        ("mal_joblib_after_array.joblib", "stores it into"),
        ("mal_torch_zip_constants_pkl.pt", "torchscript"),
    ] {
        let (code, v, out) = sanitize(dir.path(), &fixture("containers", name), &[]);
        assert_eq!(code, 1, "{name}: {v}");
        assert!(
            v["reason"].as_str().unwrap_or_default().contains(why),
            "{name}: {v}"
        );
        assert!(!out.exists(), "{name}");
    }
}

#[test]
fn archives_are_streamed_next_to_the_target_and_never_left_behind() {
    let dir = repo();
    let leftovers = |d: &Path| -> Vec<String> {
        std::fs::read_dir(d)
            .map(|it| {
                it.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains("picklegate"))
                    .collect()
            })
            .unwrap_or_default()
    };
    // Refused after the archive was written and re-scanned: the temp file goes away.
    let (code, v, out) = sanitize(
        dir.path(),
        &fixture("containers", "mal_torch_zip_storage_missing.pt"),
        &[],
    );
    assert_eq!(code, 1, "{v}");
    assert!(!out.exists());
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
    // Sanitized: renamed into place.
    let (code, v, out) = sanitize(
        dir.path(),
        &fixture("containers", "mal_torch_zip_hidden_member.pt"),
        &[],
    );
    assert_eq!(code, 0, "{v}");
    assert!(out.exists());
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
    assert_eq!(
        run_in(dir.path(), &["scan", out.to_str().unwrap_or_default()]).0,
        0
    );
}
