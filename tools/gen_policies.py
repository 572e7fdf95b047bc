#!/usr/bin/env python3
"""Generate picklegate's embedded policy presets (policies/*.yaml) from the real libraries.

    python3 tools/gen_policies.py            # (re)write policies/{python-data,numpy,torch,sklearn,pandas,
                                             #   transformers,joblib,default}.yaml
    python3 tools/gen_policies.py --check    # regenerate in memory; exit 1 if a committed preset differs
    python3 tools/gen_policies.py --numpy1-python /path/to/python   # also re-verify the numpy 1.x names
                                                                    # with an interpreter that has numpy 1.x

Every preset is derived from, and verified against, the installed libraries pinned in
tests/requirements.txt (torch, numpy, scikit-learn, pandas, transformers, accelerate, joblib on Python 3.11):

  * python-data  a hand-audited list of stdlib data reconstructors, verified by pickling representative
                 objects at protocols 0-5 with a recording unpickler (every global and every container
                 method-call target must be covered by the preset);
  * numpy        the globals recorded while pickling arrays of every builtin dtype, 0-d arrays, structured,
                 object, datetime arrays, masked arrays, matrices, scalars, dtypes, DType classes, scalar
                 types and every RNG object, plus the numpy 1.x module paths (NUMPY1_RECORDED below);
  * torch        torch's own weights_only allow-list (torch._weights_only_unpickler._get_allowed_globals),
                 minus sinks and numpy entries, verified against real torch.save files;
  * sklearn      every class from sklearn.utils.all_estimators(), plus every global recorded while
                 pickling (protocols 2 and 5) each estimator fitted on tiny data;
  * pandas       every global recorded while pickling DataFrames/Series of every column kind, every Index
                 kind, dtypes, time scalars and offsets (protocols 2, 4, 5 and to_pickle), beyond numpy/python-data;
  * transformers every global recorded in a real Trainer checkpoint (training_args.bin, optimizer.pt,
                 scheduler.pt, rng_state.pth), TrainingArguments variants and the Enums of their fields,
                 TrainerState, GenerationConfig, in-memory tokenizers, plus every config class of CONFIG_MAPPING;
  * joblib       every global recorded in joblib.dump files of arrays, dicts of arrays and small sklearn models,
                 beyond numpy/python-data/sklearn (joblib.numpy_pickle.NumpyArrayWrapper);
  * default      extends python-data, numpy, torch and sklearn.

pandas, transformers and joblib are recorded with StaticPickle, which reads pickles the way picklegate does
(pickletools.genops and a symbolic stack) and never imports or calls anything it records; it also checks that
every method call and BUILD targets an object made by an allowed global, and that persistent ids are torch's.

The script refuses (exit 1) to write a preset that allows a sink from policies/sinks.yaml, using the same
matching rule as picklegate: a module equal to or below a listed module, an exact listed name, or a
dunder component after the first component of the qualname.

Top-level imports are stdlib only so that `--probe numpy` can run under another interpreter.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import io
import json
import os
import pickle
import pickletools
import re
import subprocess
import sys
import time
import warnings
import _compat_pickle

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLICY_DIR = os.path.join(ROOT, "policies")
SINKS_FILE = os.path.join(POLICY_DIR, "sinks.yaml")
PY = f"{sys.version_info.major}.{sys.version_info.minor}"

# --------------------------------------------------------------------------------------------------
# Recording unpickler
# --------------------------------------------------------------------------------------------------


def _fix_imports(proto: int, module: str, name: str) -> tuple[str, str]:
    """CPython's find_class name mapping for protocol < 3 (fix_imports=True)."""
    if proto < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            return _compat_pickle.NAME_MAPPING[(module, name)]
        if module in _compat_pickle.IMPORT_MAPPING:
            return _compat_pickle.IMPORT_MAPPING[module], name
    return module, name


def _type_name(obj) -> str:
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


class RecordingUnpickler(pickle._Unpickler):
    """The pure-Python unpickler, recording every global it resolves (after fix_imports mapping),
    and the type of every object that receives APPEND(S)/SETITEM(S)/ADDITEMS."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, f, **kw):
        super().__init__(f, **kw)
        self.globals: set[str] = set()
        self.containers: set[str] = set()

    def find_class(self, module, name):
        m, n = _fix_imports(self.proto, module, name) if self.fix_imports else (module, name)
        self.globals.add(f"{m}.{n}")
        return super().find_class(module, name)

    def persistent_load(self, pid):
        raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")


def _wrap_container_op(opcode: bytes, where):
    orig = pickle._Unpickler.dispatch[opcode[0]]

    def op(self):
        self.containers.add(_type_name(where(self)))
        orig(self)

    RecordingUnpickler.dispatch[opcode[0]] = op


_wrap_container_op(pickle.APPEND, lambda u: u.stack[-2])
_wrap_container_op(pickle.SETITEM, lambda u: u.stack[-3])
for _op in (pickle.APPENDS, pickle.SETITEMS, pickle.ADDITEMS):
    _wrap_container_op(_op, lambda u: u.metastack[-1][-1])


class Record:
    def __init__(self):
        self.globals: dict[str, set[str]] = {}  # global -> labels of the objects that needed it
        self.containers: dict[str, set[str]] = {}

    def add_pickle(self, data: bytes, label: str):
        u = RecordingUnpickler(io.BytesIO(data))
        u.load()
        for g in u.globals:
            self.globals.setdefault(g, set()).add(label)
        for c in u.containers:
            self.containers.setdefault(c, set()).add(label)

    def add_object(self, obj, label: str, protocols):
        for p in protocols:
            self.add_pickle(pickle.dumps(obj, protocol=p), f"{label}@p{p}")

    def to_json(self):
        return {
            "globals": {k: sorted(v) for k, v in self.globals.items()},
            "containers": {k: sorted(v) for k, v in self.containers.items()},
        }


def genops_globals(data: bytes) -> tuple[set[str], bytes]:
    """Globals of one pickle stream read with pickletools (no execution). Returns (globals, rest)."""
    f = io.BytesIO(data)
    out: set[str] = set()
    proto = 0
    for op, arg, _pos in pickletools.genops(f):
        if op.name == "PROTO":
            proto = arg
        elif op.name in ("GLOBAL", "INST"):
            m, n = arg.split(" ", 1)
            m, n = _fix_imports(proto, m, n)
            out.add(f"{m}.{n}")
        elif op.name in ("STACK_GLOBAL", "EXT1", "EXT2", "EXT4"):
            raise SystemExit(f"error: unexpected {op.name} in a torch pickle; extend genops_globals")
    return out, data[f.tell():]


# --------------------------------------------------------------------------------------------------
# Static recorder (pandas, transformers, joblib presets)
# --------------------------------------------------------------------------------------------------


class _Val:
    """A value on the static recorder's stack. kind: const (val: the literal), tuple/list/dict/set/frozenset
    (val: items; dict items are (key, value) pairs), global (val: `module.qualname`), call (val: the
    callee value, args: the argument value), pid (val: the persistent id value), array (joblib array data), buffer."""

    __slots__ = ("kind", "val", "args")

    def __init__(self, kind: str, val=None, args=None):
        self.kind = kind
        self.val = val
        self.args = args  # call: the argument value

    def producer(self) -> str | None:
        """The global a `call` value was made by, as picklegate names it (the callee, when it is a global)."""
        if self.kind == "call" and self.val.kind == "global":
            return self.val.val

    def describe(self) -> str:
        if self.kind == "call":
            return "the result of calling a non-global" if self.producer() is None else f"a {self.producer()} object"
        if self.kind == "global":
            return f"the global {self.val} itself"
        return f"a {self.kind}"


_MARK = object()
JOBLIB_WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"


def _numpy_itemsize(descr: str):
    """Mirror of src/pickle/vm.rs `numpy_itemsize`: bytes per element of a NumPy type string, None for
    object arrays; raises ValueError for a type string picklegate does not know."""
    t = descr.lstrip("<>|=")
    m = re.match(r"^(.)(\d*)", t)
    if not m:
        raise ValueError(descr)
    kind, digits = m.group(1), m.group(2)
    n = int(digits) if digits else 1
    if kind == "O":
        return None
    if kind == "U":
        return n * 4
    if kind in "biufcSaVMm?edgqlh":
        return n
    raise ValueError(descr)


class StaticPickle:
    """One pickle stream read with pickletools.genops and a symbolic stack, the way picklegate reads it:
    nothing is imported or called. Records every global (after the protocol < 3 fix_imports mapping),
    the producer of every non-native object that receives APPEND(S)/SETITEM(S)/ADDITEMS (picklegate
    checks the global that made the object, not its runtime type), the producer of every BUILD target,
    and every persistent id. With `joblib`, it also skips the array data joblib's NumpyUnpickler reads
    from the stream after BUILD of a NumpyArrayWrapper (or reads the nested pickle of an object array),
    exactly as picklegate's format layer does."""

    def __init__(self, f, joblib: bool = False):
        self.f = f
        self.joblib = joblib
        self.globals: set[str] = set()
        self.containers: set[str] = set()
        self.builds: set[str] = set()
        self.pids: list[_Val] = []
        self.problems: list[str] = []

    def _pop_mark(self, stack):
        i = len(stack) - 1
        while stack[i] is not _MARK:
            i -= 1
        items = stack[i + 1:]
        del stack[i:]
        return items

    def _mutated(self, target: _Val, native: str, op: str):
        if target.kind == native:
            return
        name = target.producer()
        if name is None:
            self.problems.append(f"{op} on {target.describe()}")
        else:
            self.containers.add(name)

    def run(self) -> _Val:
        stack: list = []
        memo: dict = {}
        proto = 0
        for op, arg, pos in pickletools.genops(self.f):
            n = op.name
            if n == "PROTO":
                proto = arg
            elif n == "FRAME":
                pass
            elif n in ("INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "STRING", "BINSTRING",
                       "SHORT_BINSTRING", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8", "UNICODE",
                       "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "FLOAT", "BINFLOAT"):
                stack.append(_Val("const", arg))
            elif n in ("NONE", "NEWTRUE", "NEWFALSE"):
                stack.append(_Val("const", {"NONE": None, "NEWTRUE": True, "NEWFALSE": False}[n]))
            elif n in ("EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET", "EMPTY_TUPLE"):
                stack.append(_Val(n[6:].lower(), []))
            elif n in ("LIST", "TUPLE", "FROZENSET"):
                stack.append(_Val(n.lower(), self._pop_mark(stack)))
            elif n == "DICT":
                items = self._pop_mark(stack)
                stack.append(_Val("dict", list(zip(items[::2], items[1::2]))))
            elif n in ("TUPLE1", "TUPLE2", "TUPLE3"):
                k = int(n[-1])
                items = stack[-k:]
                del stack[-k:]
                stack.append(_Val("tuple", items))
            elif n == "APPEND":
                v = stack.pop()
                self._mutated(stack[-1], "list", n)
                if stack[-1].kind == "list":
                    stack[-1].val.append(v)
            elif n == "APPENDS":
                items = self._pop_mark(stack)
                self._mutated(stack[-1], "list", n)
                if stack[-1].kind == "list":
                    stack[-1].val.extend(items)
            elif n == "SETITEM":
                v, k = stack.pop(), stack.pop()
                self._mutated(stack[-1], "dict", n)
                if stack[-1].kind == "dict":
                    stack[-1].val.append((k, v))
            elif n == "SETITEMS":
                items = self._pop_mark(stack)
                self._mutated(stack[-1], "dict", n)
                if stack[-1].kind == "dict":
                    stack[-1].val.extend(zip(items[::2], items[1::2]))
            elif n == "ADDITEMS":
                self._pop_mark(stack)
                self._mutated(stack[-1], "set", n)
            elif n == "POP":
                stack.pop()
            elif n == "POP_MARK":
                self._pop_mark(stack)
            elif n == "DUP":
                stack.append(stack[-1])
            elif n == "MARK":
                stack.append(_MARK)
            elif n in ("GET", "BINGET", "LONG_BINGET"):
                stack.append(memo[arg])
            elif n in ("PUT", "BINPUT", "LONG_BINPUT"):
                memo[arg] = stack[-1]
            elif n == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif n in ("GLOBAL", "INST", "STACK_GLOBAL"):
                if n == "STACK_GLOBAL":
                    name, module = stack.pop(), stack.pop()
                    if module.kind != "const" or name.kind != "const" or not isinstance(module.val, str) \
                            or not isinstance(name.val, str):
                        self.problems.append(f"STACK_GLOBAL at {pos} with non-constant operands")
                        stack.append(_Val("call", _Val("const")))  # unknown
                        continue
                    m, q = module.val, name.val
                else:
                    m, q = arg.split(" ", 1)
                m, q = _fix_imports(proto, m, q)
                self.globals.add(f"{m}.{q}")
                g = _Val("global", f"{m}.{q}")
                if n == "INST":
                    self._pop_mark(stack)
                    stack.append(_Val("call", g))
                else:
                    stack.append(g)
            elif n in ("REDUCE", "NEWOBJ"):
                args = stack.pop()
                stack.append(_Val("call", stack.pop(), args))
            elif n == "NEWOBJ_EX":
                stack.pop()
                args = stack.pop()
                stack.append(_Val("call", stack.pop(), args))
            elif n == "OBJ":
                items = self._pop_mark(stack)
                stack.append(_Val("call", items[0], _Val("tuple", items[1:])))
            elif n == "BUILD":
                state = stack.pop()
                target = stack[-1]
                name = target.producer()
                if name is None:
                    self.problems.append(f"BUILD on {target.describe()}")
                else:
                    self.builds.add(name)
                if self.joblib and name == JOBLIB_WRAPPER:
                    stack[-1] = self._joblib_array(state, pos)
            elif n in ("PERSID", "BINPERSID"):
                pid = _Val("const", arg) if n == "PERSID" else stack.pop()
                self.pids.append(pid)
                stack.append(_Val("pid", pid))
            elif n == "STOP":
                return stack.pop()
            else:  # EXT1/2/4 (extension registry), NEXT_BUFFER/READONLY_BUFFER (out-of-band buffers)
                self.problems.append(f"{n} at {pos}")
                stack.append(_Val("call", _Val("const")))
        raise ValueError("pickle without STOP")

    def _joblib_array(self, state: _Val, pos: int) -> _Val:
        """Mirror of src/pickle/vm.rs `joblib_array`: skip the raw array bytes (after the alignment
        padding) or read the nested pickle of an object array."""
        fields = {k.val: v for k, v in state.val if k.kind == "const"} if state.kind == "dict" else {}
        shape, dtype, align = fields.get("shape"), fields.get("dtype"), fields.get("numpy_array_alignment_bytes")
        descr = None
        if dtype is not None and dtype.kind == "call" and dtype.args is not None and dtype.args.kind == "tuple" \
                and dtype.args.val and dtype.args.val[0].kind == "const":
            descr = dtype.args.val[0].val
        if shape is None or shape.kind != "tuple" or not isinstance(descr, str) \
                or not all(d.kind == "const" and isinstance(d.val, int) and d.val >= 0 for d in shape.val):
            raise ValueError(f"{JOBLIB_WRAPPER} at {pos} has no readable shape and dtype")
        size = _numpy_itemsize(descr)
        if size is None:
            nested = StaticPickle(self.f, joblib=True)
            nested.run()
            self.globals |= nested.globals
            self.containers |= nested.containers
            self.builds |= nested.builds
            self.pids += nested.pids
            self.problems += nested.problems
        else:
            if align is not None and align.kind == "const" and isinstance(align.val, int) \
                    and not isinstance(align.val, bool):
                pad = self.f.read(1)[0]
                self.f.seek(pad, io.SEEK_CUR)
            count = size
            for d in shape.val:
                count *= d.val
            self.f.seek(count, io.SEEK_CUR)
        return _Val("array")


def is_torch_storage_pid(pid: _Val) -> bool:
    """Mirror of src/check.rs `is_torch_storage_pid`: ('storage', <global>, str, str, int)."""
    it = pid.val if pid.kind == "tuple" else []

    def const(v, t):
        return v.kind == "const" and isinstance(v.val, t) and not isinstance(v.val, bool)

    return (len(it) in (5, 6) and it[0].kind == "const" and it[0].val == "storage" and it[1].kind == "global"
            and const(it[2], str) and const(it[3], str) and const(it[4], int))


class StaticRecord(Record):
    """Like Record, but every pickle is read by StaticPickle: nothing it names is imported or called."""

    def __init__(self):
        super().__init__()
        self.builds: dict[str, set[str]] = {}
        self.problems: dict[str, list[str]] = {}
        self.pids: list[tuple[str, bool]] = []  # (label, is a torch storage id)

    def add_pickle(self, data: bytes, label: str, joblib: bool = False):
        f = io.BytesIO(data)
        sp = StaticPickle(f, joblib=joblib)
        sp.run()
        if f.read(1):
            sp.problems.append("data after STOP")
        for attr in ("globals", "containers", "builds"):
            for g in getattr(sp, attr):
                getattr(self, attr).setdefault(g, set()).add(label)
        if sp.problems:
            self.problems.setdefault(label, []).extend(sp.problems)
        self.pids += [(label, is_torch_storage_pid(p)) for p in sp.pids]

    def add_torch(self, obj, label: str):
        """torch.save (zip format, what Trainer writes) and record its data.pkl."""
        import torch

        buf = io.BytesIO()
        torch.save(obj, buf)
        self.add_torch_file(buf.getvalue(), f"{label}@torch.save")

    def add_torch_file(self, data: bytes, label: str):
        import zipfile

        z = zipfile.ZipFile(io.BytesIO(data))
        pkls = [n for n in z.namelist() if n.endswith(".pkl")]
        assert len(pkls) == 1 and pkls[0].endswith("/data.pkl"), pkls
        self.add_pickle(z.read(pkls[0]), label)


# Globals that real pickles reference (as values, never called) and that sinks.yaml does not list, but whose
# call is a file-system primitive: the recorded presets refuse them like sinks.
UNSAFE_RECORDED = {
    "numpy.memmap": "not in sinks.yaml, but numpy.memmap(path, mode='w+') creates or truncates any file",
}


def split_recorded(name: str, rec: StaticRecord, extends, persistent_ids: str = "none", assumed=None,
                   format_globals=()):
    """Decide what a recorded preset allows: every recorded global that the presets it extends do not
    already allow, minus sinks. A pickle that needs a sink is refused as a whole; globals that only such
    pickles need are dropped too (allowing them would not let any recorded pickle through). `assumed`
    maps a sample label (before '@') to the allow entries of another preset that sample is documented
    to need as well. Dies on anything picklegate would refuse in a pickle that is not refused anyway: a
    method call or BUILD whose target is not made by an allowed global, a persistent id the preset does
    not accept, extension codes, out-of-band buffers."""
    assumed = assumed or {}
    inherited = set().union(*(set(p["allow"]) for p in extends))
    inherited_containers = set().union(*(set(p.get("containers") or []) for p in extends))
    excluded = {g: entry_sink_reason(g) or UNSAFE_RECORDED.get(g) for g in rec.globals
                if entry_sink_reason(g) or g in UNSAFE_RECORDED}
    refused_labels = set().union(*(rec.globals[g] for g in excluded)) if excluded else set()
    base = lambda label: label.split("@", 1)[0]  # noqa: E731
    allow, dropped = set(), {}
    for g, labels in rec.globals.items():
        if g in excluded or g in inherited:
            continue
        live = {lb for lb in labels if lb not in refused_labels}
        if not live:
            dropped[g] = labels
        elif not all(g in assumed.get(base(lb), ()) for lb in live):
            allow.add(g)
    problems = [f"  {lb}: {p}" for lb, ps in sorted(rec.problems.items()) if lb not in refused_labels for p in ps]
    for lb, torch_pid in rec.pids:
        ok = persistent_ids == "any" or (persistent_ids == "torch-storage" and torch_pid)
        if lb not in refused_labels and not ok:
            problems.append(f"  {lb}: a persistent id that persistent_ids: {persistent_ids} refuses")
    allowed = lambda g, lb: g in allow or g in inherited or g in assumed.get(base(lb), ())  # noqa: E731
    containers = set()
    for g, labels in rec.containers.items():
        for lb in labels - refused_labels:
            if not allowed(g, lb):
                problems.append(f"  {lb}: a method call on a {g} object, which is not allowed")
            elif g not in inherited_containers and (g in allow or g in inherited):
                containers.add(g)  # (a container of an assumed preset stays that preset's entry)
    for g, labels in rec.builds.items():
        for lb in labels - refused_labels:
            if not allowed(g, lb) and g not in format_globals:
                problems.append(f"  {lb}: BUILD on a {g} object, which is not allowed")
    if problems:
        die(f"{name}: recorded pickles that the preset could not let through:\n" + "\n".join(sorted(set(problems))))
    refused = {g: sorted({base(lb) for lb in rec.globals[g]}) for g in excluded}
    return {
        "allow": allow, "containers": containers, "excluded": excluded, "refused": refused,
        "dropped": {g: sorted({base(lb) for lb in v}) for g, v in dropped.items()},
    }


def refusal_notes(split) -> list[str]:
    notes = []
    for g, samples in sorted(split["refused"].items()):
        notes.append(f"Refused: {g} ({split['excluded'][g]}).")
        notes.append(f"  Real pickles of {', '.join(samples)} reference it: such files are refused.")
    if split["dropped"]:
        notes.append("Recorded only in those refused pickles, so not allowed either: "
                     + ", ".join(sorted(split["dropped"])) + ".")
    return notes

# --------------------------------------------------------------------------------------------------
# Sinks and name resolution
# --------------------------------------------------------------------------------------------------


def load_sinks() -> tuple[list[str], set[str]]:
    text = open(SINKS_FILE, encoding="utf-8").read()
    try:
        import yaml  # PyYAML (a transformers dependency); fall back to the simple shape below

        doc = yaml.safe_load(text)
        mods, names = doc.get("modules") or [], doc.get("names") or []
    except ImportError:
        mods, names, cur = [], [], None
        for line in text.splitlines():
            line = line.split("#", 1)[0].rstrip()
            if re.match(r"^(modules|names):\s*$", line):
                cur = mods if line.startswith("modules") else names
            elif re.match(r"^\S", line):
                cur = None
            elif cur is not None and line.strip().startswith("- "):
                cur.append(line.strip()[2:].strip().strip("'\""))
    mods = [m if isinstance(m, str) else next(iter(m)) for m in mods]
    names = [n if isinstance(n, str) else next(iter(n)) for n in names]
    return mods, set(names)


_mods, SINK_NAMES = load_sinks()
SINK_MODULES = set(_mods)


def _is_dunder(s: str) -> bool:
    return len(s) > 4 and s.startswith("__") and s.endswith("__")


def sink_reason(module: str, qualname: str) -> str | None:
    """Mirror of src/policy/sinks.rs `sink_reason` for a global `module` + `qualname`."""
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in SINK_MODULES:
            return f"sinks.yaml module {'.'.join(parts[:i])}"
    qual = module
    for i, part in enumerate(qualname.split(".")):
        qual += "." + part
        if qual in SINK_NAMES:
            return f"sinks.yaml name {qual}"
        if i > 0 and _is_dunder(part):
            return f"dunder attribute {part} in the qualname"
        if qual in SINK_MODULES:
            return f"sinks.yaml module {qual}"
    if module == "builtins" and _is_dunder(qualname) and qualname not in ("__newobj__", "__newobj_ex__"):
        return "builtins dunder"
    return None


def entry_sink_reason(full: str) -> str | None:
    """An entry is `module.qualname` joined with a dot, so the split is not recorded: picklegate's policy
    loader splits at the last dot, its scanner sees the split the pickle uses. An entry counts as a
    sink if it is one under any split (a superset of both)."""
    parts = full.split(".")
    for i in range(1, len(parts)):
        r = sink_reason(".".join(parts[:i]), ".".join(parts[i:]))
        if r:
            return r
    return None


def resolve(full: str):
    """Import the longest importable module prefix and getattr the rest, like pickle's find_class."""
    parts = full.split(".")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(len(parts) - 1, 0, -1):
            mod = ".".join(parts[:i])
            try:
                obj = importlib.import_module(mod)
            except Exception:
                continue
            try:
                for p in parts[i:]:
                    obj = getattr(obj, p)
                return obj
            except AttributeError:
                continue
    raise LookupError(full)


def check_entries(preset: str, names) -> None:
    bad = []
    for n in sorted(names):
        r = entry_sink_reason(n)
        if r:
            bad.append(f"  {n}: sink ({r})")
            continue
        try:
            resolve(n)
        except LookupError:
            bad.append(f"  {n}: does not resolve in the installed libraries")
    if bad:
        die(f"preset {preset} would allow entries it must not:\n" + "\n".join(bad))


def die(msg: str):
    print(f"gen_policies: error: {msg}", file=sys.stderr)
    sys.exit(1)


def version(dist: str) -> str:
    import importlib.metadata as md

    return md.version(dist).split("+", 1)[0]  # drop local tags such as +cu132 / +cpu


# --------------------------------------------------------------------------------------------------
# python-data
# --------------------------------------------------------------------------------------------------

PYTHON_DATA_ALLOW = [
    # builtin types (called to rebuild values, or referenced as defaultdict factories / type objects)
    "builtins.bool", "builtins.bytearray", "builtins.bytes", "builtins.complex", "builtins.dict",
    "builtins.float", "builtins.frozenset", "builtins.int", "builtins.list", "builtins.object",
    "builtins.range", "builtins.set", "builtins.slice", "builtins.str", "builtins.tuple",
    # singletons pickled by name
    "builtins.Ellipsis", "builtins.NotImplemented",
    # protocol 0-2 bytes: _codecs.encode(str, "latin1")
    "_codecs.encode",
    # object reconstruction helpers: they only call cls.__new__ / base.__init__ on classes that must
    # themselves be allowed globals
    "copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__",
    "collections.OrderedDict", "collections.deque", "collections.defaultdict", "collections.Counter",
    "datetime.date", "datetime.datetime", "datetime.time", "datetime.timedelta", "datetime.timezone",
    "decimal.Decimal", "fractions.Fraction", "uuid.UUID",
]
PYTHON_DATA_CONTAINERS = [
    "builtins.dict", "builtins.list", "builtins.set",
    "collections.Counter", "collections.OrderedDict", "collections.defaultdict", "collections.deque",
]


def python_data_objects():
    import collections
    import datetime
    import decimal
    import fractions
    import uuid

    tz = datetime.timezone(datetime.timedelta(hours=2), "X")
    return {
        "set": {1, 2}, "frozenset": frozenset([1]), "empty-set": set(), "empty-frozenset": frozenset(),
        "bytearray": bytearray(b"ab"), "empty-bytearray": bytearray(), "bytes": b"ab", "empty-bytes": b"",
        "complex": 1 + 2j, "slice": slice(1, 5, 2), "range": range(1, 9, 3), "int": 10**40, "float": 1.5,
        "str": "x\u00e9", "bool": True, "none": None, "ellipsis": ..., "notimplemented": NotImplemented,
        "list": [1, [2]], "dict": {"a": {1: 2}}, "tuple": (1, (2,)),
        "types": [bool, bytearray, bytes, complex, dict, float, frozenset, int, list, object, range, set,
                  slice, str, tuple],
        "OrderedDict": collections.OrderedDict(a=1, b=2),
        "deque": collections.deque([1, 2], maxlen=5),
        "defaultdict-list": collections.defaultdict(list, a=[1]),
        "defaultdict-int": collections.defaultdict(int, a=1),
        "defaultdict-dict": collections.defaultdict(dict),
        "Counter": collections.Counter("aab"),
        "date": datetime.date(2020, 1, 2),
        "datetime": datetime.datetime(2020, 1, 2, 3, 4, 5, 6),
        "datetime-utc": datetime.datetime(2020, 1, 2, tzinfo=datetime.timezone.utc),
        "datetime-tz": datetime.datetime(2020, 1, 2, tzinfo=tz),
        "time": datetime.time(1, 2, 3, tzinfo=tz),
        "timedelta": datetime.timedelta(days=3, seconds=5),
        "Decimal": decimal.Decimal("1.25"), "Decimal-nan": decimal.Decimal("NaN"),
        "Fraction": fractions.Fraction(1, 3),
        "UUID": uuid.UUID(int=5), "UUID-safe": uuid.UUID(int=5, is_safe=uuid.SafeUUID.safe),
    }


class _NewobjPickler(pickle.Pickler):
    """Emits copyreg.__newobj__ / __newobj_ex__ as explicit globals (what a protocol 0/1 writer, or
    any pickler that calls __reduce_ex__(2+) itself, produces) to verify they rebuild data."""

    def __init__(self, f, protocol, kind):
        super().__init__(f, protocol=protocol)
        self.kind = kind

    def reducer_override(self, obj):
        import collections
        import copyreg

        if type(obj) is collections.OrderedDict:
            if self.kind == "newobj":
                return copyreg.__newobj__, (collections.OrderedDict,), None, None, iter(obj.items())
            return copyreg.__newobj_ex__, (collections.OrderedDict, (), {}), None, None, iter(obj.items())
        return NotImplemented


def gen_python_data(log):
    import collections

    rec = Record()
    for label, obj in python_data_objects().items():
        rec.add_object(obj, label, range(0, pickle.HIGHEST_PROTOCOL + 1))
    for kind in ("newobj", "newobj_ex"):
        for p in (0, 1):
            f = io.BytesIO()
            _NewobjPickler(f, p, kind).dump(collections.OrderedDict(a=1))
            rec.add_pickle(f.getvalue(), f"copyreg-{kind}@p{p}")
            assert pickle.loads(f.getvalue()) == collections.OrderedDict(a=1)
    allow = set(PYTHON_DATA_ALLOW)
    missing = sorted(set(rec.globals) - allow)
    if missing:
        die("python-data: representative pickles use globals not in PYTHON_DATA_ALLOW: "
            + ", ".join(f"{g} (from {sorted(rec.globals[g])[0]})" for g in missing))
    missing = sorted(set(rec.containers) - set(PYTHON_DATA_CONTAINERS))
    if missing:
        die(f"python-data: container method calls on types not in PYTHON_DATA_CONTAINERS: {missing}")
    unused = sorted(allow - set(rec.globals))
    log(f"python-data: {len(rec.globals)} globals recorded, all allowed; listed but not recorded: {unused}")
    check_entries("python-data", allow)
    return {
        "name": "python-data",
        "header": [f"Generated by tools/gen_policies.py on Python {PY} — do not edit by hand."],
        "notes": [
            "Hand-audited stdlib reconstructors that only build data. Verified by pickling representative",
            "objects at protocols 0-5 with a recording unpickler: every recorded global and every type that",
            "receives APPEND(S)/SETITEM(S)/ADDITEMS is covered. operator/functools/types/getattr are sinks.",
        ],
        "description": "Python builtins and stdlib data types (sets, bytes, complex, collections, datetime, "
                       "decimal, fractions, uuid) and the copyreg helpers that rebuild plain objects.",
        "extends": [],
        "allow": sorted(allow),
        "containers": sorted(PYTHON_DATA_CONTAINERS),
        "build": "instances",
        "persistent_ids": "none",
    }


# --------------------------------------------------------------------------------------------------
# numpy
# --------------------------------------------------------------------------------------------------

# Globals recorded by `probe_numpy()` under numpy==1.26.4 (Python 3.11), minus python-data entries:
# the numpy 1.x module paths (numpy.core.*, numpy.bool_, numpy.ma.core.MaskedArray) that pickles
# written with numpy 1.x contain. Re-verify with --numpy1-python PATH (an interpreter with numpy 1.x).
NUMPY1_RECORDED = [
    "numpy.bool_", "numpy.bytes_", "numpy.clongdouble", "numpy.complex128", "numpy.complex64",
    "numpy.core.multiarray._reconstruct", "numpy.core.multiarray.scalar", "numpy.core.numeric._frombuffer",
    "numpy.datetime64", "numpy.dtype",
    "numpy.dtypes.BoolDType", "numpy.dtypes.BytesDType", "numpy.dtypes.CLongDoubleDType",
    "numpy.dtypes.Complex128DType", "numpy.dtypes.Complex64DType", "numpy.dtypes.DateTime64DType",
    "numpy.dtypes.Float16DType", "numpy.dtypes.Float32DType", "numpy.dtypes.Float64DType",
    "numpy.dtypes.Int16DType", "numpy.dtypes.Int32DType", "numpy.dtypes.Int64DType", "numpy.dtypes.Int8DType",
    "numpy.dtypes.LongDoubleDType", "numpy.dtypes.LongLongDType", "numpy.dtypes.ObjectDType",
    "numpy.dtypes.StrDType", "numpy.dtypes.TimeDelta64DType", "numpy.dtypes.UInt16DType",
    "numpy.dtypes.UInt32DType", "numpy.dtypes.UInt64DType", "numpy.dtypes.UInt8DType",
    "numpy.dtypes.ULongLongDType", "numpy.dtypes.VoidDType",
    "numpy.float16", "numpy.float32", "numpy.float64", "numpy.int16", "numpy.int32", "numpy.int64",
    "numpy.int8", "numpy.longdouble", "numpy.longlong",
    "numpy.ma.core.MaskedArray", "numpy.ma.core.MaskedConstant", "numpy.ma.core._mareconstruct",
    "numpy.matrix", "numpy.ndarray", "numpy.object_",
    "numpy.random._pickle.__bit_generator_ctor", "numpy.random._pickle.__generator_ctor",
    "numpy.random._pickle.__randomstate_ctor",
    "numpy.random.bit_generator.SeedSequence", "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
    "numpy.str_", "numpy.timedelta64", "numpy.uint16", "numpy.uint32", "numpy.uint64", "numpy.uint8",
    "numpy.ulonglong", "numpy.void",
]


def probe_numpy() -> Record:
    """Pickle numpy arrays, dtypes, scalars and RNG objects; runs under numpy 1.x and 2.x."""
    import numpy as np

    objs = {}
    for code in np.typecodes["All"] + "T":
        try:
            dt = np.dtype(code)
        except TypeError:
            continue  # 'T' (StringDType) is numpy >= 2.0
        objs[f"array-{code}"] = np.zeros(3, dtype=dt)
        objs[f"0d-{code}"] = np.zeros((), dtype=dt)
        objs[f"scalar-{code}"] = np.zeros((), dtype=dt)[()]
        objs[f"dtype-{code}"] = dt
        objs[f"dtype-class-{code}"] = type(dt)
        objs[f"scalar-type-{code}"] = dt.type
    objs.update({
        "datetime64-ns": np.array(["2020-01-01"], dtype="M8[ns]"),
        "timedelta64-s": np.array([1], dtype="m8[s]"),
        "structured": np.zeros(2, dtype=[("a", "<i4"), ("b", ">f8", (2,)), ("c", "U3")]),
        "structured-scalar": np.zeros(1, dtype=[("a", "i4")])[0],
        "object": np.array([1, "a", None, [1], {"k": 2}], dtype=object),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "non-contiguous": np.arange(16.0).reshape(4, 4)[::2, ::2],
        "dtype-metadata": np.dtype("f8", metadata={"unit": "m"}),
        "masked": np.ma.masked_array([1.0, 2.0, 3.0], mask=[0, 1, 0]),
        "masked-constant": np.ma.masked,
        "matrix": np.asmatrix(np.eye(2)),
        "default_rng": np.random.default_rng(0),
        "RandomState": np.random.RandomState(0),
        "RandomState-MT19937": np.random.RandomState(np.random.MT19937(0)),
        "get_state": np.random.get_state(),
        "SeedSequence": np.random.SeedSequence(0),
    })
    for bg in ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64"):
        if hasattr(np.random, bg):
            objs[bg] = getattr(np.random, bg)(0)
            objs[f"Generator-{bg}"] = np.random.Generator(getattr(np.random, bg)(0))
    rec = Record()
    for label, obj in objs.items():
        rec.add_object(obj, label, range(0, pickle.HIGHEST_PROTOCOL + 1))
    return rec


def gen_numpy(log, python_data, numpy1_python):
    import numpy as np

    rec = probe_numpy()
    pd_allow = set(python_data["allow"])
    recorded = set(rec.globals) - pd_allow
    bad = sorted(set(rec.containers) - set(python_data["containers"]))
    if bad:
        die(f"numpy: container method calls on {bad}")
    if numpy1_python:
        out = subprocess.run([numpy1_python, os.path.abspath(__file__), "--probe", "numpy"],
                             check=True, capture_output=True, text=True).stdout
        got = json.loads(out)
        np1 = set(got["record"]["globals"]) - pd_allow
        if np1 != set(NUMPY1_RECORDED):
            die(f"numpy {got['version']} records a different set than NUMPY1_RECORDED:\n"
                f"  new: {sorted(np1 - set(NUMPY1_RECORDED))}\n  gone: {sorted(set(NUMPY1_RECORDED) - np1)}")
        log(f"numpy: NUMPY1_RECORDED re-verified with numpy {got['version']}")
    allow = recorded | set(NUMPY1_RECORDED)
    check_entries("numpy", allow)
    log(f"numpy: {len(recorded)} globals recorded with numpy {np.__version__}, "
        f"{len(allow - recorded)} added from numpy 1.x paths")
    return {
        "name": "numpy",
        "header": [f"Generated by tools/gen_policies.py from numpy=={version('numpy')} (plus numpy 1.x module "
                   f"paths recorded from numpy==1.26.4) on Python {PY} — do not edit by hand."],
        "notes": [
            "Every global recorded while pickling (protocols 0-5) arrays of every builtin dtype (0-d,",
            "structured, object, datetime64/timedelta64, Fortran-order, non-contiguous), masked arrays,",
            "matrices, scalars, dtypes, DType classes, scalar types, Generator/RandomState/bit generators",
            "/SeedSequence and np.random.get_state(); plus the same names as numpy 1.x writes them",
            "(numpy.core.*, numpy.bool_, numpy.ma.core.*), which numpy 2 still resolves.",
        ],
        "description": "NumPy arrays, dtypes, scalars, masked arrays and random generator states "
                       "(numpy 1.x and 2.x module paths).",
        "extends": ["python-data"],
        "allow": sorted(allow),
        "containers": [],
        "build": "instances",
        "persistent_ids": "none",
    }


# --------------------------------------------------------------------------------------------------
# torch
# --------------------------------------------------------------------------------------------------


def torch_samples():
    import numpy as np
    import torch

    torch.manual_seed(0)
    np.random.seed(0)
    samples = {}
    samples["Linear"] = torch.nn.Linear(3, 2).state_dict()
    samples["Conv2d+BatchNorm2d"] = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2)).state_dict()
    samples["LSTM"] = torch.nn.LSTM(3, 4).state_dict()
    samples["Embedding"] = torch.nn.Embedding(5, 3).state_dict()
    samples["dtypes"] = {
        "fp16": torch.zeros(2, dtype=torch.float16), "bf16": torch.zeros(2, dtype=torch.bfloat16),
        "int8": torch.zeros(2, dtype=torch.int8), "uint8": torch.zeros(2, dtype=torch.uint8),
        "bool": torch.zeros(2, dtype=torch.bool), "int64": torch.zeros(2, dtype=torch.int64),
        "complex64": torch.zeros(2, dtype=torch.complex64), "fp8": torch.zeros(2, dtype=torch.float8_e4m3fn),
        "size": torch.Size([2, 3]), "device": torch.device("cpu"), "dtype": torch.float32,
    }
    samples["quantized"] = {
        "per_tensor": torch.quantize_per_tensor(torch.rand(4), 0.1, 0, torch.quint8),
        "per_channel": torch.quantize_per_channel(torch.rand(2, 3), torch.tensor([0.1, 0.2]),
                                                  torch.tensor([0, 0]), 0, torch.qint8),
    }
    samples["Parameter"] = {"p": torch.nn.Parameter(torch.zeros(2))}
    for name, make in (("Adam", lambda p: torch.optim.Adam(p)),
                       ("SGD", lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9))):
        model = torch.nn.Linear(3, 2)
        opt = make(model.parameters())
        model(torch.rand(4, 3)).sum().backward()
        opt.step()
        samples[f"{name} state_dict"] = opt.state_dict()
    samples["checkpoint+rng"] = {
        "model": torch.nn.Linear(3, 2).state_dict(), "epoch": 3, "torch_rng": torch.get_rng_state(),
        "numpy_rng": np.random.get_state(), "tags": {"a", "b"}, "blob": b"x", "c": 1j,
    }
    samples["sparse"] = {"coo": torch.eye(3).to_sparse(), "csr": torch.eye(3).to_sparse_csr()}
    return samples


# Samples whose globals are allowed only together with the numpy preset.
TORCH_NEEDS_NUMPY = {"checkpoint+rng"}


def gen_torch(log, python_data, numpy_p):
    import torch
    from torch._weights_only_unpickler import _get_allowed_globals

    baseline = set(_get_allowed_globals())
    excluded = {n: entry_sink_reason(n) for n in sorted(baseline) if entry_sink_reason(n)}
    numpy_entries = sorted(n for n in baseline if n.split(".", 1)[0] == "numpy")
    allow = baseline - set(excluded) - set(numpy_entries)
    check_entries("torch", allow)

    refused: dict[str, set[str]] = {}
    with_pd = allow | set(python_data["allow"])
    with_np = with_pd | set(numpy_p["allow"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samples = torch_samples()
    for label, obj in samples.items():
        for fmt in ("zip", "legacy"):
            buf = io.BytesIO()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.save(obj, buf, _use_new_zipfile_serialization=(fmt == "zip"))
            data = buf.getvalue()
            found: set[str] = set()
            if fmt == "zip":
                import zipfile

                z = zipfile.ZipFile(io.BytesIO(data))
                pkls = [n for n in z.namelist() if n.endswith(".pkl")]
                assert pkls and pkls[0].endswith("/data.pkl"), pkls
                for n in pkls:
                    found |= genops_globals(z.read(n))[0]
            else:
                rest = data
                for _ in range(5):  # magic, protocol, sys_info, object, storage keys
                    g, rest = genops_globals(rest)
                    found |= g
            ok = with_np if label in TORCH_NEEDS_NUMPY else with_pd
            missing = found - ok
            if missing - set(excluded):
                die(f"torch: {fmt} torch.save of {label} uses globals outside the preset: {sorted(missing)}")
            for g in missing:  # allowed by torch, excluded here as a sink: such files will be refused
                refused.setdefault(g, set()).add(label)
            if fmt == "zip" and label not in TORCH_NEEDS_NUMPY:  # torch itself accepts these files
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.load(io.BytesIO(data), weights_only=True)
    log(f"torch: baseline {len(baseline)}, excluded as sinks {sorted(excluded)}, numpy entries "
        f"{numpy_entries}; all samples verified; refused because of the exclusions: "
        f"{ {g: sorted(v) for g, v in refused.items()} }")
    notes = [
        "torch's own weights_only allow-list (torch._weights_only_unpickler._get_allowed_globals()),",
        "minus numpy entries (see numpy.yaml) and minus entries that sinks.yaml calls sinks. Verified by",
        "reading the pickles of torch.save (zip and legacy format) of Linear, Conv2d+BatchNorm2d, LSTM,",
        "Embedding state dicts, fp16/bf16/int8/bool/complex/fp8 tensors, quantized tensors, Parameters,",
        "Adam and SGD state dicts after one step, sparse COO/CSR tensors, and a checkpoint with torch and",
        "numpy RNG states (that one also needs the numpy preset).",
    ]
    if excluded:
        notes.append("Excluded from torch's list because sinks.yaml matches them:")
        notes += [f"  {n}  ({r})" for n, r in excluded.items()]
    for g, labels in sorted(refused.items()):
        notes.append(f"Files with {', '.join(sorted(labels))} need the excluded {g}: they are refused.")
    return {
        "name": "torch",
        "header": [f"Generated by tools/gen_policies.py from torch=={version('torch')} on Python {PY} — "
                   "do not edit by hand."],
        "notes": notes,
        "description": "PyTorch tensors, storages, dtypes, Parameters and state dicts as torch.load("
                       "weights_only=True) accepts them.",
        "extends": ["python-data"],
        "allow": sorted(allow),
        # torch allows APPEND(S) only on list and SETITEM(S) only on dict, OrderedDict and Counter
        "containers": ["builtins.dict", "builtins.list", "collections.Counter", "collections.OrderedDict"],
        "build": "instances",
        "persistent_ids": "torch-storage",
        # What `picklegate sanitize` may put in place of a refused call the state dict needs:
        # a root filled only by SETITEMS is an OrderedDict ("Bad Dict"), and a computed callable
        # applied only to _rebuild_tensor_v2's argument shape is _rebuild_tensor_v2.
        "substitutes": [
            "{used-as: mapping, at: any, with: collections.OrderedDict}",
            "{used-as: callable, with: torch._utils._rebuild_tensor_v2, "
            "args: [persistent-id, int, tuple, tuple, bool, any, \"any?\"]}",
        ],
    }


# --------------------------------------------------------------------------------------------------
# scikit-learn
# --------------------------------------------------------------------------------------------------


def sklearn_fitted():
    """Return (classes by name, [(label, fitted estimator)], {name: why it could not be fitted})."""
    import numpy as np
    from sklearn.base import is_regressor
    from sklearn.datasets import make_classification, make_regression
    from sklearn.utils import all_estimators, get_tags
    from sklearn.utils.estimator_checks import _enforce_estimator_tags_X, _enforce_estimator_tags_y

    try:  # sklearn's own test instances for estimators whose constructor needs arguments
        from sklearn.utils._test_common.instance_generator import INIT_PARAMS
    except ImportError:
        INIT_PARAMS = {}

    Xc, yc = make_classification(n_samples=40, n_features=5, n_informative=3, n_redundant=0, random_state=0)
    Xr, yr = make_regression(n_samples=40, n_features=5, random_state=0)
    texts = ["the cat sat", "a dog ran far", "the dog sat", "cats and dogs"]

    def fit_generic(est):
        tags = get_tags(est)
        if not (tags.input_tags.two_d_array or tags.input_tags.one_d_array):
            raise _NeedsSpecialInput()
        X, y = (Xr.copy(), yr.copy()) if is_regressor(est) else (Xc.copy(), yc.copy())
        X = _enforce_estimator_tags_X(est, X)
        y = _enforce_estimator_tags_y(est, y)
        return est.fit(X, y)

    from sklearn.linear_model import LogisticRegression

    # estimators whose input is not a numeric 2-D X: fitted on the input they take
    special = {
        "CountVectorizer": lambda E: E().fit(texts),
        "TfidfVectorizer": lambda E: E().fit(texts),
        "HashingVectorizer": lambda E: E().fit(texts),
        "DictVectorizer": lambda E: E().fit([{"a": 1, "b": 2.0}, {"a": 3, "c": "x"}]),
        "FeatureHasher": lambda E: E().fit([{"a": 1, "b": 2.0}]),
        "LabelEncoder": lambda E: E().fit(["b", "a", "b"]),
        "LabelBinarizer": lambda E: E().fit([0, 1, 2, 1]),
        "MultiLabelBinarizer": lambda E: E().fit([{1, 2}, {3}]),
        "PatchExtractor": lambda E: E(patch_size=(2, 2)).fit(np.arange(32.0).reshape(2, 4, 4)),
        "SparseCoder": lambda E: E(dictionary=np.eye(3, 5)).fit(Xc),
        "FrozenEstimator": lambda E: E(LogisticRegression().fit(Xc, yc)),
    }

    # a few common non-default configurations that pickle different helper types
    from sklearn.linear_model import SGDClassifier, SGDRegressor
    from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

    extras = {
        "KNeighborsClassifier(algorithm=ball_tree)": KNeighborsClassifier(algorithm="ball_tree"),
        "KNeighborsClassifier(algorithm=kd_tree, metric=manhattan)":
            KNeighborsClassifier(algorithm="kd_tree", metric="manhattan"),
        "NearestNeighbors(algorithm=ball_tree, metric=chebyshev)":
            NearestNeighbors(algorithm="ball_tree", metric="chebyshev"),
        "SGDClassifier(loss=log_loss)": SGDClassifier(loss="log_loss", random_state=0),
        "SGDClassifier(loss=modified_huber)": SGDClassifier(loss="modified_huber", random_state=0),
        "SGDRegressor(loss=huber)": SGDRegressor(loss="huber", random_state=0),
    }

    classes = {}
    skipped = {}
    fitted = []
    for name, Est in all_estimators():
        classes[name] = Est
        makers = []
        if name in special:
            makers.append(lambda Est=Est, name=name: special[name](Est))
        else:
            makers.append(lambda Est=Est: fit_generic(_tune(Est())))
            params = INIT_PARAMS.get(Est, [])
            for q in params if isinstance(params, list) else [params]:
                makers.append(lambda Est=Est, q=q: fit_generic(_tune(Est(**q))))
        errors = []
        for i, make in enumerate(makers):
            try:
                fitted.append((name if i == 0 else f"{name}(sklearn test params)", make()))
                break
            except _NeedsSpecialInput:
                errors.append("needs input other than a numeric 2-D X")
            except Exception as e:  # noqa: BLE001 - report and try the next configuration
                errors.append(f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}")
        else:
            skipped[name] = errors[-1]
    for label, est in extras.items():
        fitted.append((label, fit_generic(est)))
    return classes, fitted, skipped


class _NeedsSpecialInput(Exception):
    pass


def _tune(est):
    params = est.get_params(deep=False)
    if "n_estimators" in params:
        est.set_params(n_estimators=5)
    if "random_state" in params and params["random_state"] is None:
        est.set_params(random_state=0)
    return est


def gen_sklearn(log, python_data, numpy_p):
    import numpy as np
    import scipy
    import sklearn
    from sklearn.experimental import enable_halving_search_cv, enable_iterative_imputer  # noqa: F401

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.random.seed(0)
        classes, fitted, skipped = sklearn_fitted()
        rec = Record()
        for label, est in fitted:
            rec.add_object(est, label, (2, 5))

    sinks = []
    for g, labels in sorted(rec.globals.items()):
        r = entry_sink_reason(g)
        if r:
            sinks.append(f"  {g} ({r}), pickled by {', '.join(sorted(labels)[:5])}")
    if sinks:
        die("sklearn: fitted estimators pickle globals that sinks.yaml calls sinks; refusing to allow "
            "them:\n" + "\n".join(sinks))

    class_names = {f"{E.__module__}.{E.__qualname__}" for E in classes.values()}
    inherited = set(python_data["allow"]) | set(numpy_p["allow"])
    recorded = set(rec.globals) - inherited
    allow = class_names | recorded
    check_entries("sklearn", allow)
    inherited_containers = set(python_data["containers"]) | set(numpy_p["containers"])
    containers = sorted(set(rec.containers) - inherited_containers)
    check_entries("sklearn", containers)
    foreign = sorted(g for g in recorded if g.split(".", 1)[0] != "sklearn")
    log(f"sklearn: {len(class_names)} estimator classes, {len(fitted)} fitted instances, "
        f"{len(recorded - class_names)} extra globals recorded; outside sklearn: {foreign}")
    log(f"sklearn: skipped {len(skipped)}: {skipped}")
    log("sklearn: fitted with sklearn's test parameters instead of defaults: "
        + ", ".join(label.split("(")[0] for label, _ in fitted if label.endswith("(sklearn test params)")))
    notes = [
        "Every estimator class from sklearn.utils.all_estimators() (with the experimental halving",
        "searches and IterativeImputer enabled), as `__module__.__qualname__`, plus every global recorded",
        "while pickling (protocols 2 and 5) each estimator fitted with default parameters on tiny data",
        "(n_estimators=5, random_state=0 where those parameters exist; sklearn's own test parameters",
        "where the defaults need arguments or do not fit the tiny data; text/dict/label/image input where",
        "the estimator takes it), and a few common non-default configurations (ball/kd trees, SGD losses).",
        "Globals recorded outside sklearn (listed explicitly): " + (", ".join(foreign) or "none") + ".",
    ]
    if skipped:
        notes.append("Allowed by class name but not fitted (their helper types are not recorded):")
        notes += [f"  {k}: {v}" for k, v in sorted(skipped.items())]
    return {
        "name": "sklearn",
        "header": [f"Generated by tools/gen_policies.py from scikit-learn=={version('scikit-learn')}, "
                   f"numpy=={version('numpy')}, scipy=={version('scipy')} on Python {PY} — do not edit by hand."],
        "notes": notes,
        "description": "Fitted scikit-learn estimators pickled with pickle (or the pickle part of joblib): "
                       "every estimator class and the helper types they pickle.",
        "extends": ["numpy", "python-data"],
        "allow": sorted(allow),
        "containers": containers,
        "build": "instances",
        "persistent_ids": "none",
    }


def gen_default():
    return {
        "name": "default",
        "header": ["Generated by tools/gen_policies.py — do not edit by hand."],
        "notes": [
            "The built-in strict default: picklegate applies this policy when no `.picklegate.yaml` exists.",
            "It allows exactly what the python-data, torch, numpy and sklearn presets allow, and nothing",
            "else; any other global, container call, BUILD target or persistent id is a finding.",
        ],
        "description": "Built-in strict default: the python-data, torch, numpy and sklearn presets.",
        "extends": ["python-data", "torch", "numpy", "sklearn"],
    }


# --------------------------------------------------------------------------------------------------
# pandas
# --------------------------------------------------------------------------------------------------


def pandas_objects():
    """DataFrames, Series, every Index kind, extension arrays/dtypes and scalars, as users pickle them."""
    import datetime

    import numpy as np
    import pandas as pd

    n = 3
    fixed = datetime.timezone(datetime.timedelta(hours=-5))
    columns = {
        "int64": np.arange(n), "float64": np.linspace(0, 1, n), "bool": np.array([True, False, True]),
        "object": ["a", None, 1.5], "str": pd.array(["x", "y", None], dtype="str"),
        "string": pd.array(["x", None, "z"], dtype="string"),
        "category": pd.Categorical(["a", "b", "a"]),
        "category-ordered": pd.Categorical([3, 1, 3], categories=[3, 1], ordered=True),
        "datetime64": pd.date_range("2020-01-01", periods=n),
        "datetime64-s": np.array(["2020-01-01", "NaT", "2021-06-01"], dtype="M8[s]"),
        "datetime64-utc": pd.date_range("2020-01-01", periods=n, tz="UTC"),
        "datetime64-fixed-offset": pd.date_range("2020-01-01", periods=n, tz=fixed),
        "timedelta64": pd.to_timedelta([1, 2, None], unit="s"),
        "period": pd.period_range("2020-01", periods=n, freq="M"),
        "interval": pd.IntervalIndex.from_breaks([0, 1, 2, 3], closed="left"),
        "Int8": pd.array([1, None, 3], dtype="Int8"), "Int64": pd.array([1, None, 3], dtype="Int64"),
        "UInt32": pd.array([1, None, 3], dtype="UInt32"), "Float32": pd.array([1.5, None, 3], dtype="Float32"),
        "Float64": pd.array([1.5, None, 3], dtype="Float64"), "boolean": pd.array([True, None, False], dtype="boolean"),
        "sparse-int": pd.arrays.SparseArray([0, 0, 1]),
        "sparse-float-block": pd.arrays.SparseArray([0.0, np.nan, 2.0], kind="block"),
    }
    objs = {f"DataFrame[{k}]": pd.DataFrame({k: v}) for k, v in columns.items()}
    objs["DataFrame[all]"] = pd.DataFrame(columns)
    objs["Series[all]"] = [pd.Series(v, name=k) for k, v in columns.items()]
    df = pd.DataFrame({"a": [1, 2, 3, 4], "b": list("wxyz")}, index=pd.MultiIndex.from_product([["p", "q"], [1, 2]],
                                                                                              names=["k", "n"]))
    df.attrs["source"] = "test"
    objs["DataFrame(MultiIndex, attrs)"] = df
    objs["DataFrame(MultiIndex columns)"] = pd.DataFrame(np.zeros((2, 4)), columns=pd.MultiIndex.from_product(
        [["a", "b"], [1, 2]]))
    objs["DataFrame(no duplicate labels)"] = pd.DataFrame({"a": [1]}).set_flags(allows_duplicate_labels=False)
    objs["DataFrame(groupby.agg)"] = pd.DataFrame({"g": list("aab"), "v": [1, 2, 3]}).groupby("g").agg(["sum", "mean"])
    objs["DataFrame(pivot_table)"] = pd.DataFrame({"a": list("xxy"), "b": list("uvu"), "v": [1, 2, 3]}).pivot_table(
        index="a", columns="b", values="v")
    objs["Series(DatetimeIndex freq=h)"] = pd.Series(range(n), index=pd.date_range("2020", periods=n, freq="h"))
    objs["Series(CategoricalIndex)"] = pd.Series(range(n), index=pd.CategoricalIndex(list("aba")))
    objs["arrays"] = [pd.arrays.NumpyExtensionArray(np.arange(3)), pd.array([1, None], dtype="Int16"),
                      pd.Categorical(["x"]), pd.array(["a", None], dtype="string")]
    objs["indexes"] = [
        pd.RangeIndex(5), pd.RangeIndex(2, 20, 3, name="r"), pd.Index([1, 2]), pd.Index([1.5, 2.5]),
        pd.Index(["a", "b"]), pd.Index(["a", 1], dtype=object), pd.Index([True, False]),
        pd.Index(pd.array([1, None], dtype="Int64")), pd.MultiIndex.from_arrays([[1, 2], ["a", "b"]]),
        pd.MultiIndex.from_tuples([], names=["a", "b"]),
        pd.DatetimeIndex(["2020-01-01", "2020-01-05"]), pd.date_range("2020", periods=n, freq="D", tz="UTC"),
        pd.TimedeltaIndex(["1D", "2h"]), pd.timedelta_range("1D", periods=n),
        pd.period_range("2020", periods=n, freq="Q"), pd.CategoricalIndex(list("aab")),
        pd.interval_range(0, 3), pd.IntervalIndex.from_arrays(pd.date_range("2020", periods=2),
                                                              pd.date_range("2020-02", periods=2)),
    ]
    objs["scalars"] = [
        pd.Timestamp("2020-01-01 12:00"), pd.Timestamp("2020-01-01", tz="UTC"), pd.Timestamp("2020-01-01", tz=fixed),
        pd.Timestamp("2020-01-01").as_unit("s"), pd.Timedelta("1D 2h"), pd.Timedelta(1, unit="ns"),
        pd.Period("2020-01", freq="M"), pd.Period("2020Q1"), pd.NaT, pd.NA, pd.Interval(0, 1, closed="both"),
        pd.Interval(pd.Timestamp("2020"), pd.Timestamp("2021")),
    ]
    offsets = []
    for name in sorted(pd.offsets.__all__):
        try:
            offsets.append(getattr(pd.offsets, name)())
        except Exception:  # noqa: BLE001 - abstract bases (Tick, BaseOffset) and offsets needing arguments
            pass
    objs["offsets"] = offsets
    objs["periods by freq"] = [pd.Period("2020-01-01", freq=f) for f in
                               ("D", "W", "M", "Q", "Y", "h", "min", "s", "ms", "us", "ns", "B")]
    objs["dtypes"] = [pd.CategoricalDtype(["a"]), pd.DatetimeTZDtype(tz="UTC"), pd.PeriodDtype("M"),
                      pd.IntervalDtype("int64"), pd.SparseDtype("float64"), pd.Int64Dtype(), pd.BooleanDtype(),
                      pd.Float64Dtype(), pd.StringDtype(), pd.StringDtype(na_value=np.nan)]
    return objs


# tz-aware data: zoneinfo (pandas 3's default time zone type), dateutil time zones; the fixed-offset and UTC
# (datetime.timezone) cases are in pandas_objects().
def pandas_tz_objects():
    import dateutil.tz
    import pandas as pd

    objs = {}
    for kind, tz in (("zoneinfo", "Europe/Berlin"), ("dateutil tzfile", "dateutil/Europe/Berlin"),
                     ("dateutil tzutc", dateutil.tz.tzutc()), ("dateutil tzoffset", dateutil.tz.tzoffset("X", 3600)),
                     ("dateutil tzlocal", dateutil.tz.tzlocal())):
        objs[f"DataFrame[datetime64 {kind}]"] = pd.DataFrame({"t": pd.date_range("2020-01-01", periods=3, tz=tz)})
        objs[f"Timestamp({kind})"] = pd.Timestamp("2020-01-01", tz=tz)
    return objs


def gen_pandas(log, python_data, numpy_p):
    import pandas as pd

    rec = StaticRecord()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        objs = pandas_objects()
        objs.update(pandas_tz_objects())
        for label, obj in objs.items():
            rec.add_object(obj, label, (2, 4, 5))
            if isinstance(obj, (pd.DataFrame, pd.Series)):
                buf = io.BytesIO()
                obj.to_pickle(buf, compression=None)  # pickle.dump at protocol 5
                rec.add_pickle(buf.getvalue(), f"{label}@to_pickle")
    split = split_recorded("pandas", rec, [numpy_p, python_data])
    allow = split["allow"]
    check_entries("pandas", allow)
    check_entries("pandas", split["containers"])
    foreign = sorted(g for g in allow if g.split(".", 1)[0] != "pandas")
    log(f"pandas: {len(allow)} globals recorded beyond numpy/python-data; outside pandas: {foreign}; "
        f"refused: {split['refused']}; dropped: {sorted(split['dropped'])}")
    notes = [
        "Every global recorded (with a static reader that imports nothing) while pickling, at protocols 2, 4 and 5",
        "and with DataFrame/Series.to_pickle, DataFrames and Series of every column kind (numpy int/float/bool/",
        "object/datetime64/timedelta64, str and string, categorical, datetime64 with UTC, fixed-offset, zoneinfo",
        "and dateutil time zones, period, interval, nullable Int/UInt/Float/boolean, sparse), MultiIndex rows and",
        "columns, attrs and flags, every Index kind, dtypes, Timestamp/Timedelta/Period/Interval/NaT/NA and",
        "every DateOffset in pandas.offsets, minus what the numpy and python-data presets allow.",
        "Globals outside pandas (listed explicitly): " + (", ".join(foreign) or "none") + ".",
    ]
    notes += refusal_notes(split)
    return {
        "name": "pandas",
        "header": [f"Generated by tools/gen_policies.py from pandas=={version('pandas')}, numpy=={version('numpy')}, "
                   f"python-dateutil=={version('python-dateutil')} on Python {PY} — do not edit by hand."],
        "notes": notes,
        "description": "pandas DataFrames, Series, Index types, extension arrays and dtypes, and time scalars "
                       "and offsets, as pickle and DataFrame.to_pickle write them.",
        "extends": ["numpy", "python-data"],
        "allow": sorted(allow),
        "containers": sorted(split["containers"]),
        "build": "instances",
        "persistent_ids": "none",
    }

# --------------------------------------------------------------------------------------------------
# transformers
# --------------------------------------------------------------------------------------------------


def _quiet_transformers():
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def trainer_checkpoint(tmp):
    """Train a tiny BertForSequenceClassification for one step with Trainer and return the pickles of
    its checkpoint ({file name: torch.save bytes}) and the trainer (for its state)."""
    import contextlib

    import torch
    from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=16, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8,
                     max_position_embeddings=8, num_labels=2)
    data = [{"input_ids": torch.tensor([1, 2, 3]), "labels": i % 2} for i in range(2)]
    args = TrainingArguments(output_dir=tmp, max_steps=1, save_steps=1, per_device_train_batch_size=2,
                             report_to="none", disable_tqdm=True, seed=0)
    trainer = Trainer(model=BertForSequenceClassification(cfg), args=args, train_dataset=data)
    with contextlib.redirect_stdout(io.StringIO()):  # Trainer prints its metrics
        trainer.train()
    ckpt = os.path.join(tmp, "checkpoint-1")
    files = {}
    for name in sorted(os.listdir(ckpt)):
        with open(os.path.join(ckpt, name), "rb") as f:
            data = f.read()
        if data[:4] == b"PK\x03\x04":  # torch.save zip files; the rest is JSON and safetensors
            files[name] = data
    return files, trainer


def _enum_types(tp, out):
    import enum
    import typing

    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        out.add(tp)
    for a in typing.get_args(tp):
        _enum_types(a, out)
    return out


def training_args_samples(tmp):
    """TrainingArguments as Trainer saves them (training_args.bin), in common configurations."""
    import dataclasses

    from transformers import GenerationConfig, Seq2SeqTrainingArguments, TrainingArguments

    base = dict(output_dir=tmp, report_to="none")
    variants = {
        "TrainingArguments(eval/save strategies, scheduler kwargs, adafactor)": TrainingArguments(
            **base, eval_strategy="epoch", save_strategy="best", metric_for_best_model="loss",
            lr_scheduler_type="cosine_with_restarts", lr_scheduler_kwargs={"num_cycles": 2}, optim="adafactor",
            hub_strategy="checkpoint", logging_strategy="no"),
        "TrainingArguments(debug, accelerator_config, gradient checkpointing)": TrainingArguments(
            **base, debug="underflow_overflow", accelerator_config={"split_batches": True},
            gradient_checkpointing=True, gradient_checkpointing_kwargs={"use_reentrant": False}, use_cpu=True),
        "Seq2SeqTrainingArguments(generation_config)": Seq2SeqTrainingArguments(
            **base, predict_with_generate=True, generation_config=GenerationConfig(max_new_tokens=4, num_beams=2)),
    }
    # every Enum type the argument classes annotate their fields with, one member each
    enums = set()
    for cls in (TrainingArguments, Seq2SeqTrainingArguments):
        for f in dataclasses.fields(cls):
            _enum_types(f.type, enums)
    enum_members = {f"{E.__module__}.{E.__qualname__}": next(iter(E)) for E in enums}
    return variants, enum_members


def transformers_configs():
    """Every config class of CONFIG_MAPPING instantiated with defaults: (classes, {model type: config},
    {model type: why it could not be made})."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    classes, made, skipped = {}, {}, {}
    for model_type in CONFIG_MAPPING.keys():
        C = CONFIG_MAPPING[model_type]
        classes[model_type] = C
        try:
            made[model_type] = C()
        except Exception as e:  # noqa: BLE001 - configs whose defaults do not validate
            skipped[model_type] = f"{type(e).__name__}: {' '.join(str(e).split())[:100]}"
    return classes, made, skipped


def transformers_tokenizers():
    """Tokenizers built in memory (no vocabulary files, no downloads)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import (BertTokenizer, GPT2Tokenizer, LlamaTokenizer, PreTrainedTokenizerFast, RobertaTokenizer,
                              T5Tokenizer, XLMRobertaTokenizer)

    vocab = {"[UNK]": 0, "[CLS]": 1, "[SEP]": 2, "[PAD]": 3, "a": 4, "b": 5, "ab": 6}
    bpe = {"a": 0, "b": 1, "ab": 2, "<s>": 3, "</s>": 4, "<unk>": 5, "<pad>": 6, "<mask>": 7}
    pieces = [("<s>", 0.0), ("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("a", -1.0), ("b", -2.0)]
    wp = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    wp.normalizer = normalizers.BertNormalizer()
    wp.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wp.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]",
                                                      special_tokens=[("[CLS]", 1), ("[SEP]", 2)])
    wp.decoder = decoders.WordPiece()
    raw = {
        "tokenizers.Tokenizer(WordPiece)": wp,
        "tokenizers.Tokenizer(BPE)": Tokenizer(models.BPE(bpe, [("a", "b")])),
        "tokenizers.Tokenizer(Unigram)": Tokenizer(models.Unigram(pieces, 3)),
        "tokenizers.Tokenizer(WordLevel)": Tokenizer(models.WordLevel(vocab, unk_token="[UNK]")),
    }
    toks = dict(raw)
    for label, t in raw.items():
        toks[f"PreTrainedTokenizerFast({label.split('(')[1]}"] = PreTrainedTokenizerFast(
            tokenizer_object=t, unk_token="[UNK]", pad_token=AddedToken("[PAD]", special=True),
            additional_special_tokens=["[X]"])
    toks.update({
        "BertTokenizer": BertTokenizer(vocab=vocab),
        "GPT2Tokenizer": GPT2Tokenizer(vocab=bpe, merges=[("a", "b")]),
        "RobertaTokenizer": RobertaTokenizer(vocab=bpe, merges=[("a", "b")]),
        "LlamaTokenizer": LlamaTokenizer(vocab=bpe, merges=[("a", "b")]),
        "T5Tokenizer": T5Tokenizer(vocab=pieces, extra_ids=2),
        "XLMRobertaTokenizer": XLMRobertaTokenizer(vocab=pieces),
    })
    return toks


# Trainer checkpoint files whose globals are allowed only together with the numpy preset.
TRANSFORMERS_NEEDS_NUMPY = {"Trainer checkpoint rng_state.pth"}


def gen_transformers(log, python_data, numpy_p, torch_p):
    import tempfile

    import transformers
    from transformers import GenerationConfig
    from transformers.generation.configuration_utils import CompileConfig, WatermarkingConfig

    _quiet_transformers()
    rec = StaticRecord()
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore")
        files, trainer = trainer_checkpoint(tmp)
        for name, data in files.items():
            rec.add_torch_file(data, f"Trainer checkpoint {name}@torch.save")
        variants, enum_members = training_args_samples(tmp)
        objects = dict(variants)
        objects["TrainerState (after one step)"] = trainer.state
        objects["TrainerControl"] = trainer.control
        objects.update({f"enum {k}": v for k, v in sorted(enum_members.items())})
        objects["GenerationConfig"] = GenerationConfig(max_new_tokens=5, do_sample=True, top_k=3,
                                                       compile_config=CompileConfig(),
                                                       watermarking_config=WatermarkingConfig())
        objects.update({f"tokenizer {k}": v for k, v in transformers_tokenizers().items()})
        for label, obj in objects.items():
            rec.add_torch(obj, label)
            rec.add_object(obj, label, (2, 5))
        config_classes, configs, skipped = transformers_configs()
        for model_type, cfg in configs.items():
            rec.add_object(cfg, f"config {model_type}", (2, 5))
        for model_type in ("bert", "gpt2", "llama"):
            rec.add_torch(configs[model_type], f"config {model_type}")

    if "Trainer checkpoint training_args.bin@torch.save" not in set().union(*rec.globals.values()):
        die("transformers: the Trainer checkpoint has no training_args.bin")
    numpy_allow = set(numpy_p["allow"])
    split = split_recorded("transformers", rec, [torch_p, python_data], persistent_ids="torch-storage",
                           assumed={label: numpy_allow for label in TRANSFORMERS_NEEDS_NUMPY})
    class_names = {f"{C.__module__}.{C.__qualname__}" for C in config_classes.values()}
    allow = split["allow"] | class_names
    check_entries("transformers", allow)
    check_entries("transformers", split["containers"])
    foreign = sorted(g for g in allow if g.split(".", 1)[0] != "transformers")
    for g in foreign:
        if entry_sink_reason(g):  # split_recorded and check_entries refuse these already; say it twice
            die(f"transformers: {g} is a sink")
    log(f"transformers: {len(class_names)} config classes ({len(configs)} pickled), "
        f"{len(allow - class_names)} other globals recorded; outside transformers: {foreign}; "
        f"refused: {split['refused']}; dropped: {sorted(split['dropped'])}; configs skipped: {skipped}")
    notes = [
        "Every global recorded (with a static reader that imports nothing) in the pickles of a real Trainer",
        "checkpoint (a tiny BERT trained one step: training_args.bin, optimizer.pt, scheduler.pt, rng_state.pth),",
        "torch.save and pickle (protocols 2 and 5) of TrainingArguments / Seq2SeqTrainingArguments in common",
        "configurations, one member of every Enum their fields are annotated with, TrainerState, TrainerControl,",
        "GenerationConfig, tokenizers built in memory (tokenizers models, PreTrainedTokenizerFast, BertTokenizer,",
        "GPT2Tokenizer, RobertaTokenizer, LlamaTokenizer, T5Tokenizer, XLMRobertaTokenizer), and every config",
        "class of CONFIG_MAPPING (allowed by class name, instantiated with defaults and pickled).",
        "Trainer checkpoints need accelerate (TrainingArguments pickles its accelerate PartialState).",
        "Real files only rebuild TrainingArguments and PartialState with __new__ + BUILD, but an allow entry also",
        "lets a pickle call them: TrainingArguments(...) runs __post_init__ (reads the JSON config files it is",
        "named, sets ACCELERATE_* environment variables), PartialState(...) sets up torch.distributed from the",
        "environment. Neither is a sinks.yaml entry.",
        "rng_state.pth (Python, numpy and torch RNG states) also needs the numpy preset.",
        "Globals outside transformers (listed explicitly, checked against sinks.yaml): " + ", ".join(foreign) + ".",
    ]
    notes += refusal_notes(split)
    if skipped:
        notes.append("Config classes allowed by name but not pickled (their defaults do not validate):")
        notes += [f"  {k}: {v}" for k, v in sorted(skipped.items())]
    return {
        "name": "transformers",
        "header": [f"Generated by tools/gen_policies.py from transformers=={version('transformers')}, "
                   f"accelerate=={version('accelerate')}, tokenizers=={version('tokenizers')}, "
                   f"torch=={version('torch')} on Python {PY} — do not edit by hand."],
        "notes": notes,
        "description": "Hugging Face Trainer checkpoints (training_args.bin and the torch files beside it), "
                       "config and generation-config objects, Trainer state and in-memory tokenizers.",
        "extends": ["torch", "python-data"],
        "allow": sorted(allow),
        "containers": sorted(split["containers"]),
        "build": "instances",
        "persistent_ids": "torch-storage",
    }

# --------------------------------------------------------------------------------------------------
# joblib
# --------------------------------------------------------------------------------------------------


def joblib_objects(tmp):
    """What people joblib.dump: arrays of every builtin dtype (C/Fortran order, 0-d, empty, structured,
    object, matrix, memmap), dicts and lists of arrays, and small fitted sklearn models."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    arrays = {}
    for code in np.typecodes["All"]:
        dt = np.dtype(code)
        if dt.kind in "Mm":
            dt = np.dtype(f"{code}8[s]")
        elif dt.itemsize == 0:  # S, U, V without a size
            dt = np.dtype(f"{code}4")
        arrays[f"array-{code}"] = np.zeros(3, dtype=dt)
    mm = np.memmap(os.path.join(tmp, "mm.dat"), dtype="f4", mode="w+", shape=(2, 3))
    objs = {
        "arrays of every dtype": arrays,
        "0-d array": np.zeros((), dtype="f8"),
        "empty array": np.zeros((0, 3)),
        "Fortran-order array": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "big-endian array": np.arange(3, dtype=">i4"),
        "structured array": np.zeros(2, dtype=[("a", "<i4"), ("b", ">f8", (2,)), ("c", "U3")]),
        "object array": np.array([1, "a", None, {"k": np.arange(2)}], dtype=object),
        "matrix": np.asmatrix(np.eye(2)),
        "memmap": mm,
        "dict of arrays": {"x": np.arange(4.0), "y": np.arange(4), "meta": {"n": 4}},
        "list of arrays": [np.zeros(2), np.ones((2, 2), dtype="f4")],
    }
    X = np.arange(20.0).reshape(10, 2)
    y = np.array([0, 1] * 5)
    objs["sklearn LogisticRegression"] = LogisticRegression().fit(X, y)
    objs["sklearn DecisionTreeClassifier"] = DecisionTreeClassifier(random_state=0).fit(X, y)
    objs["sklearn Pipeline(StandardScaler, LogisticRegression)"] = make_pipeline(
        StandardScaler(), LogisticRegression()).fit(X, y)
    return objs


def gen_joblib(log, python_data, numpy_p, sklearn_p):
    import tempfile

    import joblib

    rec = StaticRecord()
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore")
        objs = joblib_objects(tmp)
        path = os.path.join(tmp, "x.joblib")
        for label, obj in objs.items():
            for protocol in (None, 2, 5):  # None: joblib's default
                joblib.dump(obj, path, protocol=protocol)
                with open(path, "rb") as f:
                    rec.add_pickle(f.read(), f"{label}@{'default' if protocol is None else f'p{protocol}'}",
                                   joblib=True)
        del objs  # close the memmap before the directory goes
    if JOBLIB_WRAPPER not in rec.globals:
        die(f"joblib: joblib.dump did not pickle {JOBLIB_WRAPPER}")
    sklearn_allow = set(sklearn_p["allow"])
    split = split_recorded("joblib", rec, [numpy_p, python_data],
                           assumed={label: sklearn_allow for label in {lb.split("@")[0] for lbs in rec.globals.values()
                                                                        for lb in lbs if lb.startswith("sklearn ")}},
                           format_globals={JOBLIB_WRAPPER})
    allow = split["allow"]
    check_entries("joblib", allow)
    check_entries("joblib", split["containers"])
    foreign = sorted(g for g in allow if g.split(".", 1)[0] != "joblib")
    log(f"joblib: {len(allow)} globals recorded beyond numpy/python-data/sklearn: {sorted(allow)}; "
        f"refused: {split['refused']}")
    notes = [
        "Every global recorded (with a static reader that imports nothing and skips the array data joblib",
        "writes inside the pickle, as picklegate does) in joblib.dump files (joblib's default protocol, 2 and 5)",
        "of arrays of every builtin dtype (0-d, empty, Fortran-order, big-endian, structured, object), a matrix,",
        "a memmap, dicts and lists of arrays, and fitted sklearn models (LogisticRegression, DecisionTreeClassifier,",
        "a StandardScaler+LogisticRegression pipeline), minus what the numpy and python-data presets allow.",
        f"picklegate's joblib format layer accepts {JOBLIB_WRAPPER} in any policy; it is listed here to",
        "document it. Compressed joblib files hold the same pickle. Fitted models also need the sklearn preset.",
        "Globals outside joblib (listed explicitly): " + (", ".join(foreign) or "none") + ".",
    ]
    notes += refusal_notes(split)
    return {
        "name": "joblib",
        "header": [f"Generated by tools/gen_policies.py from joblib=={version('joblib')}, numpy=={version('numpy')}, "
                   f"scikit-learn=={version('scikit-learn')} on Python {PY} — do not edit by hand."],
        "notes": notes,
        "description": "joblib.dump files: the NumpyArrayWrapper joblib writes for each array, and what "
                       "numpy arrays joblib.dump pickles beyond the numpy preset.",
        "extends": ["numpy", "python-data"],
        "allow": sorted(allow),
        "containers": sorted(split["containers"]),
        "build": "instances",
        "persistent_ids": "none",
    }

# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def _scalar(s: str) -> str:
    return s if _PLAIN.match(s) else json.dumps(s)


def render(p) -> str:
    out = [f"# {h}" for h in p["header"]]
    if p.get("notes"):
        out.append("#")
        out += [f"# {n}".rstrip() for n in p["notes"]]
    out += ["version: 1", "policies:", f"  {p['name']}:", f"    description: {json.dumps(p['description'], ensure_ascii=False)}"]
    if p.get("extends"):
        out.append(f"    extends: [{', '.join(p['extends'])}]")
    for key in ("allow", "containers"):
        items = p.get(key)
        if items:
            assert items == sorted(set(items)), key
            out.append(f"    {key}:")
            out += [f"      - {_scalar(x)}" for x in items]
    for key in ("build", "persistent_ids"):
        if p.get(key):
            out.append(f"    {key}: {p[key]}")
    if p.get("substitutes"):
        out.append("    substitutes:")
        out += [f"      - {x}" for x in p["substitutes"]]
    return "\n".join(out) + "\n"


def validate_yaml(name: str, text: str, p) -> None:
    try:
        import yaml
    except ImportError:
        return
    doc = yaml.safe_load(text)
    pol = doc["policies"][p["name"]]
    assert doc["version"] == 1 and list(doc["policies"]) == [p["name"]], name
    assert pol.get("allow", []) == p.get("allow", []), name
    assert pol.get("containers", []) == p.get("containers", []), name


def pin_mismatches() -> list[str]:
    """Installed versions that differ from tests/requirements.txt (the presets are pinned to those)."""
    req = os.path.join(ROOT, "tests", "requirements.txt")
    out = []
    if os.path.exists(req):
        for line in open(req, encoding="utf-8"):
            m = re.match(r"^\s*(torch|numpy|scikit-learn|pandas|joblib|transformers|accelerate)==(\S+)", line)
            if m:
                try:
                    have = version(m.group(1))
                except Exception:  # noqa: BLE001
                    have = "missing"
                if have != m.group(2):
                    out.append(f"{m.group(1)} {have} installed, {m.group(2)} pinned")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if policies/ differs from a fresh generation")
    ap.add_argument("--numpy1-python", metavar="PATH", help="interpreter with numpy 1.x to re-verify NUMPY1_RECORDED")
    ap.add_argument("--probe", choices=["numpy"], help=argparse.SUPPRESS)
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args()

    if args.probe == "numpy":
        import numpy as np

        warnings.simplefilter("ignore")
        json.dump({"version": np.__version__, "record": probe_numpy().to_json()}, sys.stdout)
        return 0

    t0 = time.monotonic()
    log = (lambda *a: None) if args.quiet else (lambda msg: print(f"[{time.monotonic() - t0:5.1f}s] {msg}", file=sys.stderr))
    if sys.version_info[:2] != (3, 11):
        log(f"warning: the presets are pinned to Python 3.11; this is {PY}")
    for m in pin_mismatches():
        log(f"warning: {m} (tests/requirements.txt); the output will not match the committed presets")

    python_data = gen_python_data(log)
    numpy_p = gen_numpy(log, python_data, args.numpy1_python)
    torch_p = gen_torch(log, python_data, numpy_p)
    sklearn_p = gen_sklearn(log, python_data, numpy_p)
    pandas_p = gen_pandas(log, python_data, numpy_p)
    transformers_p = gen_transformers(log, python_data, numpy_p, torch_p)
    joblib_p = gen_joblib(log, python_data, numpy_p, sklearn_p)
    presets = [python_data, numpy_p, torch_p, sklearn_p, pandas_p, transformers_p, joblib_p, gen_default()]

    files = {}
    for p in presets:
        name = f"{p['name']}.yaml"
        files[name] = render(p)
        validate_yaml(name, files[name], p)

    if args.check:
        differ = []
        for name, text in files.items():
            path = os.path.join(POLICY_DIR, name)
            old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
            if old != text:
                differ.append(name)
                diff = difflib.unified_diff((old or "").splitlines(True), text.splitlines(True),
                                            f"committed/{name}", f"generated/{name}", n=1)
                sys.stderr.writelines(list(diff)[:60])
        if differ:
            die(f"policies/ is out of date for {', '.join(differ)} (installed libraries differ from the pins "
                "in tests/requirements.txt, or the generator changed): run python3 tools/gen_policies.py")
        log(f"check: {len(files)} presets match ({time.monotonic() - t0:.1f}s)")
        return 0

    for name, text in files.items():
        with open(os.path.join(POLICY_DIR, name), "w", encoding="utf-8") as f:
            f.write(text)
    for p in presets:
        log(f"wrote policies/{p['name']}.yaml: {len(p.get('allow', []))} allow, "
            f"{len(p.get('containers', []))} containers")
    log(f"done in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
