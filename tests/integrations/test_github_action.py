"""The composite GitHub Action: action.yml's shape and hygiene, and its scripts run the way the
runner runs them (GITHUB_EVENT_PATH, GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_ACTION_PATH)
against throw-away repositories."""

from __future__ import annotations

import json
import os
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
    assert inputs["install"]["default"] == "release" and inputs["version"]["default"] == ""
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

    key = step("cache key")
    assert key["env"]["PICKLEGATE_INSTALL"] == "${{ inputs.install }}"
    assert key["env"]["PICKLEGATE_VERSION"] == "${{ inputs.version }}"

    # restore + save, not actions/cache: its post-job save is skipped when the scan fails, and
    # then every failing pull request would install again.
    restore = step("Restore picklegate")
    assert restore["uses"].startswith("actions/cache/restore@")
    assert restore["with"] == {"path": "~/.picklegate", "key": "${{ steps.key.outputs.key }}"}
    assert "steps.key.outputs.mode != 'none'" in restore["if"]

    install = step("Install picklegate")
    assert "steps.cache.outputs.cache-hit != 'true'" in install["if"]
    assert install["env"]["PICKLEGATE_INSTALL"] == "${{ steps.key.outputs.mode }}"
    assert install["env"]["PICKLEGATE_TAG"] == "${{ steps.key.outputs.tag }}"
    assert install["env"]["ACTION_REPOSITORY"] == "${{ github.action_repository }}"
    assert install["env"]["ACTION_REF"] == "${{ github.action_ref }}"
    assert 'ci/github/setup.sh" install' in install["run"]

    save = step("Save picklegate")
    assert names.index("Install picklegate") + 1 == names.index("Save picklegate to the cache")
    assert names.index("Save picklegate to the cache") < names.index("Scan")
    assert save["uses"].startswith("actions/cache/save@")
    assert save["uses"].split("@")[1] == restore["uses"].split("@")[1], "one actions/cache commit"
    assert save["with"] == restore["with"]
    assert save["if"] == install["if"]

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
             RUNNER_ARCH="X64", ACTION_REF="refs/tags/v1", PICKLEGATE_INSTALL="source")
    for _ in range(2):
        r = run(["bash", SCRIPTS / "setup.sh", "key"], cwd=tmp_path, env=e)
        assert r.returncode == 0, r.stdout
    lines = out.read_text().splitlines()
    assert lines[0] == lines[2] == "mode=source", lines
    assert len(lines) == 4 and lines[1] == lines[3], lines
    assert re.fullmatch(r"key=picklegate-Linux-X64-refs_tags_v1-[0-9a-f]{20}", lines[1]), lines


def key_outputs(env, tmp_path, **extra) -> dict[str, str]:
    out = tmp_path / "key-output"
    out.write_text("")
    e = dict(env, GITHUB_ACTION_PATH=str(REPO), GITHUB_OUTPUT=str(out), RUNNER_OS="Linux",
             RUNNER_ARCH="X64", **extra)
    r = run(["bash", SCRIPTS / "setup.sh", "key"], cwd=tmp_path, env=e)
    assert r.returncode == 0, r.stdout
    return dict(line.split("=", 1) for line in out.read_text().splitlines())


CARGO_VERSION = re.search(r'^version = "([^"]+)"$', (REPO / "Cargo.toml").read_text(), re.M).group(1)


@pytest.mark.parametrize(("extra", "tag"), [
    ({}, f"v{CARGO_VERSION}"),                                   # a branch or commit: Cargo.toml
    ({"PICKLEGATE_INSTALL": "true", "ACTION_REF": "main"}, f"v{CARGO_VERSION}"),
    ({"ACTION_REF": "v2.3.4"}, "v2.3.4"),                        # the action's own tag
    ({"ACTION_REF": "refs/tags/v2.3.4"}, "v2.3.4"),
    ({"ACTION_REF": "v2.3.4", "PICKLEGATE_VERSION": "1.0.0"}, "v1.0.0"),  # the version input wins
])
def test_release_key_names_the_tag(env, tmp_path, extra, tag):
    o = key_outputs(env, tmp_path, **extra)
    assert o == {"mode": "release", "tag": tag, "key": f"picklegate-release-Linux-X64-{tag}"}, o


@pytest.mark.parametrize("value", ["none", "false"])
def test_install_none_installs_nothing(env, tmp_path, value):
    assert key_outputs(env, tmp_path, PICKLEGATE_INSTALL=value) == {"mode": "none"}
    root = tmp_path / "root"
    r = run(["bash", SCRIPTS / "setup.sh", "install"], cwd=tmp_path,
            env=dict(env, PICKLEGATE_INSTALL=value, PICKLEGATE_ROOT=str(root)))
    assert r.returncode == 0 and not root.exists(), r.stdout


def test_unknown_install_mode_is_an_error(env, tmp_path):
    r = run(["bash", SCRIPTS / "setup.sh", "key"], cwd=tmp_path,
            env=dict(env, PICKLEGATE_INSTALL="docker", GITHUB_OUTPUT=str(tmp_path / "o")))
    assert r.returncode == 2 and "release, source or none" in r.stdout, r.stdout


# --- install: release, from a loopback release server --------------------------------------------


def release_install(env, tmp_path, server, tag, **extra):
    root = tmp_path / "root"
    e = dict(env, GITHUB_ACTION_PATH=str(REPO), PICKLEGATE_INSTALL="release", PICKLEGATE_TAG=tag,
             PICKLEGATE_ROOT=str(root), PICKLEGATE_DOWNLOAD_BASE=server.base, **extra)
    e["PATH"] = os.pathsep.join(p for p in e["PATH"].split(os.pathsep) if not (Path(p) / "picklegate").exists())
    return run(["bash", SCRIPTS / "setup.sh", "install"], cwd=tmp_path, env=e), root


def test_release_install_verifies_the_checksum_then_scans(env, tmp_path, release_server, picklegate_bin):
    import time
    release_server.publish("v0.9.0")
    start = time.monotonic()
    r, root = release_install(env, tmp_path, release_server, "v0.9.0")
    took = time.monotonic() - start
    assert r.returncode == 0, r.stdout
    print(f"release install from loopback: {took:.2f} s")
    target = release_server.host_target()
    assert release_server.requests == ["/v0.9.0/SHA256SUMS", f"/v0.9.0/picklegate-v0.9.0-{target}.tar.gz"]
    binary = root / "bin" / "picklegate"
    assert binary.read_bytes() == picklegate_bin.read_bytes()
    assert (root / "ci" / "gitlab" / "run.sh").is_file()
    assert (root / "release").read_text().split()[:2] == ["v0.9.0", target]
    # `setup.sh path` puts it on PATH, and it is a working scanner.
    gh_path = tmp_path / "github_path"
    r = run(["bash", SCRIPTS / "setup.sh", "path"], cwd=tmp_path,
            env=dict(env, PICKLEGATE_ROOT=str(root), GITHUB_PATH=str(gh_path)))
    assert gh_path.read_text().strip() == str(root / "bin")
    r = run([binary, "scan", EVIL], cwd=tmp_path, env=env)
    assert r.returncode == 1 and "code-execution" in r.stdout, r.stdout


@pytest.mark.parametrize(("publish", "message"), [
    ({"tamper": True}, "checksum mismatch"),
    ({"listed": False}, "is not listed exactly once"),
    ({"target": "riscv64gc-unknown-linux-musl"}, "could not download"),  # no asset for this runner
])
def test_release_install_refuses_what_does_not_verify(env, tmp_path, release_server, publish, message):
    release_server.publish("v0.9.0", **publish)
    r, root = release_install(env, tmp_path, release_server, "v0.9.0")
    assert r.returncode == 2, r.stdout
    assert message in r.stdout and "::error title=picklegate install::" in r.stdout, r.stdout
    assert not (root / "bin" / "picklegate").exists(), "nothing is installed"


def test_release_install_of_a_missing_release(env, tmp_path, release_server):
    r, root = release_install(env, tmp_path, release_server, "v0.9.1")
    assert r.returncode == 2 and "could not download" in r.stdout and "SHA256SUMS" in r.stdout, r.stdout
    assert not root.exists()


def test_release_install_needs_a_tag(env, tmp_path, release_server):
    r = run(["bash", REPO / "ci" / "install-release.sh", "main", str(tmp_path / "root")], cwd=tmp_path,
            env=dict(env, PICKLEGATE_DOWNLOAD_BASE=release_server.base))
    assert r.returncode == 2 and "not a release tag" in r.stdout, r.stdout
    assert release_server.requests == []


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
