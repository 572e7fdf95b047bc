#!/usr/bin/env python3
"""Generate picklegate's embedded policy presets (policies/*.yaml) and their audit (policies/AUDIT.md).

    python3 tools/gen_policies.py            # (re)write policies/{python-data,numpy,torch,sklearn,pandas,
                                             #   transformers,joblib,omegaconf,boosting,default}.yaml, AUDIT.md
    python3 tools/gen_policies.py --check    # regenerate in memory; exit 1 if a committed file differs
    python3 tools/gen_policies.py --numpy1-python /path/to/python   # also re-verify the numpy 1.x names
                                                                    # with an interpreter that has numpy 1.x
    python3 tools/gen_policies.py --check --dump DIR   # also write every recorded file + manifest.json, to
                                                       # scan them with the picklegate binary

Every preset is built from, and verified against, the installed libraries pinned in tests/requirements.txt
(Python 3.11), in two steps:

  * ENUMERATION: the library's inventory is listed from the library itself (every ufunc, every pandas
    extension dtype and array, every sklearn CV splitter, scorer, metric, kernel, distance metric, every
    scipy.sparse format, every omegaconf node class, ...), one object of each kind is made and pickled at
    several protocols (and with torch.save / joblib.dump / to_pickle where people use those), and every
    pickle is read by StaticPickle. StaticPickle reads pickles the way picklegate does (pickletools.genops
    and a symbolic stack): it never imports or calls anything it records. It records, per global, the
    widest use the pickle makes of it (reference < new < call, picklegate's allow modes; the arguments of
    the rebuilders of sinks.yaml `rebuilders:` in the mode given there), resolves getattr(GLOBAL, 'name')
    to the dotted name, and checks that every method call and BUILD targets an object made by an allowed
    name and that persistent ids are the preset's. A preset allows each
    recorded name in the narrowest mode that covers every recorded use. The script dies if a recorded
    pickle that is not refused by design could not pass its preset.
  * AUDIT: for every allowed name, how it restores (which __new__/__init__/__setstate__/__setattr__ a
    pickle reaches in that mode) and a static scan (inspect.getsource + ast, following self/cls methods
    and module functions a few calls deep) of that Python code for exec/eval/compile/__import__/open and
    importlib/pickle/cloudpickle/dill/srsly/marshal/subprocess/os/socket/shutil/joblib.Memory. Code that
    does one of those is a sink: it must be in policies/sinks.yaml (then no preset may allow it) or be
    reviewed in AUDIT_REVIEWED with the reason it is harmless. C implementations are reported as such.
    Allowed functions that call or instantiate one of their arguments must be in sinks.yaml
    `rebuilders:` (so that a name allowed as a mere reference cannot be run through them).
    The result is written to policies/AUDIT.md.

The script refuses (exit 1) to write a preset that allows a sink from policies/sinks.yaml, with picklegate's
rule: a module equal to or below a listed module, an exact listed name, a dunder component after the first
component of the qualname, or an attribute chain reaching one of those -- unless an `inert:` entry of
sinks.yaml carves out that exact name up to the mode the preset allows it in.

Top-level imports are stdlib only so that `--probe numpy` can run under another interpreter.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import functools
import importlib
import inspect
import io
import json
import os
import pickle
import pickletools
import re
import subprocess
import sys
import textwrap
import time
import warnings
import _compat_pickle

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POLICY_DIR = os.path.join(ROOT, "policies")
SINKS_FILE = os.path.join(POLICY_DIR, "sinks.yaml")
PY = f"{sys.version_info.major}.{sys.version_info.minor}"

# --------------------------------------------------------------------------------------------------
# Allow modes (mirror of src/policy/mod.rs `Mode`): what a pickle may do with an allowed name
# --------------------------------------------------------------------------------------------------

REFERENCE, NEW, CALL = 0, 1, 2
MODE_NAMES = ("reference", "new", "call")
MODE_OF = {n: i for i, n in enumerate(MODE_NAMES)}


def widest(a: int | None, b: int) -> int:
    return b if a is None else max(a, b)


def merge_allow(*allows: dict[str, int]) -> dict[str, int]:
    """Allow maps merged as picklegate flattens `extends`: the widest mode of a name wins."""
    out: dict[str, int] = {}
    for a in allows:
        for n, m in a.items():
            out[n] = widest(out.get(n), m)
    return out


# --------------------------------------------------------------------------------------------------
# Sinks (mirror of src/policy/sinks.rs)
# --------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def sinks():
    """policies/sinks.yaml: (modules, names, inert {name: widest inert mode}, does {key: text}).
    Loaded on first use, so that `--probe numpy` runs without PyYAML."""
    doc = _sinks_doc()
    inert = {e["name"]: MODE_OF[e["mode"]] for e in doc.get("inert") or []}
    return set(doc["modules"]), set(doc["names"]), inert, dict(doc.get("does") or {})


@functools.lru_cache(maxsize=None)
def _sinks_doc():
    import yaml

    return yaml.safe_load(open(SINKS_FILE, encoding="utf-8"))


def rebuilders() -> dict[str, list[int | None]]:
    """sinks.yaml `rebuilders:` (mirror of sinks.rs `rebuilder_args`): rebuilder -> the mode each positional
    argument is used in (None: only stored). --probe children get it from the parent (PG_REBUILDERS)."""
    if "PG_REBUILDERS" in os.environ:
        return {k: v for k, v in json.loads(os.environ["PG_REBUILDERS"]).items()}
    return {k: [MODE_OF.get(m) for m in v] for k, v in (_sinks_doc().get("rebuilders") or {}).items()}


def inert_reason(name: str) -> str | None:
    return next((e["reason"] for e in _sinks_doc().get("inert") or [] if e["name"] == name), None)


def _is_dunder(s: str) -> bool:
    return len(s) > 4 and s.startswith("__") and s.endswith("__")


def sink_reason(module: str, qualname: str, mode: int = CALL, tails: bool = True) -> str | None:
    """Mirror of sinks.rs `sink_reason_as`: why `module` + `qualname`, used in `mode`, is a sink.
    `tails`: also the rule for attribute chains in the qualname (which depends on where the split is)."""
    modules, names, inert, _ = sinks()
    if mode <= inert.get(f"{module}.{qualname}", -1):
        return None
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in modules:
            return f"sinks.yaml module {'.'.join(parts[:i])}"
    qual = module
    for i, part in enumerate(qualname.split(".")):
        qual += "." + part
        if qual in names:
            return f"sinks.yaml name {qual}"
        if i > 0 and _is_dunder(part):
            return f"dunder attribute {part} in the qualname"
        if qual in modules:
            return f"sinks.yaml module {qual}"
    # an attribute chain reaches a sink through any module that imported it (`pathlib` + `os.system`)
    tail = qualname
    while tails and "." in tail:
        head = tail.split(".", 1)[0]
        if head in modules or tail in names:
            return f"the attribute chain {qualname} reaches {tail}"
        tail = tail.split(".", 1)[1]
    if module == "builtins" and _is_dunder(qualname) and qualname not in ("__newobj__", "__newobj_ex__"):
        return "builtins dunder"
    return None


@functools.lru_cache(maxsize=None)
def entry_sink_reason(full: str, mode: int = CALL) -> str | None:
    """An entry is `module.qualname` joined with a dot, so the split is not recorded: picklegate's policy
    loader splits at the last dot (and refuses to load a policy that allows a sink so), its scanner sees
    the split the pickle uses. An entry counts as a sink if it is one at the last dot, or under any other
    split by the rules that do not depend on the split (a superset of both)."""
    module, _, qual = full.rpartition(".")
    r = sink_reason(module, qual, mode)
    if r:
        return r
    parts = full.split(".")
    for i in range(1, len(parts)):
        r = sink_reason(".".join(parts[:i]), ".".join(parts[i:]), mode, tails=False)
        if r:
            return r
    return None


def sink_does(full: str) -> str | None:
    """The `does:` text of the longest sinks.yaml key that `full` is or is below."""
    does = sinks()[3]
    parts = full.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in does:
            return does[".".join(parts[:i])]
    return None


# --------------------------------------------------------------------------------------------------
# Static recorder: pickles read like picklegate reads them (nothing imported or called)
# --------------------------------------------------------------------------------------------------


def _fix_imports(proto: int, module: str, name: str) -> tuple[str, str]:
    """CPython's find_class name mapping for protocol < 3 (fix_imports=True)."""
    if proto < 3:
        if (module, name) in _compat_pickle.NAME_MAPPING:
            return _compat_pickle.NAME_MAPPING[(module, name)]
        if module in _compat_pickle.IMPORT_MAPPING:
            return _compat_pickle.IMPORT_MAPPING[module], name
    return module, name


class _Val:
    """A value on the static recorder's stack. kind: const (val: the literal), tuple/list/dict/set/frozenset
    (val: items; dict items are (key, value) pairs), global (val: `module.qualname`), call (val: the
    callee value, args: the argument value; name: the dotted name when it is a resolved getattr), pid
    (val: the persistent id value), array (joblib array data)."""

    __slots__ = ("kind", "val", "args", "name", "referenced", "resolved_calls", "other_calls")

    def __init__(self, kind: str, val=None, args=None):
        self.kind = kind
        self.val = val
        self.args = args
        self.name = None  # a call: `G.attr` when it is getattr(G, 'attr') with literal operands
        self.referenced = False  # a global: appears as an item, argument, BUILD state, target or root
        self.resolved_calls = 0  # builtins.getattr: calls resolved to a dotted name
        self.other_calls = False  # builtins.getattr: calls that were not

    def named(self) -> str | None:
        """The name this value stands for (mirror of uses.rs `name_of`): a global's or a resolved getattr's."""
        if self.kind == "global":
            return self.val
        return self.name if self.kind == "call" else None

    def producer(self) -> str | None:
        """The name whose call made this value (mirror of check.rs `producer`: the callee's name)."""
        return self.val.named() if self.kind == "call" else None

    def describe(self) -> str:
        if self.kind == "call":
            return "the result of calling a non-global" if self.producer() is None else f"a {self.producer()} object"
        if self.kind == "global":
            return f"the global {self.val} itself"
        return f"a {self.kind}"


_MARK = object()
JOBLIB_WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"
GETATTR = "builtins.getattr"
_CONSTS = {"INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "STRING", "BINSTRING", "SHORT_BINSTRING",
           "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8", "UNICODE", "SHORT_BINUNICODE", "BINUNICODE",
           "BINUNICODE8", "FLOAT", "BINFLOAT"}


@functools.lru_cache(maxsize=None)
def _rebuilder_table():
    return rebuilders()


def _numpy_itemsize(descr: str):
    """Mirror of the joblib reader of src/pickle/vm.rs: bytes per element of a NumPy type string, None for
    object arrays; raises ValueError for a type string picklegate does not know or whose item size is
    platform-dependent (long double: picklegate refuses such arrays)."""
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
    if (kind == "f" and n in (12, 16)) or (kind == "c" and n in (24, 32)) or kind in "gG":
        raise ValueError(f"{descr}: platform-dependent item size (long double)")
    if kind in "biufcSaVMm?edqlh":
        return n
    raise ValueError(descr)


class StaticPickle:
    """One pickle stream read with pickletools.genops and a symbolic stack, the way picklegate reads it.

    Records `uses` (name -> widest mode, mirror of src/check/uses.rs): every global is at least a
    reference; the callee of REDUCE/INST/OBJ is called; the class of NEWOBJ/NEWOBJ_EX and arg 0 of
    copyreg._reconstructor(cls, builtins.object, ...) is instantiated without __init__ (new); the base of
    _reconstructor(cls, base, state) with another base is called; the arguments of a REDUCE of a rebuilder
    of sinks.yaml `rebuilders:` (copyreg.__newobj__, torch's _rebuild_from_type_v2, ...) are used in the
    mode the table gives for their position. getattr(G, 'attr') with a literal global (or a resolved getattr) and a literal str without a
    dot stands for the name `G.attr`; the getattr global then needs no entry when every use of it is such
    a call. Also records the producer (callee name) of every non-native object that receives
    APPEND(S)/SETITEM(S)/ADDITEMS, of every BUILD target, and every persistent id. With `joblib`, skips
    the array data joblib's NumpyUnpickler reads after BUILD of a NumpyArrayWrapper (or reads the nested
    pickle of an object array), exactly as picklegate's format layer does."""

    def __init__(self, f, joblib: bool = False):
        self.f = f
        self.joblib = joblib
        self.uses: dict[str, int] = {}
        self.containers: set[str] = set()
        self.builds: set[str] = set()
        self.pids: list[_Val] = []
        self.problems: list[str] = []
        self._getattrs: list[_Val] = []
        self._rebuilders = _rebuilder_table()

    def _use(self, v, mode: int):
        n = v.named() if isinstance(v, _Val) else None
        if n is not None:
            self.uses[n] = widest(self.uses.get(n), mode)

    @staticmethod
    def _ref(*vals):
        for v in vals:
            if isinstance(v, _Val) and v.kind == "global":
                v.referenced = True

    def _pop_mark(self, stack):
        i = len(stack) - 1
        while stack[i] is not _MARK:
            i -= 1
        items = stack[i + 1:]
        del stack[i:]
        self._ref(*items)
        return items

    def _mutated(self, target: _Val, native: str, op: str):
        self._ref(target)
        if target.kind == native:
            return
        name = target.producer()
        if name is None:
            self.problems.append(f"{op} on {target.describe()}")
        else:
            self.containers.add(name)

    def _global(self, m: str, q: str) -> _Val:
        g = _Val("global", f"{m}.{q}")
        if g.val == GETATTR:
            self._getattrs.append(g)  # recorded at the end, unless every use is a resolved call
        else:
            self.uses.setdefault(g.val, REFERENCE)
        return g

    def _call(self, callee: _Val, args: _Val, op: str) -> _Val:
        """A REDUCE/NEWOBJ(_EX)/INST/OBJ call: raise the callee's use and, for REDUCE, those of copyreg's
        class arguments; REDUCE of getattr with literal operands is the dotted name instead."""
        self._ref(args)
        out = _Val("call", callee, args)
        mode = NEW if op.startswith("NEWOBJ") else CALL
        reduce = op == "REDUCE"
        items = args.val if args.kind == "tuple" else []
        if callee.kind == "global" and callee.val == GETATTR and reduce:
            name = self._getattr_name(items)
            if name is not None:
                callee.resolved_calls += 1
                out.name = name
                self.uses.setdefault(name, REFERENCE)
                return out
            callee.other_calls = True
        self._use(callee, mode)
        if callee.kind == "global" and reduce and items:
            if callee.val == "copyreg._reconstructor" and len(items) >= 2:
                self._use(items[0], NEW)
                if not (items[1].kind == "global" and items[1].val == "builtins.object"):
                    self._use(items[1], CALL)
            for item, m in zip(items, self._rebuilders.get(callee.val, ())):
                if m is not None:  # an argument the rebuilder calls or instantiates
                    self._use(item, m)
        return out

    @staticmethod
    def _getattr_name(items) -> str | None:
        """Mirror of uses.rs `resolve_getattr`."""
        if len(items) != 2:
            return None
        base, attr = items
        name = base.named()
        if name is None or not (attr.kind == "const" and isinstance(attr.val, str)):
            return None
        if not attr.val or "." in attr.val or len(attr.val) > 256:
            return None
        return f"{name}.{attr.val}"

    def _finish(self):
        for g in self._getattrs:
            if g.resolved_calls and not g.other_calls and not g.referenced:
                continue
            self.uses[GETATTR] = widest(self.uses.get(GETATTR), CALL if g.other_calls else REFERENCE)

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
            elif n in _CONSTS:
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
                self._ref(*items)
                stack.append(_Val("tuple", items))
            elif n == "APPEND":
                v = stack.pop()
                self._ref(v)
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
                self._ref(k, v)
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
                g = self._global(*_fix_imports(proto, m, q))
                if n == "INST":
                    stack.append(self._call(g, _Val("tuple", self._pop_mark(stack)), n))
                else:
                    stack.append(g)
            elif n == "REDUCE":
                args = stack.pop()
                stack.append(self._call(stack.pop(), args, n))
            elif n == "NEWOBJ":
                args = stack.pop()
                stack.append(self._call(stack.pop(), args, n))
            elif n == "NEWOBJ_EX":
                kwargs, args = stack.pop(), stack.pop()
                self._ref(kwargs)
                stack.append(self._call(stack.pop(), args, n))
            elif n == "OBJ":
                items = self._pop_mark(stack)
                stack.append(self._call(items[0], _Val("tuple", items[1:]), n))
            elif n == "BUILD":
                state = stack.pop()
                target = stack[-1]
                self._ref(state, target)
                name = target.producer()
                if name is None:
                    self.problems.append(f"BUILD on {target.describe()}")
                else:
                    self.builds.add(name)
                if self.joblib and name == JOBLIB_WRAPPER:
                    stack[-1] = self._joblib_array(state, pos)
            elif n in ("PERSID", "BINPERSID"):
                pid = _Val("const", arg) if n == "PERSID" else stack.pop()
                self._ref(pid)
                self.pids.append(pid)
                stack.append(_Val("pid", pid))
            elif n == "STOP":
                root = stack.pop()
                self._ref(root)
                self._finish()
                return root
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
            for g, m in nested.uses.items():
                self.uses[g] = widest(self.uses.get(g), m)
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


class StaticRecord:
    """What a set of labelled pickles needs, each read by StaticPickle: nothing it names is imported or
    called. A label is `sample@how` (how it was pickled: p2, torch.save, joblib, ...). With keep_files
    (--dump), the files themselves are kept too, to check them with the picklegate binary."""

    keep_files = False

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.uses: dict[str, dict[str, int]] = {}  # name -> label -> widest mode in that pickle
        self.containers: dict[str, set[str]] = {}
        self.builds: dict[str, set[str]] = {}
        self.problems: dict[str, list[str]] = {}
        self.pids: list[tuple[str, bool]] = []  # (label, is a torch storage id)

    def labels(self) -> set[str]:
        return {lb for by in self.uses.values() for lb in by}

    def add_pickle(self, data: bytes, label: str, joblib: bool = False, streams: int = 1, file: bytes | None = None):
        """Record the pickle(s) at the start of `data`; `file` is the whole file they came from."""
        if self.keep_files:
            self.files[label] = data if file is None else file
        f = io.BytesIO(data)
        for _ in range(streams):
            sp = StaticPickle(f, joblib=joblib)
            sp.run()
            self._add(sp, label)
        if streams == 1 and f.read(1):
            self.problems.setdefault(label, []).append("data after STOP")

    def _add(self, sp: StaticPickle, label: str):
        for g, m in sp.uses.items():
            by = self.uses.setdefault(g, {})
            by[label] = widest(by.get(label), m)
        for attr in ("containers", "builds"):
            for g in getattr(sp, attr):
                getattr(self, attr).setdefault(g, set()).add(label)
        if sp.problems:
            self.problems.setdefault(label, []).extend(sp.problems)
        self.pids += [(label, is_torch_storage_pid(p)) for p in sp.pids]

    def add_object(self, obj, label: str, protocols):
        for p in protocols:
            self.add_pickle(pickle.dumps(obj, protocol=p), f"{label}@p{p}")

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
        self.add_pickle(z.read(pkls[0]), label, file=data)

    def add_joblib(self, obj, label: str, path: str, protocols=(None, 2, 5)):
        import joblib

        for protocol in protocols:  # None: joblib's default
            joblib.dump(obj, path, protocol=protocol)
            with open(path, "rb") as f:
                self.add_pickle(f.read(), f"{label}@joblib{'' if protocol is None else f'-p{protocol}'}",
                                joblib=True)

    def to_json(self):
        return {"uses": self.uses, "containers": {k: sorted(v) for k, v in self.containers.items()},
                "builds": {k: sorted(v) for k, v in self.builds.items()}, "problems": self.problems}


def base_label(label: str) -> str:
    return label.split("@", 1)[0]


# --------------------------------------------------------------------------------------------------
# Policy mirror: what picklegate decides for one recorded pickle (src/check/mod.rs)
# --------------------------------------------------------------------------------------------------


class Policy:
    """A flattened policy: allow (name -> widest mode), containers, build, persistent_ids."""

    def __init__(self, allow: dict[str, int], containers=(), build: str = "instances",
                 persistent_ids: str = "none", format_globals=(JOBLIB_WRAPPER,)):
        self.allow = allow
        self.containers = set(containers)
        self.build = build
        self.persistent_ids = persistent_ids
        self.format_globals = set(format_globals)

    def allows(self, name: str, mode: int) -> bool:
        return name in self.format_globals or self.lists(name, mode)

    def lists(self, name: str, mode: int) -> bool:
        """An allow entry covers `name` in `mode` (format globals aside: presets still list those)."""
        return self.allow.get(name, -1) >= mode

    def problems(self, rec: StaticRecord, label: str) -> list[str]:
        """Every finding picklegate would report for the pickle `label` of `rec`."""
        out = list(rec.problems.get(label, []))
        for g, by in rec.uses.items():
            if label in by and not self.allows(g, by[label]):
                have = self.allow.get(g)
                out.append(f"{g} used in mode {MODE_NAMES[by[label]]}, allowed "
                           + ("not at all" if have is None else f"only as {MODE_NAMES[have]}"))
        for g, labels in rec.containers.items():
            if label in labels and not (g in self.containers and self.allows(g, REFERENCE)):
                out.append(f"a method call on a {g} object, which is not an allowed container")
        for g, labels in rec.builds.items():
            if label in labels and not (g in self.format_globals or (self.build == "instances" and self.allows(g, NEW))):
                out.append(f"BUILD on a {g} object, which is not allowed")
        for lb, torch_pid in rec.pids:
            ok = self.persistent_ids == "any" or (self.persistent_ids == "torch-storage" and torch_pid)
            if lb == label and not ok:
                out.append(f"a persistent id that persistent_ids: {self.persistent_ids} refuses")
        return out


PRESETS: dict[str, dict] = {}  # name -> generated preset, filled in dependency order by main()


def flatten(names) -> Policy:
    """The policy picklegate resolves for `extends: names` (widest mode wins, containers unite)."""
    allow, containers, pids = {}, set(), "none"
    order = {"none": 0, "torch-storage": 1, "any": 2}
    seen = set()

    def visit(n):
        nonlocal allow, pids
        if n in seen:
            return
        seen.add(n)
        p = PRESETS[n]
        for parent in p.get("extends") or []:
            visit(parent)
        allow = merge_allow(allow, p.get("allow") or {})
        containers.update(p.get("containers") or [])
        if order[p.get("persistent_ids") or "none"] > order[pids]:
            pids = p["persistent_ids"]

    for n in names:
        visit(n)
    return Policy(allow, containers, "instances", pids)


def verify(preset: str, policy: Policy, rec: StaticRecord, labels=None) -> None:
    """Die unless every pickle of `rec` (or of `labels`) passes `policy`."""
    bad = [f"  {lb}: {p}" for lb in sorted(labels if labels is not None else rec.labels())
           for p in policy.problems(rec, lb)]
    if bad:
        die(f"{preset}: recorded pickles that the preset could not let through:\n" + "\n".join(sorted(set(bad))))


def split_recorded(name: str, rec: StaticRecord, extends, persistent_ids: str = "none", assumed=None):
    """Decide what a recorded preset allows: every recorded name in the widest mode any pickle that is
    not refused uses it, unless the presets it extends already allow it in that mode. A pickle that uses a
    sink (in the mode it uses it) is refused as a whole; names that only such pickles need are dropped
    (allowing them would not let any recorded pickle through). `assumed` maps a sample label (before
    '@') to the names of other presets ([preset, ...]) that sample is documented to need as well.
    Every other pickle must then pass the preset (+ what it extends, + its assumed presets)."""
    assumed = assumed or {}
    inherited = flatten(extends)
    excluded: dict[str, str] = {}
    refused_labels: set[str] = set()
    for g, by in rec.uses.items():
        for lb, m in by.items():
            r = entry_sink_reason(g, m)
            if r:
                excluded[g] = r
                refused_labels.add(lb)
    assumed_policies = {b: flatten(ps) for b, ps in assumed.items()}
    allow, dropped = {}, {}
    for g, by in rec.uses.items():
        live = {lb: m for lb, m in by.items() if lb not in refused_labels}
        if not live:
            if g not in excluded:
                dropped[g] = set(by)
            continue
        for lb, m in live.items():
            extra = assumed_policies.get(base_label(lb))
            if not inherited.lists(g, m) and not (extra and extra.lists(g, m)):
                allow[g] = widest(allow.get(g), m)
    containers = {g for g, labels in rec.containers.items() if labels - refused_labels
                  and g not in inherited.containers and (g in allow or inherited.allows(g, REFERENCE))}
    own = Policy(merge_allow(inherited.allow, allow), inherited.containers | containers, "instances",
                 persistent_ids)
    live_labels = rec.labels() - refused_labels
    for b, extra in assumed_policies.items():
        with_extra = Policy(merge_allow(own.allow, extra.allow), own.containers | extra.containers, "instances",
                            persistent_ids)
        verify(name, with_extra, rec, {lb for lb in live_labels if base_label(lb) == b})
    verify(name, own, rec, {lb for lb in live_labels if base_label(lb) not in assumed_policies})
    refused = {g: sorted({base_label(lb) for lb, m in rec.uses[g].items() if entry_sink_reason(g, m)})
               for g in excluded}
    return {
        "allow": allow, "containers": containers, "excluded": excluded, "refused": refused,
        "refused_labels": refused_labels,
        "dropped": {g: sorted({base_label(lb) for lb in v}) for g, v in dropped.items()},
    }


def refusal_notes(split) -> list[str]:
    notes = []
    for g, samples in sorted(split["refused"].items()):
        notes.append(f"Refused: {g} ({split['excluded'][g]}).")
        notes.append(f"  Real pickles of {', '.join(samples)} use it so: such files are refused.")
    if split["dropped"]:
        notes.append("Recorded only in those refused pickles, so not allowed either: "
                     + ", ".join(sorted(split["dropped"])) + ".")
    return notes


def mode_counts(allow: dict[str, int]) -> str:
    c = [sum(1 for m in allow.values() if m == r) for r in range(3)]
    return ", ".join(f"{c[r]} {MODE_NAMES[r]}" for r in range(3) if c[r])


# --------------------------------------------------------------------------------------------------
# Name resolution and entry checks
# --------------------------------------------------------------------------------------------------


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


# Names that pickles written by other versions contain and that do not resolve here; each with the name
# that stands for it in the installed versions (checked to resolve and to be allowed in the same preset).
OTHER_VERSION_NAMES = {
    # Python 3.13 moved the path classes to pathlib._local (pickles name the concrete ones so)
    "pathlib._local.PosixPath": "pathlib.PosixPath", "pathlib._local.WindowsPath": "pathlib.WindowsPath",
    "pathlib._local.PurePosixPath": "pathlib.PurePosixPath", "pathlib._local.PureWindowsPath": "pathlib.PureWindowsPath",
}


def check_entries(preset: str, allow) -> None:
    """Die if a preset would allow a sink (in its mode) or a name that does not resolve."""
    bad = []
    for n in sorted(allow):
        mode = allow[n] if isinstance(allow, dict) else CALL
        r = entry_sink_reason(n, mode)
        if r:
            bad.append(f"  {n} (mode {MODE_NAMES[mode]}): sink ({r})")
            continue
        try:
            resolve(OTHER_VERSION_NAMES.get(n, n))
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


def qualified(obj) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"

# --------------------------------------------------------------------------------------------------
# Audit: how each allowed name restores, and a static scan of the Python code that reaches
# --------------------------------------------------------------------------------------------------

# Builtins whose use in restore code runs code or touches files.
FLAG_BUILTINS = {"exec", "eval", "compile", "__import__", "open", "breakpoint", "input"}
# Modules whose use in restore code imports, unpickles, runs programs, or touches files and sockets.
FLAG_MODULES = {"importlib", "pickle", "_pickle", "cloudpickle", "dill", "srsly", "marshal", "subprocess", "os",
                "posix", "posixpath", "ntpath", "socket", "shutil", "runpy", "pty"}
# Exact names in other modules that load other files or nested pickles.
FLAG_NAMES = {"numpy.load", "numpy.fromfile", "torch.load", "torch.serialization.load", "joblib.load",
              "joblib.Memory", "joblib.memory.Memory", "pandas.read_pickle"}
SCAN_DEPTH = 3  # calls followed from a restore method (self/cls methods, module functions)
# Uses of flagged modules that read no file, start nothing and run no code: constants and string functions.
PURE_USES = {"os.name", "os.sep", "os.altsep", "os.extsep", "os.pathsep", "os.linesep", "os.curdir", "os.pardir",
             "os.fspath", "os.fsencode", "os.fsdecode", "os.PathLike", "os.path.join", "os.path.basename",
             "os.path.dirname", "os.path.split", "os.path.splitext", "os.path.normpath", "os.path.normcase",
             "os.path.isabs", "os.path.sep", "posixpath.join", "posixpath.basename", "posixpath.dirname",
             "posixpath.split", "posixpath.splitext", "posixpath.normpath", "posixpath.normcase", "posixpath.isabs",
             "os.urandom", "os.getpid", "os.cpu_count", "os.environ", "os.SEEK_SET", "os.SEEK_CUR", "os.SEEK_END"}

# Flagged code reviewed by hand: (function qualname, what was flagged) -> why it does not make the name a sink.
AUDIT_REVIEWED: dict[tuple[str, str], str] = {}

# What C-level (C, Cython, Rust) restore code does, for the audit: read from its source or documentation.
# Keys are exact names or, ending in ".", a module prefix; the longest key wins.
C_NOTES: dict[str, str] = {
    "_codecs.encode": "encodes the str with the named codec (latin1 here); codecs are looked up in the encodings "
                      "package only",
    "array.": "builds an array of numbers from a typecode and items (_array_reconstructor checks the type is array)",
    "builtins.": "builds the value from its arguments",
    "collections.": "builds the container; its items come from the pickle (a defaultdict's factory is a name "
                    "checked on its own, called only by a later missing-key lookup)",
    "datetime.": "_datetime rebuilds the value from its packed bytes state; its tzinfo is a name checked on its own",
    "decimal.Decimal": "_decimal parses a numeric string",
    "functools.partial": "stores the callable and its arguments (and BUILD state); never calls the callable on load",
    "types.SimpleNamespace": "stores its keyword arguments (and BUILD state) as attributes",
    "time.struct_time": "a structseq built from a 9-11 tuple and a dict of its extra fields",
    "zoneinfo.ZoneInfo": "_zoneinfo: ZoneInfo(key) reads the IANA zone for key from TZPATH or the tzdata package; "
                         "keys that are absolute paths or climb out with '..' are refused",
    "zoneinfo.ZoneInfo._unpickle": "_zoneinfo: _unpickle(key, from_cache) is ZoneInfo(key) or ZoneInfo.no_cache(key): "
                                   "reads the IANA zone for key from TZPATH or tzdata (no path outside them)",
    "dateutil.tz.tz.": "datetime.tzinfo.__new__ and a __dict__ update (the singleton metaclass is only used when called)",
    "numpy.": "numpy's C core: builds scalars, dtypes and arrays from their bytes and shape (_reconstruct is "
              "ndarray.__new__(subtype, shape, dtype), then BUILD copies the data); ufuncs compute element-wise",
    "numpy.random.": "Cython: bit generators and SeedSequence restore their state from integers and arrays "
                     "(__pyx_unpickle_*: a layout checksum, then __new__ and the state tuple)",
    "pandas._libs.": "Cython: rebuilds time, interval, offset, sparse-index and block values from their fields "
                     "(__pyx_unpickle_*: a layout checksum, then __new__ and the state tuple)",
    "pandas.": "Cython base class (offsets, Period, Interval): __setstate__/__reduce__ arguments are the value's fields",
    "pyarrow.lib._restore_array": "Cython: rebuilds an Array from (type, length, null_count, offset, buffers, "
                                  "children, dictionary), wrapping the given buffers; no I/O",
    "pyarrow.lib.py_buffer": "Cython: wraps a bytes-like object as an arrow Buffer",
    "pyarrow.lib.type_for_alias": "Cython: the DataType named by a string alias ('int64', 'string', ...)",
    "pyarrow.lib.": "Cython: a DataType or Field factory, built from its parameters",
    "scipy.": "a Python class on a C base (dict for dok): __new__ of the base and a __dict__ update",
    "sklearn._loss._loss.": "Cython loss: rebuilt from its parameters",
    "sklearn.linear_model._sgd_fast.": "Cython loss: rebuilt from its parameters",
    "sklearn.metrics._dist_metrics.": "Cython: made by newObj (obj.__new__(obj)); __setstate__ restores p, the "
                                      "metric's arrays and parameters (PyFuncDistance's function is a name of its own)",
    "sklearn.metrics._dist_metrics.newObj": "Cython: returns obj.__new__(obj) for the class it is given",
    "sklearn.neighbors._ball_tree.newObj": "Cython: returns obj.__new__(obj) for the class it is given",
    "sklearn.neighbors._kd_tree.newObj": "Cython: returns obj.__new__(obj) for the class it is given",
    "sklearn.neighbors.": "Cython: __setstate__ restores the tree's arrays and its distance metric",
    "sklearn.tree._tree.Tree": "Cython: __setstate__ copies the node and value arrays after checking dtype and shape",
    "tokenizers.": "Rust (tokenizers): __setstate__ parses the JSON serialization of the object; no I/O",
    "torch.": "torch's C core: a shape, a device or a dtype built from literals",
}


def c_note(name: str) -> str | None:
    keys = [k for k in C_NOTES if name == k or (k.endswith(".") and name.startswith(k))]
    return C_NOTES[max(keys, key=len)] if keys else None


def _py_function(f):
    """The pure-Python function behind f (staticmethod/classmethod/functools.wraps), or None."""
    f = getattr(f, "__func__", f)
    try:
        f = inspect.unwrap(f)
    except ValueError:
        return None
    return f if inspect.isfunction(f) else None


@functools.lru_cache(maxsize=None)
def _fn_ast(code):
    """The ast of a function's source, or None (no source file)."""
    try:
        lines, _ = inspect.findsource(code)
        src = inspect.getblock(lines[code.co_firstlineno - 1:])
        return ast.parse(textwrap.dedent("".join(src)))
    except (OSError, TypeError, SyntaxError, IndexError):
        return None


def _dotted(node) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id] + parts[::-1]
    return None


def _module_name(obj) -> str | None:
    if inspect.ismodule(obj):
        return obj.__name__
    return None


def _flag_module(modname: str) -> bool:
    return modname.split(".", 1)[0] in FLAG_MODULES


def _owner_lookup(owner, attr: str, after=None):
    """attr on class `owner` (statically), optionally only in the MRO after class `after` (super())."""
    mro = owner.__mro__
    if after is not None and after in mro:
        mro = mro[mro.index(after) + 1:]
    for k in mro:
        if attr in vars(k):
            return vars(k)[attr]
    return None


def _defining_class(owner, fn):
    for k in getattr(owner, "__mro__", ()):
        for v in vars(k).values():
            if _py_function(v) is fn:
                return k
    return None


class Scan:
    """Findings of the static scan of one name's restore code."""

    def __init__(self):
        self.flags: list[tuple[str, str, str]] = []  # (call path, qualname of the function, what)
        self.functions: set[str] = set()  # qualnames scanned
        self.no_source: set[str] = set()


_ENV_WRITES = {"update", "setdefault", "pop", "popitem", "clear", "__setitem__", "__delitem__"}


def _resolved_chain(node, g) -> str | None:
    """`os.path.join` for an attribute chain whose root name is a module in the function's globals."""
    parts = _dotted(node)
    if not parts or parts[0] not in g:
        return None
    modname = _module_name(g[parts[0]])
    return ".".join([modname] + parts[1:]) if modname else None


def flagged_uses(fn, tree) -> list[str]:
    """What a function's code uses of FLAG_BUILTINS, FLAG_MODULES and FLAG_NAMES, minus PURE_USES. Reading
    os.environ is pure, writing it is not. Local names shadow builtins."""
    g = fn.__globals__
    builtins_ns = g.get("__builtins__", {})
    builtins_ns = builtins_ns if isinstance(builtins_ns, dict) else vars(builtins_ns)
    local = set(fn.__code__.co_varnames) | set(fn.__code__.co_cellvars) | set(fn.__code__.co_freevars)
    local |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    local |= {n.arg for n in ast.walk(tree) if isinstance(n, ast.arg)}  # nested functions' names too
    parent = {c: n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            out += [f"imports {m}" for m in mods if _flag_module(m)]
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id not in local:
            obj = g.get(node.id, builtins_ns.get(node.id))
            if node.id in FLAG_BUILTINS and node.id not in g and obj is not None:
                out.append(f"builtins.{node.id}")
            elif obj is not None and not inspect.ismodule(obj) and callable(obj):
                full = f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', node.id)}"
                if _flag_module(full) or full in FLAG_NAMES:
                    out.append(full)
        elif isinstance(node, ast.Attribute) and not isinstance(parent.get(node), ast.Attribute):
            full = _resolved_chain(node, g)
            if full is None:
                continue
            if full == "os.environ" or full.startswith("os.environ."):
                p = parent.get(node)
                write = (isinstance(p, ast.Subscript) and not isinstance(p.ctx, ast.Load)) or (
                    full.split(".")[-1] in _ENV_WRITES) or (isinstance(p, ast.Assign) and node in p.targets)
                if write:
                    out.append("os.environ (written)")
            elif _flag_module(full) or any(full == n or full.startswith(n + ".") for n in FLAG_NAMES):
                out.append(full)
    return [u for u in out if u not in PURE_USES]


def scan_function(fn, owner, scan: Scan, depth: int = 0, path: str = "") -> None:
    """Scan a Python function's ast for FLAG_* uses; follow self/cls/super() methods and module-level
    functions and classes it calls, SCAN_DEPTH calls deep."""
    q = f"{fn.__module__}.{fn.__qualname__}"
    here = f"{path} → {fn.__qualname__}" if path else q
    if q in scan.functions:
        return
    scan.functions.add(q)
    tree = _fn_ast(fn.__code__)
    if tree is None:
        scan.no_source.add(q)
        return
    scan.flags += [(here, q, what) for what in flagged_uses(fn, tree)]
    if depth >= SCAN_DEPTH:
        return
    g = fn.__globals__
    defining = _defining_class(owner, fn) if owner is not None else None
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        target, town = None, None
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id in ("self", "cls") \
                and owner is not None:
            target, town = _owner_lookup(owner, func.attr), owner
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call) \
                and isinstance(func.value.func, ast.Name) and func.value.func.id == "super" and owner is not None:
            target, town = _owner_lookup(owner, func.attr, after=defining), owner
        elif isinstance(func, ast.Name) and func.id in g:
            target = g[func.id]
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) \
                and inspect.ismodule(g.get(func.value.id)):
            target = getattr(g[func.value.id], func.attr, None)
        if inspect.isclass(target):
            for m in ("__new__", "__init__", "__post_init__"):
                f = _py_function(_owner_lookup(target, m))
                if f is not None:
                    scan_function(f, target, scan, depth + 1, here)
            continue
        f = _py_function(target)
        if f is not None:
            scan_function(f, town, scan, depth + 1, here)


# C-level rebuilders that instantiate or call an argument (read from their Cython/C source).
C_ARGUMENT_CALLS = {
    "sklearn.metrics._dist_metrics.newObj": ["obj.__new__(obj)"],
    "sklearn.neighbors._ball_tree.newObj": ["obj.__new__(obj)"],
    "sklearn.neighbors._kd_tree.newObj": ["obj.__new__(obj)"],
}
def argument_calls(fn) -> list[str]:
    """How a rebuilder function runs one of its parameters (or a local bound to one): calls it
    (`func(*args)`, `bit_gen_class()`), instantiates it (`cls.__new__(cls, **d)`, `cls._simple_new(...)`,
    `cls.from_arrays(**d)`), or hands it to a constructor (`X.__new__(p, ...)`,
    `Tensor._make_wrapper_subclass(cls, ...)`): a name the pickle passes there as a mere reference is then
    run. (Other method calls on a parameter, `data.to(...)`, are duck typing on the values a pickle
    builds; a class passed there has its function of that name called unbound, which the audit of
    every allowed name covers.)"""
    tree = _fn_ast(fn.__code__)
    if tree is None:
        return []
    try:
        aliases = set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return []
    for _ in range(3):  # `x = param` (and chains of those) makes x the parameter too
        aliases |= {t.id for n in ast.walk(tree) if isinstance(n, ast.Assign) and isinstance(n.value, ast.Name)
                    and n.value.id in aliases for t in n.targets if isinstance(t, ast.Name)}
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in aliases:
            out.append(f"calls {f.id}(...)")
        elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in aliases \
                and (f.attr in ("__new__", "__call__", "__init__") or f.attr.startswith(("_simple_new", "from_"))):
            out.append(f"calls {f.value.id}.{f.attr}(...)")  # instantiates the class it is given
        elif isinstance(f, ast.Attribute) and (f.attr == "__new__" or "make_wrapper_subclass" in f.attr) \
                and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in aliases:
            out.append(f"passes {node.args[0].id} to {f.attr}(...)")
    return sorted(set(out))


def _describe_callable(label: str, f, owner) -> tuple[str, object]:
    """('`Def.meth` (Python)' | '... (C)', the Python function or None)."""
    py = _py_function(f)
    where = _defining_class(owner, py) if (py is not None and owner is not None) else None
    if where is not None and where is owner:
        return "its own (Python)", py  # (names that define their own method group together)
    name = f"{where.__qualname__}.{label}" if where is not None else (
        py.__qualname__ if py is not None else getattr(f, "__qualname__", label))
    return (f"`{name}` (Python)" if py is not None else f"`{name}` (C)"), py


def _c_owner(owner, attr: str) -> str:
    for k in owner.__mro__:
        if attr in vars(k):
            return f"{k.__module__}.{k.__qualname__}"
    return "object"


def restore_steps(obj, mode: int):
    """How a pickle restores `obj` in `mode`: [(step text, python function or None, owner)]."""
    if mode == REFERENCE:
        return []
    if not inspect.isclass(obj):
        text, py = _describe_callable("__call__", obj, None)
        return [(f"called: {text}", py, None)]
    steps = []
    if mode == CALL:
        meta_call = type(obj).__call__
        if meta_call is not type.__call__:
            text, py = _describe_callable("__call__", _owner_lookup(type(obj), "__call__"), type(obj))
            steps.append((f"metaclass {text}", py, type(obj)))
    new = _owner_lookup(obj, "__new__")
    if new is not None and new is not object.__new__ and _c_owner(obj, "__new__") != "builtins.object":
        text, py = _describe_callable("__new__", new, obj)
        steps.append((f"__new__ {text}" if py else f"__new__ of {_c_owner(obj, '__new__')} (C)", py, obj))
    else:
        steps.append(("object.__new__", None, obj))
    if mode == CALL:
        for m in ("__init__", "__post_init__"):
            f = _owner_lookup(obj, m)
            if f is None or f is object.__init__ or (m == "__init__" and _c_owner(obj, m) == "builtins.object"):
                continue
            text, py = _describe_callable(m, f, obj)
            steps.append((f"{m} {text}" if py else f"{m} of {_c_owner(obj, m)} (C)", py, obj))
    setstate = _owner_lookup(obj, "__setstate__")
    if setstate is not None:
        text, py = _describe_callable("__setstate__", setstate, obj)
        steps.append((f"BUILD: __setstate__ {text}" if py else f"BUILD: __setstate__ of {_c_owner(obj, '__setstate__')} (C)",
                      py, obj))
        return steps
    steps.append(("BUILD: __dict__ update", None, obj))
    setattr_ = _owner_lookup(obj, "__setattr__")
    if setattr_ is not None and setattr_ is not object.__setattr__ and _c_owner(obj, "__setattr__") != "builtins.object":
        text, py = _describe_callable("__setattr__", setattr_, obj)
        steps.append((f"slot state: __setattr__ {text}", py, obj))
    for k in obj.__mro__:
        setters = [_py_function(v.fset) for v in vars(k).values()
                   if isinstance(v, property) and v.fset is not None and _py_function(v.fset) is not None]
        whose = "its own" if k is obj else f"those of `{k.__qualname__}`"
        steps += [(f"slot state: property setters, {whose} (Python)", f, obj) for f in setters]
    return steps


def _generic(steps) -> bool:
    """Only object.__new__ and a __dict__ update: no code of the class itself runs."""
    return all(py is None and "(C)" not in text for text, py, _ in steps)


def _scan_summary(scan: Scan, steps, note) -> str:
    if _generic(steps):
        return "object.__new__ and a __dict__ update only, no code of its own runs"
    python_steps = [s for s, py, _ in steps if py is not None]
    c_steps = [s for s, py, _ in steps if py is None and "(C)" in s]
    if not python_steps:
        return "C implementation: " + (note or "no Python source to scan")
    out = "Python code scanned, nothing flagged"
    reviewed = sorted({AUDIT_REVIEWED[(q, what)] for _, q, what in scan.flags if (q, what) in AUDIT_REVIEWED})
    if reviewed:
        out += " after review (" + "; ".join(reviewed) + ")"
    if c_steps:
        out += "; C parts: " + (note or "not scanned")
    if scan.no_source:
        out += f"; no source for {', '.join(sorted(scan.no_source))}"
    return out


def audit_entry(name: str, mode: int) -> dict:
    """How `name` restores in `mode`, what that code does, and how it calls its arguments. A reference is
    never run by the pickle itself, but a rebuilder that calls or instantiates an argument may run it, so
    the path it would take when called is scanned as well."""
    obj = resolve(OTHER_VERSION_NAMES.get(name, name))
    steps = restore_steps(obj, mode)
    scanned = steps if mode != REFERENCE else (restore_steps(obj, CALL) if callable(obj) else [])
    scan = Scan()
    for _, py, owner in scanned:
        if py is not None:
            scan_function(py, owner, scan)
    flags = [(where, what) for where, q, what in scan.flags if (q, what) not in AUDIT_REVIEWED]
    note = c_note(name)
    inert = sinks()[2].get(name)
    if inert is not None and mode <= inert and inert < CALL:
        # a carve-out below call: inert as the preset allows it, a sink when called (see `hazards`)
        verdict = (f"ok: inert carve-out of sinks.yaml up to mode {MODE_NAMES[inert]} ({inert_reason(name)}); "
                   "called, it is a sink" + (": " + "; ".join(f"{w}: {x}" for w, x in flags) if flags else ""))
        flags = []
    elif flags:
        verdict = "SINK: " + "; ".join(f"{w}: {x}" for w, x in flags)
    elif mode == REFERENCE:
        verdict = "ok: not run by the pickle" + (f"; if a rebuilder calls it: {_scan_summary(scan, scanned, note)}"
                                                 if scanned else " (not callable)")
    else:
        verdict = ("ok: " if not _scan_summary(scan, steps, note).startswith("C implementation") else "") \
            + _scan_summary(scan, steps, note)
    restore = "; ".join(dict.fromkeys(s for s, _, _ in steps)) if steps else \
        "reference: looked up, never called or instantiated"
    arg_calls = []
    if mode == CALL and not inspect.isclass(obj):
        py = _py_function(obj)
        arg_calls = argument_calls(py) if py is not None else C_ARGUMENT_CALLS.get(name, [])
    return {"name": name, "mode": MODE_NAMES[mode], "restore": restore, "verdict": verdict, "flags": flags,
            "arg_calls": arg_calls}


def audit_preset(p) -> list[dict]:
    rows = [audit_entry(n, m) for n, m in sorted(p["allow"].items())]
    sinks_found = [r for r in rows if r["verdict"].startswith("SINK")]
    if sinks_found:
        die(f"audit of preset {p['name']}: restore code that runs code or touches files; add each name to "
            "policies/sinks.yaml `names:` (with a `does:` entry) or review it in AUDIT_REVIEWED:\n"
            + "\n".join(f"  {r['name']} ({r['mode']}): {r['verdict']}" for r in sinks_found))
    return rows

# --------------------------------------------------------------------------------------------------
# python-data
# --------------------------------------------------------------------------------------------------

# Hand-audited stdlib names that rebuild data (their modes come from the recorded pickles).
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
    # themselves be allowed (picklegate checks the class argument in mode new, a base other than object
    # in mode call)
    "copyreg._reconstructor", "copyreg.__newobj__", "copyreg.__newobj_ex__",
    "collections.OrderedDict", "collections.deque", "collections.defaultdict", "collections.Counter",
    "datetime.date", "datetime.datetime", "datetime.time", "datetime.timedelta", "datetime.timezone",
    "decimal.Decimal", "fractions.Fraction", "uuid.UUID",
    # training-script and checkpoint values
    "argparse.Namespace", "types.SimpleNamespace", "re._compile", "random.Random", "array.array",
    "array._array_reconstructor", "time.struct_time",
    "ipaddress.IPv4Address", "ipaddress.IPv6Address", "ipaddress.IPv4Network", "ipaddress.IPv6Network",
    "ipaddress.IPv4Interface", "ipaddress.IPv6Interface",
    # zoneinfo pickles getattr(ZoneInfo, '_unpickle')(key, from_cache)
    "zoneinfo.ZoneInfo", "zoneinfo.ZoneInfo._unpickle",
    # str methods stored as values (CountVectorizer(tokenizer=str.split)) pickle as getattr(str, 'split')
    *(f"builtins.str.{m}" for m in dir(str) if not m.startswith("_") and m not in ("format", "format_map")),
    # the concrete path classes pickles name (pathlib.Path() and PurePath() make these)
    "pathlib.PosixPath", "pathlib.PurePosixPath", "pathlib.PureWindowsPath",
]
# Names that cannot be pickled here but that real files contain: (mode, why). The mode is that of the
# recorded name they stand for.
PYTHON_DATA_UNRECORDED = {
    "pathlib.WindowsPath": ("pathlib.PosixPath", "written on Windows (cannot be instantiated on POSIX)"),
    "pathlib._local.PosixPath": ("pathlib.PosixPath", "written by Python >= 3.13"),
    "pathlib._local.WindowsPath": ("pathlib.PosixPath", "written by Python >= 3.13 on Windows"),
    "pathlib._local.PurePosixPath": ("pathlib.PurePosixPath", "written by Python >= 3.13"),
    "pathlib._local.PureWindowsPath": ("pathlib.PureWindowsPath", "written by Python >= 3.13"),
}
PYTHON_DATA_CONTAINERS = [
    "builtins.dict", "builtins.list", "builtins.set",
    "collections.Counter", "collections.OrderedDict", "collections.defaultdict", "collections.deque",
]


def python_data_objects():
    import argparse
    import array
    import collections
    import datetime
    import decimal
    import fractions
    import ipaddress
    import pathlib
    import random
    import time
    import types
    import uuid
    import zoneinfo

    tz = datetime.timezone(datetime.timedelta(hours=2), "X")
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    rng = random.Random(0)
    rng.random()
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
        "datetime-zoneinfo": datetime.datetime(2020, 1, 2, tzinfo=berlin),
        "ZoneInfo": berlin, "ZoneInfo-no_cache": zoneinfo.ZoneInfo.no_cache("America/New_York"),
        "time": datetime.time(1, 2, 3, tzinfo=tz),
        "timedelta": datetime.timedelta(days=3, seconds=5),
        "Decimal": decimal.Decimal("1.25"), "Decimal-nan": decimal.Decimal("NaN"),
        "Fraction": fractions.Fraction(1, 3),
        "UUID": uuid.UUID(int=5), "UUID-safe": uuid.UUID(int=5, is_safe=uuid.SafeUUID.safe),
        "argparse.Namespace": argparse.Namespace(lr=0.1, layers=[1, 2], name="x", sub=argparse.Namespace(a=None)),
        "SimpleNamespace": types.SimpleNamespace(a=1, b=[2]),
        "re.Pattern": [re.compile(r"a+\d", re.I | re.M), re.compile(rb"x*"), re.compile("", re.ASCII)],
        "random.Random": rng,
        "array.array": [array.array(c, [1, 2]) for c in "bBhHiIlLqQfd"] + [array.array("u", "ab")],
        "time.struct_time": [time.gmtime(0), time.localtime(0)],
        "ipaddress": [ipaddress.ip_address("192.0.2.1"), ipaddress.ip_address("2001:db8::1"),
                      ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("2001:db8::/32"),
                      ipaddress.ip_interface("192.0.2.1/24"), ipaddress.ip_interface("2001:db8::1/64")],
        "str methods": [getattr(str, m) for m in dir(str) if not m.startswith("_") and m not in ("format", "format_map")],
        "pathlib": [pathlib.Path("/data/run1"), pathlib.Path("rel/x.txt"), pathlib.PosixPath("/a"),
                    pathlib.PurePath("a/b"), pathlib.PurePosixPath("/p"), pathlib.PureWindowsPath("c:/w/x")],
    }


class _NewobjPickler(pickle.Pickler):
    """Emits copyreg.__newobj__ / __newobj_ex__ as explicit globals (what a protocol 0/1 writer, or any
    pickler that calls __reduce_ex__(2+) itself, produces) to verify they rebuild data: an
    argparse.Namespace (new + BUILD) and a set (called with its items)."""

    def __init__(self, f, protocol, kind):
        super().__init__(f, protocol=protocol)
        self.kind = kind

    def reducer_override(self, obj):
        import argparse
        import copyreg

        if type(obj) in (argparse.Namespace, set):
            args = (list(obj),) if type(obj) is set else ()
            state = None if type(obj) is set else vars(obj)
            if self.kind == "newobj":
                return copyreg.__newobj__, (type(obj),) + args, state
            return copyreg.__newobj_ex__, (type(obj), args, {}), state
        return NotImplemented


def gen_python_data(log):
    import argparse

    rec = StaticRecord()
    for label, obj in python_data_objects().items():
        rec.add_object(obj, label, range(0, pickle.HIGHEST_PROTOCOL + 1))
    sample = argparse.Namespace(a=1)
    for kind in ("newobj", "newobj_ex"):
        for p in (0, 1):
            f = io.BytesIO()
            _NewobjPickler(f, p, kind).dump([sample, {1, 2}])
            rec.add_pickle(f.getvalue(), f"copyreg-{kind}@p{p}")
            assert pickle.loads(f.getvalue()) == [sample, {1, 2}]
    listed = set(PYTHON_DATA_ALLOW)
    missing = sorted(set(rec.uses) - listed)
    if missing:
        die("python-data: representative pickles use names not in PYTHON_DATA_ALLOW: "
            + ", ".join(f"{g} (from {sorted(rec.uses[g])[0]})" for g in missing))
    allow = {g: max(by.values()) for g, by in rec.uses.items()}
    unused = sorted(listed - set(allow))
    if unused:
        die(f"python-data: listed but not recorded (add a sample or move to PYTHON_DATA_UNRECORDED): {unused}")
    for n, (like, _why) in PYTHON_DATA_UNRECORDED.items():
        allow[n] = allow[like]
    check_entries("python-data", allow)
    p = {
        "name": "python-data",
        "header": [f"Generated by tools/gen_policies.py on Python {PY} — do not edit by hand."],
        "notes": [
            "Hand-audited stdlib names that only build data, each allowed in the narrowest mode that covers",
            "every use recorded while pickling representative objects at protocols 0-5 (read statically):",
            "collections, datetime (with zoneinfo and fixed-offset time zones), decimal, fractions, uuid,",
            "argparse.Namespace and types.SimpleNamespace (training-script arguments), compiled patterns",
            "(re._compile), random.Random and its state, array.array, time.struct_time, ipaddress addresses/",
            "networks/interfaces, pathlib paths, the methods of str as values (tokenizer=str.split). zoneinfo.ZoneInfo",
            "and str methods pickle as getattr(ZoneInfo, '_unpickle') and getattr(str, 'split'): picklegate checks",
            "them as the names zoneinfo.ZoneInfo._unpickle and builtins.str.split (builtins.getattr stays a sink).",
            "str.format and str.format_map are left out: a format string walks the attributes of its arguments.",
            "pathlib and types are sink modules: their path classes and SimpleNamespace are inert carve-outs",
            "of sinks.yaml. operator, functools (but for functools.partial), getattr are sinks.",
            "An object made by an explicit copyreg.__newobj__ may receive BUILD, but not SETITEM(S)/APPEND(S):",
            "picklegate names such objects by copyreg.__newobj__, which is not a container here (it would make",
            "every class allowed in mode new a container).",
            "Allowed without a recorded pickle (the mode of the name they stand for):",
        ] + [f"  {n}: {why} (as {like})" for n, (like, why) in sorted(PYTHON_DATA_UNRECORDED.items())],
        "description": "Python builtins and stdlib data types (sets, bytes, complex, collections, datetime, zoneinfo, "
                       "decimal, fractions, uuid, argparse.Namespace, SimpleNamespace, re patterns, random.Random, "
                       "array, struct_time, ipaddress, pathlib paths) and the copyreg helpers that rebuild plain "
                       "objects.",
        "extends": [],
        "allow": allow,
        "containers": sorted(PYTHON_DATA_CONTAINERS),
        "persistent_ids": "none",
    }
    PRESETS["python-data"] = p
    verify("python-data", flatten(["python-data"]), rec)
    log(f"python-data: {len(allow)} names ({mode_counts(allow)}); {len(rec.labels())} pickles verified")
    p["record"] = rec
    return p


# --------------------------------------------------------------------------------------------------
# numpy
# --------------------------------------------------------------------------------------------------

# Names recorded by `probe_numpy()` under numpy==1.26.4 (Python 3.11), minus python-data entries: the
# numpy 1.x module paths (numpy.core.*, numpy.bool_, numpy.ma.core.MaskedArray) that pickles written with
# numpy 1.x contain. Each is allowed in the mode numpy 2 uses its counterpart (the same name, or the
# numpy._core / numpy.bool name). Re-verify with --numpy1-python PATH (an interpreter with numpy 1.x).
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
NUMPY1_COUNTERPART = {"numpy.bool_": "numpy.bool", "numpy.ma.core.MaskedArray": "numpy.ma.MaskedArray"}


def numpy2_counterpart(n: str) -> str:
    return NUMPY1_COUNTERPART.get(n, n.replace("numpy.core.", "numpy._core."))


def numpy_ufuncs():
    """Every ufunc of the numpy namespace, once (aliases such as np.abs pickle by their __name__)."""
    import numpy as np

    out = {}
    for n in dir(np):
        f = getattr(np, n)
        if isinstance(f, np.ufunc):
            out[f.__name__] = f
    return out


def probe_numpy() -> StaticRecord:
    """Pickle numpy arrays, dtypes, scalars, RNG objects, ufuncs, record arrays, polynomials and memmap
    arrays; runs under numpy 1.x and 2.x."""
    import tempfile

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
    rec_arr = np.rec.array([(1, 2.0, b"x")], dtype=[("a", "i4"), ("b", "f8"), ("c", "S1")])
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
        "recarray": rec_arr, "record": rec_arr[0],
        "chararray": np.char.array(["ab", "c"]),
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
    for name in ("Polynomial", "Chebyshev", "Legendre", "Laguerre", "Hermite", "HermiteE"):
        objs[f"polynomial {name}"] = getattr(np.polynomial, name)([1.0, 2.0, 3.0], domain=[0, 2])
    objs["ufuncs"] = sorted(numpy_ufuncs().items())
    rec = StaticRecord()
    with tempfile.TemporaryDirectory() as tmp:
        # pickle writes a memmap as _reconstruct(numpy.memmap, ...) + BUILD: the subtype is a reference
        objs["memmap"] = np.memmap(os.path.join(tmp, "mm.dat"), dtype="f4", mode="w+", shape=(2, 3))
        for label, obj in objs.items():
            rec.add_object(obj, label, range(0, pickle.HIGHEST_PROTOCOL + 1))
        del objs  # close the memmap before the directory goes
    return rec


def gen_numpy(log, numpy1_python):
    import numpy as np

    rec = probe_numpy()
    own = {g: max(by.values()) for g, by in rec.uses.items()}
    inherited = flatten(["python-data"])
    recorded = {g: m for g, m in own.items() if not inherited.allows(g, m)}
    if numpy1_python:
        env = dict(os.environ, PG_REBUILDERS=json.dumps(rebuilders()))  # the child may lack PyYAML
        out = subprocess.run([numpy1_python, os.path.abspath(__file__), "--probe", "numpy"],
                             check=True, capture_output=True, text=True, env=env).stdout
        got = json.loads(out)
        np1 = {g for g, by in got["record"]["uses"].items() if not inherited.allows(g, max(by.values()))}
        if np1 != set(NUMPY1_RECORDED) | (np1 & set(recorded)) or not set(NUMPY1_RECORDED) <= np1:
            die(f"numpy {got['version']} records a different set than NUMPY1_RECORDED:\n"
                f"  new: {sorted(np1 - set(NUMPY1_RECORDED) - set(recorded))}\n"
                f"  gone: {sorted(set(NUMPY1_RECORDED) - np1)}")
        log(f"numpy: NUMPY1_RECORDED re-verified with numpy {got['version']}")
    allow = dict(recorded)
    for n in NUMPY1_RECORDED:
        like = numpy2_counterpart(n)
        if like not in own:
            die(f"numpy: the numpy 2 counterpart {like} of the numpy 1.x name {n} is not recorded")
        allow[n] = widest(allow.get(n), own[like])
    check_entries("numpy", allow)
    ufuncs = {f"numpy.{n}" for n in numpy_ufuncs()}
    if not ufuncs <= set(allow):
        die(f"numpy: ufuncs not recorded under their numpy name: {sorted(ufuncs - set(allow))}")
    p = {
        "name": "numpy",
        "header": [f"Generated by tools/gen_policies.py from numpy=={version('numpy')} (plus numpy 1.x module "
                   f"paths recorded from numpy==1.26.4) on Python {PY} — do not edit by hand."],
        "notes": [
            "Every name recorded (statically) while pickling, at protocols 0-5, arrays of every builtin dtype",
            "(0-d, structured, object, datetime64/timedelta64, Fortran-order, non-contiguous), masked arrays,",
            "matrices, record arrays and records, char arrays, memmap arrays, scalars, dtypes, DType classes,",
            f"scalar types, Generator/RandomState/bit generators/SeedSequence, np.random.get_state(), every ufunc",
            f"of the numpy namespace ({len(ufuncs)}, pickled by name: references, never called by a pickle) and the",
            "numpy.polynomial classes; plus the same names as numpy 1.x writes them (numpy.core.*, numpy.bool_,",
            "numpy.ma.core.*), in the mode numpy 2 uses their counterparts.",
            "numpy.memmap (the subtype of a pickled memmap array) is allowed as a reference only (an inert carve-out",
            "of sinks.yaml): a pickle that calls it, or hands it to a rebuilder that calls or instantiates that",
            "argument (sinks.yaml `rebuilders:`, e.g. numpy's own __generator_ctor), is refused.",
            "numpy.core._ufunc_reconstruct (how numpy < 1.20 pickled ufuncs) imports any module by name: a sink.",
        ],
        "description": "NumPy arrays, dtypes, scalars, masked/record/char arrays, memmap arrays (as plain arrays), "
                       "ufuncs, polynomials and random generator states (numpy 1.x and 2.x module paths).",
        "extends": ["python-data"],
        "allow": allow,
        "containers": [],
        "persistent_ids": "none",
    }
    PRESETS["numpy"] = p
    verify("numpy", flatten(["numpy"]), rec)
    log(f"numpy: {len(recorded)} names recorded with numpy {np.__version__} ({mode_counts(recorded)}), "
        f"{len(set(allow) - set(recorded))} added from numpy 1.x paths")
    p["record"] = rec
    return p

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
        **{str(t): torch.zeros(2, dtype=t) for t in (
            torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int8, torch.uint8, torch.int16,
            torch.int32, torch.int64, torch.bool, torch.complex64, torch.complex128, torch.float8_e4m3fn,
            torch.float8_e5m2, torch.uint16, torch.uint32, torch.uint64)},
        "size": torch.Size([2, 3]), "device": torch.device("cpu"), "dtype": torch.float32,
        "dtypes": [getattr(torch, n) for n in dir(torch) if isinstance(getattr(torch, n), torch.dtype)],
        "qschemes": [torch.per_tensor_affine, torch.per_tensor_symmetric, torch.per_channel_affine,
                     torch.per_channel_symmetric, torch.per_channel_affine_float_qparams],
        "meta": torch.empty(2, 3, device="meta"),
        "storage": torch.zeros(3).untyped_storage(), "typed storage": torch.zeros(3, dtype=torch.int32).storage(),
    }
    samples["quantized"] = {
        "per_tensor": torch.quantize_per_tensor(torch.rand(4), 0.1, 0, torch.quint8),
        "per_channel": torch.quantize_per_channel(torch.rand(2, 3), torch.tensor([0.1, 0.2]),
                                                  torch.tensor([0, 0]), 0, torch.qint8),
        "qint32": torch.quantize_per_tensor(torch.rand(4), 0.1, 0, torch.qint32),
    }
    t = torch.zeros(2)
    t.note = "tensor with attributes"  # rebuilt through _rebuild_from_type_v2 + BUILD
    samples["Parameter"] = {"p": torch.nn.Parameter(torch.zeros(2)), "frozen": torch.nn.Parameter(torch.zeros(2), False),
                            "tensor with attribute": t}
    for name, make in (("Adam", lambda p: torch.optim.Adam(p)), ("AdamW", lambda p: torch.optim.AdamW(p)),
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
    samples["sparse"] = {"coo": torch.eye(3).to_sparse(), "csr": torch.eye(3).to_sparse_csr(),
                         "csc": torch.eye(3).to_sparse_csc(), "bsr": torch.eye(4).to_sparse_bsr((2, 2))}
    samples["nested"] = {"views": [torch.arange(6.0)[::2], torch.arange(6.0).reshape(2, 3).t()],
                         "empty": torch.empty(0), "scalar": torch.tensor(1.5)}
    return samples


# Samples whose names are allowed only together with the numpy preset.
TORCH_NEEDS_NUMPY = {"checkpoint+rng"}


def record_torch(rec: StaticRecord, samples) -> None:
    import zipfile

    import torch

    for label, obj in samples.items():
        for fmt in ("zip", "legacy"):
            buf = io.BytesIO()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.save(obj, buf, _use_new_zipfile_serialization=(fmt == "zip"))
            data = buf.getvalue()
            if fmt == "zip":
                z = zipfile.ZipFile(io.BytesIO(data))
                for n in z.namelist():
                    if n.endswith(".pkl"):
                        rec.add_pickle(z.read(n), f"{label}@torch.save-zip", file=data)
            else:
                rec.add_pickle(data, f"{label}@torch.save-legacy", streams=5)
            if fmt == "zip" and label not in TORCH_NEEDS_NUMPY:  # torch itself accepts these files
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.load(io.BytesIO(data), weights_only=True)


def torch_unrecorded_mode(obj) -> tuple[int, str]:
    """The mode of a name of torch's list that no sample pickles: what torch's own loader does with it."""
    import torch

    if not callable(obj) or isinstance(obj, (torch.dtype, torch.qscheme, torch.layout)):
        return REFERENCE, "not callable"
    if isinstance(obj, torch.serialization.StorageType) or (inspect.isclass(obj) and "Storage" in obj.__name__):
        return REFERENCE, "a storage class: only named in persistent ids (torch's loader never calls it)"
    if inspect.isclass(obj) and "Tensor" in obj.__name__:
        return REFERENCE, "a legacy tensor type: only passed as a type (torch's loader never instantiates it)"
    return CALL, "a rebuild function: called with the pickle's arguments, as torch's loader allows"


def gen_torch(log):
    from torch._weights_only_unpickler import _get_allowed_globals

    baseline = dict(_get_allowed_globals())
    numpy_entries = sorted(n for n in baseline if n.split(".", 1)[0] == "numpy")
    rec = StaticRecord()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        record_torch(rec, torch_samples())
    recorded = {g: max(by.values()) for g, by in rec.uses.items()}
    outside = sorted(g for g in recorded if g not in baseline and not flatten(["numpy"]).allows(g, recorded[g]))
    if outside:
        die(f"torch: torch.save pickles names outside torch's own list and the numpy preset: {outside}")
    inherited = flatten(["python-data"])
    allow, unrecorded = {}, {}
    for n, obj in baseline.items():
        if n in numpy_entries:
            continue
        if n in recorded:
            m = recorded[n]
        else:
            m, why = torch_unrecorded_mode(obj)
            unrecorded.setdefault(why, []).append(n)
        if not inherited.allows(n, m):
            allow[n] = m
    excluded = {n: entry_sink_reason(n, m) for n, m in allow.items() if entry_sink_reason(n, m)}
    for n in excluded:
        del allow[n]
    check_entries("torch", allow)
    notes = [
        "torch's own weights_only allow-list (torch._weights_only_unpickler._get_allowed_globals()), minus",
        "numpy entries (see numpy.yaml) and entries sinks.yaml calls sinks, each in the narrowest mode that covers",
        "its recorded uses in torch.save (zip and legacy format, read statically) of Linear, Conv2d+BatchNorm2d,",
        "LSTM, Embedding state dicts, tensors of every dtype, meta tensors, storages, quantized tensors,",
        "Parameters, a tensor with attributes, Adam/AdamW/SGD state dicts after one step, sparse COO/CSR/CSC/BSR",
        "tensors, views, and a checkpoint with torch and numpy RNG states (that one also needs numpy).",
        "dtypes, qschemes and storage classes are references: a pickle may name them, never call them.",
        "Names of torch's list that no sample pickles, in the mode torch's own loader uses them:",
    ]
    for why, names in sorted(unrecorded.items()):
        notes.append(f"  {why}: {len(names)} ({', '.join(sorted(names)[:6])}{', ...' if len(names) > 6 else ''})")
    if excluded:
        notes.append("Excluded from torch's list because sinks.yaml matches them:")
        notes += [f"  {n}  ({r})" for n, r in excluded.items()]
    p = {
        "name": "torch",
        "header": [f"Generated by tools/gen_policies.py from torch=={version('torch')} on Python {PY} — "
                   "do not edit by hand."],
        "notes": notes,
        "description": "PyTorch tensors, storages, dtypes, Parameters and state dicts as torch.load("
                       "weights_only=True) accepts them.",
        "extends": ["python-data"],
        "allow": allow,
        # torch allows APPEND(S) only on list and SETITEM(S) only on dict, OrderedDict and Counter
        "containers": ["builtins.dict", "builtins.list", "collections.Counter", "collections.OrderedDict"],
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
    PRESETS["torch"] = p
    p["assumed"] = {label: ["numpy"] for label in TORCH_NEEDS_NUMPY}
    verify("torch", flatten(["torch"]), rec, {lb for lb in rec.labels() if base_label(lb) not in TORCH_NEEDS_NUMPY})
    verify("torch", flatten(["torch", "numpy"]), rec, {lb for lb in rec.labels() if base_label(lb) in TORCH_NEEDS_NUMPY})
    log(f"torch: {len(allow)} names ({mode_counts(allow)}), {sum(map(len, unrecorded.values()))} not recorded; "
        f"numpy entries {numpy_entries}; excluded as sinks {sorted(excluded)}")
    p["record"] = rec
    return p

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


def _public_functions(module, names=None) -> dict:
    """module.__all__ (or `names`) members that are Python or C functions, by `module.qualname`."""
    out = {}
    for n in names if names is not None else module.__all__:
        f = getattr(module, n)
        if inspect.isfunction(f) or inspect.isbuiltin(f) or type(f).__name__ == "cython_function_or_method":
            out[qualified(f)] = f
    return out


def sklearn_splitters() -> dict:
    """One instance of every CV splitter class of sklearn.model_selection._split."""
    import numpy as np
    from sklearn.model_selection import _split

    args = {"LeavePOut": {"p": 2}, "LeavePGroupsOut": {"n_groups": 2}, "PredefinedSplit": {"test_fold": [0, 1, 0, 1]},
            "_CVIterableWrapper": {"cv": [(np.array([0, 1]), np.array([2]))]}}
    out = {}
    for n, C in vars(_split).items():
        if inspect.isclass(C) and C.__module__ == _split.__name__ and hasattr(C, "split") \
                and not inspect.isabstract(C) and n not in ("_UnsupportedGroupCVMixin", "_RepeatedSplits",
                                                            "BaseShuffleSplit"):
            out[n] = C(**args.get(n, {}))
    return out


def sklearn_scorers():
    """Every named scorer (get_scorer), make_scorer of every public function of sklearn.metrics, and the
    pairwise metric and kernel functions (which estimators store as `metric=` references)."""
    from sklearn import metrics
    from sklearn.metrics import pairwise
    from sklearn.metrics._scorer import _MultimetricScorer, _PassthroughScorer

    objs = {f"get_scorer({n})": metrics.get_scorer(n) for n in metrics.get_scorer_names()}
    funcs = _public_functions(metrics)
    funcs.update({qualified(f): f for f in {**pairwise.PAIRWISE_DISTANCE_FUNCTIONS,
                                             **pairwise.PAIRWISE_KERNEL_FUNCTIONS}.values() if f is not None})
    objs["make_scorer(every public metric function)"] = [metrics.make_scorer(f) for _, f in sorted(funcs.items())]
    objs["_MultimetricScorer"] = _MultimetricScorer(scorers={"acc": metrics.get_scorer("accuracy")},
                                                    raise_exc=True)
    return objs, funcs, _PassthroughScorer


def sklearn_distance_metrics():
    """Every DistanceMetric class, float64 and float32 (sklearn.metrics._dist_metrics)."""
    import numpy as np
    from sklearn.metrics import DistanceMetric, _dist_metrics

    params = {"minkowski": {"p": 3, "w": np.ones(2)}, "p": {"p": 1.5}, "seuclidean": {"V": np.ones(2)},
              "mahalanobis": {"VI": np.eye(2)}, "pyfunc": {"func": _dist_metrics.DistanceMetric64}}
    objs = {}
    for name in sorted(_dist_metrics.METRIC_MAPPING64):
        if name == "pyfunc":
            continue  # its function is a user callable; the class is allowed like the others below
        for dtype in (np.float64, np.float32):
            objs[f"DistanceMetric({name}, {dtype.__name__})"] = DistanceMetric.get_metric(
                name, dtype=dtype, **params.get(name, {}))
    return objs


def sklearn_kernels():
    """Every Gaussian-process kernel class, alone and combined, and fitted GP models with them."""
    import numpy as np
    from sklearn.gaussian_process import GaussianProcessClassifier, GaussianProcessRegressor
    from sklearn.gaussian_process import kernels as K

    base = [K.RBF(), K.Matern(nu=2.5), K.RationalQuadratic(), K.ExpSineSquared(), K.DotProduct(), K.WhiteKernel(),
            K.ConstantKernel(), K.PairwiseKernel(metric="rbf")]
    combined = [K.Sum(K.RBF(), K.WhiteKernel()), K.Product(K.ConstantKernel(), K.Matern()),
                K.Exponentiation(K.DotProduct(), 2), K.CompoundKernel([K.RBF(), K.DotProduct()])]
    classes = {C for C in vars(K).values() if inspect.isclass(C) and issubclass(C, K.Kernel) and not inspect.isabstract(C)}
    missing = classes - {type(k) for k in base + combined}
    if missing:
        die(f"sklearn: kernel classes without a sample: {sorted(c.__name__ for c in missing)}")
    X = np.linspace(0, 1, 8).reshape(-1, 1)
    y = np.sin(6 * X).ravel()
    return {
        "GP kernels": base + combined + [K.Hyperparameter("x", "numeric", (1e-5, 1e5))],
        "GaussianProcessRegressor(RBF+White)": GaussianProcessRegressor(
            kernel=K.ConstantKernel() * K.RBF() + K.WhiteKernel(), random_state=0).fit(X, y),
        "GaussianProcessClassifier(Matern)": GaussianProcessClassifier(kernel=K.Matern(), random_state=0).fit(
            X, (y > 0).astype(int)),
    }


def sklearn_feature_selection():
    """Univariate selectors fitted with every score function of sklearn.feature_selection."""
    import numpy as np
    from sklearn import feature_selection as fs

    X = np.abs(np.random.RandomState(0).rand(20, 4))
    yc, yr = np.array([0, 1] * 10), X[:, 0] * 2
    objs = {}
    for name, f in sorted(_public_functions(fs).items()):
        if f is fs.f_oneway:
            objs[f"score function {name}"] = [f]  # takes samples, not (X, y): only stored as a reference
            continue
        y = yr if f in (fs.f_regression, fs.r_regression, fs.mutual_info_regression) else yc
        objs[f"SelectKBest({name})"] = fs.SelectKBest(score_func=f, k=2).fit(X, y)
    for S in (fs.SelectPercentile, fs.SelectFpr, fs.SelectFdr, fs.SelectFwe, fs.GenericUnivariateSelect):
        objs[S.__name__] = S().fit(X, yc)
    return objs


def scipy_sparse_objects():
    """Every scipy.sparse matrix and array class."""
    import numpy as np
    import scipy.sparse as sp

    dense = np.array([[1.0, 0, 2], [0, 0, 3], [4, 5, 0]])
    out = {}
    for fmt in ("bsr", "coo", "csc", "csr", "dia", "dok", "lil"):
        for kind in ("matrix", "array"):
            out[f"scipy.sparse.{fmt}_{kind}"] = getattr(sp, f"{fmt}_{kind}")(dense)
    out["scipy.sparse int64 csr"] = sp.csr_matrix(dense.astype("i8"))
    return out


def sklearn_partials():
    """HistGradientBoosting with categorical features keeps FunctionTransformer(partial(check_array, ...));
    FunctionTransformers of the sklearn.utils.validation functions people wrap the same way."""
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.preprocessing import FunctionTransformer
    from sklearn.utils import validation

    df = pd.DataFrame({"c": pd.Categorical(list("abcab") * 4), "x": np.arange(20.0)})
    y = np.array([0, 1] * 10)
    names = [n for n, f in vars(validation).items() if not n.startswith("_") and inspect.isfunction(f)
             and f.__module__ == validation.__name__ and n != "check_memory"]  # a sink: see refused-by-design
    return {
        "HistGradientBoostingClassifier(categorical_features=from_dtype)":
            HistGradientBoostingClassifier(max_iter=3, categorical_features="from_dtype").fit(df, y),
        "HistGradientBoostingRegressor(categorical_features=[0])":
            HistGradientBoostingRegressor(max_iter=3, categorical_features=[0]).fit(df[["x"]].assign(c=y), y),
        "CountVectorizer(tokenizer=str.split, preprocessor=str.lower)": __import__(
            "sklearn.feature_extraction.text", fromlist=["CountVectorizer"]).CountVectorizer(
            tokenizer=str.split, preprocessor=str.lower, token_pattern=None).fit(["a b", "b c"]),
        "FunctionTransformer(partial(sklearn.utils.validation.*))": [
            FunctionTransformer(functools.partial(getattr(validation, n))) for n in sorted(names)],
    }


def sklearn_refused_by_design():
    """Fitted objects that hold code-executing restorers: their pickles must be refused."""
    import numpy as np
    from scipy import stats
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import RandomizedSearchCV

    from sklearn.preprocessing import FunctionTransformer
    from sklearn.utils.validation import check_memory

    X, y = np.random.RandomState(0).rand(20, 2), np.array([0, 1] * 10)
    return {
        # scipy's frozen distributions exec generated source when restored
        "RandomizedSearchCV(scipy.stats distributions)": RandomizedSearchCV(
            LogisticRegression(), {"C": stats.loguniform(1e-3, 1e3), "tol": stats.uniform(1e-4, 1e-2)}, n_iter=2,
            cv=2, random_state=0).fit(X, y),
        # check_memory(location) creates a joblib.Memory cache directory
        "FunctionTransformer(partial(check_memory))": FunctionTransformer(functools.partial(check_memory)),
    }


SKLEARN_REFUSED_BY_DESIGN = {"RandomizedSearchCV(scipy.stats distributions)", "FunctionTransformer(partial(check_memory))"}


def gen_sklearn(log):
    import numpy as np
    from sklearn.experimental import enable_halving_search_cv, enable_iterative_imputer  # noqa: F401
    from sklearn.metrics import _dist_metrics
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    rec = StaticRecord()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.random.seed(0)
        classes, fitted, skipped = sklearn_fitted()
        scorers, metric_funcs, _ = sklearn_scorers()
        splitters = sklearn_splitters()
        objs = {f"splitter {n}": s for n, s in splitters.items()}
        objs["GridSearchCV(cv=StratifiedKFold, multimetric)"] = GridSearchCV(
            classes["LogisticRegression"](), {"C": [0.1, 1]}, cv=StratifiedKFold(3),
            scoring=["accuracy", "roc_auc", "neg_log_loss"], refit="accuracy").fit(*_xy_classification())
        objs.update(scorers)
        objs.update(sklearn_distance_metrics())
        objs.update(sklearn_kernels())
        objs.update(sklearn_feature_selection())
        objs.update(scipy_sparse_objects())
        objs.update(sklearn_partials())
        objs.update(sklearn_refused_by_design())
        for label, obj in fitted + sorted(objs.items()):
            rec.add_object(obj, label, (2, 5))
    # every estimator class (all fitted above) and the classes of the enumerated kinds must be recorded
    inventory = {qualified(E) for E in classes.values()} | {qualified(type(s)) for s in splitters.values()}
    inventory |= set(metric_funcs)
    inventory |= {qualified(C) for C in set(_dist_metrics.METRIC_MAPPING64.values())
                  | set(_dist_metrics.METRIC_MAPPING32.values()) if "PyFunc" not in C.__name__}
    missing = sorted(n for n in inventory if n not in rec.uses)
    if missing:
        die(f"sklearn: enumerated names that no sample pickles: {missing}")
    split = split_recorded("sklearn", rec, ["numpy", "python-data"])
    if not split["refused_labels"] or {base_label(lb) for lb in split["refused_labels"]} != SKLEARN_REFUSED_BY_DESIGN:
        die(f"sklearn: refused samples {sorted({base_label(lb) for lb in split['refused_labels']})} are not "
            f"exactly the refused-by-design ones {sorted(SKLEARN_REFUSED_BY_DESIGN)}")
    allow = split["allow"]
    # PyFuncDistance stores a user function (checked as any other name); the class restores like the others
    for C in (_dist_metrics.PyFuncDistance64, _dist_metrics.PyFuncDistance32):
        allow[qualified(C)] = allow[qualified(_dist_metrics.EuclideanDistance64)]
    check_entries("sklearn", allow)
    check_entries("sklearn", split["containers"])
    foreign = sorted(g for g in allow if g.split(".", 1)[0] != "sklearn")
    log(f"sklearn: {len(classes)} estimator classes, {len(fitted)} fitted instances, {len(splitters)} splitters, "
        f"{len(metric_funcs)} metric functions, {len(allow)} names ({mode_counts(allow)}); outside sklearn: {foreign}")
    if skipped:
        log(f"sklearn: skipped {len(skipped)}: {skipped}")
    notes = [
        "Every name recorded (statically) while pickling, at protocols 2 and 5: every estimator class of",
        "sklearn.utils.all_estimators() (halving searches and IterativeImputer enabled) fitted with default",
        "parameters on tiny data (n_estimators=5, random_state=0 where those parameters exist; sklearn's own",
        "test parameters where the defaults need arguments; text/dict/label/image input where the estimator",
        "takes it) and a few common non-default configurations (ball/kd trees, SGD losses); every CV splitter",
        f"({len(splitters)}) alone and in a GridSearchCV(cv=StratifiedKFold) with several scorers; every named scorer",
        f"(get_scorer) and make_scorer of every public sklearn.metrics and pairwise metric/kernel function",
        f"({len(metric_funcs)}, references); every DistanceMetric class (float64 and float32); every GP kernel,",
        "alone, combined and in fitted GaussianProcessRegressor/Classifier; univariate feature selection with",
        "every score function; every scipy.sparse matrix and array format; HistGradientBoosting with categorical",
        "features (FunctionTransformer(functools.partial(check_array, ...))) and functools.partial of every",
        "sklearn.utils.validation function; minus what the numpy and python-data presets allow.",
        "Estimators and helpers restore by NEWOBJ + BUILD (mode new); Cython helpers (trees, losses, distance",
        "metrics) through their reduce functions (call) with the class as a reference.",
        "PyFuncDistance32/64 are allowed like the other distance metric classes (the function they hold is",
        "a name of its own, checked as any other).",
        "Globals outside sklearn (listed explicitly): " + (", ".join(foreign) or "none") + ".",
    ]
    notes += refusal_notes(split)
    if skipped:
        notes.append("Allowed by class name but not fitted (their helper types are not recorded):")
        notes += [f"  {k}: {v}" for k, v in sorted(skipped.items())]
    p = {
        "name": "sklearn",
        "header": [f"Generated by tools/gen_policies.py from scikit-learn=={version('scikit-learn')}, "
                   f"numpy=={version('numpy')}, scipy=={version('scipy')}, pandas=={version('pandas')} "
                   f"on Python {PY} — do not edit by hand."],
        "notes": notes,
        "description": "Fitted scikit-learn estimators pickled with pickle (or the pickle part of joblib): every "
                       "estimator class, CV splitter, scorer and metric function, distance metric, GP kernel, "
                       "feature-selection score function, scipy.sparse format, and the helper types they pickle.",
        "extends": ["numpy", "python-data"],
        "allow": allow,
        "containers": sorted(split["containers"]),
        "persistent_ids": "none",
    }
    PRESETS["sklearn"] = p
    p["record"], p["split"] = rec, split
    return p


def _xy_classification():
    import numpy as np

    rs = np.random.RandomState(0)
    return rs.rand(30, 3), np.array([0, 1, 1] * 10)

# --------------------------------------------------------------------------------------------------
# pandas
# --------------------------------------------------------------------------------------------------


def pyarrow_types() -> dict:
    """Common arrow types, for pd.ArrowDtype columns (pandas pickles them with pyarrow's rebuilders)."""
    import pyarrow as pa

    out = {str(t): t for t in (
        pa.null(), pa.bool_(), pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32(),
        pa.uint64(), pa.float16(), pa.float32(), pa.float64(), pa.string(), pa.large_string(), pa.binary(),
        pa.large_binary(), pa.binary(3), pa.date32(), pa.date64(), pa.time32("s"), pa.time32("ms"),
        pa.time64("us"), pa.time64("ns"), pa.duration("s"), pa.duration("ms"), pa.duration("us"), pa.duration("ns"),
        pa.month_day_nano_interval(), pa.decimal128(7, 2), pa.decimal256(40, 3))}
    for unit in ("s", "ms", "us", "ns"):
        out[f"timestamp[{unit}]"] = pa.timestamp(unit)
    for tz in ("UTC", "Europe/Berlin", "+01:00"):
        out[f"timestamp[us, tz={tz}]"] = pa.timestamp("us", tz=tz)
    out.update({
        "list<int64>": pa.list_(pa.int64()), "large_list<string>": pa.large_list(pa.string()),
        "fixed_size_list<float32, 2>": pa.list_(pa.float32(), 2), "map<string, int64>": pa.map_(pa.string(), pa.int64()),
        "struct<a: int64, b: string>": pa.struct([("a", pa.int64()), pa.field("b", pa.string(), nullable=False)]),
        "dictionary<int32, string>": pa.dictionary(pa.int32(), pa.string()),
        "dictionary<int8, string, ordered>": pa.dictionary(pa.int8(), pa.string(), ordered=True),
    })
    for name in ("string_view", "binary_view"):
        if hasattr(pa, name):
            out[name] = getattr(pa, name)()
    return out


def _arrow_values(t):
    """A pyarrow array of a few values of type t (always with a null)."""
    import datetime
    import decimal

    import numpy as np
    import pyarrow as pa

    T = pa.types
    if T.is_float16(t):
        return pa.array(np.array([1.5, np.nan], dtype="f2"), type=t, from_pandas=True)
    if T.is_timestamp(t):
        return pa.array([datetime.datetime(2020, 1, 2, 3, tzinfo=datetime.timezone.utc if t.tz else None), None], t)
    samples = [
        (T.is_null, [None, None]), (T.is_boolean, [True, None]), (T.is_integer, [1, None]),
        (T.is_floating, [1.5, None]), (T.is_fixed_size_binary, [b"abc", None]),
        (lambda t: T.is_string(t) or T.is_large_string(t) or str(t) == "string_view", ["a", None]),
        (lambda t: T.is_binary(t) or T.is_large_binary(t) or str(t) == "binary_view", [b"abc", None]),
        (T.is_date, [datetime.date(2020, 1, 2), None]), (T.is_time, [datetime.time(1, 2, 3), None]),
        (T.is_duration, [datetime.timedelta(seconds=5), None]), (T.is_interval, [pa.MonthDayNano([1, 2, 3]), None]),
        (T.is_decimal, [decimal.Decimal("1.25"), None]), (T.is_fixed_size_list, [[1.0, 2.0], None]),
        (T.is_map, [[("k", 1)], None]), (T.is_large_list, [["a"], None]), (T.is_list, [[1, 2], None]),
        (T.is_struct, [{"a": 1, "b": "x"}, None]), (T.is_dictionary, ["a", "b", None]),
    ]
    for test, values in samples:
        if test(t):
            return pa.array(values, type=t)
    raise ValueError(f"no sample values for {t}")


def pandas_columns():
    """One column of every kind: numpy dtypes, every registered extension dtype (nullable Int*/UInt*/Float*/
    boolean, string with both storages and both NA values, categorical, datetime with each kind of time
    zone, period, interval, sparse), and ArrowDtype of every type of pyarrow_types()."""
    import datetime
    import zoneinfo

    import dateutil.tz
    import numpy as np
    import pandas as pd

    n = 3
    fixed = datetime.timezone(datetime.timedelta(hours=-5))
    cols = {
        "int64": np.arange(n), "int8": np.arange(n, dtype="i1"), "uint32": np.arange(n, dtype="u4"),
        "float64": np.linspace(0, 1, n), "float32": np.linspace(0, 1, n, dtype="f4"), "complex": np.ones(n, "c16"),
        "bool": np.array([True, False, True]), "object": ["a", None, 1.5],
        "datetime64": pd.date_range("2020-01-01", periods=n),
        "datetime64-s": np.array(["2020-01-01", "NaT", "2021-06-01"], dtype="M8[s]"),
        "timedelta64": pd.to_timedelta([1, 2, None], unit="s"),
        "category": pd.Categorical(["a", "b", "a"]),
        "category-ordered-int": pd.Categorical([3, 1, 3], categories=[3, 1], ordered=True),
        "category-datetime": pd.Categorical(pd.date_range("2020", periods=n)),
        "period-M": pd.period_range("2020-01", periods=n, freq="M"),
        "period-D": pd.period_range("2020-01-01", periods=n, freq="D"),
        "period-h": pd.period_range("2020-01-01", periods=n, freq="h"),
        "interval-left": pd.IntervalIndex.from_breaks([0, 1, 2, 3], closed="left"),
        "interval-float-both": pd.arrays.IntervalArray.from_breaks([0.0, 0.5, 1.0, 2.0], closed="both"),
        "interval-datetime": pd.interval_range(pd.Timestamp("2020"), periods=n, freq="D"),
        "sparse-int": pd.arrays.SparseArray([0, 0, 1]),
        "sparse-float-block": pd.arrays.SparseArray([0.0, np.nan, 2.0], kind="block"),
        "sparse-bool": pd.arrays.SparseArray([False, True, False], fill_value=False),
    }
    for dt in ("Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32", "UInt64"):
        cols[dt] = pd.array([1, None, 3], dtype=dt)
    for dt in ("Float32", "Float64"):
        cols[dt] = pd.array([1.5, None, 3], dtype=dt)
    cols["boolean"] = pd.array([True, None, False], dtype="boolean")
    for storage in ("python", "pyarrow"):
        for na in (pd.NA, np.nan):
            cols[f"string[{storage}, na={na}]"] = pd.array(["x", None, "z"], dtype=pd.StringDtype(storage, na_value=na))
    cols["str"] = pd.array(["x", "y", None], dtype="str")
    for kind, tz in (("UTC", "UTC"), ("fixed offset", fixed), ("zoneinfo", zoneinfo.ZoneInfo("Europe/Berlin")),
                     ("zoneinfo by name", "America/New_York"), ("dateutil tzutc", dateutil.tz.tzutc()), ("dateutil tzoffset", dateutil.tz.tzoffset("X", 3600)),
                     ("dateutil tzlocal", dateutil.tz.tzlocal()), ("datetime.timezone.utc", datetime.timezone.utc)):
        cols[f"datetime64 tz {kind}"] = pd.date_range("2020-01-01", periods=n, tz=tz)
    for name, t in pyarrow_types().items():
        cols[f"ArrowDtype({name})"] = pd.array(_arrow_values(t), dtype=pd.ArrowDtype(t))
    registered = {type(pd.api.types.pandas_dtype(c.dtype)) for c in map(pd.array, cols.values())}
    from pandas.core.dtypes.base import _registry

    missing = set(_registry.dtypes) - registered
    if missing:
        die(f"pandas: registered extension dtypes without a column: {sorted(d.__name__ for d in missing)}")
    return cols


def pandas_offsets():
    """Every DateOffset class of pandas.offsets, with its usual arguments."""
    import datetime

    import numpy as np
    import pandas as pd

    args = {
        "FY5253": {"weekday": 0, "startingMonth": 1, "variation": "nearest"},
        "FY5253Quarter": {"weekday": 0, "startingMonth": 1, "qtr_with_extra_week": 1, "variation": "last"},
        "LastWeekOfMonth": {"weekday": 4}, "WeekOfMonth": {"week": 1, "weekday": 2}, "Week": {"weekday": 0},
        "CustomBusinessDay": {"holidays": ["2020-12-25"], "weekmask": "Mon Tue Wed Thu"},
        "CustomBusinessHour": {"start": "08:00", "end": "16:00", "holidays": [datetime.date(2020, 1, 1)]},
        "CustomBusinessMonthBegin": {"holidays": [np.datetime64("2020-01-01")]},
        "CustomBusinessMonthEnd": {"holidays": ["2020-01-31"]},
        "BusinessHour": {"start": "09:30", "end": "17:00"}, "DateOffset": {"months": 2, "days": 1},
    }
    out = []
    for name in sorted(pd.offsets.__all__):
        C = getattr(pd.offsets, name)
        if name in ("BaseOffset", "Tick"):
            continue  # abstract bases
        out.append(C(**args.get(name, {})))
        try:
            out.append(C(3, normalize=True, **args.get(name, {})))
        except ValueError:  # ticks refuse normalize
            out.append(C(3, **args.get(name, {})))
    out.append(pd.DateOffset(year=2020, hour=1))  # absolute replacement fields (relativedelta)
    return out


def pandas_objects():
    """DataFrames and Series of every column kind, every Index kind, extension arrays/dtypes, scalars and
    offsets, as users pickle them."""
    import datetime

    import numpy as np
    import pandas as pd

    n = 3
    fixed = datetime.timezone(datetime.timedelta(hours=-5))
    columns = pandas_columns()
    objs = {f"DataFrame[{k}]": pd.DataFrame({k: v}) for k, v in columns.items()}
    for n_rows in sorted({len(v) for v in columns.values()}):  # every column kind in one frame (block layout)
        objs[f"DataFrame[all of length {n_rows}]"] = pd.DataFrame({k: v for k, v in columns.items() if len(v) == n_rows})
    objs["Series[all]"] = [pd.Series(v, name=k) for k, v in columns.items()]
    objs["Index[all]"] = [pd.Index(v, name=k) for k, v in columns.items()]
    objs["arrays[all]"] = [pd.array(v) for v in columns.values()]
    objs["dtypes[all]"] = [pd.array(v).dtype for v in columns.values()]
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
    objs["DataFrame(empty)"] = pd.DataFrame()
    objs["DataFrame(object cells)"] = pd.DataFrame({"o": [[1, 2], {"k": 1}, (3,)]})
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
        pd.date_range("2020", periods=n, freq="B"), pd.date_range("2020", periods=n, freq="MS"),
        pd.TimedeltaIndex(["1D", "2h"]), pd.timedelta_range("1D", periods=n),
        pd.period_range("2020", periods=n, freq="Q"), pd.CategoricalIndex(list("aab")),
        pd.interval_range(0, 3), pd.IntervalIndex.from_arrays(pd.date_range("2020", periods=2),
                                                              pd.date_range("2020-02", periods=2)),
    ]
    objs["scalars"] = [
        pd.Timestamp("2020-01-01 12:00"), pd.Timestamp("2020-01-01", tz="UTC"), pd.Timestamp("2020-01-01", tz=fixed),
        pd.Timestamp("2020-01-01", tz="Europe/Berlin"),
        pd.Timestamp("2020-01-01").as_unit("s"), pd.Timestamp("2020-01-01", unit="ns"), pd.Timedelta("1D 2h"),
        pd.Timedelta(1, unit="ns"), pd.Timedelta(3, unit="s").as_unit("s"),
        pd.Period("2020-01", freq="M"), pd.Period("2020Q1"), pd.NaT, pd.NA, pd.Interval(0, 1, closed="both"),
        pd.Interval(pd.Timestamp("2020"), pd.Timestamp("2021")),
    ]
    objs["offsets"] = pandas_offsets()
    objs["periods by freq"] = [pd.Period("2020-01-01", freq=f) for f in
                               ("D", "W", "M", "Q", "Y", "h", "min", "s", "ms", "us", "ns", "B")]
    objs["dtypes"] = [pd.CategoricalDtype(["a"]), pd.CategoricalDtype(), pd.DatetimeTZDtype(tz="UTC"),
                      pd.PeriodDtype("M"), pd.IntervalDtype("int64", closed="right"), pd.SparseDtype("float64"),
                      pd.Int64Dtype(), pd.BooleanDtype(), pd.Float64Dtype(), pd.StringDtype(),
                      pd.StringDtype(na_value=np.nan), pd.StringDtype("python")]
    return objs


def pandas_refused_by_design():
    """dateutil's tzfile time zones (tz="dateutil/...") pickle tzfile(None, filename), but tzfile(path) opens
    and reads any file it is named: a sink, so these pickles are refused."""
    import pandas as pd

    return {"DataFrame[datetime64 tz dateutil tzfile]": pd.DataFrame(
                {"t": pd.date_range("2020-01-01", periods=3, tz="dateutil/Europe/Berlin")}),
            "Timestamp(dateutil tzfile)": pd.Timestamp("2020-01-01", tz="dateutil/Europe/Berlin")}


def gen_pandas(log):
    import pandas as pd

    rec = StaticRecord()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        objs = pandas_objects()
        refused_by_design = pandas_refused_by_design()
        for label, obj in list(objs.items()) + list(refused_by_design.items()):
            rec.add_object(obj, label, (2, 4, 5))
            if isinstance(obj, (pd.DataFrame, pd.Series)):
                buf = io.BytesIO()
                obj.to_pickle(buf, compression=None)  # pickle.dump at protocol 5
                rec.add_pickle(buf.getvalue(), f"{label}@to_pickle")
    split = split_recorded("pandas", rec, ["numpy", "python-data"])
    refused = {base_label(lb) for lb in split["refused_labels"]}
    if refused != set(refused_by_design):
        die(f"pandas: refused samples {sorted(refused)} are not exactly the refused-by-design ones "
            f"{sorted(refused_by_design)}")
    allow = split["allow"]
    check_entries("pandas", allow)
    check_entries("pandas", split["containers"])
    foreign = sorted(g for g in allow if g.split(".", 1)[0] != "pandas")
    arrow = sorted(g for g in allow if g.startswith("pyarrow."))
    n_cols = sum(1 for k in objs if k.startswith("DataFrame[") and not k.startswith("DataFrame[all"))
    log(f"pandas: {n_cols} column kinds, {len(allow)} names ({mode_counts(allow)}); outside pandas: {foreign}")
    notes = [
        "Every name recorded (statically) while pickling, at protocols 2, 4 and 5 and with DataFrame/Series.",
        f"to_pickle, DataFrames, Series, Index objects, arrays and dtypes of each of {n_cols} column kinds: numpy",
        "int/uint/float/complex/bool/object/datetime64/timedelta64; every registered extension dtype (nullable",
        "Int8-64/UInt8-64/Float32/64/boolean, string with python and pyarrow storage and both NA values, str,",
        "categorical, datetime64 with UTC, fixed-offset, zoneinfo and dateutil tzutc/tzoffset/tzlocal time zones,",
        "period, interval, sparse);",
        "pd.ArrowDtype of every common arrow type (integers, floats, bool, strings, binaries, dates, times,",
        "timestamps with and without time zones, durations, intervals, decimals, lists, maps, structs,",
        "dictionaries); MultiIndex rows and columns, attrs and flags, every Index kind, Timestamp/Timedelta/",
        "Period/Interval/NaT/NA, every DateOffset of pandas.offsets (with arguments and normalize); minus what",
        "the numpy and python-data presets allow. pandas 3 stores every str column with pyarrow when pyarrow",
        "is installed: ArrowStringArray and the pyarrow rebuilders below.",
        "pyarrow rebuilders (C implementations; see AUDIT.md), data only: " + ", ".join(arrow) + ".",
        "pyarrow's extension types deserialize through user code (PyExtensionType unpickles its payload):",
        "none is allowed. pytz is not installed here: pytz time zones (pytz._p) are not covered.",
        "Globals outside pandas (listed explicitly): " + (", ".join(foreign) or "none") + ".",
    ]
    notes += refusal_notes(split)
    p = {
        "name": "pandas",
        "header": [f"Generated by tools/gen_policies.py from pandas=={version('pandas')}, numpy=={version('numpy')}, "
                   f"pyarrow=={version('pyarrow')}, python-dateutil=={version('python-dateutil')} on Python {PY} "
                   "— do not edit by hand."],
        "notes": notes,
        "description": "pandas DataFrames, Series, Index types, extension arrays and dtypes (incl. pyarrow-backed "
                       "strings and ArrowDtype), time scalars and offsets, as pickle and DataFrame.to_pickle write them.",
        "extends": ["numpy", "python-data"],
        "allow": allow,
        "containers": sorted(split["containers"]),
        "persistent_ids": "none",
    }
    PRESETS["pandas"] = p
    p["record"], p["split"] = rec, split
    return p

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
    # what save_pretrained(safe_serialization=False) and older Trainers write beside them
    buf = io.BytesIO()
    torch.save(trainer.model.state_dict(), buf)
    files["pytorch_model.bin"] = buf.getvalue()
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


# Trainer checkpoint files whose names are allowed only together with the numpy preset.
TRANSFORMERS_NEEDS_NUMPY = {"Trainer checkpoint rng_state.pth"}


def default_reduce_mode(cls) -> int | None:
    """NEW when instances of `cls` pickle by object's own __reduce_ex__ (NEWOBJ + BUILD at protocol >= 2,
    copyreg._reconstructor(cls, object, state) below), else None."""
    for k in cls.__mro__[:-1]:
        if "__reduce_ex__" in vars(k) or "__reduce__" in vars(k):
            return None
    return NEW


def gen_transformers(log):
    import tempfile

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

    if "Trainer checkpoint training_args.bin@torch.save" not in rec.labels():
        die("transformers: the Trainer checkpoint has no training_args.bin")
    split = split_recorded("transformers", rec, ["torch", "python-data"], persistent_ids="torch-storage",
                           assumed={label: ["numpy"] for label in TRANSFORMERS_NEEDS_NUMPY})
    allow = split["allow"]
    # config classes that could not be made with defaults pickle like the others (object's reduce: NEWOBJ)
    unpickled = {}
    for model_type in skipped:
        C = config_classes[model_type]
        if default_reduce_mode(C) is None:
            die(f"transformers: config class {qualified(C)} has its own __reduce__; it needs a sample")
        unpickled[qualified(C)] = default_reduce_mode(C)
    for n, m in unpickled.items():
        allow[n] = widest(allow.get(n), m)
    class_names = {qualified(C) for C in config_classes.values()}
    missing = sorted(class_names - set(allow))
    if missing:
        die(f"transformers: config classes neither recorded nor allowed: {missing[:10]}")
    check_entries("transformers", allow)
    check_entries("transformers", split["containers"])
    foreign = sorted(g for g in allow if g.split(".", 1)[0] != "transformers")
    log(f"transformers: {len(class_names)} config classes ({len(configs)} pickled), {len(allow)} names "
        f"({mode_counts(allow)}); outside transformers: {foreign}; configs skipped: {sorted(skipped)}")
    notes = [
        "Every name recorded (statically) in the pickles of a real Trainer checkpoint (a tiny BERT trained one",
        "step: training_args.bin, optimizer.pt, scheduler.pt, rng_state.pth, and the pytorch_model.bin of its",
        "state dict), torch.save and pickle (protocols 2 and 5) of TrainingArguments / Seq2SeqTrainingArguments",
        "in common configurations, one member of every Enum their fields are annotated with, TrainerState,",
        "TrainerControl, GenerationConfig, tokenizers built in memory (tokenizers models, PreTrainedTokenizerFast,",
        "BertTokenizer, GPT2Tokenizer, RobertaTokenizer, LlamaTokenizer, T5Tokenizer, XLMRobertaTokenizer), and",
        "every config class of CONFIG_MAPPING (instantiated with defaults and pickled).",
        "Trainer checkpoints need accelerate (TrainingArguments pickles its accelerate PartialState).",
        "TrainingArguments, PartialState and the config classes are restored by NEWOBJ + BUILD: they are",
        "allowed in mode new, so a pickle cannot call them (TrainingArguments(...) would run __post_init__,",
        "which reads the JSON files it is named and sets ACCELERATE_* environment variables; PartialState(...)",
        "sets up torch.distributed from the environment).",
        "rng_state.pth (Python, numpy and torch RNG states) also needs the numpy preset.",
        "Globals outside transformers (listed explicitly, checked against sinks.yaml): " + ", ".join(foreign) + ".",
    ]
    notes += refusal_notes(split)
    if skipped:
        notes.append("Config classes not pickled (their defaults do not validate), allowed in mode new like the")
        notes.append("others (they inherit object's __reduce_ex__):")
        notes += [f"  {k}: {v}" for k, v in sorted(skipped.items())]
    p = {
        "name": "transformers",
        "header": [f"Generated by tools/gen_policies.py from transformers=={version('transformers')}, "
                   f"accelerate=={version('accelerate')}, tokenizers=={version('tokenizers')}, "
                   f"torch=={version('torch')} on Python {PY} — do not edit by hand."],
        "notes": notes,
        "description": "Hugging Face Trainer checkpoints (training_args.bin and the torch files beside it), "
                       "config and generation-config objects, Trainer state and in-memory tokenizers.",
        "extends": ["torch", "python-data"],
        "allow": allow,
        "containers": sorted(split["containers"]),
        "persistent_ids": "torch-storage",
    }
    PRESETS["transformers"] = p
    p["assumed"] = {label: ["numpy"] for label in TRANSFORMERS_NEEDS_NUMPY}
    p["record"], p["split"] = rec, split
    return p

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
        if code in "gG":
            continue  # long double: picklegate's joblib reader refuses platform-dependent item sizes
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


def gen_joblib(log):
    import tempfile

    rec = StaticRecord()
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore")
        objs = joblib_objects(tmp)
        path = os.path.join(tmp, "x.joblib")
        for label, obj in objs.items():
            rec.add_joblib(obj, label, path)
        # pickle itself writes a memmap as _reconstruct(numpy.memmap, ...) + BUILD: the subtype is a reference
        rec.add_object(objs["memmap"], "memmap", (2, 5))
        del objs  # close the memmap before the directory goes
    if JOBLIB_WRAPPER not in rec.uses:
        die(f"joblib: joblib.dump did not pickle {JOBLIB_WRAPPER}")
    sklearn_labels = {base_label(lb) for lb in rec.labels() if lb.startswith("sklearn ")}
    split = split_recorded("joblib", rec, ["numpy", "python-data"],
                           assumed={label: ["sklearn"] for label in sklearn_labels})
    allow = split["allow"]
    if split["refused"]:
        die(f"joblib: samples refused: {split['refused']}")
    check_entries("joblib", allow)
    check_entries("joblib", split["containers"])
    foreign = sorted(g for g in allow if g.split(".", 1)[0] != "joblib")
    log(f"joblib: {len(allow)} names beyond numpy/python-data/sklearn: "
        + ", ".join(f"{n} ({MODE_NAMES[m]})" for n, m in sorted(allow.items())))
    notes = [
        "Every name recorded (with a static reader that imports nothing and skips the array data joblib",
        "writes inside the pickle, as picklegate does) in joblib.dump files (joblib's default protocol, 2 and 5)",
        "of arrays of every builtin dtype but long double (0-d, empty, Fortran-order, big-endian, structured,",
        "object; picklegate refuses joblib arrays whose item size is platform-dependent), a matrix,",
        "a memmap, dicts and lists of arrays, and fitted sklearn models (LogisticRegression, DecisionTreeClassifier,",
        "a StandardScaler+LogisticRegression pipeline), minus what the numpy and python-data presets allow.",
        f"picklegate's joblib format layer accepts {JOBLIB_WRAPPER} in any policy; it is listed here to",
        "document it. Compressed joblib files hold the same pickle. Fitted models also need the sklearn preset.",
        "A dumped np.memmap is written as a plain array of subtype numpy.memmap, which the numpy preset allows as",
        "a reference only (an inert carve-out of sinks.yaml; calling it would open a file).",
        "Globals outside joblib (listed explicitly): " + (", ".join(foreign) or "none") + ".",
    ]
    notes += refusal_notes(split)
    p = {
        "name": "joblib",
        "header": [f"Generated by tools/gen_policies.py from joblib=={version('joblib')}, numpy=={version('numpy')}, "
                   f"scikit-learn=={version('scikit-learn')} on Python {PY} — do not edit by hand."],
        "notes": notes,
        "description": "joblib.dump files: the NumpyArrayWrapper joblib writes for each array, and what "
                       "numpy arrays joblib.dump pickles beyond the numpy preset.",
        "extends": ["numpy", "python-data"],
        "allow": allow,
        "containers": sorted(split["containers"]),
        "persistent_ids": "none",
    }
    PRESETS["joblib"] = p
    p["assumed"] = {label: ["sklearn"] for label in sklearn_labels}
    p["record"], p["split"] = rec, split
    return p


# --------------------------------------------------------------------------------------------------
# omegaconf
# --------------------------------------------------------------------------------------------------


def omegaconf_objects():
    """DictConfig/ListConfig as Hydra and Lightning checkpoints hold them (nested, interpolations, missing
    values, flags), and every value node class of omegaconf.nodes."""
    import pathlib

    from omegaconf import DictConfig, ListConfig, OmegaConf, nodes

    cfg = OmegaConf.create({
        "model": {"name": "resnet", "layers": [1, 2, 3], "dropout": 0.1, "act": None},
        "data": {"root": "/data", "path": "${data.root}/train", "batch": "???"},
        "trainer": {"max_epochs": 3, "precision": "16-mixed", "flags": {"deterministic": True}},
        7: "int key",
    })
    ro = OmegaConf.create({"a": {"b": 1}, "l": [1]})
    OmegaConf.set_readonly(ro, True)
    OmegaConf.set_struct(ro, True)
    values = [nodes.AnyNode(1), nodes.StringNode("x"), nodes.IntegerNode(1), nodes.FloatNode(1.5),
              nodes.BooleanNode(True), nodes.BytesNode(b"x"), nodes.PathNode(pathlib.Path("/p")),
              nodes.StringNode(None), nodes.IntegerNode("${a}"), nodes.StringNode("???")]
    typed = DictConfig({f"k{i}": v for i, v in enumerate(values)})
    return {
        "DictConfig(nested, interpolation, missing, int key)": cfg,
        "DictConfig(readonly, struct)": ro,
        "ListConfig": ListConfig([1, "a", {"b": None}, [2.5]]),
        "DictConfig(typed value nodes)": typed,
        "DictConfig(empty, None, missing)": [OmegaConf.create({}), DictConfig(None), DictConfig("???")],
        "container resolved": OmegaConf.to_container(cfg),
        "checkpoint hyper_parameters": {"hyper_parameters": cfg, "epoch": 1},
    }


def gen_omegaconf(log):
    import omegaconf
    from omegaconf import nodes

    rec = StaticRecord()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for label, obj in omegaconf_objects().items():
            rec.add_object(obj, label, (2, 4, 5))
            rec.add_torch(obj, label)
    split = split_recorded("omegaconf", rec, ["python-data"])
    allow = split["allow"]
    if split["refused"]:
        die(f"omegaconf: samples refused: {split['refused']}")
    # node classes that need an Enum type or are internal to resolution pickle like the others
    inventory = [C for C in vars(nodes).values() if inspect.isclass(C) and issubclass(C, omegaconf.Node)
                 and not inspect.isabstract(C) and C not in (omegaconf.Node, nodes.ValueNode, nodes.Box)]
    unrecorded = {}
    for C in inventory:
        if qualified(C) not in allow:
            if default_reduce_mode(C) is None:
                die(f"omegaconf: node class {qualified(C)} has its own __reduce__; it needs a sample")
            unrecorded[qualified(C)] = default_reduce_mode(C)
    allow.update(unrecorded)
    check_entries("omegaconf", allow)
    foreign = sorted(g for g in allow if g.split(".", 1)[0] != "omegaconf")
    log(f"omegaconf: {len(allow)} names ({mode_counts(allow)}); outside omegaconf: {foreign}; "
        f"not pickled: {sorted(unrecorded)}")
    notes = [
        "Every name recorded (statically) while pickling, at protocols 2, 4 and 5 and with torch.save,",
        "OmegaConf DictConfig/ListConfig objects as Hydra configs and Lightning checkpoints (hyper_parameters)",
        "hold them: nested, with interpolations, missing values (???), None, int keys, readonly and struct",
        "flags, and typed value nodes (Any, str, int, float, bool, bytes, path).",
        "Containers and nodes restore by NEWOBJ + BUILD (mode new; BaseContainer.__setstate__ and a __dict__",
        "update): a pickle cannot call them. Interpolations and resolvers are evaluated on access, not on load.",
        "typing.Any (the node and key type) is an inert carve-out of sinks.yaml, as a reference only.",
        "Structured configs (a user dataclass as object_type) need that class allowed as well.",
        "Node classes without a sample (they need an Enum type or exist only during resolution), allowed in",
        "the mode the other nodes restore in (they inherit object's __reduce_ex__): "
        + (", ".join(sorted(unrecorded)) or "none") + ".",
        "Globals outside omegaconf (listed explicitly): " + (", ".join(foreign) or "none") + ".",
    ]
    p = {
        "name": "omegaconf",
        "header": [f"Generated by tools/gen_policies.py from omegaconf=={version('omegaconf')} on Python {PY} — "
                   "do not edit by hand."],
        "notes": notes,
        "description": "OmegaConf DictConfig and ListConfig objects (Hydra configs, Lightning hyper_parameters) "
                       "and the node and metadata classes they pickle.",
        "extends": ["python-data"],
        "allow": allow,
        "containers": sorted(split["containers"]),
        "persistent_ids": "none",
    }
    PRESETS["omegaconf"] = p
    p["record"], p["split"] = rec, split
    return p


# --------------------------------------------------------------------------------------------------
# boosting: xgboost and lightgbm
# --------------------------------------------------------------------------------------------------


def boosting_objects():
    """Every sklearn-API model class of xgboost and lightgbm fitted on tiny data (with early-stopping
    records and pandas categorical input where they store them), and their Boosters."""
    import lightgbm
    import numpy as np
    import pandas as pd
    import xgboost
    from lightgbm import sklearn as lgb_sklearn
    from xgboost import sklearn as xgb_sklearn

    rs = np.random.RandomState(0)
    X, y = rs.rand(40, 3), np.array([0, 1] * 20)
    group = [10] * 4
    objs = {}
    for mod, base in ((xgb_sklearn, xgb_sklearn.XGBModel), (lgb_sklearn, lgb_sklearn.LGBMModel)):
        for name, C in sorted(vars(mod).items()):
            if not (inspect.isclass(C) and issubclass(C, base) and C is not base):
                continue
            kw = {"n_estimators": 3}
            if mod is lgb_sklearn:
                kw["verbose"] = -1
            est = C(**kw)
            fit = {"group": group} if "Ranker" in name else {}
            objs[f"{mod.__name__.split('.')[0]} {name}"] = est.fit(X, y, **fit)
    objs["xgboost XGBClassifier(eval_set, early stopping)"] = xgb_sklearn.XGBClassifier(
        n_estimators=5, early_stopping_rounds=2, eval_metric="logloss").fit(X, y, eval_set=[(X, y)], verbose=False)
    objs["lightgbm LGBMClassifier(eval_set)"] = lgb_sklearn.LGBMClassifier(n_estimators=3, verbose=-1).fit(
        X, y, eval_set=[(X, y)])
    df = pd.DataFrame({"c": pd.Categorical(list("abcd") * 10), "x": X[:, 0]})
    objs["lightgbm LGBMRegressor(pandas categorical)"] = lgb_sklearn.LGBMRegressor(n_estimators=3, verbose=-1).fit(
        df, X[:, 1])
    objs["xgboost Booster(train)"] = xgboost.train({"max_depth": 2}, xgboost.DMatrix(X, y), num_boost_round=2)
    objs["lightgbm Booster(train)"] = lightgbm.train({"verbose": -1}, lightgbm.Dataset(X, y), num_boost_round=2)
    return objs


def gen_boosting(log):
    import tempfile

    rec = StaticRecord()
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore")
        for label, obj in boosting_objects().items():
            rec.add_object(obj, label, (2, 5))
            rec.add_joblib(obj, label, os.path.join(tmp, "m.joblib"), protocols=(None,))
    split = split_recorded("boosting", rec, ["numpy", "python-data"])
    allow = split["allow"]
    if split["refused"]:
        die(f"boosting: samples refused: {split['refused']}")
    check_entries("boosting", allow)
    foreign = sorted(g for g in allow if g.split(".", 1)[0] not in ("xgboost", "lightgbm"))
    log(f"boosting: {len(allow)} names ({mode_counts(allow)}); outside xgboost/lightgbm: {foreign}")
    notes = [
        "Every name recorded (statically) while pickling, at protocols 2 and 5 and with joblib.dump, every",
        "sklearn-API model class of xgboost (XGBModel subclasses) and lightgbm (LGBMModel subclasses) fitted",
        "on tiny data, with an eval set / early stopping and with pandas categorical input, and the Boosters",
        "of xgboost.train and lightgbm.train, minus what the numpy and python-data presets allow.",
        "Boosters restore by NEWOBJ + BUILD: their __setstate__ hands the saved model bytes (xgboost: the raw",
        "model buffer; lightgbm: the model text) to the library's native loader; no Python code is rebuilt.",
        "catboost is not installed here, so the preset has no catboost names (a catboost model pickle is refused).",
        "Models fitted on pandas DataFrames may also need the pandas preset; sklearn objects inside (pipelines)",
        "the sklearn preset.",
        "Globals outside xgboost/lightgbm (listed explicitly): " + (", ".join(foreign) or "none") + ".",
    ]
    p = {
        "name": "boosting",
        "header": [f"Generated by tools/gen_policies.py from xgboost-cpu=={version('xgboost-cpu')}, "
                   f"lightgbm=={version('lightgbm')}, numpy=={version('numpy')} on Python {PY} — do not edit by hand."],
        "notes": notes,
        "description": "xgboost and lightgbm models (sklearn API and Boosters) as pickle and joblib.dump write them "
                       "(catboost is not covered).",
        "extends": ["numpy", "python-data"],
        "allow": allow,
        "containers": sorted(split["containers"]),
        "persistent_ids": "none",
    }
    PRESETS["boosting"] = p
    p["record"], p["split"] = rec, split
    return p


# --------------------------------------------------------------------------------------------------
# default
# --------------------------------------------------------------------------------------------------

DEFAULT_EXTENDS = ["python-data", "numpy", "torch", "sklearn", "transformers", "omegaconf"]


def checkpoint_samples():
    """Training checkpoints every ML repository has, beside Trainer outputs: a timm/torchvision-style
    checkpoint with its argparse.Namespace and paths, and a Lightning-style one with an omegaconf config."""
    import argparse
    import pathlib

    import numpy as np
    import torch
    from omegaconf import OmegaConf

    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.rand(2, 3)).sum().backward()
    opt.step()
    args = argparse.Namespace(model="resnet50", lr=0.1, epochs=3, data_dir=pathlib.Path("/data/imagenet"),
                              output=pathlib.PurePosixPath("out/run1"), amp=True, mean=(0.485, 0.456, 0.406))
    cfg = OmegaConf.create({"model": {"lr": 0.1}, "paths": {"root": "/data", "ckpt": "${paths.root}/ckpt"}})
    return {
        "timm checkpoint (argparse.Namespace, pathlib)": {
            "epoch": 3, "arch": "resnet50", "state_dict": model.state_dict(), "optimizer": opt.state_dict(),
            "args": args, "version": 2, "metric": 0.5},
        "lightning-style checkpoint (omegaconf)": {
            "epoch": 1, "global_step": 10, "state_dict": model.state_dict(), "optimizer_states": [opt.state_dict()],
            "hyper_parameters": {"cfg": cfg, "lr": 0.1}, "rng": {"numpy": np.random.get_state(),
                                                                 "torch": torch.get_rng_state()}},
    }


def gen_default(log):
    rec = StaticRecord()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for label, obj in checkpoint_samples().items():
            rec.add_torch(obj, label)  # (pickle.dumps of a tensor calls torch.storage._load_from_bytes, a sink)
    p = {
        "name": "default",
        "header": ["Generated by tools/gen_policies.py — do not edit by hand."],
        "notes": [
            "The built-in strict default: picklegate applies this policy when no `.picklegate.yaml` exists.",
            "It allows exactly what the " + ", ".join(DEFAULT_EXTENDS) + " presets allow, and nothing",
            "else; any other global (or a use beyond its mode), container call, BUILD target or persistent id",
            "is a finding. Verified to pass the files every ML repository has: Hugging Face Trainer outputs",
            "(training_args.bin, optimizer.pt, scheduler.pt, rng_state.pth, pytorch_model.bin), torch state",
            "dicts and optimizers, fitted sklearn estimators, and training checkpoints holding an",
            "argparse.Namespace, pathlib paths, an omegaconf DictConfig and RNG states.",
        ],
        "description": "Built-in strict default: the " + ", ".join(DEFAULT_EXTENDS) + " presets.",
        "extends": DEFAULT_EXTENDS,
        "allow": {},
    }
    PRESETS["default"] = p
    policy = flatten(["default"])
    verify("default", policy, rec)
    for name in ("transformers", "sklearn", "torch"):  # their own samples pass the default too
        r = PRESETS[name]["record"]
        live = r.labels() - PRESETS[name].get("split", {}).get("refused_labels", set())
        verify("default", policy, r, live)
    log(f"default: {len(policy.allow)} names after extends ({mode_counts(policy.allow)}); checkpoint samples, "
        "Trainer outputs and the torch and sklearn samples verified")
    p["record"] = rec
    return p

# --------------------------------------------------------------------------------------------------
# Hazards across presets: a reference whose call is a sink, next to a rebuilder that calls its argument
# --------------------------------------------------------------------------------------------------

# References whose call is a sink (an inert carve-out below mode call) that raise when called. Checked
# below by calling them.
CALL_RAISES = {"typing.Any": lambda Any: (Any(), Any("x"))}
# Rebuilders the audit sees run an argument, reviewed as not needing a sinks.yaml `rebuilders:` entry.
ARG_CALL_REVIEWED: dict[str, str] = {}


def check_call_raises() -> None:
    for n, call in CALL_RAISES.items():
        try:
            call(resolve(n))
        except TypeError:
            continue
        die(f"{n} is listed in CALL_RAISES but calling it does not raise TypeError")


def unmodeled_callers(audits: dict[str, dict]) -> list[str]:
    """Allowed rebuilders that run an argument (per the audit) but that picklegate does not model: neither
    copyreg._reconstructor nor in sinks.yaml `rebuilders:`. A reference handed to one of them would run."""
    table = rebuilders()
    return sorted(n for n, r in audits.items() if r["arg_calls"] and n not in table
                  and n != "copyreg._reconstructor" and n not in ARG_CALL_REVIEWED)


def hazards(preset: str, audits: dict[str, dict]) -> list[str]:
    """Pairs (unmodeled rebuilder that runs an argument, reference whose call is a sink) that the flattened
    preset allows together: with both, a pickle runs the sink through the rebuilder."""
    policy = flatten([preset])
    refs = sorted(n for n, m in policy.allow.items() if m < CALL and entry_sink_reason(n, CALL)
                  and n not in CALL_RAISES)
    callers = [n for n in unmodeled_callers(audits) if policy.allow.get(n) == CALL]
    return [f"{c} ({'; '.join(audits[c]['arg_calls'])}) with {r}" for c in callers for r in refs]


# --------------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def _scalar(s: str) -> str:
    return s if _PLAIN.match(s) else json.dumps(s)


def _allow_line(name: str, mode: int) -> str:
    return f"      - {_scalar(name)}" if mode == CALL else f"      - {{name: {_scalar(name)}, mode: {MODE_NAMES[mode]}}}"


def render(p) -> str:
    out = [f"# {h}" for h in p["header"]]
    if p.get("notes"):
        out.append("#")
        out += [f"# {n}".rstrip() for n in p["notes"]]
    if p.get("allow"):
        out.append(f"# Modes: {mode_counts(p['allow'])} (a plain entry is mode call; see policies/AUDIT.md).")
    out += ["version: 1", "policies:", f"  {p['name']}:",
            f"    description: {json.dumps(p['description'], ensure_ascii=False)}"]
    if p.get("extends"):
        out.append(f"    extends: [{', '.join(p['extends'])}]")
    if p.get("allow"):
        out.append("    allow:")
        out += [_allow_line(n, m) for n, m in sorted(p["allow"].items())]
    if p.get("containers"):
        items = p["containers"]
        assert items == sorted(set(items)), p["name"]
        out.append("    containers:")
        out += [f"      - {_scalar(x)}" for x in items]
    if p.get("allow") or p.get("containers"):
        out.append("    build: instances")
    if p.get("persistent_ids"):
        out.append(f"    persistent_ids: {p['persistent_ids']}")
    if p.get("substitutes"):
        out.append("    substitutes:")
        out += [f"      - {x}" for x in p["substitutes"]]
    return "\n".join(out) + "\n"


def validate_yaml(name: str, text: str, p) -> None:
    import yaml

    doc = yaml.safe_load(text)
    pol = doc["policies"][p["name"]]
    assert doc["version"] == 1 and list(doc["policies"]) == [p["name"]], name
    got = {}
    for e in pol.get("allow", []):
        got[e if isinstance(e, str) else e["name"]] = CALL if isinstance(e, str) else MODE_OF[e["mode"]]
    assert got == (p.get("allow") or {}), name
    assert pol.get("containers", []) == p.get("containers", []), name


def render_audit(presets, audits: dict[str, list[dict]], arg_callers: dict[str, list[str]]) -> str:
    """policies/AUDIT.md: per preset, each allowed name grouped by mode, restore path and verdict."""
    out = [
        "# Audit of the embedded presets",
        "",
        "Generated by `tools/gen_policies.py` with the libraries pinned in `tests/requirements.txt` — do not edit",
        "by hand. For every name a preset allows (its own entries, not those it extends): the mode it is allowed",
        "in, how a pickle restores it in that mode (which `__new__`, `__init__`, `__setstate__`, `__setattr__`,",
        "property setters a pickle reaches), and the verdict of a static scan of that Python code (source read with",
        "`inspect`, parsed with `ast`, following `self`/`cls`/`super()` methods and module functions "
        f"{SCAN_DEPTH} calls deep)",
        "for `exec`/`eval`/`compile`/`__import__`/`open` and uses of "
        + "/".join(sorted(FLAG_MODULES)) + " and " + ", ".join(sorted(FLAG_NAMES)) + ".",
        "A name whose restore code does one of those is a sink: it is in `sinks.yaml` (no preset may allow it),",
        "or the flagged use is reviewed below. C implementations (builtins, Cython) have no source to scan; their",
        "verdict says so and, where reviewed, what the C code does.",
        "",
        "- `reference`: a pickle may name it as a value (an argument, BUILD state, an item) but never calls it.",
        "  Its code still matters when a rebuilder that calls an argument is allowed beside it (next section), so",
        "  the path it would take when called is scanned too.",
        "- `new`: also instantiated without `__init__` (NEWOBJ, copyreg); BUILD then runs `__setstate__`, or updates",
        "  `__dict__` and sets slot state through `setattr` (a custom `__setattr__`, property setters).",
        "- `call`: also called with the pickle's arguments (`__new__`, `__init__`, a metaclass `__call__`).",
        "",
        "Importing the module of an allowed name runs that module's top-level code; the modules are those of",
        "the pinned, installed libraries.",
        "",
        "## Rebuilders that call or instantiate an argument",
        "",
        "Some allowed rebuilders run a value the pickle passes them (`torch._tensor._rebuild_from_type_v2(func, "
        "...)` calls",
        "`func`, pandas' `_new_Index(cls, d)` runs `cls.__new__(cls, **d)`, numpy's `__generator_ctor(name, ctor)` "
        "calls `ctor`).",
        "picklegate checks such an argument in the mode the rebuilder uses it (`sinks.yaml` `rebuilders:`; "
        "`copyreg._reconstructor`",
        "in the code); otherwise a name allowed only as a `reference` could be run through them. The audit finds "
        "these",
        "rebuilders among the allowed functions (a call of a parameter, of a method of one, or a parameter handed "
        "to `__new__`),",
        "and the generator refuses to write presets while one is missing from the table. Every `reference` is "
        "still scanned as",
        "if it were called.",
        "",
        "| rebuilder | what the audit saw | `rebuilders:` modes | presets |",
        "| --- | --- | --- | --- |",
    ]
    table = rebuilders()
    for n in sorted(set(arg_callers) | set(table)):
        where = sorted(p["name"] for p in presets if n in (p.get("allow") or {}))
        modes = ", ".join("-" if m is None else MODE_NAMES[m] for m in table[n]) if n in table else "(in the code)" \
            if n == "copyreg._reconstructor" else "missing"
        saw = "; ".join(arg_callers.get(n, [])) or ("C code, not scanned" if where else "not allowed by a preset")
        out.append(f"| `{n}` | {saw} | {modes} | {', '.join(where) or 'none'} |")
    if ARG_CALL_REVIEWED:
        out += ["", "Reviewed as not running what they are given:", ""]
        out += [f"- `{c}`: {why}" for c, why in sorted(ARG_CALL_REVIEWED.items())]
    out += ["", "## Uses that are not flagged", "",
            "Uses of the flagged modules that read no file, start nothing and run no code (reading os.environ is one;",
            "writing it is flagged): " + ", ".join(f"`{u}`" for u in sorted(PURE_USES)) + ".", ""]
    if AUDIT_REVIEWED:
        out += ["Flagged code reviewed by hand:", ""]
        out += [f"- `{q}` uses `{what}`: {why}" for (q, what), why in sorted(AUDIT_REVIEWED.items())]
    out += ["", "## Recorded names refused as sinks", "",
            "Names that real pickles of the samples use and that `sinks.yaml` refuses (in the mode they are used):",
            ""]
    for p in presets:
        for g, samples in sorted((p.get("split") or {}).get("refused", {}).items()):
            does = sink_does(g)
            out.append(f"- `{g}` ({p['split']['excluded'][g]}{'; ' + does if does else ''}): pickles of "
                       f"{', '.join(samples)} (preset `{p['name']}`)")
    for p in presets:
        rows = audits.get(p["name"]) or []
        if not rows:
            continue
        out += ["", f"## `{p['name']}` ({len(rows)} names: {mode_counts(p['allow'])})", ""]
        groups: dict[tuple, list[str]] = {}
        for r in rows:
            groups.setdefault((MODE_OF[r["mode"]], r["restore"], r["verdict"]), []).append(r["name"])
        for (mode, restore, verdict), names in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[1][0])):
            out.append(f"- **{MODE_NAMES[mode]}** — {restore} — *{verdict}*:")
            out.append("  " + ", ".join(f"`{n}`" for n in names))
    return "\n".join(out) + "\n"


def pin_mismatches() -> list[str]:
    """Installed versions that differ from tests/requirements.txt (the presets are pinned to those)."""
    req = os.path.join(ROOT, "tests", "requirements.txt")
    out = []
    if os.path.exists(req):
        for line in open(req, encoding="utf-8"):
            m = re.match(r"^\s*(torch|numpy|scikit-learn|scipy|pandas|pyarrow|joblib|transformers|accelerate|"
                         r"tokenizers|omegaconf|lightgbm|xgboost-cpu|xgboost|python-dateutil)==(\S+)", line)
            if m:
                try:
                    have = version(m.group(1))
                except Exception:  # noqa: BLE001
                    have = "missing"
                if have != m.group(2):
                    out.append(f"{m.group(1)} {have} installed, {m.group(2)} pinned")
    return out


def generate(log) -> list[dict]:
    """Every preset, in dependency order (each is verified as it is made against those it extends)."""
    return [gen_python_data(log), gen_numpy(log, ARGS.numpy1_python), gen_torch(log), gen_sklearn(log),
            gen_pandas(log), gen_transformers(log), gen_joblib(log), gen_omegaconf(log), gen_boosting(log),
            gen_default(log)]


def audit_all(log, presets):
    """Audit every preset's own names; die on unreviewed flagged code and on hazards."""
    check_call_raises()
    audits, by_name = {}, {}
    for p in presets:
        rows = audit_preset(p)
        audits[p["name"]] = rows
        by_name.update({r["name"]: r for r in rows})
    bad = [f"  {p['name']}: {h}" for p in presets for h in hazards(p["name"], by_name)]
    if bad:
        die("presets that allow a rebuilder that calls its argument beside a reference whose call is a sink:\n"
            + "\n".join(bad))
    missing = unmodeled_callers(by_name)
    if missing:
        die("allowed rebuilders that run an argument they are given, missing from sinks.yaml `rebuilders:` "
            "(add them with the mode of each argument, or review them in ARG_CALL_REVIEWED):\n"
            + "\n".join(f"  {n}: {'; '.join(by_name[n]['arg_calls'])}" for n in missing))
    arg_callers = {n: r["arg_calls"] for n, r in by_name.items() if r["arg_calls"]}
    n = sum(map(len, audits.values()))
    c = sum(1 for rows in audits.values() for r in rows if r["verdict"].startswith("C implementation"))
    log(f"audit: {n} names, {c} C implementations, {len(arg_callers)} rebuilders that call an argument: "
        f"{sorted(arg_callers)}")
    return render_audit(presets, audits, arg_callers)


ARGS = None


def dump(out_dir: str, presets) -> None:
    """Every recorded file, with manifest.json: [{file, label, presets, expect: pass|refused}]."""
    os.makedirs(out_dir, exist_ok=True)
    manifest = []
    for p in presets:
        rec = p.get("record")
        refused = (p.get("split") or {}).get("refused_labels", set())
        for i, (label, data) in enumerate(sorted(rec.files.items()) if rec else []):
            name = f"{p['name']}-{i:05d}.bin"
            with open(os.path.join(out_dir, name), "wb") as f:
                f.write(data)
            manifest.append({"file": name, "label": label, "expect": "refused" if label in refused else "pass",
                             "presets": [p["name"]] + (p.get("assumed") or {}).get(base_label(label), [])})
    with open(os.path.join(out_dir, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1)


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if policies/ differs from a fresh generation")
    ap.add_argument("--numpy1-python", metavar="PATH", help="interpreter with numpy 1.x to re-verify NUMPY1_RECORDED")
    ap.add_argument("--probe", choices=["numpy"], help=argparse.SUPPRESS)
    ap.add_argument("--dump", metavar="DIR", help="also write every recorded file and a manifest.json (which "
                    "presets it needs, whether it must pass) to DIR, to check them with the picklegate binary")
    ap.add_argument("-q", "--quiet", action="store_true")
    ARGS = args = ap.parse_args()

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

    StaticRecord.keep_files = bool(args.dump)
    presets = generate(log)
    if args.dump:
        dump(args.dump, presets)
        log(f"dumped the recorded files to {args.dump}")
    files = {}
    for p in presets:
        name = f"{p['name']}.yaml"
        files[name] = render(p)
        validate_yaml(name, files[name], p)
    files["AUDIT.md"] = audit_all(log, presets)

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
        log(f"check: {len(files)} files match ({time.monotonic() - t0:.1f}s)")
        return 0

    for name, text in files.items():
        with open(os.path.join(POLICY_DIR, name), "w", encoding="utf-8") as f:
            f.write(text)
    for p in presets:
        log(f"wrote policies/{p['name']}.yaml: {len(p.get('allow') or {})} allow ({mode_counts(p.get('allow') or {})}), "
            f"{len(p.get('containers') or [])} containers")
    log(f"wrote policies/AUDIT.md; done in {time.monotonic() - t0:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
