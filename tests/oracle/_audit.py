"""Loader-differential oracle: which globals do the REAL loaders ask for?

For a file and a loader, a long-lived worker subprocess (one per loader: importing torch takes
seconds, so never one process per file) runs the real loader -- `pickle.load`, pure-Python
`pickle._Unpickler`, `torch.load(weights_only=False)`, `joblib.load`, `numpy.load(allow_pickle=True)`,
`pandas.read_pickle`, ... -- under `sys.addaudithook`. The hook sees every `pickle.find_class`
audit event (module, name), records it, and raises `AuditAbort` (a BaseException, so the
loaders' `except Exception` / pandas' `except (TypeError, ...)` retries cannot swallow it) at
the first name outside HARMLESS below: the load stops before anything attacker-chosen is
imported or called. Nothing is ever unpickled in the test process itself.

Worker protocol: one request per stdin line, either a bare path or a JSON object
`{"file": path, "unwrap": ["zip:<member>", "tar:<member>", "gzip", ...], "setup": null}` (the
victim extracts a member / decompresses first, as in the manifests' loader chains; `setup` is a
manifest `copyreg_ext` registration for that request); one JSON line back:
`{file, loader, unwrap, events: [[module, name], ...], aborted_at: [m, n] | null,
error: str | null, blocked: [...], fired: bool, tampered: [...]}`.
`events` are the RAW names the audit event carries (before fix_imports; after the loader's
own renaming, e.g. torch's `torch.tensor` -> `torch._tensor`, pandas' `_class_locations_map`);
`compare()` accepts a picklegate global that maps to the event either way.

Run as a worker: `python _audit.py --worker LOADER` (the parent does this; see AuditPool).

Safety net: while a load runs, the hook also refuses process, ctypes, socket, code-object and
file-system-changing audit events (BLOCKED_EVENTS; writes, chmod/chown only inside the worker's
scratch dir, where torch's legacy tar loader extracts), each load has a SIGALRM budget, the
worker an RLIMIT_AS of its size + 3 GiB, and the parent kills a worker that does not answer.
Any blocked event, canary file or timeout is a harness problem the tests fail on.

Not required by `compare()`: an aborted name whose top-level module does not exist in the
worker (find_class's import fails before any code runs; text files spell `c at\ndog`).

What the oracle cannot see: globals after the first non-harmless one (the load is aborted
there, so a benign sklearn pickle stops at its first estimator class), code a loader runs
without `pickle.find_class` (torch's TorchScript/`weights_only` unpicklers are C++ / custom and
raise no such event; torch.load resolves names containing `Storage` itself), and anything that
needs a global's real side effect to proceed."""

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

# ----------------------------------------------------------------------------------------
# The harmless set.  A name here is resolved and handed to the unpickler for real, so the
# load can go on to later globals; it must stay inert whatever the pickle does with it: call it
# with any arguments built from other harmless names and literals, BUILD it, fill it. Every
# entry says why. Exact (module, name) pairs only (a dotted name like
# `collections.OrderedDict.fromkeys` or `...__globals__` is a different pair and aborts).
# Python-level functions/classes here are checked for tampering after every request (BUILD
# with slot state can setattr on a class or function; see _Tamper below).
# Why the set as a whole is inert: a pickle can only call what find_class gave it or what such
# calls returned; there is no attribute-access opcode (dotted names go through find_class, as
# exact pairs here), and BUILD only calls __setstate__ of, or sets attributes on, objects these
# produced. So with every entry inert whatever its arguments, nothing else is reachable.
# ----------------------------------------------------------------------------------------
HARMLESS = {
    ("collections", "OrderedDict"):
        "C dict subclass: calling, filling (SETITEMS) or BUILDing it runs no user code",
    ("builtins", "set"): "C container type",
    ("builtins", "frozenset"): "C container type",
    ("builtins", "bytearray"): "C bytes type (a huge size only costs memory: bounded by RLIMIT_AS)",
    ("builtins", "bytes"): "C bytes type; bytes(x) only iterates harmless objects",
    ("builtins", "complex"): "C number type",
    ("builtins", "slice"): "C value type",
    ("builtins", "object"):
        "object() / object.__new__(cls) only allocates; cls itself had to pass this hook",
    ("copyreg", "_reconstructor"):
        "base.__new__(cls, state) and base.__init__(obj, state): cls and base come from the "
        "pickle, so they passed this hook themselves",
    ("_codecs", "encode"):
        "str -> bytes (protocol <= 2 bytes); codec lookup only imports stdlib encodings.* "
        "modules (encodings.search_function rejects dotted names)",
    ("datetime", "datetime"): "C value type",
    ("datetime", "date"): "C value type",
    ("datetime", "time"): "C value type (a tzinfo argument must already be a tzinfo instance)",
    ("datetime", "timedelta"): "C value type",
    ("numpy", "ndarray"): "C type; BUILD is ndarray.__setstate__ (C), object arrays hold pickle values",
    ("numpy", "dtype"): "C type; dtype(spec) parses a spec, BUILD is dtype.__setstate__ (C)",
    ("numpy._core.multiarray", "_reconstruct"):
        "ndarray.__new__(subtype, shape, dtype); subtype must be an ndarray subclass that passed the hook",
    ("numpy.core.multiarray", "_reconstruct"): "numpy 1 path of the same C function (numpy 2 shim module)",
    ("numpy._core.multiarray", "scalar"):
        "builds a scalar from bytes (object dtype: returns the pickled value as is)",
    ("numpy.core.multiarray", "scalar"): "numpy 1 path of the same C function",
    ("numpy._core.numeric", "_frombuffer"): "np.frombuffer(buf, dtype).reshape(shape, order)",
    ("numpy.core.numeric", "_frombuffer"): "numpy 1 path of the same function",
    ("joblib.numpy_pickle", "NumpyArrayWrapper"):
        "plain attribute holder; joblib's BUILD hook calls its read(), which only reads the "
        "array bytes from the same stream (object dtypes: the nested pickle, unpickled through "
        "the same audited find_class). mmap_mode is never set here, so no file is opened. "
        "NDArrayWrapper / ZNDArrayWrapper (old formats that np.load other files by name) are "
        "NOT harmless",
    ("torch._utils", "_rebuild_tensor"):
        "torch.empty(0).set_(storage, offset, size, stride): storage must be a real storage "
        "(from persistent_load) or it raises",
    ("torch._utils", "_rebuild_tensor_v2"):
        "_rebuild_tensor + requires_grad + backward_hooks stored (never called during a load) "
        "+ C++ tensor metadata",
    ("torch._utils", "_rebuild_parameter"): "torch.nn.Parameter(data, requires_grad) + hooks stored",
    ("torch._utils", "_rebuild_qtensor"):
        "allocates a quantized tensor (C++) from a storage and quantizer parameters",
    ("torch", "Size"): "tuple subclass",
}


def _harmless_dynamic():
    """Names computed from the installed torch (only in workers that import torch):
    torch dtypes and qschemes (plain values, not callable) and the typed/untyped storage
    classes (allocate or copy numbers only)."""
    out = {}
    torch = sys.modules.get("torch")
    if torch is None:
        return out
    for n in dir(torch):
        v = getattr(torch, n, None)
        if isinstance(v, torch.dtype):
            out[("torch", n)] = "torch dtype value (not callable)"
        elif isinstance(v, torch.qscheme):
            out[("torch", n)] = "torch qscheme value (not callable)"
        elif (n.endswith("Storage") and isinstance(v, type)
              and (issubclass(v, torch.storage._LegacyStorage) or v is torch.UntypedStorage)):
            out[("torch", n)] = "storage class: allocates or copies numbers"
    return out


def fix_imports(module, name):
    """pickle's protocol < 3 `fix_imports` mapping (Lib/_compat_pickle.py)."""
    import _compat_pickle
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    if module in _compat_pickle.IMPORT_MAPPING:
        return _compat_pickle.IMPORT_MAPPING[module], name
    return module, name


# ----------------------------------------------------------------------------------------
# Worker side
# ----------------------------------------------------------------------------------------
class LoadTimeout(BaseException):
    """SIGALRM inside the worker: a loader spinning in Python code (joblib's zlib reader on a
    second stream) stops with its events so far; the parent's timeout kills C-level hangs."""


class AuditAbort(BaseException):
    """Raised from the audit hook. BaseException: `except Exception` in a loader must not turn
    an abort into a fallback path the real load would not take."""


# Audit events that must never happen while a load runs: if the harmless set were not inert,
# this is where it would show. Raised like an abort and reported in `blocked` (the test fails
# on any).
BLOCKED_EVENTS = ("os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
                  "subprocess.Popen", "pty.spawn", "ctypes.dlopen", "ctypes.dlsym",
                  "ctypes.call_function", "socket.connect", "socket.bind", "webbrowser.open",
                  "os.kill", "os.killpg", "signal.pthread_kill", "builtins.input",
                  "code.__new__", "function.__new__", "sys.settrace", "sys.setprofile",
                  "os.chmod", "os.chown", "os.rename", "os.symlink", "os.link")

TORCH_MODULE_MAP = {"torch.tensor": "torch._tensor"}  # torch/serialization.py load_module_mapping


class _State:
    armed = False
    events = []
    aborted_at = None
    blocked = []
    after_abort = 0
    importable = None
    harmless = {}
    scratch = ""


def _importable(module):
    """Could find_class's import of `module` run any code here? Only if its top-level package
    exists: `importlib.util.find_spec` of a top-level name searches sys.path without importing
    anything. A name whose top-level module does not exist raises ModuleNotFoundError before any
    code runs, so it is inert (text files that happen to spell `c at\ndog` are such)."""
    import importlib.util
    if not isinstance(module, str) or not module:
        return False
    top = module.split(".")[0]
    if top in sys.modules:
        return True
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def _writes(mode, flags):
    if isinstance(mode, str):
        return any(c in mode for c in "wax+")
    if isinstance(flags, int):
        return bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND))
    return False


def _hook(event, args):
    if not _State.armed:
        return
    if event == "pickle.find_class":
        module, name = args[0], args[1]
        if _State.aborted_at is not None:
            # The loader swallowed the abort (a bare `except:`) and looks up more names: refuse
            # them all. They are not recorded: the real load would not have got here this way.
            _State.after_abort += 1
            raise AuditAbort("after abort: %s.%s" % (module, name))
        _State.events.append([str(module), str(name)])
        key = (module, name)
        if isinstance(module, str) and isinstance(name, str) and key not in _State.harmless:
            key = fix_imports(module, name)
        # Harmless, and its module already imported by this worker: resolving it never runs a
        # module body (a worker without torch aborts at torch names instead of importing torch).
        if key in _State.harmless and key[0] in sys.modules:
            return
        _State.aborted_at = [str(module), str(name)]
        # (protocol < 3 maps `__builtin__` to `builtins` after this event: either may be imported)
        _State.importable = _importable(module) or _importable(key[0])
        raise AuditAbort("not harmless: %s.%s" % (module, name))
    if event == "open" and len(args) >= 3 and _writes(args[1], args[2]):
        path = args[0]
        if isinstance(path, (str, bytes, os.PathLike)):
            p = os.path.realpath(os.fsdecode(path))
            if p == _State.scratch or p.startswith(_State.scratch + os.sep) or p == os.devnull:
                return
        elif isinstance(path, int):
            return
        _State.blocked.append([event, repr(args)[:200]])
        raise AuditAbort("write outside the scratch dir: %r" % (path,))
    if event in ("os.chown", "os.chmod", "os.utime") and args and isinstance(args[0], (str, bytes, os.PathLike)):
        # tarfile.extract (torch's legacy tar loader) sets owner/mode/times of what it
        # extracted into the scratch dir
        p = os.path.realpath(os.fsdecode(args[0]))
        if p.startswith(_State.scratch + os.sep):
            return
    if event.startswith(BLOCKED_EVENTS):
        _State.blocked.append([event, repr(args)[:200]])
        raise AuditAbort("blocked audit event " + event)


class _Tamper:
    """Snapshot of the mutable state of harmless Python-level objects: BUILD with slot state
    can setattr on a class or function (e.g. NumpyArrayWrapper.read, or a function's
    __defaults__), which would leak into later requests of this long-lived worker."""

    def __init__(self):
        self.objs = []
        for (m, n) in _State.harmless:
            mod = sys.modules.get(m)
            obj = getattr(mod, n, None) if mod is not None else None
            if obj is None:
                continue
            if isinstance(obj, type) and obj.__flags__ & (1 << 9):  # Py_TPFLAGS_HEAPTYPE: a Python class
                self.objs.append(("%s.%s" % (m, n), obj))
            elif hasattr(obj, "__code__"):
                self.objs.append(("%s.%s" % (m, n), obj))
        self.snap = {k: self._state(o) for k, o in self.objs}

    @staticmethod
    def _state(o):
        if isinstance(o, type):
            return dict(vars(o))
        return (o.__code__, o.__defaults__, o.__kwdefaults__, dict(o.__dict__))

    def changed(self):
        out = []
        for k, o in self.objs:
            s = self._state(o)
            if s != self.snap[k]:
                out.append(k)
        return out


def _unwrap(step, data, name, tmp):
    import io, tarfile, zipfile
    kind, _, arg = step.partition(":")
    if kind == "zip":
        return zipfile.ZipFile(io.BytesIO(data)).read(arg), os.path.basename(arg)
    if kind in ("tar", "tarz"):  # tarz: tarfile with ignore_zeros=True, as `tar --ignore-zeros` reads
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*", ignore_zeros=(kind == "tarz")) as t:
            return t.extractfile(arg).read(), os.path.basename(arg)
    if kind == "gnutar":  # GNU tar extracts the member (its exit status ignored, as the victim does)
        d = tempfile.mkdtemp(dir=tmp)
        with open(os.path.join(d, "archive.tar"), "wb") as f:
            f.write(data)
        os.mkdir(os.path.join(d, "x"))
        subprocess.run(["tar", "-xf", os.path.join(d, "archive.tar"), "-C", os.path.join(d, "x"), arg],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
        with open(os.path.join(d, "x", arg), "rb") as f:
            return f.read(), os.path.basename(arg)
    if kind == "7z":
        import py7zr
        d = tempfile.mkdtemp(dir=tmp)
        with py7zr.SevenZipFile(io.BytesIO(data), "r") as z:
            z.extract(path=d, targets=[arg])
        with open(os.path.join(d, arg), "rb") as f:
            return f.read(), os.path.basename(arg)
    import _oracle
    return _oracle.decompress_steps(kind, data, name)


def _loaders():
    """name -> (import function, load function(path)). Each worker imports only its library."""
    import pickle

    def l_pickle(p):  # C _pickle on a buffered file (FRAME handling differs from loads)
        with open(p, "rb") as f:
            pickle.load(f)

    def l_pickle_loads(p):  # C _pickle on bytes
        with open(p, "rb") as f:
            data = f.read()
        pickle.loads(data)

    def l_pickle_py(p):  # pure-Python pickle.py (what joblib and pandas' retry use)
        with open(p, "rb") as f:
            pickle._Unpickler(f).load()

    def l_pickle_loop(p):  # pickle.load again and again until EOF (a victim reading a log of pickles)
        size = os.path.getsize(p)
        with open(p, "rb") as f:
            while f.tell() < size:
                pickle.load(f)

    def i_torch():
        import torch  # noqa: F401
        import torch.serialization  # noqa: F401

    def l_torch(p):
        import torch
        torch.load(p, weights_only=False)

    torch_data_pkl = {}

    def i_torch_data_pkl():
        i_torch()
        sys.path.insert(0, str(HERE))
        import _oracle
        ns = {"pickle": pickle}
        exec(_oracle._TORCH_UNPICKLER, ns)  # the manifests' torch_data_pkl loader, verbatim
        torch_data_pkl["make"] = ns["torch_unpickler"]

    def l_torch_data_pkl(p):
        with open(p, "rb") as f:
            torch_data_pkl["make"](f).load()

    def i_joblib():
        import joblib  # noqa: F401
        import joblib.numpy_pickle  # noqa: F401

    def l_joblib(p):
        import joblib
        joblib.load(p)

    def i_numpy():
        import numpy  # noqa: F401

    def l_numpy(p):
        import numpy as np
        r = np.load(p, allow_pickle=True)
        if isinstance(r, np.lib.npyio.NpzFile):
            with r:
                for key in r.files:
                    # NpzFile.__getitem__ unpickles only members that start with the .npy magic
                    # (anything else comes back as raw bytes); checking the magic first spares
                    # decompressing bombs whole, with the same events.
                    with r.zip.open(r._files[key]) as m:
                        if m.read(6) != b"\x93NUMPY":
                            continue
                    r[key]

    def i_pandas():
        import pandas  # noqa: F401
        import pandas.compat.pickle_compat  # noqa: F401

    def l_pandas(p):
        import pandas as pd
        pd.read_pickle(p)

    def i_none():
        pass

    return {
        "pickle": (i_none, l_pickle),
        "pickle_loads": (i_none, l_pickle_loads),
        "pickle_py": (i_none, l_pickle_py),
        "pickle_loop": (i_none, l_pickle_loop),
        "torch": (i_torch, l_torch),
        "torch_data_pkl": (i_torch_data_pkl, l_torch_data_pkl),
        "joblib": (i_joblib, l_joblib),
        "numpy": (i_numpy, l_numpy),
        "pandas": (i_pandas, l_pandas),
    }


LOADERS = ("pickle", "pickle_loads", "pickle_py", "pickle_loop", "torch", "torch_data_pkl",
           "joblib", "numpy", "pandas")
# Every path-taking loader a victim might point at any file: picklegate sniffs by content, so
# each of these is a reading it must model for every file.
UNIVERSAL = ("pickle", "pickle_loads", "pickle_py", "torch", "joblib", "numpy", "pandas")


def _preimport_harmless():
    """Import every harmless module now, so that resolving a harmless name during a load never
    runs a module body."""
    import importlib
    import warnings
    import numpy  # noqa: F401  (cheap: every worker can resolve numpy and joblib names)
    import joblib.numpy_pickle  # noqa: F401
    for m in sorted({m for m, _ in HARMLESS}):
        if m.split(".")[0] == "torch" and "torch" not in sys.modules:
            continue  # torch (seconds to import) only in the workers that load with it
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                importlib.import_module(m)
        except ImportError:
            pass


def _name_maps(loader):
    """Renamings the loader applies before pickle's find_class audits the name."""
    out = {"names": [], "modules": {}}
    if loader in ("torch",):
        out["modules"] = dict(TORCH_MODULE_MAP)
    if loader == "pandas":
        from pandas.compat.pickle_compat import _class_locations_map
        out["names"] = [[list(k), list(v)] for k, v in _class_locations_map.items()]
    return out


def _warm_up(load, scratch):
    """One benign load before arming, so lazy imports inside the loader happen now."""
    import pickle
    p = os.path.join(scratch, "warmup.pkl")
    with open(p, "wb") as f:
        pickle.dump({"a": [1, 2.0, "x"]}, f, protocol=2)
    try:
        load(p)
    except BaseException:
        pass


def worker_main(loader):
    import resource
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the protocol
    scratch = os.path.realpath(os.environ.get("PG_AUDIT_SCRATCH") or tempfile.mkdtemp(prefix="pg-audit-"))
    os.makedirs(scratch, exist_ok=True)
    os.chdir(scratch)
    tempfile.tempdir = scratch  # torch's legacy tar loader extracts into mkdtemp()
    _State.scratch = scratch
    import warnings
    warnings.simplefilter("ignore")
    imp, load = _loaders()[loader]
    imp()
    _preimport_harmless()
    _State.harmless = dict(HARMLESS)
    _State.harmless.update(_harmless_dynamic())
    _warm_up(load, scratch)
    # Memory bound: whatever the worker has now plus 3 GiB (bytearray(10**12) must fail, not
    # swap the machine).
    try:
        with open("/proc/self/status") as f:
            vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
        resource.setrlimit(resource.RLIMIT_AS, (vm + (3 << 30), resource.RLIM_INFINITY))
    except (OSError, ValueError, StopIteration):
        pass
    tamper = _Tamper()
    budget = float(os.environ.get("PG_AUDIT_LOAD_SECONDS") or 10)

    def _alarm(signum, frame):
        raise LoadTimeout("load took more than %ss" % budget)
    signal.signal(signal.SIGALRM, _alarm)
    sys.addaudithook(_hook)
    canary = os.environ.get("PICKLEGATE_CANARY") or os.path.join(scratch, "canary")
    os.environ["PICKLEGATE_CANARY"] = canary
    proto.write(json.dumps({"hello": loader, "pid": os.getpid(), "maps": _name_maps(loader),
                            "harmless": sorted("%s.%s" % k for k in _State.harmless)}) + "\n")
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line) if line.startswith("{") else {"file": line}
        res = {"file": req["file"], "loader": loader, "unwrap": req.get("unwrap") or [],
               "events": [], "aborted_at": None, "error": None, "blocked": [], "fired": False,
               "tampered": []}
        tmp = tempfile.mkdtemp(dir=scratch)
        t0 = time.monotonic()
        _State.events, _State.aborted_at, _State.blocked, _State.after_abort = [], None, [], 0
        _State.importable = None
        ext = req.get("setup")
        if ext:  # the manifests' `copyreg_ext` setup: registered for this request only
            import copyreg
            copyreg.add_extension(ext["module"], ext["name"], ext["code"])
        try:
            p = req["file"]
            # unwrapping (zipfile/tarfile/py7zr/decompressors) unpickles nothing and is the
            # victim's own tooling: the hook is armed for the loader only
            if res["unwrap"]:
                with open(p, "rb") as f:
                    data = f.read()
                name = os.path.basename(p)
                for step in res["unwrap"]:
                    data, name = _unwrap(step, data, name, tmp)
                p = os.path.join(tmp, name or "member")
                with open(p, "wb") as f:
                    f.write(data)
            _State.armed = True
            signal.setitimer(signal.ITIMER_REAL, budget)
            load(p)
        except AuditAbort:
            pass
        except LoadTimeout as e:
            res["error"] = "LoadTimeout: %s" % e
        except BaseException as e:  # the loader refused the file: that is an answer too
            res["error"] = "%s: %s" % (type(e).__name__, str(e)[:300])
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            _State.armed = False
            if ext:
                import copyreg
                copyreg.remove_extension(ext["module"], ext["name"], ext["code"])
        res["events"], res["aborted_at"], res["blocked"] = _State.events, _State.aborted_at, _State.blocked
        res["after_abort"] = _State.after_abort
        res["aborted_importable"] = _State.importable
        res["seconds"] = round(time.monotonic() - t0, 3)
        if os.path.exists(canary):
            res["fired"] = True
            os.unlink(canary)
        res["tampered"] = tamper.changed()
        shutil.rmtree(tmp, ignore_errors=True)
        proto.write(json.dumps(res) + "\n")
        if res["tampered"]:
            return  # state leaked into harmless objects: the parent restarts a clean worker


# ----------------------------------------------------------------------------------------
# Parent side
# ----------------------------------------------------------------------------------------
class Worker:
    def __init__(self, loader, python=None, scratch=None, start_timeout=120):
        self.loader = loader
        self.python = python or sys.executable
        self.scratch = scratch or tempfile.mkdtemp(prefix="pg-audit-%s-" % loader)
        self.start_timeout = start_timeout
        self.proc = None
        self.hello = None
        self.restarts = 0

    def start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PICKLEGATE_")}
        env["PYTHONHASHSEED"] = "0"
        env["PG_AUDIT_SCRATCH"] = self.scratch
        env["PICKLEGATE_CANARY"] = os.path.join(self.scratch, "canary")
        env["PYTHONWARNINGS"] = "ignore"
        self.log = open(os.path.join(self.scratch, "worker-stderr.log"), "ab")
        self.proc = subprocess.Popen(
            [self.python, str(Path(__file__).resolve()), "--worker", self.loader],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, env=env,
            cwd=self.scratch, text=True, bufsize=1, start_new_session=True)
        line = self._readline(self.start_timeout)
        if not line:
            raise RuntimeError("audit worker %s did not start: %s" % (self.loader, self._stderr_tail()))
        self.hello = json.loads(line)

    def _stderr_tail(self):
        try:
            with open(os.path.join(self.scratch, "worker-stderr.log"), "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def _readline(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            return None
        return self.proc.stdout.readline()

    def kill(self):
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the worker's own session only
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None
            self.log.close()

    def request(self, req, timeout=60):
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self.kill()
                self.restarts += 1
            self.start()
        try:
            self.proc.stdin.write(json.dumps(req) + "\n")
            self.proc.stdin.flush()
            line = self._readline(timeout)
        except (BrokenPipeError, OSError):
            line = ""
        if line:
            res = json.loads(line)
            if res.get("tampered"):
                self.kill()  # the worker exits itself; reap it and start fresh next time
            return res
        crashed = self.proc.poll() is not None
        why = "worker crashed (rc=%s)" % self.proc.returncode if crashed else "timeout after %ss" % timeout
        self.kill()
        self.restarts += 1
        return {"file": req["file"], "loader": self.loader, "unwrap": req.get("unwrap") or [],
                "events": [], "aborted_at": None, "error": "oracle: " + why, "blocked": [],
                "fired": False, "tampered": [], "harness_error": why}

    def close(self):
        if self.proc is not None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self.kill()
        shutil.rmtree(self.scratch, ignore_errors=True)


class AuditPool:
    """One worker per loader, started on first use, kept for the pool's life."""

    def __init__(self, python=None, timeout=60):
        self.python = python
        self.timeout = timeout
        self.workers = {}
        self.lock = threading.Lock()

    def worker(self, loader):
        with self.lock:
            if loader not in self.workers:
                self.workers[loader] = Worker(loader, self.python)
            return self.workers[loader]

    def maps(self, loader):
        w = self.worker(loader)
        if w.hello is None:
            w.start()
        return w.hello["maps"]

    def run(self, requests):
        """requests: [{"file", "loader", "unwrap"?}] -> results in the same order. Loaders run
        in parallel (one thread each), each loader's requests in order."""
        by_loader = {}
        for i, r in enumerate(requests):
            by_loader.setdefault(r["loader"], []).append(i)
        results = [None] * len(requests)
        errors = []

        def drive(loader, idxs):
            try:
                w = self.worker(loader)
                for i in idxs:
                    r = requests[i]
                    results[i] = w.request({"file": str(r["file"]), "unwrap": r.get("unwrap") or [],
                                            "setup": r.get("setup")}, timeout=self.timeout)
            except BaseException as e:  # a worker that cannot start is a harness failure
                errors.append("%s: %r" % (loader, e))

        threads = [threading.Thread(target=drive, args=(l, ix), daemon=True) for l, ix in by_loader.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise RuntimeError("audit workers failed: " + "; ".join(errors))
        return results

    def close(self):
        for w in self.workers.values():
            w.close()
        self.workers = {}

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


# ----------------------------------------------------------------------------------------
# picklegate side and the property
# ----------------------------------------------------------------------------------------
def scan(binary, paths, timeout=900):
    """`picklegate scan --format json PATH...` once; returns {realpath: file report}."""
    proc = subprocess.run([str(binary), "scan", "--format", "json", *map(str, paths)],
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          cwd=str(REPO))
    if proc.returncode not in (0, 1):
        raise RuntimeError("picklegate scan failed rc=%d: %s" % (proc.returncode, proc.stderr[-2000:]))
    report = json.loads(proc.stdout)
    if report.get("version") != 1:
        raise RuntimeError("unexpected JSON version %r" % report.get("version"))
    out = {}
    for f in report["files"]:
        p = f["path"]
        if not os.path.isabs(p):
            p = os.path.join(str(REPO), p)
        out[os.path.realpath(p)] = f
    return out


def refused(report):
    """The gate refuses the file: status `findings` with a deny-level finding (exit code 1)."""
    return (report is not None and report.get("status") == "findings"
            and any(f.get("level") == "deny" for f in report.get("findings", [])))


def reported_globals(report):
    """Every global picklegate says the file imports: its readings (JSON v1 `readings`), plus
    the `global` of every finding. Without `readings` (older binaries) only findings' globals
    count, which only name globals outside the policy."""
    if report is None:
        return set(), False
    g = {f["global"] for f in report.get("findings", []) if f.get("global")}
    has = "readings" in report
    for r in report.get("readings", []):
        g.update(r.get("globals", []))
    return g, has


def covered(event, reported, maps):
    m, n = event
    if "%s.%s" % (m, n) in reported:
        return True
    fm, fn = fix_imports(m, n)
    if "%s.%s" % (fm, fn) in reported:
        return True
    # the loader renamed the pickle's name before the audit event: undo it
    for (sm, sn), (dm, dn) in maps.get("names", []):
        if (dm, dn) == (m, n) and "%s.%s" % (sm, sn) in reported:
            return True
    for src, dst in maps.get("modules", {}).items():
        if dst == m and "%s.%s" % (src, n) in reported:
            return True
    return False


def verdict(report):
    if report is None:
        return "no report for this file"
    fs = report.get("findings", [])
    parts = ["status=%s format=%s" % (report.get("status"), report.get("format"))]
    if fs:
        parts.append("findings=" + ",".join(sorted({"%s/%s" % (f["rule"], f.get("level")) for f in fs})))
    rd = report.get("readings")
    if rd is None:
        parts.append("no readings field (fallback: findings' globals only)")
    else:
        parts.append("readings=" + "; ".join("%s@%s:%d" % (r.get("reading"), r.get("member"), len(r.get("globals", [])))
                                             for r in rd))
    return " ".join(parts)


def compare(results, reports, maps_by_loader):
    """The property, per (file, loader): picklegate refuses the file, or reports every global
    the loader asked for. Returns a list of disagreement dicts."""
    out = []
    for res in results:
        rep = reports.get(os.path.realpath(res["file"]))
        if refused(rep):
            continue
        reported, _ = reported_globals(rep)
        maps = maps_by_loader.get(res["loader"], {})
        missing = []
        for ev in res["events"]:
            if ev == res["aborted_at"] and res.get("aborted_importable") is False:
                continue  # its top-level module does not exist here: the import fails, nothing runs
            if not covered(ev, reported, maps) and ev not in missing:
                missing.append(ev)
        for ev in missing:
            out.append({"file": res["file"], "loader": res["loader"], "unwrap": res["unwrap"],
                        "global": "%s.%s" % tuple(ev), "aborted_here": ev == res["aborted_at"],
                        "loader_error": res["error"], "verdict": verdict(rep)})
    return out


def harness_problems(results):
    """Results that mean the oracle itself is not trustworthy for that request."""
    bad = []
    for r in results:
        if r.get("blocked"):
            bad.append("%s [%s]: blocked audit events %r" % (r["file"], r["loader"], r["blocked"]))
        if r.get("fired"):
            bad.append("%s [%s]: the canary fired under the audit hook" % (r["file"], r["loader"]))
        if r.get("harness_error"):
            bad.append("%s [%s]: %s" % (r["file"], r["loader"], r["harness_error"]))
    return bad


def format_disagreement(d):
    via = (" via " + "|".join(d["unwrap"])) if d["unwrap"] else ""
    g = json.dumps(d["global"])[1:-1]  # names with \r, \n or NUL stay visible
    return "%s [%s%s]: loader asked for `%s`%s; picklegate: %s" % (
        d["file"], d["loader"], via, g, " (first non-harmless name)" if d["aborted_here"] else "",
        d["verdict"])


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2])
    else:
        sys.exit("usage: _audit.py --worker LOADER")
