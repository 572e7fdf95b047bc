#!/usr/bin/env bash
# Staged-checkpoint benchmark: a 512 MiB torch.save zip staged in a throw-away repository,
# scanned through the index (`scan --staged`) and from disk (`scan FILE`), each under
# /usr/bin/time -v (wall seconds and peak RSS). Target: the staged scan in <= 100 ms and
# <= 64 MB peak RSS, as from disk (the index entry's stat data lets picklegate read the
# work-tree file in place; a blob without a matching work-tree file is spooled in 64 KiB
# chunks, never inflated whole).
#
#   bash bench/blob_bench.sh [PYTHON] [MiB]     (PYTHON with torch; default python3, 512)
set -euo pipefail
cd "$(dirname "$0")/.."
py="${1:-python3}"
mib="${2:-512}"
bin="${PICKLEGATE_BIN:-$PWD/target/release/picklegate}"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
"$py" - "$dir/model.pt" "$mib" <<'PY'
import sys, torch
n = int(sys.argv[2]) * (1 << 20) // 4
torch.save({"weight": torch.zeros(n, dtype=torch.float32)}, sys.argv[1])
PY
git -C "$dir" init -q
# Big files are stored without delta or extra compression effort, as LFS-less ML repos do.
git -C "$dir" config core.bigFileThreshold 1m
touch -d '1 hour ago' "$dir/model.pt"
git -C "$dir" add model.pt
measure() {
  local label="$1"; shift
  /usr/bin/time -v "$@" >/dev/null 2>"$dir/time.txt" || true
  local wall rss
  wall="$(grep 'Elapsed (wall clock)' "$dir/time.txt" | awk '{print $NF}')"
  rss="$(grep 'Maximum resident set size' "$dir/time.txt" | awk '{print $NF}')"
  printf '%-34s wall %s  peak RSS %s KB\n' "$label" "$wall" "$rss"
}
ls -l "$dir/model.pt" | awk '{printf "model.pt: %d bytes\n", $5}'
(cd "$dir" && measure "scan --staged (stat match)" "$bin" scan --staged)
(cd "$dir" && measure "scan model.pt (from disk)" "$bin" scan model.pt)
# The same blob with the work-tree file edited afterwards: read from the object database.
printf 'x' >> "$dir/model.pt"
(cd "$dir" && measure "scan --staged (blob spooled)" "$bin" scan --staged)
