"""The Python package of the binary (pyproject.toml, maturin `bindings = "bin"`) and the
pre-commit mirror (pre-commit-mirror/, stamped by tools/stamp_mirror.py).

The wheel is built from this checkout (reusing target/release), installed into a fresh
virtual environment, and run; the mirror is installed by the real pre-commit client with no
cargo on PATH and no index (the wheel comes from a local find-links directory)."""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from pathlib import Path

import pytest
import yaml

from _integ import BENIGN, EVIL, REPO, run

PRE_COMMIT = [sys.executable, "-m", "pre_commit"]


def cargo_version() -> str:
    m = re.search(r'^version\s*=\s*"([^"]+)"', (REPO / "Cargo.toml").read_text(), re.M)
    assert m
    return m.group(1)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheels")
    r = run([sys.executable, "-m", "maturin", "build", "--release", "-o", str(out)],
            cwd=REPO, env=dict(os.environ), timeout=1800)
    assert r.returncode == 0, r.stdout
    (whl,) = out.glob("picklegate-*.whl")
    assert whl.name.startswith(f"picklegate-{cargo_version()}-py3-none-"), whl.name
    return whl


def no_cargo_path(base: str, shims: Path) -> str:
    """PATH without any directory that holds cargo, rustc or a picklegate binary; a directory
    that also holds git (a distribution's /usr/bin) stays, behind shims that make cargo and
    rustc fail, so nothing can build picklegate from source."""
    shims.mkdir(exist_ok=True)
    for tool in ("cargo", "rustc", "rustup"):
        shim = shims / tool
        shim.write_text("#!/bin/sh\necho \"$0: no Rust toolchain in this test\" >&2\nexit 127\n")
        shim.chmod(0o755)
    keep = [str(shims)]
    for d in base.split(os.pathsep):
        tools = [t for t in ("cargo", "rustc", "rustup", "picklegate") if (Path(d) / t).exists()] if d else ["-"]
        if not tools or (Path(d) / "git").exists() and "picklegate" not in tools:
            keep.append(d)
    return os.pathsep.join(keep)


def test_wheel_installs_the_binary_and_blocks_an_attack(wheel, base_env, tmp_path):
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, env=base_env, check=True)
    e = dict(base_env, PATH=no_cargo_path(base_env["PATH"], tmp_path / "shims"), PIP_NO_INDEX="1")
    r = run([venv / "bin" / "python", "-m", "pip", "install", "-q", str(wheel)], cwd=tmp_path, env=e)
    assert r.returncode == 0, r.stdout
    exe = venv / "bin" / "picklegate"
    r = run([exe, "--version"], cwd=tmp_path, env=e)
    assert r.returncode == 0 and cargo_version() in r.stdout, r.stdout
    attack = tmp_path / "model.pt"
    shutil.copy(EVIL, attack)
    r = run([exe, "scan", str(attack)], cwd=tmp_path, env=e)
    assert r.returncode == 1 and "code-execution" in r.stdout, r.stdout
    benign = tmp_path / "linear.pkl"
    shutil.copy(BENIGN, benign)
    r = run([exe, "scan", str(benign)], cwd=tmp_path, env=e)
    assert r.returncode == 0, r.stdout


def test_stamped_mirror_has_the_version_everywhere(tmp_path):
    out = tmp_path / "mirror"
    r = run([sys.executable, REPO / "tools" / "stamp_mirror.py", "-", out], cwd=REPO, env=dict(os.environ))
    assert r.returncode == 0, r.stdout
    v = cargo_version()
    assert f'"picklegate=={v}"' in (out / "pyproject.toml").read_text()
    assert "@VERSION@" not in "".join(p.read_text() for p in out.rglob("*") if p.is_file())
    hooks = yaml.safe_load((out / ".pre-commit-hooks.yaml").read_text())
    main = {h["id"]: h for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    for h in hooks:
        assert h["language"] == "python"
        # The same behaviour as the from-source hooks of the same id.
        twin = main["picklegate-system" if h["id"] == "picklegate" else h["id"]]
        for key in ("entry", "pass_filenames", "require_serial", "types", "stages"):
            assert h[key] == twin[key], (h["id"], key)
    r = run([sys.executable, REPO / "tools" / "stamp_mirror.py", "not a version", tmp_path / "x"],
            cwd=REPO, env=dict(os.environ))
    assert r.returncode == 2


def test_mirror_hook_installs_the_wheel_without_cargo(wheel, git_repo, base_env, tmp_path):
    """The mirror's `language: python` hook through the real pre-commit, with no cargo (and
    no picklegate) on PATH and no package index: the wheel comes from find-links."""
    import virtualenv  # pre-commit's own dependency: its seed wheels give setuptools offline
    links = tmp_path / "links"
    links.mkdir()
    shutil.copy(wheel, links)
    embed = Path(virtualenv.__file__).parent / "seed" / "wheels" / "embed"
    for w in embed.glob("setuptools-*.whl"):
        shutil.copy(w, links)
    mirror = git_repo("mirror")
    r = run([sys.executable, REPO / "tools" / "stamp_mirror.py", "-", mirror.path], cwd=REPO, env=dict(os.environ))
    assert r.returncode == 0, r.stdout
    mirror.add(".")
    mirror.commit("picklegate mirror")
    rev = mirror.head()

    repo = git_repo("user")
    repo.write("README.md", "models\n")
    repo.write(".pre-commit-config.yaml", yaml.safe_dump(
        {"repos": [{"repo": str(mirror.path), "rev": rev, "hooks": [{"id": "picklegate"}]}]}))
    repo.add("README.md", ".pre-commit-config.yaml")
    repo.commit("initial", "--no-verify")
    e = dict(base_env, PATH=no_cargo_path(base_env["PATH"], tmp_path / "shims"), PIP_NO_INDEX="1",
             PIP_FIND_LINKS=str(links), PRE_COMMIT_HOME=str(tmp_path / "store"))
    r = run([*PRE_COMMIT, "install"], cwd=repo.path, env=e)
    assert r.returncode == 0, r.stdout
    start = time.monotonic()
    r = run([*PRE_COMMIT, "install-hooks"], cwd=repo.path, env=e)
    took = time.monotonic() - start
    assert r.returncode == 0, r.stdout
    print(f"mirror hook environment installed in {took:.1f} s")

    repo.write("checkpoints/ckpt.pt", EVIL)
    repo.add("checkpoints/ckpt.pt")
    r = run(["git", "commit", "-m", "a model"], cwd=repo.path, env=e)
    assert r.returncode != 0, r.stdout
    assert "code-execution" in r.stdout, r.stdout
    repo.git("rm", "-q", "--cached", "checkpoints/ckpt.pt")
    repo.write("checkpoints/linear.pkl", BENIGN)
    repo.add("checkpoints/linear.pkl")
    r = run(["git", "commit", "-m", "a benign model"], cwd=repo.path, env=e)
    assert r.returncode == 0, r.stdout
