#!/usr/bin/env python3
"""Throughput benchmark: picklegate against picklescan, fickling and modelscan.

Usage (from anywhere):

    python3 bench/run_bench.py                  # full run: 100 MB pickle + small fixtures
    python3 bench/run_bench.py --quick          # small fixtures only (CI smoke)
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
4. Prints a markdown report to stdout and writes bench/out/results.json (+ results.md).
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
    L.append(
        f"- picklegate: best of {results['repeat']} runs; competitors: {results['competitor_runs']} run(s) "
        f"each, timeout {results['timeout']:g} s; MB = 10^6 bytes"
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
    return "\n".join(L)


# --------------------------------------------------------------------------- main


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--_child":
        return child_main(sys.argv[2], sys.argv[3:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="skip the 100 MB file (small fixtures only)")
    ap.add_argument("--no-competitors", action="store_true", help="time picklegate only")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per invocation (default 600)")
    ap.add_argument("--repeat", type=int, default=3, help="picklegate runs per target, best kept (default 3)")
    ap.add_argument("--competitor-runs", type=int, default=1, help="competitor runs per target, best kept (default 1)")
    ap.add_argument("--picklegate", type=Path, default=DEFAULT_PICKLEGATE, help="binary (default target/release)")
    ap.add_argument("--big-n", type=int, default=BIG_N, help=f"dicts in the large pickle (default {BIG_N:,})")
    ap.add_argument("--only", nargs="+", choices=COMPETITORS, help="run only these competitors")
    args = ap.parse_args()

    source_bin = args.picklegate.resolve()
    if not os.access(source_bin, os.X_OK):
        log(f"error: {source_bin} not found; build it with `cargo build --release` first")
        return 2
    small_files = sorted(BENIGN.glob("*.pkl"))
    if not small_files:
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

    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine() | {"loadavg_start": load_start, "loadavg_end": os.getloadavg()},
        "binary": binary,
        "versions": versions(picklegate),
        "repeat": args.repeat,
        "competitor_runs": args.competitor_runs,
        "timeout": args.timeout,
        "quick": args.quick,
        "competitors": competitors,
        "competitor_errors": competitor_errors,
        "big_file": big_meta,
        "rows": rows,
        "directory": {
            "dir": str(BENIGN.relative_to(ROOT)),
            "files": len(dir_files),
            "bytes": dir_size,
            "rows": dir_rows,
        },
    }
    (OUT / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    report = render(results)
    (OUT / "results.md").write_text(report + "\n")
    print(report)
    log(f"wrote {(OUT / 'results.json').relative_to(ROOT)} and {(OUT / 'results.md').relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
