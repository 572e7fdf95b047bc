//! Containers end to end: every file in tests/fixtures/containers (real library output
//! and tampered/attack variants, see its manifest) scanned through the built binary.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/containers")
}

fn manifest() -> Vec<Value> {
    let path = dir().join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(v)) => v,
        other => panic!("{}: not a JSON array: {other:?}", path.display()),
    }
}

fn scan(file: &str) -> (i32, Value) {
    let path = dir().join(file);
    let out = Command::new(env!("CARGO_BIN_EXE_picklegate"))
        .args(["scan", "--format", "json"])
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run picklegate: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{file}: bad JSON ({e}): {stdout}"));
    (out.status.code().unwrap_or(-1), v)
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(String::from))
        .collect()
}

#[test]
fn every_container_fixture_is_read_like_its_loader_reads_it() {
    let entries = manifest();
    assert!(entries.len() >= 60, "too few container fixtures");
    let mut failures = Vec::new();
    for e in &entries {
        let file = e["file"].as_str().unwrap_or_default();
        let (code, report) = scan(file);
        let f = &report["files"][0];
        let findings = f["findings"].as_array().cloned().unwrap_or_default();
        let got: BTreeSet<String> = findings
            .iter()
            .filter_map(|x| x["rule"].as_str().map(String::from))
            .collect();
        let members: BTreeSet<String> = findings
            .iter()
            .filter_map(|x| x["member"].as_str().map(String::from))
            .collect();
        let want = strings(&e["rules"]);
        let mut problems = Vec::new();
        if f["format"] != e["format"] {
            problems.push(format!("format {} (want {})", f["format"], e["format"]));
        }
        if !want.is_subset(&got) {
            problems.push(format!("rules {got:?} lack {want:?}"));
        }
        if let Some(m) = e["member"].as_str() {
            if !members.contains(m) {
                problems.push(format!("no finding in member {m} (members: {members:?})"));
            }
        }
        let failing = findings.iter().any(|x| {
            matches!(
                x["severity"].as_str(),
                Some("warning" | "error" | "critical")
            )
        });
        match e["kind"].as_str() {
            Some("attack") if code != 1 => problems.push(format!("exit {code}, want 1")),
            Some("benign") if e["default_policy"] == Value::Bool(true) => {
                if !got.is_subset(&want) {
                    problems.push(format!("unexpected findings {got:?}"));
                }
                if code != i32::from(failing) {
                    problems.push(format!("exit {code}"));
                }
            }
            _ => {}
        }
        if !problems.is_empty() {
            failures.push(format!("{file}: {}", problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn names_never_decide_content() {
    // The same torch checkpoint under several names is read the same way.
    let entries = manifest();
    let torch: Vec<&Value> = entries
        .iter()
        .filter(|e| {
            e["file"]
                .as_str()
                .is_some_and(|f| f.starts_with("torch_zip_state_dict"))
        })
        .collect();
    assert!(torch.len() >= 3);
    for e in torch {
        let (_, report) = scan(e["file"].as_str().unwrap_or_default());
        assert_eq!(report["files"][0]["format"], "torch-zip", "{}", e["file"]);
    }
}
