"""Writes tests/fixtures/numpy_dtypes.json: what the real numpy computes for several
hundred dtype strings, .npy descrs, numpy.dtype(...) calls, dtype.__setstate__
states, Python literals and whole .npy headers. tests/numpy_dtypes.rs checks
picklegate's src/numpy/ against it.

Run with the pinned environment: /work/venv/bin/python tools/gen_dtype_table.py
No arguments; deterministic (re-executes itself with PYTHONHASHSEED=0). Every case is
evaluated in a child process, because numpy crashes on some of them (those are
recorded as {"crash": signal}).

Values are encoded as tagged JSON: ["none"], ["bool", b], ["int", "123"],
["float", "1.5"], ["complex", "re", "im"], ["str", s], ["bytes", "hex"],
["ellipsis"], ["tuple", [...]], ["list", [...]], ["set", [...]],
["dict", [[k, v], ...]], ["global", module, name] and
["dtype", {"args": [...], "state": value-or-null}] (numpy.dtype(*args), then
__setstate__(state)).
"""
import ast
import io
import json
import os
import pathlib
import struct
import subprocess
import sys

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "numpy_dtypes.json"

if os.environ.get("PYTHONHASHSEED") != "0":
    env = dict(os.environ, PYTHONHASHSEED="0")
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import warnings  # noqa: E402

import numpy as np  # noqa: E402

warnings.simplefilter("ignore")


# ---------------------------------------------------------------------------
# Encoding


def enc(v):
    if v is None:
        return ["none"]
    if v is Ellipsis:
        return ["ellipsis"]
    if isinstance(v, bool):
        return ["bool", v]
    if isinstance(v, int):
        # hex: decimal conversion of huge ints is limited (sys.int_max_str_digits)
        return ["int", str(v) if abs(v) < 2**64 else ("-" if v < 0 else "") + hex(abs(v))]
    if isinstance(v, float):
        return ["float", repr(v)]
    if isinstance(v, complex):
        return ["complex", repr(v.real), repr(v.imag)]
    if isinstance(v, str):
        return ["str", v]
    if isinstance(v, bytes):
        return ["bytes", v.hex()]
    if isinstance(v, tuple):
        return ["tuple", [enc(x) for x in v]]
    if isinstance(v, list):
        return ["list", [enc(x) for x in v]]
    if isinstance(v, (set, frozenset)):
        return ["set", [enc(x) for x in v]]
    if isinstance(v, dict):
        return ["dict", [[enc(k), enc(x)] for k, x in v.items()]]
    if isinstance(v, np.dtype):
        red = v.__reduce__()
        state = red[2] if len(red) > 2 else None
        return ["dtype", {"args": [enc(a) for a in red[1]], "state": None if state is None else enc(state)}]
    if isinstance(v, type):
        return ["global", v.__module__, v.__qualname__]
    raise TypeError(f"cannot encode {v!r}")


def dec(v):
    tag = v[0]
    if tag == "none":
        return None
    if tag == "ellipsis":
        return Ellipsis
    if tag == "bool":
        return v[1]
    if tag == "int":
        return int(v[1], 0)
    if tag == "float":
        return float(v[1])
    if tag == "complex":
        return complex(float(v[1]), float(v[2]))
    if tag == "str":
        return v[1]
    if tag == "bytes":
        return bytes.fromhex(v[1])
    if tag == "tuple":
        return tuple(dec(x) for x in v[1])
    if tag == "list":
        return [dec(x) for x in v[1]]
    if tag == "set":
        return {dec(x) for x in v[1]}
    if tag == "dict":
        return {dec(k): dec(x) for k, x in v[1]}
    if tag == "global":
        import importlib

        obj = importlib.import_module(v[1])
        for part in v[2].split("."):
            obj = getattr(obj, part)
        return obj
    if tag == "dtype":
        d = np.dtype(*[dec(a) for a in v[1]["args"]])
        if v[1]["state"] is not None:
            d.__setstate__(dec(v[1]["state"]))
        return d
    raise ValueError(tag)


def depth(v):
    if isinstance(v, (tuple, list, set)):
        return 1 + max((depth(x) for x in v), default=0)
    if isinstance(v, dict):
        return 1 + max((max(depth(k), depth(x)) for k, x in v.items()), default=0)
    return 0


def describe(d):
    return {
        "itemsize": d.itemsize,
        "hasobject": bool(d.hasobject),
        "flags": int(d.flags),
        "alignment": d.alignment,
        "kind": d.kind,
        "builtin": d.isbuiltin == 1,
        "names": None if d.names is None else list(d.names),
    }


# ---------------------------------------------------------------------------
# Evaluation (in the child)


def evaluate(case):
    kind = case["kind"]
    if kind == "str":
        return describe(np.dtype(case["spec"]))
    if kind == "descr":
        obj = ast.literal_eval(case["text"])
        return describe(np.lib.format.descr_to_dtype(obj))
    if kind == "call":
        return describe(np.dtype(*[dec(a) for a in case["args"]]))
    if kind == "setstate":
        d = np.dtype(*[dec(a) for a in case["args"]])
        d.__setstate__(dec(case["state"]))
        return describe(d)
    if kind == "literal":
        v = ast.literal_eval(case["text"])
        # serde_json refuses deeply nested JSON; deep values are compared by repr.
        return {"repr": repr(v)} if depth(v) > 40 else {"value": enc(v)}
    if kind == "npy":
        from numpy.lib import _format_impl as fmt

        fp = io.BytesIO(bytes.fromhex(case["bytes"]))
        version = fmt.read_magic(fp)
        fmt._check_version(version)
        shape, fortran, dtype = fmt._read_array_header(fp, version, max_header_size=2**64)
        # read_array computes the element count before reading any data.
        if len(shape):
            np.multiply.reduce(shape, dtype=np.int64)
        out = describe(dtype)
        out.update(data_offset=fp.tell(), shape=[int(x) for x in shape], fortran_order=fortran)
        return out
    raise ValueError(kind)


def child(path, start):
    cases = json.loads(pathlib.Path(path).read_text())
    for i in range(start, len(cases)):
        try:
            res = {"ok": evaluate(cases[i])}
        except BaseException as e:  # noqa: BLE001 - any exception is numpy refusing
            res = {"err": type(e).__name__}
        sys.stdout.write(json.dumps([i, res]) + "\n")
        sys.stdout.flush()


def run_all(cases):
    """Evaluates cases in children; a crash records {"crash": signal} and resumes."""
    tmp = OUT.with_suffix(".cases.tmp")
    tmp.write_text(json.dumps(cases))
    results = [None] * len(cases)
    start = 0
    try:
        while start < len(cases):
            p = subprocess.Popen(
                [sys.executable, __file__, "--child", str(tmp), str(start)],
                stdout=subprocess.PIPE,
                env=dict(os.environ, PYTHONHASHSEED="0"),
                text=True,
            )
            for line in p.stdout:
                i, res = json.loads(line)
                results[i] = res
                start = i + 1
            rc = p.wait()
            if start < len(cases) and rc != 0:
                results[start] = {"crash": -rc if rc < 0 else rc}
                start += 1
    finally:
        tmp.unlink()
    return results


# ---------------------------------------------------------------------------
# Cases

PREFIXES = ["", "<", ">", "|", "=", "!"]


def str_specs():
    s = [chr(c) for c in range(256)]
    s += [p + c for p in PREFIXES[1:] for c in "?bBhHiIlLqQpPnNefdgFDGSUVOMmaTcxz"]
    s += [p + k + str(n) for p in ["", "<", ">", "|"] for k in "biufcSUVOaMmTx?"
          for n in [0, 1, 2, 3, 4, 5, 8, 10, 12, 16, 20, 24, 32, 64]]
    names = sorted(k for k in np._core.numerictypes.sctypeDict if isinstance(k, str))
    s += names + ["<" + n for n in names[:10]] + [">float64", "|object", "=int32"]
    s += ["Float64", "float96", "float80", "int0", "uint0", "void0", "object0", "str0", "bytes0",
          "bool8", "<int0", "long double", "string", "np.float64", "float64 ", " float64",
          "float64\x00", "Object", "OBJECT", "o", "O ", " O", "O\x00", "\x00O", "O\t", "int", "uint",
          "unicode_", "string_", "object0", "float_", "complex_", "longfloat", "singlecomplex",
          "cfloat", "clongfloat", "longcomplex", "bool_", "int8", "Int8", "UInt8", "b", "B"]
    s += ["f 8", "f+8", "f-8", "f\t8", "f\n8", "f\r8", "f\x0b8", "f\x0c8", "f08", "f008", "f8\x00",
          "f\x008", "S+5", "S-0", "S-1", "S 5", "S5 ", "U 2", "i 4", "i4 ", "u01", "f0", "i0", "S0",
          "U0", "V0", "a0", "S2147483647", "S2147483648", "U536870911", "U536870912", "V2147483647",
          "V99999999999", "f99999999999999999999", "f-99999999999999999999", "O-8", "O+8", "i+4",
          "i++4", "i+-4", "i 0", "f8.0", "f8e0", "f0x8", "c 16", "b 1", "T0", "T8", "T16", "S\u00e9",
          "\u00e9", "f\u00e9", "\u00e98", "\u00b5", "M\u00b5"]
    s += ["M8", "m8", "M8[ns]", "<M8[ns]", ">m8[us]", "|M8[D]", "=M8[s]", "!M8", "M8[]", "M8[ns",
          "M8ns]", "M8[xs]", "M8[25s]", "M8[ 5s]", "M8[-5s]", "M8[-0s]", "M8[+5s]", "M8[0s]",
          "M8[2147483647s]", "M8[2147483648s]", "M8[99999999999999999999s]", "M8[s/2]", "M8[s/3]",
          "M8[s/0]", "M8[s/-2]", "M8[s/ 2]", "M8[s/2 ]", "M8[s/2]x", "M8[7D/2]", "M8[W/5]",
          "M8[W/7]", "M8[W/11]", "M8[Y/12]", "M8[Y/5]", "M8[M/4]", "M8[M/7]", "M8[h/7]", "M8[as/2]",
          "M8[fs/1000]", "M8[fs/3]", "M8[ns/1000000]", "M8[ns/7]", "M8[generic]", "M8[generic/2]",
          "M8[\u03bcs]", "M8[us]", "datetime64", "datetime64[ns]", "timedelta64[2h]", "datetime64ns",
          "datetime6", "Datetime64", "M8[s][s]", "M8[s]]", "M16", "M4", "M08", "m08", "M", "m",
          "M8[1/2]", "M8[/2]", "M8[s/]", "M8[s/2/3]", "M8[B]", "M8[Y]", "M8[M]", "M8[W]", "M8[D]",
          "M8[h]", "M8[m]", "M8[ms]", "M8[ps]", "M8[fs]", "M8[as]", "m8[generic]", "M8[s/2147483650]",
          "M8[s/4294967298]", "M8[ 5 s]", "M8[\t5s]", "M8[5 s]", "M8[s ]", "timedelta64[]", "M8[0x5s]"]
    s += ["(2,3)f8", "(2,)f8", "(2)f8", "2f8", "2,3f8", "(2,3)O", "3O", "O,f8", "i4,f8", "i4, f8",
          "i4 ,f8", "i4,f8 ", "i4,f8,", "i4,,", "i4,,f8", ",i4", "i4,(2,)O", ">i4,<f8", "<i4,>f8",
          ">(2,)i4", "(2,)>i4", "<(2,)>i4", "|(2,)<i4", "=(2,)<i4", ">(2,)<i4", "|(2,)|i4", "()i4",
          "<()i4", "()", "(),", "(2,3)", "5S", "5U", "5V", "5a", "2S5", "(2,)S5", "3S,2U", "M8[s,2]",
          "i4,M8[s]", "f8\u00a0,i4", "f8,\u3000i4", "f8\u2028", "i4\x85", "f8,i4\x0b", "f8,i4\x1c",
          "f8,i4\u200b", "1", "10,", "(0,)f8", "(-1,)f8", "(2147483648,)f8", "(65536,65536)f8",
          "(" + "1," * 64 + ")f8", "(" + "1," * 65 + ")f8", "0f8", "00f8", "01f8", "(2,3)(4,5)f8",
          "2(3)f8", "(2)(3)f8", "(2,)(3,)f8", "2 f8", " 2f8", "2f8 ", "(2, 3)f8", "( 2,3 )f8",
          "(2,3) f8", "(2,3)  f8", "(2 3)f8", "(,)f8", "(2,,3)f8", "2,f8", "O,O,O", "f8,O,",
          "f8.f4", "i4?", "?,?", "b1,b1", "i4,f8[", "i4,[f8]", "[i4],f8", "a]b,c", "f8],i4",
          "(2,)M8[ns]", "M8[ns],m8[us]", "T,f8", "O4,O8", "i4,f8\n", "i4,f8\n\n", "i4 , f8 , ",
          "f16,c32", "l,L", "g,G", "2O8", "(3,)V", "(3,)S", "2S", "3U", "0S", "0U", "(2,)T"]
    return s


def align_specs():
    return ["i1,i8", "i1,f8,i2", "O,i1", "i1,O", "(2,)i1,f8", "i1,(2,)f8", "S3,i4", "U1,i1",
            "i1,c8", "i1,c16", "i1,g", "i1,M8[s]", "i1,T", "e,f"]


def descr_specs():
    d = ["<f8", "|O", "|b1", ">i4", "<U5", "|S3", "|V8", "O", "object", "O,f8", "(2,)O", "T",
         ("<f8", (2,)), ("|O", 3), ("<f8", ()), ("<f8", []), ("<f8", [2, 3]), ("<f8", "O"),
         ("|V", "|O"), ("|V8", "|O"), ("|O", [("a", "|O")]), ("|O", [("a", "<f8")]),
         ("<i4", "<u4"), ("<i4", "<u8"), ("|S", 5), ("|S", None), ("<f8", None), ("<f8", 2.0),
         ("<f8", True), ("<f8", (True,)), ("<f8", -1), ("<f8", (2, -1)), (("<f8", (2,)), (3,)),
         ("<f8",), (), ("<f8", (2,), "x"), ("|O", ()), ("|O", (0,)), ("<U", 3), ("|V", 16),
         ("|V", [("a", "<f8"), ("b", "|O")]), ("<i8", [("a", "|O")]), ("<f8", {"names": ["a"], "formats": ["<f8"]}),
         ("<f8", ""), ("<f8", b""), ("<f8", b"\x02"), ("|i1", b"\x02"), ("<f8", "ab"),
         [("a", "<f8")], [("a", "<f8"), ("b", "|O")], [("", "|V4"), ("a", "<f8")], [("", "<f8")],
         [("", "|O")], [("", "|V4")], [("", ("|V", "|O"))], [("", "<f8", (2,))], [("", "|O", (2,))],
         [(("t", "a"), "<f8")], [(("t", "a"), "<f8"), ("t", "<i4")], [(("t", "t"), "<f8")],
         [((1, "a"), "<f8")], [(("", "a"), "<f8")], [(("t", ""), "<f8")], [(("a",), "<f8")],
         [(("a", "b", "c"), "<f8")], [("a", "<f8", (2, 3))], [("a", "|O", 3)], [("a", "<f8"), ("a", "<i4")],
         [["a", "<f8"]], ["ab"], ["a8"], ["abc"], [("a", "<f8", "x")], [("a",)], [("a", "<f8", (2,), 4)],
         [b"ab"], {"ab": 1}, {"a": "<f8"}, [("a", [("b", "|O")])], [("a", [("b", "<f8")]), ("c", "|O")],
         [("a", {"names": ["x"], "formats": ["|O"]})], [("a", ("|O", (2,)))], [],
         [("a", "S2147483647"), ("b", "S2147483647")], [("a", "S1073741824"), ("b", "S1073741824")],
         [("\u00e9", "<f8")], [("a", "<f8"), ("", "|V4"), ("b", "|O")], [("a", "<f8"), ("", "|V4")],
         [("a", "T")], [("a", "<M8[ns]"), ("b", ">m8[us]")], [("a", "<f8", ())], [("a", "<f8", [])],
         [("a", "<f8", 0)], [("", "|V0")], [("", "|V")], [("", [("x", "|O")])],
         [("a", "|O"), ("", ("|O", (2,)))], [("a", "|V8", (2,)), ("", "|V8", (2,))],
         5, None, True, 1.5, b"<f8", {"names": ["a"], "formats": ["<f8"]}, {("a", "<f8")},
         {("a", "|O")}, [("a", "<f8"), ("b", "|O", (2, 3)), ("c", [("d", "<U2"), ("e", "|O")])],
         "i4,(2,)O", [("a", "<f8"), (("title", "b"), "|O")], [(("t1", "a"), "<f8"), (("t2", "b"), "<f8")],
         [(("t1", "a"), "<f8"), (("t1", "b"), "<f8")], [(("b", "a"), "<f8"), ("b", "<f8")],
         [("a", "<f8"), (("a", "b"), "<f8")], [((None, "a"), "<f8")], [((b"t", "a"), "<f8")],
         [(("", ""), "<f8")], [("a", ("|V", "|O"))], [("", ("<f8", (2,)))]]
    return d


def call_specs():
    c = []
    for s in align_specs():
        c += [(s,), (s, True)]
    c += [([("a", "i1"), ("b", "i8")],), ([("a", "i1"), ("b", "i8")], True),
          ([("a", "i1"), ("b", [("c", "i1"), ("d", "i8")])], True),
          ({"names": ["a", "b"], "formats": ["i1", "i8"]},),
          ({"names": ["a", "b"], "formats": ["i1", "i8"]}, True),
          ({"names": ["a", "b"], "formats": ["i1", "i8"], "aligned": True},),
          ({"names": ["a", "b"], "formats": ["i1", "i8"], "aligned": 1},),
          ({"names": ["a", "b"], "formats": ["i1", "i8"], "offsets": [0, 8], "itemsize": 16},),
          ({"names": ["a", "b"], "formats": ["i1", "i8"], "offsets": [0, 4]}, True),
          ({"names": ["a", "b"], "formats": ["i1", "i8"], "offsets": [0, 8], "itemsize": 12}, True),
          ({"names": ["a", "b"], "formats": ["i1", "i8"], "offsets": [0, 8], "itemsize": 8},),
          ({"names": ["a", "b"], "formats": ["O", "i8"], "offsets": [8, 0]},),
          ({"names": ["a", "b"], "formats": ["O", "i8"], "offsets": [4, 0]},),
          ({"names": ["a", "b"], "formats": ["O", "O"], "offsets": [0, 0]},),
          ({"names": ["a", "b"], "formats": ["i4", "i4"], "offsets": [0, 0]},),
          ({"names": ["a"], "formats": ["O"], "offsets": [-1]},),
          ({"names": ["a"], "formats": ["O"], "offsets": [2**31]},),
          ({"names": ["a"], "formats": ["O"], "titles": ["t"]},),
          ({"names": ["a"], "formats": ["O"], "titles": ["a"]},),
          ({"names": ["a", "b"], "formats": ["O", "f8"], "titles": ["b", None]},),
          ({"names": ["a"], "formats": ["O"], "titles": [5]},),
          ({"names": ["a"], "formats": ["O"], "titles": {0: "t"}},),
          ({"names": ["a"], "formats": ["O"], "metadata": {"x": 1}},),
          ({"names": ["a"], "formats": ["O", "f8"]},), ({"names": ["a", "b"], "formats": ["O"]},),
          ({"names": "ab", "formats": ["i4", "i4"]},), ({"names": ("a",), "formats": ("O",)},),
          ({"names": [1], "formats": ["O"]},), ({"names": [], "formats": []},),
          ({"names": ["a"], "formats": ["O"], "itemsize": 4},),
          ({"names": ["a"], "formats": ["O"], "itemsize": 2**31},),
          ({"names": [""], "formats": ["O"]},), ({"names": ["a", "a"], "formats": ["O", "O"]},),
          ({"a": ("i4", 0), "b": ("O", 8)},), ({"a": ("i4", 4), "b": ("O", 0)},),
          ({"a": ("O", 4), "b": ("i4", 0)},), ({"a": ("O", 0), "b": ("i4", 4)}, True),
          ({"a": ("i4", 0, "t"), "t": ("i4", 0, "t")},), ({"a": ("i4", "8"), "b": ("O", 0)},),
          ({"a": ("i4", 1.5), "b": ("O", 4)},), ({"a": ("i4", -1)},), ({"a": ["i4", 0]},),
          ({"a": ("i4",)},), ({-1: ("b", "a"), "a": ("i4", 0), "b": ("O", 8)},),
          ({-1: ["a"], "a": ("O", 0)},), ({-1: None, "a": ("O", 0)},), ({-1: ("a",)},),
          ({},), ({"names": ["a"]},), ({"formats": ["O"]},),
          ("f8", False, True), ("O8", False, True), ("V16", False, True), ("U10", False, True),
          ("S5", False, True), ("M8", False, True), ("b1", False, True), ("T", False, True),
          ("f8", 0, 1), ("f8", 1, 0), ("f8", False, True, {"k": 1}), ("f8", False, False, {"k": 1}),
          ("f8", False, False, 5), ("T", False, False, {"k": 1}), ("f8", "yes"), ("f8", []),
          ("f8", None, None), (None,), ("O", [("a", "O")]), (("O", [("a", "O")]),),
          (np.float64,), (int,), (float,), (object,), (bytes,), (str,), (memoryview,), (bool,),
          (complex,), (np.void,), (np.str_,), (np.bytes_,), (np.datetime64,), (np.object_,),
          (np.longdouble,), (np.generic,), (np.integer,), (np.floating,), (np.number,),
          ([("a", np.float64), ("b", object)],), ((np.float64, (2,)),), ((bytes, 4),), ((str, 4),),
          (("i4", 2**40),), (("i4", (2**20, 2**20)),), (("i8", (2**28,)),), (("O", 2**28),),
          (("S", 2**31),), (("U", 2**29),), (("U", 2**28),), (("S", -1),), (("S", True),),
          (("V", 2.5),), (b"f8",), (b"\xff",), ("f8", False, True, {"k": 1}, 5),
          ((np.dtype("f8", metadata={"a": 1}), {"b": 2}),), ((np.dtype("f8", metadata={"a": 1}), (2,)),),
          ((np.dtype("V8", metadata={"a": 1}), "O"),), ((np.dtype("O"), np.dtype([("x", "O")])),)]
    return c


def state_base_dtypes():
    return [np.dtype(x) for x in
            ["?", "b", "B", "h", "H", "i", "I", "l", "L", "q", "Q", "e", "f", "d", "g", "F", "D", "G",
             "O", "U5", "S3", "V16", "V", "S", "U", "M8[ns]", "m8[2h]", "M8", ">i4", ">U2",
             [("a", "<f8"), ("b", "O")], [("a", "<U3"), ("b", "<i4")], [("a", "<f8", (2,))],
             [(("title", "a"), "<f8"), ("b", "O")], [("a", [("b", "O"), ("c", "<f8")])],
             ("<f8", (2, 3)), ("O", (2,)), "O,f8", "i1,i8", ("O", [("x", "O")])]] + [
        np.dtype("i1,i8", align=True), np.dtype("f8", metadata={"a": 1}),
        np.dtype({"names": ["a", "b"], "formats": ["<f8", "O"], "offsets": [0, 16], "itemsize": 32}),
        np.dtype({"names": ["a"], "formats": ["O"], "offsets": [8], "itemsize": 24}),
        np.dtype("M8[ns]", metadata={"m": 1})]


def setstate_specs():
    out = []
    for d in state_base_dtypes():
        red = d.__reduce__()
        out.append((list(red[1]), red[2]))
    dO = np.dtype("O", False, True)
    d8 = np.dtype("f8", False, True)
    dU = np.dtype("U3", False, True)
    dS = np.dtype([("x", "<f8")])
    bases = [("V16", False, True), ("V8", False, True), ("O", False, True), ("O", False, False),
             ("f8", False, True), ("f8", False, False), ("U10", False, True), ("S5", False, True),
             ("V", False, False), ("V", False, True), ([("a", "<f8")], False, True), ("V16", False, False)]
    states = [
        (3, "|", None, None, None, 32, 1, 0), (3, "|", None, None, None, 32, 1, 1),
        (3, "|", None, None, None, -1, 1, 0), (3, "|", None, None, None, 0, 1, 0x3F),
        (4, "|", None, None, None, 16, 1, 0, None), (4, "|", None, None, None, 16, 1, 0, {"m": 1}),
        (2, "|", None, None, None, 16, 1), (2, "|", None, ("a",), {"a": (dO, 0)}, 16, 1),
        (3, "|", None, ("a",), {"a": (dO, 0)}, 16, 1, 0), (3, "|", None, ("a",), {"a": (dO, 0)}, 16, 1, 63),
        (1, "|", None, {-1: ("a",), "a": (dO, 0)}, 16, 1), ("|", None, {-1: ("a",), "a": (dO, 0)}, 16, 1),
        ("|", None, None, 16, 1), ("|", None, {"a": (dO, 0)}, 16, 1), (0, "|", None, None, 8, 1),
        (3, "|", None, None, 16, 1), (2, "|", None, {-1: ("a",), "a": (dO, 0)}, 16, 1),
        (3, "<", None, None, None, 16, 1, 0), (3, ">", None, None, None, 16, 1, 0),
        (3, "=", None, None, None, 16, 1, 0), (3, "x", None, None, None, 16, 1, 0),
        (3, "", None, None, None, 16, 1, 0), (3, "ab", None, None, None, 16, 1, 0),
        (3, b"|", None, None, None, 16, 1, 0), (3, 1, None, None, None, 16, 1, 0),
        (3, "\u00e9", None, None, None, 16, 1, 0),
        (3, "|", (dO, (2,)), None, None, 16, 1, 0), (3, "|", (dO, 2), None, None, 16, 1, 0),
        (3, "|", (dO, 2.5), None, None, 16, 1, 0), (3, "|", (dO, "x"), None, None, 16, 1, 0),
        (3, "|", ("O", (2,)), None, None, 16, 1, 0), (3, "|", (dO, (True,)), None, None, 16, 1, 0),
        (3, "|", (dO,), None, None, 16, 1, 0), (3, "|", [dO, (2,)], None, None, 16, 1, 0),
        (3, "|", (dO, (2**70,)), None, None, 16, 1, 0), (3, "|", (dO, 1j), None, None, 16, 1, 0),
        (3, "|", None, None, None, 16, 1, -1), (3, "|", None, None, None, 16, 1, -128),
        (3, "|", None, None, None, 16, 1, -127), (3, "|", None, None, None, 16, 1, 2**64 + 1),
        (3, "|", None, None, None, 16, 1, 2**63), (3, "|", None, None, None, 16, 1, True),
        (3, "|", None, None, None, 16, 1, 1.0), (3, "|", None, None, None, 16, 1, -(2**64) + 1),
        (3, "|", None, None, None, 16, 1, 2**100 + 1), (3, "|", None, None, None, 16, 1, -129),
        (5, "|", None, None, None, 16, 1, 0), (-1, "|", None, None, None, 16, 1, 0),
        (True, "|", None, None, None, 16, 1), (3.0, "|", None, None, None, 16, 1, 0),
        (2**40, "|", None, None, None, 16, 1, 0),
        (3, "|", None, ["a"], {"a": (dO, 0)}, 16, 1, 1), (3, "|", None, (b"a",), {b"a": (dO, 0)}, 16, 1, 1),
        (3, "|", None, (1,), {1: (dO, 0)}, 16, 1, 1), (3, "|", None, ("a",), [("a", (dO, 0))], 16, 1, 1),
        (3, "|", None, ("a",), None, 16, 1, 1), (3, "|", None, None, {"a": (dO, 0)}, 16, 1, 1),
        (3, "|", None, (b"\xff",), {b"\xff": (dO, 0)}, 16, 1, 1), (3, "|", None, (b"a",), {}, 16, 1, 1),
        (2, "|", None, ("a",), {"a": 5}, 16, 1), (2, "|", None, ("a", "b"), {"a": 5, "b": (dO, 0)}, 16, 1),
        (2, "|", None, ("a", "b"), {"a": (d8, 0), "b": (dO, 8)}, 16, 1),
        (2, "|", None, ("a",), {"a": (d8, 0)}, 16, 1), (2, "|", None, ("a",), {"a": (d8, "x")}, 16, 1),
        (2, "|", None, ("a",), {"a": (d8, 0, "t", 4)}, 16, 1), (2, "|", None, ("a",), {"a": (dO,)}, 16, 1),
        (2, "|", None, (), {}, 16, 1), (1, "|", None, {"a": (dO, 0)}, 16, 1),
        (2, "|", None, None, None, 16, 1, 1), (2, "|", None, None, None, 16, 1, 0),
        (2, "|", None, ("a",), {"a": (dU, 0)}, 16, 1), (2, "|", None, ("a",), {"a": (dS, 0)}, 16, 1),
        (3, "|", None, None, None, 16, 1, 0, None, 5), (4, "|", None, None), (3,), (),
        (3, "|", None, None, None, "16", 1, 0), (3, "|", None, None, None, 2**63, 1, 0),
        (3, "|", None, None, None, 16, 1.5, 0), (3, "|", None, None, None, 16, -7, 0)]
    for b in bases:
        for s in states:
            out.append((list(b), s))
    dt_states = [(4, "<", None, None, None, -1, -1, 0, ({}, ("ns", 1))),
                 (4, "<", None, None, None, -1, -1, 0, ({}, ("us", 1, 1, 1))),
                 (4, "<", None, None, None, -1, -1, 0, ({}, ("xx", 1))),
                 (4, "<", None, None, None, -1, -1, 0, ({}, ("ns", 0))),
                 (4, "<", None, None, None, -1, -1, 0, ({}, ("ns", 1, 0, 1))),
                 (4, "<", None, None, None, -1, -1, 0, ({}, ("s", 1, 2, 1))),
                 (4, "<", None, None, None, -1, -1, 0, ({}, ("s", 1, 3, 1))),
                 (4, "<", None, None, None, -1, -1, 0, ({}, ("s", 1, 2, 5))),
                 (4, "<", None, None, None, -1, -1, 0, ({}, ("s", 1, 2))),
                 (4, "<", None, None, None, -1, -1, 0, ({}, (b"ns", 1))),
                 (4, "<", None, None, None, -1, -1, 0, ({}, ("ns", 1.0))),
                 (4, "<", None, None, None, -1, -1, 0, (None, ("generic", 1))),
                 (4, "<", None, None, None, -1, -1, 1, ({}, ("ns", 1))),
                 (4, "<", None, None, None, -1, -1, 0, None), (4, "<", None, None, None, -1, -1, 0, ("ns", 1)),
                 (4, "<", None, None, None, -1, -1, 0, ({}, ("ns", 1), 3)),
                 (3, "<", None, None, None, -1, -1, 0)]
    for s in dt_states:
        out.append((["M8[ns]", False, True], s))
        out.append((["m8", False, True], s))
    return out


def literal_specs():
    return ["{'a':1}", "\n{'a':1}", "\n  {'a':1}", " \t{'a':1}", "{'a':1}\n  ", "{'a':1}\n  \n",
            "{'a':1}\n  #c", "{'a':1}\r", "{'a':\r1}", "{'a':\r\n1}", "'a\\\r\nb'", "'''a\rb'''",
            "'''a\r\nb'''", "\x0c1", "\x0c 1", "1\n\x0c", "1\n\x0c ", "\\\n1", "1 \\\n  ,2", "1\\\n",
            "1\\", "1 \\ 2", "1_0", "0_0", "00", "0x_1", "0X_1F", "0o17", "0O_7", "0b101", "0B_1",
            "1__0", "1_", "0x", "0x_", "0x1_", "0b102", "0o8", "0_7", "07", "0777", "09.5", "09j", "09e1",
            "1.e5", "1.", ".5", "1e5", "1E+5", "1e-5", "1e", "1e+", "1.5j", "1J", "1E5j", "0xfj",
            "1.__class__", "1_000.000_1", "1e1_0", "1_e5", "1e400", "-1e400", "1e-400", "0.1", "-0.0",
            "-0", "+1", "+True", "-True", "--1", "-+1", "- 1", "-(1)", "-(1,)", "1+2j", "-1-2j",
            "(1+2j)", "1+(2j)", "(-1)+2j", "1 + 2", "True+1j", "1+True", "1j+2j", "1+2j+3j", "2j+1",
            "1+-2j", "-(1+2j)", "1*2", "...", ". . .", "(...)", "{...: 1}", "set()", "(set)()",
            "set ( )", "set(())", "set", "frozenset()", "x", "None", "True", "False", "__debug__",
            "{'a':1,}", "{1,}", "[1,]", "(1,)", "1,", "1,2,", "(,)", "[,]", "{,}", "()", "[]", "{}",
            "(())", "((1,2))", "[[[]]]", "{'a':1, 'a':2}", "{1:1, True:2, 1.0:3}", "{[1]:1}", "{(1,[2]):1}",
            "{(1,2):1}", "{1.0, 1}", "{0, False, 0.0, -0.0, 0j}", "{{}}", "{1:{}}", "{1, 2, 3}",
            "{'b': 1, 'a': 2}", "1 if 1 else 2", "1if 1 else 2", "'a'[0]", "'a'.x", "a.b",
            "{'a':1}\x00", "1 ;", "1\n2", "1\n\n\n", "#c\n1", "1 #c\n", "[1 #c\n, 2]", "(1\n,\n2)",
            "'a' # c", "'a\nb'", "'a\\\nb'", "r'a\\\nb'", "'''a\nb'''", "\"a\" 'b' '''c''' \"\"\"d\"\"\"",
            "''''a''''", "'''a'''''", "''", "\"\"", "''''''", "'\\''", "\"\\\"\"", "'\\\\'", "r'\\''",
            "r'\\'", "r'\\\\'", "u'a' 'b'", "b'a' 'b'", "b'a' b'b'", "'a' b'b'", "f'a'", "F'a'",
            "'a' f'b'", "rf'a'", "fr'a'", "Rb'a'", "bR'a'", "BR'a'", "U'a'", "ur'a'", "Ur'a'", "Br'a'",
            "rB'a'", "rr'a'", "bu'a'", "x'a'", "'\\x41'", "'\\x4'", "'\\x4g'", "'\\101'", "'\\7'",
            "'\\777'", "'\\400'", "'\\8'", "'\\q'", "'\\N{DASH}'", "'\\u00e9'", "'\\u00e'",
            "'\\U0001F600'", "'\\U00110000'", "'\\U0010FFFF'", "'\\a\\b\\f\\n\\r\\t\\v'",
            "b'\\a\\b\\f\\n\\r\\t\\v'", "b'\\777'", "b'\\400'", "b'\\x41'", "b'\\x4'", "b'\\u1234'",
            "b'\\N{DASH}'", "b'\\q'", "b'\xe9'", "'\xe9'", "'\u00e9\u4e2d'", "b'\\\n'", "rb'\\x'",
            "'\\\nx'", "'\\\n'", "r'\\\n'", "'\x00'", "\u00a01", "1\u00a0", "'\u00a0'", "1\x0b",
            "\ufeff1", "\u20001", "'a' 'b' 'c'", "('a' 'b')", "('a'\n'b')", "'a'\\\n'b'",
            "['a', 'b' 'c', 'd']", "{'descr': '|' 'O'}", "1" * 4300, "1" * 4301, "1_" * 2150 + "1",
            "0" * 4301, "0x" + "f" * 5000, "0o" + "7" * 100, "0o1" + "0" * 70, "0b" + "1" * 200,
            "0x123456789abcdef0123456789ABCDEF", "-0o7_7_7" + "1" * 30, "0b1" + "0" * 127, "-0b1" + "0" * 127,
            "0b1" + "0" * 128, "-0b1" + "0" * 128, "{0b1" + "0" * 130 + ": 1, 2**0: 2}",
            "{0b1" + "0" * 130 + ": 1, 0x4" + "0" * 32 + ": 2}", "{1e300: 1, 0x" + "0" * 5 + "1: 2}",
            "{1.0: 'a', 1: 'b', True: 'c', 1+0j: 'd'}", "{(1, 'a'): 1, (1.0, 'a'): 2}", "{-0.0: 1, 0: 2}",
            "{0j: 1, -0j: 2, 0.5j: 3, -0.5j: 4}", "{1.5: 1, 1.5: 2}", "{b'a': 1, 'a': 2}", "-" + "9" * 40, "9" * 39, "2**3", "~1", "not 1", "1 < 2",
            "[*a]", "{**a}", "(1 for x in y)", "lambda: 1", "`1`", "$", "?", "!", "@", "1 2", "'a' 1",
            "(1)(2)", "[1][0]", "{'a': 1}['a']", "(1, 2)[0]", "1.5e", "1.5e+j", "0j", "-0j", "0e0j",
            "0x1.5", "1L", "1l", "0x1fL", "1 L", "(1L,)", "1.5L", "'L'", "L", "(" * 99 + ")" * 99,
            "(" * 101 + ")" * 101, "[" * 99 + "]" * 99, "-" * 98 + "1", "--" * 60 + "1",
            "{1: 2,\n 3: 4}", "{\n}", "[\n]", "(\n)", "{1\n:\n2}", "{1:2\n,}", "1\t", "\t1", " 1", "  1",
            "1  ", "\n\n1\n\n", "\n\t\n1", "# only", "", " ", "\n", "\\\n", "#", "1\n#", "1\n  #c\n",
            "1\n\t#c", "1\n\x0c#c", "[1,\n  2,\n    3]", "[1,\\\n2]", "(1,\n\\\n2)", "{'a': '''\n'''}"]


def npy_v(major, minor, text, length=None):
    raw = text.encode("latin1" if major < 3 else "utf8") if isinstance(text, str) else text
    n = len(raw) if length is None else length
    fmt = "<H" if major == 1 else "<I"
    return b"\x93NUMPY" + bytes([major, minor]) + struct.pack(fmt, n) + raw


def npy_specs():
    out = []
    arrays = [np.zeros(3), np.array([1, "a", None], dtype=object), np.zeros((2, 3), order="F"),
              np.array(5), np.zeros(2, dtype=[("a", "<f8"), ("b", "O")]),
              np.zeros(2, dtype=">i4"), np.zeros(2, dtype="U3"), np.zeros(2, dtype="S4"),
              np.zeros(2, dtype="V8"), np.zeros(2, dtype="M8[ns]"), np.zeros(2, dtype="c16"),
              np.zeros(2, dtype=[(("t", "a"), "<f8"), ("b", "<i4", (2,))]),
              np.zeros(2, dtype={"names": ["a", "b"], "formats": ["<f8", "O"], "offsets": [0, 16], "itemsize": 32}),
              np.zeros(2, dtype=[("a", [("b", "O"), ("c", "<f8")])]), np.zeros(2, dtype=("<f8", (2, 2))),
              np.zeros(0), np.zeros((0, 5)), np.zeros(2, dtype="?"), np.zeros(2, dtype="f2")]
    for a in arrays:
        for version in [(1, 0), (2, 0), (3, 0)]:
            b = io.BytesIO()
            d = np.lib.format.header_data_from_array_1_0(a)
            np.lib._format_impl._write_array_header(b, d, version)
            out.append(b.getvalue())
    b = io.BytesIO()
    np.lib._format_impl._write_array_header(b, {"descr": [("\u00e9", "<f8")], "fortran_order": False, "shape": (2,)}, (3, 0))
    out.append(b.getvalue())
    H = "'fortran_order': False, 'shape': (2,)"
    texts = [
        "{'descr': '|O', " + H + ", }\n", "{\"descr\": \"|O\", \"fortran_order\": False, \"shape\": (2,)}",
        "{'descr' : '|O' , 'fortran_order':False,'shape':()}", "{'descr': '|' 'O', " + H + "}",
        "{'descr': 'object', " + H + "}", "{'descr': 'O,f8', " + H + "}",
        "{'descr': [('a','<f8'),('b',('|O',(2,)))], " + H + "}", "{'descr': '\\x4f', " + H + "}",
        "{'descr': '\\x11', " + H + "}", "{'descr': u'O8', " + H + "}", "{'descr': b'O', " + H + "}",
        "{'descr': '3O', " + H + "}", "{'descr': ('|V', '|O'), " + H + "}",
        "{'descr': '<f8', 'descr': '|O', " + H + "}", "{'descr': [(('t', 'n'), 'O')], " + H + "}",
        "{'descr': 'T', " + H + "}", "{'descr': '|O', # c\n 'fortran_order': False, 'shape': (2,)}",
        "{'descr': '''|O''', 'fortran_order': False, 'shape': (2L,)}",
        "{'descr': '|O', 'fortran_order': False, 'shape': (2L, 3L)}",
        "{'descr': '|O', 'fortran_order': False, 'shape': (2 L,)}",
        "{'descr': '|O', 'fortran_order': False, 'shape': (2L3,)}",
        "{'descr': '|O', 'fortran_order': False, 'shape': (0x2L,)}",
        "{'descr': '|O', 'fortran_order': False, 'shape': (2Lx,)}",
        "{'descr': '|O', 'fortran_order': False, 'shape': (2LL,)}",
        "{'descr': 'L', 'fortran_order': False, 'shape': (2L,)}",
        "{'descr': '|O', 'fortran_order': False, 'shape': (2L,), 'x': 1L}",
        "{'descr': '|O', 'fortran_order': False, 'shape': (2L,), }\n",
        "{'descr': '|O', 'fortran_order': False, 'shape': (2.5L,)}",
        "{'descr': '|O', 'fortran_order': False, 'shape': (2,\\\nL)}",
        "{'descr': '|O', 'fortran_order': False, 'shape': (2 # c\nL,)}",
        "{'descr': '|O', 'fortran_order': False, 'shape': (True, 2)}",
        "{'descr': '|O', 'fortran_order': False, 'shape': (2**70,)}",
        "{'descr': '|O', 'fortran_order': False, 'shape': (99999999999999999999,)}",
        "{'descr': '|O', 'fortran_order': False, 'shape': (9223372036854775807,)}",
        "{'descr': '|O', 'fortran_order': False, 'shape': (9223372036854775808,)}",
        "{'descr': '|O', 'fortran_order': False, 'shape': (-9223372036854775808,)}",
        "{'descr': '|O', 'fortran_order': False, 'shape': (-1,)}",
        "{'descr': '|O', 'fortran_order': False, 'shape': (2, -3)}",
        "{'descr': '|O', 'fortran_order': False, 'shape': (2.0,)}",
        "{'descr': '|O', 'fortran_order': False, 'shape': [2]}",
        "{'descr': '|O', 'fortran_order': False, 'shape': 2}",
        "{'descr': '|O', 'fortran_order': 0, 'shape': (2,)}",
        "{'descr': '|O', 'fortran_order': None, 'shape': (2,)}",
        "{'descr': '|O', 'fortran_order': False}", "{'descr': '|O', " + H + ", 'x': 1}",
        "{'descr': '|O', " + H + ", 1: 1}", "{b'descr': '|O', " + H + "}",
        "{'descr': 'Q8', " + H + "}", "{'descr': f'|O', " + H + "}", "{'descr': b'|' '|O', " + H + "}",
        "['descr', '|O']", "{'descr': '|O', " + H + "}\n  x", "{'descr': '|O', " + H + "}\n  ",
        "{'descr': '|O', " + H + "}\n  \n", "\n{'descr': '|O', " + H + "}", "  {'descr': '|O', " + H + "}",
        "\t{'descr': '|O', " + H + "}", "\x0c{'descr': '|O', " + H + "}", "{'descr': '|O', " + H + "}\x0c",
        "{'descr': '|O', " + H + "}" + " " * 40 + "\n", "{'descr': '|O', " + H + "}\r\n",
        "{'descr': '\xe9', " + H + "}", "{'descr': [('\xe9', '|O')], " + H + "}",
        "{'descr': [('a', '<i4'), ('', ('|V', '|O'))], " + H + "}",
        "{'descr': [('', '|V4'), ('x', '<f4')], 'fortran_order': False, 'shape': ()}",
        "{'descr': 'S10', 'fortran_order': False, 'shape': (True, 2)}",
        "{'descr': [('a', '<f8', (2,)), ('b', 'O')], " + H + "}",
        "{'descr': {'names': ['a'], 'formats': ['|O']}, " + H + "}",
        "{'descr': ['|O'], " + H + "}", "{'descr': ['aO'], " + H + "}", "{'descr': {'aO': 1}, " + H + "}",
        "{'descr': [('a', 'O', 0)], " + H + "}", "{'descr': ('O', 0), " + H + "}",
        "{'descr': ('O',), " + H + "}", "{'descr': (), " + H + "}", "{'descr': None, " + H + "}",
        "{'descr': 5, " + H + "}", "{'descr': '', " + H + "}", "{'descr': '|O', " + H + "} 1",
        "{'descr': '|O', " + H + "},", "({'descr': '|O', " + H + "})", "{'descr': '|O', " + H,
        "{'descr': ('|V', [('a', '|O')]), " + H + "}", "{'descr': 'V8', " + H + "}",
        "{'descr': [('a', '<f8')], 'fortran_order': True, 'shape': (2, 3, 4)}",
        "{'descr': '|O', 'fortran_order': False, 'shape': (1L,), 'x': 2}",
        "{'descr': '|O', 'fortran_order': False, 'shape': (2,), 'descr': '<f8'}",
    ]
    D = "{'descr': '|O', " + H + "}"
    texts += ["\x0c " + D, "  \x0c" + D, "\x0c\x0c" + D, D + "\n\t", D + "\n \x0c", D + "\r  ",
              D + "\r\n  ", D + "\n  \n  ", "\n  " + D, D + "\n  #c", D + " \\", D + "\\\n",
              D + "\n \\\n", D + "\n  )", D + "\n  1", "\t\t" + D + "\n\t", " \\\n" + D,
              "{'descr': '|O',\n 'fortran_order': False,\n 'shape': (2,)}\n   ",
              "{'descr': '|O', 'fortran_order': False, 'shape': (2L,)}\n   ",
              "\x0c {'descr': '|O', 'fortran_order': False, 'shape': (2L,)}"]
    for t in texts:
        for v in [(1, 0), (2, 0), (3, 0)]:
            out.append(npy_v(*v, t))
    out += [npy_v(1, 1, texts[0]), npy_v(0, 0, texts[0]), npy_v(4, 0, texts[0]), npy_v(2, 1, texts[0]),
            npy_v(1, 0, texts[0], length=len(texts[0]) + 1), npy_v(2, 0, texts[0], length=len(texts[0]) + 10),
            npy_v(1, 0, texts[0])[:9], npy_v(2, 0, texts[0])[:11], b"\x93NUMPY\x01", b"\x93NUMP",
            b"\x93numpy\x01\x00" + npy_v(1, 0, texts[0])[8:], npy_v(3, 0, b"{'descr': '\xff', " + H.encode() + b"}"),
            npy_v(3, 0, b"{'descr': '|O', " + H.encode() + b"}\xed\xa0\x80"),
            npy_v(3, 0, "{'descr': [('\u4e2d', '|O')], " + H + "}"),
            npy_v(3, 0, "{'descr': '|O', " + H + "}\ufeff"), npy_v(3, 0, "\ufeff{'descr': '|O', " + H + "}"),
            npy_v(1, 0, "{'descr': '|O', " + H + "}\x00"), npy_v(1, 0, "{'descr': '\\u004f', " + H + "}"),
            npy_v(1, 0, "{'descr': 'O\\\n', " + H + "}"), npy_v(1, 0, "{'descr': r'\\x4f', " + H + "}")]
    return out


def fuzz_strs(rng, n):
    alphabet = "<>|=!iufcbSUVOMmaT?0123456789[](),. snlgdLqQe/xyz\t"
    out = []
    for _ in range(n):
        k = rng.randint(1, 9)
        out.append("".join(rng.choice(alphabet) for _ in range(k)))
    return out


def fuzz_descr(rng, depth=0):
    leaf = ["<f8", "|O", "<i4", "|V4", "|V", "|S3", "<U2", "O", "", "T", "M8[s]", "3O", "O,f8", "|b1"]
    r = rng.random()
    if depth > 2 or r < 0.35:
        return rng.choice(leaf)
    if r < 0.55:
        shape = rng.choice([(2,), (), 3, (0,), [2], -1, "O", None, (2, 1)])
        return (fuzz_descr(rng, depth + 1), shape)
    fields = []
    for i in range(rng.randint(0, 3)):
        name = rng.choice(["a", "b", "", ("t", "a"), ("a", "b"), ("", "c"), "f0", "f1"])
        f = (name, fuzz_descr(rng, depth + 1))
        if rng.random() < 0.3:
            f = f + (rng.choice([(2,), 2, (), (1, 2)]),)
        fields.append(f)
    return fields


def build():
    import random

    rng = random.Random(1234)
    cases = [{"kind": "str", "spec": s} for s in fuzz_strs(rng, 600)]
    cases += [{"kind": "descr", "text": repr(fuzz_descr(rng))} for _ in range(400)]
    cases += [{"kind": "str", "spec": s} for s in str_specs()]
    cases += [{"kind": "call", "args": [enc(d), enc(True)]} for d in
              [fuzz_descr(rng) for _ in range(200)] + fuzz_strs(rng, 100)]
    cases += [{"kind": "descr", "text": repr(d)} for d in descr_specs()]
    cases += [{"kind": "call", "args": [enc(a) for a in args]} for args in call_specs()]
    cases += [{"kind": "setstate", "args": [enc(a) for a in args], "state": enc(st)}
              for args, st in setstate_specs()]
    cases += [{"kind": "literal", "text": t} for t in literal_specs()]
    cases += [{"kind": "npy", "bytes": b.hex()} for b in npy_specs()]
    results = run_all(cases)
    for c, r in zip(cases, results):
        c["numpy"] = r
    meta = {"numpy": np.__version__, "python": sys.version.split()[0], "platform": sys.platform}
    OUT.write_text(json.dumps({"generator": meta, "cases": cases}, indent=0, ensure_ascii=True) + "\n")
    counts = {}
    for c in cases:
        counts[c["kind"]] = counts.get(c["kind"], 0) + 1
    print(f"wrote {OUT}: {len(cases)} cases {counts}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]))
    else:
        build()
