#!/usr/bin/env bash
# Replicas that agree on the price, as separate processes: N allot-server replicas on loopback
# read module load from a real Prometheus (telemetry.source prometheus), which scrapes the load
# `allot-sim drive --export-load` serves and the replicas' own /metrics (for the shipped
# recording rule allot:module_price:avg). The drive spreads each stage's calls over the ready
# replicas round-robin. A case with RESTART 1 stops the last replica with SIGTERM (it drains) at
# 45% of the run, RESTART 2 kills it with SIGKILL (a crash), and either starts it again on the
# same ports at 60%.
#
# Prints, per case: the drive's table (mu/nu per module, % of oracle), the price spread across
# replicas per module (max/min - 1 per period from a third of the run on) and the rejoin.
#
# Usage: bash bench/replicas.sh [CASE...]   a CASE is REPLICAS:CONTROLLER:SCRAPE:CONSENSUS:RESTART,
#   e.g. 3:pid:1s:0.3:1 (the default runs 1:pid:1s:0.3:0 3:pid:1s:0.3:1 3:pid:1s:0.3:2
#   3:pid:1s:0:1 3:mpc:1s:0.3:1 3:pid:5s:0.3:0 3:pid:15s:0.3:0, about 15 minutes).
# Environment: ALLOT_BUILD_DIR (build), ALLOT_REPLICAS_SECONDS (120), ALLOT_REPLICAS_QPS (200),
#   ALLOT_REPLICAS_SEED (5), ALLOT_REPLICAS_STALE_S (lambda.stale_after_s, 10).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${ALLOT_BUILD_DIR:-build}
seconds=${ALLOT_REPLICAS_SECONDS:-120}
qps=${ALLOT_REPLICAS_QPS:-200}
seed=${ALLOT_REPLICAS_SEED:-5}
stale_s=${ALLOT_REPLICAS_STALE_S:-10}
cases=("$@")
[[ ${#cases[@]} -gt 0 ]] || cases=(1:pid:1s:0.3:0 3:pid:1s:0.3:1 3:pid:1s:0.3:2 3:pid:1s:0:1
  3:mpc:1s:0.3:1 3:pid:5s:0.3:0 3:pid:15s:0.3:0)
command -v prometheus > /dev/null || { echo "replicas: prometheus missing" >&2; exit 1; }

work=$(mktemp -d /tmp/allot-replicas-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
  wait 2> /dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The embedded default config with the case's controller, reading load and the cluster price
# from Prometheus. The drive's few hundred calls a second fill the reservoir slowly, so every call
# is sampled (the reference's advice: about a minute of traffic).
write_config() {
  local controller=$1 consensus=$2 prometheus_port=$3
  "$build/allot-server" --print-default-config |
    sed -e "s/^  kind: mpc/  kind: $controller/" -e 's/drain_delay_s: 0.0/drain_delay_s: 1.0/' \
      -e 's/sample_every: 8/sample_every: 1/' -e "s/stale_after_s: 10.0/stale_after_s: $stale_s/" \
      -e "s|  dir: var/models|  dir: $work/models|" \
      -e "s/^  decay_half_life_s: 30.0/  decay_half_life_s: 30.0\n  consensus: $consensus/" \
      > "$work/allot.yaml"
  cat >> "$work/allot.yaml" << EOF
telemetry:
  source: prometheus
  prometheus:
    url: http://127.0.0.1:$prometheus_port
    cpu_query: 'allot_sim_module_cpu_utilization{module="{module}"}'
    qps_query: 'allot_sim_module_qps{module="{module}"}'
    price_query: 'allot:module_price:avg{module="{module}"}'
EOF
  "$build/allot-server" --config "$work/allot.yaml" --check-config > /dev/null
}

start_replica() {
  local i=$1
  "$build/allot-server" --config "$work/allot.yaml" --listen "127.0.0.1:${grpc_ports[$i]}" \
    --metrics-listen "127.0.0.1:${metrics_ports[$i]}" >> "$work/replica-$i.log" 2>&1 &
  replica_pids[$i]=$!
  pids+=("$!")
}

wait_ready() {
  local i=$1
  for _ in $(seq 100); do
    curl -sf "127.0.0.1:${metrics_ports[$i]}/metrics" > /dev/null && return 0
    sleep 0.1
  done
  echo "replicas: replica $i did not start" >&2
  cat "$work/replica-$i.log" >&2
  exit 1
}

run_case() {
  IFS=: read -r replicas controller scrape consensus restart <<< "$1"
  rm -rf "$work/data" "$work"/replica-*.log
  mkdir -p "$work/models"
  local exporter prometheus_port
  exporter=$(free_port)
  prometheus_port=$(free_port)
  grpc_ports=()
  metrics_ports=()
  replica_pids=()
  local targets="" metrics=""
  for ((i = 0; i < replicas; i++)); do
    grpc_ports[$i]=$(free_port)
    metrics_ports[$i]=$(free_port)
    targets+="${targets:+,}127.0.0.1:${grpc_ports[$i]}"
    metrics+="${metrics:+, }'127.0.0.1:${metrics_ports[$i]}'"
  done
  cat > "$work/prometheus.yml" << EOF
global: {scrape_interval: $scrape, evaluation_interval: $scrape}
rule_files: ['$PWD/deploy/prometheus/allot-rules.yaml']
scrape_configs:
  - job_name: allot-sim
    static_configs: [{targets: ['127.0.0.1:$exporter']}]
  - job_name: allot
    static_configs: [{targets: [$metrics]}]
EOF
  prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
    --web.listen-address="127.0.0.1:$prometheus_port" 2> "$work/prometheus.log" &
  local prometheus_pid=$!
  pids+=("$prometheus_pid")
  write_config "$controller" "$consensus" "$prometheus_port"
  for ((i = 0; i < replicas; i++)); do start_replica "$i"; done
  for ((i = 0; i < replicas; i++)); do wait_ready "$i"; done

  echo "== $replicas replica(s), $controller, scrape and evaluation every $scrape," \
    "lambda.consensus $consensus, restart $restart: $seconds s at $qps QPS"
  "$build/allot-sim" drive --target "$targets" --export-load "127.0.0.1:$exporter" \
    --duration "$seconds" --qps "$qps" --seed "$seed" \
    --prices-csv "$work/prices-$1.csv" > "$work/drive.out" 2> "$work/drive.log" &
  local drive=$!
  if [[ $restart != 0 ]]; then
    local last=$((replicas - 1))
    sleep $((seconds * 45 / 100))
    kill "$([[ $restart == 2 ]] && echo -KILL || echo -TERM)" "${replica_pids[$last]}"
    wait "${replica_pids[$last]}" 2> /dev/null || true
    sleep $((seconds * 15 / 100))
    start_replica "$last"
  fi
  wait "$drive" || echo "(the drive saw failed calls; see its last line)"
  grep -E "^policy|^server|^oracle " "$work/drive.out"
  grep -E "^price spread|^rejoin|^drive:" "$work/drive.out"
  grep -h "joins at the cluster" "$work"/replica-*.log | sed 's/^/  /' || true
  for p in "${replica_pids[@]}"; do kill "$p" 2> /dev/null || true; done
  kill "$prometheus_pid" 2> /dev/null || true
  wait 2> /dev/null || true
  pids=()
}

for c in "${cases[@]}"; do run_case "$c"; done
