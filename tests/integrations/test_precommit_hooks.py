"""`.pre-commit-hooks.yaml`, checked by the real pre-commit client from PyPI.

The `picklegate-system` hook runs the binary under test (on PATH) through `pre-commit
try-repo`, a real `git commit` with the hook installed, and a real `git push` with the
pre-push hook installed. The `language: rust` hook is built by pre-commit itself
(`cargo install --path .` in its store) once, in test_rust_hook_builds_and_blocks."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import yaml

from _integ import BENIGN, EVIL, REPO, run

PRE_COMMIT = [sys.executable, "-m", "pre_commit"]
MANIFEST = REPO / ".pre-commit-hooks.yaml"


def hooks_by_id() -> dict[str, dict]:
    return {h["id"]: h for h in yaml.safe_load(MANIFEST.read_text())}


# --- (a) the manifest ---------------------------------------------------------------------


def test_manifest_is_valid_for_pre_commit():
    """pre-commit's own schema accepts the manifest (unknown keys, wrong types, bad stages)."""
    from pre_commit.clientlib import load_manifest

    ids = [h["id"] for h in load_manifest(str(MANIFEST))]
    assert ids == ["picklegate", "picklegate-system", "picklegate-sanitize"]


def test_manifest_uses_only_documented_keys():
    documented = {
        "id", "name", "entry", "language", "alias", "files", "exclude", "types", "types_or",
        "exclude_types", "additional_dependencies", "args", "always_run", "fail_fast",
        "pass_filenames", "description", "language_version", "log_file", "require_serial",
        "stages", "verbose", "minimum_pre_commit_version",
    }
    for hook in yaml.safe_load(MANIFEST.read_text()):
        assert set(hook) <= documented, (hook["id"], set(hook) - documented)
        for key in ("id", "name", "entry", "language"):
            assert hook.get(key), (hook["id"], key)


def test_gate_hooks():
    hooks = hooks_by_id()
    for hid, language in (("picklegate", "rust"), ("picklegate-system", "system")):
        h = hooks[hid]
        assert h["language"] == language
        assert h["entry"] == "picklegate scan --hook"
        assert h["require_serial"] is True
        assert h["pass_filenames"] is True
        assert h["types"] == ["file"]
        assert h["stages"] == ["pre-commit", "pre-merge-commit", "pre-push", "manual"]
        # No name filter: content decides what is a pickle.
        assert "files" not in h and "exclude" not in h and "types_or" not in h
        # Stage names pre-commit/pre-push exist since pre-commit 3.2.0.
        assert h["minimum_pre_commit_version"] == "3.2.0"


def test_sanitize_hook_is_manual_only():
    h = hooks_by_id()["picklegate-sanitize"]
    assert h["stages"] == ["manual"]
    assert h["entry"].startswith("picklegate sanitize --in-place")
    assert h["language"] == "rust"
    assert "left untouched" in h["description"]


def test_sanitize_hook_entry_handles_a_file_list(tmp_path):
    # What pre-commit runs for the manual hook: every file passes through the same entry.
    import shutil
    import subprocess
    root = Path(__file__).resolve().parents[2]
    binary = os.environ.get("PICKLEGATE_BIN", str(root / "target" / "release" / "picklegate"))
    text = tmp_path / "README.md"
    text.write_text("not a pickle\n")
    clean = tmp_path / "clean.pkl"
    shutil.copy(root / "tests/fixtures/benign/torch_linear.pkl", clean)
    evil = tmp_path / "evil.pkl"
    shutil.copy(root / "tests/fixtures/attacks/a04_bad_dict.pkl", evil)
    before = {p: p.read_bytes() for p in (text, clean)}
    entry = hooks_by_id()["picklegate-sanitize"]["entry"].split()
    r = subprocess.run([binary, *entry[1:], str(text), str(clean), str(evil)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert all(p.read_bytes() == b for p, b in before.items())
    assert not (tmp_path / "README.md.orig").exists() and not (tmp_path / "clean.pkl.orig").exists()
    assert (tmp_path / "evil.pkl.orig").exists()
    assert subprocess.run([binary, "scan", str(evil)], capture_output=True).returncode == 0


# --- (b) the system hook through the real client --------------------------------------------


def user_repo(git_repo):
    repo = git_repo("user")
    repo.write("README.md", "a project with models\n")
    repo.add("README.md")
    repo.commit("initial")
    return repo


def try_repo(hook_repo, hook: str, cwd: Path, env, *extra: str, timeout=600):
    path, commit = hook_repo
    return run([*PRE_COMMIT, "try-repo", path, hook, "--ref", commit, "--verbose", *extra],
               cwd=cwd, env=env, timeout=timeout)


def test_try_repo_blocks_a_staged_malicious_model(git_repo, env, hook_repo):
    repo = user_repo(git_repo)
    repo.write("models/model.pt", EVIL)  # the name does not matter, the content does
    repo.add("models/model.pt")
    r = try_repo(hook_repo, "picklegate-system", repo.path, env)
    assert r.returncode != 0, r.stdout
    assert "code-execution" in r.stdout, r.stdout
    assert "models/model.pt" in r.stdout, r.stdout
    assert "Failed" in r.stdout, r.stdout


def test_try_repo_passes_a_staged_benign_model(git_repo, env, hook_repo):
    repo = user_repo(git_repo)
    repo.write("models/linear.pkl", BENIGN)
    repo.add("models/linear.pkl")
    r = try_repo(hook_repo, "picklegate-system", repo.path, env)
    assert r.returncode == 0, r.stdout
    assert "Passed" in r.stdout, r.stdout


def test_try_repo_scans_the_index_not_the_work_tree(git_repo, env, hook_repo):
    """`--files` makes pre-commit skip its stash, so the work tree (benign) differs from the
    index (malicious): the hook must judge what would be committed."""
    repo = user_repo(git_repo)
    repo.write("model.bin", EVIL)
    repo.add("model.bin")
    repo.write("model.bin", BENIGN)
    r = try_repo(hook_repo, "picklegate-system", repo.path, env, "--files", "model.bin")
    assert r.returncode != 0, r.stdout
    assert "code-execution" in r.stdout, r.stdout


def test_try_repo_all_files_scans_committed_models(git_repo, env, hook_repo):
    """`pre-commit run --all-files` (what CI jobs running pre-commit do) passes every tracked
    file, changed or not: a model committed long ago is judged too."""
    repo = user_repo(git_repo)
    repo.write("legacy/model.joblib", EVIL)
    repo.write("models/linear.pkl", BENIGN)
    repo.add("legacy/model.joblib", "models/linear.pkl")
    repo.commit("old models", "--no-verify")
    r = try_repo(hook_repo, "picklegate-system", repo.path, env, "--all-files")
    assert r.returncode != 0, r.stdout
    assert "code-execution" in r.stdout and "legacy/model.joblib" in r.stdout, r.stdout


def write_config(repo, hook_repo, hook_id: str) -> None:
    path, commit = hook_repo
    config = {
        "default_install_hook_types": ["pre-commit", "pre-push"],
        "repos": [{"repo": str(path), "rev": commit, "hooks": [{"id": hook_id}]}],
    }
    repo.write(".pre-commit-config.yaml", yaml.safe_dump(config, sort_keys=False))
    repo.add(".pre-commit-config.yaml")
    repo.commit("pre-commit config", "--no-verify")
    r = run([*PRE_COMMIT, "install"], cwd=repo.path, env=repo.env)
    assert r.returncode == 0, r.stdout


def test_commit_with_a_malicious_model_is_blocked(git_repo, env, hook_repo):
    repo = user_repo(git_repo)
    write_config(repo, hook_repo, "picklegate-system")
    before = repo.head()

    repo.write("checkpoints/ckpt.pkl", EVIL)
    repo.add("checkpoints/ckpt.pkl")
    r = run(["git", "commit", "-m", "add a model"], cwd=repo.path, env=env)
    assert r.returncode != 0, r.stdout
    assert "code-execution" in r.stdout, r.stdout
    assert repo.head() == before, "the commit went through"

    repo.git("rm", "-q", "--cached", "checkpoints/ckpt.pkl")
    (repo.path / "checkpoints/ckpt.pkl").unlink()
    repo.write("checkpoints/linear.pkl", BENIGN)
    repo.add("checkpoints/linear.pkl")
    r = run(["git", "commit", "-m", "add a benign model"], cwd=repo.path, env=env)
    assert r.returncode == 0, r.stdout
    assert repo.head() != before


def test_push_of_a_malicious_commit_is_blocked(git_repo, env, hook_repo, tmp_path):
    """pre-push: pre-commit sets PRE_COMMIT_FROM_REF/TO_REF and picklegate scans that range.
    The model is committed with --no-verify and then removed from the index, so only the
    pushed commits still hold it."""
    remote = tmp_path / "remote.git"
    r = run(["git", "init", "-q", "--bare", "-b", "main", remote], cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stdout
    repo = user_repo(git_repo)
    write_config(repo, hook_repo, "picklegate-system")
    repo.git("remote", "add", "origin", str(remote))
    r = run(["git", "push", "-q", "origin", "main"], cwd=repo.path, env=env)
    assert r.returncode == 0, r.stdout
    pushed = repo.head()

    repo.write("weights", EVIL)
    repo.add("weights")
    repo.commit("sneak a model in", "--no-verify")
    repo.write("notes.txt", "unrelated\n")
    repo.add("notes.txt")
    repo.commit("another commit", "--no-verify")
    repo.git("rm", "-q", "--cached", "weights")

    r = run(["git", "push", "origin", "main"], cwd=repo.path, env=env)
    assert r.returncode != 0, r.stdout
    assert "code-execution" in r.stdout, r.stdout
    remote_head = run(["git", "rev-parse", "main"], cwd=remote, env=env).stdout.strip()
    assert remote_head == pushed


def test_push_of_benign_commits_passes(git_repo, env, hook_repo, tmp_path):
    remote = tmp_path / "remote.git"
    run(["git", "init", "-q", "--bare", "-b", "main", remote], cwd=tmp_path, env=env, check=True)
    repo = user_repo(git_repo)
    write_config(repo, hook_repo, "picklegate-system")
    repo.git("remote", "add", "origin", str(remote))
    r = run(["git", "push", "-q", "origin", "main"], cwd=repo.path, env=env)
    assert r.returncode == 0, r.stdout

    repo.write("models/linear.pkl", BENIGN)
    repo.add("models/linear.pkl")
    repo.commit("a benign model", "--no-verify")
    r = run(["git", "push", "origin", "main"], cwd=repo.path, env=env)
    assert r.returncode == 0, r.stdout


def test_first_push_of_a_malicious_branch_to_an_empty_remote_is_blocked(git_repo, env, hook_repo, tmp_path):
    """A new branch whose history reaches the root commit: pre-commit sets no FROM/TO refs
    (it passes the checked-out files instead); picklegate scans what the push adds, from
    the pushed ref, while `main` (clean) is checked out."""
    remote = tmp_path / "remote.git"
    run(["git", "init", "-q", "--bare", "-b", "main", remote], cwd=tmp_path, env=env, check=True)
    repo = user_repo(git_repo)
    write_config(repo, hook_repo, "picklegate-system")
    repo.git("remote", "add", "origin", str(remote))
    repo.git("checkout", "-q", "-b", "feature")
    repo.write("models/evil.pt", EVIL)
    repo.add("models/evil.pt")
    repo.commit("a model", "--no-verify")
    repo.git("checkout", "-q", "main")
    r = run(["git", "push", "origin", "feature"], cwd=repo.path, env=env)
    assert r.returncode != 0, r.stdout
    assert "code-execution" in r.stdout and "models/evil.pt" in r.stdout, r.stdout
    refs = run(["git", "for-each-ref"], cwd=remote, env=env).stdout
    assert "feature" not in refs, refs


def test_clean_branch_is_pushed_while_a_dirty_one_is_checked_out(git_repo, env, hook_repo, tmp_path):
    """The reverse: what is staged or committed on the checked-out branch never blocks the
    push of another, clean branch (first push to an empty remote and a later one)."""
    remote = tmp_path / "remote.git"
    run(["git", "init", "-q", "--bare", "-b", "main", remote], cwd=tmp_path, env=env, check=True)
    repo = user_repo(git_repo)
    write_config(repo, hook_repo, "picklegate-system")
    repo.git("remote", "add", "origin", str(remote))
    repo.git("checkout", "-q", "-b", "clean")
    repo.write("models/linear.pkl", BENIGN)
    repo.add("models/linear.pkl")
    repo.commit("a benign model", "--no-verify")
    repo.git("checkout", "-q", "-b", "dirty")
    repo.write("dirty.pkl", EVIL)
    repo.add("dirty.pkl")
    repo.commit("payload", "--no-verify")
    repo.write("staged.pkl", EVIL)
    repo.add("staged.pkl")
    r = run(["git", "push", "origin", "clean"], cwd=repo.path, env=env)
    assert r.returncode == 0, r.stdout
    # The dirty branch itself is still refused.
    r = run(["git", "push", "origin", "dirty"], cwd=repo.path, env=env)
    assert r.returncode != 0, r.stdout
    assert "dirty.pkl" in r.stdout, r.stdout


# --- (c) the language: rust hook, built by pre-commit -----------------------------------------


@pytest.mark.slow
def test_rust_hook_builds_and_blocks(git_repo, env, base_env, hook_repo):
    """pre-commit builds the hook with `cargo install --bins --root <env> --path .` in its
    store (no --locked: dependencies resolve fresh) and runs it. try-repo uses a fresh store
    each time, so this is one run: a malicious and a benign model staged together.

    CARGO_TARGET_DIR defaults to target/pre-commit-hook so that a second local run reuses
    the dependencies' build (PICKLEGATE_HOOK_TARGET_DIR overrides; CI starts empty)."""
    e = dict(env)
    # The binary under test is not put on PATH: what answers is pre-commit's build (which
    # pre-commit puts first on PATH in any case).
    e["PATH"] = base_env["PATH"]
    e["CARGO_TARGET_DIR"] = os.environ.get(
        "PICKLEGATE_HOOK_TARGET_DIR", str(REPO / "target" / "pre-commit-hook")
    )
    repo = user_repo(git_repo)
    repo.write("models/evil.ckpt", EVIL)
    repo.write("models/linear.pkl", BENIGN)
    repo.add("models/evil.ckpt", "models/linear.pkl")
    r = try_repo(hook_repo, "picklegate", repo.path, e, timeout=3600)
    assert "Installing environment" in r.stdout or "Initializing environment" in r.stdout, r.stdout
    assert r.returncode != 0, r.stdout
    assert "code-execution" in r.stdout, r.stdout
    assert "models/evil.ckpt" in r.stdout, r.stdout
