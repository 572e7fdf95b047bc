"""Shared helpers for the Python oracle tests (imported by conftest.py and the test modules).

Nothing in this module unpickles a fixture in-process: every load happens in a fresh
subprocess (LOADER_CODE / RECORDER_CODE below)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
BENIGN_DIR = FIXTURES / "benign"
ATTACKS_DIR = FIXTURES / "attacks"

RESULT_MARK = "@@PICKLEGATE_ORACLE@@"


def _load_manifest(d):
    path = d / "manifest.json"
    if not path.exists():
        raise RuntimeError(f"{path} missing: run python3 tests/fixtures/generate.py")
    with open(path) as f:
        return json.load(f)


def benign_manifest():
    return _load_manifest(BENIGN_DIR)


def attack_manifest():
    return _load_manifest(ATTACKS_DIR)


def all_fixture_files():
    """[(id, Path, kind)] for every benign and attack fixture."""
    out = [(f"benign/{e['file']}", BENIGN_DIR / e["file"], "benign") for e in benign_manifest()]
    out += [(f"attacks/{e['file']}", ATTACKS_DIR / e["file"], "attack") for e in attack_manifest()]
    return out


# ----------------------------------------------------------------------------------------
# Victim loaders.  argv: path loader setup_json
# Prints one line "<RESULT_MARK> {json}" with the exception (if any) and a summary of the
# loaded object (for state dicts: key -> [dtype, shape]).
# ----------------------------------------------------------------------------------------
LOADER_CODE = r'''
import json, os, pickle, sys
path, loader, setup = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
MARK = "@@PICKLEGATE_ORACLE@@"

if setup and setup.get("kind") == "copyreg_ext":
    import copyreg
    copyreg.add_extension(setup["module"], setup["name"], setup["code"])

def torch_unpickler(f):
    import torch
    cache = {}
    class TorchDataPkl(pickle.Unpickler):
        # what torch.load does with archive/data.pkl, with zero-filled storages instead of the
        # zip records
        def persistent_load(self, pid):
            typename, storage_type, key, location, numel = pid
            if typename != "storage":
                raise pickle.UnpicklingError("unknown persistent id %r" % (typename,))
            if key not in cache:
                dtype = torch.uint8 if storage_type is torch.UntypedStorage else storage_type.dtype
                nbytes = numel * torch._utils._element_size(dtype)
                st = torch.UntypedStorage(nbytes)
                if nbytes:
                    st.fill_(0)
                cache[key] = torch.storage.TypedStorage(wrap_storage=st, dtype=dtype, _internal=True)
            return cache[key]
    return TorchDataPkl(f)

def summary(obj, depth=0):
    torch = sys.modules.get("torch")  # never import it just to describe the result
    if torch is not None and isinstance(obj, torch.Tensor):
        return ["tensor", str(obj.dtype), list(obj.shape)]
    if isinstance(obj, dict) and depth < 3:
        return {"type": type(obj).__name__,
                "items": {repr(k): summary(v, depth + 1) for k, v in obj.items()}}
    return type(obj).__module__ + "." + type(obj).__qualname__

result, error = None, None
try:
    if loader == "pickle.loads":
        with open(path, "rb") as f:
            data = f.read()
        result = pickle.loads(data)
    elif loader == "pickle.load_file":
        with open(path, "rb") as f:
            result = pickle.load(f)
    elif loader == "pickle.loads_loop":
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            while f.tell() < size:
                result = pickle.load(f)
    elif loader == "torch_weights_only_false":
        import torch
        result = torch.load(path, weights_only=False)
    elif loader == "torch_data_pkl":
        with open(path, "rb") as f:
            result = torch_unpickler(f).load()
    else:
        raise SystemExit("unknown loader " + loader)
except BaseException as e:  # exceptions raised after the payload are expected
    error = "%s: %s" % (type(e).__name__, str(e)[:300])
try:
    s = summary(result)
except BaseException as e:
    s = "summary failed: %r" % (e,)
sys.stdout.flush()
print(MARK, json.dumps({"error": error, "summary": s}), flush=True)
'''


def setup_arg(entry):
    if entry.get("setup") == "copyreg_ext":
        e = entry["ext"]
        return {"kind": "copyreg_ext", "module": e["module"], "name": e["name"], "code": e["code"]}
    if entry.get("setup"):
        raise ValueError(f"unknown setup {entry['setup']!r}")
    return None


def run_loader(path, loader, setup, canary_path, timeout=60, canary_wait=0.0):
    """Load `path` in a fresh interpreter the victim's way.

    Returns dict(error=..., summary=..., canary=<file content or None>, returncode, stderr)."""
    canary_path = Path(canary_path)
    if canary_path.exists():
        canary_path.unlink()
    env = dict(os.environ)
    env["PICKLEGATE_CANARY"] = str(canary_path)
    env.setdefault("PYTHONHASHSEED", "0")
    proc = subprocess.run(
        [sys.executable, "-c", LOADER_CODE, str(path), loader, json.dumps(setup)],
        env=env, capture_output=True, text=True, timeout=timeout, cwd=str(canary_path.parent),
        stdin=subprocess.DEVNULL,
    )
    out = {"error": None, "summary": None, "returncode": proc.returncode, "stderr": proc.stderr[-2000:]}
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            out.update(json.loads(line[len(RESULT_MARK):]))
    if out["summary"] is None and out["error"] is None:
        out["error"] = f"loader produced no result (rc={proc.returncode}): {proc.stderr[-500:]}"
    deadline = time.monotonic() + canary_wait
    while True:
        content = canary_path.read_text(errors="replace") if canary_path.exists() else None
        if (content and content.strip()) or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    out["canary"] = content
    return out


# ----------------------------------------------------------------------------------------
# Loader chains ("gzip|pickle.loads", "zip:model.pkl|pickle.loads", "joblib_load", ...): the
# helpers shared by the container oracle and the sanitizer's equality oracle. Needs `path`
# and `tmp` defined by the script that includes it.
# ----------------------------------------------------------------------------------------
# One chain step of decompression ("gzip", "zstd*2", ...), shared as source text: the chain
# scripts run it in their subprocesses, _audit's workers call the function defined from it here.
DECOMPRESS_STEPS = r'''
def decompress_steps(kind, data, name):
    import bz2, gzip, lzma, os, zlib
    base, _, n = kind.partition("*")
    for _ in range(int(n or 1)):
        if base == "gzip":
            data = gzip.decompress(data)
        elif base == "bz2":
            data = bz2.decompress(data)
        elif base in ("xz", "lzma"):
            data = lzma.decompress(data)
        elif base == "zlib":
            data = zlib.decompress(data)
        elif base == "zstd":
            import zstandard
            data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
        elif base == "lz4":
            import lz4.frame
            data = lz4.frame.decompress(data)
        else:
            raise ValueError("unknown unwrap step " + kind)
    stem, ext = os.path.splitext(name)
    return data, (stem if ext else name + ".out")
'''
exec(DECOMPRESS_STEPS)

_TORCH_UNPICKLER = "def torch_unpickler(" + LOADER_CODE.split("def torch_unpickler(")[1].split("def summary(")[0]

CHAIN_LIB = r'''
import bz2, gzip, io, json, lzma, os, pickle, sys, tarfile, tempfile, zipfile, zlib
path, chains = sys.argv[1], sys.argv[2]
MARK = "@@PICKLEGATE_ORACLE@@"
tmp = tempfile.mkdtemp(prefix="pg-oracle-")
''' + DECOMPRESS_STEPS + _TORCH_UNPICKLER + r'''

def unwrap(kind, arg, data, name):
    if kind in ("zip", "tar", "7z"):
        if kind == "zip":
            data = zipfile.ZipFile(io.BytesIO(data)).read(arg)
        elif kind == "tar":
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as t:
                data = t.extractfile(arg).read()
        else:
            import py7zr
            d = tempfile.mkdtemp(dir=tmp)
            with py7zr.SevenZipFile(io.BytesIO(data), "r") as z:
                z.extract(path=d, targets=[arg])
            with open(os.path.join(d, arg), "rb") as f:
                data = f.read()
        return data, os.path.basename(arg)
    return decompress_steps(kind, data, name)

def touch(obj):
    import numpy as np
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        obj.tolist()
    return obj

def final(loader, p):
    if loader == "none":
        return None
    if loader == "pickle.loads":
        with open(p, "rb") as f:
            return pickle.loads(f.read())
    if loader in ("torch_weights_only_false", "torch_weights_only_true"):
        import torch
        return torch.load(p, weights_only=loader.endswith("true"))
    if loader == "torch_data_pkl":
        with open(p, "rb") as f:
            return torch_unpickler(f).load()
    if loader == "torch_jit_load":
        import torch
        return torch.jit.load(p)
    if loader == "joblib_load":
        import joblib
        return joblib.load(p)
    if loader == "numpy_load":
        import numpy as np
        r = np.load(p, allow_pickle=True)
        if isinstance(r, np.lib.npyio.NpzFile):
            with r:
                return {k: touch(r[k]) for k in r.files}
        return touch(r)
    if loader == "pandas_read_pickle":
        import pandas as pd
        return pd.read_pickle(p)
    if loader == "safetensors_load":
        import safetensors.torch
        return safetensors.torch.load_file(p)
    raise SystemExit("unknown loader " + loader)

def describe(obj):
    t = type(obj)
    return t.__module__ + "." + t.__qualname__

def load_chain(path, chain):
    steps = chain.split("|")
    p, data, name = path, None, os.path.basename(path)
    for step in steps[:-1]:
        if data is None:
            with open(path, "rb") as f:
                data = f.read()
        kind, _, arg = step.partition(":")
        data, name = unwrap(kind, arg, data, name)
    if data is not None:
        p = os.path.join(tempfile.mkdtemp(dir=tmp), name)
        with open(p, "wb") as f:
            f.write(data)
    return final(steps[-1], p)

'''


# ----------------------------------------------------------------------------------------
# Recording unpickler.  argv: path impl("py"|"c")
# find_class records (module, name) exactly as CPython maps them and returns a fresh stub
# class; it never imports anything, so no payload can run.
# ----------------------------------------------------------------------------------------
RECORDER_CODE = r'''
import io, json, pickle, pickletools, sys, _compat_pickle
path, impl = sys.argv[1], sys.argv[2]
MARK = "@@PICKLEGATE_ORACLE@@"
with open(path, "rb") as f:
    data = f.read()

def _any(*a, **k):
    return None

class StubMeta(type):
    def __setitem__(cls, key, value):
        pass

def new_stub():
    def __new__(cls, *a, **k):
        return object.__new__(cls)
    def __init__(self, *a, **k):
        pass
    def __call__(self, *a, **k):
        return new_stub()()
    ns = {"__new__": __new__, "__init__": __init__, "__call__": __call__,
          "__setstate__": _any, "__setitem__": _any, "append": _any, "extend": _any, "add": _any}
    return StubMeta("Stub", (), ns)

def fix_imports(module, name, proto):
    # pickle.Unpickler.find_class: `if self.proto < 3 and self.fix_imports:`
    if proto < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
    return module, name

# protocol in effect at each op that calls find_class (GLOBAL, INST, STACK_GLOBAL), in stream
# order; the C unpickler does not expose self.proto, and find_class calls happen in this order.
lookups = []
cur = 0
try:
    for op, arg, pos in pickletools.genops(data):
        if op.name == "PROTO":
            cur = arg
        elif op.name in ("GLOBAL", "INST", "STACK_GLOBAL"):
            raw = tuple(arg.split(" ", 1)) if op.name != "STACK_GLOBAL" else None
            lookups.append((cur, raw))
except Exception:
    pass

recorded = []
notes = []

class Recorder:
    def record(self, module, name, proto):
        m, n = fix_imports(module, name, proto)
        recorded.append([m, n])
        return new_stub()

    def persistent_load(self, pid):
        return new_stub()()

class PyRecorder(Recorder, pickle._Unpickler):
    def find_class(self, module, name):
        return self.record(module, name, self.proto)

class CRecorder(Recorder, pickle.Unpickler):
    def find_class(self, module, name):
        i = len(recorded)
        if i < len(lookups):
            proto, raw = lookups[i]
            if raw is not None and raw != (module, name):
                notes.append("desync at lookup %d: %r vs %r" % (i, raw, (module, name)))
        else:
            proto = lookups[-1][0] if lookups else 0
            notes.append("more find_class calls than GLOBAL/INST/STACK_GLOBAL ops")
        return self.record(module, name, proto)

class AllAtOnce:
    """File-like whose first read returns everything: the C unpickler then keeps the whole
    stream in its buffer and reads it linearly, exactly as pickle.loads(bytes) does."""
    def __init__(self, data):
        self.data, self.pos = data, 0
    def read(self, n=-1):
        rest, self.pos = self.data[self.pos:], len(self.data)
        return rest
    def readline(self):
        i = self.data.find(b"\n", self.pos)
        end = len(self.data) if i < 0 else i + 1
        line, self.pos = self.data[self.pos:end], end
        return line

error = None
try:
    if impl == "py":
        PyRecorder(io.BytesIO(data)).load()
    else:
        CRecorder(AllAtOnce(data)).load()
except BaseException as e:
    error = "%s: %s" % (type(e).__name__, str(e)[:300])
print(MARK, json.dumps({"globals": recorded, "error": error, "notes": notes}), flush=True)
'''


def run_recorder(path, impl, timeout=60):
    env = {k: v for k, v in os.environ.items() if k != "PICKLEGATE_CANARY"}
    proc = subprocess.run([sys.executable, "-c", RECORDER_CODE, str(path), impl], env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK):])
    raise RuntimeError(f"recorder failed rc={proc.returncode}: {proc.stderr[-2000:]}")


# ----------------------------------------------------------------------------------------
# Equality oracle for the sanitizer.  argv: clean chain original
# Loads both files with the victim's loader chain in one fresh interpreter and compares the
# objects structurally: same types, same values (tensors with torch.equal, arrays with
# array_equal), same aliasing (an object shared in one is shared in the other), and for
# fitted estimators the same predictions.
# ----------------------------------------------------------------------------------------
EQUAL_CODE = CHAIN_LIB + r'''

class Differ(Exception):
    pass

def same(a, b, where, pairs):
    if type(a) is not type(b):
        raise Differ("%s: %s vs %s" % (where, type(a).__name__, type(b).__name__))
    if a is None or isinstance(a, (bool, int, str, bytes)):
        if a != b:
            raise Differ("%s: %r vs %r" % (where, a, b))
        return
    if isinstance(a, float):
        if not (a == b or (a != a and b != b)):
            raise Differ("%s: %r vs %r" % (where, a, b))
        return
    # aliasing: the object graph must have the same shape, not only equal leaves
    if id(a) in pairs:
        if pairs[id(a)] is not b:
            raise Differ("%s: shared in one object, not in the other" % where)
        return
    pairs[id(a)] = b
    torch = sys.modules.get("torch")
    np = sys.modules.get("numpy")
    if torch is not None and isinstance(a, torch.Tensor):
        if a.dtype != b.dtype or a.shape != b.shape or a.requires_grad != b.requires_grad:
            raise Differ("%s: tensor %s%s vs %s%s" % (where, a.dtype, list(a.shape), b.dtype, list(b.shape)))
        if a.is_quantized:
            ok = torch.equal(a.int_repr(), b.int_repr()) and torch.equal(a.dequantize(), b.dequantize())
        elif a.is_sparse or a.layout != torch.strided:
            ok = torch.equal(a.to_dense(), b.to_dense())
        else:
            ok = torch.equal(a, b) or bool(torch.isnan(a).all() and torch.isnan(b).all())
        if not ok:
            raise Differ("%s: tensor values differ" % where)
        return
    if np is not None and isinstance(a, np.ndarray):
        if a.dtype != b.dtype or a.shape != b.shape:
            raise Differ("%s: array %s%s vs %s%s" % (where, a.dtype, a.shape, b.dtype, b.shape))
        if a.dtype.hasobject:
            for i, (x, y) in enumerate(zip(a.ravel().tolist(), b.ravel().tolist())):
                same(x, y, "%s[%d]" % (where, i), pairs)
        elif a.tobytes() != b.tobytes():
            raise Differ("%s: array bytes differ" % where)
        return
    if np is not None and isinstance(a, np.generic):
        if a.dtype != b.dtype or a.tobytes() != b.tobytes():
            raise Differ("%s: %r vs %r" % (where, a, b))
        return
    if np is not None and isinstance(a, np.random.Generator):
        return same(a.bit_generator.state, b.bit_generator.state, where + ".state", pairs)
    if np is not None and isinstance(a, np.random.RandomState):
        return same(a.get_state(legacy=False), b.get_state(legacy=False), where + ".state", pairs)
    if type(a).__module__.startswith("pandas") and hasattr(a, "equals"):
        if not a.equals(b) or getattr(a, "dtypes", None) is not None and not a.dtypes.equals(b.dtypes):
            raise Differ("%s: pandas objects differ" % where)
        return
    if isinstance(a, dict):
        if list(a) != list(b):
            raise Differ("%s: keys %r vs %r" % (where, list(a)[:8], list(b)[:8]))
        for k in a:
            same(a[k], b[k], "%s[%r]" % (where, k), pairs)
    elif isinstance(a, (list, tuple)):
        if len(a) != len(b):
            raise Differ("%s: length %d vs %d" % (where, len(a), len(b)))
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, "%s[%d]" % (where, i), pairs)
    elif isinstance(a, (set, frozenset, complex, bytearray)) or type(a).__module__ in ("datetime", "decimal"):
        if a != b:
            raise Differ("%s: %r vs %r" % (where, a, b))
    elif hasattr(a, "__dict__") and not isinstance(a, type):
        same(vars(a), vars(b), where + ".__dict__", pairs)
    else:
        try:
            equal = bool(a == b)
        except Exception:
            equal = False
        if not equal and pickle.dumps(a, 4) != pickle.dumps(b, 4):
            raise Differ("%s: %r vs %r" % (where, a, b))
    # also whatever BUILD restored outside __dict__ (torch.nn.Parameter, tensors)
    if torch is not None and isinstance(a, torch.Tensor):
        return

def predictions(obj):
    np = sys.modules.get("numpy")
    n = getattr(obj, "n_features_in_", None)
    if np is None or n is None or not hasattr(obj, "predict"):
        return None
    X = np.random.RandomState(0).randn(16, int(n))
    return obj.predict(X)

def compare(clean, chain, original):
    result = {"equal": False, "error": None, "detail": None, "canary": None}
    try:
        a = load_chain(clean, chain)
        canary = os.environ["PICKLEGATE_CANARY"]
        if os.path.exists(canary):  # only the sanitized file may not fire; the original may
            result["canary"] = open(canary).read()
        b = load_chain(original, chain)
        same(a, b, "root", {})
        pa, pb = predictions(a), predictions(b)
        if pa is not None or pb is not None:
            if pa is None or pb is None or pa.tobytes() != pb.tobytes():
                raise Differ("predictions differ")
            result["detail"] = "predictions equal on 16 random rows"
        result["equal"] = True
    except Differ as e:
        result["detail"] = str(e)
    except BaseException as e:
        result["error"] = "%s: %s" % (type(e).__name__, str(e)[:600])
    return result

with open(path) as f:
    jobs = json.load(f)
results = []
for clean, chain, original in jobs:
    canary = os.environ["PICKLEGATE_CANARY"]
    if os.path.exists(canary):
        os.unlink(canary)
    results.append(compare(clean, chain, original))
sys.stdout.flush()
print(MARK, json.dumps(results), flush=True)
'''


def run_equal(jobs, canary_path, timeout=900):
    """For each (clean, chain, original): loads both with the loader chain in one fresh
    interpreter (shared by all jobs) and compares them.

    Returns one dict(equal, error, detail, canary) per job; `canary` is what the clean file's
    load wrote to the canary, if anything."""
    canary_path = Path(canary_path)
    jobs_file = canary_path.parent / "equal-jobs.json"
    jobs_file.write_text(json.dumps([[str(c), ch, str(o)] for c, ch, o in jobs]))
    env = dict(os.environ, PICKLEGATE_CANARY=str(canary_path))
    env.setdefault("PYTHONHASHSEED", "0")
    proc = subprocess.run([sys.executable, "-c", EQUAL_CODE, str(jobs_file), ""],
                          env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=str(canary_path.parent), stdin=subprocess.DEVNULL)
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK):])
    raise RuntimeError(f"equality oracle failed rc={proc.returncode}: {proc.stderr[-2000:]}")
