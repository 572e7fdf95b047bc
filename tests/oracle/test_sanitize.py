"""`picklegate sanitize` proven with the victims' own loaders, in subprocesses:

- every sanitized attack loads without the canary firing;
- seed attack classes spliced into real torch state dicts (attacks.md 1-5, incl. "Bad Dict" and
  the interwoven `_rebuild_tensor_v2`) are sanitized, and load into the same object as the file
  the attack was injected into;
- torch zip attacks are repacked into files `torch.load(weights_only=True)` and Python's
  zipfile accept, with tensors equal (`torch.equal`) to the original checkpoint;
- clean files are left untouched; files that cannot be sanitized are refused and not written.
"""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from _oracle import attack_manifest, run_loader

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("PICKLEGATE_BIN", str(ROOT / "target" / "release" / "picklegate"))
FIX = ROOT / "tests" / "fixtures"
CONTAINERS = json.loads((FIX / "containers" / "manifest.json").read_text())
ATTACKS = attack_manifest()
SEED = [e for e in ATTACKS if e.get("torch_state_dict")]


def sanitize(src, out):
    r = subprocess.run([BIN, "sanitize", str(src), "-o", str(out), "--format", "json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout), r.stderr


@pytest.mark.parametrize("entry", ATTACKS, ids=lambda e: e["file"])
def test_every_attack_is_sanitized_or_refused(entry, tmp_path):
    src = FIX / "attacks" / entry["file"]
    before = src.read_bytes()
    out = tmp_path / ("clean_" + entry["file"])
    code, report, _ = sanitize(src, out)
    assert src.read_bytes() == before, "the input must never change"
    if code == 1:
        assert report["status"] == "refused" and report["reason"], report
        assert not out.exists(), "a refused file must not be written"
        return
    assert report["status"] == "sanitized", report
    assert report["changes"], "a sanitized attack reports what was removed or substituted"
    # The output passes the gate.
    r = subprocess.run([BIN, "scan", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout
    # And the victim's loader runs it without the payload.
    loader = entry["loader"]
    if entry.get("torch_state_dict") or loader == "torch_weights_only_false":
        loader = "torch_data_pkl"  # a raw torch data.pkl: torch's persistent_load
    res = run_loader(out, loader, None, tmp_path / "canary")
    assert not res["canary"], f"canary fired after sanitizing: {res}"
    assert res["error"] is None, res


@pytest.mark.parametrize("entry", SEED, ids=lambda e: e["file"])
def test_seed_attacks_load_into_the_original_object(entry, tmp_path):
    out = tmp_path / "clean.pkl"
    code, report, err = sanitize(FIX / "attacks" / entry["file"], out)
    assert code == 0, f"{report} {err}"
    clean = run_loader(out, "torch_data_pkl", None, tmp_path / "canary")
    original = run_loader(FIX / "benign" / entry["torch_state_dict"], "torch_data_pkl", None, tmp_path / "canary2")
    assert not clean["canary"]
    assert clean["error"] is None and original["error"] is None, (clean, original)
    assert clean["summary"] == original["summary"]


TORCH_ZIP = [e for e in CONTAINERS if e["kind"] == "attack" and e["format"] == "torch-zip"]

COMPARE = r'''
import sys, torch, zipfile
clean, orig = sys.argv[1], sys.argv[2]
assert zipfile.ZipFile(clean).testzip() is None
a = torch.load(clean, weights_only=True)
b = torch.load(orig, weights_only=True)
assert type(a) is type(b), (type(a), type(b))
assert list(a.keys()) == list(b.keys()), (list(a), list(b))
for k in b:
    assert torch.equal(a[k], b[k]), k
print("EQUAL")
'''


@pytest.mark.parametrize("entry", TORCH_ZIP, ids=lambda e: e["file"])
def test_torch_zip_attacks_repack_into_the_original_checkpoint(entry, tmp_path):
    src = FIX / "containers" / entry["file"]
    out = tmp_path / "clean.pt"
    code, report, err = sanitize(src, out)
    if code == 1:
        assert not out.exists()
        assert report["reason"], report
        return
    env = dict(os.environ, PICKLEGATE_CANARY=str(tmp_path / "canary"))
    r = subprocess.run([sys.executable, "-c", COMPARE, str(out), str(FIX / "containers" / "torch_zip_state_dict.pt")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and "EQUAL" in r.stdout, r.stderr
    assert not (tmp_path / "canary").exists()


def test_the_common_torch_zip_tricks_are_all_sanitized(tmp_path):
    for name in ["mal_torch_zip_plain.pt", "mal_torch_zip_crc_zeroed.pt", "mal_torch_zip_hidden_member.pt",
                 "mal_torch_zip_duplicate_member.pt", "mal_torch_zip_flag_0x20.pt", "mal_torch_zip_overlap.pt"]:
        code, report, err = sanitize(FIX / "containers" / name, tmp_path / name)
        assert code == 0, f"{name}: {report} {err}"


def test_clean_files_are_left_untouched(tmp_path):
    out = tmp_path / "never.pt"
    code, report, _ = sanitize(FIX / "containers" / "torch_zip_state_dict.pt", out)
    assert code == 0 and report["status"] == "clean"
    assert not out.exists()


def test_in_place_keeps_a_backup(tmp_path):
    victim = tmp_path / "model.pkl"
    victim.write_bytes((FIX / "attacks" / "a04_bad_dict.pkl").read_bytes())
    r = subprocess.run([BIN, "sanitize", str(victim), "--in-place"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "model.pkl.orig").read_bytes() == (FIX / "attacks" / "a04_bad_dict.pkl").read_bytes()
    assert subprocess.run([BIN, "scan", str(victim)], capture_output=True).returncode == 0


def test_unsanitizable_interwoven_results_are_refused_with_the_reason(tmp_path):
    # a07 stores the results of exec/os.system in the state dict itself: nothing safe can stand in.
    out = tmp_path / "x.pkl"
    code, report, _ = sanitize(FIX / "attacks" / "a07_protocol_mixing.pkl", out)
    assert code == 1 and not out.exists()
    assert "stores it into" in report["reason"] and "no safe substitute" in report["reason"]


NPY_COMPARE = r'''
import sys, numpy as np
a = np.load(sys.argv[1], allow_pickle=True)
b = np.load(sys.argv[2], allow_pickle=True)
assert a.dtype == b.dtype and a.shape == b.shape
assert all(x == y for x, y in zip(a.tolist(), b.tolist())), (a, b)
print("EQUAL")
'''


def test_object_npy_is_sanitized_into_the_original_array(tmp_path):
    out = tmp_path / "clean.npy"
    code, report, err = sanitize(FIX / "containers" / "mal_numpy_object.npy", out)
    assert code == 0, f"{report} {err}"
    env = dict(os.environ, PICKLEGATE_CANARY=str(tmp_path / "canary"))
    r = subprocess.run([sys.executable, "-c", NPY_COMPARE, str(out), str(FIX / "containers" / "numpy_object.npy")],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0 and "EQUAL" in r.stdout, r.stderr
    assert not (tmp_path / "canary").exists()
