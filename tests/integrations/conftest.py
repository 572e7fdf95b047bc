"""Shared fixtures for the integration tests (pre-commit hooks, GitHub Action, GitLab CI).

Every test works in throw-away git repositories under pytest's tmp_path, with an environment
scrubbed of anything that would change what picklegate or git does (GITHUB_*, GITLAB_CI,
CI_*, PRE_COMMIT*, GIT_*, a user's global git config and hooks), and with the picklegate
binary from $PICKLEGATE_BIN or target/release/picklegate."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from _integ import REPO, GitRepo  # noqa: E402

_SCRUB_PREFIXES = ("GITHUB_", "RUNNER_", "ACTIONS_", "CI_", "GITLAB_", "PRE_COMMIT", "GIT_", "PICKLEGATE_")
_SCRUB_NAMES = {"CI", "NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE", "SKIP"}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: builds picklegate from source through pre-commit (minutes)")


@pytest.fixture(scope="session")
def picklegate_bin() -> Path:
    """$PICKLEGATE_BIN or target/release/picklegate; a missing binary is a failure, not a skip."""
    p = Path(os.environ.get("PICKLEGATE_BIN", "target/release/picklegate"))
    if not p.is_absolute():
        p = REPO / p
    if not (p.is_file() and os.access(p, os.X_OK)):
        pytest.fail(f"picklegate binary not found at {p} (build it, or set PICKLEGATE_BIN)")
    return p


@pytest.fixture(scope="session")
def bin_dir(tmp_path_factory, picklegate_bin) -> Path:
    """A directory holding only `picklegate` (a symlink to the binary under test), for PATH."""
    d = tmp_path_factory.mktemp("bin")
    (d / "picklegate").symlink_to(picklegate_bin)
    return d


@pytest.fixture(scope="session")
def base_env(tmp_path_factory) -> dict[str, str]:
    """os.environ without CI/hook/git variables, with a fixed git identity and no user config."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_SCRUB_PREFIXES) and k not in _SCRUB_NAMES
    }
    empty = tmp_path_factory.mktemp("gitconfig") / "config"
    empty.write_text("")
    env.update(
        GIT_CONFIG_GLOBAL=str(empty),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="picklegate tests",
        GIT_AUTHOR_EMAIL="tests@picklegate.invalid",
        GIT_COMMITTER_NAME="picklegate tests",
        GIT_COMMITTER_EMAIL="tests@picklegate.invalid",
        NO_COLOR="1",
        LC_ALL="C.UTF-8",
    )
    return env


@pytest.fixture
def env(base_env, bin_dir, picklegate_bin, tmp_path) -> dict[str, str]:
    """Per-test environment: picklegate on PATH, PICKLEGATE_BIN set, pre-commit's store in tmp."""
    e = dict(base_env)
    e["PATH"] = f"{bin_dir}{os.pathsep}{e.get('PATH', '')}"
    e["PICKLEGATE_BIN"] = str(picklegate_bin)
    e["PRE_COMMIT_HOME"] = str(tmp_path / "pre-commit-home")
    return e


@pytest.fixture
def git_repo(tmp_path, env):
    """Factory: git_repo("name") -> GitRepo under tmp_path."""

    def make(name: str = "work") -> GitRepo:
        return GitRepo(tmp_path / name, env)

    return make


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory, base_env) -> tuple[Path, str]:
    """A committed snapshot of this repository's work tree (tracked and untracked, not ignored
    files), so `pre-commit try-repo` and the GitLab template's source fetch read the hook
    manifest, action and scripts exactly as they are on disk, committed or not. On CI, a fresh
    clone, this is the same content as HEAD. Returns (path, commit)."""
    dest = tmp_path_factory.mktemp("hook-repo") / "picklegate"
    dest.mkdir()
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        env=base_env,
        stdout=subprocess.PIPE,
        check=True,
    ).stdout.split(b"\0")
    for raw in files:
        if not raw:
            continue
        rel = os.fsdecode(raw)
        src = REPO / rel
        if not src.is_file():  # deleted in the work tree but still in the index
            continue
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, out, follow_symlinks=False)
    repo = GitRepo(dest, base_env)
    repo.git("add", "-A")
    commit = repo.commit("snapshot of the picklegate work tree")
    return dest, commit


class ReleaseServer:
    """A GitHub-release stand-in on loopback: `publish()` writes
    TAG/picklegate-TAG-TARGET.tar.gz (the binary under test and this checkout's ci/ scripts,
    laid out as the release workflow packages them) and TAG/SHA256SUMS; `base` is the URL that
    PICKLEGATE_DOWNLOAD_BASE names. `requests` lists the paths served, in order."""

    def __init__(self, root: Path, binary: Path):
        import http.server
        import threading

        self.root = root
        self.binary = binary
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **k):
                super().__init__(*a, directory=str(root), **k)

            def do_GET(self):  # noqa: N802 (http.server's naming)
                outer.requests.append(self.path)
                super().do_GET()

            def log_message(self, *_a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @staticmethod
    def host_target() -> str:
        import platform

        machine = platform.machine().lower()
        return {"x86_64": "x86_64-unknown-linux-musl", "amd64": "x86_64-unknown-linux-musl",
                "aarch64": "aarch64-unknown-linux-musl", "arm64": "aarch64-unknown-linux-musl"}[machine]

    def publish(self, tag: str, target: str | None = None, *, tamper: bool = False,
                listed: bool = True) -> Path:
        import hashlib
        import io
        import tarfile

        target = target or self.host_target()
        name = f"picklegate-{tag}-{target}"
        d = self.root / tag
        d.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            tar.add(self.binary, arcname=f"{name}/picklegate")
            tar.add(REPO / "LICENSE", arcname=f"{name}/LICENSE")
            tar.add(REPO / "ci", arcname=f"{name}/ci")
        data = buf.getvalue()
        sums = f"{hashlib.sha256(data).hexdigest()}  {name}.tar.gz\n" if listed else ""
        sums += f"{'0' * 64}  picklegate-{tag}-other-target.tar.gz\n"
        (d / "SHA256SUMS").write_text(sums)
        if tamper:  # one byte of the archive changes after SHA256SUMS was written
            data = data[:-1] + bytes([data[-1] ^ 1])
        archive = d / f"{name}.tar.gz"
        archive.write_bytes(data)
        return archive

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def release_server(tmp_path, picklegate_bin):
    server = ReleaseServer(tmp_path / "releases", picklegate_bin)
    (tmp_path / "releases").mkdir(exist_ok=True)
    yield server
    server.close()
