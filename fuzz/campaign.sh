#!/usr/bin/env bash
# A fuzzing campaign: each target in turn, one fuzzing process at a time.
#
#   bash fuzz/campaign.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 360, all five)
#
# Each target runs on its committed corpus (fuzz/corpus/<t>, which receives what the run
# discovers; sanitize also reads fuzz/corpus/scan) and its regressions, with `-jobs=1 -workers=1 -rss_limit_mb=2048 -timeout=10`.
# When a run stops on a crash, the rest of the target's time continues in fork mode with
# one child (`-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1`) so that further,
# different bugs are found too. Crashes land in fuzz/artifacts/<t>/; logs and a summary in
# fuzz/target/campaign/ (summary.tsv: target, executions, cov, features, corpus, crash files).
#
# Environment: FUZZ_TOOLCHAIN (default: the one `cargo` is, stable works with
# `--sanitizer none`), FUZZ_FLAGS (default: `--sanitizer none --debug-assertions`),
# CARGO_BUILD_JOBS (default 1: the machine is shared).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
secs="${1:-360}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(scan vm disasm sanitize config)
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
cargo=(cargo)
[ -z "${FUZZ_TOOLCHAIN:-}" ] || cargo+=("+$FUZZ_TOOLCHAIN")
read -r -a flags <<<"${FUZZ_FLAGS:---sanitizer none --debug-assertions}"
out="$here/target/campaign"
mkdir -p "$out"
summary="$out/summary.tsv"
printf 'target\tseconds\texecs\tcov\tft\tcorpus\tcrash_files\n' >"$summary"

"${cargo[@]}" fuzz build --fuzz-dir "$here" "${flags[@]}"

stats() { # the last status line of a log: execs cov ft corp
  grep -aE '^#[0-9]+.*cov: ' "$1" 2>/dev/null | tail -1 |
    sed -E 's/^#([0-9]+).*cov: ([0-9]+) ft: ([0-9]+) corp: ([0-9]+).*/\1 \2 \3 \4/'
}

for t in "${targets[@]}"; do
  dir="$out/$t"
  rm -rf "$dir"
  mkdir -p "$dir" "$here/artifacts/$t" "$here/corpus/$t" "$here/regressions/$t"
  start=$(date +%s)
  total=0
  round=0
  mode=jobs
  # The sanitize corpus keeps only what adds coverage beyond the scan corpus (minimize.sh).
  extra_corpus=()
  [ "$t" != sanitize ] || extra_corpus=("$here/corpus/scan")
  while :; do
    left=$((secs - ($(date +%s) - start)))
    [ "$left" -gt 5 ] || break
    round=$((round + 1))
    if [ "$mode" = jobs ]; then
      extra=(-jobs=1 -workers=1)
    else
      extra=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
    fi
    echo "== $t: round $round ($mode), ${left}s left"
    (cd "$dir" && "${cargo[@]}" fuzz run --fuzz-dir "$here" "${flags[@]}" "$t" \
      "$here/corpus/$t" "${extra_corpus[@]}" "$here/regressions/$t" -- \
      -max_total_time="$left" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      "${extra[@]}" >"round$round.out" 2>&1) && rc=0 || rc=$?
    log="$dir/round$round.out"
    [ "$mode" = jobs ] && [ -f "$dir/fuzz-0.log" ] && mv "$dir/fuzz-0.log" "$dir/round$round.log" && log="$dir/round$round.log"
    read -r e c f n <<<"$(stats "$log")" || true
    total=$((total + ${e:-0}))
    echo "   rc=$rc execs=${e:-?} cov=${c:-?} ft=${f:-?} corpus=${n:-?}"
    [ "$rc" -eq 0 ] && [ "$mode" = fork ] && break
    [ "$rc" -eq 0 ] && [ "$mode" = jobs ] && break
    mode=fork
  done
  crashes=$(find "$here/artifacts/$t" -type f -newermt "@$start" | wc -l)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$(($(date +%s) - start))" "$total" "${c:-?}" "${f:-?}" "${n:-?}" "$crashes" >>"$summary"
done
column -t "$summary"
