"""`picklegate sanitize` proven with the victims' own loaders, in subprocesses:

- every sanitized attack loads without the canary firing;
- every attack spliced into a real object (attacks.md 1-7 in torch state dicts, incl. "Bad Dict",
  the interwoven `_rebuild_tensor_v2`, obfuscated STACK_GLOBAL and protocol mixing; a fitted
  estimator; joblib files plain and in all six joblib codecs; legacy torch; object .npy/.npz;
  gzip/bz2/xz/zstd pickles) is sanitized, and loads into an object equal to the one the attack
  was injected into (structural equality incl. aliasing, torch.equal, estimator predictions);
- every benign fixture rebuilt with `--rebuild` loads into an object equal to the original;
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

from _oracle import attack_manifest, benign_manifest, run_equal, run_loader

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("PICKLEGATE_BIN", str(ROOT / "target" / "release" / "picklegate"))
FIX = ROOT / "tests" / "fixtures"
CONTAINERS = json.loads((FIX / "containers" / "manifest.json").read_text())
ATTACKS = attack_manifest()


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


def victim_chain(loader):
    # a sanitized torch file must load with torch's restricted loader
    return "torch_weights_only_true" if loader == "torch_weights_only_false" else loader


RAW_EQ = [e for e in ATTACKS if e.get("torch_state_dict") or e.get("original")]
CONTAINER_EQ = [e for e in CONTAINERS if e["kind"] == "attack" and e.get("original")]
BENIGN_RAW = benign_manifest()
BENIGN_CONTAINERS = [e for e in CONTAINERS if e["kind"] == "benign" and e["loader"] != "none"
                     and ";" not in e["loader"] and not e["rules"]]
# what `sanitize` rewrites; anything else is left as it is ("clean") even with --rebuild
REWRITTEN = {"pickle", "joblib", "npy", "npz", "torch-zip", "torch-legacy", "zip", "tar",
             "gzip", "bz2", "xz", "lzma", "zlib", "lz4", "zstd"}


def policy_args(entry):
    return [] if entry.get("default_policy", True) else ["--preset", "default", "--preset", "pandas"]


@pytest.fixture(scope="session")
def equality(tmp_path_factory):
    """Sanitizes every attack that has an original and rebuilds every benign fixture, then
    compares each output with its original in one interpreter. {id: (code, report, result)}"""
    tmp = tmp_path_factory.mktemp("equality")
    runs, jobs = {}, []

    def plan(key, src, extra, chain, original):
        out = tmp / key.replace("/", "_")
        r = subprocess.run([BIN, "sanitize", str(src), "-o", str(out), "--format", "json", *extra],
                           capture_output=True, text=True, timeout=300)
        report = json.loads(r.stdout) if r.stdout.strip() else {"stderr": r.stderr}
        runs[key] = [r.returncode, report, None]
        if r.returncode == 0 and report.get("status") == "sanitized":
            jobs.append((key, (out, chain, original)))

    for e in RAW_EQ:
        orig = e.get("torch_state_dict") or e["original"]
        chain = "torch_data_pkl" if e.get("torch_state_dict") else e["loader"]
        plan("attacks/" + e["file"], FIX / "attacks" / e["file"], [], chain, FIX / "benign" / orig)
    for e in CONTAINER_EQ:
        plan("containers/" + e["file"], FIX / "containers" / e["file"], [], victim_chain(e["loader"]),
             FIX / "containers" / e["original"])
    for e in BENIGN_RAW:
        plan("benign/" + e["file"], FIX / "benign" / e["file"], ["--rebuild", *policy_args(e)],
             e["loader"], FIX / "benign" / e["file"])
    for e in BENIGN_CONTAINERS:
        src = FIX / "containers" / e["file"]
        plan("containers/" + e["file"], src, ["--rebuild", *policy_args(e)], e["loader"], src)
    results = run_equal([j for _, j in jobs], tmp / "canary")
    for (key, _), res in zip(jobs, results):
        runs[key][2] = res
    return runs


def assert_equal_object(run):
    code, report, res = run
    assert code == 0 and report.get("status") == "sanitized", report
    assert res is not None
    assert not res["canary"], f"canary fired after sanitizing: {res}"
    assert res["error"] is None and res["equal"], res


@pytest.mark.parametrize("entry", RAW_EQ, ids=lambda e: e["file"])
def test_attack_in_a_real_object_is_sanitized_into_that_object(entry, equality):
    run = equality["attacks/" + entry["file"]]
    assert_equal_object(run)
    assert run[1]["changes"], "a sanitized attack reports what was removed or substituted"


@pytest.mark.parametrize("entry", CONTAINER_EQ, ids=lambda e: e["file"])
def test_container_attack_is_sanitized_into_the_original(entry, equality):
    run = equality["containers/" + entry["file"]]
    assert_equal_object(run)
    assert run[1]["changes"]


def test_every_class_and_container_is_proven():
    classes = {e["class"] for e in RAW_EQ}
    assert {f"attacks.md#{i}" for i in range(1, 8)} <= classes, classes
    formats = {e["format"] for e in CONTAINER_EQ}
    assert {"joblib", "torch-legacy", "npy", "npz", "gzip", "bz2", "xz", "zstd", "zip", "tar"} <= formats, formats
    codecs = {e["member"] for e in CONTAINER_EQ if e["format"] == "joblib"}
    assert {"<zlib>", "<gzip>", "<bz2>", "<lzma>", "<xz>", "<lz4>", None} <= codecs, codecs


def test_sanitized_estimators_predict_like_the_originals(equality):
    for key in ("attacks/a01_sequential_sklearn_logreg.pkl", "containers/mal_joblib_logreg_seq.joblib",
                "containers/mal_joblib_logreg_seq_lz4.joblib"):
        res = equality[key][2]
        assert res and res["equal"] and res["detail"] == "predictions equal on 16 random rows", (key, res)


@pytest.mark.parametrize("entry", BENIGN_RAW + BENIGN_CONTAINERS, ids=lambda e: e["file"])
def test_benign_file_rebuilds_into_an_equal_object(entry, equality):
    key = ("benign/" if entry in BENIGN_RAW else "containers/") + entry["file"]
    code, report, res = equality[key]
    fmt = entry.get("format", "pickle")
    if fmt not in REWRITTEN:
        assert code == 0 and report["status"] == "clean", report
        return
    assert_equal_object((code, report, res))


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
