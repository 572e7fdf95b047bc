#!/usr/bin/env python3
"""Structure-aware mutation fuzzer for picklegate's container and pickle readings.

Every case is a file in which a CANARY global (`os.system`, `builtins.exec`, `posix.system`, ...)
is planted where some real loader looks: zip local/central
records, end-of-central-directory records, zip64 records and locators, tar headers (pax `x`/`g`,
GNU long names, checksum and size encodings), `.npy` headers, joblib NumpyArrayWrapper dtypes and
padding, compressed streams, protocol 0/1 text forms, polyglots. Each case is then checked by the
loader-differential oracle (tests/oracle/_audit.py): the real loaders run under an audit hook
that aborts at the first non-harmless `find_class` (so the canary is never called), and
picklegate must either refuse the file or report every global each loader asked for.

    python3 tools/mutate.py --seed 1 --cases 3000 --out /tmp/pg-cases
    python3 tools/mutate.py --seed 7 --hours 8 --out /tmp/pg-cases --keep-disagreements tests/fixtures/reproducers

Deterministic: case i of seed s depends only on (s, i) and the seed files (the fixtures, plus
tiny seeds made here with the real libraries). Families take turns (case i is family
i mod #families), so every family gets cases. Nothing is ever unpickled in this process.

A disagreement is minimised structurally: the same family, variant and mutation knobs are
replayed on the smallest seeds and the simplest canary, and the smallest rendering that still
shows the same (loader, planted global) disagreement is kept; with --keep-disagreements DIR it
is written there with a manifest.json entry (file, loader, unwrap, global, family, description).
One reproducer per (family, variant, loader)."""

import argparse
import bz2
import hashlib
import json
import lzma
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
sys.path.insert(0, str(REPO / "tests" / "oracle"))
import _audit  # noqa: E402

# Canaries are real sinks, importable on this platform: the audit hook aborts at find_class,
# before the module is even imported, so none of them runs. (A module that does not exist is no
# canary: its import fails before any code runs, and the oracle does not count such names.)
CANARIES = [("os", "system"), ("builtins", "exec"), ("posix", "system"), ("subprocess", "getoutput"),
            ("builtins", "eval"), ("pty", "spawn")]
SIMPLE_CANARY = ("os", "system")


# ========================================================================================
# Pickle assembly (bytes only; nothing here unpickles)
# ========================================================================================
def p_str(s, proto):
    """Push a str."""
    b = s.encode("utf-8")
    if proto >= 4 and len(b) < 256:
        return b"\x8c" + bytes([len(b)]) + b
    if proto >= 1:
        return b"X" + struct.pack("<I", len(b)) + b
    return b"V" + s.encode("raw_unicode_escape") + b"\n"


def p_int(n, proto):
    if proto >= 1 and 0 <= n < 256:
        return b"K" + bytes([n])
    if proto >= 1 and -2**31 <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    return b"I%d\n" % n


def p_global(m, n, proto, stack=None):
    if stack is None:
        stack = proto >= 4
    if stack:
        return p_str(m, proto) + p_str(n, proto) + b"\x93"
    return b"c" + m.encode() + b"\n" + n.encode() + b"\n"


def canary_call(target, proto, arg="echo pgcanary"):
    """Ops (no PROTO, no STOP) that push target(arg)."""
    m, n = target
    if proto == 0:
        return b"c%s\n%s\n(%stR" % (m.encode(), n.encode(), p_str(arg, 0))
    if proto == 1:
        return p_global(m, n, 1) + b"(" + p_str(arg, 1) + b"tR"
    return p_global(m, n, proto) + p_str(arg, proto) + b"\x85R"


def canary_pickle(target, proto, frame=False, wrap=False):
    """A complete pickle that calls target. wrap: the call is a value in a dict."""
    body = canary_call(target, proto)
    if wrap:
        body = (b"}" if proto >= 1 else b"(d") + p_str("weights", proto) + body + b"s"
    if proto >= 2:
        head = b"\x80" + bytes([proto])
        if frame and proto >= 4:
            return head + b"\x95" + struct.pack("<Q", len(body) + 1) + body + b"."
        return head + body + b"."
    return body + b"."


def gname(target):
    return "%s.%s" % target


# ========================================================================================
# Zip records (APPNOTE 4.3): every field settable, so local and central can disagree
# ========================================================================================
def zlocal(name, data, method=0, crc=None, csize=None, usize=None, flags=0, extra=b"", version=20):
    name = name.encode() if isinstance(name, str) else name
    crc = zlib.crc32(data) & 0xFFFFFFFF if crc is None else crc
    return struct.pack("<IHHHHHIIIHH", 0x04034B50, version, flags, method, 0, 0x21, crc,
                       len(data) if csize is None else csize, len(data) if usize is None else usize,
                       len(name), len(extra)) + name + extra


def zcentral(name, method, crc, csize, usize, offset, flags=0, extra=b"", comment=b"", version=20,
             disk=0):
    name = name.encode() if isinstance(name, str) else name
    return struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, version, flags, method, 0, 0x21, crc,
                       csize, usize, len(name), len(extra), len(comment), disk, 0, 0, offset) + name + extra + comment


def zeocd(count, cd_size, cd_offset, comment=b"", count_disk=None):
    return struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count if count_disk is None else count_disk, count,
                       cd_size, cd_offset, len(comment)) + comment


def z64eocd(count, cd_size, cd_offset):
    return struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, cd_size, cd_offset)


def z64locator(eocd64_offset, disks=1):
    return struct.pack("<IIQI", 0x07064B50, 0, eocd64_offset, disks)


def deflate(data):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


class Zip:
    """Append-only zip writer: members go where they are added; central directories and end
    records are written explicitly (several if wanted) with whatever offsets the caller says."""

    def __init__(self, prefix=b""):
        self.buf = bytearray(prefix)
        self.base = len(prefix)

    def member(self, name, data, method=0, local_name=None, local_extra=b"", local_method=None,
               local_sizes=None, flags=0, descriptor=False, raw=None):
        """Writes local header + data; returns the central-directory fields for it."""
        body = raw if raw is not None else (deflate(data) if method == 8 else
                                            bz2.compress(data) if method == 12 else
                                            _zip_lzma(data) if method == 14 else data)
        crc = zlib.crc32(data) & 0xFFFFFFFF
        off = len(self.buf)
        lm = method if local_method is None else local_method
        if descriptor:
            flags |= 0x08
            hdr = zlocal(local_name or name, body, lm, 0, 0, 0, flags, local_extra)
        else:
            cs, us = local_sizes if local_sizes else (len(body), len(data))
            hdr = zlocal(local_name or name, body, lm, crc, cs, us, flags, local_extra)
        self.buf += hdr + body
        if descriptor:
            self.buf += struct.pack("<IIII", 0x08074B50, crc, len(body), len(data))
        return {"name": name, "method": method, "crc": crc, "csize": len(body), "usize": len(data),
                "offset": off, "flags": flags}

    def central(self, entries, shift=0):
        """Writes a central directory; returns (offset, size). shift is added to every local
        header offset (to write offsets relative to a later start)."""
        off = len(self.buf)
        for e in entries:
            self.buf += zcentral(e["name"], e["method"], e["crc"], e["csize"], e["usize"],
                                 e["offset"] + shift, e.get("flags", 0), e.get("cextra", b""))
        return off, len(self.buf) - off

    def raw(self, b):
        off = len(self.buf)
        self.buf += b
        return off

    def bytes(self):
        return bytes(self.buf)


def _zip_lzma(data):
    # zipfile's method 14: 2-byte version, 2-byte props size, LZMA1 props, raw LZMA1 stream
    filt = {"id": lzma.FILTER_LZMA1, "dict_size": 1 << 16}
    props = lzma._encode_filter_properties(filt)
    c = lzma.LZMACompressor(lzma.FORMAT_RAW, filters=[lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)])
    return struct.pack("<BBH", 9, 4, len(props)) + props + c.compress(data) + c.flush()


def simple_zip(members, comment=b"", prefix=b"", adjust=True):
    """members: [(name, data, method)]. adjust=False keeps offsets relative to the zip's own
    start when a prefix is present (what `cat prefix x.zip` gives)."""
    z = Zip(prefix)
    ents = [z.member(n, d, m) for n, d, m in members]
    shift = 0 if adjust else -len(prefix)
    off, size = z.central(ents, shift)
    z.raw(zeocd(len(ents), size, off + shift, comment))
    return z.bytes()


# ========================================================================================
# Tar headers (POSIX ustar / pax / GNU), every field settable
# ========================================================================================
def tar_octal(n, width):
    return (b"%0*o" % (width - 1, n)) + b"\0"


def tar_header(name, size, typeflag=b"0", *, size_field=None, chksum="unsigned", magic=b"ustar\x0000",
               name_field=None, linkname=b"", mode=0o644, mtime=0, extra_high=False, prefix=b""):
    name = name.encode() if isinstance(name, str) else name
    h = bytearray(512)
    nf = name_field if name_field is not None else name[:100]
    h[0:len(nf)] = nf
    h[100:108] = tar_octal(mode, 8)
    h[108:116] = tar_octal(0, 8)
    h[116:124] = tar_octal(0, 8)
    h[124:136] = size_field if size_field is not None else tar_octal(size, 12)
    h[136:148] = tar_octal(mtime, 12)
    h[156:157] = typeflag
    h[157:157 + len(linkname)] = linkname
    h[257:257 + len(magic)] = magic
    h[265:269] = b"root" if magic.startswith(b"ustar") else b"\0\0\0\0"
    h[297:301] = b"root" if magic.startswith(b"ustar") else b"\0\0\0\0"
    if prefix:
        h[345:345 + len(prefix)] = prefix
    if extra_high:  # bytes >= 0x80 make the signed and the unsigned checksums differ
        h[500:512] = b"\xff" * 12
    h[148:156] = b" " * 8
    if chksum == "unsigned":
        s = sum(h)
    elif chksum == "signed":
        s = sum(struct.unpack("512b", bytes(h)))
    else:
        s = chksum
    if isinstance(s, int):
        h[148:156] = b"%06o\0 " % (s & 0o777777)
    else:
        h[148:156] = s
    return bytes(h)


def tar_pad(data):
    return data + b"\0" * (-len(data) % 512)


def pax_payload(records):
    out = b""
    for k, v in records:
        v = v if isinstance(v, bytes) else str(v).encode()
        rec = b" " + k.encode() + b"=" + v + b"\n"
        n = len(rec) + 1
        while len(str(n)) + len(rec) != n:
            n = len(str(n)) + len(rec)
        out += str(n).encode() + rec
    return out


def tar_member(name, data, **kw):
    return tar_header(name, len(data), **kw) + tar_pad(data)


def tar_end():
    return b"\0" * 1024


def base256(n, width=12):
    return b"\x80" + n.to_bytes(width - 1, "big")


# ========================================================================================
# .npy
# ========================================================================================
def npy(header, data, version=1, pad_to=64, hlen_delta=0, encoding=None):
    enc = encoding or ("utf-8" if version == 3 else "latin1")
    h = header.encode(enc)
    pre = 6 + 2 + (2 if version == 1 else 4)
    if pad_to:
        total = pre + len(h) + 1
        h = h + b" " * (-total % pad_to) + b"\n"
    hl = len(h) + hlen_delta
    ln = struct.pack("<H", hl) if version == 1 else struct.pack("<I", hl)
    return b"\x93NUMPY" + bytes([version, 0]) + ln + h + data


# ========================================================================================
# Compression frames
# ========================================================================================
def gzip_member(data, fname=None, fextra=None, fcomment=None, fhcrc=False, mtime=0):
    flags = 0
    hdr_tail = b""
    if fextra is not None:
        flags |= 4
        hdr_tail += struct.pack("<H", len(fextra)) + fextra
    if fname is not None:
        flags |= 8
        hdr_tail += fname + b"\0"
    if fcomment is not None:
        flags |= 16
        hdr_tail += fcomment + b"\0"
    hdr = b"\x1f\x8b\x08" + bytes([flags | (2 if fhcrc else 0)]) + struct.pack("<I", mtime) + b"\x00\xff" + hdr_tail
    if fhcrc:
        hdr += struct.pack("<H", zlib.crc32(hdr) & 0xFFFF)
    return hdr + deflate(data) + struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)


def zstd_frame(data):
    import zstandard
    return zstandard.ZstdCompressor(level=3).compress(data)


def zstd_skippable(payload, n=0):
    return struct.pack("<II", 0x184D2A50 + n, len(payload)) + payload


def lz4_frame(data):
    import lz4.frame
    return lz4.frame.compress(data)


def compress(kind, data):
    if kind == "gzip":
        return gzip_member(data)
    if kind == "bz2":
        return bz2.compress(data)
    if kind == "xz":
        return lzma.compress(data, format=lzma.FORMAT_XZ)
    if kind == "lzma":
        return lzma.compress(data, format=lzma.FORMAT_ALONE)
    if kind == "zlib":
        return zlib.compress(data)
    if kind == "zstd":
        return zstd_frame(data)
    if kind == "lz4":
        return lz4_frame(data)
    raise ValueError(kind)


# ========================================================================================
# Seeds
# ========================================================================================
SEED_SCRIPT = r'''
import io, os, sys, pickle
out = sys.argv[1]
import numpy as np, joblib, torch
torch.manual_seed(0)
sd = {"w": torch.zeros(2, 2), "b": torch.arange(2, dtype=torch.float32)}
torch.save(sd, os.path.join(out, "tiny.pt"))
torch.save({}, os.path.join(out, "empty.pt"))
np.save(os.path.join(out, "f8.npy"), np.arange(3.0))
np.savez(os.path.join(out, "two.npz"), a=np.arange(3), o=np.array([1, 2], dtype=object))
# dtype pickles (protocol 2, BINPUT memo) for hand-built joblib wrappers
dts = {}
for spec in ["f8", "d", "<i4", "O", "V8", "S3", "U2", "?", "c16", "M8[ns]", "i2"]:
    dts[spec] = pickle.dumps(np.dtype(spec), protocol=2).hex()
dts["[('a','O')]"] = pickle.dumps(np.dtype([("a", "O")]), protocol=2).hex()
dts["[('a','<f8'),('b','O')]"] = pickle.dumps(np.dtype([("a", "<f8"), ("b", "O")]), protocol=2).hex()
dts["(O,(2,))"] = pickle.dumps(np.dtype(("O", (2,))), protocol=2).hex()
SPECS = ["d", "f8", "<f8", "float64", "double", "complex128", "c16", "<i8", "i4", "S16", "U4", "V16", "M8[ns]",
         "?", "b1", "float16", "e", "g", "q", "l", "B", "u2", ">f4", "V3", "a5"]
for spec in SPECS:
    dts.setdefault(spec, pickle.dumps(np.dtype(spec), protocol=2).hex())
import json
meta = {"dtypes": dts, "itemsize": {k: np.dtype(k).itemsize for k in SPECS},
        "joblib_max_len": __import__("joblib.numpy_pickle_compat").numpy_pickle_compat._MAX_LEN}
with open(os.path.join(out, "meta.json"), "w") as f:
    json.dump(meta, f)
'''

BENIGN_PICKLES = ["data_p0.pkl", "data_p1.pkl", "data_p2.pkl", "data_p3.pkl", "data_p4.pkl", "data_p5.pkl",
                  "strings_p1.pkl", "recursive_p0.pkl", "recursive_p4.pkl", "scalar_int_p0.pkl",
                  "numpy_float32_p2.pkl", "numpy_int64_p5.pkl", "numpy_object_p5.pkl", "numpy_structured_p2.pkl",
                  "empty_dict_p5.pkl", "multiframe_p4.pkl", "bytes_p3.pkl"]


class Seeds:
    """Seed material: fixture files plus tiny files made with the real libraries (in a
    subprocess with the same interpreter; cached under DIR/seeds)."""

    def __init__(self, out, python=None):
        d = Path(out) / "seeds"
        if not (d / "meta.json").exists():
            d.mkdir(parents=True, exist_ok=True)
            env = dict(os.environ, PYTHONHASHSEED="0")
            subprocess.run([python or sys.executable, "-c", SEED_SCRIPT, str(d)], check=True, env=env,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.meta = json.loads((d / "meta.json").read_text())
        self.pickles = [(FIXTURES / "benign" / n).read_bytes() for n in BENIGN_PICKLES
                        if (FIXTURES / "benign" / n).exists()]
        self.tiny_pickles = [b"}.", b"\x80\x02}q\x00.", b"(dp0\n.", b"\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00]\x94."]
        self.torch_zips = [self._members(d / "tiny.pt"), self._members(d / "empty.pt")]
        for n in ("torch_zip_state_dict.pt", "torch_linear.pt"):
            if (FIXTURES / "containers" / n).exists():
                self.torch_zips.append(self._members(FIXTURES / "containers" / n))
        self.tiny_torch = self._members(d / "empty.pt")
        self.npz = [self._members(d / "two.npz")]
        for n in ("numpy_savez.npz", "numpy_mixed.npz"):
            if (FIXTURES / "containers" / n).exists():
                self.npz.append(self._members(FIXTURES / "containers" / n))
        self.npy_f8 = (d / "f8.npy").read_bytes()
        self.dtypes = {k: bytes.fromhex(v) for k, v in self.meta["dtypes"].items()}

    @staticmethod
    def _members(path):
        with zipfile.ZipFile(path) as z:  # reading a zip's members; nothing is unpickled
            return [(i.filename, z.read(i.filename)) for i in z.infolist()]


def torch_members_with(members, data_pkl, prefix=None):
    """The torch zip's members with data.pkl replaced (the archive prefix kept or renamed)."""
    out = []
    for n, d in members:
        head, _, tail = n.partition("/")
        if prefix is not None:
            n = prefix + "/" + tail
        out.append((n, data_pkl if tail == "data.pkl" else d))
    return out


def arch_of(members):
    return members[0][0].partition("/")[0]


# ========================================================================================
# Cases and families
# ========================================================================================
class Case:
    def __init__(self, family, variant, name, data, canary, desc, extra=(), knobs=None):
        self.family, self.variant, self.name, self.data = family, variant, name, data
        self.canary = canary          # ["module.name", ...] planted
        self.desc = desc
        self.extra = list(extra)      # [{"loader", "unwrap"}] on top of the universal loaders
        self.knobs = knobs or {}
        self.index = -1
        self.inner = None             # nested family: the case inside the container
        self.rendering = (False, False)  # (small seeds, simple canary)


class Knobs:
    """Every random choice a family makes, by name. Replaying a case with the recorded knobs and
    small=True renders the same mutation on the smallest seeds (and, with simple=True, the
    simplest canary): that is the structural minimisation."""

    def __init__(self, rng, seeds, forced=None, small=False, simple=False):
        self.rng, self.seeds, self.forced, self.small, self.simple = rng, seeds, forced or {}, small, simple
        self.rec = {}
        self.smallest = {}  # numeric knob -> its smallest option (tried by minimise)

    def pick(self, name, options):
        if name in self.forced and self.forced[name] in options:
            v = self.forced[name]
        else:
            v = options[self.rng.randrange(len(options))]
        self.rec[name] = v
        if all(isinstance(o, int) and not isinstance(o, bool) for o in options):
            self.smallest[name] = min(options)
        return v

    def randint(self, name, a, b):
        v = self.forced.get(name)
        v = self.rng.randint(a, b) if v is None else min(max(v, a), b)
        self.rec[name] = v
        self.smallest[name] = a
        return v

    def canary(self):
        target = self.pick("canary", [list(c) for c in CANARIES])
        proto = self.pick("proto", [0, 1, 2, 3, 4, 5])
        frame = self.pick("frame", [False, True])
        wrap = self.pick("wrap", [False, False, True])
        if self.simple:
            return SIMPLE_CANARY, 0, False, False
        return tuple(target), proto, frame and proto >= 4, wrap

    def benign_pickle(self, max_len=None):
        i = self.randint("benign", 0, len(self.seeds.pickles) - 1)
        p = self.seeds.tiny_pickles[0] if self.small else self.seeds.pickles[i]
        return p if max_len is None or len(p) <= max_len else self.seeds.tiny_pickles[0]

    def torch_members(self):
        i = self.randint("torchseed", 0, len(self.seeds.torch_zips) - 1)
        return self.seeds.tiny_torch if self.small else self.seeds.torch_zips[i]

    def npz_members(self):
        i = self.randint("npzseed", 0, len(self.seeds.npz) - 1)
        return [("a.npy", self.seeds.npy_f8)] if self.small else self.seeds.npz[i]


FAMILIES = {}


def family(name):
    def deco(fn):
        FAMILIES[name] = fn
        return fn
    return deco


# ---- pickle text forms (protocol 0/1) and opcode-level divergences ----------------------
@family("pickle-text")
def fam_pickle_text(K):
    target, proto, frame, wrap = K.canary()
    variant = K.pick("variant", ["nul-int", "put-huge", "get-huge", "unterminated-global", "long-first-arg",
                                 "underscore-float", "hex-int", "space-int", "crlf-int", "long-suffix",
                                 "mark-unclosed", "pop-mark-prefix", "proto-late", "inst", "binput-huge-text"])
    m, n = target
    call0 = canary_call(target, 0)
    if variant == "nul-int":       # _pickle.c's strtol accepts a NUL before the newline
        data = b"I5\x00\n0" + call0 + b"."
        desc = "INT `I5\\x00\\n` (_pickle.c accepts a NUL-terminated number, pickle.py raises), POP, then the canary"
    elif variant == "put-huge":    # pickle.py memoizes any int; _pickle.c needs a Py_ssize_t
        data = b"(lp9223372036854775808\n0" + call0 + b"."
        desc = "PUT 2**63 (pickle.py accepts it; _pickle.c raises), then the canary"
    elif variant == "get-huge":
        data = b"(lp18446744073709551616\n0g18446744073709551616\n0" + call0 + b"."
        desc = "PUT/GET 2**64 (pickle.py only), then the canary"
    elif variant == "binput-huge-text":
        data = b"(lp-1\n0" + call0 + b"."
        desc = "PUT -1 (pickle.py memoizes negative indices; _pickle.c raises), then the canary"
    elif variant == "unterminated-global":   # pickle.py strips the last char of an unterminated line
        data = b"c" + m.encode() + b"\n" + n.encode() + b"X"
        desc = "GLOBAL whose name is the unterminated last line `%sX` (pickle.py imports `%s`)" % (n, gname(target))
    elif variant == "long-first-arg":
        size = (1 << 20) + K.pick("extra", [1, 7, 4096])
        kind = K.pick("kind", ["V", "S", "BINUNICODE", "BINBYTES8", "BINUNICODE8", "FRAME"])
        filler = b"a" * size
        if kind == "V":
            first = b"V" + filler + b"\n0"
        elif kind == "S":
            first = b"S'" + filler + b"'\n0"
        elif kind == "BINUNICODE":
            first = b"X" + struct.pack("<I", size) + filler + b"0"
        elif kind == "BINBYTES8":
            first = b"\x80\x04\x8e" + struct.pack("<Q", size) + filler + b"0"
        elif kind == "BINUNICODE8":
            first = b"\x80\x04\x8d" + struct.pack("<Q", size) + filler + b"0"
        else:
            first = b"\x80\x04\x95" + struct.pack("<Q", size) + b"\x8e" + struct.pack("<Q", size - 10) + filler[:size - 10] + b"0"
        tail = canary_call(target, 4 if first.startswith(b"\x80\x04") else 0) + b"."
        data = first + tail
        desc = "first opcode (%s) has a %d-byte argument, then POP and the canary" % (kind, size)
        variant = variant + "-" + kind
    elif variant == "underscore-float":  # float('1_0') works in pickle.py, not in _pickle.c
        data = b"F1_0\n0" + call0 + b"."
        desc = "FLOAT `1_0` (pickle.py accepts, _pickle.c raises ValueError, so pandas retries with pickle.py)"
    elif variant == "hex-int":      # _pickle.c: strtol(base 0) takes 0x10; pickle.py int() does not
        data = b"I0x10\n0" + call0 + b"."
        desc = "INT `0x10` (_pickle.c's strtol base 0 accepts, pickle.py raises), then the canary"
    elif variant == "space-int":
        data = b"I 5\n0L 7L\n0" + call0 + b"."
        desc = "INT/LONG with leading spaces, then the canary"
    elif variant == "crlf-int":     # pickle.py's int() strips the \r, _pickle.c's strtol stops at it
        data = b"I5\r\n0" + call0 + b"."
        desc = "INT `5\\r\\n` (pickle.py accepts, _pickle.c raises ValueError), then the canary"
    elif variant == "long-suffix":
        data = b"L5L\n0I01\n0I00\n0" + call0 + b"."
        desc = "LONG with L suffix and INT bool forms, then the canary"
    elif variant == "mark-unclosed":
        data = b"(" + call0 + b"."
        desc = "an unclosed MARK before the canary"
    elif variant == "pop-mark-prefix":
        data = b"(N1" * K.randint("reps", 1, 50) + call0 + b"."
        desc = "MARK NONE POP_MARK runs before the canary"
    elif variant == "proto-late":
        data = b"N0" * K.randint("reps", 1, 20) + b"\x80\x04" + canary_call(target, 4) + b"."
        desc = "PROTO after other opcodes"
    else:
        data = b"(i" + m.encode() + b"\n" + n.encode() + b"\n" + p_str("echo", 0) + b"."
        desc = "INST (MARK, `i module\\nname`) instead of GLOBAL + REDUCE"
        data = b"(" + p_str("echo", 0) + b"i" + m.encode() + b"\n" + n.encode() + b"\n."
    return Case("pickle-text", variant, "model.pkl", data, [gname(target)], desc)


# ---- polyglots ---------------------------------------------------------------------------
@family("polyglot")
def fam_polyglot(K):
    target, proto, frame, wrap = K.canary()
    variant = K.pick("variant", ["tar-name", "tar-name-gnu", "safetensors", "zip-tail", "npz-tail", "torchzip-tail",
                                 "empty-eocd-tail", "lfs-text", "pickle-then-tar", "zip-tail-adjusted"])
    canary0 = canary_pickle(target, 0)
    if variant.startswith("tar-name"):
        # the tar header's name field IS a protocol 0 pickle (pickle.load reads it from byte 0;
        # tarfile sees one member named like it, whose data is a benign pickle)
        benign = K.benign_pickle()
        magic = b"ustar  \0" if variant.endswith("gnu") else b"ustar\x0000"
        data = tar_header(canary0, len(benign), name_field=canary0[:100], magic=magic) + tar_pad(benign) + tar_end()
        name = K.pick("name", ["model.pkl", "model.tar", "model.bin"])
        desc = "a tar whose first header's name field is a pickle calling %s; the member's data is benign" % gname(target)
    elif variant == "safetensors":
        # u64 LE header length, then `{`: a SHORT_BINUNICODE opcode (0x8c) swallows bytes 2..L+1
        L = K.pick("L", [0x10, 0x20, 0x40])
        hdr_len = 0x8C + L * 256
        text = (b"\0" * 6 + b'{"__metadata__":{"format":"pt"},"x":"' + b"a" * 64)[:L]
        body = b"\x8c" + bytes([L]) + text + b"0" + canary_call(target, 4) + b"."
        data = body + b" " * max(0, 8 + hdr_len - len(body)) + b"\0" * 16
        name = K.pick("name", ["model.safetensors", "model.bin", "model.pkl"])
        desc = "starts like safetensors (u64 header length %d, then `{`) but is a pickle calling %s" % (hdr_len, gname(target))
    elif variant in ("zip-tail", "npz-tail", "torchzip-tail", "zip-tail-adjusted"):
        head = canary_pickle(target, proto, frame)
        if variant in ("zip-tail", "zip-tail-adjusted"):
            z = simple_zip([("model.pkl", K.benign_pickle(), 0)], prefix=head, adjust=variant.endswith("adjusted"))
        elif variant == "npz-tail":
            z = simple_zip([("a.npy", K.seeds.npy_f8, 0)], prefix=head)
        else:
            z = simple_zip([(n, d, 0) for n, d in K.torch_members()], prefix=head)
        data = z
        name = K.pick("name", ["model.pkl", "model.zip", "model.npz", "model.pt"])
        desc = "a pickle calling %s followed by a complete benign zip (%s)" % (gname(target), variant)
    elif variant == "empty-eocd-tail":
        data = canary_pickle(target, proto, frame) + zeocd(0, 0, 0)
        name = "model.pkl"
        desc = "a pickle calling %s followed by an empty zip's end record" % gname(target)
    elif variant == "lfs-text":
        oid = hashlib.sha256(b"x").hexdigest()
        data = (b"Vversion https://git-lfs.github.com/spec/v1\n0Void sha256:" + oid.encode() + b"\n0Vsize 12\n0"
                + canary_call(target, 0) + b".")
        name = "model.bin"
        desc = "protocol 0 pickle whose strings spell a Git LFS pointer, calling %s" % gname(target)
    else:
        head = canary_pickle(target, proto, frame)
        data = head + b"\0" * (-len(head) % 512) + tar_member("model.pkl", K.benign_pickle()) + tar_end()
        name = "model.pkl"
        desc = "a pickle calling %s, NUL padding, then a benign tar" % gname(target)
    return Case("polyglot", variant, name, data, [gname(target)], desc)


# ---- zip: torch zips, npz and pandas zips through local/central/end records ---------------
@family("zip")
def fam_zip(K):
    target, proto, frame, wrap = K.canary()
    mal = canary_pickle(target, proto, frame, wrap)
    kind = K.pick("kind", ["torch", "npz", "pandas"])
    variant = K.pick("variant", [
        "comment-fake-eocd", "fake-eocd-before-real", "two-archives-abs", "two-archives-rel", "prefix-junk",
        "zip64-locator-to-mal", "zip64-before-locator-mal", "zip64-no-ffff", "cd-count-short-mal-last",
        "cd-count-short-mal-first", "cd-split", "local-extra-hides", "local-name-longer", "method-mismatch",
        "descriptor", "bzip2-method", "lzma-method", "cd-zip64-extra-offset", "eocd-comment-len-lies", "case-name",
        "local-sizes-lie", "eocd-first"])
    if kind == "torch":
        base = K.torch_members()
        arch = arch_of(base)
        hot = arch + "/data.pkl"
        good = list(base)
        bad = torch_members_with([(n, d) for n, d in base if n.endswith(("/data.pkl", "/version", "/byteorder"))], mal)
        name = K.pick("name", ["model.pt", "pytorch_model.bin", "model.ckpt"])
    elif kind == "npz":
        good = list(K.npz_members())
        hot = "x.npy"
        bad = [(hot, npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", mal))]
        name = "arrays.npz"
    else:  # pandas: .zip extension, exactly one member; victims also extract it by name
        hot = "frame.pkl"
        good = [(hot, K.benign_pickle())]
        bad = [(hot, mal)]
        name = "frame.pkl.zip"
    extra = [{"loader": "pickle_loads", "unwrap": ["zip:" + hot]}] if kind != "npz" else []
    mdata = dict(bad)[hot]
    rest = [(n, d) for n, d in good if n != hot]   # the single-directory variants: good minus hot, plus mal hot

    def put(z, members, **kw):
        return [z.member(n, d, 0, **kw) for n, d in members]

    def cd_bytes(ents, shift=0):
        return b"".join(zcentral(e["name"], e["method"], e["crc"], e["csize"], e["usize"], e["offset"] + shift,
                                 e.get("flags", 0), e.get("cextra", b"")) for e in ents)

    def single(z, e_hot, ents):
        cd_off, cd_size = z.central(ents + [e_hot])
        z.raw(zeocd(len(ents) + 1, cd_size, cd_off))

    z = Zip()
    if variant == "comment-fake-eocd":
        # the benign archive's end record has a comment holding a second directory and end
        # record for the malicious member: backward searches (zipfile, miniz) find that one
        eg, eb = put(z, good), put(z, bad)
        cd_off, cd_size = z.central(eg)
        cd2 = cd_bytes(eb)
        comment = cd2 + zeocd(len(eb), len(cd2), len(z.buf) + 22)
        z.raw(zeocd(len(eg), cd_size, cd_off, comment))
        desc = "benign directory + end record whose comment holds a second directory and end record for the malicious member"
    elif variant == "fake-eocd-before-real":
        eb = put(z, bad)
        o, s = z.central(eb)
        z.raw(zeocd(len(eb), s, o))
        eg = put(z, good)
        o, s = z.central(eg)
        z.raw(zeocd(len(eg), s, o))
        desc = "malicious member, directory and end record first; then a benign archive with the last end record"
    elif variant in ("two-archives-abs", "two-archives-rel"):
        eg = put(z, good)
        o, s = z.central(eg)
        z.raw(zeocd(len(eg), s, o))
        start = len(z.buf)
        eb = put(z, bad)
        shift = -start if variant.endswith("rel") else 0
        o, s = z.central(eb, shift)
        z.raw(zeocd(len(eb), s, o + shift))
        desc = "a complete benign archive followed by a complete malicious one (%s offsets)" % variant.rsplit("-", 1)[1]
    elif variant == "prefix-junk":
        jk = K.pick("junk", ["nul", "mz", "pickle"])
        junk = {"nul": b"\0" * 64, "mz": b"MZ" + bytes(range(256)) * 2, "pickle": K.benign_pickle()}[jk]
        z = Zip(junk)
        eb = put(z, bad)
        adjust = K.pick("adjust", [True, False])
        shift = 0 if adjust else -len(junk)
        o, s = z.central(eb, shift)
        z.raw(zeocd(len(eb), s, o + shift))
        desc = "%d bytes of %s before a malicious archive (offsets %s)" % (len(junk), jk, "adjusted" if adjust else "relative")
    elif variant.startswith("zip64"):
        # zipfile's _EndRecData64 reads the zip64 record right before the locator (and its
        # `concat` assumes the directory ends right before that record); miniz follows the
        # locator's offset. Each record directly follows the directory it describes.
        eg, eb = put(z, good), put(z, bad)
        if variant == "zip64-locator-to-mal":
            ob, sb = z.central(eb)
            r_mal = z.raw(z64eocd(len(eb), sb, ob))
            og, sg = z.central(eg)
            z.raw(z64eocd(len(eg), sg, og))    # right before the locator: zipfile reads this one
            z.raw(z64locator(r_mal))           # miniz follows the locator's offset
            desc = "two zip64 end records: the locator points at the malicious one, the one right before the locator is benign"
        elif variant == "zip64-before-locator-mal":
            og, sg = z.central(eg)
            r_good = z.raw(z64eocd(len(eg), sg, og))
            ob, sb = z.central(eb)
            z.raw(z64eocd(len(eb), sb, ob))
            z.raw(z64locator(r_good))
            desc = "two zip64 end records: the locator points at the benign one, the one right before the locator is malicious"
        else:
            og, sg = z.central(eg)
            ob, sb = z.central(eb)
            r = z.raw(z64eocd(len(eb), sb, ob))
            z.raw(z64locator(r))
            z.raw(zeocd(len(eg), sg, og))
            desc = "zip64 end record + locator for the malicious directory; the plain end record (no 0xFFFF) names the benign one"
        if variant != "zip64-no-ffff":
            z.raw(zeocd(0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, count_disk=0xFFFF))
    elif variant in ("cd-count-short-mal-last", "cd-count-short-mal-first"):
        # zipfile reads the directory by its size (and keeps the last of equal names); miniz
        # reads as many entries as the end record counts
        eg, eb = put(z, good), put(z, bad)
        order = eg + eb if variant.endswith("last") else eb + eg
        counted = len(eg) if variant.endswith("last") else len(eb)
        o, s = z.central(order)
        z.raw(zeocd(counted, s, o))
        desc = "the directory lists benign and malicious entries, the end record counts only the %s ones" % (
            "benign (first)" if variant.endswith("last") else "malicious (first)")
    elif variant == "cd-split":
        # zipfile reads the size_cd bytes right before the end record and shifts every offset by
        # `concat`; miniz reads the directory at the stated offset
        eb = put(z, bad)
        cda = cd_bytes(eb)
        z.member("pad.bin", b"\0" * len(cda))   # listed nowhere: keeps zipfile's shifted offsets >= 0
        eg = put(z, good)
        cda = cd_bytes(eb)
        a_off = z.raw(cda)
        cdb = cd_bytes(eg, -len(cda))
        z.raw(cdb)
        z.raw(zeocd(len(eg) if len(cdb) == len(cda) else len(eb), len(cdb), a_off))
        desc = "end record's offset points at a malicious directory; the directory right before the end record (zipfile's view, via concat) is benign"
    elif variant == "local-extra-hides":
        benign = K.benign_pickle(max_len=60000)
        ents = put(z, rest)
        e = z.member(hot, mdata, local_extra=benign)   # raw bytes: the local extra field is not parsed
        single(z, e, ents)
        desc = "the local header's extra field is a benign pickle; the data after it (what readers read) is malicious"
    elif variant == "local-name-longer":
        ents = put(z, rest)
        e = z.member(hot, mdata, local_name=hot + "\0" + "x" * K.randint("pad", 1, 40))
        single(z, e, ents)
        desc = "the local header's name is longer than the central one (the data follows the local name)"
    elif variant == "method-mismatch":
        ents = put(z, rest)
        e = z.member(hot, mdata, method=8, local_method=0)
        single(z, e, ents)
        desc = "central directory says deflate, local header says stored"
    elif variant == "eocd-first":
        # numpy.load takes a file starting with `PK\x05\x06` (an empty zip's end record) for an
        # npz; zipfile then finds the real end record at the end
        z = Zip(zeocd(0, 0, 0))
        eb = put(z, bad)
        adjust = K.pick("adjust", [True, False])
        shift = 0 if adjust else -22
        o, sz = z.central(eb, shift)
        z.raw(zeocd(len(eb), sz, o + shift))
        desc = "an empty zip's end record first, then the malicious archive (offsets %s)" % ("adjusted" if adjust else "relative")
    elif variant == "local-sizes-lie":
        ents = put(z, rest)
        e = z.member(hot, mdata, local_sizes=(K.pick("lsize", [0, 2, 7]),) * 2)
        single(z, e, ents)
        desc = "the local header's sizes are wrong; the central directory's are right (readers use the central ones)"
    elif variant == "descriptor":
        ents = put(z, rest)
        e = z.member(hot, mdata, method=8, descriptor=True)
        single(z, e, ents)
        desc = "malicious member deflated with a data descriptor (local sizes zero)"
    elif variant in ("bzip2-method", "lzma-method"):
        ents = put(z, rest)
        meth = 12 if variant.startswith("bzip2") else 14
        e = z.member(hot, mdata, method=meth)
        single(z, e, ents)
        desc = "malicious member compressed with zip method %d (zipfile supports it, miniz does not)" % meth
    elif variant == "cd-zip64-extra-offset":
        ents = put(z, rest)
        e = z.member(hot, mdata)
        e["cextra"] = struct.pack("<HHQ", 1, 8, e["offset"])
        e["offset"] = 0xFFFFFFFF
        single(z, e, ents)
        desc = "malicious member's local header offset is 0xFFFFFFFF, the real one in a zip64 extra field"
    elif variant == "eocd-comment-len-lies":
        eb = put(z, bad)
        o, s = z.central(eb)
        z.raw(zeocd(len(eb), s, o))
        z.buf[-2:] = struct.pack("<H", 0x4000)
        desc = "end record claims a 16 KiB comment that is not there"
    else:  # case-name: miniz looks names up case-insensitively
        cased = [(n.replace("data.pkl", "DATA.PKL").replace("x.npy", "X.NPY").replace("frame.pkl", "FRAME.PKL")
                  if n == hot else n, d) for n, d in bad]
        if kind == "torch":
            cased = [(n, d) for n, d in good if n != hot] + cased[:1]
        ents = put(z, cased)
        o, s = z.central(ents)
        z.raw(zeocd(len(ents), s, o))
        desc = "the malicious member's name in another case"
    return Case("zip", variant + "-" + kind, name, z.bytes(), [gname(target)], desc, extra)


# ---- tar ---------------------------------------------------------------------------------
@family("tar")
def fam_tar(K):
    target, proto, frame, wrap = K.canary()
    mal = canary_pickle(target, proto, frame, wrap)
    benign = K.benign_pickle()
    variant = K.pick("variant", [
        "pax-x-size", "pax-x-size-override", "pax-g-size", "pax-g-size-small", "pax-x-path", "pax-g-path",
        "gnu-longname", "gnu-longname-zero", "zero-block-then-member", "invalid-block-then-member", "signed-chksum",
        "base256-size", "size-spaces", "chksum-format", "v7-nomagic", "prefix-field", "torch-legacy-tar",
        "gzip-tar", "name-nul", "pax-g-size-legacy"])
    victim = K.pick("victim", ["pandas", "member"])
    name = "model.pkl"
    if variant == "pax-x-size":
        parts = [tar_member("././@PaxHeader", pax_payload([("size", len(mal))]), typeflag=b"x"),
                 tar_header(name, 0) + tar_pad(mal)]
        desc = "pax `x` header with size=%d before a member whose own size field says 0" % len(mal)
    elif variant == "pax-x-size-override":
        parts = [tar_member("././@PaxHeader", pax_payload([("size", len(mal))]), typeflag=b"x"),
                 tar_header(name, len(benign)) + tar_pad(mal)]
        desc = "pax `x` size overrides a member's own (benign-length) size field"
    elif variant in ("pax-g-size", "pax-g-size-small"):
        # tarfile applies a global header's `size` to later plain members when extracting,
        # but finds the next header by the member's own size field
        own = 0 if variant == "pax-g-size" else 1
        parts = [tar_member("././@GlobalHead", pax_payload([("size", len(mal))]), typeflag=b"g"),
                 tar_header(name, own) + tar_pad(mal)]
        desc = "pax global `g` header with size=%d; the member's own size field says %d" % (len(mal), own)
    elif variant == "pax-g-size-legacy":
        st = pickle_int(0) + b"\x80\x02]q\x00."
        parts = [tar_member("storages", st), tar_member("tensors", pickle_int(0)),
                 tar_member("././@GlobalHead", pax_payload([("size", len(mal))]), typeflag=b"g"),
                 tar_header("pickle", 0) + tar_pad(mal)]
        name = "pickle"
        victim = "torch"
        desc = "torch legacy tar whose `pickle` member has size 0 but a pax global size=%d" % len(mal)
    elif variant == "pax-x-path":
        parts = [tar_member("readme.txt", b"hello\n"),
                 tar_member("././@PaxHeader", pax_payload([("path", name)]), typeflag=b"x"),
                 tar_member("notes.txt", mal)]
        desc = "pax `x` path renames the malicious member `notes.txt` to %s" % name
    elif variant == "pax-g-path":
        parts = [tar_member("././@GlobalHead", pax_payload([("path", name)]), typeflag=b"g"),
                 tar_member("notes.txt", mal)]
        desc = "pax global `g` path renames every later member"
    elif variant in ("gnu-longname", "gnu-longname-zero"):
        long = ("d" * 120) + "/" + name
        ln = long.encode() + b"\0"
        gnu = b"ustar  \0"
        if variant == "gnu-longname":
            parts = [tar_member("././@LongLink", ln, typeflag=b"L", magic=gnu), tar_member("short", mal, magic=gnu)]
            desc = "GNU long name `L` record before the malicious member"
        else:
            parts = [tar_member("././@LongLink", ln, typeflag=b"L", magic=gnu), b"\0" * 512, tar_member("short", mal, magic=gnu)]
            desc = "GNU long name record followed by a zero block, then the malicious member"
        name = long
    elif variant == "zero-block-then-member":
        parts = [tar_member("readme.pkl", benign), b"\0" * 512, tar_member(name, mal)]
        desc = "a single zero block between a benign and the malicious member"
    elif variant == "invalid-block-then-member":
        parts = [tar_member("readme.pkl", benign), b"\x01" * 512, tar_member(name, mal)]
        desc = "an invalid header block between a benign and the malicious member"
    elif variant == "signed-chksum":
        parts = [tar_header(name, len(mal), chksum="signed", extra_high=True) + tar_pad(mal)]
        desc = "header checksum over signed bytes, with high bytes in the header (tarfile accepts either sum)"
    elif variant == "base256-size":
        parts = [tar_header(name, len(mal), size_field=base256(len(mal))) + tar_pad(mal)]
        desc = "size field in GNU base-256 encoding"
    elif variant == "size-spaces":
        parts = [tar_header(name, len(mal), size_field=(b"%11o" % len(mal)) + b" ") + tar_pad(mal)]
        desc = "size field with leading spaces, space-terminated"
    elif variant == "chksum-format":
        h = bytearray(tar_header(name, len(mal)))
        h[148:156] = b" " * 8
        parts = [bytes(h[:148]) + (b"%o" % sum(h)).rjust(7, b" ") + b"\0" + bytes(h[156:]) + tar_pad(mal)]
        desc = "checksum field right-aligned with leading spaces"
    elif variant == "v7-nomagic":
        parts = [tar_header(name, len(mal), magic=b"") + tar_pad(mal)]
        desc = "old V7 header (no ustar magic)"
    elif variant == "prefix-field":
        parts = [tar_header("model.pkl", len(mal), prefix=b"dir") + tar_pad(mal)]
        name = "dir/model.pkl"
        desc = "ustar prefix field makes the name dir/model.pkl"
    elif variant == "name-nul":
        parts = [tar_header(name, len(mal), name_field=name.encode() + b"\0" + b"x" * 20) + tar_pad(mal)]
        desc = "name field with bytes after the NUL"
    elif variant == "torch-legacy-tar":
        # torch.load's oldest format: a tar with storages, tensors and pickle members
        st = pickle_int(0) + b"\x80\x02]q\x00."
        parts = [tar_member("storages", st), tar_member("tensors", pickle_int(0)), tar_member("pickle", mal)]
        name = "pickle"
        victim = "torch"
        desc = "torch legacy tar (storages, tensors, pickle) whose pickle member calls %s" % gname(target)
    else:  # gzip-tar
        data = gzip_member(tar_member(name, mal) + tar_end())
        return Case("tar", variant, "model.tar.gz", data, [gname(target)], "gzip-compressed tar with the malicious member",
                    [{"loader": "pickle_loads", "unwrap": ["tar:" + name]}])
    data = b"".join(parts) + tar_end()
    fname = {"pandas": "model.tar", "member": "bundle.tar", "torch": "model.pt"}[victim]
    extra = [{"loader": "pickle_loads", "unwrap": ["tar:" + name]}] if victim != "torch" else []
    if variant in ("zero-block-then-member", "invalid-block-then-member", "gnu-longname-zero"):
        # readers that go on after a zero/invalid block: `tar --ignore-zeros` semantics and GNU tar
        extra += [{"loader": "pickle_loads", "unwrap": ["tarz:" + name]},
                  {"loader": "pickle_loads", "unwrap": ["gnutar:" + name]}]
    return Case("tar", variant, fname, data, [gname(target)], desc, extra)


def pickle_int(n):
    return b"\x80\x02K" + bytes([n]) + b"."


# ---- .npy / .npz headers -----------------------------------------------------------------
NPY_OBJECT_DESCRS = [
    "'|O'", "'O'", '"|O"', "'|' 'O'", "'\\x7cO'", "'\\u007cO'", "u'|O'", "r'|O'", "('|O')", "'object'",
    "[('a', '|O')]", "[('a', '<f8'), ('b', '|O')]", "'O,f8'", "('|O', (2,))", "[('a', '|O', (1,))]",
    "[(('t', 'a'), '|O')]", "[('a', [('b', '|O')])]", "'<f8,O'", "b'|O'", "'(2,)O'", "'O8'", "'|O8'",
]


@family("npy")
def fam_npy(K):
    target, proto, frame, wrap = K.canary()
    mal = canary_pickle(target, proto, frame, wrap)
    descr = K.pick("descr", NPY_OBJECT_DESCRS)
    variant = K.pick("variant", ["descr", "dup-key", "comment", "key-order", "spacing", "shape-zero", "shape-long",
                                 "version2", "version3", "no-padding", "continuation", "in-npz", "npz-member-name",
                                 "fortran", "shape-empty", "header-not-dict-first"])
    shape, order, version, header = "(1,)", "False", 1, None
    if variant == "dup-key":         # ast.literal_eval keeps the LAST value of a repeated key
        header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'descr': %s}" % descr
    elif variant == "comment":       # literal_eval ignores comments
        header = "{'descr': %s, 'fortran_order': False, 'shape': (1,), } # 'descr': '<f8'" % descr
    elif variant == "key-order":
        header = "{'shape': (1,), 'fortran_order': False, 'descr': %s}" % descr
    elif variant == "spacing":
        header = "{ 'descr' :\t%s ,\n 'fortran_order' : False , 'shape' : ( 1 , ) }" % descr
    elif variant == "continuation":
        header = "{'descr': \\\n%s, 'fortran_order': False, 'shape': (1,)}" % descr
    elif variant == "header-not-dict-first":
        header = "(\n{'descr': %s, 'fortran_order': False, 'shape': (1,)})" % descr
    elif variant == "shape-zero":    # object arrays are unpickled whatever the shape
        shape = "(0,)"
    elif variant == "shape-empty":
        shape = "()"
    elif variant == "shape-long":    # Python 2 long: numpy's _filter_header drops the L (versions 1, 2)
        shape = "(1L,)"
        version = K.pick("v", [1, 2])
    elif variant == "fortran":
        order = "True"
    elif variant == "version2":
        version = 2
    elif variant == "version3":      # utf-8 header: a comment in characters latin-1 does not have
        version = 3
        header = "{'descr': %s, 'fortran_order': False, 'shape': (1,), } # \u4e2d\u00fc" % descr
    if header is None:
        header = "{'descr': %s, 'fortran_order': %s, 'shape': %s, }" % (descr, order, shape)
    body = npy(header, mal, version=version, pad_to=0 if variant == "no-padding" else 64)
    desc = "npy v%d header %r followed by a pickle calling %s" % (version, header, gname(target))
    if variant in ("in-npz", "npz-member-name"):
        mname = "x.npy" if variant == "in-npz" else K.pick("mname", ["x", "x.bin", "x.NPY", "d/x.npy", "x.npy.npy", "x.pkl"])
        members = [(n, d, 0) for n, d in K.npz_members()]
        members.append((mname, body, K.pick("method", [0, 8])))
        return Case("npy", variant, "arrays.npz", simple_zip(members), [gname(target)], desc + ", as npz member %s" % mname)
    return Case("npy", variant + ":" + descr, "array.npy", body, [gname(target)], desc)


# ---- joblib NumpyArrayWrapper ------------------------------------------------------------
def jl_dtype_ops(seeds, spec, how):
    """Ops pushing a numpy dtype. how: 'pickled' (numpy's own reduce + BUILD state, as joblib
    writes it) or 'reduce' (numpy.dtype(spec) called by the pickle, no BUILD)."""
    if how == "pickled" and spec in seeds.dtypes:
        p = seeds.dtypes[spec]
        return p[2:-1]
    return b"cnumpy\ndtype\n(" + spec_ops(spec) + b"tR"


def spec_ops(spec):
    if spec.startswith("["):
        ops = b"(l"
        for f in ast_literal(spec):
            ops += b"(" + b"".join(p_str(str(x), 1) for x in f) + b"ta"
        return ops
    return p_str(spec, 1)


def ast_literal(s):
    import ast
    return ast.literal_eval(s)  # our own literal, never file content


def jl_wrapper(dtype_ops, shape, payload, *, align=16, order="C", state_form="dict"):
    """One NumpyArrayWrapper as joblib writes it: NEWOBJ, state, BUILD, then the array bytes
    (or the nested pickle of an object array) that joblib reads right after BUILD."""
    cls = p_global("joblib.numpy_pickle", "NumpyArrayWrapper", 4)
    items = [("subclass", b"cnumpy\nndarray\n"), ("shape", b"(" + b"".join(p_int(x, 2) for x in shape) + b"t"),
             ("order", p_str(order, 4)), ("dtype", dtype_ops), ("allow_mmap", b"\x89")]
    if align is not None:
        items.append(("numpy_array_alignment_bytes", b"N" if align == "none" else p_int(align, 2)))
    kv = b"".join(p_str(k, 4) + v for k, v in items)
    state = b"}(" + kv + b"u" if state_form == "dict" else b"N}(" + kv + b"u\x86"
    return cls + b")\x81" + state + b"b" + payload


def dual_payload(core, raw_len, align):
    """A nested pickle exactly as long as what joblib reads for a NON-object dtype (padding
    byte + padding + raw_len bytes), so the file parses either way and only the dtype decides
    whether joblib unpickles it. With alignment the first byte (NONE, 78) is the padding length."""
    body = core[2:-1]
    head = b"N0" if align else b""
    need = (1 + 78 + raw_len) if align else raw_len
    fill = need - len(head) - 2 - len(body) - 1
    if fill < 0:
        return None
    if fill == 0:
        filler = b""
    elif fill >= 6:
        filler = b"X" + struct.pack("<I", fill - 6) + b"a" * (fill - 6) + b"0"
    elif fill % 2 == 0:
        filler = b"N0" * (fill // 2)
    elif fill >= 3:
        filler = b"N0" * ((fill - 3) // 2) + b"K\x000"
    else:
        return None
    out = head + b"\x80\x02" + filler + body + b"."
    assert len(out) == need
    return out


def swallow_data(n, size, wrong, call):
    """n elements of `size` bytes for the real reading; at offset n*wrong (where a reading with
    `wrong` bytes per element resumes the pickle, if it is inside the data) a BINBYTES whose
    length runs to just past `call`, the ops that follow the array."""
    data = bytearray(n * size)
    w = n * wrong
    if w + 5 <= len(data):
        data[w:w + 5] = b"B" + struct.pack("<I", len(data) - w - 5 + len(call))
    return bytes(data)


@family("joblib")
def fam_joblib(K):
    target, proto, frame, wrap = K.canary()
    core = canary_pickle(target, 2)
    variant = K.pick("variant", ["object-spec", "structured-object", "subarray-object", "dtype-itemsize", "align-none",
                                 "align-absent", "align-odd", "slotstate", "frame-desync", "after-array", "zero-shape",
                                 "zfile", "compressed", "compressed-multistream", "dtype-state-object",
                                 "dtype-build-flags", "dtype-build-elsize"])
    items = []
    if variant in ("object-spec", "structured-object", "subarray-object"):
        spec, item = {"object-spec": (K.pick("spec", ["O", "|O", "object", "O8"]), 8),
                      "structured-object": K.pick("sspec", [("[('a','O')]", 8), ("[('a','<f8'),('b','O')]", 16)]),
                      "subarray-object": ("(2,)O", 16)}[variant]
        n = max(1, (len(core) + 200) // item)
        payload = dual_payload(core, n * item, True)
        items.append(jl_wrapper(jl_dtype_ops(K.seeds, spec, "reduce"), (n,), payload))
        desc = ("dtype numpy.dtype(%r) built in the pickle: joblib unpickles the array data (calling %s); "
                "the bytes also parse as %d raw %d-byte elements" % (spec, gname(target), n, item))
        variant += ":" + spec
    elif variant == "dtype-state-object":
        # numpy's own pickle of a structured dtype with an object field: BUILD state carries
        # names/fields/flags; joblib sees hasobject
        spec = K.pick("spec", ["[('a','O')]", "[('a','<f8'),('b','O')]", "(O,(2,))"])
        item = {"[('a','O')]": 8, "[('a','<f8'),('b','O')]": 16, "(O,(2,))": 16}[spec]
        n = max(1, (len(core) + 200) // item)
        items.append(jl_wrapper(jl_dtype_ops(K.seeds, spec, "pickled"), (n,), dual_payload(core, n * item, True)))
        desc = "numpy's pickle of dtype %s (object field via BUILD state); the array data is a nested pickle calling %s" % (spec, gname(target))
    elif variant == "dtype-build-flags":
        # numpy.dtype('f8') then BUILD with a version 3 state whose flags say NPY_ITEM_HASOBJECT
        flags = K.pick("flags", [0x01, 0x3F, 0x1F])
        ops = (b"cnumpy\ndtype\n(" + p_str("f8", 1) + b"\x89\x88tR(K\x03" + p_str("<", 1) + b"NNNJ\xff\xff\xff\xff"
               b"J\xff\xff\xff\xffK" + bytes([flags]) + b"tb")
        n = max(1, (len(core) + 200) // 8)
        items.append(jl_wrapper(ops, (n,), dual_payload(core, n * 8, True)))
        desc = ("dtype('f8') whose BUILD state sets flags=0x%02x; the data is a nested pickle (calling %s) that "
                "also parses as %d float64 elements" % (flags, gname(target), n))
    elif variant == "dtype-build-elsize":
        # numpy.dtype('V1') then BUILD with a larger elsize: numpy's __setstate__ makes it that
        # wide, joblib reads elsize bytes per element
        elsize = K.pick("elsize", [8, 16, 128])
        ops = (b"cnumpy\ndtype\n(" + p_str("V1", 1) + b"\x89\x88tR(K\x03" + p_str("|", 1) + b"NNNK" + bytes([elsize])
               + b"K\x01K\x00tb")
        n = K.pick("n", [4, 16])
        call = canary_call(target, 2)
        items.append(jl_wrapper(ops, (n,), b"\x00" + swallow_data(n, elsize, 1, call)))
        items.append(call)
        desc = ("dtype('V1') whose BUILD state sets elsize=%d: joblib reads %d bytes of array data, then runs %s; "
                "a reading with 1 byte per element meets a BINBYTES swallowing the call" % (elsize, n * elsize, gname(target)))
    elif variant == "dtype-itemsize":
        spec = K.pick("spec", sorted(K.seeds.meta["itemsize"]))
        size = K.seeds.meta["itemsize"][spec]
        how = K.pick("how", ["pickled", "reduce"])
        wrong = K.pick("wrong", [w for w in (1, 2, 4, 8, 16) if w != size])
        n = K.pick("n", [4, 16, 33])
        call = canary_call(target, 2)
        data = swallow_data(n, size, wrong, call)
        items.append(jl_wrapper(jl_dtype_ops(K.seeds, spec, how), (n,), b"\x00" + data))
        items.append(call)
        desc = ("%d elements of dtype(%r) (%d bytes each) then %s; a reading with %d bytes per element meets a "
                "BINBYTES that swallows the call" % (n, spec, size, gname(target), wrong))
        variant += ":" + spec
    elif variant in ("align-none", "align-absent", "align-odd"):
        a = {"align-none": "none", "align-absent": None}.get(variant) or K.pick("align", [8, 64, 255, 0])
        raw = struct.pack("<d", 1.0)
        payload = raw if a in (None, "none") else b"\x05" + b"\xff" * 5 + raw  # joblib reads the padding byte it finds
        items.append(jl_wrapper(jl_dtype_ops(K.seeds, "f8", "pickled"), (1,), payload, align=a))
        items.append(canary_call(target, 2))
        desc = "numpy_array_alignment_bytes=%r (no padding byte when missing or None); the canary follows the array" % (a,)
    elif variant == "slotstate":
        items.append(jl_wrapper(jl_dtype_ops(K.seeds, "O", "pickled"), (1,), core, state_form="slot"))
        desc = "wrapper state given as (None, slotstate), set by setattr; object array whose nested pickle calls %s" % gname(target)
    elif variant == "frame-desync":
        # pickle.py reads a whole FRAME ahead; joblib reads the nested pickle from the file,
        # i.e. after the frame
        w = jl_wrapper(jl_dtype_ops(K.seeds, "O", "pickled"), (1,), b"")
        inner = w + b"."
        data = b"\x80\x04\x95" + struct.pack("<Q", len(inner)) + inner + core
        return Case("joblib", variant, "model.joblib", data, [gname(target)],
                    "BUILD of an object-array wrapper inside a FRAME; the nested pickle (calling %s) follows the frame" % gname(target))
    elif variant == "after-array":
        items.append(jl_wrapper(jl_dtype_ops(K.seeds, "f8", "pickled"), (2,), b"\x10" + b"\xff" * 16 + struct.pack("<2d", 1.0, 2.0)))
        items.append(canary_call(target, 2))
        desc = "a float array, then the canary in the same pickle"
    elif variant == "zero-shape":
        items.append(jl_wrapper(jl_dtype_ops(K.seeds, "O", "pickled"), (0,), core))
        desc = "object array of shape (0,): joblib still unpickles the nested stream (calling %s)" % gname(target)
    elif variant == "zfile":
        # joblib < 0.9.3 format: b"ZF" + hex length + zlib data, read by load_compatibility
        hexlen = hex(len(core)).encode().ljust(K.seeds.meta["joblib_max_len"], b" ")
        data = b"ZF" + hexlen + zlib.compress(core)
        return Case("joblib", variant, "model.joblib", data, [gname(target)],
                    "old joblib ZF format (`ZF` + hex length + zlib) holding a pickle calling %s" % gname(target))
    else:  # compressed, compressed-multistream
        stream = b"\x80\x04](" + jl_wrapper(jl_dtype_ops(K.seeds, "O", "pickled"), (1,), core) + b"e."
        comp = K.pick("comp", ["zlib", "gzip", "bz2", "xz", "lzma", "lz4"])
        if variant == "compressed-multistream" and comp in ("bz2", "xz", "lz4"):
            # (joblib's zlib/gzip reader spins on a second stream: only multi-stream formats here)
            k = K.randint("split", 1, len(stream) - 1)
            data = compress(comp, stream[:k]) + compress(comp, stream[k:])
            desc = "joblib stream split across two %s streams at byte %d; object array calling %s" % (comp, k, gname(target))
        else:
            data = compress(comp, stream)
            desc = "%s-compressed joblib stream; an object array's nested pickle calls %s" % (comp, gname(target))
            variant = "compressed"
        return Case("joblib", variant + "-" + comp, "model.joblib", data, [gname(target)], desc)
    stream = b"\x80\x04](" + b"".join(items) + b"e."
    return Case("joblib", variant, "model.joblib", stream, [gname(target)], desc)


# ---- compressed frames ---------------------------------------------------------------------
@family("compress")
def fam_compress(K):
    target, proto, frame, wrap = K.canary()
    mal = canary_pickle(target, proto, frame, wrap)
    kind = K.pick("kind", ["gzip", "bz2", "xz", "zstd", "lzma", "lz4", "zlib"])
    variant = K.pick("variant", ["empty-first", "split", "trailing-garbage", "header-fields", "skippable", "padding",
                                 "benign-then-mal", "nested", "plain"])
    ext = {"gzip": ".pkl.gz", "bz2": ".pkl.bz2", "xz": ".pkl.xz", "zstd": ".pkl.zst", "zlib": ".joblib",
           "lzma": ".joblib", "lz4": ".joblib"}[kind]
    if kind == "zlib" and variant not in ("plain", "nested"):
        variant = "plain"   # joblib's zlib reader spins (memory doubling) on anything after the stream
    unwrap = [kind]
    if variant == "empty-first":
        data = compress(kind, b"") + compress(kind, mal)
        desc = "an empty %s stream, then one holding the pickle" % kind
    elif variant == "split":
        k = K.randint("split", 1, len(mal) - 1)
        data = compress(kind, mal[:k]) + compress(kind, mal[k:])
        desc = "the pickle split across two %s streams at byte %d" % (kind, k)
    elif variant == "trailing-garbage":
        data = compress(kind, mal) + K.pick("junk", [b"\0" * 8, b"garbage!", b"\x1f\x8b"])
        desc = "%s stream followed by junk" % kind
    elif variant == "header-fields" and kind == "gzip":
        data = gzip_member(mal, fname=b"model.pkl", fextra=b"AB\x02\x00xy", fcomment=b"c", fhcrc=K.pick("hcrc", [False, True]))
        desc = "gzip member with FEXTRA/FNAME/FCOMMENT(/FHCRC) header fields"
    elif variant == "skippable" and kind == "zstd":
        data = zstd_skippable(b"\0" * K.randint("skip", 0, 64)) + zstd_frame(mal)
        desc = "a zstd skippable frame before the real frame"
    elif variant == "padding" and kind == "xz":
        data = compress("xz", b"") + b"\0" * 4 + compress("xz", mal)
        desc = "empty xz stream, 4 bytes of stream padding, then the pickle"
    elif variant == "benign-then-mal":
        data = compress(kind, K.benign_pickle()) + compress(kind, mal)
        desc = "a %s stream with a benign pickle, then one with the malicious pickle" % kind
    elif variant == "nested":
        inner = K.pick("inner", ["gzip", "bz2", "xz", "zstd"])
        data = compress(kind, compress(inner, mal))
        desc = "%s of %s of the pickle" % (kind, inner)
        unwrap = [kind, inner]
        variant = "nested-" + inner
    else:
        data = compress(kind, mal)
        desc = "plain %s stream holding the pickle (control)" % kind
        variant = "plain"
    extra = [{"loader": "pickle_loads", "unwrap": unwrap}]
    return Case("compress", variant + "-" + kind, "model" + ext, data, [gname(target)], desc, extra)


# ---- torch legacy (non-tar) files: magic, protocol, sys_info, main pickle, storage keys ----
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


@family("torch-legacy")
def fam_torch_legacy(K):
    """torch.load of a non-zip, non-tar file unpickles five pickles in a row (magic number,
    protocol version, sys_info, the object, the storage keys) and then reads raw storages."""
    target, proto, frame, wrap = K.canary()
    mal = canary_pickle(target, proto, frame, wrap)
    magic_form = K.pick("magic", ["LONG1", "text-L", "text-I", "LONG4", "proto0-LONG1"])
    proto_form = K.pick("protoform", ["BININT2", "text-I", "BININT"])
    where = K.pick("where", ["sys_info", "main", "keys", "protocol-pickle-tail"])
    mb = LEGACY_MAGIC.to_bytes(10, "little")
    magic = {"LONG1": b"\x80\x02\x8a\x0a" + mb + b".",
             "text-L": b"L%dL\n." % LEGACY_MAGIC,
             "text-I": b"I%d\n." % LEGACY_MAGIC,
             "LONG4": b"\x80\x02\x8b\x0a\x00\x00\x00" + mb + b".",
             "proto0-LONG1": b"\x8a\x0a" + mb + b"."}[magic_form]
    protocol = {"BININT2": b"\x80\x02M\xe9\x03.", "text-I": b"I1001\n.", "BININT": b"\x80\x02J\xe9\x03\x00\x00."}[proto_form]
    sys_info = b"\x80\x02}q\x00(X\x10\x00\x00\x00protocol_versionq\x01M\xe9\x03X\r\x00\x00\x00little_endianq\x02\x88u."
    main = b"\x80\x02}q\x00."
    keys = b"\x80\x02]q\x00."
    if where == "sys_info":
        sys_info = mal
    elif where == "main":
        main = mal
    elif where == "keys":
        keys = mal
    else:   # the protocol pickle's value is a tuple that calls the canary first
        protocol = mal[:-1] + b"0" + protocol[2:] if mal.startswith(b"\x80") else mal[:-1] + b"0" + protocol
    data = magic + protocol + sys_info + main + keys + b"\0" * 16
    return Case("torch-legacy", "%s:%s/%s" % (where, magic_form, proto_form), "model.pt", data, [gname(target)],
                "torch legacy file (magic as %s, protocol as %s), the %s pickle calls %s" % (
                    magic_form, proto_form, where, gname(target)))


# ---- nesting: any other family's case as a member of an ordinary container ----------------
@family("nested")
def fam_nested(K):
    inner_fam = K.pick("inner", ["zip", "tar", "npy", "joblib", "compress", "polyglot", "pickle-text", "torch-legacy"])
    inner = FAMILIES[inner_fam](K)
    outer = K.pick("outer", ["zip-stored", "zip-deflate", "tar", "tar.gz", "tar.xz", "tar.bz2", "gzip"])
    member = "inner/" + inner.name if outer != "gzip" else inner.name
    if outer.startswith("zip"):
        data = simple_zip([("README.txt", b"see inner/\n", 0), (member, inner.data, 8 if outer.endswith("deflate") else 0)])
        name, step = "bundle.zip", "zip:" + member
    elif outer.startswith("tar"):
        t = tar_member("README.txt", b"see inner/\n") + tar_member(member, inner.data) + tar_end()
        comp = {"tar": None, "tar.gz": "gzip", "tar.xz": "xz", "tar.bz2": "bz2"}[outer]
        data, name, step = (compress(comp, t) if comp else t), "bundle." + outer, "tar:" + member
    else:
        data, name, step = gzip_member(inner.data), inner.name + ".gz", "gzip"
    extra = [{"loader": l, "unwrap": [step]} for l in _audit.UNIVERSAL]
    extra += [{"loader": e["loader"], "unwrap": [step] + e["unwrap"]} for e in inner.extra]
    # one kind per outer container: "in-tar:joblib.zfile". A disagreement the inner file shows
    # by itself is inherited (run() checks), not a nesting bug.
    c = Case("nested", "in-%s:%s.%s" % (outer, inner.family, inner.variant.split(":")[0]), name, data,
             inner.canary, "%s, as `%s` inside a %s" % (inner.desc, member, outer), extra)
    c.inner = inner
    return c


# ========================================================================================
# Running
# ========================================================================================
FAMILY_ORDER = ["zip", "tar", "npy", "joblib", "compress", "polyglot", "pickle-text", "torch-legacy", "nested"]


def make_case(seed, i, seeds, forced=None, small=False, simple=False):
    fam = FAMILY_ORDER[i % len(FAMILY_ORDER)]
    K = Knobs(random.Random("%d:%d" % (seed, i)), seeds, forced, small, simple)
    c = FAMILIES[fam](K)
    c.index, c.knobs, c.smallest = i, K.rec, K.smallest
    return c


def case_requests(path, case):
    reqs = [{"file": str(path), "loader": l, "unwrap": []} for l in _audit.UNIVERSAL]
    for e in case.extra:
        reqs.append({"file": str(path), "loader": e["loader"], "unwrap": e.get("unwrap") or []})
    return reqs


def write_case(d, case, tag=""):
    p = Path(d) / ("c%06d%s-%s" % (case.index, tag, case.name))
    p.write_bytes(case.data)
    return p


def evaluate(cases, d, binary, pool, maps_cache, tag=""):
    """Writes the cases into d, runs every loader on them and picklegate once over d.
    Returns (paths, results, owner case per result, disagreements)."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    paths = [write_case(d, c, tag) for c in cases]
    reqs, owner = [], []
    for p, c in zip(paths, cases):
        for r in case_requests(p, c):
            reqs.append(r)
            owner.append(c)
    results = pool.run(reqs)
    reports = _audit.scan(binary, [d])
    for l in {r["loader"] for r in reqs}:
        if l not in maps_cache:
            maps_cache[l] = pool.maps(l)
    dis = _audit.compare(results, reports, maps_cache)
    by_file = {str(p): c for p, c in zip(paths, cases)}
    for x in dis:
        c = by_file[x["file"]]
        x.update(family=c.family, variant=c.variant, description=c.desc, canary=c.canary, case=c.index,
                 planted=x["global"] in c.canary)
    return paths, results, owner, dis


def _same(d, x):
    """Same disagreement kind: the same global, or (planted canaries) any planted canary --
    minimisation may swap the canary for the simple one."""
    return d["global"] == x["global"] or (d["planted"] and x["planted"])


LOADER_TO_FINAL = {"pickle": "pickle.load", "pickle_loads": "pickle.loads", "pickle_py": "pickle._Unpickler",
                   "pickle_loop": "pickle.loads_loop", "torch": "torch_weights_only_false",
                   "torch_data_pkl": "torch_data_pkl", "joblib": "joblib_load", "numpy": "numpy_load",
                   "pandas": "pandas_read_pickle"}


def chain_of(d):
    """A disagreement's loader in the manifests' chain syntax (`zip:m|pickle.loads`)."""
    return "|".join(list(d["unwrap"]) + [LOADER_TO_FINAL[d["loader"]]])


def minimise(case, dis, seed, seeds, binary, pool, maps_cache, scratch):
    """Replays the case's knobs on the smallest seeds and/or the simplest canary and keeps the
    smallest rendering that still shows the same disagreement. Returns (case, its disagreements
    of that kind)."""
    best = (case, [x for x in dis if _same(dis[0], x)])
    tries = [(True, True, {}), (True, False, {}), (False, True, {})]
    # then numeric knobs (sizes, counts, split points) at their smallest, one at a time, on top of
    # whatever rendering is best so far
    tries += [(None, None, {k: v}) for k, v in sorted(getattr(case, "smallest", {}).items())
              if case.knobs.get(k) != v]
    for t, (small, simple, override) in enumerate(tries):
        if small is None:
            small, simple = best[0].rendering
        try:
            c = make_case(seed, case.index, seeds, forced=dict(best[0].knobs, **override), small=small, simple=simple)
        except Exception:
            continue
        c.rendering = (small, simple)
        if c.variant.split(":")[0] != case.variant.split(":")[0] or len(c.data) >= len(best[0].data):
            continue
        d = Path(scratch) / ("min-%06d-%d" % (case.index, t))
        _, _, _, dd = evaluate([c], d, binary, pool, maps_cache, tag="m")
        shutil.rmtree(d, ignore_errors=True)
        same = [x for x in dd if _same(dis[0], x)]
        if any(x["loader"] == dis[0]["loader"] and x["unwrap"] == dis[0]["unwrap"] for x in same):
            best = (c, same)
    return best


def save_reproducer(keep, group, data):
    """Writes the reproducer and its manifest entry; one per (family, variant)."""
    keep = Path(keep)
    keep.mkdir(parents=True, exist_ok=True)
    mpath = keep / "manifest.json"
    manifest = json.loads(mpath.read_text()) if mpath.exists() else []
    if any((e["family"], e["variant"]) == (group["family"], group["variant"]) for e in manifest):
        return None
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in group["variant"])
    fname = "%s-%s-%s" % (group["family"], safe, group["name"])
    (keep / fname).write_bytes(data)
    manifest.append({"file": fname, "loader": ";".join(group["loaders"]), "global": group["global"],
                     "family": group["family"], "variant": group["variant"], "description": group["description"],
                     "picklegate_when_found": group["verdict"], "found_by": group["found_by"],
                     "knobs": group["knobs"]})
    manifest.sort(key=lambda e: e["file"])
    mpath.write_text(json.dumps(manifest, indent=1) + "\n")
    return fname


def run(seed, cases=None, out=None, binary=None, pool=None, keep=None, hours=None, log=print, batch=700,
        python=None, keep_cases=None):
    """Runs the fuzzer and returns a summary: cases, loads, seconds, per_family, per_variant
    (cases, canary reached, loaders that reached it, disagreements), canary_reached,
    disagreements (one minimised group per (family, variant): loaders, global, file, size, ...),
    harness_problems, generator_errors, reproducers written."""
    t0 = time.monotonic()
    out = Path(out) if out else Path(tempfile.mkdtemp(prefix="pg-mutate-"))
    out.mkdir(parents=True, exist_ok=True)
    keep_cases = (cases is not None) if keep_cases is None else keep_cases
    binary = Path(binary or os.environ.get("PICKLEGATE_BIN") or (REPO / "target" / "release" / "picklegate"))
    seeds = Seeds(out, python)
    own_pool = pool is None
    pool = pool or _audit.AuditPool(python=python, timeout=30)
    maps_cache = {}
    deadline = t0 + hours * 3600 if hours else None
    summary = {"seed": seed, "cases": 0, "loads": 0, "per_family": {f: 0 for f in FAMILY_ORDER}, "per_variant": {},
               "canary_reached": 0, "disagreements": [], "harness_problems": [], "reproducers": [],
               "generator_errors": [], "inherited": 0}
    seen = set()
    i = 0
    try:
        while (cases is None or i < cases) and (deadline is None or time.monotonic() < deadline):
            n = batch if cases is None else min(batch, cases - i)
            batch_cases = []
            for j in range(i, i + n):
                try:
                    batch_cases.append(make_case(seed, j, seeds))
                except Exception as e:  # a generator bug: reported, and the CI test fails on it
                    summary["generator_errors"].append("case %d (%s): %s: %s" % (
                        j, FAMILY_ORDER[j % len(FAMILY_ORDER)], type(e).__name__, e))
            d = out / ("batch-%06d" % i)
            paths, results, owner, dis = evaluate(batch_cases, d, binary, pool, maps_cache)
            summary["loads"] += len(results)
            summary["harness_problems"] += _audit.harness_problems(results)
            reached = {}
            for r, c in zip(results, owner):
                if {"%s.%s" % tuple(e) for e in r["events"]} & set(c.canary):
                    reached.setdefault(c.index, set()).add(r["loader"] + ("|" + "|".join(r["unwrap"]) if r["unwrap"] else ""))
            for c in batch_cases:
                summary["per_family"][c.family] += 1
                v = summary["per_variant"].setdefault("%s/%s" % (c.family, c.variant.split(":")[0]),
                                                      {"cases": 0, "reached": 0, "loaders": [], "disagreements": 0})
                v["cases"] += 1
                if c.index in reached:
                    summary["canary_reached"] += 1
                    v["reached"] += 1
                    v["loaders"] = sorted(set(v["loaders"]) | reached[c.index])
            by_index = {c.index: c for c in batch_cases}
            by_case = {}
            for x in dis:
                by_case.setdefault(x["case"], []).append(x)
            for idx, xs in sorted(by_case.items()):
                c = by_index[idx]
                vkey = "%s/%s" % (c.family, c.variant.split(":")[0])
                summary["per_variant"][vkey]["disagreements"] += 1
                # planted canaries first: they are what the case is about
                xs.sort(key=lambda x: not x["planted"])
                key = (c.family, c.variant.split(":")[0], xs[0]["planted"] or xs[0]["global"])
                if key in seen:
                    continue
                if c.inner is not None:
                    ikey = ("inner", c.inner.family, c.inner.variant.split(":")[0], c.variant.split(":")[0])
                    if ikey in seen:
                        continue
                    seen.add(ikey)
                    c.inner.index = c.index
                    di = out / ("inner-%06d" % c.index)
                    _, _, _, ddi = evaluate([c.inner], di, binary, pool, maps_cache, tag="i")
                    if not keep_cases:
                        shutil.rmtree(di, ignore_errors=True)
                    if any(x["planted"] for x in ddi):
                        summary["inherited"] += 1  # the inner file alone already disagrees
                        continue
                seen.add(key)
                mc, mxs = minimise(c, xs, seed, seeds, binary, pool, maps_cache, out)
                group = {"family": mc.family, "variant": mc.variant.split(":")[0], "name": mc.name,
                         "loaders": sorted({chain_of(x) for x in mxs}), "global": mxs[0]["global"],
                         "planted": mxs[0]["planted"], "description": mc.desc, "verdict": mxs[0]["verdict"],
                         "file": mxs[0]["file"], "size": len(mc.data), "original_size": len(c.data),
                         "case": c.index, "case_file": xs[0]["file"],
                         "found_by": "tools/mutate.py --seed %d, case %d" % (seed, c.index), "knobs": mc.knobs}
                # every minimised disagreement is kept under OUT/disagreements (batches may go)
                kd = out / "disagreements"
                kd.mkdir(exist_ok=True)
                safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in group["variant"])
                group["file"] = str(kd / ("%s-%s-c%06d-%s" % (mc.family, safe, c.index, mc.name)))
                Path(group["file"]).write_bytes(mc.data)
                if keep:
                    f = save_reproducer(keep, group, mc.data)
                    if f:
                        summary["reproducers"].append(f)
                        group["reproducer"] = str(Path(keep) / f)
                summary["disagreements"].append(group)
                log(format_group(group))
            summary["cases"] += len(batch_cases)
            i += n
            if not keep_cases:
                shutil.rmtree(d, ignore_errors=True)  # long runs keep only the reproducers
            log("%d cases, %d loads, canary reached in %d, %d distinct disagreements, %.0fs"
                % (summary["cases"], summary["loads"], summary["canary_reached"], len(summary["disagreements"]),
                   time.monotonic() - t0))
    finally:
        if own_pool:
            pool.close()
    summary["seconds"] = round(time.monotonic() - t0, 1)
    return summary


def format_group(g):
    return "[%s/%s] %s (%d bytes, case %d): %s asked for `%s`; picklegate: %s" % (
        g["family"], g["variant"], g.get("reproducer") or g["file"], g["size"], g["case"], ", ".join(g["loaders"]),
        json.dumps(g["global"])[1:-1], g["verdict"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, help="number of cases (default: 3000, or unlimited with --hours)")
    ap.add_argument("--hours", type=float, help="run until this many hours have passed")
    ap.add_argument("--out", help="directory for seeds and cases (default: a temporary directory); with --hours "
                                  "each batch is deleted after it was checked")
    ap.add_argument("--keep-disagreements", metavar="DIR",
                    help="write minimised reproducers and manifest.json here (tests/fixtures/reproducers)")
    ap.add_argument("--bin", help="picklegate binary (default: $PICKLEGATE_BIN or target/release/picklegate)")
    ap.add_argument("--summary", help="also write the JSON summary to this file")
    args = ap.parse_args(argv)
    cases = args.cases if args.cases is not None else (None if args.hours else 3000)
    s = run(args.seed, cases=cases, out=args.out, binary=args.bin, keep=args.keep_disagreements, hours=args.hours)
    if args.summary:
        Path(args.summary).write_text(json.dumps(s, indent=1))
    print(json.dumps({k: s[k] for k in ("seed", "cases", "loads", "seconds", "canary_reached", "per_family")}, indent=1))
    for k, v in sorted(s["per_variant"].items()):
        print("%-48s cases=%-4d reached=%-4d disagreements=%-4d by=%s" % (k, v["cases"], v["reached"],
                                                                         v["disagreements"], ",".join(v["loaders"])))
    for g in s["disagreements"]:
        print("DISAGREEMENT " + format_group(g))
    for p in s["harness_problems"]:
        print("HARNESS", p)
    for p in s["generator_errors"]:
        print("GENERATOR", p)
    return 1 if s["disagreements"] or s["harness_problems"] or s["generator_errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
