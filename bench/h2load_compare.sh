#!/usr/bin/env bash
# Allocate against an empty gRPC call (grpc.health.v1/Check) on one allot-server, with h2load: the
# speed yardstick. h2load ignores grpc-status, so every Allocate round is checked against the
# server's own OK counter (allot_rpc_duration_seconds_count{code="OK",method="Allocate"}).
# Rounds alternate Allocate and health at each load, after one unmeasured warm-up round of each;
# prints QPS per round and the median ratio, the server's CPU time per call of each (and the median
# of what Allocate adds to the empty call), and the server-side decision time of each Allocate
# round (allot_decision_duration_seconds: the share of decisions within 50 us and the p99,
# interpolated within its bucket as Prometheus's histogram_quantile does).
#
# Usage: bash bench/h2load_compare.sh
# Environment: ALLOT_BUILD_DIR (build), ALLOT_BENCH_MODELS (bundle directory, var/models),
# ALLOT_BENCH_CONFIG (config file; default: the embedded config),
# ALLOT_BENCH_AGENT (recall), ALLOT_BENCH_REQUESTS (per round, 100000), ALLOT_BENCH_ROUNDS (3),
# ALLOT_BENCH_LOADS ("4x4 8x16": connections x streams per connection), ALLOT_BENCH_PIN (0; 1 pins
# the server to CPU 0 and h2load to CPU 1).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/start_server.sh
build=${ALLOT_BUILD_DIR:-build}
models=${ALLOT_BENCH_MODELS:-var/models}
agent=${ALLOT_BENCH_AGENT:-recall}
requests=${ALLOT_BENCH_REQUESTS:-100000}
measured_requests=$requests
rounds=${ALLOT_BENCH_ROUNDS:-3}
loads=${ALLOT_BENCH_LOADS:-4x4 8x16}
command -v h2load > /dev/null || { echo "h2load_compare: h2load missing (nghttp2-client)" >&2; exit 1; }

work=$(mktemp -d /tmp/allot-h2load-XXXXXX)
server=
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT

# ALLOT_BENCH_PIN=1: the server on CPU 0 and h2load on CPU 1, so that neither steals the other's
# core (the scheduler otherwise moves them about, and a round's ratio swings by 0.1).
h2load_cmd=(h2load)
if [[ ${ALLOT_BENCH_PIN:-0} == 1 ]]; then
  export ALLOT_SERVER_WRAPPER="taskset -c 0"
  h2load_cmd=(taskset -c 1 h2load)
fi
start_server
/usr/bin/python3 bench/grpc_bodies.py --proto-dir proto --target "127.0.0.1:$port" --agent "$agent" \
  --out "$work"

allocate_ok() {
  curl -s "http://127.0.0.1:$metrics_port/metrics" |
    awk '/^allot_rpc_duration_seconds_count\{code="OK",method="Allocate"\}/ { print $2 }'
}

# The agent's cumulative decision-time buckets, one "le count" line each.
decision_buckets() {
  curl -s "http://127.0.0.1:$metrics_port/metrics" |
    awk -v agent="$agent" '/^allot_decision_duration_seconds_bucket/ && index($0, "agent=\"" agent "\"") {
      match($0, /le="[^"]*"/); print substr($0, RSTART + 4, RLENGTH - 5), $2 }'
}

# "share within 50 us, p99 in us" of the decisions between two decision_buckets snapshots.
decision_summary() {
  awk 'NR == FNR { before[$1] = $2; next }
    { le[++n] = $1; c[n] = $2 - before[$1] }
    END {
      total = c[n]; within = 0; p99 = "n/a"
      for (i = 1; i <= n; i++) if (le[i] + 0 == 5e-05) within = c[i]
      for (i = 1; i <= n; i++) if (c[i] >= 0.99 * total) {
        lo = i > 1 ? le[i - 1] : 0; prev = i > 1 ? c[i - 1] : 0
        p99 = le[i] == "+Inf" ? ">" lo * 1e6 : sprintf("%.0f", (lo + (le[i] - lo) * (0.99 * total - prev) / (c[i] - prev)) * 1e6)
        break
      }
      printf "decisions within 50 us %.2f%%, p99 %s us", total ? 100 * within / total : 0, p99
    }' "$1" "$2"
}

# QPS of one h2load round: METHOD_PATH BODY CONNECTIONS STREAMS.
run_h2load() {
  local out
  out=$("${h2load_cmd[@]}" -n "$requests" -c "$3" -m "$4" -t 1 -d "$2" \
    -H 'content-type: application/grpc' -H 'te: trailers' "http://127.0.0.1:$port$1")
  grep -q "$requests succeeded" <<< "$out" || { echo "$out" >&2; return 1; }
  awk '/^finished in/ { gsub(",", "", $4); print $4 }' <<< "$out"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# The server's CPU time so far (user + system, all threads), in clock ticks. Per call it is a
# steadier measure of what Allot adds than QPS, which moves with how the scheduler shares the
# cores between the server and h2load.
clock_ticks_per_s=$(getconf CLK_TCK)
server_cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$server/stat"; }
# Microseconds of server CPU per call between two server_cpu_ticks readings.
cpu_us_per_call() {
  awk -v a="$1" -v b="$2" -v hz="$clock_ticks_per_s" -v n="$requests" \
    'BEGIN { printf "%.2f", (b - a) / hz * 1e6 / n }'
}

for load in $loads; do
  connections=${load%x*}
  streams=${load#*x}
  # One unmeasured round of each first: the first round after a start ran 15-20% below the
  # others (caches, page faults, the CPU's clock), and the ratio is about the steady state.
  requests=$((measured_requests / 5)) run_h2load /allot.v1.Allocator/Allocate "$work/allocate.bin" \
    "$connections" "$streams" > /dev/null
  requests=$((measured_requests / 5)) run_h2load /grpc.health.v1.Health/Check "$work/health.bin" \
    "$connections" "$streams" > /dev/null
  ratios=()
  extra_cpu=()
  for round in $(seq "$rounds"); do
    before=$(allocate_ok)
    decision_buckets > "$work/buckets-before"
    cpu_before=$(server_cpu_ticks)
    allocate_qps=$(run_h2load /allot.v1.Allocator/Allocate "$work/allocate.bin" "$connections" "$streams")
    allocate_cpu=$(cpu_us_per_call "$cpu_before" "$(server_cpu_ticks)")
    after=$(allocate_ok)
    decision_buckets > "$work/buckets-after"
    ok=$(awk -v a="$after" -v b="${before:-0}" 'BEGIN { printf "%d", a - b }')
    if ((ok != requests)); then
      echo "h2load_compare: $ok of $requests Allocate calls were OK" >&2
      exit 1
    fi
    cpu_before=$(server_cpu_ticks)
    health_qps=$(run_h2load /grpc.health.v1.Health/Check "$work/health.bin" "$connections" "$streams")
    health_cpu=$(cpu_us_per_call "$cpu_before" "$(server_cpu_ticks)")
    ratio=$(awk -v a="$allocate_qps" -v h="$health_qps" 'BEGIN { printf "%.3f", a / h }')
    ratios+=("$ratio")
    extra_cpu+=("$(awk -v a="$allocate_cpu" -v h="$health_cpu" 'BEGIN { printf "%.2f", a - h }')")
    printf 'load %-5s round %d: Allocate %9.0f QPS (%d OK)  health %9.0f QPS  ratio %s  (%s)\n' \
      "$load" "$round" "$allocate_qps" "$ok" "$health_qps" "$ratio" \
      "$(decision_summary "$work/buckets-before" "$work/buckets-after")"
    printf '               server CPU per call: Allocate %s us, health %s us\n' "$allocate_cpu" \
      "$health_cpu"
  done
  printf 'load %-5s median Allocate/health ratio over %d rounds: %s\n' "$load" "$rounds" \
    "$(printf '%s\n' "${ratios[@]}" | median)"
  printf 'load %-5s median server CPU per call that Allocate adds to an empty call: %s us\n' \
    "$load" "$(printf '%s\n' "${extra_cpu[@]}" | median)"
done
