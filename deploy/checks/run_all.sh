#!/usr/bin/env bash
# Offline checks of everything under deploy/ plus the Dockerfile, against a built allot-server.
#
#   deploy/checks/run_all.sh BUILD_DIR        (BUILD_DIR holds allot-server, e.g. build)
#
# 1. npm ci (skipped while node_modules matches package-lock.json)
# 2. kustomize renders deploy/k8s/base, deploy/k8s/overlays/* (the server) and deploy/k8s/training
#    (the allot-train Indexed Job)
# 3. every rendered object: schema validation (kubernetes-models, prometheus-operator models) and
#    a TypeScript excess-property check that rejects unknown fields; cross-object consistency
#    (server sets; training sets: ranks, rendezvous names and ports, volumes, next to the servers)
# 4. the rendered allot.yaml of each ConfigMap passes allot-server --check-config
# 5. promtool check rules / test rules; every dashboard query parsed by promtool
# 6. the dashboard type-checks against @grafana/schema; Dockerfile lint and runtime-library check
# 7. live: start allot-server, drive it over gRPC (health, ReportLoad, Allocate), compare /metrics
#    with every metric name the rules and the dashboard read; start Prometheus scraping it with
#    the alert rules loaded; wait for a request rate and a p99, run every rule and dashboard query
# Exits non-zero on the first failure. KEEP_WORK=1 keeps the temporary directory.
set -euo pipefail

if [[ $# -ne 1 ]]; then echo "usage: $0 BUILD_DIR" >&2; exit 2; fi
BUILD_DIR=$(realpath "$1")
CHECKS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$CHECKS/../.." && pwd)
PY=/usr/bin/python3 # Debian's python3, which has python3-grpcio and python3-grpc-tools
START=$(date +%s)
WORK=$(mktemp -d -t allot-deploy-checks.XXXXXX)
PIDS=()
STEPS=0

cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [[ ${KEEP_WORK:-0} == 1 || $rc -ne 0 ]]; then
    echo "run_all: work directory kept: $WORK" >&2
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
  echo "run_all: FAIL: $*" >&2
  for log in "$WORK"/server.log "$WORK"/prometheus.log "$WORK"/driver.log; do
    [[ -s $log ]] && { echo "--- last lines of $log" >&2; tail -n 15 "$log" >&2; }
  done
  echo "deploy checks: $STEPS passed, 1 failed" >&2
  exit 1
}
step() { echo; echo "== $*"; }
ok() { STEPS=$((STEPS + 1)); }
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ------------------------------------------------------------------ tools
step "tools"
[[ -x $BUILD_DIR/allot-server ]] || die "no $BUILD_DIR/allot-server (build it first)"
for t in node npm promtool prometheus curl; do
  command -v "$t" >/dev/null || die "$t not found; run deploy/checks/install.sh"
done
if command -v kustomize >/dev/null; then KUSTOMIZE=(kustomize build)
elif command -v kubectl >/dev/null; then KUSTOMIZE=(kubectl kustomize)
else die "neither kustomize nor kubectl is installed; see deploy/README.md"; fi
"$PY" -c 'import grpc, grpc_tools' 2>/dev/null || die "$PY lacks grpc/grpc_tools; run deploy/checks/install.sh"
[[ -f /usr/share/grpc-proto/grpc/health/v1/health.proto ]] || die "grpc-proto (health.proto) missing; run deploy/checks/install.sh"
echo "node $(node --version), ${KUSTOMIZE[*]}, $(promtool --version 2>&1 | head -n1)"
ok

# ------------------------------------------------------------------ npm ci
step "npm ci (deploy/checks)"
stamp_want=$(cat "$CHECKS/package.json" "$CHECKS/package-lock.json" | sha1sum | cut -c1-16)
if [[ -f $CHECKS/node_modules/.allot-stamp && $(cat "$CHECKS/node_modules/.allot-stamp") == "$stamp_want" ]]; then
  echo "node_modules is current"
else
  (cd "$CHECKS" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
  echo "$stamp_want" >"$CHECKS/node_modules/.allot-stamp"
fi
ok

# ------------------------------------------------------------------ render
step "render kustomize base, overlays and training (${KUSTOMIZE[*]})"
mkdir -p "$WORK/rendered"
"${KUSTOMIZE[@]}" "$ROOT/deploy/k8s/base" >"$WORK/rendered/base.yaml" || die "kustomize: deploy/k8s/base"
"${KUSTOMIZE[@]}" "$ROOT/deploy/k8s/training" >"$WORK/rendered/training.yaml" || die "kustomize: deploy/k8s/training"
for overlay in "$ROOT"/deploy/k8s/overlays/*/; do
  name=$(basename "$overlay")
  [[ $name != base && $name != training ]] || die "overlay name $name clashes with a rendered set"
  "${KUSTOMIZE[@]}" "$overlay" >"$WORK/rendered/$name.yaml" || die "kustomize: $overlay"
done
grep -c '^kind:' "$WORK"/rendered/*.yaml | sed 's/^/objects: /'
ok

# ------------------------------------------------------------------ static checks
step "PrometheusRule is generated from deploy/prometheus/allot-rules.yaml"
node "$CHECKS/sync-prometheusrule.mjs" --check || die "PrometheusRule out of date"
ok

step "schema validation and consistency of rendered objects, rules, dashboard, Dockerfile"
node "$CHECKS/check-static.mjs" "$WORK" "$WORK"/rendered/*.yaml || die "static checks"
ok

step "unknown-field check: tsc over the rendered objects and the dashboard"
ln -s "$CHECKS/node_modules" "$WORK/ts/node_modules"
cat >"$WORK/ts/tsconfig.json" <<'EOF'
{
  "compilerOptions": {
    "strict": true, "noEmit": true, "target": "es2022", "module": "esnext",
    "moduleResolution": "bundler", "skipLibCheck": true, "types": []
  },
  "files": ["k8s.ts", "dashboard.ts"]
}
EOF
(cd "$WORK/ts" && "$CHECKS/node_modules/.bin/tsc" -p tsconfig.json) || die "unknown or mistyped fields (see $WORK/ts)"
echo "all objects and the dashboard satisfy their schema types; canaries rejected"
ok

step "allot-server --check-config on every rendered ConfigMap"
for cfg in "$WORK"/configs/*.yaml; do
  "$BUILD_DIR/allot-server" --check-config --config "$cfg" || die "config of $(basename "$cfg" .yaml) is invalid"
done
ok

step "promtool: check rules, unit tests, dashboard queries"
promtool check rules "$ROOT/deploy/prometheus/allot-rules.yaml" || die "promtool check rules"
promtool test rules "$ROOT"/deploy/prometheus/tests/*.yaml || die "promtool test rules"
promtool check rules "$WORK/dashboard-exprs.rules.yaml" || die "a dashboard query is not valid PromQL"
ok

step "Dockerfile: dockerfilelint and runtime libraries"
"$CHECKS/node_modules/.bin/dockerfilelint" "$ROOT/Dockerfile" || die "dockerfilelint"
node "$CHECKS/check-image-libs.mjs" "$BUILD_DIR" || die "runtime stage packages"
ok

# ------------------------------------------------------------------ live server
step "live: allot-server, driven over gRPC"
mkdir -p "$WORK/py/protos/healthcheck" "$WORK/models"
cp /usr/share/grpc-proto/grpc/health/v1/health.proto "$WORK/py/protos/healthcheck/"
"$PY" -m grpc_tools.protoc -I "$ROOT/proto" -I "$WORK/py/protos" --python_out="$WORK/py" \
  --grpc_python_out="$WORK/py" "$ROOT"/proto/allot/v1/*.proto "$WORK/py/protos/healthcheck/health.proto" ||
  die "protoc (python stubs)"
METRICS_PORT=$(free_port)
# The analytic model decides in shadow on every call, so that the shadow panels have series.
# and an experiment arm (the analytic model again) has half of the users, for the arm panels.
sed -e 's/^  shadow_bundle: ""/  shadow_bundle: analytic/' -e 's/^  shadow_sample_rate: .*/  shadow_sample_rate: 1.0/' \
  -e 's/^  arms: \[\]/  arms: [{name: candidate, bundle: analytic, weight: 0.5}]/' \
  "$WORK/configs/base.yaml" >"$WORK/configs/live.yaml"
grep -q '^  shadow_bundle: analytic' "$WORK/configs/live.yaml" || die "live config: no experiments.shadow_bundle to set"
grep -q '^  arms: \[{name: candidate' "$WORK/configs/live.yaml" || die "live config: no experiments.arms to set"
"$BUILD_DIR/allot-server" --config "$WORK/configs/live.yaml" --listen 127.0.0.1:0 \
  --metrics-listen "127.0.0.1:$METRICS_PORT" --model-dir "$WORK/models" 2>"$WORK/server.log" &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
GRPC_PORT=
for _ in $(seq 1 150); do
  if line=$(grep -m1 -o 'listening on port [0-9]* (metrics on port [0-9]*)' "$WORK/server.log"); then
    GRPC_PORT=$(sed -E 's/listening on port ([0-9]+).*/\1/' <<<"$line")
    got_metrics=$(sed -E 's/.*metrics on port ([0-9]+).*/\1/' <<<"$line")
    [[ $got_metrics == "$METRICS_PORT" ]] || die "server reports metrics port $got_metrics, asked for $METRICS_PORT"
    break
  fi
  kill -0 "$SERVER_PID" 2>/dev/null || die "allot-server exited during start-up"
  sleep 0.1
done
[[ -n $GRPC_PORT ]] || die "allot-server did not log 'listening on port N' within 15 s"
echo "allot-server pid $SERVER_PID: grpc 127.0.0.1:$GRPC_PORT, metrics 127.0.0.1:$METRICS_PORT"
health_args=()
while IFS= read -r svc; do health_args+=(--health "$svc"); done <"$WORK/probe-services.txt"
PYTHONPATH="$WORK/py" "$PY" "$CHECKS/drive_server.py" --addr "127.0.0.1:$GRPC_PORT" "${health_args[@]}" \
  --seconds 0 || die "driving allot-server"
curl -fsS "http://127.0.0.1:$METRICS_PORT/metrics" >"$WORK/metrics.txt" || die "GET /metrics"
node "$CHECKS/check-live.mjs" metrics "$WORK/metrics.txt" "$WORK/metrics-used.json" || die "metric names"
ok

step "live: Prometheus scraping allot-server with the alert rules loaded"
PROM_PORT=$(free_port)
cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $ROOT/deploy/prometheus/allot-rules.yaml
scrape_configs:
  - job_name: allot-server
    static_configs:
      - targets: ["127.0.0.1:$METRICS_PORT"]
        labels:
          namespace: deploy-checks
EOF
promtool check config "$WORK/prometheus.yml" >/dev/null || die "promtool check config"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn 2>"$WORK/prometheus.log" &
PROM_PID=$!
PIDS+=("$PROM_PID")
PYTHONPATH="$WORK/py" "$PY" "$CHECKS/drive_server.py" --addr "127.0.0.1:$GRPC_PORT" --seconds 90 \
  --qps 100 >"$WORK/driver.log" 2>&1 &
DRIVER_PID=$!
PIDS+=("$DRIVER_PID")
for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null 2>&1 && break
  kill -0 "$PROM_PID" 2>/dev/null || die "prometheus exited during start-up"
  sleep 0.1
done
curl -fsS "http://127.0.0.1:$PROM_PORT/-/ready" >/dev/null 2>&1 || die "prometheus not ready within 10 s"
node "$CHECKS/check-live.mjs" prometheus "http://127.0.0.1:$PROM_PORT" "$WORK/dashboard-queries.json" 30 ||
  die "Prometheus checks"
if ! kill -0 "$DRIVER_PID" 2>/dev/null; then
  wait "$DRIVER_PID" || die "the gRPC driver failed while Prometheus scraped"
fi
kill -0 "$SERVER_PID" 2>/dev/null || die "allot-server died during the run"
ok

echo
echo "deploy checks: all passed in $(($(date +%s) - START)) s"
echo "deploy checks: $STEPS passed, 0 failed"
