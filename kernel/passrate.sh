#!/usr/bin/env bash
# Boot the emulated host N times (no retries) and report how many selftest runs
# passed. Failing consoles are kept for diagnosis; a flaky result is a bug.
#   usage: kernel/passrate.sh [N=20] [TIMEOUT_S=150]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-20}
limit=${2:-150}
case "$n" in ''|*[!0-9]*) echo "passrate: N must be a positive integer, got '$n'" >&2; exit 2 ;; esac
dir=$("$repo/tools/build-kernel.sh" --print-path) || { echo "passrate: kernel not built: run tools/build-kernel.sh" >&2; exit 2; }
logs=${DQ_CACHE:-/var/cache/dqlab}/kernel/passrate/$(basename "$dir")-$(date +%Y%m%d-%H%M%S)
mkdir -p "$logs"
pass=0
for i in $(seq 1 "$n"); do
  t0=$(date +%s.%N)
  if "$repo/kernel/boot-selftest.sh" "$dir" "$limit" >"$logs/boot-$i.log" 2>&1; then
    pass=$((pass + 1)); verdict=PASS
  else
    verdict="FAIL rc=$?"
  fi
  printf 'boot %d/%d %s %.1fs %s\n' "$i" "$n" "$verdict" "$(echo "$(date +%s.%N) - $t0" | bc)" \
    "$(grep -m1 '^DQTEST summary' "$logs/boot-$i.log" || echo 'no summary')"
  [ "$verdict" = PASS ] && rm -f "$logs/boot-$i.log"
done
echo "passrate: $pass/$n boots passed (failing consoles kept in $logs)"
[ "$pass" = "$n" ]
