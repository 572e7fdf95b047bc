#!/usr/bin/env python3
"""Throughput benchmark: picklegate against picklescan, fickling and modelscan.

Usage (from anywhere):

    python3 bench/run_bench.py                  # full run: 100 MB pickle, small fixtures, containers
    python3 bench/run_bench.py --quick          # small fixtures only (CI smoke)
    python3 bench/run_bench.py --containers     # container part only (torch 1 GiB, RandomForest)
    python3 bench/run_bench.py --no-competitors # picklegate alone
    python3 bench/run_bench.py --timeout 900    # per competitor invocation, seconds

What one run does, on the same files for every tool:

1. Generates bench/out/big_opcodes_p4.pkl (unless present): a ~100 MB, opcode-heavy
   protocol-4 pickle of N small dicts (N = 2,000,000 gives 100.8 MB / 40.0 M opcodes).
   The small fixtures are tests/fixtures/benign/*.pkl, used in place.
2. Times ``picklegate scan FILE --format json`` (best of --repeat runs, wall clock) and
   each competitor CLI once per file (``picklescan -p FILE``,
   ``fickling --check-safety FILE``, ``modelscan -p FILE``) under --timeout.
3. Times one invocation over the whole benign directory (picklegate, picklescan,
   modelscan; fickling takes one file only).
4. Containers (skipped by --quick; alone with --containers): generates, unless present,
   a ~1 GiB torch.save zip checkpoint and the same state dict in the legacy format
   (64 float32 zero tensors of 2048x2048), and a ~142 MB RandomForestClassifier as a
   protocol-4 pickle and as an uncompressed joblib.dump (torch, scikit-learn and joblib
   from the system Python, tests/requirements.txt). Every tool runs once untimed on each
   file (warm page cache), then picklegate best of --container-repeat (5) and each
   competitor --competitor-runs; picklegate's JSON gives bytes_read. Checked against the
   milestone targets: <= 10 ms/GB (zip) and <= 20 ms/GB (legacy) for picklegate, and
   picklescan >= 10x slower than picklegate on the RandomForest files.
5. Prints a markdown report to stdout and writes bench/out/results.json (+ results.md).
   Tool output goes to bench/out/logs/.

Opcode counts come from ``pickletools.genops`` (every stream of a file), computed once
per file and cached in bench/out/opcounts.json (about 30 s for the 100 MB file).

The competitors live in their own virtualenv, bench/.venv, so that they can never
change the numpy/torch pinned for the tests in the system Python. If it is missing the
script creates it (same as the one-liner in bench/README.md):

    python3 -m venv bench/.venv && bench/.venv/bin/pip install -r bench/requirements.txt

Exit status: 0 when the benchmark ran (whatever the tools concluded), 2 on setup errors.
"""

from __future__ import annotations

import argparse
import datetime
import io
import json
import os
import pickle
import pickletools
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
LOGS = OUT / "logs"
VENV = BENCH / ".venv"
REQUIREMENTS = BENCH / "requirements.txt"
BENIGN = ROOT / "tests" / "fixtures" / "benign"
DEFAULT_PICKLEGATE = ROOT / "target" / "release" / "picklegate"

BIG_NAME = "big_opcodes_p4.pkl"
# Measured on CPython 3.11: each dict costs ~50.4 bytes at protocol 4, so 2 M dicts
# make a 100,775,435-byte file with 40,005,549 opcodes.
BIG_N = 2_000_000

# Container benchmark (--containers; part of the full run): real-library checkpoints.
TORCH_ZIP_NAME = "torch_zip_1g.pt"
TORCH_LEGACY_NAME = "torch_legacy_1g.pt"
RF_PKL_NAME = "rf_140m.pkl"
RF_JOBLIB_NAME = "rf_140m.joblib"
# 64 float32 zeros tensors of 2048x2048 = 64 x 16 MiB = 1 GiB of storage per checkpoint.
TORCH_PARAMS = {"tensors": 64, "shape": [2048, 2048], "dtype": "float32"}
# Measured with scikit-learn 1.9.1: a depth-20 tree on this data pickles to ~190 KB,
# so 740 trees make ~140 MB at protocol 4.
RF_PARAMS = {
    "n_samples": 20_000,
    "n_features": 20,
    "data_random_state": 0,
    "n_estimators": 740,
    "max_depth": 20,
    "random_state": 0,
    "protocol": 4,
}
CONTAINER_FILES = (TORCH_ZIP_NAME, TORCH_LEGACY_NAME, RF_PKL_NAME, RF_JOBLIB_NAME)
RF_FILES = (RF_PKL_NAME, RF_JOBLIB_NAME)
# Milestone targets: picklegate wall clock per GB (process start included) ...
CONTAINER_MS_PER_GB = {TORCH_ZIP_NAME: 10.0, TORCH_LEGACY_NAME: 20.0}
# ... and picklescan seconds / picklegate seconds on the RandomForest files.
RF_MIN_RATIO = 10.0
GB = 1_000_000_000

COMPETITORS = ("picklescan", "fickling", "modelscan")
# Every tool here uses the same convention: 0 clean, 1 findings, 2 error
# (modelscan adds 3 = no supported file, 4 = usage error).
VERDICTS = {0: "clean", 1: "findings", 2: "error", 3: "no supported file", 4: "usage error"}

MB = 1_000_000  # sizes and throughputs are decimal megabytes


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- inputs


def make_big_pickle(path: Path, n: int) -> dict:
    """Write the opcode-heavy pickle atomically; return its metadata."""
    log(f"generating {path.relative_to(ROOT)} with N={n:,} dicts ...")
    t0 = time.perf_counter()
    data = pickle.dumps(
        [{"id": i, "name": f"item{i}", "score": i * 0.5, "tags": ["a", "b"], "ok": True} for i in range(n)],
        protocol=4,
    )
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    meta = {"n": n, "bytes": len(data), "python": platform.python_version()}
    (OUT / (BIG_NAME + ".meta.json")).write_text(json.dumps(meta, indent=1) + "\n")
    log(f"  {len(data):,} bytes in {time.perf_counter() - t0:.1f} s")
    return meta


def sha256_file(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


def write_meta(path: Path, meta: dict) -> dict:
    meta = meta | {"bytes": path.stat().st_size, "sha256": sha256_file(path), "python": platform.python_version()}
    (OUT / (path.name + ".meta.json")).write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def make_torch_checkpoints(zip_path: Path, legacy_path: Path) -> dict:
    """torch.save one OrderedDict of zero tensors, in the zip format and the legacy format.

    Saved through a file object, so the zip's top-level folder is "archive/" whatever the
    file is called. The zip is byte-for-byte reproducible; the legacy writer names each
    storage by its memory address (str(storage._cdata)), so those key strings differ
    from one generation to the next (same structure and, in practice, the same size).
    """
    import collections

    import torch

    n, shape = TORCH_PARAMS["tensors"], TORCH_PARAMS["shape"]
    log(f"generating {zip_path.name} and {legacy_path.name}: {n} float32 zero tensors of {shape[0]}x{shape[1]} ...")
    t0 = time.perf_counter()
    sd = collections.OrderedDict((f"layer{i}.weight", torch.zeros(*shape, dtype=torch.float32)) for i in range(n))
    out = {}
    for path, kwargs in ((zip_path, {}), (legacy_path, {"_use_new_zipfile_serialization": False})):
        t1 = time.perf_counter()
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as f:
            torch.save(sd, f, **kwargs)
        os.replace(tmp, path)
        out[path.name] = write_meta(
            path,
            {
                "params": TORCH_PARAMS,
                "call": "torch.save(state_dict, f" + (", _use_new_zipfile_serialization=False)" if kwargs else ")"),
                "torch": torch.__version__,
                "seconds": round(time.perf_counter() - t1, 1),
            },
        )
        log(f"  {path.name}: {out[path.name]['bytes']:,} bytes")
    log(f"  {time.perf_counter() - t0:.1f} s")
    return out


def make_random_forest(pkl_path: Path, joblib_path: Path) -> dict:
    """Fit the RandomForest once; write it with pickle.dumps(protocol=4) and joblib.dump."""
    import joblib
    import sklearn
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    p = RF_PARAMS
    log(f"fitting RandomForestClassifier({p['n_estimators']} trees, max_depth={p['max_depth']}) ...")
    t0 = time.perf_counter()
    X, y = make_classification(n_samples=p["n_samples"], n_features=p["n_features"], random_state=p["data_random_state"])
    # n_jobs=-1 is stored in the pickle as -1 whatever the core count: same bytes everywhere
    model = RandomForestClassifier(
        n_estimators=p["n_estimators"], max_depth=p["max_depth"], random_state=p["random_state"], n_jobs=-1
    ).fit(X, y)
    fit_s = time.perf_counter() - t0
    base = {
        "params": p,
        "nodes": int(sum(e.tree_.node_count for e in model.estimators_)),
        "sklearn": sklearn.__version__,
        "joblib": joblib.__version__,
        "fit_seconds": round(fit_s, 1),
    }
    out = {}
    tmp = pkl_path.with_name(pkl_path.name + ".tmp")
    tmp.write_bytes(pickle.dumps(model, protocol=p["protocol"]))
    os.replace(tmp, pkl_path)
    out[pkl_path.name] = write_meta(pkl_path, base | {"call": f"pickle.dumps(model, protocol={p['protocol']})"})
    tmp = joblib_path.with_name(joblib_path.name + ".tmp")
    joblib.dump(model, tmp, compress=0)
    os.replace(tmp, joblib_path)
    out[joblib_path.name] = write_meta(joblib_path, base | {"call": "joblib.dump(model, f, compress=0)"})
    for name, m in out.items():
        log(f"  {name}: {m['bytes']:,} bytes")
    log(f"  fit {fit_s:.1f} s, total {time.perf_counter() - t0:.1f} s")
    return out


def count_opcodes(path: Path) -> tuple[int, int]:
    """(opcodes, streams) over every consecutive pickle stream in the file, via genops."""
    data = path.read_bytes()
    f = io.BytesIO(data)
    total = streams = 0
    while f.tell() < len(data):
        start = f.tell()
        n = 0
        try:
            for _ in pickletools.genops(f):
                n += 1
        except Exception:  # trailing bytes that are not a pickle: stop counting
            f.seek(start)
            break
        total += n
        streams += 1
    return total, streams


def in_child(task: str, *argv: str):
    """Do memory-heavy preparation in a child Python, so that this harness stays small.

    Linux carries a forking parent's peak RSS into the child's ru_maxrss, which would
    otherwise put a floor of ~1.3 GB under every tool's measured peak RSS.
    """
    r = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--_child", task, *argv],
        stdout=subprocess.PIPE, check=True,
    )
    return json.loads(r.stdout)


def child_main(task: str, argv: list[str]) -> int:
    if task == "make-big":
        meta = make_big_pickle(Path(argv[0]), int(argv[1]))
        print(json.dumps(meta))
    elif task == "make-torch":
        print(json.dumps(make_torch_checkpoints(Path(argv[0]), Path(argv[1]))))
    elif task == "make-rf":
        print(json.dumps(make_random_forest(Path(argv[0]), Path(argv[1]))))
    elif task == "count-ops":
        print(json.dumps(count_opcodes(Path(argv[0]))))
    else:
        raise SystemExit(f"unknown child task {task}")
    return 0


def opcode_counts(files: list[Path]) -> dict[str, dict]:
    cache_path = OUT / "opcounts.json"
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    out = {}
    dirty = False
    for p in files:
        st = p.stat()
        key = str(p.resolve())
        hit = cache.get(key)
        if hit and hit["size"] == st.st_size and hit["mtime_ns"] == st.st_mtime_ns:
            out[key] = hit
            continue
        if st.st_size > 10 * MB:
            log(f"counting opcodes of {p.name} with pickletools.genops (once, cached) ...")
        t0 = time.perf_counter()
        ops, streams = in_child("count-ops", str(p)) if st.st_size > 10 * MB else count_opcodes(p)
        hit = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "opcodes": ops, "streams": streams}
        if st.st_size > 10 * MB:
            log(f"  {ops:,} opcodes in {streams} stream(s), {time.perf_counter() - t0:.1f} s")
        cache[key] = out[key] = hit
        dirty = True
    if dirty:
        cache_path.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n")
    return out


# --------------------------------------------------------------------------- running


def run_timed(cmd: list[str], timeout: float, log_stem: str, env: dict | None = None) -> dict:
    """Run cmd once; wall clock from spawn to reap, peak RSS, exit code, timeout."""
    LOGS.mkdir(parents=True, exist_ok=True)
    out_path, err_path = LOGS / f"{log_stem}.stdout", LOGS / f"{log_stem}.stderr"
    res = {
        "loadavg_1m": os.getloadavg()[0],
        "cmd": cmd,
        "stdout": str(out_path.relative_to(ROOT)),
        "stderr": str(err_path.relative_to(ROOT)),
    }
    with open(out_path, "wb") as fo, open(err_path, "wb") as fe:
        t0 = time.perf_counter()
        try:
            p = subprocess.Popen(
                cmd, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, cwd=OUT, env=env, start_new_session=True
            )
        except OSError as e:
            res.update(seconds=None, rc=None, timed_out=False, error=f"{type(e).__name__}: {e}")
            return res
        fired = threading.Event()

        def kill() -> None:
            fired.set()
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        _, status, rusage = os.wait4(p.pid, 0)
        elapsed = time.perf_counter() - t0
        timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen quiet
    if fired.is_set():
        res.update(seconds=None, rc=None, timed_out=True, error=f"timeout after {timeout:g} s")
    else:
        res.update(seconds=elapsed, rc=p.returncode, timed_out=False, max_rss_mb=rusage.ru_maxrss * 1024 / MB)
        if p.returncode not in (0, 1):
            tail = err_path.read_text(errors="replace").strip().splitlines()[-3:]
            res["error"] = f"exit {p.returncode}: " + " | ".join(tail)
    return res


def best_of(cmd: list[str], repeat: int, timeout: float, log_stem: str, env: dict | None = None) -> dict:
    runs = [run_timed(cmd, timeout, log_stem, env) for _ in range(repeat)]
    ok = [r for r in runs if r["seconds"] is not None]
    if not ok:
        return runs[-1] | {"runs": [None] * len(runs)}
    best = min(ok, key=lambda r: r["seconds"])
    return best | {"runs": [r["seconds"] for r in runs]}


def tool_cmd(tool: str, target: Path, stem: str, picklegate: Path) -> list[str]:
    if tool == "picklegate":
        return [str(picklegate), "scan", str(target), "--format", "json"]
    exe = str(VENV / "bin" / tool)
    if tool == "picklescan":
        return [exe, "-p", str(target)]
    if tool == "fickling":
        # --json-output: fickling otherwise drops safety_results.json into the cwd
        return [exe, "--check-safety", "--json-output", str(LOGS / f"{stem}.json"), str(target)]
    if tool == "modelscan":
        return [exe, "-p", str(target)]
    raise ValueError(tool)


def slug(s: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in s)


def ensure_container_files() -> dict[str, dict]:
    """Generate the container inputs that are missing or stale; return {name: meta}.

    Torch, scikit-learn and joblib come from the system Python (tests/requirements.txt),
    in child processes, like the large pickle.
    """
    metas: dict[str, dict] = {}
    groups = (
        ("make-torch", (TORCH_ZIP_NAME, TORCH_LEGACY_NAME), TORCH_PARAMS),
        ("make-rf", (RF_PKL_NAME, RF_JOBLIB_NAME), RF_PARAMS),
    )
    for task, names, params in groups:
        have = {}
        for name in names:
            try:
                meta = json.loads((OUT / (name + ".meta.json")).read_text())
            except (OSError, ValueError):
                break
            path = OUT / name
            if not path.exists() or meta.get("params") != params or path.stat().st_size != meta.get("bytes"):
                break
            have[name] = meta
        else:
            metas.update(have)
            continue
        try:
            metas.update(in_child(task, *(str(OUT / n) for n in names)))
        except subprocess.CalledProcessError as e:
            log(
                f"error: `{task}` failed (exit {e.returncode}); it needs torch, scikit-learn and joblib in "
                f"{sys.executable}: pip install -r tests/requirements.txt"
            )
            raise SystemExit(2) from None
    return metas


def read_logs(res: dict) -> str:
    text = ""
    for k in ("stdout", "stderr"):
        try:
            text += (ROOT / res[k]).read_text(errors="replace") + "\n"
        except (KeyError, OSError):
            pass
    return text


def picklegate_json(res: dict) -> dict:
    """format / status / bytes_read of files[0] from the JSON a picklegate run printed."""
    try:
        f = json.loads((ROOT / res["stdout"]).read_text())["files"][0]
    except (KeyError, OSError, ValueError, IndexError):
        return {}
    return {k: f.get(k) for k in ("format", "status", "streams", "bytes_read")} | {"findings": len(f.get("findings", []))}


def tool_note(tool: str, res: dict, fickling_json: Path | None) -> str:
    """A short reason next to the exit code: what each tool said besides 0/1/2."""
    text = read_logs(res)
    notes = []
    if tool == "picklescan":
        notes += [ln.strip() for ln in text.splitlines() if ln.startswith("ERROR")][:1]
        for key in ("Dangerous globals", "Suspicious globals"):
            for ln in text.splitlines():
                if ln.startswith(key + ":") and ln.split(":", 1)[1].strip() not in ("", "0"):
                    notes.append(ln.strip().lower())
    elif tool == "modelscan":
        notes += [ln.strip() for ln in text.splitlines() if "error" in ln.lower() and ":" in ln][-1:]
    elif tool == "fickling":
        sev = []
        try:
            raw, dec, i = fickling_json.read_text(), json.JSONDecoder(), 0
            while i < len(raw):  # one JSON object per pickle stream, concatenated
                if raw[i].isspace():
                    i += 1
                    continue
                obj, i = dec.raw_decode(raw, i)
                sev.append(obj.get("severity", "?"))
        except (AttributeError, OSError, ValueError):
            pass
        if sev:
            notes.append("/".join(dict.fromkeys(sev)))
        notes += [ln.strip() for ln in text.splitlines() if ln.startswith("Fickling failed")][:1]
    return "; ".join(notes).replace(str(ROOT) + "/", "")


def run_containers(args, picklegate: Path, competitors: list[str], metas: dict[str, dict]) -> dict:
    """Time every tool on the torch zip / legacy checkpoints and the RandomForest pickle / joblib."""
    rows: list[dict] = []
    for name in CONTAINER_FILES:
        target = OUT / name
        size = target.stat().st_size
        stem = slug(name)
        tools = ["picklegate", *competitors]
        # Untimed warm-up of every tool on this very file: the page cache holds it and the
        # venv's .pyc files exist, so the timed runs measure the scanners, not the disk.
        warm: dict[str, dict] = {}
        for tool in tools:
            log(f"{name}: {tool} warm-up (untimed) ...")
            # fickling appends to its --json-output file: start each one empty
            (LOGS / f"{stem}.warmup.{tool}.json").unlink(missing_ok=True)
            (LOGS / f"{stem}.{tool}.json").unlink(missing_ok=True)
            cmd = tool_cmd(tool, target, f"{stem}.warmup.{tool}", picklegate)
            warm[tool] = run_timed(cmd, args.timeout, f"{stem}.warmup.{tool}")
        log(f"{name}: picklegate x{args.container_repeat} ...")
        pg = best_of(
            tool_cmd("picklegate", target, stem, picklegate), args.container_repeat, args.timeout, f"{stem}.picklegate"
        )
        pg_s = pg.get("seconds")
        info = picklegate_json(pg)
        row = make_row(name, size, "picklegate", pg, pg_s, None)
        row |= {
            "warmup_seconds": warm["picklegate"].get("seconds"),
            "bytes_read": info.get("bytes_read"),
            "picklegate": info,
            "note": f"format {info.get('format')}" if info else "",
        }
        if info and info.get("status") != row["status"]:
            row["note"] += f", status {info.get('status')}"
        rows.append(row)
        log(f"  {fmt_s(pg_s)} s (runs: {', '.join(fmt_s(x) for x in pg['runs'])}), bytes_read {info.get('bytes_read')}")
        for tool in competitors:
            w = warm[tool]
            if w.get("timed_out"):  # it would only time out again
                res = w | {"runs": [None]}
            else:
                log(f"{name}: {tool} (timeout {args.timeout:g} s) ...")
                cmd = tool_cmd(tool, target, f"{stem}.{tool}", picklegate)
                res = best_of(cmd, args.competitor_runs, args.timeout, f"{stem}.{tool}")
            row = make_row(name, size, tool, res, pg_s, None)
            row |= {
                "warmup_seconds": w.get("seconds"),
                "note": tool_note(tool, res, LOGS / f"{stem}.{tool}.json" if tool == "fickling" else None),
            }
            rows.append(row)
            log(f"  {fmt_s(res.get('seconds'))} s, {status_text(res)}{' (' + row['note'] + ')' if row['note'] else ''}")

    by = {(r["file"], r["tool"]): r for r in rows}
    targets = []
    for name, limit in CONTAINER_MS_PER_GB.items():
        r = by[(name, "picklegate")]
        ms_per_gb = r["seconds"] * 1000 / (r["size_bytes"] / GB) if r["seconds"] is not None else None
        targets.append(
            {
                "target": f"picklegate <= {limit:g} ms per GB, process start included",
                "file": name,
                "measured": ms_per_gb,
                "measured_text": "-" if ms_per_gb is None else f"{ms_per_gb:.2f} ms/GB ({r['seconds'] * 1000:.2f} ms for {r['size_bytes'] / GB:.2f} GB)",
                "met": ms_per_gb is not None and ms_per_gb <= limit,
            }
        )
    for name in RF_FILES:
        ps = by.get((name, "picklescan"))
        t = {"target": f"picklescan seconds / picklegate seconds >= {RF_MIN_RATIO:g}", "file": name}
        if ps is None:
            t |= {"measured": None, "measured_text": "picklescan not run", "met": None}
        elif ps["exit_code"] not in (0, 1) or ps["ratio_vs_picklegate"] is None:
            # a scanner that gave up is not a speed to compare with
            t |= {
                "measured": ps["ratio_vs_picklegate"],
                "measured_text": f"not comparable: picklescan {ps['status']} after {fmt_s(ps['seconds'])} s"
                + (f" ({ps['note']})" if ps.get("note") else ""),
                "met": None,
            }
        else:
            t |= {
                "measured": ps["ratio_vs_picklegate"],
                "measured_text": f"{fmt_ratio(ps['ratio_vs_picklegate'])} ({fmt_s(ps['seconds'])} s vs {by[(name, 'picklegate')]['seconds']:.3f} s)",
                "met": ps["ratio_vs_picklegate"] >= RF_MIN_RATIO,
            }
        targets.append(t)
    return {"files": metas, "rows": rows, "targets": targets, "repeat": args.container_repeat}


# --------------------------------------------------------------------------- setup


def ensure_venv() -> dict[str, str]:
    """Create bench/.venv if needed; return {tool: error} for tools that cannot run."""
    errors: dict[str, str] = {}
    py = VENV / "bin" / "python"
    if not py.exists():
        log(f"creating {VENV.relative_to(ROOT)} and installing {REQUIREMENTS.relative_to(ROOT)} ...")
        for cmd in (
            [sys.executable, "-m", "venv", str(VENV)],
            [str(VENV / "bin" / "pip"), "install", "--disable-pip-version-check", "-q", "-r", str(REQUIREMENTS)],
        ):
            r = subprocess.run(cmd, capture_output=True, text=True)
            if r.returncode != 0:
                msg = f"{' '.join(cmd)} failed ({r.returncode}): {(r.stderr or r.stdout).strip()[-2000:]}"
                return {t: msg for t in COMPETITORS}
    for tool in COMPETITORS:
        if not (VENV / "bin" / tool).exists():
            errors[tool] = f"{VENV / 'bin' / tool} not installed"
    return errors


def versions(picklegate: Path) -> dict[str, str]:
    v = {}
    r = subprocess.run([str(picklegate), "--version"], capture_output=True, text=True)
    v["picklegate"] = r.stdout.strip() or r.stderr.strip()
    py = VENV / "bin" / "python"
    if py.exists():
        code = (
            "import importlib.metadata as m, json, platform\n"
            "d = {'python (venv)': platform.python_version()}\n"
            "for p in ('picklescan', 'fickling', 'modelscan', 'numpy'):\n"
            "    try: d[p] = m.version(p)\n"
            "    except Exception as e: d[p] = 'missing'\n"
            "print(json.dumps(d))\n"
        )
        r = subprocess.run([str(py), "-c", code], capture_output=True, text=True)
        try:
            v.update(json.loads(r.stdout))
        except ValueError:
            v["venv"] = f"version probe failed: {r.stderr.strip()[-300:]}"
    return v


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


# --------------------------------------------------------------------------- report


def fmt_s(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s:.3f}" if s < 10 else f"{s:.1f}"


def fmt_ratio(r: float | None) -> str:
    return "-" if r is None else (f"{r:.1f}x" if r < 100 else f"{r:.0f}x")


def status_text(r: dict) -> str:
    if r.get("timed_out"):
        return "TIMEOUT"
    if r.get("rc") is None:
        return "not run" if "error" not in r else "error"
    return VERDICTS.get(r["rc"], f"exit {r['rc']}")


def make_row(target: str, size: int, tool: str, res: dict, pg_seconds: float | None, ops: int | None) -> dict:
    s = res.get("seconds")
    row = {
        "file": target,
        "size_bytes": size,
        "size_mb": size / MB,
        "tool": tool,
        "seconds": s,
        "mb_per_s": (size / MB / s) if s else None,
        "ratio_vs_picklegate": (s / pg_seconds) if (s and pg_seconds) else None,
        "status": status_text(res),
        "exit_code": res.get("rc"),
        "timed_out": bool(res.get("timed_out")),
        # below ~10 MB the harness's own ~15 MB (inherited at fork) would dominate the figure
        "max_rss_mb": res.get("max_rss_mb") if size > 10 * MB else None,
        "loadavg_1m_before": res.get("loadavg_1m"),
        "cmd": res.get("cmd"),
    }
    if "runs" in res:
        row["runs_seconds"] = res["runs"]
    if res.get("error"):
        row["error"] = res["error"]
    if tool == "picklegate" and ops is not None:
        row["opcodes"] = ops
        row["opcodes_per_s"] = (ops / s) if s else None
    return row


def render(results: dict) -> str:
    L = []
    m, v = results["machine"], results["versions"]
    L.append("# picklegate benchmark\n")
    L.append(f"- date: {results['date']}")
    L.append(
        f"- machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}; 1-min load average "
        f"{m['loadavg_start'][0]:.2f} at start, {m['loadavg_end'][0]:.2f} at end"
    )
    b = results["binary"]
    L.append(f"- binary: {b['path']} ({b['bytes']:,} bytes, built {b['mtime']}), timed from a copy")
    L.append("- versions: " + ", ".join(f"{k} {val}" for k, val in v.items()))
    cont = results.get("containers")
    pg_runs = [] if results.get("containers_only") else [f"best of {results['repeat']} runs"]
    if cont:
        pg_runs.append(f"best of {cont['repeat']} on the container files")
    L.append(
        f"- picklegate: {', '.join(pg_runs)}; competitors: {results['competitor_runs']} run(s) "
        f"each, timeout {results['timeout']:g} s; MB = 10^6 bytes, GB = 10^9 bytes"
    )
    for tool, err in results.get("competitor_errors", {}).items():
        L.append(f"- {tool} unavailable: {err}")
    L.append("")

    big = [r for r in results["rows"] if r["file"] == BIG_NAME]
    if big:
        L.append(f"## Large file: {BIG_NAME}\n")
        meta = results.get("big_file", {})
        L.append(
            f"{meta.get('bytes', 0):,} bytes, {meta.get('opcodes', 0):,} opcodes, "
            f"`pickle.dumps([{{...}} for i in range({meta.get('n', 0):,})], protocol=4)`\n"
        )
        L.append(
            "| file | size MB | tool | seconds | MB/s | ratio vs picklegate | opcodes/s | peak RSS MB | result "
            "| load before |"
        )
        L.append("|---|---:|---|---:|---:|---:|---:|---:|---|---:|")
        for r in big:
            ops_s = f"{r['opcodes_per_s'] / 1e6:.2f} M" if r.get("opcodes_per_s") else ""
            mbs = f"{r['mb_per_s']:.2f}" if r["mb_per_s"] else "-"
            rss = f"{r['max_rss_mb']:.0f}" if r.get("max_rss_mb") else "-"
            L.append(
                f"| {r['file']} | {r['size_mb']:.1f} | {r['tool']} | {fmt_s(r['seconds'])} | {mbs} | "
                f"{fmt_ratio(r['ratio_vs_picklegate'])} | {ops_s} | {rss} | {r['status']} | "
                f"{r['loadavg_1m_before']:.2f} |"
            )
        L.append("")

    small = [r for r in results["rows"] if r["file"] != BIG_NAME]
    if small:
        tools = [t for t in ["picklegate", *COMPETITORS] if any(r["tool"] == t for r in small)]
        files = list(dict.fromkeys(r["file"] for r in small))
        by = {(r["file"], r["tool"]): r for r in small}
        L.append(f"## Small fixtures: {len(files)} files of tests/fixtures/benign, one process per file\n")
        L.append("Seconds per invocation (process start included); result in brackets when not clean.\n")
        L.append("| file | KB | opcodes | " + " | ".join(tools) + " |")
        L.append("|---|---:|---:|" + "---:|" * len(tools))
        for f in files:
            pg = by[(f, "picklegate")]
            cells = []
            for t in tools:
                r = by.get((f, t))
                if r is None:
                    cells.append("")
                    continue
                c = fmt_s(r["seconds"])
                if r["status"] != "clean":
                    c += f" ({r['status']})"
                cells.append(c)
            L.append(f"| {f} | {pg['size_bytes'] / 1000:.1f} | {pg.get('opcodes', '')} | " + " | ".join(cells) + " |")
        L.append("")
        L.append("| tool | files | sum of seconds | median seconds/file | median ratio vs picklegate | not clean |")
        L.append("|---|---:|---:|---:|---:|---:|")
        for t in tools:
            rs = [by[(f, t)] for f in files if (f, t) in by]
            secs = [r["seconds"] for r in rs if r["seconds"] is not None]
            ratios = [r["ratio_vs_picklegate"] for r in rs if r["ratio_vs_picklegate"] is not None]
            nc = sum(1 for r in rs if r["status"] != "clean")
            L.append(
                f"| {t} | {len(rs)} | {fmt_s(sum(secs)) if secs else '-'} | "
                f"{fmt_s(statistics.median(secs)) if secs else '-'} | "
                f"{fmt_ratio(statistics.median(ratios)) if ratios else '-'} | {nc} |"
            )
        L.append("")

    d = results.get("directory")
    if d:
        L.append(f"## Whole directory in one invocation: {d['dir']} ({d['files']} files, {d['bytes'] / MB:.2f} MB)\n")
        L.append("| tool | command | seconds | ratio vs picklegate | result |")
        L.append("|---|---|---:|---:|---|")
        for r in d["rows"]:
            cmd = " ".join(Path(c).name if i == 0 else c for i, c in enumerate(r["cmd"] or []))
            cmd = cmd.replace(str(ROOT) + "/", "")
            if len(cmd) > 70:
                cmd = cmd[:67] + "..."
            L.append(
                f"| {r['tool']} | `{cmd}` | {fmt_s(r['seconds'])} | "
                f"{fmt_ratio(r['ratio_vs_picklegate'])} | {r['status']} |"
            )
        L.append("")

    if cont:
        L += render_containers(cont, results)
    return "\n".join(L)


def fmt_s_fine(s: float | None) -> str:
    return "-" if s is None else (f"{s:.4f}" if s < 0.1 else fmt_s(s))


def render_containers(c: dict, results: dict) -> list[str]:
    L = ["## Containers: PyTorch checkpoints and a RandomForest\n"]
    for name in CONTAINER_FILES:
        m = c["files"].get(name, {})
        extra = ""
        if "nodes" in m:
            p = m["params"]
            extra = (
                f", RandomForestClassifier(n_estimators={p['n_estimators']}, max_depth={p['max_depth']}, "
                f"random_state={p['random_state']}) on make_classification(n_samples={p['n_samples']:,}, "
                f"n_features={p['n_features']}, random_state={p['data_random_state']}), {m['nodes']:,} nodes, "
                f"scikit-learn {m['sklearn']}, joblib {m['joblib']}"
            )
        elif "torch" in m:
            p = m["params"]
            extra = f", OrderedDict of {p['tensors']} {p['dtype']} zero tensors {p['shape'][0]}x{p['shape'][1]}, torch {m['torch']}"
        L.append(f"- `{name}`: {m.get('bytes', 0):,} bytes, `{m.get('call', '?')}`{extra}")
    L.append("")
    L.append(
        "Every tool first ran once, untimed, on each file (warm page cache: these are figures for a "
        "file already in RAM, not for disk reads; the harness does not drop caches). Then "
        f"picklegate: best of {c['repeat']} runs; competitors: {results['competitor_runs']} run(s), "
        f"timeout {results['timeout']:g} s. Wall clock includes process start. Bytes read: "
        "picklegate's own `bytes_read`. Result: the exit code's meaning, then what the tool said.\n"
    )
    L.append(
        "| file | size MB | tool | seconds | ms/GB | ratio vs picklegate | bytes read | peak RSS MB | result "
        "| load before |"
    )
    L.append("|---|---:|---|---:|---:|---:|---:|---:|---|---:|")
    for r in c["rows"]:
        ms_gb = f"{r['seconds'] * 1000 / (r['size_bytes'] / GB):.2f}" if r["seconds"] is not None else "-"
        br = f"{r['bytes_read']:,}" if r.get("bytes_read") is not None else ""
        rss = f"{r['max_rss_mb']:.0f}" if r.get("max_rss_mb") else "-"
        res = r["status"] + (f" ({r['note']})" if r.get("note") else "")
        res = res.replace("|", "\\|")
        L.append(
            f"| {r['file']} | {r['size_mb']:.1f} | {r['tool']} | {fmt_s_fine(r['seconds'])} | {ms_gb} | "
            f"{fmt_ratio(r['ratio_vs_picklegate'])} | {br} | {rss} | {res} | {r['loadavg_1m_before']:.2f} |"
        )
    L.append("")
    L.append("| target | file | measured | met |")
    L.append("|---|---|---|---|")
    for t in c["targets"]:
        met = {True: "met", False: "NOT met", None: "n/a"}[t["met"]]
        L.append(f"| {t['target']} | {t['file']} | {t['measured_text']} | {met} |")
    L.append("")
    return L


# --------------------------------------------------------------------------- main


def run_pickles(args, picklegate: Path, competitors: list[str], small_files: list[Path]):
    """The 100 MB opcode-heavy pickle (unless --quick), each small fixture, the whole directory."""
    big_meta = None
    targets: list[Path] = []
    if not args.quick:
        big = OUT / BIG_NAME
        meta_path = OUT / (BIG_NAME + ".meta.json")
        try:
            big_meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            big_meta = None
        if not big.exists() or not big_meta or big_meta.get("n") != args.big_n or big.stat().st_size != big_meta.get("bytes"):
            big_meta = in_child("make-big", str(big), str(args.big_n))
        targets.append(big)
    targets += small_files

    ops = opcode_counts(targets)
    if big_meta is not None:
        big_meta = big_meta | {"opcodes": ops[str((OUT / BIG_NAME).resolve())]["opcodes"]}

    # Warm-up, untimed: first start of each tool compiles .pyc files and fills the page cache.
    warm = small_files[0]
    for tool in ["picklegate", *competitors]:
        run_timed(tool_cmd(tool, warm, f"warmup_{tool}", picklegate), args.timeout, f"warmup_{tool}")

    rows: list[dict] = []
    for target in targets:
        size = target.stat().st_size
        name = target.name
        n_ops = ops[str(target.resolve())]["opcodes"]
        chatty = size > 10 * MB
        stem = slug(name)
        if chatty:
            log(f"{name}: picklegate x{args.repeat} ...")
        pg = best_of(tool_cmd("picklegate", target, stem, picklegate), args.repeat, args.timeout, f"{stem}.picklegate")
        pg_s = pg.get("seconds")
        rows.append(make_row(name, size, "picklegate", pg, pg_s, n_ops))
        if chatty:
            log(f"  {fmt_s(pg_s)} s (runs: {', '.join(fmt_s(x) for x in pg['runs'])})")
        for tool in competitors:
            if chatty:
                log(f"{name}: {tool} (timeout {args.timeout:g} s) ...")
            cmd = tool_cmd(tool, target, f"{stem}.{tool}", picklegate)
            res = best_of(cmd, args.competitor_runs, args.timeout, f"{stem}.{tool}")
            rows.append(make_row(name, size, tool, res, pg_s, None))
            if chatty:
                log(f"  {fmt_s(res.get('seconds'))} s, {status_text(res)}")
        if not chatty:
            log(f"{name}: done")

    # Whole directory, one process per tool (what a pre-commit hook pays per commit).
    dir_files = [p for p in BENIGN.iterdir() if p.is_file()]
    dir_rows = []
    dir_size = sum(p.stat().st_size for p in dir_files)
    pg_dir = best_of(tool_cmd("picklegate", BENIGN, "dir", picklegate), args.repeat, args.timeout, "dir.picklegate")
    dir_rows.append(make_row(str(BENIGN.relative_to(ROOT)), dir_size, "picklegate", pg_dir, pg_dir.get("seconds"), None))
    # pre-commit passes the staged files as arguments: same scan, explicit file list
    pg_list_cmd = [str(picklegate), "scan", *map(str, small_files), "--format", "json"]
    pg_list = best_of(pg_list_cmd, args.repeat, args.timeout, "filelist.picklegate")
    dir_rows.append(
        make_row(str(BENIGN.relative_to(ROOT)), dir_size, "picklegate (file list)", pg_list, pg_dir.get("seconds"), None)
    )
    for tool in competitors:
        if tool == "fickling":  # one file per invocation only
            continue
        res = best_of(tool_cmd(tool, BENIGN, "dir", picklegate), args.competitor_runs, args.timeout, f"dir.{tool}")
        dir_rows.append(make_row(str(BENIGN.relative_to(ROOT)), dir_size, tool, res, pg_dir.get("seconds"), None))
    for r in dir_rows:
        if r["tool"] == "picklegate (file list)" and r["cmd"]:
            r["cmd"] = r["cmd"][:2] + [f"<{len(small_files)} files>"] + r["cmd"][-2:]
    directory = {
        "dir": str(BENIGN.relative_to(ROOT)),
        "files": len(dir_files),
        "bytes": dir_size,
        "rows": dir_rows,
    }
    return big_meta, rows, directory


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--_child":
        return child_main(sys.argv[2], sys.argv[3:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small fixtures only (no 100 MB file, no containers)")
    mode.add_argument(
        "--containers", action="store_true", help="only the container part: 1 GiB torch checkpoints, RandomForest"
    )
    ap.add_argument("--no-competitors", action="store_true", help="time picklegate only")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per invocation (default 600)")
    ap.add_argument("--repeat", type=int, default=3, help="picklegate runs per target, best kept (default 3)")
    ap.add_argument("--competitor-runs", type=int, default=1, help="competitor runs per target, best kept (default 1)")
    ap.add_argument("--picklegate", type=Path, default=DEFAULT_PICKLEGATE, help="binary (default target/release)")
    ap.add_argument("--big-n", type=int, default=BIG_N, help=f"dicts in the large pickle (default {BIG_N:,})")
    ap.add_argument("--only", nargs="+", choices=COMPETITORS, help="run only these competitors")
    ap.add_argument(
        "--container-repeat", type=int, default=5, help="picklegate runs per container file, best kept (default 5)"
    )
    args = ap.parse_args()

    source_bin = args.picklegate.resolve()
    if not os.access(source_bin, os.X_OK):
        log(f"error: {source_bin} not found; build it with `cargo build --release` first")
        return 2
    small_files = sorted(BENIGN.glob("*.pkl"))
    if not small_files and not args.containers:
        log(f"error: no fixtures in {BENIGN}; run `python3 tests/fixtures/generate.py` first")
        return 2
    OUT.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    # Time a private copy, so that a `cargo build` finishing mid-run cannot swap the binary.
    picklegate = OUT / "bin" / "picklegate"
    picklegate.parent.mkdir(exist_ok=True)
    shutil.copy2(source_bin, picklegate)
    st = source_bin.stat()
    binary = {
        "path": str(source_bin),
        "bytes": st.st_size,
        "mtime": datetime.datetime.fromtimestamp(st.st_mtime, datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    load_start = os.getloadavg()
    if load_start[0] > 0.5 * (os.cpu_count() or 1):
        log(f"warning: load average {load_start[0]:.2f} on {os.cpu_count()} cores; timings will be noisy")

    competitors: list[str] = []
    competitor_errors: dict[str, str] = {}
    if not args.no_competitors:
        competitor_errors = ensure_venv()
        competitors = [t for t in (args.only or COMPETITORS) if t not in competitor_errors]
        for t, e in competitor_errors.items():
            log(f"warning: {t} unavailable: {e}")

    container_metas = ensure_container_files() if (args.containers or not args.quick) else None

    big_meta, rows, directory = None, [], None
    if not args.containers:
        big_meta, rows, directory = run_pickles(args, picklegate, competitors, small_files)
    containers = run_containers(args, picklegate, competitors, container_metas) if container_metas else None

    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine() | {"loadavg_start": load_start, "loadavg_end": os.getloadavg()},
        "binary": binary,
        "versions": versions(picklegate),
        "repeat": args.repeat,
        "competitor_runs": args.competitor_runs,
        "timeout": args.timeout,
        "quick": args.quick,
        "containers_only": args.containers,
        "competitors": competitors,
        "competitor_errors": competitor_errors,
        "big_file": big_meta,
        "rows": rows,
        "directory": directory,
        "containers": containers,
    }
    (OUT / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    report = render(results)
    (OUT / "results.md").write_text(report + "\n")
    print(report)
    log(f"wrote {(OUT / 'results.json').relative_to(ROOT)} and {(OUT / 'results.md').relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
