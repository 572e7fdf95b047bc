#!/usr/bin/env python3
"""Generate picklegate's embedded policy presets (policies/*.yaml) from the real libraries.

    python3 tools/gen_policies.py            # (re)write policies/{python-data,numpy,torch,sklearn,default}.yaml
    python3 tools/gen_policies.py --check    # regenerate in memory; exit 1 if a committed preset differs
    python3 tools/gen_policies.py --numpy1-python /path/to/python   # also re-verify the numpy 1.x names
                                                                    # with an interpreter that has numpy 1.x

Every preset is derived from, and verified against, the installed libraries pinned in
tests/requirements.txt (torch, numpy, scikit-learn on Python 3.11):

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
  * default      extends all of the above.

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
            m = re.match(r"^\s*(torch|numpy|scikit-learn)==(\S+)", line)
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
    presets = [python_data, numpy_p, torch_p, sklearn_p, gen_default()]

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
