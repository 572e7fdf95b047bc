#!/usr/bin/env bash
# Installs picklegate for the composite action (action.yml). Sub-commands:
#
#   setup.sh key      writes `mode=`, `tag=` and `key=<cache key>` to $GITHUB_OUTPUT
#   setup.sh install  installs into $PICKLEGATE_ROOT (default ~/.picklegate) the way
#                     $PICKLEGATE_INSTALL says
#   setup.sh path     puts $PICKLEGATE_ROOT/bin on $GITHUB_PATH (also after a cache hit)
#
# PICKLEGATE_INSTALL (the action's `install` input):
#   release (default; `true` is the same)  the released binary for this runner's OS and
#             architecture, verified against the release's SHA256SUMS (ci/install-release.sh).
#             The release is PICKLEGATE_VERSION when set, else the action's own ref when that
#             is a version tag, else `v` + the version in the action's Cargo.toml. The cache
#             key is the tag, OS and architecture.
#   source    cargo install --locked from the action's own checkout ($GITHUB_ACTION_PATH), so
#             the action, its scripts and the scanner are the same commit; the cache key hashes
#             the sources. Only when that checkout has no Cargo.toml does it fall back to
#             `cargo install --git https://github.com/$ACTION_REPOSITORY --rev $ACTION_REF`.
#   none (`false` is the same)  use a picklegate already on PATH.
#
# github.action_repository/action_ref are not reliable inside composite actions
# (actions/runner#2473): the repository is also read from the action's path on the runner
# (…/_actions/OWNER/NAME/REF), and the release tag from its Cargo.toml.
#
# Every value comes from the environment (set through `env:` in action.yml), never from
# `${{ }}` expressions spliced into the script.
set -euo pipefail

action_path="${GITHUB_ACTION_PATH:-$(cd "$(dirname "$0")/../.." && pwd)}"
root="${PICKLEGATE_ROOT:-$HOME/.picklegate}"

python=python3
command -v python3 >/dev/null 2>&1 || python=python

mode="${PICKLEGATE_INSTALL:-release}"
case "$mode" in
  release | true) mode=release ;;
  source) ;;
  none | false) mode=none ;;
  *)
    echo "::error title=picklegate::install must be release, source or none (got '$mode')"
    exit 2
    ;;
esac

# The release tag to install: an explicit version, the action's ref when it is a tag, or
# the version of the action's own Cargo.toml.
release_tag() {
  local v="${PICKLEGATE_VERSION:-}"
  if [ -n "$v" ]; then
    case "$v" in [0-9]*) v="v$v" ;; esac
    echo "$v"
    return
  fi
  local ref="${ACTION_REF:-}"
  ref="${ref#refs/tags/}"
  case "$ref" in
    v[0-9]*) echo "$ref"; return ;;
  esac
  v="$(sed -n 's/^version = "\([^"]*\)"$/\1/p' "$action_path/Cargo.toml" 2>/dev/null | head -n 1)"
  if [ -z "$v" ]; then
    echo "::error title=picklegate::cannot tell which release to install (no version tag, no Cargo.toml in $action_path); set the version input" >&2
    exit 2
  fi
  echo "v$v"
}

# owner/name of the action: github.action_repository, else the runner's checkout path.
action_repository() {
  if [ -n "${ACTION_REPOSITORY:-}" ]; then
    echo "$ACTION_REPOSITORY"
    return
  fi
  case "$action_path" in
    */_actions/*/*/*)
      local rest="${action_path#*/_actions/}"
      local owner="${rest%%/*}"
      rest="${rest#*/}"
      echo "$owner/${rest%%/*}"
      ;;
  esac
}

case "${1:-}" in
  key)
    out="${GITHUB_OUTPUT:-/dev/stdout}"
    echo "mode=$mode" >> "$out"
    if [ "$mode" = none ]; then
      exit 0
    fi
    if [ "$mode" = release ]; then
      tag="$(release_tag)"
      echo "tag=$tag" >> "$out"
      echo "key=picklegate-release-${RUNNER_OS:-unknown}-${RUNNER_ARCH:-unknown}-${tag//[^A-Za-z0-9._-]/_}" >> "$out"
      exit 0
    fi
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
    echo "key=$key" >> "$out"
    ;;
  install)
    if [ "$mode" = none ]; then
      exit 0
    fi
    if [ "$mode" = release ]; then
      tag="${PICKLEGATE_TAG:-}"
      [ -n "$tag" ] || tag="$(release_tag)"
      repository="$(action_repository)"
      start=$SECONDS
      PICKLEGATE_REPOSITORY="$repository" bash "$action_path/ci/install-release.sh" "$tag" "$root"
      echo "picklegate: release install took $((SECONDS - start)) s"
      exit 0
    fi
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
