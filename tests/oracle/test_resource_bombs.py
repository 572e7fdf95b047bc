"""Issue 11, "bounded under attack": picklegate on resource bombs stays bounded.

Every bomb of tests/fixtures/gen_bombs.py (findings floods, shared and overlapping zip members,
decompression bombs, disasm and VM bombs, sanitizer and configuration bombs, a large staged git
blob) is generated into a temporary directory and every picklegate invocation it lists is run under
RLIMIT_AS (2 GiB unless the case says otherwise) with a hard wall-clock kill (60 s). Each run must:

- end by itself (no kill at the timeout) and not by a signal (an allocation failure under the
  address-space limit aborts: SIGABRT; a stack overflow: SIGSEGV/SIGABRT);
- not panic (exit code 101, "panicked" on stderr);
- exit with one of the codes the case allows (for a hostile pickle 1, with a finding: `scan
  --format json` must report one of the case's rules, usually `budget-exceeded` or the attack's);
- stay under the case's wall time (30 s by default, 10 s for configurations) and 1.2 GiB peak RSS
  (the child's own rusage from wait4), with bounded output (50 MB unless the case says more).

Set PICKLEGATE_BOMB_REPORT=FILE to append one JSON line per run (exit code, signal, wall time,
peak RSS, output sizes, problems). Reproduce a case by hand with
`python3 tests/fixtures/gen_bombs.py /tmp/bombs --only ID` and the printed command in
/tmp/bombs/ID.
"""

import gzip
import io
import json
import lzma
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "fixtures"))

import gen_bombs  # noqa: E402

pytestmark = pytest.mark.differential

CASES = [(b, r) for b in gen_bombs.BOMBS for r in b.runs]
KEEP_JSON = 256 * 1000 * 1000   # JSON reports are parsed when they are at most this big
KEEP_TEXT = 1 << 20


class _Sink(threading.Thread):
    """Drains a pipe, counting bytes; keeps the first `keep` bytes and the last 64 KiB."""

    def __init__(self, f, keep):
        super().__init__(daemon=True)
        self.f, self.keep = f, keep
        self.count, self.head, self.tail = 0, bytearray(), bytearray()

    def run(self):
        while True:
            b = self.f.read1(1 << 20) if hasattr(self.f, "read1") else self.f.read(1 << 20)
            if not b:
                break
            self.count += len(b)
            if len(self.head) < self.keep:
                self.head += b[: self.keep - len(self.head)]
            self.tail += b
            if len(self.tail) > 1 << 17:
                del self.tail[: len(self.tail) - (1 << 16)]
        self.f.close()


def _env(cwd):
    env = {k: v for k, v in os.environ.items()
           if not (k.startswith(("GIT_", "PICKLEGATE_", "GITHUB_", "CI_", "PRE_COMMIT")) or k == "CI")}
    env.update(NO_COLOR="1", HOME=str(cwd), LC_ALL="C.UTF-8", GIT_CONFIG_NOSYSTEM="1",
               GIT_CONFIG_GLOBAL=os.devnull)
    return env


# The launcher: a fresh, small interpreter that forks the binary with the limits set in the child
# (what a preexec_fn would do) and reports the child's own rusage from wait4. Measuring from the
# test process itself (RUSAGE_CHILDREN, or wait4 on a child forked from it) is wrong on Linux: the
# RSS the forked child inherits from pytest (60-200 MB here) is folded into ru_maxrss at exec.
LAUNCHER = r"""
import json, os, resource, signal, sys, time
limit, timeout, fd = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
argv = sys.argv[4:]
t0 = time.monotonic()
pid = os.fork()
if pid == 0:
    try:
        os.close(fd)
        for s in ("SIGPIPE", "SIGXFSZ"):
            signal.signal(getattr(signal, s), signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        os.execv(argv[0], argv)
    finally:
        os._exit(127)
killed = []
def on_alarm(*_):
    killed.append(1)
    os.kill(pid, signal.SIGKILL)
signal.signal(signal.SIGALRM, on_alarm)
signal.setitimer(signal.ITIMER_REAL, timeout)
_, status, ru = os.wait4(pid, 0)
wall = time.monotonic() - t0
signal.setitimer(signal.ITIMER_REAL, 0)
os.write(fd, json.dumps({"status": os.waitstatus_to_exitcode(status), "wall": wall,
                         "maxrss_kib": ru.ru_maxrss, "killed": bool(killed)}).encode())
"""


def run_bounded(argv, cwd, address_space, timeout, keep):
    """Runs argv under RLIMIT_AS with a wall-clock kill at `timeout`; peak RSS is the child's own
    (wait4 in the launcher). stdout/stderr are drained through pipes and counted, not stored."""
    r, w = os.pipe()
    p = subprocess.Popen([sys.executable, "-S", "-E", "-c", LAUNCHER, str(address_space), str(timeout),
                          str(w), *argv], cwd=cwd, env=_env(cwd), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(w,),
                         start_new_session=True)
    os.close(w)
    out, err = _Sink(p.stdout, keep), _Sink(p.stderr, KEEP_TEXT)
    out.start()
    err.start()
    try:
        p.wait(timeout + 60)
    except subprocess.TimeoutExpired:  # the launcher itself is stuck: end its session
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    out.join()
    err.join()
    with os.fdopen(r, "rb") as f:
        raw = f.read()
    info = json.loads(raw) if raw else {"status": -9, "wall": float("nan"), "maxrss_kib": 0, "killed": True}
    code = info["status"]
    return {
        "code": code if code >= 0 else None,
        "signal": signal.Signals(-code).name if code < 0 else None,
        "timed_out": info["killed"],
        "wall": round(info["wall"], 3),
        "max_rss": info["maxrss_kib"] * 1024,  # Linux: KiB
        "stdout_bytes": out.count,
        "stderr_bytes": err.count,
        "stdout": bytes(out.head),
        "stdout_complete": out.count == len(out.head),
        "stderr": bytes(err.head),
        "stderr_tail": bytes(err.tail),
    }


def _rules(report):
    rules = set()
    for f in report.get("files", []):
        for x in f.get("findings", []):
            rules.add(x.get("rule"))
    return rules


_built = {}


def _bomb_dir(b, base):
    """Builds a bomb once (its runs are consecutive); the previous bomb's files are removed to keep
    the disk use bounded (a few bombs are 40-80 MB, the git ones hold 300 MiB blobs)."""
    if b.id not in _built:
        for old in list(_built.values()):
            shutil.rmtree(old, ignore_errors=True)
        _built.clear()
        d = base / b.id
        if d.exists():
            shutil.rmtree(d)
        t = time.monotonic()
        sizes = b.write(d)
        _built[b.id] = d
        d.joinpath(".bomb-build.json").write_text(
            json.dumps({"bytes": sum(sizes.values()), "seconds": round(time.monotonic() - t, 2)}))
    return _built[b.id]


@pytest.fixture(scope="module")
def bombs_base(tmp_path_factory):
    base = tmp_path_factory.mktemp("bombs")
    yield base
    for d in list(_built.values()):
        shutil.rmtree(d, ignore_errors=True)
    _built.clear()


def _report(entry):
    path = os.environ.get("PICKLEGATE_BOMB_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(entry) + "\n")


def _fmt_mib(n):
    return f"{n / (1 << 20):.0f} MiB"


@pytest.mark.parametrize("bomb,run", CASES, ids=[f"{b.id}/{r.name}" for b, r in CASES])
def test_bounded(bomb, run, picklegate_bin, bombs_base):
    d = _bomb_dir(bomb, bombs_base)
    build = json.loads(d.joinpath(".bomb-build.json").read_text())
    if "sanitize" in run.args:
        (d / "sanitized.out").unlink(missing_ok=True)
    res = run_bounded([str(picklegate_bin), *run.args], d, run.address_space, run.timeout,
                      KEEP_JSON if run.json else KEEP_TEXT)

    problems = []
    stderr = res["stderr"] + res["stderr_tail"]
    if res["timed_out"]:
        problems.append(f"killed after the {run.timeout:.0f} s timeout (hang)")
    elif res["signal"]:
        problems.append(f"killed by {res['signal']}" + (
            " (allocation failure under RLIMIT_AS?)" if res["signal"] == "SIGABRT" else ""))
    if res["code"] == 101 or b"panicked" in stderr:
        problems.append("panic")
    if b"memory allocation of" in stderr:
        problems.append("allocation failure")
    if b"has overflowed its stack" in stderr:
        problems.append("stack overflow")
    if res["code"] is not None and not res["timed_out"] and res["code"] not in run.codes:
        problems.append(f"exit code {res['code']}, expected one of {list(run.codes)}")
    if res["wall"] > run.wall and not res["timed_out"]:
        problems.append(f"wall time {res['wall']:.1f} s > {run.wall:.0f} s")
    if res["max_rss"] > run.rss:
        problems.append(f"peak RSS {_fmt_mib(res['max_rss'])} > {_fmt_mib(run.rss)}")
    if res["stdout_bytes"] > run.stdout_limit:
        problems.append(f"stdout {res['stdout_bytes']:,} bytes > {run.stdout_limit:,}")

    rules = None
    if run.json and res["code"] in (0, 1) and not res["timed_out"]:
        if not res["stdout_complete"]:
            problems.append(f"JSON report of {res['stdout_bytes']:,} bytes not parsed")
        else:
            try:
                report = json.loads(res["stdout"])
            except ValueError as e:
                problems.append(f"stdout is not JSON: {e}")
                report = None
            if report is not None and run.args[0] == "scan":
                rules = sorted(_rules(report))
                if res["code"] == 1 and run.rules and not set(rules) & set(run.rules):
                    problems.append(f"exit 1 without any of {list(run.rules)}: rules {rules}")
            elif report is not None and run.args[0] == "sanitize":
                rules = [report.get("status")]
                if res["code"] == 0 and not (d / "sanitized.out").exists():
                    problems.append("sanitize exited 0 without writing its output")

    if run.args[0] == "sanitize" and res["code"] == 0 and (d / "sanitized.out").exists():
        # what was written must pass the gate, within the same bounds
        again = run_bounded([str(picklegate_bin), "scan", "sanitized.out"], d, run.address_space,
                            run.timeout, KEEP_TEXT)
        if again["code"] != 0:
            problems.append(f"`scan sanitized.out` exits {again['code']} / {again['signal']}"
                            f" (wall {again['wall']} s)")

    entry = {
        "case": f"{bomb.id}/{run.name}", "class": bomb.cls, "args": run.args,
        "bomb_bytes": build["bytes"], "build_seconds": build["seconds"],
        "code": res["code"], "signal": res["signal"], "timed_out": res["timed_out"],
        "wall": res["wall"], "max_rss_mib": round(res["max_rss"] / (1 << 20), 1),
        "stdout_bytes": res["stdout_bytes"], "stderr_bytes": res["stderr_bytes"],
        "rules": rules, "problems": problems,
        "stderr_head": res["stderr"][:600].decode("utf-8", "replace"),
    }
    _report(entry)
    print(json.dumps({k: entry[k] for k in ("case", "code", "signal", "wall", "max_rss_mib",
                                            "stdout_bytes", "problems")}))
    assert not problems, (
        f"{bomb.id} ({bomb.note}): picklegate {' '.join(run.args)} in {d}\n  "
        + "\n  ".join(problems)
        + f"\n  code={res['code']} signal={res['signal']} wall={res['wall']} s "
        f"rss={_fmt_mib(res['max_rss'])} stdout={res['stdout_bytes']:,} B rules={rules}\n  stderr: "
        + stderr[:1500].decode("utf-8", "replace"))


# ----------------------------------------------------------------------------------------------
# The bombs are what they claim to be (small versions through Python's own decoders), and the
# generator is deterministic.
# ----------------------------------------------------------------------------------------------

def test_hand_made_codecs_decode_with_the_reference_decoders():
    g = gen_bombs
    for n in (0, 1, 255, 1 << 20, 3 * (1 << 20) + 5):
        assert g.crc32_zeros(n) == zlib.crc32(bytes(n))
    assert zlib.decompress(g.deflate_zeros(3 * g.MiB + 7, b"h", b"t"), -15) == b"h" + bytes(3 * g.MiB + 7) + b"t"
    assert gzip.decompress(g.gzip_zeros(2 * g.MiB + 1, b"a", b"b")) == b"a" + bytes(2 * g.MiB + 1) + b"b"
    for n in (3, 2 * g.MiB + 1, 5 * g.MiB + 7):
        assert lzma.decompress(g.xz_zeros(n)) == bytes(n)
    import zstandard
    assert zstandard.ZstdDecompressor().decompressobj().decompress(g.zstd_rle_zeros(1_000_003)) == bytes(1_000_003)
    assert zstandard.get_frame_parameters(g.zstd_rle_zeros(1000, declared=1 << 62)).content_size == 1 << 62
    import lz4.frame
    assert lz4.frame.decompress(g.lz4_frame([g._lz4_zero_block()] * 2, 8 * g.MiB)) == bytes(8 * g.MiB)
    # quoted overlap: every member inflates (zipfile checks each CRC) to the later headers + kernel
    z = zipfile.ZipFile(io.BytesIO(g.quoted_overlap_zip(30, 5000, kernel_tail=g.MALICIOUS)))
    sizes = [len(z.read(n)) for n in z.namelist()]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] == 5000 + len(g.MALICIOUS)
    # nested and shared zips open with zipfile down to the pickle
    inner = zipfile.ZipFile(io.BytesIO(g._zip_depth(3))).read("d2.zip")
    assert zipfile.ZipFile(io.BytesIO(inner)).namelist() == ["d1.zip"]


def test_generator_is_deterministic(tmp_path):
    """Two runs of the generator write byte-identical bombs (same manifest, sha256 per file)."""
    only = ["findings-gzip-repeated", "zip-shared-5000", "zip-quoted-overlap-pickle", "xz-zeros-one-block",
            "zstd-rle-16g", "lz4-content-size-lie", "sanitize-rebuild-tensor-20k", "config-diamond-40"]
    args = [a for i in only for a in ("--only", i)]
    gen = REPO / "tests" / "fixtures" / "gen_bombs.py"
    for out in ("a", "b"):
        subprocess.run([sys.executable, str(gen), str(tmp_path / out), *args], check=True,
                       stderr=subprocess.DEVNULL, timeout=300)
    a = json.loads((tmp_path / "a" / "manifest.json").read_text())
    b = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert len(a) == len(only) and a == b
