"""The GitLab CI template: its shape, ci/gitlab/run.sh against throw-away repositories with
the variables a merge request pipeline sets, and the template's install script run the way
the runner runs it (before_script then script in one shell), with a stand-in `cargo`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from _integ import BENIGN, EVIL, REPO, ZERO, run

TEMPLATE = REPO / "ci" / "gitlab" / "picklegate.gitlab-ci.yml"
RUN_SH = REPO / "ci" / "gitlab" / "run.sh"
REPORT = "gl-code-quality-report.json"
SEVERITIES = {"info", "minor", "major", "critical", "blocker"}


def template() -> dict:
    return yaml.safe_load(TEMPLATE.read_text())


# --- the template -----------------------------------------------------------------------------


def test_template_jobs():
    t = template()
    assert set(t) == {".picklegate", "picklegate"}, "an included template must not add global keys"
    assert t["picklegate"] == {"extends": ".picklegate"}
    job = t[".picklegate"]
    assert job["image"] == "rust:1"
    assert job["variables"]["GIT_DEPTH"] == "0"
    ifs = [r["if"] for r in job["rules"]]
    assert '$CI_PIPELINE_SOURCE == "merge_request_event"' in ifs
    assert "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH" in ifs
    assert job["artifacts"]["when"] == "always"
    assert job["artifacts"]["reports"] == {"codequality": REPORT}
    assert job["script"] == ['bash "$PICKLEGATE_HOME/run.sh"']
    install = "\n".join(job["before_script"])
    assert "cargo install --locked" in install
    assert "ci/gitlab/run.sh" in install
    for var in ("PICKLEGATE_REPO", "PICKLEGATE_REF", "PICKLEGATE_INSTALL", "PICKLEGATE_CONFIG",
                "PICKLEGATE_ARGS", "PICKLEGATE_FAIL_ON_FINDINGS"):
        assert var in job["variables"], var
    # Every variable is a string (GitLab rejects other types in `variables:`).
    assert all(isinstance(v, str) for v in job["variables"].values())


def test_run_sh_is_executable():
    assert RUN_SH.stat().st_mode & 0o111


# --- run.sh -------------------------------------------------------------------------------------


@pytest.fixture
def mr_repo(git_repo):
    """target branch main (README + benign model); the MR branch adds a malicious model; a
    clean MR branch adds a benign one."""
    repo = git_repo("project")
    repo.write("README.md", "project\n")
    repo.write("models/linear.pkl", BENIGN)
    repo.add("README.md", "models/linear.pkl")
    repo.base = repo.commit("base")
    repo.git("checkout", "-q", "-b", "mr")
    repo.write("models/new_model.bin", EVIL)
    repo.add("models/new_model.bin")
    repo.evil = repo.commit("new model")
    repo.git("checkout", "-q", "-b", "clean", repo.base)
    repo.write("models/linear2.pkl", BENIGN)
    repo.add("models/linear2.pkl")
    repo.clean = repo.commit("benign model")
    repo.git("checkout", "-q", "mr")
    return repo


def gitlab_env(env, repo, base: str | None, head: str, **extra) -> dict[str, str]:
    e = dict(env, GITLAB_CI="true", CI="true", CI_COMMIT_SHA=head, CI_PROJECT_DIR=str(repo.path),
             CI_DEFAULT_BRANCH="main")
    if base is not None:
        e.update(CI_PIPELINE_SOURCE="merge_request_event", CI_MERGE_REQUEST_DIFF_BASE_SHA=base)
    e.update(extra)
    return e


def check_report(path: Path) -> list[dict]:
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf"), "no byte-order mark"
    issues = json.loads(raw)
    assert isinstance(issues, list)
    for i in issues:
        assert isinstance(i["description"], str) and i["description"]
        assert isinstance(i["check_name"], str) and i["check_name"]
        assert isinstance(i["fingerprint"], str) and i["fingerprint"]
        assert i["severity"] in SEVERITIES, i
        assert isinstance(i["location"]["path"], str)
        lines = i["location"].get("lines", {}).get("begin") or i["location"]["positions"]["begin"]["line"]
        assert isinstance(lines, int) and lines >= 1
    assert len({i["fingerprint"] for i in issues}) == len(issues), "fingerprints collapse issues"
    return issues


def test_merge_request_with_a_malicious_model(mr_repo, env):
    r = run(["bash", RUN_SH], cwd=mr_repo.path, env=gitlab_env(env, mr_repo, mr_repo.base, mr_repo.evil))
    assert r.returncode == 1, r.stdout
    # Human output in the job log, not the JSON report.
    assert "code-execution" in r.stdout and "models/new_model.bin" in r.stdout, r.stdout
    assert not r.stdout.lstrip().startswith("["), r.stdout
    issues = check_report(mr_repo.path / REPORT)
    assert issues, "the report lists the findings"
    assert {i["location"]["path"] for i in issues} == {"models/new_model.bin"}
    assert any("code-execution" in i["check_name"] for i in issues), issues


def test_merge_request_without_findings(mr_repo, env):
    r = run(["bash", RUN_SH], cwd=mr_repo.path, env=gitlab_env(env, mr_repo, mr_repo.base, mr_repo.clean))
    assert r.returncode == 0, r.stdout
    assert check_report(mr_repo.path / REPORT) == []


def test_push_to_the_default_branch(mr_repo, env):
    """No merge request: CI_COMMIT_BEFORE_SHA..CI_COMMIT_SHA."""
    e = gitlab_env(env, mr_repo, None, mr_repo.evil, CI_PIPELINE_SOURCE="push", CI_COMMIT_BRANCH="main",
                   CI_COMMIT_BEFORE_SHA=mr_repo.base)
    r = run(["bash", RUN_SH], cwd=mr_repo.path, env=e)
    assert r.returncode == 1, r.stdout
    assert check_report(mr_repo.path / REPORT)


def test_pipeline_without_a_before_commit_scans_the_whole_tree(git_repo, env):
    """A new branch, a scheduled or a manual pipeline: CI_COMMIT_BEFORE_SHA is all zeros."""
    repo = git_repo("project")
    repo.write("old.pkl", EVIL)
    repo.add("old.pkl")
    repo.commit("first")
    repo.write("README.md", "x\n")
    repo.add("README.md")
    head = repo.commit("second")
    e = gitlab_env(env, repo, None, head, CI_PIPELINE_SOURCE="schedule", CI_COMMIT_BEFORE_SHA=ZERO)
    r = run(["bash", RUN_SH], cwd=repo.path, env=e)
    assert r.returncode == 1, r.stdout
    assert {i["location"]["path"] for i in check_report(repo.path / REPORT)} == {"old.pkl"}


def test_findings_reported_without_failing(mr_repo, env):
    e = gitlab_env(env, mr_repo, mr_repo.base, mr_repo.evil, PICKLEGATE_FAIL_ON_FINDINGS="false")
    r = run(["bash", RUN_SH], cwd=mr_repo.path, env=e)
    assert r.returncode == 0, r.stdout
    assert check_report(mr_repo.path / REPORT)


def test_errors_always_fail(mr_repo, env):
    e = gitlab_env(env, mr_repo, mr_repo.base, mr_repo.evil, PICKLEGATE_FAIL_ON_FINDINGS="false",
                   PICKLEGATE_CONFIG="missing.yaml")
    (mr_repo.path / REPORT).write_text('[{"stale": true}]')
    r = run(["bash", RUN_SH], cwd=mr_repo.path, env=e)
    assert r.returncode == 2, r.stdout
    assert not (mr_repo.path / REPORT).exists() or "stale" not in (mr_repo.path / REPORT).read_text()


def test_shallow_clone_is_exit_code_2_with_a_hint(mr_repo, env, tmp_path):
    clone = tmp_path / "shallow"
    r = run(["git", "clone", "-q", "--depth", "1", "--branch", "mr", f"file://{mr_repo.path}", clone],
            cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout
    r = run(["bash", RUN_SH], cwd=clone, env=gitlab_env(env, mr_repo, mr_repo.base, mr_repo.evil,
                                                         CI_PROJECT_DIR=str(clone)))
    assert r.returncode == 2, r.stdout
    assert "GIT_DEPTH" in r.stdout, r.stdout


# --- the template's install script ------------------------------------------------------------------


def job_script() -> str:
    """before_script + script of the job, joined the way the runner runs them (one shell)."""
    job = template()[".picklegate"]
    return "\n".join(["set -eo pipefail", *job["before_script"], *job["script"]])


@pytest.fixture
def fake_cargo(tmp_path, picklegate_bin) -> tuple[Path, Path]:
    """A `cargo` that records its arguments and 'installs' the binary under test into --root."""
    d = tmp_path / "fake-cargo"
    d.mkdir()
    log = tmp_path / "cargo.log"
    (d / "cargo").write_text(f"""#!/usr/bin/env bash
echo "$*" >> {str(log)!r}
root=""
while [ $# -gt 0 ]; do
  case "$1" in --root) root="$2"; shift;; esac
  shift
done
mkdir -p "$root/bin"
cp {str(picklegate_bin)!r} "$root/bin/picklegate"
""")
    (d / "cargo").chmod(0o755)
    return d, log


def template_env(env, repo, hook_repo, fake_dir: Path, **extra) -> dict[str, str]:
    """The job's variables as the runner exports them (the template's defaults, then ours)."""
    job = template()[".picklegate"]
    e = gitlab_env(env, repo, repo.base, repo.evil)
    e.pop("PICKLEGATE_BIN")
    # The stand-in cargo first; the binary under test is NOT on PATH (the job installs it).
    e["PATH"] = os.pathsep.join([str(fake_dir)] + [p for p in e["PATH"].split(os.pathsep)
                                                   if not (Path(p) / "picklegate").exists()])
    for k, v in job["variables"].items():
        e[k] = v.replace("$CI_PROJECT_DIR", str(repo.path))
    path, _commit = hook_repo
    e.update(PICKLEGATE_REPO=f"file://{path}", PICKLEGATE_REF="main", **extra)
    return e


def test_template_installs_and_scans(mr_repo, env, hook_repo, fake_cargo):
    fake_dir, log = fake_cargo
    e = template_env(env, mr_repo, hook_repo, fake_dir)
    r = run(["bash", "-c", job_script()], cwd=mr_repo.path, env=e)
    assert r.returncode == 1, r.stdout  # the MR adds a malicious model
    calls = log.read_text().splitlines()
    assert len(calls) == 1 and calls[0].startswith("install --locked --force --root "), calls
    home = mr_repo.path / ".picklegate"
    assert (home / "commit").read_text().strip() == hook_repo[1]
    assert (home / "run.sh").read_bytes() == RUN_SH.read_bytes()
    check_report(mr_repo.path / REPORT)

    # Second pipeline, cache restored, same ref: no build.
    r = run(["bash", "-c", job_script()], cwd=mr_repo.path, env=e)
    assert r.returncode == 1, r.stdout
    assert "restored from the cache" in r.stdout
    assert len(log.read_text().splitlines()) == 1


def test_template_with_a_preinstalled_binary(mr_repo, env, hook_repo, fake_cargo, bin_dir):
    fake_dir, log = fake_cargo
    e = template_env(env, mr_repo, hook_repo, fake_dir, PICKLEGATE_INSTALL="false")
    e["PATH"] = f"{bin_dir}{os.pathsep}{e['PATH']}"
    e["CI_COMMIT_SHA"] = mr_repo.clean
    r = run(["bash", "-c", job_script()], cwd=mr_repo.path, env=e)
    assert r.returncode == 0, r.stdout
    assert not log.exists(), "nothing is built"


def test_template_refuses_the_placeholder_repository(mr_repo, env, hook_repo, fake_cargo):
    fake_dir, log = fake_cargo
    e = template_env(env, mr_repo, hook_repo, fake_dir)
    e["PICKLEGATE_REPO"] = template()[".picklegate"]["variables"]["PICKLEGATE_REPO"]
    r = run(["bash", "-c", job_script()], cwd=mr_repo.path, env=e)
    assert r.returncode == 2, r.stdout
    assert "set PICKLEGATE_REPO" in r.stdout
