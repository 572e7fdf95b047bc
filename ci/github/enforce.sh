#!/usr/bin/env bash
# The last step of the composite action (action.yml): fails the job according to the exit
# code the scan step captured.
#   PICKLEGATE_EXIT_CODE         the scan's exit code (empty: the scan step did not run)
#   PICKLEGATE_FAIL_ON_FINDINGS  'true' (default): exit code 1 (findings) fails the job;
#                                anything else: findings are reported but the job passes
# Exit code 2 (usage/configuration error, unreadable object, shallow clone) always fails:
# a gate that could not look must not pass.
set -euo pipefail

code="${PICKLEGATE_EXIT_CODE:-}"
fail_on_findings="${PICKLEGATE_FAIL_ON_FINDINGS:-true}"

case "$code" in
  0)
    echo "picklegate: nothing outside policy"
    ;;
  1)
    if [ "$fail_on_findings" = "true" ]; then
      echo "::error title=picklegate::pickles outside policy (see the annotations and the job summary)"
      exit 1
    fi
    echo "::warning title=picklegate::pickles outside policy; not failing because fail-on-findings is '$fail_on_findings'"
    ;;
  "")
    echo "::error title=picklegate::the scan did not run"
    exit 2
    ;;
  *)
    echo "::error title=picklegate::the scan failed with exit code $code"
    exit "$code"
    ;;
esac
