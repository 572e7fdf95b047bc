"""Container readings against the real readers.

Each case is an archive built here byte by byte, where the readers of one format take
different bytes: two central directories, a prefix with relative offsets, a zip64 locator
pointing at a second zip64 record, duplicate names (zip); a global pax size, a local pax
size, a zero block or an invalid block before a member (tar).

For every case a fresh interpreter asks the REAL readers which bytes they return, by
member name, and prints their SHA-256 (nothing is unpickled anywhere):

  torch     torch._C.PyTorchFileReader(path).get_record("data.pkl") (what torch.load
            reads when the file starts with PK\\x03\\x04; torch.serialization._is_zipfile)
  zipfile   zipfile.ZipFile(path).read(name) for every name, and NameToInfo's choice
  numpy     numpy.load(path) -> NpzFile; the bytes NpzFile.__getitem__ opens for each key
  tarfile   tarfile.open(path).extractfile(name).read()  (getmember: the last of a name)
  tarfile-ignore-zeros   the same with ignore_zeros=True

Then `picklegate scan --format json` must report `code-execution` in every member whose
bytes, as some real reader returns them, are a payload, and in the reading that names
that reader when the readings differ (miniz for torch, zipfile for zipfile and numpy,
tar-ignore-zeros for members only ignore_zeros reaches)."""

import hashlib
import json
import pickle
import struct
import subprocess
import sys
import zlib

import pytest

pytestmark = pytest.mark.differential

EVIL_A = b"cos\nsystem\n(S'echo planted-A'\ntR."
EVIL_B = b"cos\nsystem\n(S'echo planted-B'\ntR."
BENIGN = pickle.dumps({"weights": [1.0, 2.0, 3.0], "padding": "x" * 64}, protocol=2)
PAYLOADS = {hashlib.sha256(p).hexdigest(): name for p, name in [(EVIL_A, "A"), (EVIL_B, "B")]}

READERS = r'''
import hashlib, json, sys
kind, path = sys.argv[1], sys.argv[2]
out = {}
def h(b):
    return hashlib.sha256(b).hexdigest()
def guard(key, f):
    try:
        out[key] = f()
    except Exception as e:
        out[key] = {"error": f"{type(e).__name__}: {e}"}
if kind == "zip":
    import zipfile
    def zf():
        z = zipfile.ZipFile(path)
        r = {}
        for name in z.namelist():
            try:
                r[name] = h(z.read(name))          # NameToInfo: the last of equal names
            except Exception as e:
                r[name] = {"error": f"{type(e).__name__}: {e}"}
        return r
    guard("zipfile", zf)
    def torch_reader():
        import torch
        with open(path, "rb") as f:
            if not torch.serialization._is_zipfile(f):
                return {"error": "not a zip to torch.load (no PK\\x03\\x04 at 0)"}
        return {"data.pkl": h(bytes(torch._C.PyTorchFileReader(path).get_record("data.pkl")))}
    guard("torch", torch_reader)
    def np_reader():
        import numpy as np
        npz = np.load(path, allow_pickle=False)
        r = {}
        for key, name in npz._files.items():
            with npz.zip.open(name) as f:          # what NpzFile.__getitem__ opens
                r[name] = h(f.read())
        return r
    guard("numpy", np_reader)
else:
    import tarfile
    for label, iz in [("tarfile", False), ("tarfile-ignore-zeros", True)]:
        def tf(iz=iz):
            t = tarfile.open(path, ignore_zeros=iz)
            r = {}
            for m in t.getmembers():
                if m.isreg():
                    r[m.name] = h(t.extractfile(t.getmember(m.name)).read())
            return r
        guard(label, tf)
print(json.dumps(out))
'''

# Which picklegate reading stands for which real reader when the readings differ.
READING = {"torch": "miniz", "zipfile": "zipfile", "numpy": "zipfile",
           "tarfile": None, "tarfile-ignore-zeros": "tar-ignore-zeros"}


def real_readers(kind, path):
    proc = subprocess.run([sys.executable, "-c", READERS, kind, str(path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def scan(binary, path):
    proc = subprocess.run([str(binary), "scan", "--format", "json", str(path)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)["files"][0]


# ------------------------------------------------------------------------------- zip bytes

def local(name, data):
    name = name.encode()
    return struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, zlib.crc32(data),
                       len(data), len(data), len(name), 0) + name + data


def central(name, data, offset):
    name = name.encode()
    return struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, zlib.crc32(data),
                       len(data), len(data), len(name), 0, 0, 0, 0, 0, offset) + name


def eocd(count, size, offset):
    return struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, size, offset, 0)


def zip64_record(count, size, offset):
    return struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, size, offset)


def locator(at):
    return struct.pack("<IIQI", 0x07064B50, 0, at, 1)


VERSION = ("archive/version", b"3\n")


def plain_zip(members):
    out, cd = b"", b""
    for name, data in members:
        cd += central(name, data, len(out))
        out += local(name, data)
    return out + cd + eocd(len(members), len(cd), len(out))


def two_directories(miniz_pkl, zipfile_pkl):
    """[pkl1][zeros][version1][CD1][pkl2][version2][CD2][end]: the end record gives CD1's
    offset (miniz reads there) and size; zipfile reads that many bytes right before the
    end record (CD2) and shifts its offsets by concat = CD2 - CD1."""
    pkl1, pkl2, ver = local("archive/data.pkl", miniz_pkl), local("archive/data.pkl", zipfile_pkl), local(*VERSION)
    out = pkl1 + b"\0" * max(0, len(pkl2) - len(pkl1))
    ver1_at = len(out)
    out += ver
    cd1_at = len(out)
    cd1 = central("archive/data.pkl", miniz_pkl, 0) + central(*VERSION, ver1_at)
    out += cd1
    pkl2_at = len(out)
    out += pkl2
    ver2_at = len(out)
    out += ver
    cd2_at = len(out)
    concat = cd2_at - cd1_at
    cd2 = central("archive/data.pkl", zipfile_pkl, pkl2_at - concat) + central(*VERSION, ver2_at - concat)
    assert len(cd1) == len(cd2)
    return out + cd2 + eocd(2, len(cd1), cd1_at)


def prefix_relative(miniz_pkl, zipfile_pkl):
    """A zip written alone (offsets from its own start) after a prefix that starts like a
    zip: at the real directory's relative offset the prefix holds a directory of its own."""
    fake = local("archive/data.pkl", miniz_pkl)
    fake_ver = len(fake)
    fake += local(*VERSION)
    # The real zip: data.pkl, version, and padding so that its directory's relative
    # offset lies past the prefix's own local records.
    pkl = local("archive/data.pkl", zipfile_pkl)
    ver = local(*VERSION)
    pad = max(0, len(fake) - len(pkl) - len(ver) - len(local("archive/zz", b"")))
    real_locals = pkl + ver + local("archive/zz", b"\0" * pad)
    real_cd = (central("archive/data.pkl", zipfile_pkl, 0) + central(*VERSION, len(pkl))
               + central("archive/zz", b"\0" * pad, len(pkl) + len(ver)))
    assert len(fake) <= len(real_locals)
    fake = fake.ljust(len(real_locals), b"\0")
    fake += (central("archive/data.pkl", miniz_pkl, 0) + central(*VERSION, fake_ver)
             + central("archive/zz", b"", fake_ver))
    assert len(fake) == len(real_locals) + len(real_cd)
    return fake + real_locals + real_cd + eocd(3, len(real_cd), len(real_locals))


def zip64_elsewhere(miniz_pkl, zipfile_pkl):
    """[pkl1][pkl2][version][CD1][zip64 A->CD1][CD2][zip64 B->CD2][locator->A][end]: miniz
    follows the locator to A; zipfile takes B, right before the locator."""
    out = local("archive/data.pkl", miniz_pkl)
    p2 = len(out)
    out += local("archive/data.pkl", zipfile_pkl)
    ver = len(out)
    out += local(*VERSION)
    cd1_at = len(out)
    cd1 = central("archive/data.pkl", miniz_pkl, 0) + central(*VERSION, ver)
    out += cd1
    a_at = len(out)
    out += zip64_record(2, len(cd1), cd1_at)
    cd2_at = len(out)
    cd2 = central("archive/data.pkl", zipfile_pkl, p2) + central(*VERSION, ver)
    out += cd2 + zip64_record(2, len(cd2), cd2_at) + locator(a_at)
    return out + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)


def duplicates(first, last, adjacent):
    rest = [("archive/byteorder", b"little"), ("archive/data/0", b"\0" * 4), VERSION]
    if adjacent:
        return plain_zip([rest[0], ("archive/data.pkl", first), ("archive/data.pkl", last)] + rest[1:])
    return plain_zip([("archive/data.pkl", first)] + rest + [("archive/data.pkl", last)])


# ------------------------------------------------------------------------------- tar bytes

def header(name, size, typeflag=b"0"):
    h = bytearray(512)
    h[: len(name)] = name.encode()
    h[100:108] = b"0000644\0"
    h[108:116] = b"0000000\0"
    h[116:124] = b"0000000\0"
    h[124:136] = b"%011o\0" % size
    h[136:148] = b"00000000000\0"
    h[156:157] = typeflag
    h[257:263] = b"ustar\0"
    h[263:265] = b"00"
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    return bytes(h)


def padded(b):
    return b + b"\0" * (-len(b) % 512)


def member(name, data):
    return header(name, len(data)) + padded(data)


def pax(kind, records):
    body = b""
    for k, v in records:
        rest = b" %s=%s\n" % (k, v)
        n = len(rest) + 1
        while len(b"%d" % n + rest) != n:
            n += 1
        body += b"%d" % n + rest
    return header("PaxHeader", len(body), kind) + padded(body)


END = b"\0" * 1024


def pax_global_size():
    # model.pkl's own header says 0 bytes; the global size makes tarfile extract the
    # payload stored after it (and the walk then reads the payload as a header: the end).
    return (pax(b"g", [(b"size", b"%d" % len(EVIL_A))]) + member("readme.txt", b"")[:512]
            + header("model.pkl", 0) + padded(EVIL_A) + END)


def pax_local_size():
    return pax(b"x", [(b"size", b"%d" % len(EVIL_A))]) + header("model.pkl", 0) + padded(EVIL_A) + END


def zero_block_then_member():
    return member("readme.txt", b"hello\n") + b"\0" * 512 + member("model.pkl", EVIL_A) + END


def invalid_block_then_member():
    return (member("readme.txt", b"hello\n") + padded(b"not a header, not zeros")
            + member("model.pkl", EVIL_A) + END)


ZIP_CASES = {
    "two-directories-miniz-evil": lambda: two_directories(EVIL_A, BENIGN),
    "two-directories-zipfile-evil": lambda: two_directories(BENIGN, EVIL_B),
    "two-directories-both-evil": lambda: two_directories(EVIL_A, EVIL_B),
    "prefix-relative-miniz-evil": lambda: prefix_relative(EVIL_A, BENIGN),
    "prefix-relative-zipfile-evil": lambda: prefix_relative(BENIGN, EVIL_B),
    "zip64-locator-miniz-evil": lambda: zip64_elsewhere(EVIL_A, BENIGN),
    "zip64-locator-zipfile-evil": lambda: zip64_elsewhere(BENIGN, EVIL_B),
}
TAR_CASES = {
    "pax-global-size": pax_global_size,
    "pax-local-size": pax_local_size,
    "zero-block-then-member": zero_block_then_member,
    "invalid-block-then-member": invalid_block_then_member,
}


def planted(readers):
    """{(reader, member): payload} for every payload a real reader returns."""
    out = {}
    for reader, members in readers.items():
        if not isinstance(members, dict) or "error" in members:
            continue
        for name, digest in members.items():
            if isinstance(digest, str) and digest in PAYLOADS:
                out[(reader, name)] = PAYLOADS[digest]
    return out


def code_execution(report):
    return [(f.get("member"), f.get("reading")) for f in report["findings"] if f["rule"] == "code-execution"]


def disagree(report):
    return any(f["rule"] == "zip-tampering" and "readers disagree" in f["message"] for f in report["findings"])


@pytest.mark.parametrize("case", sorted(ZIP_CASES))
def test_zip_reading_is_scanned_as_each_reader_reads_it(case, tmp_path, picklegate_bin):
    path = tmp_path / f"{case}.pt"
    path.write_bytes(ZIP_CASES[case]())
    readers = real_readers("zip", path)
    hits = planted(readers)
    assert hits, f"no real reader returns a payload: {readers}"
    report = scan(picklegate_bin, path)
    assert disagree(report), report["findings"]
    found = code_execution(report)
    for (reader, name), payload in hits.items():
        member = "archive/data.pkl" if reader == "torch" else name
        want = READING[reader]
        assert (member, want) in found, (
            f"{reader} returns payload {payload} for {name}; picklegate's code-execution "
            f"findings are {found}")


@pytest.mark.parametrize("adjacent", [False, True])
@pytest.mark.parametrize("evil_first", [False, True])
def test_duplicate_names_resolve_as_the_readers_resolve_them(adjacent, evil_first, tmp_path, picklegate_bin):
    first, last = (EVIL_A, BENIGN) if evil_first else (BENIGN, EVIL_B)
    path = tmp_path / "dup.pt"
    path.write_bytes(duplicates(first, last, adjacent))
    readers = real_readers("zip", path)
    torch_evil = readers["torch"].get("data.pkl") in PAYLOADS
    zipfile_evil = readers["zipfile"].get("archive/data.pkl") in PAYLOADS
    report = scan(picklegate_bin, path)
    rules = {f["rule"] for f in report["findings"]}
    assert "zip-duplicate-member" in rules
    found = code_execution(report)
    # One directory for both readers: scanned once. The copy picklegate's miniz lookup
    # picks is analysed as torch's data.pkl (reading `torch`); the other as a member.
    torch_hit = ("archive/data.pkl", "torch") in found
    assert torch_hit == torch_evil, f"torch reads {'the payload' if torch_evil else 'the benign copy'}; findings {found}"
    if zipfile_evil or torch_evil:
        assert any(m == "archive/data.pkl" for m, _ in found), found


@pytest.mark.parametrize("case", sorted(TAR_CASES))
def test_tar_reading_is_scanned_as_tarfile_reads_it(case, tmp_path, picklegate_bin):
    path = tmp_path / f"{case}.tar"
    path.write_bytes(TAR_CASES[case]())
    readers = real_readers("tar", path)
    hits = planted(readers)
    assert hits, f"no real reader returns a payload: {readers}"
    report = scan(picklegate_bin, path)
    found = code_execution(report)
    strict = {name for (reader, name) in hits if reader == "tarfile"}
    for (reader, name), payload in hits.items():
        if reader == "tarfile-ignore-zeros" and name not in strict:
            assert (name, "tar-ignore-zeros") in found, (reader, name, found)
            assert any(f["rule"] == "trailing-data" for f in report["findings"])
        else:
            assert any(m == name for m, _ in found), (reader, name, found)
