"""Differential tests: picklegate's disassembler and global resolution against CPython.

For every fixture (benign + attacks):
  a) `picklegate disasm --format json FILE` ops == pickletools.genops, stream by stream;
     GLOBAL/INST names == the fix_imports-mapped names CPython would look up;
  b) (benign only) `picklegate disasm --plain FILE` == pickletools.dis output, byte for byte;
  c) the (module, name) sequence a recording unpickler (pure-Python and C, find_class
     returning stubs, run in a subprocess) sees == picklegate's globals for stream 0
     (a prefix when CPython stops with an error).

The binary is $PICKLEGATE_BIN or target/release/picklegate; a missing binary fails."""

import _compat_pickle
import io
import json
import pickletools
import subprocess

import pytest

import _oracle

FILES = _oracle.all_fixture_files()
IDS = [f[0] for f in FILES]
BENIGN_FILES = [f for f in FILES if f[2] == "benign"]

_disasm_cache = {}


def disasm_json(binary, path):
    key = (str(binary), str(path))
    if key not in _disasm_cache:
        proc = subprocess.run([str(binary), "disasm", "--format", "json", str(path)],
                              capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
        try:
            out = json.loads(proc.stdout)
        except ValueError:
            pytest.fail(f"picklegate disasm --format json {path} printed no JSON "
                        f"(rc={proc.returncode}): {proc.stderr[-2000:]!r}")
        _disasm_cache[key] = out
    return _disasm_cache[key]


def genops_stream(data, off):
    """Python's view of the pickle starting at `off`.

    Returns (ops, error, end): ops = [(absolute offset, name, repr(arg) | None)] for every op
    genops yields; error = exception text if genops raised; end = offset after STOP."""
    ops, err, end = [], None, None
    try:
        for op, arg, pos in pickletools.genops(io.BytesIO(data[off:])):
            ops.append((off + pos, op.name, None if arg is None else repr(arg)))
            if op.name == "STOP":
                end = off + pos + 1
    except Exception as e:  # genops raises ValueError (and friends) on bad streams
        err = f"{type(e).__name__}: {e}"
        end = None
    return ops, err, end


def fix_imports(module, name, proto):
    """pickle.Unpickler.find_class's mapping (fix_imports=True)."""
    if proto < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            return _compat_pickle.NAME_MAPPING[(module, name)]
        if module in _compat_pickle.IMPORT_MAPPING:
            return _compat_pickle.IMPORT_MAPPING[module], name
    return module, name


def short(seq, n=12):
    seq = list(seq)
    return seq if len(seq) <= n else seq[:n] + [f"... {len(seq) - n} more"]


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"first difference at op #{i}: picklegate {x!r} vs pickletools {y!r}"
    return f"lengths differ: picklegate {len(a)} ops vs pickletools {len(b)} ops"


# ---------------------------------------------------------------------------- (a) ops
@pytest.mark.parametrize("fid,path,kind", FILES, ids=IDS)
def test_disasm_ops_match_genops(fid, path, kind, picklegate_bin):
    data = path.read_bytes()
    out = disasm_json(picklegate_bin, path)
    streams = out.get("streams")
    assert streams, f"no streams in picklegate output for {fid}"
    assert streams[0]["offset"] == 0

    prev_end = None
    for k, s in enumerate(streams):
        off = s["offset"]
        if k > 0:
            assert prev_end is not None and off == prev_end, (
                f"stream {k} at {off} does not start right after the previous STOP ({prev_end})")
        ops, err, end = genops_stream(data, off)
        got = [(o["offset"], o["name"], o["arg"]) for o in s["ops"]]
        if err is None and s.get("error"):
            # picklegate stopped where the VM stops (missing memo key, STACK_GLOBAL on a
            # non-str, ...) although the bytes still decode: allowed only as a prefix, and
            # only if CPython really fails on this stream too
            assert got and got == ops[:len(got)], f"stream {k}: {first_diff(got, ops[:len(got)])}"
            if k == 0:
                rec = _oracle.run_recorder(path, "c")
                assert rec["error"] is not None, (
                    f"picklegate reports {s['error']!r} but CPython loads the stream without error")
        elif err is None:
            assert got == ops, f"stream {k}: {first_diff(got, ops)}"
        else:
            assert got[:len(ops)] == ops, f"stream {k}: {first_diff(got[:len(ops)], ops)}"
            assert s.get("error"), f"stream {k}: genops raised {err!r} but picklegate reports no error"
        prev_end = end

    # a complete pickle after the last reported stream must not be missed
    if prev_end is not None and prev_end < len(data):
        ops, err, _ = genops_stream(data, prev_end)
        assert err is not None, f"picklegate missed a trailing pickle at offset {prev_end}"

    if kind == "benign":
        assert len(streams) == 1, "benign fixtures hold exactly one pickle"
        assert streams[0].get("error") is None, streams[0].get("error")


# ------------------------------------------------------------------- (a') global names
@pytest.mark.parametrize("fid,path,kind", FILES, ids=IDS)
def test_disasm_global_names_are_mapped(fid, path, kind, picklegate_bin):
    """Each GLOBAL/INST op appears in `globals` at its offset, with module/name mapped by
    fix_imports using the protocol set by the last PROTO before it in that stream; every
    globals entry points at an op of the opcode it names."""
    data = path.read_bytes()
    for k, s in enumerate(disasm_json(picklegate_bin, path)["streams"]):
        by_off = {g["offset"]: g for g in s.get("globals", [])}
        op_names = {o["offset"]: o["name"] for o in s["ops"]}
        for g in s.get("globals", []):
            assert op_names.get(g["offset"]) == g["opcode"], (
                f"stream {k}: globals entry {g} does not point at a {g['opcode']} op")
        proto = 0
        for off, name, raw in genops_raw(data, s["offset"]):
            if name == "PROTO":
                proto = raw
            elif name in ("GLOBAL", "INST"):
                module, gname = raw.split(" ", 1)
                want = fix_imports(module, gname, proto)
                g = by_off.get(off)
                assert g is not None, f"stream {k}: {name} at {off} ({raw!r}) missing from globals"
                assert (g["module"], g["name"]) == want, (
                    f"stream {k}: {name} at {off} {raw!r} (protocol {proto}) should be {want}, "
                    f"picklegate says {(g['module'], g['name'])}")
                assert g["opcode"] == name


def genops_raw(data, off):
    """[(absolute offset, name, arg)] up to STOP or the first decoding error."""
    out = []
    try:
        for op, arg, pos in pickletools.genops(io.BytesIO(data[off:])):
            out.append((off + pos, op.name, arg))
    except Exception:
        pass
    return out


# -------------------------------------------------------------------------- (b) plain
@pytest.mark.parametrize("fid,path,kind", BENIGN_FILES, ids=[f[0] for f in BENIGN_FILES])
def test_disasm_plain_matches_pickletools_dis(fid, path, kind, picklegate_bin):
    data = path.read_bytes()
    buf = io.StringIO()
    pickletools.dis(data, out=buf)
    want = buf.getvalue()
    proc = subprocess.run([str(picklegate_bin), "disasm", "--plain", str(path)],
                          capture_output=True, timeout=120, stdin=subprocess.DEVNULL)
    got = proc.stdout.decode("utf-8", errors="replace")
    if got != want:
        gl, wl = got.splitlines(), want.splitlines()
        for i, (a, b) in enumerate(zip(gl, wl)):
            if a != b:
                pytest.fail(f"line {i + 1} differs:\n picklegate: {a!r}\n pickletools: {b!r}")
        pytest.fail(f"line counts differ: picklegate {len(gl)} vs pickletools {len(wl)} "
                    f"(rc={proc.returncode}, stderr={proc.stderr[-500:]!r}); "
                    f"tail picklegate={gl[-2:]!r} pickletools={wl[-2:]!r}")


# ------------------------------------------------------------------ (c) find_class order
@pytest.mark.parametrize("impl", ["py", "c"])
@pytest.mark.parametrize("fid,path,kind", FILES, ids=IDS)
def test_recorded_find_class_sequence(fid, path, kind, impl, picklegate_bin):
    streams = disasm_json(picklegate_bin, path)["streams"]
    pg = [(g["module"], g["name"]) for g in streams[0].get("globals", [])]
    rec = _oracle.run_recorder(path, impl)
    got = [tuple(x) for x in rec["globals"]]
    assert not rec["notes"], rec["notes"]
    if kind == "benign":
        assert rec["error"] is None, f"stub unpickler failed on a benign fixture: {rec['error']}"
    if rec["error"] is None:
        assert got == pg, f"CPython find_class sequence {short(got)} != picklegate globals {short(pg)}"
    else:
        assert got == pg[:len(got)], (
            f"CPython ({rec['error']}) looked up {short(got)}, not a prefix of picklegate globals "
            f"{short(pg)}")
