#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from the repository's own files (standard library only).

    python3 fuzz/seeds.py [--out DIR]

scan, sanitize: every tests/fixtures file under 64 KiB (generators and manifests left out).
vm, disasm:     the raw pickles among them, plus the pickles inside their containers
                (zip members, gzip/bz2/xz/lzma payloads, the pickle after an .npy header).
config:         policies/*.yaml (those under 64 KiB), YAML files under tests/, the YAML blocks of the READMEs and
                the configuration strings of tests/*.rs.

File names say where a seed came from (`attacks__a01_….pkl`, `zip__torch_linear.pt__data.pkl`).
A campaign adds hashed names beside them; fuzz/minimize.sh (see fuzz/README.md) keeps both
kinds as long as they add coverage. Existing files are left alone: this only adds.
"""

import argparse
import bz2
import gzip
import io
import lzma
import pathlib
import re
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
LIMIT = 64 << 10
SKIP_NAMES = {"manifest.json"}
SKIP_SUFFIXES = {".py"}
# Opcodes a pickle stream can start with (protocol 2+ starts with PROTO; older ones with
# anything, so only clearly textual or binary-file magics are excluded below).
OTHER_MAGIC = (b"PK", b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"\x93NUMPY", b"\x28\xb5\x2f\xfd",
               b"\x04\x22\x4d\x18", b"7z\xbc\xaf", b"\x89PNG", b"version https://git-lfs")


def fixtures():
    for p in sorted((ROOT / "tests" / "fixtures").rglob("*")):
        if (p.is_file() and p.stat().st_size < LIMIT and p.name not in SKIP_NAMES
                and p.suffix not in SKIP_SUFFIXES):
            yield p


def seed_name(p):
    return "__".join(p.relative_to(ROOT / "tests" / "fixtures").parts)


def looks_like_raw_pickle(data):
    return bool(data) and data[:1] in (b"\x80", b"(", b"c", b"]", b"}", b"I", b"K", b"N",
                                       b"S", b"V", b"X", b"\x8c", b"\x93", b"l", b"d", b"t") \
        and not data.startswith(OTHER_MAGIC)


def inner_pickles(name, data):
    """(name, bytes) of pickles inside a container, one level deep."""
    out = []
    try:
        if data.startswith(b"\x1f\x8b"):
            out.append((name + "__gunzip", gzip.decompress(data)))
        elif data.startswith(b"BZh"):
            out.append((name + "__bunzip2", bz2.decompress(data)))
        elif data.startswith(b"\xfd7zXZ") or data.startswith(b"\x5d\x00\x00"):
            out.append((name + "__unxz", lzma.decompress(data)))
        elif data.startswith(b"\x93NUMPY"):
            major = data[6]
            hlen = int.from_bytes(data[8:10] if major == 1 else data[8:12], "little")
            start = (10 if major == 1 else 12) + hlen
            out.append((name + "__payload", data[start:]))
        elif data.startswith(b"PK"):
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                for info in z.infolist():
                    body = z.read(info)
                    member = info.filename.replace("/", "_")
                    if info.filename.endswith((".pkl", ".debug_pkl")):
                        out.append((f"zip__{name}__{member}", body))
                    elif info.filename.endswith(".npy"):
                        out.extend(inner_pickles(f"zip__{name}__{member}", body))
    except Exception:  # a deliberately broken container: its raw bytes are seeds already
        return []
    return [(n, b) for n, b in out if looks_like_raw_pickle(b) and len(b) < LIMIT]


def rust_yaml_strings():
    """Configuration text quoted in tests/*.rs (plain "..." and b"..." literals)."""
    lit = re.compile(r'b?"(version: 1(?:[^"\\]|\\.)*)"', re.S)
    for rs in sorted((ROOT / "tests").glob("*.rs")):
        for i, m in enumerate(lit.finditer(rs.read_text())):
            text = m.group(1)
            if "{" in text and "}" in text and "{name:" not in text and "{used-as" not in text:
                text = re.sub(r"\{[a-z_]*\}", "0" * 64, text)  # format!() placeholders
            text = (text.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
                    .replace("\\\n", "\n"))
            yield f"{rs.stem}_{i:02}.yaml", text.encode()


def readme_yaml_blocks():
    for md in (ROOT / "README.md", ROOT / "policies" / "README.md"):
        blocks = re.findall(r"```yaml\n(.*?)```", md.read_text(), re.S)
        for i, b in enumerate(blocks):
            yield f"{md.parent.name if md.parent != ROOT else 'root'}_readme_{i:02}.yaml", b.encode()


def write(dir_, name, data, written):
    dir_.mkdir(parents=True, exist_ok=True)
    p = dir_ / name
    if not p.exists():
        p.write_bytes(data)
        written[dir_.name] = written.get(dir_.name, 0) + 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=pathlib.Path, default=ROOT / "fuzz" / "corpus")
    a = ap.parse_args()
    written = {}
    for p in fixtures():
        data = p.read_bytes()
        name = seed_name(p)
        for t in ("scan", "sanitize"):
            write(a.out / t, name, data, written)
        pickles = [(name, data)] if looks_like_raw_pickle(data) else []
        pickles += inner_pickles(name, data)
        for n, b in pickles:
            for t in ("vm", "disasm"):
                write(a.out / t, n, b, written)
    for p in sorted((ROOT / "policies").glob("*.yaml")) + sorted((ROOT / "tests").rglob("*.y*ml")):
        if p.stat().st_size >= LIMIT:
            continue
        write(a.out / "config", "__".join(p.relative_to(ROOT).parts), p.read_bytes(), written)
    for n, b in list(rust_yaml_strings()) + list(readme_yaml_blocks()):
        write(a.out / "config", n, b, written)
    for t, n in sorted(written.items()):
        print(f"{t}: {n} new seeds")


if __name__ == "__main__":
    main()
