"""SARIF output validated by Microsoft's SARIF Multitool (npm @microsoft/sarif-multitool)
with the SARIF schema rules and GitHub Advanced Security's ingestion rules ("Gh;Sarif").

tests/run.sh installs the pinned Multitool and exports SARIF_MULTITOOL (the native
binary: the npm wrapper passes arguments through /bin/sh, which splits "Gh;Sarif").
"""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("PICKLEGATE_BIN", str(ROOT / "target" / "release" / "picklegate"))
TOOL = os.environ.get("SARIF_MULTITOOL")


def multitool():
    assert TOOL and os.path.exists(TOOL), "SARIF_MULTITOOL must point at the Sarif.Multitool binary (tests/run.sh sets it)"
    return TOOL


def scan_sarif(tmp_path, *paths):
    out = tmp_path / "out.sarif"
    r = subprocess.run([BIN, "scan", "--format", "sarif", *map(str, paths)], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode in (0, 1), r.stderr
    out.write_text(r.stdout)
    return out


def validate(path):
    r = subprocess.run([multitool(), "validate", str(path), "--rule-kind", "Gh;Sarif"],
                       capture_output=True, text=True, timeout=300)
    text = r.stdout + r.stderr
    problems = [l for l in text.splitlines() if ": error " in l or ": warning " in l]
    return r.returncode, problems, text


@pytest.mark.parametrize("what", ["attacks", "containers", "benign"])
def test_sarif_passes_schema_and_github_ingestion_rules(tmp_path, what):
    sarif = scan_sarif(tmp_path, pathlib.Path("tests/fixtures") / what)
    code, problems, text = validate(sarif)
    assert code == 0, text
    assert problems == [], "\n".join(problems)
    assert "Analysis completed successfully" in text


def test_sarif_without_results_is_valid(tmp_path):
    (tmp_path / "empty.txt").write_text("not a pickle\n")
    r = subprocess.run([BIN, "scan", "--format", "sarif", str(tmp_path / "empty.txt")], capture_output=True, text=True)
    assert r.returncode == 0
    f = tmp_path / "empty.sarif"
    f.write_text(r.stdout)
    code, problems, text = validate(f)
    assert code == 0 and problems == [], text


def test_waived_findings_are_suppressions_that_validate(tmp_path):
    """A finding waived by a pinned exception stays a result, with a SARIF suppression
    (kind external, status accepted, the exception's reason as justification)."""
    import hashlib
    import shutil
    src = ROOT / "tests/fixtures/attacks"
    payload = sorted(p for p in src.iterdir() if p.suffix == ".pkl")[0]
    shutil.copy(payload, tmp_path / "waived.pkl")
    digest = hashlib.sha256((tmp_path / "waived.pkl").read_bytes()).hexdigest()
    (tmp_path / ".picklegate.yaml").write_text(
        "version: 1\nexceptions:\n  - path: waived.pkl\n    reason: quarantined sample SEC-1\n"
        f"    sha256: {digest}\n")
    r = subprocess.run([BIN, "scan", "--format", "sarif", "waived.pkl"], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    import json
    doc = json.loads(r.stdout)
    results = doc["runs"][0]["results"]
    assert results, "the waived findings must stay in the report"
    for res in results:
        (s,) = res["suppressions"]
        assert s["kind"] == "external" and s["status"] == "accepted"
        assert "quarantined sample SEC-1" in s["justification"]
    f = tmp_path / "waived.sarif"
    f.write_text(r.stdout)
    code, problems, text = validate(f)
    assert code == 0 and problems == [], text
