"""The composite GitHub Action: action.yml's shape and hygiene, and its scripts run the way the
runner runs them (GITHUB_EVENT_PATH, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_ACTION_PATH)
against throw-away repositories."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from _integ import BENIGN, EVIL, REPO, ZERO, run

ACTION = REPO / "action.yml"
SCRIPTS = REPO / "ci" / "github"


def action() -> dict:
    return yaml.safe_load(ACTION.read_text())


def steps() -> list[dict]:
    return action()["runs"]["steps"]


def step(name_part: str) -> dict:
    found = [s for s in steps() if name_part in s.get("name", "")]
    assert len(found) == 1, name_part
    return found[0]


# --- action.yml -----------------------------------------------------------------------------


def test_action_is_composite_with_the_documented_inputs_and_outputs():
    a = action()
    assert a["runs"]["using"] == "composite"
    assert a["name"] and a["description"]
    inputs = a["inputs"]
    assert inputs["sarif-file"]["default"] == "picklegate.sarif"
    assert inputs["upload-sarif"]["default"] == "false"
    assert inputs["fail-on-findings"]["default"] == "true"
    assert inputs["config"]["default"] == "" and inputs["args"]["default"] == ""
    for name, spec in inputs.items():
        assert spec.get("description"), name
    assert set(a["outputs"]) == {"exit-code", "findings", "sarif-file"}
    for name, spec in a["outputs"].items():
        assert spec["value"] == f"${{{{ steps.scan.outputs.{name} }}}}"


def test_no_expression_is_spliced_into_a_script():
    """Script injection: inputs and github.* reach `run:` only through `env:`."""
    for s in steps():
        if "run" in s:
            assert "${{" not in s["run"], s["name"]
            assert s.get("shell") == "bash", s["name"]


def test_third_party_actions_are_pinned_by_commit():
    for s in steps():
        if "uses" in s:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", s["uses"]), s["uses"]


def test_step_plan():
    names = [s["name"] for s in steps()]
    assert names.index("Scan") < names.index("Upload SARIF to code scanning") < names.index("Enforce the gate")
    assert names[-1] == "Enforce the gate"

    cache = step("Restore picklegate")
    assert cache["uses"].startswith("actions/cache@")
    assert cache["with"]["path"] == "~/.picklegate"
    assert cache["with"]["key"] == "${{ steps.key.outputs.key }}"

    install = step("Install picklegate")
    assert "steps.cache.outputs.cache-hit != 'true'" in install["if"]
    assert install["env"]["ACTION_REPOSITORY"] == "${{ github.action_repository }}"
    assert install["env"]["ACTION_REF"] == "${{ github.action_ref }}"
    assert 'ci/github/setup.sh" install' in install["run"]

    scan = step("Scan")
    assert scan["id"] == "scan"
    assert scan["env"] == {
        "PICKLEGATE_CONFIG": "${{ inputs.config }}",
        "PICKLEGATE_ARGS": "${{ inputs.args }}",
        "PICKLEGATE_SARIF_FILE": "${{ inputs.sarif-file }}",
    }
    assert "ci/github/run.sh" in scan["run"]

    upload = step("Upload SARIF")
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@")
    assert "inputs.upload-sarif == 'true'" in upload["if"]
    assert upload["with"] == {"sarif_file": "${{ steps.scan.outputs.sarif-file }}", "category": "picklegate"}

    enforce = step("Enforce")
    assert enforce["if"] == "always()"
    assert enforce["env"]["PICKLEGATE_EXIT_CODE"] == "${{ steps.scan.outputs.exit-code }}"
    assert enforce["env"]["PICKLEGATE_FAIL_ON_FINDINGS"] == "${{ inputs.fail-on-findings }}"


def test_scripts_exist_and_are_executable():
    for s in steps():
        for m in re.finditer(r'\$GITHUB_ACTION_PATH/([\w./-]+)"', s.get("run", "")):
            p = REPO / m.group(1)
            assert p.is_file(), p
            assert p.stat().st_mode & 0o111, f"{p} is not executable"


# --- setup.sh ---------------------------------------------------------------------------------


def test_cache_key_follows_the_sources(env, tmp_path):
    out = tmp_path / "out"
    e = dict(env, GITHUB_ACTION_PATH=str(REPO), GITHUB_OUTPUT=str(out), RUNNER_OS="Linux",
             RUNNER_ARCH="X64", ACTION_REF="refs/tags/v1")
    for _ in range(2):
        r = run(["bash", SCRIPTS / "setup.sh", "key"], cwd=tmp_path, env=e)
        assert r.returncode == 0, r.stdout
    lines = out.read_text().splitlines()
    assert len(lines) == 2 and lines[0] == lines[1], lines
    assert re.fullmatch(r"key=picklegate-Linux-X64-refs_tags_v1-[0-9a-f]{20}", lines[0]), lines


# --- run.sh and enforce.sh ----------------------------------------------------------------------


class Outputs:
    def __init__(self, r, tmp: Path, sarif: Path):
        self.result = r
        self.stdout = r.stdout
        self.outputs = dict(
            line.split("=", 1) for line in (tmp / "github_output").read_text().splitlines() if "=" in line
        )
        summary = tmp / "step_summary"
        self.summary = summary.read_text() if summary.exists() else ""
        self.sarif = sarif


def run_action(repo, env, tmp_path: Path, event: dict, **extra_env) -> Outputs:
    """ci/github/run.sh as the action runs it: cwd the workspace, the event payload, the
    output and summary files in a fresh directory under tmp_path."""
    n = 0
    while (tmp_path / f"gh{n}").exists():
        n += 1
    tmp_path = tmp_path / f"gh{n}"
    tmp_path.mkdir()
    event_path = tmp_path / "event.json"
    event_path.write_text(json.dumps(event))
    (tmp_path / "github_output").touch()
    e = dict(
        env,
        GITHUB_ACTIONS="true",
        CI="true",
        GITHUB_EVENT_PATH=str(event_path),
        GITHUB_EVENT_NAME="pull_request" if "pull_request" in event else "push",
        GITHUB_OUTPUT=str(tmp_path / "github_output"),
        GITHUB_STEP_SUMMARY=str(tmp_path / "step_summary"),
        GITHUB_WORKSPACE=str(repo.path),
        GITHUB_ACTION_PATH=str(REPO),
        PICKLEGATE_SARIF_FILE="picklegate.sarif",
        **extra_env,
    )
    r = run(["bash", SCRIPTS / "run.sh"], cwd=repo.path, env=e)
    assert r.returncode == 0, f"run.sh must never fail the step:\n{r.stdout}"
    return Outputs(r, tmp_path, repo.path / e["PICKLEGATE_SARIF_FILE"])


def pr_event(base: str, head: str) -> dict:
    return {"action": "synchronize", "number": 7,
            "pull_request": {"number": 7, "base": {"sha": base, "ref": "main"}, "head": {"sha": head, "ref": "feature"}}}


@pytest.fixture
def pr_repo(git_repo):
    """main: README + a benign model; feature: adds a malicious model; clean: adds a benign one."""
    repo = git_repo("workspace")
    repo.write("README.md", "project\n")
    repo.write("models/linear.pkl", BENIGN)
    repo.add("README.md", "models/linear.pkl")
    repo.base = repo.commit("base")
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("docs/notes.md", "notes\n")
    repo.add("docs/notes.md")
    repo.commit("docs")
    repo.write("models/finetuned.pt", EVIL)
    repo.add("models/finetuned.pt")
    repo.evil = repo.commit("fine-tuned model")
    repo.git("checkout", "-q", "-b", "clean", repo.base)
    repo.write("models/linear2.pkl", BENIGN)
    repo.add("models/linear2.pkl")
    repo.clean = repo.commit("another benign model")
    repo.git("checkout", "-q", "feature")
    return repo


def test_pull_request_with_a_malicious_model(pr_repo, env, tmp_path):
    o = run_action(pr_repo, env, tmp_path, pr_event(pr_repo.base, pr_repo.evil))
    assert o.outputs["exit-code"] == "1", o.stdout
    assert int(o.outputs["findings"]) >= 1, o.outputs
    assert o.outputs["sarif-file"] == "picklegate.sarif"
    # Workflow commands on stdout, escaped and file-level (line 1 of a binary file).
    assert re.search(r"^::error file=models/finetuned\.pt,line=1,title=[^:]*::", o.stdout, re.M), o.stdout
    # The job summary has a markdown table naming the rule and the file.
    rows = [line for line in o.summary.splitlines() if line.startswith("|")]
    assert len(rows) >= 3, o.summary  # header, separator, at least one finding
    assert re.fullmatch(r"\|[\s:|-]+\|", rows[1]), rows[1]
    assert any("code-execution" in r and "models/finetuned.pt" in r for r in rows[2:]), o.summary
    # The SARIF side report was written in the same run and counted.
    log = json.loads(o.sarif.read_text())
    assert log["version"] == "2.1.0"
    results = [res for run_ in log["runs"] for res in run_["results"]]
    assert len(results) == int(o.outputs["findings"])
    assert any("code-execution" in res["ruleId"] for res in results), results
    uris = {loc["physicalLocation"]["artifactLocation"]["uri"] for res in results for loc in res["locations"]}
    assert "models/finetuned.pt" in uris, uris
    # Only the pull request's changes: the benign model on main is not part of the range, and
    # nothing from main is reported.
    assert "models/linear.pkl" not in o.stdout


def test_pull_request_without_findings(pr_repo, env, tmp_path):
    o = run_action(pr_repo, env, tmp_path, pr_event(pr_repo.base, pr_repo.clean))
    assert o.outputs["exit-code"] == "0", o.stdout
    assert o.outputs["findings"] == "0", o.outputs
    assert "::error" not in o.stdout, o.stdout
    assert "picklegate" in o.summary


def test_pull_request_merge_base_semantics(pr_repo, env, tmp_path):
    """base...head: main moving on after the branch point (here: a malicious model landing on
    main, e.g. through an admin merge) is not the pull request's doing."""
    pr_repo.git("checkout", "-q", "main")
    pr_repo.write("legacy.pkl", EVIL)
    pr_repo.add("legacy.pkl")
    main_head = pr_repo.commit("main moves on", "--no-verify")
    o = run_action(pr_repo, env, tmp_path, pr_event(main_head, pr_repo.clean))
    assert o.outputs["exit-code"] == "0", o.stdout


def test_push_to_a_new_branch_scans_the_whole_tree(git_repo, env, tmp_path):
    """An all-zero `before` is a new branch: every file in `after`'s tree, including the
    malicious model from the first commit, not only the last commit's changes."""
    repo = git_repo("workspace")
    repo.write("old/model.pkl", EVIL)
    repo.add("old/model.pkl")
    first = repo.commit("first")
    repo.write("models/linear.pkl", BENIGN)
    repo.add("models/linear.pkl")
    after = repo.commit("second")
    event = {"ref": "refs/heads/new-branch", "before": ZERO, "after": after, "created": True}
    o = run_action(repo, env, tmp_path, event)
    assert o.outputs["exit-code"] == "1", o.stdout
    assert "old/model.pkl" in o.stdout and "code-execution" in o.summary, o.stdout

    # The same push with a real `before`: only what first..after changed, which is benign.
    o = run_action(repo, env, tmp_path, {"ref": "refs/heads/main", "before": first, "after": after})
    assert o.outputs["exit-code"] == "0", o.stdout
    assert o.outputs["findings"] == "0", o.outputs


def test_configuration_error_is_exit_code_2(pr_repo, env, tmp_path):
    o = run_action(pr_repo, env, tmp_path, pr_event(pr_repo.base, pr_repo.evil),
                   PICKLEGATE_CONFIG="does-not-exist.yaml")
    assert o.outputs["exit-code"] == "2", o.stdout
    assert o.outputs["findings"] == "", o.outputs
    assert "::error title=picklegate::" in o.stdout
    assert "did not complete" in o.summary


def test_args_are_split_but_never_evaluated(pr_repo, env, tmp_path):
    """PICKLEGATE_ARGS is split on whitespace into literal words: no command substitution, no
    globbing, no quote removal. A stand-in binary records its arguments."""
    fake = tmp_path / "fake-picklegate"
    argv = tmp_path / "argv.json"
    fake.write_text(f"#!/usr/bin/env python3\nimport json, sys\njson.dump(sys.argv[1:], open({str(argv)!r}, 'w'))\n")
    fake.chmod(0o755)
    words = ["--level", "code-execution=deny", "$(touch", "pwned)", "`touch", "pwned2`", "*", "'a", "b'"]
    o = run_action(pr_repo, env, tmp_path, pr_event(pr_repo.base, pr_repo.clean),
                   PICKLEGATE_BIN=str(fake), PICKLEGATE_CONFIG="my policy.yaml",
                   PICKLEGATE_ARGS="  ".join(words))
    assert not (pr_repo.path / "pwned").exists() and not (pr_repo.path / "pwned)").exists()
    assert not (pr_repo.path / "pwned2").exists()
    assert json.loads(argv.read_text()) == [
        "scan", "--ci", "--format", "github", "--report", "sarif=picklegate.sarif",
        "--config", "my policy.yaml", *words,
    ]
    assert o.outputs["exit-code"] == "0"
    assert o.outputs["findings"] == ""  # the stand-in wrote no SARIF


@pytest.mark.parametrize(
    ("code", "fail_on_findings", "expected"),
    [("0", "true", 0), ("1", "true", 1), ("1", "false", 0), ("2", "true", 2), ("2", "false", 2), ("", "true", 2)],
)
def test_enforce(code, fail_on_findings, expected, base_env, tmp_path):
    e = dict(base_env, PICKLEGATE_EXIT_CODE=code, PICKLEGATE_FAIL_ON_FINDINGS=fail_on_findings)
    r = run(["bash", SCRIPTS / "enforce.sh"], cwd=tmp_path, env=e)
    assert r.returncode == expected, r.stdout
    if expected:
        assert r.stdout.startswith("::error title=picklegate::"), r.stdout


def test_lfs_objects_of_changed_pointers_are_fetched_before_the_scan(git_repo, env, tmp_path):
    """With git-lfs installed (here a stand-in `git-lfs` on PATH that records its arguments
    and stores the object as `git lfs fetch` would), run.sh fetches exactly the changed
    pointers, so the real model is scanned; without the object it is a deny finding."""
    import hashlib
    repo = git_repo("lfs")
    repo.write("README.md", "x\n")
    repo.add("README.md")
    base = repo.commit("base")
    payload = EVIL.read_bytes()
    oid = hashlib.sha256(payload).hexdigest()
    repo.write("models/model.bin", f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(payload)}\n")
    repo.add("models/model.bin")
    head = repo.commit("an LFS model")
    # Without git-lfs: the pointer is denied (the model was not seen).
    o = run_action(repo, env, tmp_path, pr_event(base, head))
    assert o.outputs["exit-code"] == "1", o.stdout
    assert "lfs-pointer" in o.stdout, o.stdout
    # A stand-in git-lfs: `version` answers, `fetch` records its arguments and writes the object.
    fake = tmp_path / "fakebin"
    fake.mkdir()
    store = tmp_path / "object"
    store.write_bytes(payload)
    log = tmp_path / "lfs.log"
    obj = repo.path / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    (fake / "git-lfs").write_text(
        "#!/bin/sh\n"
        f"echo \"$@\" >> '{log}'\n"
        "[ \"$1\" = version ] && { echo git-lfs/3.0.0; exit 0; }\n"
        f"[ \"$1\" = fetch ] && {{ mkdir -p '{obj.parent}' && cp '{store}' '{obj}'; exit 0; }}\n"
        "exit 1\n")
    (fake / "git-lfs").chmod(0o755)
    e = dict(env, PATH=f"{fake}:{env['PATH']}")
    o = run_action(repo, e, tmp_path, pr_event(base, head))
    calls = log.read_text().splitlines()
    assert "fetch --include=models/model.bin --exclude=" in calls, calls
    # The fetched object is what was scanned: the payload, not the pointer.
    assert o.outputs["exit-code"] == "1", o.stdout
    assert "code-execution" in o.stdout and "lfs-pointer" not in o.stdout, o.stdout
