#!/usr/bin/env bash
# Installs picklegate for the composite action (action.yml). Sub-commands:
#
#   setup.sh key      writes `key=<cache key>` to $GITHUB_OUTPUT: OS, architecture, the
#                     action's ref and a hash of the sources the binary is built from
#   setup.sh install  cargo install --locked into $PICKLEGATE_ROOT (default ~/.picklegate)
#   setup.sh path     puts $PICKLEGATE_ROOT/bin on $GITHUB_PATH (also after a cache hit)
#
# The binary is built from the action's own checkout ($GITHUB_ACTION_PATH), so the action,
# its scripts and the scanner are always the same commit and no network beyond crates.io is
# needed. Only when that checkout has no Cargo.toml does it fall back to
# `cargo install --git https://github.com/$ACTION_REPOSITORY --rev $ACTION_REF`
# (github.action_repository/action_ref are not reliable inside composite actions, see
# actions/runner#2473, which is why they are only the fallback).
#
# Every value comes from the environment (set through `env:` in action.yml), never from
# `${{ }}` expressions spliced into the script.
set -euo pipefail

action_path="${GITHUB_ACTION_PATH:-$(cd "$(dirname "$0")/../.." && pwd)}"
root="${PICKLEGATE_ROOT:-$HOME/.picklegate}"

python=python3
command -v python3 >/dev/null 2>&1 || python=python

case "${1:-}" in
  key)
    hash="$("$python" - "$action_path" <<'PY'
import hashlib, os, sys
root = sys.argv[1]
h = hashlib.sha256()
names = []
for top in ("Cargo.toml", "Cargo.lock", "src", "policies"):
    p = os.path.join(root, top)
    if os.path.isfile(p):
        names.append(top)
    for d, dirs, files in os.walk(p):
        dirs.sort()
        names += sorted(os.path.relpath(os.path.join(d, f), root) for f in files)
for n in names:
    h.update(n.replace(os.sep, "/").encode() + b"\0")
    with open(os.path.join(root, n), "rb") as f:
        h.update(hashlib.sha256(f.read()).digest())
print(h.hexdigest()[:20])
PY
)"
    ref="${ACTION_REF:-local}"
    ref="${ref//[^A-Za-z0-9._-]/_}"
    key="picklegate-${RUNNER_OS:-unknown}-${RUNNER_ARCH:-unknown}-${ref}-${hash}"
    echo "key=$key" >> "${GITHUB_OUTPUT:-/dev/stdout}"
    ;;
  install)
    if ! command -v cargo >/dev/null 2>&1; then
      echo "::error title=picklegate::cargo is not on PATH; install a Rust toolchain before this action (GitHub-hosted runners have one)"
      exit 1
    fi
    if [ -f "$action_path/Cargo.toml" ]; then
      echo "Building picklegate from the action's checkout ($action_path)"
      cargo install --locked --root "$root" --path "$action_path"
    elif [ -n "${ACTION_REPOSITORY:-}" ] && [ -n "${ACTION_REF:-}" ]; then
      echo "Building picklegate from https://github.com/$ACTION_REPOSITORY at $ACTION_REF"
      cargo install --locked --root "$root" --git "https://github.com/$ACTION_REPOSITORY" --rev "$ACTION_REF"
    else
      echo "::error title=picklegate::cannot tell where to build picklegate from (no Cargo.toml in $action_path, no action repository/ref)"
      exit 1
    fi
    ;;
  path)
    # The cache may have restored the binary: either way its bin/ goes on PATH.
    echo "$root/bin" >> "${GITHUB_PATH:-/dev/stdout}"
    ;;
  *)
    echo "usage: $0 key|install|path" >&2
    exit 2
    ;;
esac
