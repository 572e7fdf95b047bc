"""The ML artifact corpus (tests/fixtures/ml/, written by tests/fixtures/gen_ml.py; issue 12:
zero false positives on what ML repositories commit, and no false negatives on the risky
files next to them).

1. the manifest lists exactly the files on disk, with valid fields, and the corpus stays small;
2. every benign file loads with its real loader (torch.load, joblib.load, pd.read_pickle,
   pickle.load, ...) in a fresh interpreter and gives the type the manifest records; one
   subprocess per loader kind, never a risky file;
3. every benign file: `picklegate scan [--preset P]... --format json FILE` exits 0 with no
   finding at level deny, really read it as a pickle when it is one, and reports the
   warning-level rules the manifest expects (the append-log's `trailing-pickle`) and the
   format it expects (`unknown` for spaCy's msgpack side files);
4. every risky file exits 1 with the embedded default, under every embedded preset alone,
   under all of them at once, and under the configuration `picklegate policy learn FILE`
   prints for it;
5. the Trainer / timm / Lightning folders scanned as directories (no configuration) exit 0.

Every preset named here must be embedded in the binary (a missing one fails the tests).

SECURITY: risky files are never loaded, not even in a subprocess: only picklegate reads them.
"""

import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import _oracle

ML = _oracle.FIXTURES / "ml"
MANIFEST_PATH = ML / "manifest.json"
MAX_BYTES = 3 * 1024 * 1024
LOADERS = {"pickle", "pickle_stream", "torch", "joblib", "pandas", "dill", "json", "safetensors", "msgpack"}
#: loaders whose files are pickles (or containers of pickles) that picklegate must really read
PICKLE_LOADERS = {"pickle", "pickle_stream", "torch", "joblib", "pandas"}
#: presets the corpus expects; the embedded list is read from the binary as well
EXPECTED_PRESETS = {"default", "python-data", "numpy", "torch", "sklearn", "pandas", "transformers",
                    "joblib", "boosting", "omegaconf"}
#: folders scanned whole with the default policy
FOLDERS = ("hf_trainer_bert", "hf_trainer_gpt2_bin", "timm", "lightning")


def _manifest():
    if not MANIFEST_PATH.exists():
        raise RuntimeError(f"{MANIFEST_PATH} missing: run python3 tests/fixtures/generate.py")
    return json.loads(MANIFEST_PATH.read_text())


MANIFEST = _manifest()
BENIGN = [e for e in MANIFEST if e["expect"] == "pass"]
RISKY = [e for e in MANIFEST if e["expect"] == "refuse"]
BENIGN_PATHS = sorted({e["path"] for e in BENIGN})
RISKY_PATHS = {e["path"] for e in RISKY}
# presets from policies/*.yaml (the embedded ones) plus those the corpus expects
PRESETS = sorted(EXPECTED_PRESETS | {p.stem for p in (_oracle.REPO / "policies").glob("*.yaml")
                                     if p.stem != "sinks"})


def entry_id(e):
    return f"{e['path']}@{'+'.join(e['presets']) or 'default'}"


# ----------------------------------------------------------------------------------------
# Running picklegate
# ----------------------------------------------------------------------------------------
#: an empty directory outside the repository: no .picklegate.yaml is found from it upward
_CWD = tempfile.mkdtemp(prefix="pg-ml-corpus-")
atexit.register(shutil.rmtree, _CWD, True)


def run_pg(bin_, args, cwd=_CWD, timeout=120):
    return subprocess.run([str(bin_), *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def scan(bin_, target, presets=(), extra=(), cwd=_CWD):
    """(returncode, report dict or None, stderr)."""
    args = ["scan", "--format", "json"]
    for p in presets:
        args += ["--preset", p]
    proc = run_pg(bin_, [*args, *extra, target], cwd=cwd)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        report = None
    return proc.returncode, report, proc.stderr


def describe(report):
    """Every finding of a report, one line each: `level rule global (member) @offset`."""
    lines = []
    for f in (report or {}).get("files", []):
        for x in f["findings"]:
            where = f" member {x['member']}" if x.get("member") else ""
            lines.append(f"{x['level']} {x['rule']} {x.get('global') or '-'}{where} @{x.get('offset')}"
                         f" [{os.path.basename(f['path'])}]")
    return lines


_known = {}


def embedded_presets(bin_):
    """The preset names the binary embeds, from its own error message for an unknown one."""
    if "names" not in _known:
        proc = run_pg(bin_, ["scan", "--preset", "no-such-preset-xyz", os.devnull])
        m = re.search(r"known: ([^)]*)\)", proc.stderr)
        assert m, f"cannot list the embedded presets: {proc.stderr!r}"
        _known["names"] = {n.strip() for n in m.group(1).split(",")}
    return _known["names"]


# ----------------------------------------------------------------------------------------
# 1. Manifest sanity
# ----------------------------------------------------------------------------------------
def test_manifest_lists_exactly_the_files():
    on_disk = {str(p.relative_to(ML)) for p in ML.rglob("*") if p.is_file()} - {"manifest.json"}
    listed = {e["path"] for e in MANIFEST}
    assert not listed - on_disk, f"listed but missing: {sorted(listed - on_disk)}"
    assert not on_disk - listed, f"on disk but not in the manifest: {sorted(on_disk - listed)}"
    total = sum((ML / p).stat().st_size for p in on_disk)
    assert total <= MAX_BYTES, f"corpus is {total} bytes (limit {MAX_BYTES})"


def test_manifest_fields():
    seen = set()
    for e in MANIFEST:
        assert set(e) >= {"path", "library", "loader", "presets", "expect", "why"}, e
        assert set(e) <= {"path", "library", "loader", "presets", "expect", "why", "type", "warn_rules",
                          "format"}, e
        assert e["loader"] in LOADERS, e
        assert e["expect"] in ("pass", "refuse"), e
        assert isinstance(e["presets"], list) and all(p in EXPECTED_PRESETS for p in e["presets"]), e
        assert (e["path"], tuple(e["presets"])) not in seen, f"duplicate entry {entry_id(e)}"
        seen.add((e["path"], tuple(e["presets"])))
        if e["expect"] == "pass":
            assert e.get("type"), f"benign entry without the expected type: {e['path']}"
        else:
            assert e["presets"] == [], f"risky entries are checked under every preset: {e['path']}"
    assert not RISKY_PATHS & set(BENIGN_PATHS), "a file cannot be both benign and risky"
    assert BENIGN and RISKY


# ----------------------------------------------------------------------------------------
# 2. Oracle: benign files load with their real loaders
# ----------------------------------------------------------------------------------------
LOADER_SCRIPT = r'''
import json, os, pickle, sys, warnings
warnings.simplefilter("ignore")
MARK = "@@PICKLEGATE_ORACLE@@"
ml, loader, paths = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
manifest = json.load(open(os.path.join(ml, "manifest.json")))
benign = {e["path"] for e in manifest if e["expect"] == "pass"}
risky = {e["path"] for e in manifest if e["expect"] == "refuse"}

def qual(o):
    t = type(o)
    return t.__module__ + "." + t.__qualname__

def msgpack_stream(data):
    """A minimal msgpack reader (fixmap, fixarray, fixstr, positive fixint, nil, bool): the
    spaCy side files are tiny, and msgpack is not a pinned package."""
    pos = 0
    def one():
        nonlocal pos
        b = data[pos]; pos += 1
        if b <= 0x7f: return b
        if 0x80 <= b <= 0x8f: return {one(): one() for _ in range(b & 0x0f)}
        if 0x90 <= b <= 0x9f: return [one() for _ in range(b & 0x0f)]
        if 0xa0 <= b <= 0xbf:
            n = b & 0x1f; s = data[pos:pos + n].decode(); pos += n; return s
        if b == 0xc0: return None
        if b in (0xc2, 0xc3): return b == 0xc3
        raise ValueError("msgpack byte %#x not handled" % b)
    out = []
    while pos < len(data):
        out.append(one())
    return out

def load(p):
    if loader == "pickle":
        with open(p, "rb") as f:
            obj = pickle.load(f)
            assert not f.read(), "bytes after the pickle"
        return [obj]
    if loader == "pickle_stream":
        out, size = [], os.path.getsize(p)
        with open(p, "rb") as f:
            while f.tell() < size:
                out.append(pickle.load(f))
        return out
    if loader == "torch":
        import torch
        return [torch.load(p, weights_only=False, map_location="cpu")]
    if loader == "joblib":
        import joblib
        return [joblib.load(p)]
    if loader == "pandas":
        import pandas as pd
        return [pd.read_pickle(p)]  # compression inferred from the name
    if loader == "json":
        with open(p) as f:
            return [json.load(f)]
    if loader == "safetensors":
        import safetensors.torch
        return [safetensors.torch.load_file(p)]
    if loader == "msgpack":
        with open(p, "rb") as f:
            return msgpack_stream(f.read())
    raise SystemExit("unknown loader " + loader)

for rel in paths:
    # belt and braces: this script never loads a file the manifest calls risky
    if rel in risky or rel not in benign:
        print(MARK, json.dumps({"path": rel, "error": "refusing to load a non-benign file"}), flush=True)
        continue
    try:
        objs = load(os.path.join(ml, rel))
        res = {"path": rel, "types": [qual(o) for o in objs], "error": None}
    except BaseException as e:
        res = {"path": rel, "types": None, "error": "%s: %s" % (type(e).__name__, str(e)[:300])}
    print(MARK, json.dumps(res), flush=True)
'''


def _load_batch(loader, paths):
    env = dict(os.environ, PYTHONHASHSEED="0", TOKENIZERS_PARALLELISM="false")
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run([sys.executable, "-c", LOADER_SCRIPT, str(ML), loader, json.dumps(paths)],
                              capture_output=True, text=True, timeout=600, cwd=cwd, env=env,
                              stdin=subprocess.DEVNULL)
    out = {}
    for line in proc.stdout.splitlines():
        if line.startswith(_oracle.RESULT_MARK):
            r = json.loads(line[len(_oracle.RESULT_MARK):])
            out[r["path"]] = r
    for p in paths:
        out.setdefault(p, {"path": p, "types": None,
                           "error": f"loader {loader} gave no result (rc={proc.returncode}): "
                                    f"{proc.stderr[-800:]}"})
    return out


@pytest.fixture(scope="module")
def loaded():
    by_loader = {}
    for e in BENIGN:
        by_loader.setdefault(e["loader"], [])
        if e["path"] not in by_loader[e["loader"]]:
            by_loader[e["loader"]].append(e["path"])
    results = {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        for r in pool.map(lambda kv: _load_batch(*kv), sorted(by_loader.items())):
            results.update(r)
    return results


BENIGN_BY_PATH = {}
for _e in BENIGN:
    BENIGN_BY_PATH.setdefault(_e["path"], _e)


@pytest.mark.parametrize("rel", BENIGN_PATHS)
def test_benign_loads_with_real_loader(loaded, rel):
    e = BENIGN_BY_PATH[rel]
    r = loaded[rel]
    assert r["error"] is None, f"{rel} ({e['loader']}): {r['error']}"
    assert r["types"], f"{rel}: nothing loaded"
    assert all(t == e["type"] for t in r["types"]), f"{rel}: loaded {r['types']}, manifest says {e['type']}"


# ----------------------------------------------------------------------------------------
# 3. Benign files pass under their preset
# ----------------------------------------------------------------------------------------
@pytest.mark.differential
@pytest.mark.parametrize("e", BENIGN, ids=entry_id)
def test_benign_passes(picklegate_bin, e):
    rc, report, stderr = scan(picklegate_bin, ML / e["path"], e["presets"])
    assert report is not None, f"exit {rc}, no JSON report: {stderr[-1000:]}"
    f = report["files"][0]
    findings = describe(report)
    deny = [x for x in findings if x.startswith("deny ")]
    assert rc == 0 and not deny, (f"{entry_id(e)}: exit {rc}, {len(deny)} deny finding(s):\n  "
                                  + "\n  ".join(deny or findings or [stderr[-500:]]))
    if "format" in e:
        assert f["format"] == e["format"], f"format {f['format']}, expected {e['format']}"
        assert not f["findings"], findings
    elif e["loader"] in PICKLE_LOADERS:
        # a pass that never read the pickle proves nothing
        assert f["format"] != "unknown" and f["streams"] >= 1, (
            f"picklegate did not read {e['path']} as a pickle: format {f['format']}, streams {f['streams']}")
    for rule in e.get("warn_rules", []):
        levels = {x["level"] for x in f["findings"] if x["rule"] == rule}
        assert levels == {"warn"}, f"expected a warn-level {rule} finding, got {findings}"


@pytest.mark.differential
@pytest.mark.parametrize("folder", FOLDERS)
def test_folder_scans_clean(picklegate_bin, folder):
    """What a repository without .picklegate.yaml gets for a whole committed run folder."""
    assert all(e["presets"] == [] for e in BENIGN if e["path"].startswith(folder + "/"))
    rc, report, stderr = scan(picklegate_bin, ML / folder)
    assert report is not None, f"exit {rc}, no JSON report: {stderr[-1000:]}"
    deny = [x for x in describe(report) if x.startswith("deny ")]
    assert rc == 0 and not deny, f"{folder}: exit {rc}:\n  " + "\n  ".join(deny)
    scanned = {Path(f["path"]).resolve() for f in report["files"]}
    expected = {(ML / e["path"]).resolve() for e in BENIGN if e["path"].startswith(folder + "/")}
    assert expected <= scanned, f"not scanned: {sorted(map(str, expected - scanned))}"


# ----------------------------------------------------------------------------------------
# 4. Risky files are refused under every policy
# ----------------------------------------------------------------------------------------
RISKY_CASES = [(e, mode) for e in RISKY for mode in ["default-config", *PRESETS, "all-presets", "learned"]]


def _refused(rc, report, stderr, what):
    assert rc != 2 and report is not None, f"{what}: usage/config error (exit {rc}): {stderr[-1000:]}"
    lines = describe(report)
    assert rc == 1, (f"{what}: exit {rc}: the risky file passed; findings: {lines or 'none'}; "
                     f"format {report['files'][0]['format']}")
    assert any(x.startswith("deny ") for x in lines), lines


@pytest.mark.differential
@pytest.mark.parametrize("e,mode", RISKY_CASES, ids=[f"{e['path']}@{m}" for e, m in RISKY_CASES])
def test_risky_refused(picklegate_bin, e, mode, tmp_path):
    target = ML / e["path"]
    if mode == "default-config":
        rc, report, stderr = scan(picklegate_bin, target)
    elif mode == "all-presets":
        rc, report, stderr = scan(picklegate_bin, target, sorted(embedded_presets(picklegate_bin)))
    elif mode == "learned":
        proc = run_pg(picklegate_bin, ["policy", "learn", target])
        assert proc.stdout.strip(), f"policy learn printed nothing (exit {proc.returncode}): {proc.stderr}"
        (tmp_path / ".picklegate.yaml").write_text(proc.stdout)
        copy = tmp_path / target.name  # next to the configuration, under its `default:` policy
        shutil.copyfile(target, copy)
        check = run_pg(picklegate_bin, ["policy", "check", "--config", tmp_path / ".picklegate.yaml"],
                       cwd=tmp_path)
        assert check.returncode == 0, f"the learned policy does not validate:\n{proc.stdout}\n{check.stderr}"
        rc, report, stderr = scan(picklegate_bin, copy, extra=["--config", tmp_path / ".picklegate.yaml"],
                                  cwd=tmp_path)
        if rc != 1:
            stderr += "\nlearned policy:\n" + proc.stdout
    else:
        assert mode in embedded_presets(picklegate_bin), f"preset {mode} is not embedded in this binary"
        rc, report, stderr = scan(picklegate_bin, target, [mode])
    _refused(rc, report, stderr, f"{e['path']} under {mode}")
