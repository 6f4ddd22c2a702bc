#!/usr/bin/env bash
# Soak: allot-server on the newest bundle under an open-loop Allocate load at a fraction of its
# measured capacity for a long run, with the server's RSS sampled every 10 s. Prints capacity, the
# load's latency and errors, and RSS growth from the end of warm-up to the end (the target is
# below 5%). The load generator shares the machine, so capacity is what this client reaches
# here (see below).
#
# Usage: bash bench/soak.sh
# Environment: ALLOT_BUILD_DIR (build), ALLOT_BENCH_MODELS (var/models), ALLOT_SOAK_SECONDS (600),
# ALLOT_SOAK_LOAD (0.8 of capacity), ALLOT_SOAK_WARMUP_S (60), ALLOT_BENCH_AGENT (recall).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/start_server.sh
build=${ALLOT_BUILD_DIR:-build}
models=${ALLOT_BENCH_MODELS:-var/models}
seconds=${ALLOT_SOAK_SECONDS:-600}
load=${ALLOT_SOAK_LOAD:-0.8}
warmup=${ALLOT_SOAK_WARMUP_S:-60}
agent=${ALLOT_BENCH_AGENT:-recall}

work=$(mktemp -d /tmp/allot-soak-XXXXXX)
server=
sampler=
cleanup() {
  [[ -n $sampler ]] && kill "$sampler" 2> /dev/null
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT

start_server
target=127.0.0.1:$port

# Capacity: the highest open-loop rate, stepping down from the closed-loop QPS by 10%, that
# answers every call of a 5 s round without error at the rate asked.
field() { awk -v k="$1" '/^Allocate/ { for (i = 1; i <= NF; ++i) if (index($i, k "=") == 1) print substr($i, length(k) + 2) }'; }
closed=$("$build/allot-bench" --target "$target" --method allocate --mode closed \
  --concurrency 16 --duration 5 --warmup 2 --rounds 3 --agent "$agent" | field qps |
  sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
capacity=
for step in 10 9 8 7 6 5 4 3; do
  try=$(awk -v c="$closed" -v s="$step" 'BEGIN { printf "%d", c * s / 10 }')
  out=$("$build/allot-bench" --target "$target" --method allocate --mode open --rate "$try" \
    --duration 5 --warmup 1 --rounds 1 --agent "$agent" || true)
  errors=$(field errors <<< "$out")
  qps=$(field qps <<< "$out")
  if [[ ${errors:-1} == 0 ]] && awk -v q="${qps:-0}" -v r="$try" 'BEGIN { exit !(q >= 0.98 * r) }'; then
    capacity=$try
    break
  fi
done
[[ -n $capacity ]] || { echo "soak: no open-loop rate down to 30% of $closed QPS ran clean" >&2; exit 1; }
rate=$(awk -v c="$capacity" -v l="$load" 'BEGIN { printf "%d", c * l }')
echo "soak: closed loop $closed QPS; open-loop capacity $capacity QPS; soak at $rate QPS for $seconds s"

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$server/status"; }
(
  start=$(date +%s)
  while kill -0 "$server" 2> /dev/null; do
    echo "$(($(date +%s) - start)) $(rss_kb)"
    sleep 10
  done
) > "$work/rss.txt" &
sampler=$!

"$build/allot-bench" --target "$target" --method allocate --mode open --rate "$rate" \
  --duration "$seconds" --warmup 0 --rounds 1 --agent "$agent" | tee "$work/load.txt" || true
kill "$sampler" 2> /dev/null || true
wait "$sampler" 2> /dev/null || true
sampler=

awk -v warmup="$warmup" '
  $1 >= warmup && base == "" { base = $2; base_t = $1 }
  { last = $2; last_t = $1; if ($2 > peak) peak = $2 }
  END {
    if (base == "") { print "soak: the run ended before the warm-up did"; exit 1 }
    printf "soak: RSS %.1f MB at %d s (after warm-up), %.1f MB at %d s, peak %.1f MB: growth %+.2f%%\n",
      base / 1024, base_t, last / 1024, last_t, peak / 1024, 100 * (last - base) / base
  }' "$work/rss.txt"
