#!/usr/bin/env bash
# The scan step of the composite action (action.yml); runnable without GitHub for tests.
#
# Runs picklegate once on the range GitHub's event describes (`scan --ci`): workflow-command
# annotations on stdout (`--format github`, which also appends a markdown table to
# $GITHUB_STEP_SUMMARY) and the SARIF side report. It never fails the step: the exit code
# goes to the `exit-code` output and a later step enforces it.
#
# Environment (action.yml sets these from its inputs through `env:`):
#   PICKLEGATE_BIN         binary to run (default: picklegate on PATH)
#   PICKLEGATE_CONFIG      --config FILE (optional)
#   PICKLEGATE_ARGS        extra arguments, split on whitespace, never evaluated
#   PICKLEGATE_SARIF_FILE  SARIF report path (default: picklegate.sarif)
#   GITHUB_OUTPUT          outputs: exit-code, findings, sarif-file
#   GITHUB_EVENT_PATH, GITHUB_ACTIONS, GITHUB_STEP_SUMMARY: read by picklegate itself
set -uo pipefail

bin="${PICKLEGATE_BIN:-picklegate}"
sarif="${PICKLEGATE_SARIF_FILE:-picklegate.sarif}"
output="${GITHUB_OUTPUT:-/dev/stdout}"

args=(scan --ci --format github --report "sarif=$sarif")
if [ -n "${PICKLEGATE_CONFIG:-}" ]; then
  args+=(--config "$PICKLEGATE_CONFIG")
fi
extra=()
if [ -n "${PICKLEGATE_ARGS:-}" ]; then
  # Word splitting only: no globbing, no quotes, no expansion of what the user wrote.
  set -f
  read -r -a extra <<< "$PICKLEGATE_ARGS"
  set +f
fi

# Git LFS objects of the changed pointers first (a missing one is a deny finding in --ci).
# shellcheck source=../lfs-fetch.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lfs-fetch.sh"
picklegate_lfs_fetch "$bin" ${extra[@]+"${extra[@]}"}

# A SARIF file left by an earlier run must not be counted as this run's.
rm -f -- "$sarif"

"$bin" "${args[@]}" ${extra[@]+"${extra[@]}"}
code=$?

# Number of results in the SARIF report (every level); empty when no report was written
# (exit code 2: configuration error, unreadable object, shallow clone).
findings=""
if [ -f "$sarif" ]; then
  python=python3
  command -v python3 >/dev/null 2>&1 || python=python
  findings="$("$python" - "$sarif" <<'PY'
import json, sys
try:
    with open(sys.argv[1], encoding="utf-8") as f:
        log = json.load(f)
    print(sum(len(run.get("results") or []) for run in log.get("runs") or []))
except (OSError, ValueError, AttributeError, TypeError):
    print("")
PY
)"
fi

case "$code" in
  0) ;;
  1) ;;
  *)
    echo "::error title=picklegate::picklegate could not complete the scan (exit code $code); see the log above"
    if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
      printf '## picklegate\n\nThe scan did not complete (exit code %s): see the job log.\n' "$code" >> "$GITHUB_STEP_SUMMARY"
    fi
    ;;
esac

{
  echo "exit-code=$code"
  echo "findings=$findings"
  echo "sarif-file=$sarif"
} >> "$output"
exit 0
