#!/usr/bin/env bash
# Where one Allocate's server CPU goes: allot-server on the newest bundle under h2load (one
# thread, Allocate only), sampled with perf (call graphs), and the samples' self time sorted into
# the stages of a call by bench/profile_breakdown.py. Prints the breakdown, the QPS it was taken
# at, and the top symbols; the same numbers are in the README's performance section.
#
# Usage: bash bench/profile_allocate.sh
# Environment: ALLOT_BUILD_DIR (build), ALLOT_BENCH_MODELS (var/models), ALLOT_BENCH_CONFIG,
# ALLOT_BENCH_AGENT (recall), ALLOT_PROFILE_SECONDS (10), ALLOT_PROFILE_LOAD (4x4: connections x
# streams), ALLOT_PROFILE_METHOD (Allocate, or Check for the empty-call baseline).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/start_server.sh
build=${ALLOT_BUILD_DIR:-build}
models=${ALLOT_BENCH_MODELS:-var/models}
agent=${ALLOT_BENCH_AGENT:-recall}
seconds=${ALLOT_PROFILE_SECONDS:-10}
load=${ALLOT_PROFILE_LOAD:-4x4}
method=${ALLOT_PROFILE_METHOD:-Allocate}
for tool in h2load perf; do
  command -v "$tool" > /dev/null || { echo "profile_allocate: $tool missing" >&2; exit 1; }
done

work=$(mktemp -d /tmp/allot-profile-XXXXXX)
server=
loader=
cleanup() {
  [[ -n $loader ]] && kill "$loader" 2> /dev/null
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT

start_server
/usr/bin/python3 bench/grpc_bodies.py --proto-dir proto --target "127.0.0.1:$port" --agent "$agent" \
  --out "$work"
if [[ $method == Check ]]; then
  path=/grpc.health.v1.Health/Check body=$work/health.bin
else
  path=/allot.v1.Allocator/Allocate body=$work/allocate.bin
fi

# Load for longer than the recording; h2load's own timing gives the QPS.
h2load -D $((seconds + 4)) -c "${load%x*}" -m "${load#*x}" -t 1 -d "$body" \
  -H 'content-type: application/grpc' -H 'te: trailers' "http://127.0.0.1:$port$path" \
  > "$work/h2load.txt" 2>&1 &
loader=$!
sleep 2  # past connection set-up
perf record -q -F 499 -g -p "$server" -o "$work/perf.data" -- sleep "$seconds" 2> /dev/null
wait "$loader" || true
loader=
qps=$(awk '/^finished in/ { gsub(",", "", $4); print $4 }' "$work/h2load.txt")
echo "profile: $method at load $load, h2load ${qps:-?} req/s over the run; $seconds s sampled"
perf report -i "$work/perf.data" --no-children --sort dso,sym -g none --percent-limit 0 \
  --stdio 2> /dev/null > "$work/report.txt"
/usr/bin/python3 bench/profile_breakdown.py "$work/report.txt"
