#!/usr/bin/env bash
# The main job: install, build, prepare the default model bundle (simulator logs -> allot-train),
# start allot-server on config/allot.yaml serving it, show it allocating, and keep serving until
# Ctrl-C (set ALLOT_DEMO_ONLY=1 to stop after the demo).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh build
bash scripts/train-default-models.sh

port=${ALLOT_PORT:-50051}
metrics_port=${ALLOT_METRICS_PORT:-9464}
mkdir -p var
./build/allot-server --config config/allot.yaml --model-dir var/models --listen "127.0.0.1:$port" \
  --metrics-listen "127.0.0.1:$metrics_port" 2> >(tee var/allot-server.log >&2) &
server=$!
trap 'kill -TERM $server 2>/dev/null; wait $server 2>/dev/null || true' EXIT

for _ in $(seq 100); do
  ./build/allot-cli --target "127.0.0.1:$port" state >/dev/null 2>&1 && break
  sleep 0.1
done
echo
echo "### allot-server is up on 127.0.0.1:$port (metrics: http://127.0.0.1:$metrics_port/metrics)"
./build/allot-cli --target "127.0.0.1:$port" state
echo
echo "### allocations for requests of rising value (trained bundle; price of compute from the controller), then why"
./build/allot-cli --target "127.0.0.1:$port" demo
echo
echo "### load: Allocate vs grpc.health.v1/Check on the same server (closed loop, 16 in flight)"
./build/allot-bench --target "127.0.0.1:$port" --concurrency 16 --duration 3 --warmup 1 --rounds 1
echo
echo "### a few of the exported metrics"
curl -s "http://127.0.0.1:$metrics_port/metrics" | grep -E '^allot_(lambda|actions_total\{agent="rank")' | head -12

if [[ ${ALLOT_DEMO_ONLY:-0} == 1 ]]; then exit 0; fi
echo
echo "### serving until Ctrl-C (allot-cli --target 127.0.0.1:$port state|allocate|explain|report-load|demo)"
wait $server
