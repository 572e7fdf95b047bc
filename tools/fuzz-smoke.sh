#!/usr/bin/env bash
# Fuzzing smoke test, for CI: every fuzz target (fuzz/fuzz_targets/) runs its committed corpus
# (fuzz/corpus/<t>/) and its regressions (fuzz/regressions/<t>/: minimised crashers, each a
# bug that must stay fixed), then fuzzes briefly. Any crash, timeout, out-of-memory or
# broken invariant fails the script. Nothing in the work tree is written.
#
#   bash tools/fuzz-smoke.sh
#
# Two modes (FUZZ_SMOKE_MODE=auto|fuzz|replay, default auto):
#   fuzz    `cargo fuzz run` (libFuzzer, `--sanitizer none`: stable Rust is enough; nightly
#           only when the stable build fails and a nightly toolchain is installed) of each
#           target for FUZZ_SMOKE_SECONDS (default 15) with -rss_limit_mb=2048 -timeout=10;
#           libFuzzer runs every corpus and regression file before it mutates.
#   replay  no cargo-fuzz: the same bodies on stable through fuzz/replay (no libFuzzer),
#           every corpus and regression file once, 4 s limit each (FUZZ_SMOKE_REPLAY_TIMEOUT;
#           the plain build is ~2.5x faster than the instrumented one, so 4 s ≈ -timeout=10).
# auto is fuzz when `cargo fuzz` is installed (or FUZZ_SMOKE_INSTALL=1 installs it:
# `cargo install cargo-fuzz --locked`, about a minute), replay otherwise.
#
# Builds go to FUZZ_SMOKE_TARGET_DIR (default ~/.cache/picklegate/fuzz-target), outside the
# clone, so that a machine that ran it before rebuilds only picklegate itself.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
started=$(date +%s)
mode="${FUZZ_SMOKE_MODE:-auto}"
secs="${FUZZ_SMOKE_SECONDS:-15}"
targets=(scan vm disasm sanitize config)
target_dir="${FUZZ_SMOKE_TARGET_DIR:-$HOME/.cache/picklegate/fuzz-target}"
mkdir -p "$target_dir"
work="$(mktemp -d "${TMPDIR:-/tmp}/picklegate-fuzz-smoke.XXXXXX")"
trap 'rm -rf "$work"' EXIT

say() { echo "fuzz-smoke: $*"; }
elapsed() { echo "$(($(date +%s) - started))s"; }

# The inputs of a target that exist (git keeps no empty directories). The sanitize corpus
# holds only what adds coverage beyond the scan corpus (fuzz/minimize.sh): it gets both.
inputs() {
  local d extra=()
  [ "$1" != sanitize ] || extra=(fuzz/corpus/scan)
  for d in "fuzz/corpus/$1" "${extra[@]}" "fuzz/regressions/$1"; do
    if [ -d "$d" ]; then echo "$root/$d"; fi
  done
}

# The first compiler error of a failed build (cargo-fuzz ends with its own backtrace, which
# says nothing about the cause), else the last lines.
show_build_error() {
  if grep -q '^error' "$work/build.err"; then
    grep -m1 -A12 '^error' "$work/build.err" | sed 's/^/    /'
  else
    tail -5 "$work/build.err" | sed 's/^/    /'
  fi
}

have_cargo_fuzz() { cargo fuzz --version >/dev/null 2>&1; }

if [ "$mode" = auto ] || [ "$mode" = fuzz ]; then
  if ! have_cargo_fuzz && [ "${FUZZ_SMOKE_INSTALL:-0}" = 1 ]; then
    say "installing cargo-fuzz"
    cargo install cargo-fuzz --locked --quiet
  fi
  if have_cargo_fuzz; then
    mode=fuzz
  elif [ "$mode" = fuzz ]; then
    say "FUZZ_SMOKE_MODE=fuzz but cargo-fuzz is not installed (FUZZ_SMOKE_INSTALL=1 installs it)"
    exit 2
  else
    say "cargo-fuzz is not installed: replaying on stable instead (FUZZ_SMOKE_INSTALL=1 installs it)"
    mode=replay
  fi
fi

# `cargo fuzz` flags, the same for the build and the runs (so that the run does not rebuild).
# The main crate has no unsafe code: `--sanitizer none` loses little and works on stable.
flags=(--fuzz-dir "$root/fuzz" --sanitizer none --debug-assertions --target-dir "$target_dir")
cargo=(cargo)
if [ "$mode" = fuzz ]; then
  say "building the fuzz targets (cargo fuzz, stable)"
  if ! "${cargo[@]}" fuzz build "${flags[@]}" 2>"$work/build.err"; then
    if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
      say "the stable build failed; trying nightly:"
      show_build_error
      cargo=(cargo +nightly)
      if ! "${cargo[@]}" fuzz build "${flags[@]}" 2>"$work/build.err"; then
        say "the nightly build failed too; replaying on stable instead:"
        show_build_error
        mode=replay
      fi
    else
      say "the cargo fuzz build failed; replaying on stable instead:"
      show_build_error
      mode=replay
    fi
  fi
fi

failed=()
if [ "$mode" = fuzz ]; then
  say "built ($(elapsed)); fuzzing each target for ${secs}s"
  for t in "${targets[@]}"; do
    mkdir -p "$work/new/$t" "$work/artifacts/$t"
    mapfile -t dirs < <(inputs "$t")
    t0=$(date +%s)
    # The first directory receives what the run discovers: a scratch one, not the tree.
    if "${cargo[@]}" fuzz run "${flags[@]}" "$t" "$work/new/$t" "${dirs[@]}" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
      -artifact_prefix="$work/artifacts/$t/" -print_final_stats=1 \
      >"$work/$t.log" 2>&1; then
      line=$(grep -aE '^#[0-9]+[[:space:]]+DONE' "$work/$t.log" | tail -1 | tr -s ' \t' ' ')
      say "$t: ok in $(($(date +%s) - t0))s (${line:-no status line})"
    else
      failed+=("$t")
      say "$t: FAILED after $(($(date +%s) - t0))s; the end of its log:"
      tail -40 "$work/$t.log" | sed 's/^/    /'
      for a in "$work/artifacts/$t"/*; do
        [ -f "$a" ] || continue
        # A committed input (a regression whose bug is back, or still open) is named as such.
        known=""
        sum=$(sha1sum "$a" | cut -d' ' -f1)
        for d in "${dirs[@]}"; do
          known=$(find "$d" -type f -exec sha1sum {} + | awk -v s="$sum" '$1 == s {print $2; exit}')
          [ -z "$known" ] || break
        done
        if [ -n "$known" ]; then
          say "$t: the failing input is ${known#"$root"/}"
        else
          say "$t: new failing input $(basename "$a") ($(wc -c <"$a") bytes), base64:"
          base64 -w 76 "$a" | head -40 | sed 's/^/    /'
        fi
      done
    fi
  done
else
  # An instrumented fuzz build runs about 2.5 times slower than this plain release build:
  # 4 s here is libFuzzer's -timeout=10 there.
  replay_timeout="${FUZZ_SMOKE_REPLAY_TIMEOUT:-4}"
  say "building the replay binary (stable)"
  cargo build --release --quiet --manifest-path fuzz/replay/Cargo.toml --target-dir "$target_dir"
  say "built ($(elapsed)); replaying every corpus and regression file"
  for t in "${targets[@]}"; do
    mapfile -t dirs < <(inputs "$t")
    [ ${#dirs[@]} -gt 0 ] || continue
    if ! "$target_dir/release/replay" --timeout "$replay_timeout" "$t" "${dirs[@]}"; then
      failed+=("$t")
    fi
  done
fi

if [ ${#failed[@]} -gt 0 ]; then
  say "FAILED: ${failed[*]} ($mode mode, $(elapsed))"
  say "reproduce with: cargo run --release --manifest-path fuzz/replay/Cargo.toml -- TARGET FILE"
  exit 1
fi
say "all ${#targets[@]} targets passed ($mode mode, $(elapsed))"
