//! End-to-end tests of the engine through the built binary and the library, over the
//! committed fixtures (made by tests/fixtures/generate.py from the real libraries).

use picklegate::finding::Rule;
use picklegate::policy;
use picklegate::scan::{self, ScanOptions};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures(kind: &str) -> PathBuf {
    root().join("tests/fixtures").join(kind)
}

fn manifest(kind: &str) -> Vec<Value> {
    let path = fixtures(kind).join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(v)) => v,
        other => panic!("{}: not a JSON array: {other:?}", path.display()),
    }
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_picklegate"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run picklegate: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn scan_json(path: &Path) -> (i32, Value) {
    let p = path.to_string_lossy();
    let (code, stdout, stderr) = run(&["scan", "--format", "json", &p]);
    let v = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{p}: bad JSON ({e}): {stdout}\n{stderr}"));
    (code, v)
}

fn rules_of(report: &Value) -> BTreeSet<String> {
    report["files"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|f| f["findings"].as_array().cloned().unwrap_or_default())
        .filter_map(|f| f["rule"].as_str().map(String::from))
        .collect()
}

#[test]
fn benign_fixtures_pass_the_default_policy() {
    let entries = manifest("benign");
    assert!(entries.len() >= 20, "too few benign fixtures");
    let mut checked = 0;
    for e in entries {
        if e["default_policy"].as_bool() != Some(true) {
            continue;
        }
        let file = fixtures("benign").join(e["file"].as_str().unwrap_or_default());
        let (code, report) = scan_json(&file);
        assert_eq!(code, 0, "{}: {report:#}", file.display());
        assert_eq!(report["files"][0]["format"], "pickle", "{}", file.display());
        assert_eq!(report["files"][0]["status"], "clean");
        assert_eq!(rules_of(&report), BTreeSet::new(), "{}", file.display());
        checked += 1;
    }
    assert!(checked >= 20);
}

#[test]
fn every_attack_fixture_is_flagged_with_its_rules() {
    let entries = manifest("attacks");
    assert!(entries.len() >= 30, "too few attack fixtures");
    let mut failures = Vec::new();
    for e in &entries {
        let name = e["file"].as_str().unwrap_or_default();
        let (code, report) = scan_json(&fixtures("attacks").join(name));
        let got = rules_of(&report);
        let want: BTreeSet<String> = e["rules"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r.as_str().map(String::from))
            .collect();
        for r in &want {
            assert!(
                Rule::from_id(r).is_some(),
                "{name}: manifest names unknown rule {r}"
            );
        }
        if code != 1 || !want.is_subset(&got) {
            failures.push(format!("{name}: exit {code}, want {want:?}, got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} attack(s) missed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn all_fixture_files() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for kind in ["benign", "attacks"] {
        for e in manifest(kind) {
            v.push(fixtures(kind).join(e["file"].as_str().unwrap_or_default()));
        }
    }
    v
}

fn default_policy() -> &'static policy::Policy {
    static P: std::sync::OnceLock<policy::Policy> = std::sync::OnceLock::new();
    P.get_or_init(|| policy::builtin_default().unwrap_or_else(|e| panic!("{e}")))
}

fn fails(data: &[u8]) -> bool {
    let policy = default_policy();
    if !picklegate::pickle::vm::looks_like_pickle(data) {
        return false;
    }
    let (findings, _) = scan::scan_pickle_bytes(data, policy, &ScanOptions::default());
    findings.iter().any(|f| f.severity.fails())
}

/// Where the opcode of the first import or call ends (`usize::MAX`: none).
fn first_effect_end(data: &[u8]) -> usize {
    let g = picklegate::pickle::vm::analyze_plain(data, 0, Default::default());
    let first = g
        .globals
        .iter()
        .map(|gl| gl.offset)
        .chain(g.calls.iter().map(|c| c.offset))
        .min();
    let Some(first) = first else {
        return usize::MAX;
    };
    let mut dec = picklegate::pickle::decode::Decoder::new(data, 0);
    while let Ok(Some(op)) = dec.next_op() {
        if op.offset == first {
            return op.end as usize;
        }
    }
    usize::MAX
}

#[test]
fn truncated_fixtures_never_pass() {
    for file in all_fixture_files() {
        let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let n = data.len();
        let cuts: Vec<usize> = if n <= 600 {
            (2..n).collect()
        } else {
            let step = (n / 300).max(1);
            (2..n)
                .step_by(step)
                .chain(n.saturating_sub(40)..n)
                .collect()
        };
        // A cut right after a STOP leaves complete pickles: that prefix is a real file.
        let g = picklegate::pickle::vm::analyze(&data, 0, Default::default());
        let stream_ends: Vec<usize> = g
            .streams
            .iter()
            .filter(|s| s.stopped)
            .map(|s| s.end as usize)
            .collect();
        for cut in cuts {
            if stream_ends.contains(&cut) {
                continue;
            }
            // A fragment that ends before the first import or call has completed executes
            // nothing in any unpickler: it is not pickle-bearing (vm::pickle_bearing).
            if cut < first_effect_end(&data) {
                continue;
            }
            assert!(
                fails(&data[..cut]),
                "{} truncated to {cut} bytes passed",
                file.display()
            );
        }
    }
}

#[test]
fn corrupted_opcodes_never_pass() {
    for file in all_fixture_files() {
        let data = std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let mut dec = picklegate::pickle::decode::Decoder::new(&data, 0);
        let mut offsets = Vec::new();
        while let Ok(Some(op)) = dec.next_op() {
            offsets.push(op.offset as usize);
            if op.code == picklegate::pickle::op::Opcode::Stop {
                break;
            }
        }
        // Corruption before the first effect leaves bytes no unpickler gets anywhere with
        // (vm::pickle_bearing): nothing runs, so nothing is reported. From the first import
        // or call on, the corrupted file is pickle-bearing and must fail.
        let g = picklegate::pickle::vm::analyze_plain(&data, 0, Default::default());
        let first_effect = g
            .globals
            .iter()
            .map(|gl| gl.offset)
            .chain(g.calls.iter().map(|c| c.offset))
            .min()
            .unwrap_or(u64::MAX) as usize;
        for &off in offsets.iter().filter(|&&o| o > first_effect).take(200) {
            let mut bad = data.clone();
            bad[off] = 0xff;
            assert!(
                fails(&bad),
                "{}: invalid opcode at {off} passed",
                file.display()
            );
        }
    }
}

#[test]
fn exit_codes_follow_the_contract() {
    let (code, _, stderr) = run(&["scan", "/nonexistent/picklegate-test"]);
    assert_eq!(code, 2);
    let (code, stdout, _) = run(&["scan", "--format", "json", "/nonexistent/picklegate-test"]);
    assert_eq!(code, 2);
    assert!(
        stdout.contains("\"status\": \"error\""),
        "{stdout} {stderr}"
    );
    let (code, _, stderr) = run(&["scan", "--preset", "nope", "."]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown preset `nope`"), "{stderr}");
    let (code, _, _) = run(&["scan", "--bogus-flag"]);
    assert_eq!(code, 2);
}

#[test]
fn content_decides_not_the_name() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let png = dir.path().join("cat.png");
    std::fs::write(&png, b"cos\nsystem\n(S'id'\ntR.").unwrap_or_else(|e| panic!("{e}"));
    let txt = dir.path().join("notes.txt");
    std::fs::write(&txt, b"hello, this is text\n").unwrap_or_else(|e| panic!("{e}"));
    let (code, report) = scan_json(dir.path());
    assert_eq!(code, 1);
    let files = report["files"].as_array().cloned().unwrap_or_default();
    assert_eq!(files.len(), 2);
    let png_report = files
        .iter()
        .find(|f| f["path"].as_str().is_some_and(|p| p.ends_with("cat.png")));
    assert_eq!(
        png_report.map(|f| f["format"].clone()),
        Some(Value::from("pickle"))
    );
    let txt_report = files
        .iter()
        .find(|f| f["path"].as_str().is_some_and(|p| p.ends_with("notes.txt")));
    assert_eq!(
        txt_report.map(|f| f["format"].clone()),
        Some(Value::from("unknown"))
    );
    assert_eq!(report["summary"]["files"], 2);
    assert_eq!(report["summary"]["clean"], 1);
    assert_eq!(report["version"], 1);
}

#[test]
fn json_findings_carry_the_contract_fields() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let f = dir.path().join("evil.pkl");
    std::fs::write(
        &f,
        b"\x80\x02c__builtin__\neval\nq\x00X\x01\x00\x00\x001\x85R.",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (code, report) = scan_json(&f);
    assert_eq!(code, 1);
    let finding = &report["files"][0]["findings"][0];
    assert_eq!(finding["rule"], "code-execution");
    assert_eq!(finding["severity"], "critical");
    assert_eq!(finding["member"], Value::Null);
    assert_eq!(finding["offset"], 2);
    assert_eq!(finding["global"], "builtins.eval");
    assert!(finding["message"]
        .as_str()
        .is_some_and(|m| m.contains("fix_imports")));
    assert_eq!(finding["related"][0]["offset"], 29);
    assert!(finding["policy"]
        .as_str()
        .is_some_and(|p| p.starts_with("default (policies/default.yaml:")));
}

#[test]
fn presets_select_policies_without_config() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let f = dir.path().join("od.pkl");
    // collections.OrderedDict() at protocol 2: allowed by python-data, and so by every preset.
    std::fs::write(&f, b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01.")
        .unwrap_or_else(|e| panic!("{e}"));
    let p = f.to_string_lossy();
    assert_eq!(run(&["scan", "--preset", "python-data", &p]).0, 0);
    let torch = dir.path().join("t.pkl");
    std::fs::write(&torch, b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n.")
        .unwrap_or_else(|e| panic!("{e}"));
    let t = torch.to_string_lossy();
    assert_eq!(run(&["scan", "--preset", "python-data", &t]).0, 1);
    assert_eq!(run(&["scan", "--preset", "torch", &t]).0, 0);
}

#[test]
fn disasm_prints_the_pickletools_listing_and_annotations() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let f = dir.path().join("p0.pkl");
    std::fs::write(&f, b"(S'ls'\nios\nsystem\n.").unwrap_or_else(|e| panic!("{e}"));
    let p = f.to_string_lossy();
    let (code, out, _) = run(&["disasm", "--plain", &p]);
    assert_eq!(code, 0);
    let want = "    0: (    MARK\n    1: S        STRING     'ls'\n    7: i        INST       'os system' (MARK at 0)\n   18: .    STOP\nhighest protocol among opcodes = 0\n";
    assert_eq!(out, want);
    let (_, out, _) = run(&["disasm", &p]);
    assert!(
        out.contains("; import posix.system") || out.contains("; import os.system"),
        "{out}"
    );
    assert!(out.contains("; call os.system"), "{out}");
}

/// A large pickle that is mostly bytes payloads, with `tail` after the last one.
fn payload_heavy(tail: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 4, b']', b'('];
    for i in 0..40u8 {
        p.push(b'B');
        p.extend_from_slice(&(1u32 << 20).to_le_bytes());
        p.extend(std::iter::repeat_n(i, 1 << 20));
    }
    p.extend_from_slice(tail);
    p.extend_from_slice(b"e.");
    p
}

#[test]
fn large_payloads_are_not_read_and_what_follows_them_is_still_judged() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let clean = dir.path().join("weights.pkl");
    std::fs::write(&clean, payload_heavy(b"")).unwrap_or_else(|e| panic!("{e}"));
    let (code, v) = scan_json(&clean);
    assert_eq!(code, 0, "{v}");
    let read = v["files"][0]["bytes_read"].as_u64().unwrap_or(u64::MAX);
    assert!(read < 4 << 20, "{read} bytes read of a 40 MiB file");

    // The attack after the payloads: the walk keeps every opcode.
    let attack = payload_heavy(b"cos\nsystem\nX\x04\x00\x00\x00echo\x85R");
    let evil = dir.path().join("evil.pkl");
    std::fs::write(&evil, &attack).unwrap_or_else(|e| panic!("{e}"));
    let (code, v) = scan_json(&evil);
    assert_eq!(code, 1, "{v}");
    assert!(rules_of(&v).contains("code-execution"), "{v}");
    let (_, human, _) = run(&["scan", &evil.to_string_lossy()]);
    assert!(human.contains("<1048576 bytes, not read>"), "{human}");

    // An opcode hidden where the walk skipped (a lying length) cannot pass: the VM reads
    // the same lengths, and anything it would decode in a hole is not an opcode.
    let mut lying = payload_heavy(b"cos\nsystem\nX\x04\x00\x00\x00echo\x85R");
    let at = lying.len() - 2; // the APPENDS
    lying[at] = b'B';
    let (code, v) = scan_json(&{
        let p = dir.path().join("lying.pkl");
        std::fs::write(&p, &lying).unwrap_or_else(|e| panic!("{e}"));
        p
    });
    assert_ne!(code, 0, "{v}");
    // The same lie with nothing before it that runs: every unpickler fails at the lying
    // length, so the bytes are not pickle-bearing.
    let mut inert = payload_heavy(b"");
    let at = inert.len() - 2;
    inert[at] = b'B';
    let (code, v) = scan_json(&{
        let p = dir.path().join("inert.pkl");
        std::fs::write(&p, &inert).unwrap_or_else(|e| panic!("{e}"));
        p
    });
    assert_eq!(
        (code, v["files"][0]["format"].as_str()),
        (0, Some("unknown")),
        "{v}"
    );
}

#[test]
fn sparse_reads_judge_exactly_like_whole_reads() {
    // Damage the opcodes around the payloads (lengths, opcode bytes, the tail) and compare
    // the file scan (positioned reads, payloads skipped) with the in-memory scan.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let base = payload_heavy(b"cos\nsystem\nX\x04\x00\x00\x00echo\x85R");
    let headers: Vec<usize> = (0..40).map(|i| 4 + i * (5 + (1 << 20))).collect();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let path = dir.path().join("m.pkl");
    for round in 0..24 {
        let mut m = base.clone();
        let h = headers[(next() % 40) as usize];
        match round % 4 {
            0 => m[h] = (next() % 256) as u8,              // the opcode itself
            1 => m[h + 1 + (next() % 4) as usize] ^= 0x10, // its length
            2 => m.truncate(h + 3),                        // cut in a header
            _ => {
                let at = base.len() - 1 - (next() % 30) as usize; // the tail
                m[at] = (next() % 256) as u8;
            }
        }
        std::fs::write(&path, &m).unwrap_or_else(|e| panic!("{e}"));
        let file = scan::scan_file(&path, default_policy(), &ScanOptions::default());
        let mem = scan::scan_bytes("m.pkl", &m, default_policy(), &ScanOptions::default());
        let key = |r: &scan::FileReport| -> Vec<(String, u64)> {
            r.findings
                .iter()
                .map(|f| (f.rule.id().to_string(), f.offset))
                .collect()
        };
        assert_eq!(key(&file), key(&mem), "round {round}");
        assert_eq!(file.status, mem.status, "round {round}");
        // Damage that makes every unpickler fail before the import leaves bytes that
        // execute nothing (vm::pickle_bearing); anything else is judged and refused.
        assert!(
            file.status != scan::Status::Clean || file.format == "unknown",
            "round {round}"
        );
        assert_eq!(file.format, mem.format, "round {round}");
    }
}

/// joblib's `NumpyArrayWrapper(...)` with `{shape: (n,), dtype: numpy.dtype(descr)}` and BUILD.
fn joblib_wrapper(descr: &str, n: u8) -> Vec<u8> {
    let mut p = b"cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}(X\x05\x00\x00\x00shapeK".to_vec();
    p.push(n);
    p.extend_from_slice(b"\x85X\x05\x00\x00\x00dtypecnumpy\ndtype\nX");
    p.extend_from_slice(&(descr.len() as u32).to_le_bytes());
    p.extend_from_slice(descr.as_bytes());
    p.extend_from_slice(b"\x85Rub");
    p
}

#[test]
fn joblib_array_bytes_are_also_read_the_way_a_plain_loader_reads_them() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // 12 "array" bytes that pop the wrapper and import os.system for a plain pickle.load
    let payload = b"0cos\nsystem\n";
    let mut raw = b"\x80\x02".to_vec();
    raw.extend(joblib_wrapper("u1", payload.len() as u8));
    raw.extend_from_slice(payload);
    raw.extend_from_slice(b"(X\x02\x00\x00\x00idtR.");
    // the same trick inside an object array's payload, which joblib reads with pickle.load
    let mut outer = b"\x80\x02".to_vec();
    outer.extend(joblib_wrapper("O", 1));
    outer.extend_from_slice(b"\x80\x02");
    outer.extend(joblib_wrapper("u1", payload.len() as u8));
    outer.extend_from_slice(payload);
    outer.extend_from_slice(b"(X\x02\x00\x00\x00idtR.");
    outer.push(b'.');
    for (name, data) in [("raw.joblib", raw), ("nested.joblib", outer)] {
        let p = dir.path().join(name);
        std::fs::write(&p, &data).unwrap_or_else(|e| panic!("{e}"));
        let (code, v) = scan_json(&p);
        assert_eq!(code, 1, "{name}: {v}");
        assert!(rules_of(&v).contains("code-execution"), "{name}: {v}");
    }
}

/// A Hugging Face cache (`snapshots/<rev>/` holds symlinks into `blobs/`) is scanned through
/// its links, under the links' paths; a link leaving the scanned directory and a FIFO are
/// skipped with a notice (a FIFO is never opened: the scan would block on it).
#[test]
fn the_walk_follows_inner_symlinks_and_never_opens_a_fifo() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let cache = dir.path().join("models--org--name");
    let blobs = cache.join("blobs");
    let snap = cache.join("snapshots/0123abcd");
    std::fs::create_dir_all(&blobs).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(&snap).unwrap_or_else(|e| panic!("{e}"));
    let evil = std::fs::read(fixtures("attacks").join("a01_sequential_exec_head.pkl"))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(blobs.join("9f86d081884c7d65"), &evil).unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink(
        "../../blobs/9f86d081884c7d65",
        snap.join("pytorch_model.bin"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let outside = dir.path().join("outside.pkl");
    std::fs::write(&outside, &evil).unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink(&outside, snap.join("escape.pkl")).unwrap_or_else(|e| panic!("{e}"));
    let fifo = snap.join("pipe.pkl");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(made, "mkfifo");

    // Scanning only the snapshot: its link into blobs/ leaves the scanned directory.
    let snap_s = snap.to_string_lossy().into_owned();
    let (code, _, err) = run(&["scan", &snap_s]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("pytorch_model.bin: a symlink to"), "{err}");
    assert!(
        err.contains("pipe.pkl: a named pipe (FIFO), not read"),
        "{err}"
    );

    // Scanning the cache: the model is found through its link, under the link's path.
    let cache_s = cache.to_string_lossy().into_owned();
    let (code, out, err) = run(&["scan", "--format", "json", &cache_s]);
    assert_eq!(code, 1, "{out}{err}");
    let v: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    let paths: Vec<&str> = v["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["path"].as_str())
        .collect();
    assert!(
        paths
            .iter()
            .any(|p| p.ends_with("snapshots/0123abcd/pytorch_model.bin")),
        "{paths:?}"
    );
    assert!(err.contains("escape.pkl: a symlink to"), "{err}");
    // A FIFO named on the command line is not opened either.
    let fifo_s = fifo.to_string_lossy().into_owned();
    let (code, _, err) = run(&["scan", &fifo_s]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("a named pipe (FIFO), not read"), "{err}");
}
