"""Container fixtures (tests/fixtures/containers/) against the real loaders.

* every attack with `canary: true` fires the canary when loaded the victim's way (its
  `loader` chain) in a fresh interpreter;
* every attack with `canary: false` and a loader does NOT fire it, and, where the manifest
  records the loader's refusal (`expect_error`), fails with that error: the manifest's
  claims about which tampering tricks a loader refuses stay true;
* every benign file loads with its loader without error and without touching the canary.

Loader chains ("step|step|final", several chains separated by ";"):

  unwrap steps  gzip, gzip*N, bz2, xz, lzma, zstd, lz4, zlib     decompress the whole stream
                zip:<member> (zipfile), tar:<member> (tarfile, any compression), 7z:<member> (py7zr)
  final         pickle.loads, torch_weights_only_false, torch_weights_only_true, torch_jit_load,
                joblib_load, numpy_load (allow_pickle=True; every npz member and every object
                array is touched), pandas_read_pickle, safetensors_load, none

After unwrap steps the bytes are written to a temporary file named after the last member
(pandas infers the compression from the name), and the final loader opens that file.
Exceptions raised after a payload ran are expected and ignored."""

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import _oracle

CONTAINERS = _oracle.FIXTURES / "containers"
FORMATS = {"pickle", "torch-zip", "torch-legacy", "torchscript", "zip", "tar", "gzip", "bz2", "xz",
           "zlib", "lz4", "zstd", "7z", "npy", "npz", "joblib", "safetensors", "lfs-pointer", "unknown"}
RULES = {"code-execution", "global-not-allowed", "unresolved-global", "unresolved-call",
         "build-on-global", "build-not-allowed", "method-call", "extension-code", "persistent-id",
         "malformed-pickle", "budget-exceeded", "frame-violation", "trailing-pickle", "trailing-data",
         "zip-tampering", "zip-duplicate-member", "zip-overlapping-members", "hidden-pickle",
         "extension-mismatch", "not-inspectable", "storage-reference", "torchscript", "legacy-magic",
         "lfs-pointer"}
FINAL = {"pickle.loads", "torch_weights_only_false", "torch_weights_only_true", "torch_jit_load",
         "joblib_load", "numpy_load", "pandas_read_pickle", "safetensors_load", "none"}
UNWRAP = {"gzip", "bz2", "xz", "lzma", "zstd", "lz4", "zlib"}
WORKERS = max(2, min(4, os.cpu_count() or 2))


def load_manifest():
    path = CONTAINERS / "manifest.json"
    if not path.exists():
        raise RuntimeError(f"{path} missing: run python3 tests/fixtures/generate.py")
    with open(path) as f:
        return json.load(f)


MANIFEST = load_manifest()
FIRING = [e for e in MANIFEST if e["kind"] == "attack" and e["canary"]]
REFUSED = [e for e in MANIFEST if e["kind"] == "attack" and not e["canary"] and e["loader"] != "none"]
BENIGN = [e for e in MANIFEST if e["kind"] == "benign" and e["loader"] != "none"]


def check_chain(chain):
    steps = chain.split("|")
    assert steps[-1] in FINAL, chain
    for s in steps[:-1]:
        kind, sep, arg = s.partition(":")
        if kind in ("zip", "tar", "7z"):
            assert sep and arg, chain
        else:
            base, star, n = kind.partition("*")
            assert base in UNWRAP and not sep and (not star or n.isdigit()), chain


LOADER_CODE = _oracle.CHAIN_LIB + r'''
results = []
for chain in chains.split(";"):
    steps = chain.split("|")
    error, summary = None, None
    try:
        summary = describe(load_chain(path, chain))
    except BaseException as e:  # exceptions raised after the payload are expected
        error = "%s: %s" % (type(e).__name__, str(e)[:600])
    results.append({"chain": chain, "error": error, "summary": summary})
sys.stdout.flush()
print(MARK, json.dumps(results), flush=True)
'''


def run_chain(path, chains, canary_path, timeout=120, canary_wait=0.0):
    canary_path = Path(canary_path)
    if canary_path.exists():
        canary_path.unlink()
    env = dict(os.environ)
    env["PICKLEGATE_CANARY"] = str(canary_path)
    env.setdefault("PYTHONHASHSEED", "0")
    proc = subprocess.run([sys.executable, "-c", LOADER_CODE, str(path), chains], env=env,
                          capture_output=True, text=True, timeout=timeout,
                          cwd=str(canary_path.parent), stdin=subprocess.DEVNULL)
    out = {"results": None, "returncode": proc.returncode, "stderr": proc.stderr[-2000:]}
    for line in proc.stdout.splitlines():
        if line.startswith(_oracle.RESULT_MARK):
            out["results"] = json.loads(line[len(_oracle.RESULT_MARK):])
    deadline = time.monotonic() + canary_wait
    while True:
        content = canary_path.read_text(errors="replace") if canary_path.exists() else None
        if (content and content.strip()) or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    out["canary"] = content
    return out


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """Every subprocess load, once, in parallel: file -> run_chain result."""
    base = tmp_path_factory.mktemp("containers")
    jobs = {}
    for e in FIRING:
        jobs[e["file"]] = (e["loader"], 5.0)   # shell payloads write the canary synchronously
    for e in REFUSED + BENIGN:
        jobs[e["file"]] = (e["loader"], 0.0)

    def one(i_file):
        i, file = i_file
        d = base / f"job{i}"
        d.mkdir()
        chains, wait = jobs[file]
        return file, run_chain(CONTAINERS / file, chains, d / "canary", canary_wait=wait)

    with ThreadPoolExecutor(WORKERS) as ex:
        return dict(ex.map(one, enumerate(sorted(jobs))))


def test_manifest_is_consistent():
    files = {f for f in os.listdir(CONTAINERS) if f != "manifest.json"}
    assert files == {e["file"] for e in MANIFEST}
    assert len(MANIFEST) == len(files)
    total = sum((CONTAINERS / f).stat().st_size for f in files)
    assert total < 8 * 1024 * 1024, total
    for e in MANIFEST:
        assert set(e) >= {"file", "kind", "format", "rules", "member", "canary", "loader",
                          "default_policy", "note"}, e
        assert e["kind"] in ("benign", "attack"), e
        assert e["format"] in FORMATS, e
        assert set(e["rules"]) <= RULES, e
        assert e["member"] is None or (isinstance(e["member"], str) and e["member"]), e
        assert isinstance(e["canary"], bool) and isinstance(e["default_policy"], bool), e
        for chain in e["loader"].split(";"):
            check_chain(chain)
        if e["kind"] == "benign":
            assert not e["canary"] and e["member"] is None, e
            assert set(e["rules"]) <= {"torchscript", "lfs-pointer", "not-inspectable", "extension-mismatch"}, e
            if {"torchscript", "not-inspectable"} & set(e["rules"]):
                assert not e["default_policy"], e
        else:
            assert e["rules"] and not e["default_policy"], e
            if e["canary"]:
                assert e["loader"] != "none", e
        if "expect_error" in e:
            assert e["kind"] == "attack" and not e["canary"], e


@pytest.mark.parametrize("entry", FIRING, ids=[e["file"] for e in FIRING])
def test_attack_fires(entry, runs):
    r = runs[entry["file"]]
    assert r["canary"] is not None and r["canary"].strip() == "fired", (
        f"canary did not fire for {entry['file']} (loader {entry['loader']}): "
        f"results={r['results']!r} stderr={r['stderr'][-800:]!r}")


@pytest.mark.parametrize("entry", REFUSED, ids=[e["file"] for e in REFUSED])
def test_refused_attack_does_not_fire(entry, runs):
    """canary: false is the loader's real behaviour (and its refusal is the recorded one)."""
    r = runs[entry["file"]]
    assert r["canary"] is None, f"{entry['file']} fired although the manifest says canary: false"
    assert r["results"], r["stderr"]
    if "expect_error" in entry:
        err = r["results"][-1]["error"] or ""
        assert entry["expect_error"] in err, (entry["file"], err)


@pytest.mark.parametrize("entry", BENIGN, ids=[e["file"] for e in BENIGN])
def test_benign_loads_without_canary(entry, runs):
    r = runs[entry["file"]]
    assert r["results"] is not None, f"{entry['file']}: no result rc={r['returncode']} {r['stderr']}"
    for res in r["results"]:
        assert res["error"] is None, f"{entry['file']} [{res['chain']}]: {res['error']}"
    assert r["canary"] is None, f"{entry['file']} touched the canary: {r['canary']!r}"


def test_lfs_pointer_is_a_pointer():
    for e in MANIFEST:
        if e["format"] == "lfs-pointer":
            lines = (CONTAINERS / e["file"]).read_text().splitlines()
            assert lines[0] == "version https://git-lfs.github.com/spec/v1"
            assert lines[1].startswith("oid sha256:") and len(lines[1]) == len("oid sha256:") + 64
            assert lines[2].startswith("size ") and lines[2][5:].isdigit()
