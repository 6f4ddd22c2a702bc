#!/usr/bin/env bash
# Action-value training throughput (transitions/s) of allot-train, by algorithm and intra-op
# thread count, on simulator logs. Runs alternate (1 thread, 2 threads, 1, 2, ...) so that a noisy
# shared machine affects both settings alike; the ratio is printed per pair.
#   ALLOT_BENCH_REQUESTS (default 100000)  ALLOT_BENCH_ALGORITHMS (default "awrq vdn")
#   ALLOT_BENCH_REPEATS (default 2)        ALLOT_BENCH_EPOCHS (default 2)
# Expects a built tree (scripts/build.sh build).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${ALLOT_BUILD_DIR:-build}
work=$(mktemp -d /tmp/allot-trainer-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT

"$build/allot-sim" generate --out "$work/logs" --requests "${ALLOT_BENCH_REQUESTS:-100000}" \
  --shards 2 --seed 1 > /dev/null

throughput() {  # algorithm threads -> transitions/s
  "$build/allot-train" --logs "$work/logs" --out "$work/models" --algorithm "$1" --threads "$2" \
    --epochs "${ALLOT_BENCH_EPOCHS:-2}" --seed 1 --quiet 2> /dev/null |
    awk '$1 == "train_transitions_per_second" { printf "%.0f", $3 }'
}

printf "%-6s %-6s %12s %12s %8s\n" algorithm repeat "1 thread" "2 threads" ratio
for algorithm in ${ALLOT_BENCH_ALGORITHMS:-awrq vdn}; do
  for repeat in $(seq "${ALLOT_BENCH_REPEATS:-2}"); do
    one=$(throughput "$algorithm" 1)
    two=$(throughput "$algorithm" 2)
    printf "%-6s %-6s %12s %12s %8.2f\n" "$algorithm" "$repeat" "$one" "$two" \
      "$(awk -v a="$one" -v b="$two" 'BEGIN { print a / b }')"
  done
done
