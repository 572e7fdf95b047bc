#!/usr/bin/env bash
# Sourced by ci/github/run.sh and ci/gitlab/run.sh.
# Git LFS: a pointer whose object was not fetched is a deny finding in --ci (the model was
# not seen). When git-lfs is installed, fetch the objects of exactly the changed pointers
# first (`git lfs fetch` downloads into .git/lfs/objects and leaves the work tree alone).
#
#   picklegate_lfs_fetch BIN [EXTRA-ARGS...]
picklegate_lfs_fetch() {
  local bin="$1"; shift
  if git lfs version >/dev/null 2>&1; then
    local lfs_paths=() p include
    while IFS= read -r p; do
      # `--include` is a comma-separated list of patterns: a path with a comma or a glob
      # character cannot be named exactly and stays unfetched (and denied).
      case "$p" in *[,*?[]*) continue ;; esac
      lfs_paths+=("$p")
    done < <("$bin" scan --ci --list-missing-lfs "$@" 2>/dev/null)
    if [ "${#lfs_paths[@]}" -gt 0 ]; then
      include="$(IFS=,; echo "${lfs_paths[*]}")"
      echo "picklegate: fetching ${#lfs_paths[@]} Git LFS object(s) of changed files" >&2
      git lfs fetch --include="$include" --exclude="" >&2 || echo "picklegate: git lfs fetch failed; unfetched models are denied" >&2
    fi
  fi
}
