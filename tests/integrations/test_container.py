"""The Dockerfile: a static binary in a `scratch` image, built from the locked dependencies.
No container engine runs in CI here, so the file's shape is checked; where `docker` exists
the image is built and run too."""

from __future__ import annotations

import shutil

import pytest

from _integ import EVIL, REPO, run

DOCKERFILE = REPO / "Dockerfile"


def stages() -> list[list[str]]:
    """Instructions per stage, continuation lines joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    out: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            out.append([])
        out[-1].append(line)
    return out


def test_the_final_image_holds_only_the_static_binary():
    build, final = stages()
    assert build[0].startswith("FROM rust:") and "-alpine" in build[0], "musl: a static binary"
    assert any("cargo build --release --locked" in i for i in build)
    assert final[0] == "FROM scratch"
    copies = [i for i in final if i.startswith("COPY")]
    assert all(i.startswith("COPY --from=build") or "LICENSE" in i for i in copies), copies
    assert 'ENTRYPOINT ["/usr/local/bin/picklegate"]' in final, "exec form: no shell in scratch"
    assert any(i.startswith("USER ") and not i.startswith("USER 0") for i in final), "not root"


def test_the_build_context_leaves_out_build_output_and_git():
    ignored = (REPO / ".dockerignore").read_text().split()
    assert "target/" in ignored and ".git/" in ignored


def docker_daemon() -> bool:
    if shutil.which("docker") is None:
        return False
    import subprocess
    return subprocess.run(["docker", "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


@pytest.mark.skipif(not docker_daemon(), reason="no docker daemon on this machine")
def test_image_builds_and_blocks_an_attack(env, tmp_path):
    r = run(["docker", "build", "-q", "-t", "picklegate-test", str(REPO)], cwd=REPO, env=env, timeout=1800)
    assert r.returncode == 0, r.stdout
    (tmp_path / "m.pkl").write_bytes(EVIL.read_bytes())
    r = run(["docker", "run", "--rm", "-v", f"{tmp_path}:/repo:ro", "picklegate-test", "scan", "m.pkl"],
            cwd=tmp_path, env=env)
    assert r.returncode == 1 and "code-execution" in r.stdout, r.stdout
