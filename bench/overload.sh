#!/usr/bin/env bash
# Overload, seen from the callers: allot-server at twice its Allocate saturation, every call with a
# 10 ms deadline (grpc-timeout). The server runs on CPU 0 and h2load on CPU 1 (taskset), so that
# the load generator does not take the server's core: on one shared core neither can be driven
# past the other.
#
# 1. Capacity, closed loop (8 connections x 16 streams): Allocate as served; Allocate with every
#    call shed (server.max_in_flight 1, Allot's cheapest answer); the empty grpc.health.v1 Check
#    (gRPC's cheapest answer). Twice each, alternated; the best of each is printed.
# 2. Open loop at 2x the Allocate capacity for $ALLOT_BENCH_SECONDS per config, from
#    $ALLOT_BENCH_CONNECTIONS connections with up to 1024 streams each (h2load --rps; it opens no more streams than the server's
#    SETTINGS_MAX_CONCURRENT_STREAMS allows):
#    - offered: what the schedule asked for; not sent: calls h2load never started because every
#      stream it may open was busy (a gRPC client queues them, and their deadline runs out there);
#    - answered within 10 ms, and the p50 / p99 of what was answered;
#    - the server's side: scored, safe defaults by reason, shed, cancelled.
#    Configs: config/allot.yaml's, with each stream limit of $ALLOT_BENCH_STREAM_LIMITS; 0 stands
#    for gRPC's defaults (no stream limit, no in-flight limit).
#
# Usage: bash bench/overload.sh
# Environment: ALLOT_BUILD_DIR (build), ALLOT_BENCH_MODELS (var/models), ALLOT_BENCH_AGENT (recall),
# ALLOT_BENCH_SECONDS (10), ALLOT_BENCH_CONNECTIONS (8), ALLOT_BENCH_STREAM_LIMITS (config/allot.yaml's, then 0).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/start_server.sh
build=${ALLOT_BUILD_DIR:-build}
models=${ALLOT_BENCH_MODELS:-var/models}
agent=${ALLOT_BENCH_AGENT:-recall}
seconds=${ALLOT_BENCH_SECONDS:-10}
connections=${ALLOT_BENCH_CONNECTIONS:-8}
config_value() { awk -v key="$1:" '$1 == key { print $2; exit }' config/allot.yaml; }
stream_limits=${ALLOT_BENCH_STREAM_LIMITS:-$(config_value max_concurrent_streams) 0}
command -v h2load > /dev/null || { echo "overload: h2load missing (nghttp2-client)" >&2; exit 1; }
(($(nproc) >= 2)) || { echo "overload: needs 2 CPUs (server and load generator apart)" >&2; exit 1; }

work=$(mktemp -d /tmp/allot-overload-XXXXXX)
server=
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT

# config/allot.yaml with `server.KEY: VALUE` pairs set ("key=value" arguments).
config_with() {
  local out=$work/config-$RANDOM.yaml
  cp config/allot.yaml "$out"
  for pair in "$@"; do
    sed -i "s/^  ${pair%%=*}: [^ ]*/  ${pair%%=*}: ${pair#*=}/" "$out"
    grep -q "^  ${pair%%=*}: ${pair#*=}" "$out" || { echo "overload: no server.${pair%%=*}" >&2; exit 1; }
  done
  echo "$out"
}

# Starts the server on CPU 0 with a config and writes the bodies (once).
start_pinned() {
  ALLOT_BENCH_CONFIG=$1 ALLOT_SERVER_WRAPPER="taskset -c 0" start_server
  [[ -f $work/allocate.bin ]] || /usr/bin/python3 bench/grpc_bodies.py --proto-dir proto \
    --target "127.0.0.1:$port" --agent "$agent" --out "$work"
}

path_of() {
  [[ $1 == Check ]] && echo /grpc.health.v1.Health/Check || echo /allot.v1.Allocator/Allocate
}
body_of() { [[ $1 == Check ]] && echo "$work/health.bin" || echo "$work/allocate.bin"; }

h2load_pinned() {
  taskset -c 1 h2load -t 1 -H 'content-type: application/grpc' -H 'te: trailers' "$@"
}

# Closed-loop QPS of METHOD on the running server.
closed_qps() {
  h2load_pinned -n 200000 -c 8 -m 16 -d "$(body_of "$1")" "http://127.0.0.1:$port$(path_of "$1")" |
    awk '/^finished in/ { gsub(",", "", $4); print $4 }'
}

metric() {
  curl -s "http://127.0.0.1:$metrics_port/metrics" | awk -v name="$1" 'index($0, name) == 1 { s += $2 } END { printf "%d", s }'
}

declare -A best
measure_capacity() {
  local label=$1 method=$2 qps
  qps=$(closed_qps "$method")
  awk -v a="$qps" -v b="${best[$label]:-0}" 'BEGIN { exit !(a > b) }' && best[$label]=$qps
  return 0
}

echo "capacity, closed loop (8 x 16), server on CPU 0, h2load on CPU 1:"
default_config=$(config_with)
shed_config=$(config_with max_in_flight=1)
for round in 1 2; do
  start_pinned "$default_config"
  measure_capacity allocate Allocate
  measure_capacity health Check
  stop_server
  start_pinned "$shed_config"
  before=$(metric allot_shed_calls_total)
  measure_capacity shed Allocate
  shed_share=$(awk -v s="$(($(metric allot_shed_calls_total) - before))" 'BEGIN { printf "%.0f", 100 * s / 200000 }')
  stop_server
done
capacity=${best[allocate]}
printf '  Allocate (scored)          %8.0f QPS\n' "$capacity"
printf '  Allocate (shed, %s%% of calls) %8.0f QPS  %.2fx\n' "$shed_share" "${best[shed]}" \
  "$(awk -v a="${best[shed]}" -v c="$capacity" 'BEGIN { print a / c }')"
printf '  health Check (empty call)  %8.0f QPS  %.2fx\n' "${best[health]}" \
  "$(awk -v a="${best[health]}" -v c="$capacity" 'BEGIN { print a / c }')"

rate=$(awk -v c="$capacity" 'BEGIN { printf "%d", 2 * c }')
echo "open loop at 2x (${rate}/s offered) for ${seconds} s, 10 ms deadlines, $connections connections:"
open_loop() {
  local label=$1 config=$2
  start_pinned "$config"
  local ok0 cancelled0 shed0 deadline0 overload0
  ok0=$(metric 'allot_rpc_duration_seconds_count{code="OK",method="Allocate"}')
  cancelled0=$(metric 'allot_rpc_duration_seconds_count{code="CANCELLED",method="Allocate"}')
  shed0=$(metric allot_shed_calls_total)
  deadline0=$(metric "allot_fallbacks_total{agent=\"$agent\",reason=\"deadline\"}")
  local out
  rm -f "$work/log"
  out=$(h2load_pinned -D "$seconds" --rps=$((rate / connections)) -c "$connections" -m 1024 -H 'grpc-timeout: 10m' \
    --log-file="$work/log" -d "$work/allocate.bin" "http://127.0.0.1:$port/allot.v1.Allocator/Allocate")
  local started
  started=$(awk '/^requests:/ { print $4 }' <<< "$out")
  local ok cancelled shed deadline
  ok=$(($(metric 'allot_rpc_duration_seconds_count{code="OK",method="Allocate"}') - ok0))
  cancelled=$(($(metric 'allot_rpc_duration_seconds_count{code="CANCELLED",method="Allocate"}') - cancelled0))
  shed=$(($(metric allot_shed_calls_total) - shed0))
  deadline=$(($(metric "allot_fallbacks_total{agent=\"$agent\",reason=\"deadline\"}") - deadline0))
  stop_server
  cut -f3 "$work/log" | sort -n | awk -v label="$label" -v offered=$((rate * seconds)) \
    -v started="$started" -v ok="$ok" -v cancelled="$cancelled" -v shed="$shed" -v deadline="$deadline" '
    { lat[NR] = $1; if ($1 <= 10000) within++ }
    END {
      n = NR
      printf "  %s\n", label
      printf "    offered %d: not sent %.1f%%, answered within 10 ms %.1f%%\n", offered,
        100 * (offered - started) / offered, 100 * within / offered
      printf "    responses %d (p50 %.2f ms, p99 %.2f ms), of which the server answered %d OK\n",
        n, lat[int(n * 0.5) + 1] / 1000, lat[int(n * 0.99) + 1] / 1000, ok
      unhandled = n - ok - cancelled
      if (unhandled < 0) unhandled = 0
      printf "    (%d shed, %d safe default for too little deadline left); %d cancelled, %d ended by their deadline before a handler ran\n",
        shed, deadline, cancelled, unhandled
    }'
}
for limit in $stream_limits; do
  if ((limit == 0)); then
    open_loop "gRPC's defaults (max_concurrent_streams 0, max_in_flight 0)" \
      "$(config_with max_concurrent_streams=0 max_in_flight=0)"
  else
    open_loop "max_concurrent_streams $limit, max_in_flight $(config_value max_in_flight)" \
      "$(config_with max_concurrent_streams="$limit")"
  fi
done
