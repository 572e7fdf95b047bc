"""Every attack fixture really attacks: loading it the victim's way fires the canary.

Each load runs in a fresh interpreter with $PICKLEGATE_CANARY pointing at a temporary file;
the payloads only write the word `fired` there.  Benign fixtures must load cleanly and never
touch the canary.  Loads run in parallel (a small thread pool of subprocesses)."""

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

import _oracle

ATTACKS = _oracle.attack_manifest()
BENIGN = _oracle.benign_manifest()
FIRING = [e for e in ATTACKS if e["canary"]]
STATE_DICT = [e for e in ATTACKS if e.get("torch_state_dict")]
BENIGN_BY_FILE = {e["file"]: e for e in BENIGN}
KNOWN_LOADERS = {"pickle.loads", "pickle.load_file", "pickle.loads_loop",
                 "torch_weights_only_false", "torch_data_pkl"}
WORKERS = max(2, min(4, os.cpu_count() or 2))


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """All subprocess loads, done once, in parallel. key -> run_loader result."""
    base = tmp_path_factory.mktemp("canary")
    jobs = {}
    for e in FIRING:
        # asynchronous payloads (spawned child) get a few seconds to write the canary
        jobs[("attack", e["file"])] = (_oracle.ATTACKS_DIR / e["file"], e["loader"],
                                       _oracle.setup_arg(e), 10.0)
    for e in BENIGN:
        jobs[("benign", e["file"])] = (_oracle.BENIGN_DIR / e["file"], e["loader"], None, 0.0)
    for i, key in enumerate(sorted(jobs)):
        d = base / f"job{i}"
        d.mkdir()
        jobs[key] = jobs[key] + (d / "canary",)

    def one(key):
        path, loader, setup, wait, canary = jobs[key]
        return key, _oracle.run_loader(path, loader, setup, canary, canary_wait=wait)

    with ThreadPoolExecutor(WORKERS) as ex:
        return dict(ex.map(one, sorted(jobs)))


def test_manifest_is_consistent():
    files = {f for f in os.listdir(_oracle.ATTACKS_DIR) if f.endswith(".pkl")}
    assert files == {e["file"] for e in ATTACKS}
    files = {f for f in os.listdir(_oracle.BENIGN_DIR) if f.endswith(".pkl")}
    assert files == {e["file"] for e in BENIGN}
    rule_ids = {"code-execution", "global-not-allowed", "unresolved-global", "unresolved-call",
                "build-on-global", "method-call", "extension-code", "persistent-id",
                "malformed-pickle", "frame-violation", "trailing-pickle", "trailing-data"}
    for e in ATTACKS:
        assert e["rules"] and set(e["rules"]) <= rule_ids, e
        assert e["loader"] in KNOWN_LOADERS, e
        assert e["setup"] in (None, "copyreg_ext"), e
        assert isinstance(e["canary"], bool), e
    for e in BENIGN:
        assert e["source"] in {"torch", "transformers", "sklearn", "numpy", "pandas", "python"}, e
        assert isinstance(e["default_policy"], bool), e
        assert e["loader"] in KNOWN_LOADERS, e


@pytest.mark.parametrize("entry", FIRING, ids=[e["file"] for e in FIRING])
def test_attack_fires(entry, runs):
    r = runs[("attack", entry["file"])]
    assert r["canary"] is not None and r["canary"].strip() == "fired", (
        f"canary did not fire for {entry['file']} (loader {entry['loader']}): "
        f"error={r['error']!r} stderr={r['stderr'][-800:]!r}")


@pytest.mark.parametrize("entry", STATE_DICT, ids=[e["file"] for e in STATE_DICT])
def test_spliced_attack_still_loads_the_state_dict(entry, runs):
    """Spliced attacks keep the victim's object intact (what a sanitizer must restore)."""
    r = runs[("attack", entry["file"])]
    base = runs[("benign", entry["torch_state_dict"])]
    assert base["error"] is None, base
    assert r["error"] is None, r["error"]
    assert r["summary"] == base["summary"]


@pytest.mark.parametrize("entry", BENIGN, ids=[e["file"] for e in BENIGN])
def test_benign_loads_without_canary(entry, runs):
    r = runs[("benign", entry["file"])]
    assert r["error"] is None, f"{entry['file']}: {r['error']} {r['stderr'][-800:]}"
    assert r["canary"] is None, f"{entry['file']} touched the canary: {r['canary']!r}"
