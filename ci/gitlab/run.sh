#!/usr/bin/env bash
# The script of the GitLab CI job (picklegate.gitlab-ci.yml); runnable without GitLab.
#
# Runs picklegate once on the range the pipeline describes (`scan --ci`: the merge request's
# CI_MERGE_REQUEST_DIFF_BASE_SHA..CI_COMMIT_SHA, else CI_COMMIT_BEFORE_SHA..CI_COMMIT_SHA,
# else the whole tree of CI_COMMIT_SHA): human output in the job log, and the Code Quality
# report (a JSON array) written as a side report for `artifacts:reports:codequality`.
#
# Environment:
#   PICKLEGATE_BIN               binary to run (default: picklegate on PATH)
#   PICKLEGATE_CONFIG            --config FILE (optional)
#   PICKLEGATE_ARGS              extra arguments, split on whitespace, never evaluated
#   PICKLEGATE_REPORT            Code Quality report path (default: gl-code-quality-report.json)
#   PICKLEGATE_FAIL_ON_FINDINGS  'true' (default): findings (exit code 1) fail the job;
#                                anything else: they are reported and the job passes
# Errors (exit code 2: configuration, unreadable object, shallow clone) always fail the job.
set -uo pipefail

bin="${PICKLEGATE_BIN:-picklegate}"
report="${PICKLEGATE_REPORT:-gl-code-quality-report.json}"

args=(scan --ci --format human --report "gitlab=$report")
if [ -n "${PICKLEGATE_CONFIG:-}" ]; then
  args+=(--config "$PICKLEGATE_CONFIG")
fi
extra=()
if [ -n "${PICKLEGATE_ARGS:-}" ]; then
  set -f
  read -r -a extra <<< "$PICKLEGATE_ARGS"
  set +f
fi

# Git LFS objects of the changed pointers first (a missing one is a deny finding in --ci).
# Next to this script when the job installed it, in ci/ of a source checkout otherwise.
here="$(dirname "${BASH_SOURCE[0]}")"
if [ -f "$here/lfs-fetch.sh" ]; then source "$here/lfs-fetch.sh"; else source "$here/../lfs-fetch.sh"; fi
picklegate_lfs_fetch "$bin" ${extra[@]+"${extra[@]}"}

# A report left by an earlier run (a cached or reused build directory) must not be uploaded
# as this run's.
rm -f -- "$report"

"$bin" "${args[@]}" ${extra[@]+"${extra[@]}"}
code=$?

case "$code" in
  0)
    exit 0
    ;;
  1)
    if [ "${PICKLEGATE_FAIL_ON_FINDINGS:-true}" = "true" ]; then
      echo "picklegate: pickles outside policy (Code Quality report: $report)" >&2
      exit 1
    fi
    echo "picklegate: pickles outside policy; not failing because PICKLEGATE_FAIL_ON_FINDINGS is '${PICKLEGATE_FAIL_ON_FINDINGS}'" >&2
    exit 0
    ;;
  *)
    echo "picklegate: the scan did not complete (exit code $code)" >&2
    exit "$code"
    ;;
esac
