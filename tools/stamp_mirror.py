#!/usr/bin/env python3
"""Writes the pre-commit mirror (pre-commit-mirror/) with a version stamped in.

    python3 tools/stamp_mirror.py VERSION OUT

VERSION defaults to the version in Cargo.toml when given as `-`. OUT must not exist or be
empty (a fresh checkout of the mirror repository keeps its .git)."""
from __future__ import annotations

import pathlib
import re
import shutil
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "pre-commit-mirror"


def cargo_version() -> str:
    m = re.search(r'^version\s*=\s*"([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M)
    if not m:
        raise SystemExit("stamp_mirror: no version in Cargo.toml")
    return m.group(1)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    version = cargo_version() if argv[1] == "-" else argv[1]
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)*([a-z0-9.+-]*)", version):
        print(f"stamp_mirror: `{version}` is not a version", file=sys.stderr)
        return 2
    out = pathlib.Path(argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for src in TEMPLATE.rglob("*"):
        if src.is_dir():
            continue
        dst = out / src.relative_to(TEMPLATE)
        dst.parent.mkdir(parents=True, exist_ok=True)
        text = src.read_text(encoding="utf-8").replace("@VERSION@", version)
        dst.write_text(text, encoding="utf-8")
        shutil.copymode(src, dst)
    print(f"stamp_mirror: wrote the mirror for picklegate {version} to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
