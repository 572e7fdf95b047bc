"""Bypass fixtures (tests/fixtures/bypasses/, written by gen_bypasses.py) and ordinary files
(tests/fixtures/ordinary/).

* every bypass fires the canary under its manifest loader, in a fresh interpreter: the
  trick is real on the pinned libraries, not a theory;
* `picklegate scan FILE` refuses every bypass (exit 1): one test id per file;
* every ordinary file is reported as `unknown` (or its real, non-pickle format) with exit 0
  and no finding: a text or image file is never a pickle, whatever its first bytes spell
  as opcodes, and a non-pickle under a "safe" name is no extension mismatch.

Loader chains are those of _oracle.CHAIN_LIB (see test_containers_fire.py) plus:

  final   pickle.load         the C unpickler on the open file (what numpy, pandas, torch use)
          pickle._Unpickler   the pure-Python unpickler on the open file (what joblib uses)
  unwrap  tarz:<member>       tarfile.open(ignore_zeros=True), as `tar --ignore-zeros` reads
          gnutar:<member>     GNU tar (`tar -xf ARCHIVE MEMBER`, its exit status ignored)
"""

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import _oracle

BYPASSES = _oracle.FIXTURES / "bypasses"
ORDINARY = _oracle.FIXTURES / "ordinary"
WORKERS = max(2, min(4, os.cpu_count() or 2))
FINALS = {"pickle.loads", "pickle.load", "pickle._Unpickler", "torch_weights_only_false",
          "joblib_load", "numpy_load", "pandas_read_pickle"}
UNWRAPS = {"zip", "tar", "tarz", "gnutar"}


def _manifest(d):
    path = d / "manifest.json"
    if not path.exists():
        raise RuntimeError(f"{path} missing: run python3 tests/fixtures/generate.py")
    return json.loads(path.read_text())


MANIFEST = _manifest(BYPASSES)
ORDINARY_MANIFEST = _manifest(ORDINARY)

# CHAIN_LIB's unwrap/final, extended by the loaders above (load_chain looks both up by name)
LOADER_CODE = _oracle.CHAIN_LIB + r'''
_chain_unwrap, _chain_final = unwrap, final

def unwrap(kind, arg, data, name):
    if kind == "tarz":
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*", ignore_zeros=True) as t:
            return t.extractfile(arg).read(), os.path.basename(arg)
    if kind == "gnutar":
        import subprocess
        d = tempfile.mkdtemp(dir=tmp)
        with open(os.path.join(d, "archive.tar"), "wb") as f:
            f.write(data)
        os.mkdir(os.path.join(d, "x"))
        # exit status 2 after "Skipping to next header": the members are extracted all the same
        subprocess.run(["tar", "-xf", os.path.join(d, "archive.tar"), "-C", os.path.join(d, "x"), arg],
                       stdin=subprocess.DEVNULL, capture_output=True)
        with open(os.path.join(d, "x", arg), "rb") as f:
            return f.read(), os.path.basename(arg)
    return _chain_unwrap(kind, arg, data, name)

def final(loader, p):
    if loader == "pickle.load":
        with open(p, "rb") as f:
            return pickle.load(f)
    if loader == "pickle._Unpickler":
        with open(p, "rb") as f:
            return pickle._Unpickler(f).load()
    return _chain_final(loader, p)

error, summary = None, None
try:
    summary = describe(load_chain(path, chains))
except BaseException as e:  # exceptions raised after the payload are expected
    error = "%s: %s" % (type(e).__name__, str(e)[:600])
sys.stdout.flush()
print(MARK, json.dumps({"error": error, "summary": summary}), flush=True)
'''


def run_bypass(path, chain, canary_path, timeout=180, canary_wait=5.0):
    canary_path = Path(canary_path)
    if canary_path.exists():
        canary_path.unlink()
    env = dict(os.environ, PICKLEGATE_CANARY=str(canary_path))
    env.setdefault("PYTHONHASHSEED", "0")
    proc = subprocess.run([sys.executable, "-c", LOADER_CODE, str(path), chain], env=env,
                          capture_output=True, text=True, timeout=timeout,
                          cwd=str(canary_path.parent), stdin=subprocess.DEVNULL)
    out = {"result": None, "returncode": proc.returncode, "stderr": proc.stderr[-2000:]}
    for line in proc.stdout.splitlines():
        if line.startswith(_oracle.RESULT_MARK):
            out["result"] = json.loads(line[len(_oracle.RESULT_MARK):])
    deadline = time.monotonic() + canary_wait
    while True:  # os.system payloads write synchronously; give a slow interpreter a moment
        content = canary_path.read_text(errors="replace") if canary_path.exists() else None
        if (content and content.strip()) or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    out["canary"] = content
    return out


def scan(binary, path, fmt="json"):
    proc = subprocess.run([str(binary), "scan", "--format", fmt, str(path)], capture_output=True,
                          text=True, timeout=300, stdin=subprocess.DEVNULL, cwd=str(path.parent))
    return proc


@pytest.fixture(scope="session")
def fired(tmp_path_factory):
    """Every bypass loaded once with its loader, in parallel: file -> run_bypass result."""
    base = tmp_path_factory.mktemp("bypasses")

    def one(i_entry):
        i, e = i_entry
        d = base / f"job{i}"
        d.mkdir()
        return e["file"], run_bypass(BYPASSES / e["file"], e["loader"], d / "canary")

    with ThreadPoolExecutor(WORKERS) as ex:
        return dict(ex.map(one, enumerate(MANIFEST)))


def test_manifest_is_consistent():
    files = {f for f in os.listdir(BYPASSES) if f != "manifest.json"}
    assert files == {e["file"] for e in MANIFEST}
    assert len(MANIFEST) == len(files)
    families = {}
    for e in MANIFEST:
        assert set(e) == {"file", "family", "loader", "description"}, e
        assert isinstance(e["family"], int) and 1 <= e["family"] <= 10, e
        assert e["description"], e
        steps = e["loader"].split("|")
        assert steps[-1] in FINALS, e
        for s in steps[:-1]:
            kind, sep, arg = s.partition(":")
            assert kind in UNWRAPS and sep and arg, e
        families.setdefault(e["family"], []).append(e["file"])
    # every family, several variants each
    assert sorted(families) == list(range(1, 11)), sorted(families)
    for fam, fs in families.items():
        assert len(fs) >= 3, (fam, fs)
    files = {f for f in os.listdir(ORDINARY) if f != "manifest.json"}
    assert files == {e["file"] for e in ORDINARY_MANIFEST}


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_bypass_fires(entry, fired):
    r = fired[entry["file"]]
    assert r["canary"] is not None and r["canary"].strip() == "fired", (
        f"canary did not fire for {entry['file']} (loader {entry['loader']}): "
        f"result={r['result']!r} stderr={r['stderr'][-800:]!r}")


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
def test_picklegate_refuses_bypass(entry, picklegate_bin):
    proc = scan(picklegate_bin, BYPASSES / entry["file"])
    assert proc.returncode == 1, (
        f"picklegate scan exited {proc.returncode} on {entry['file']} (family {entry['family']}: "
        f"{entry['description']}); it runs code under {entry['loader']}.\n{proc.stdout[-3000:]}"
        f"\n{proc.stderr[-1000:]}")


@pytest.mark.parametrize("entry", ORDINARY_MANIFEST, ids=[e["file"] for e in ORDINARY_MANIFEST])
def test_ordinary_file_is_not_a_pickle(entry, picklegate_bin):
    proc = scan(picklegate_bin, ORDINARY / entry["file"])
    assert proc.returncode == 0, (entry["file"], proc.returncode, proc.stdout[-3000:], proc.stderr)
    report = json.loads(proc.stdout)
    (f,) = report["files"]
    assert f["format"] in entry["formats"], (entry["file"], f["format"], entry["formats"])
    assert f["findings"] == [], (entry["file"], f["findings"])
