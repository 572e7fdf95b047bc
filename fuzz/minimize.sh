#!/usr/bin/env bash
# Minimises the committed corpora after a campaign (keeps them small: ~2.5 MB in all).
#
#   bash fuzz/minimize.sh [TARGET...]        (default: all five; scan before sanitize)
#
# For each target, libFuzzer's merge (`-merge=1 -use_counters=0`: coverage edges, not hit
# counts, so far fewer files than `cargo fuzz cmin`) of the fixture seeds (fuzz/seeds.py)
# and the current corpus into a fresh directory, smallest inputs first; surviving seeds get
# their descriptive names back. `sanitize` keeps only what adds edges beyond the scan corpus
# (the sanitizer runs the scanner first): campaigns and the smoke test give it
# fuzz/corpus/scan as an extra input directory.
#
# Uses the binaries `cargo fuzz build --sanitizer none --debug-assertions` makes (FUZZ_FLAGS).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(scan vm disasm sanitize config)
read -r -a flags <<<"${FUZZ_FLAGS:---sanitizer none --debug-assertions}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}"
cargo fuzz build --fuzz-dir "$here" "${flags[@]}"
bin="$here/target/$(rustc -vV | sed -n 's/^host: //p')/release"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 "$here/seeds.py" --out "$work/seeds" >/dev/null
for t in "${targets[@]}"; do
  out="$work/out/$t"
  mkdir -p "$out" "$here/corpus/$t"
  if [ "$t" = sanitize ]; then
    cp "$here/corpus/scan/." "$out/" -r
    find "$out" -type f -printf '%f\n' >"$work/scan-files"
  fi
  "$bin/$t" -merge=1 -use_counters=0 -rss_limit_mb=2048 -timeout=10 \
    "$out" "$work/seeds/$t" "$here/corpus/$t" >"$work/$t.log" 2>&1 ||
    { tail -20 "$work/$t.log"; exit 1; }
  if [ "$t" = sanitize ]; then
    (cd "$out" && xargs -d '\n' rm -f <"$work/scan-files")
  fi
  # Seeds that survived get their names back (merge names files by SHA-1).
  python3 - "$work/seeds/$t" "$out" <<'EOF'
import hashlib, pathlib, sys
seeds = {hashlib.sha1(p.read_bytes()).hexdigest(): p.name for p in pathlib.Path(sys.argv[1]).iterdir()}
for p in list(pathlib.Path(sys.argv[2]).iterdir()):
    if p.name in seeds:
        p.rename(p.with_name(seeds[p.name]))
EOF
  rm -rf "$here/corpus/$t"
  cp -r "$out" "$here/corpus/$t"
  echo "$t: $(find "$here/corpus/$t" -type f | wc -l) files, $(du -sb "$here/corpus/$t" | cut -f1) bytes"
done
