"""The GitLab CI/CD component (templates/picklegate.yml): its `spec: inputs` checked against
the job that uses them (no GitLab CI schema is available offline), and the job's script run
the way the runner runs it, after input interpolation, against a synthetic merge request
pipeline that downloads the release from a loopback server."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from _integ import REPO, run
from test_gitlab_ci import check_report, gitlab_env, mr_repo  # noqa: F401 (mr_repo is a fixture)

COMPONENT = REPO / "templates" / "picklegate.yml"
REPORT = "gl-code-quality-report.json"
INPUT = re.compile(r"\$\[\[\s*inputs\.([\w-]+)\s*\]\]")


def documents() -> tuple[dict, str]:
    """(the spec header, the raw text of the job document)."""
    head, sep, body = COMPONENT.read_text().partition("\n---\n")
    assert sep, "a component is a spec document, then `---`, then its jobs"
    return yaml.safe_load(head), body


def inputs() -> dict:
    return documents()[0]["spec"]["inputs"]


def interpolate(**values) -> dict:
    """GitLab's `$[[ inputs.NAME ]]` interpolation, done as GitLab does it: in the string
    values of the parsed job document, with the defaults overridden by `values` (keyword names
    with `_` for `-`)."""
    given = {k.replace("_", "-"): v for k, v in values.items()}
    unknown = set(given) - set(inputs())
    assert not unknown, f"not inputs of the component: {unknown}"
    for name, v in given.items():
        allowed = inputs()[name].get("options")
        assert allowed is None or v in allowed, f"{name}={v!r} is not one of {allowed}"

    def value(name: str) -> str:
        return str(given.get(name, inputs()[name].get("default")))

    def walk(node):
        if isinstance(node, dict):
            return {walk(k): walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str):
            return INPUT.sub(lambda m: value(m.group(1)), node)
        return node

    return walk(yaml.safe_load(documents()[1]))


# --- the component file ----------------------------------------------------------------------


def test_spec_inputs():
    spec = inputs()
    assert set(spec) == {"stage", "version", "config", "args", "fail-on-findings", "download-base", "image"}
    for name, s in spec.items():
        assert s.get("description"), name
        assert "default" in s, f"{name}: every input has a default, so `include: component:` alone works"
        assert s.get("type", "string") in {"string", "boolean", "number", "array"}, name
    assert spec["stage"]["default"] == "test"
    assert spec["fail-on-findings"]["options"] == ["true", "false"]
    assert spec["fail-on-findings"]["default"] == "true"
    for name, s in spec.items():
        if "options" in s:
            assert s["default"] in s["options"], name
    version_re = re.compile(spec["version"]["regex"])
    assert version_re.match(spec["version"]["default"])
    cargo_version = re.search(r'^version = "([^"]+)"$', (REPO / "Cargo.toml").read_text(), re.M).group(1)
    assert spec["version"]["default"] == f"v{cargo_version}", "the default is this commit's release"
    for bad in ["main", "1.2.3", "v1.2", "v1.2.3; rm -rf /"]:
        assert not version_re.match(bad), bad
    # The image is pinned by digest, not by a moving tag alone.
    assert re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", spec["image"]["default"])


def test_every_input_is_used_and_every_use_is_declared():
    used = set(INPUT.findall(documents()[1]))
    assert used == set(inputs()), used ^ set(inputs())


def test_job_shape():
    jobs = interpolate()
    assert set(jobs) == {"picklegate"}, "a component adds one job and no global keys"
    job = jobs["picklegate"]
    assert "before_script" not in job and "after_script" not in job, \
        "a user's before_script (or default:) would silently replace the install"
    assert job["stage"] == "test"
    assert job["variables"]["GIT_DEPTH"] == "0"
    assert all(isinstance(v, str) for v in job["variables"].values()), "GitLab variables are strings"
    assert job["variables"]["PICKLEGATE_FAIL_ON_FINDINGS"] == "true"
    assert job["artifacts"]["reports"] == {"codequality": REPORT}
    assert job["artifacts"]["when"] == "always"
    assert job["cache"]["key"] == f"picklegate-{inputs()['version']['default']}"
    ifs = [r["if"] for r in job["rules"]]
    assert '$CI_PIPELINE_SOURCE == "merge_request_event"' in ifs
    # Inputs reach the script only as variables: no `$[[` inside the script itself.
    raw_script = documents()[1].split("script:", 1)[1].split("artifacts:", 1)[0]
    assert "$[[" not in raw_script


# --- the job, run -------------------------------------------------------------------------------


def job_env(env, repo, job: dict, head: str, **extra) -> dict[str, str]:
    e = gitlab_env(env, repo, repo.base, head)
    e.pop("PICKLEGATE_BIN")
    # The binary under test is not on PATH: the job must install it.
    e["PATH"] = os.pathsep.join(p for p in e["PATH"].split(os.pathsep) if not (Path(p) / "picklegate").exists())
    for k, v in job["variables"].items():
        e[k] = v.replace("$CI_PROJECT_DIR", str(repo.path))
    e.update(extra)
    return e


def run_job(repo, env, head: str, **inputs_):
    job = interpolate(**inputs_)["picklegate"]
    script = "\n".join(["set -eo pipefail", *job["script"]])  # the runner's bash prologue
    return run(["bash", "-c", script], cwd=repo.path, env=job_env(env, repo, job, head))


def test_merge_request_pipeline_installs_the_verified_release_and_scans(mr_repo, env, release_server):  # noqa: F811
    release_server.publish("v0.9.0")
    r = run_job(mr_repo, env, mr_repo.evil, version="v0.9.0", download_base=release_server.base)
    assert r.returncode == 1, r.stdout  # the MR adds a malicious model
    assert "downloaded, sha256" in r.stdout and "picklegate 0." in r.stdout, r.stdout
    assert "code-execution" in r.stdout and "models/new_model.bin" in r.stdout, r.stdout
    issues = check_report(mr_repo.path / REPORT)
    assert any(i["location"]["path"] == "models/new_model.bin" for i in issues)
    target = release_server.host_target()
    assert release_server.requests == ["/v0.9.0/SHA256SUMS", f"/v0.9.0/picklegate-v0.9.0-{target}.tar.gz"]

    # The next pipeline restores the cache: only SHA256SUMS is downloaded, the cached archive
    # is checked against it.
    r = run_job(mr_repo, env, mr_repo.clean, version="v0.9.0", download_base=release_server.base)
    assert r.returncode == 0, r.stdout
    assert "the cached archive matches SHA256SUMS" in r.stdout, r.stdout
    assert release_server.requests[2:] == ["/v0.9.0/SHA256SUMS"]

    # A cache written by another pipeline is not trusted: a changed archive is downloaded again.
    cached = mr_repo.path / ".picklegate" / f"picklegate-v0.9.0-{target}.tar.gz"
    data = cached.read_bytes()
    cached.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    r = run_job(mr_repo, env, mr_repo.clean, version="v0.9.0", download_base=release_server.base)
    assert r.returncode == 0 and "downloaded, sha256" in r.stdout, r.stdout
    assert release_server.requests[3:] == ["/v0.9.0/SHA256SUMS", f"/v0.9.0/picklegate-v0.9.0-{target}.tar.gz"]


def test_findings_reported_without_failing(mr_repo, env, release_server):  # noqa: F811
    release_server.publish("v0.9.0")
    r = run_job(mr_repo, env, mr_repo.evil, version="v0.9.0", download_base=release_server.base,
                fail_on_findings="false")
    assert r.returncode == 0, r.stdout
    assert "not failing" in r.stdout
    check_report(mr_repo.path / REPORT)


@pytest.mark.parametrize(("publish", "message"), [
    ({"tamper": True}, "checksum mismatch"),
    ({"listed": False}, "is not listed exactly once"),
    # No archive for this runner: SHA256SUMS (read first) does not list one, nothing else is fetched.
    ({"target": "riscv64gc-unknown-linux-musl"}, "is not listed exactly once"),
])
def test_a_release_that_does_not_verify_is_refused(mr_repo, env, release_server, publish, message):  # noqa: F811
    release_server.publish("v0.9.0", **publish)
    r = run_job(mr_repo, env, mr_repo.evil, version="v0.9.0", download_base=release_server.base)
    assert r.returncode == 2, r.stdout
    assert message in r.stdout, r.stdout
    assert not (mr_repo.path / REPORT).exists(), "nothing ran"


def test_an_unreachable_download_base_is_an_error(mr_repo, env, release_server):  # noqa: F811
    r = run_job(mr_repo, env, mr_repo.evil, version="v0.9.0", download_base=release_server.base + "/nothing/")
    assert r.returncode == 2 and "could not download" in r.stdout and "/nothing/v0.9.0/SHA256SUMS" in r.stdout, r.stdout
    assert release_server.requests == ["/nothing/v0.9.0/SHA256SUMS"]
