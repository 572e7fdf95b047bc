"""Loader-differential oracle (see _audit.py): for every file and every loader, picklegate either
refuses the file (a deny-level finding: exit code 1) or reports, in that file's `readings`, every
global the REAL loader asked for (pickle's `find_class` audit event, recorded by a worker that
aborts the load at the first non-harmless name, so nothing attacker-chosen runs).

Files: every entry of every tests/fixtures/*/manifest.json (benign, attacks, containers,
bypasses, ordinary, and reproducers/: the minimised disagreements tools/mutate.py found, which
stay as regression tests after the fix), and the cases of tools/mutate.py's fixed CI seed.

Loaders per file: all of _audit.UNIVERSAL (pickle.load, pickle.loads, pickle._Unpickler,
torch.load(weights_only=False), joblib.load, numpy.load(allow_pickle=True), pandas.read_pickle):
each takes any path and picklegate decides by content, so each is a reading of every file. Plus
what the manifest names on top: its loader chain's unwrap steps (zip:/tar:/tarz:/gnutar:/7z:
member extraction, decompression) followed by the chain's final loader, `torch_data_pkl`
(pickle.Unpickler with torch's persistent_load) and `pickle.loads_loop`.

A name whose top-level module does not exist in the loaders' interpreter is not required (its
import fails before any code runs: an ordinary text file can spell `c at\ndog`).

There are no skips: a missing binary, a worker that cannot start, a blocked audit event or a
timeout is a failure, and every disagreement is listed (file, loader, global, picklegate's
verdict)."""

import importlib.util
import json
import os
import sys
import time

import pytest

import _audit
import _oracle

FIXTURES = _oracle.FIXTURES
# The CI seed of the mutation fuzzer: fixed, so a failure is reproducible with
# `python3 tools/mutate.py --seed 1 --cases 3000 --out DIR` (see tests/README.md).
CI_SEED, CI_CASES = 1, 3000

FINAL_TO_LOADER = {
    "pickle.loads": "pickle_loads",
    "pickle.load": "pickle",
    "pickle.load_file": "pickle",
    "pickle._Unpickler": "pickle_py",
    "pickle.loads_loop": "pickle_loop",
    "torch_weights_only_false": "torch",
    # weights_only=True and TorchScript use torch's own unpicklers (no find_class events); the
    # reading an attacker targets is the same file under weights_only=False
    "torch_weights_only_true": "torch",
    "torch_jit_load": "torch",
    "torch_data_pkl": "torch_data_pkl",
    "joblib_load": "joblib",
    "numpy_load": "numpy",
    "pandas_read_pickle": "pandas",
    "safetensors_load": None,  # not a pickle reader
    "none": None,
}
UNWRAP_KINDS = {"zip", "tar", "tarz", "gnutar", "7z", "gzip", "bz2", "xz", "lzma", "zlib", "zstd", "lz4"}


def _load_mutate():
    spec = importlib.util.spec_from_file_location("pg_mutate", _oracle.REPO / "tools" / "mutate.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["pg_mutate"] = mod
    spec.loader.exec_module(mod)
    return mod


def manifests():
    """Every tests/fixtures/*/manifest.json (benign, attacks, containers, reproducers and
    whatever else lands there): [(dir, entries)]."""
    out = []
    for m in sorted(FIXTURES.glob("*/manifest.json")):
        entries = json.loads(m.read_text())
        assert isinstance(entries, list), m
        out.append((m.parent, entries))
    return out


def _chains(entry):
    loader = entry.get("loader")
    if not loader:
        return []
    return loader.split(";") if isinstance(loader, str) else list(loader)


def manifest_requests():
    """(requests, files, unknown chains): every fixture with its loaders."""
    reqs, files, unknown = [], [], []
    for d, entries in manifests():
        for e in entries:
            # The ML corpus (tests/fixtures/ml) names files by `path` and its loaders in its
            # own terms (test_ml_corpus.py loads them): here it gets the universal loaders.
            ml = "file" not in e
            path = str(d / (e["path"] if ml else e["file"]))
            if path in files:
                continue
            files.append(path)
            setup = _oracle.setup_arg(e) if e.get("setup") else None
            seen = set()
            for loader in _audit.UNIVERSAL:
                reqs.append({"file": path, "loader": loader, "unwrap": [], "setup": setup})
                seen.add((loader, ()))
            for chain in [] if ml else _chains(e):
                steps = chain.split("|")
                if steps[-1] not in FINAL_TO_LOADER or any(s.partition(":")[0].partition("*")[0] not in UNWRAP_KINDS
                                                           for s in steps[:-1]):
                    unknown.append("%s: %s" % (path, chain))
                    continue
                final = FINAL_TO_LOADER[steps[-1]]
                if final is None:
                    continue
                key = (final, tuple(steps[:-1]))
                if key not in seen:
                    seen.add(key)
                    reqs.append({"file": path, "loader": final, "unwrap": steps[:-1], "setup": setup})
    return reqs, files, unknown


def _fail_message(title, items, limit=60):
    lines = [title] + ["  " + s for s in items[:limit]]
    if len(items) > limit:
        lines.append("  ... and %d more" % (len(items) - limit))
    return "\n".join(lines)


@pytest.fixture(scope="module")
def pool():
    with _audit.AuditPool(timeout=60) as p:
        yield p


def _maps(pool, results):
    return {l: pool.maps(l) for l in {r["loader"] for r in results}}


def test_every_manifest_loader_is_known():
    # every manifest loader chain maps to an oracle loader: a new name would silently drop a
    # reading, so it fails here instead
    reqs, files, unknown = manifest_requests()
    assert not unknown, _fail_message("loader chains the oracle cannot run:", unknown)
    assert len(files) == len(set(files)), "a fixture is listed twice"
    missing = [f for f in files if not os.path.isfile(f)]
    assert not missing, _fail_message("manifest entries without a file:", missing)
    assert all(r["loader"] in _audit.LOADERS for r in reqs)
    assert len(files) > 200, "fixtures missing: run python3 tests/fixtures/generate.py"


def test_fixtures_loader_differential(pool, picklegate_bin):
    reqs, files, _ = manifest_requests()
    t0 = time.monotonic()
    results = pool.run(reqs)
    reports = _audit.scan(picklegate_bin, [FIXTURES])
    problems = _audit.harness_problems(results)
    assert not problems, _fail_message("oracle harness problems:", problems)
    missing = [f for f in files if os.path.realpath(f) not in reports]
    assert not missing, _fail_message("picklegate reported nothing for:", missing)
    # the oracle must actually see things: the attacks' payload globals are recorded
    assert sum(1 for r in results if r["aborted_at"]) > 100, "audit hook recorded (almost) nothing"
    dis = _audit.compare(results, reports, _maps(pool, results))
    print("fixtures: %d requests over %d files in %.1fs, %d disagreements"
          % (len(reqs), len(files), time.monotonic() - t0, len(dis)))
    assert not dis, _fail_message("%d loader/picklegate disagreements on fixtures:" % len(dis),
                                  [_audit.format_disagreement(d) for d in dis])


def test_mutation_fuzzer_ci_seed(pool, picklegate_bin, tmp_path):
    mutate = _load_mutate()
    t0 = time.monotonic()
    summary = mutate.run(seed=CI_SEED, cases=CI_CASES, out=tmp_path / "cases", binary=picklegate_bin,
                         pool=pool, keep=None, log=print)
    print("mutation fuzzer: %d cases, %d loads in %.1fs, %d disagreements"
          % (summary["cases"], summary["loads"], time.monotonic() - t0, len(summary["disagreements"])))
    assert not summary["harness_problems"], _fail_message("oracle harness problems:", summary["harness_problems"])
    assert not summary["generator_errors"], _fail_message("fuzzer generator errors:", summary["generator_errors"])
    assert summary["cases"] == CI_CASES
    # every family produced cases, and the canary was really reached in a good share of them:
    # a fuzzer whose mutations never reach a loader tests nothing
    assert all(n > 0 for n in summary["per_family"].values()), summary["per_family"]
    assert summary["canary_reached"] > CI_CASES // 4, summary
    assert not summary["disagreements"], _fail_message(
        "%d kinds of loader/picklegate disagreement on mutation cases (seed %d; one minimised file each, "
        "cases kept under %s):" % (len(summary["disagreements"]), CI_SEED, tmp_path / "cases"),
        [mutate.format_group(g) for g in summary["disagreements"]])
