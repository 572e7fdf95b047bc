"""Helpers shared by the integration tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
EVIL = FIXTURES / "attacks" / "a01_sequential_exec_head.pkl"
BENIGN = FIXTURES / "benign" / "torch_linear.pkl"
ZERO = "0" * 40


def run(cmd, *, cwd, env, check=False, timeout=600, input=None) -> subprocess.CompletedProcess:
    """Runs a command with text output; stderr is merged into stdout (what a user sees)."""
    return subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=check,
        input=input,
    )


class GitRepo:
    """A throw-away git repository on branch `main`."""

    def __init__(self, path: Path, env: dict[str, str]):
        self.path = path
        self.env = env
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "commit.gpgsign", "false")

    def git(self, *args: str) -> str:
        r = run(["git", *args], cwd=self.path, env=self.env)
        if r.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} failed ({r.returncode}):\n{r.stdout}")
        return r.stdout

    def write(self, rel: str, data: bytes | str | Path) -> Path:
        p = self.path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, Path):
            shutil.copyfile(data, p)
        elif isinstance(data, bytes):
            p.write_bytes(data)
        else:
            p.write_text(data)
        return p

    def add(self, *rels: str) -> None:
        self.git("add", "--", *rels)

    def commit(self, message: str, *extra: str) -> str:
        self.git("commit", "-q", "--allow-empty", "-m", message, *extra)
        return self.head()

    def head(self, rev: str = "HEAD") -> str:
        return self.git("rev-parse", rev).strip()
