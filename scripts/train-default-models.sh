#!/usr/bin/env bash
# Default-model pipeline: simulator logs (500k requests) -> AutoBucket test bench -> AWRQ-Mixer
# bundle in var/models. Skips training when a bundle exists (ALLOT_RETRAIN=1 trains a new version anyway).
# Expects a built tree (scripts/build.sh build). Deterministic by seed.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${ALLOT_BUILD_DIR:-build}
requests=${ALLOT_DEFAULT_REQUESTS:-500000}

# A bundle of an older model format is not served (the server refuses it): train a new one then.
if [[ ${ALLOT_RETRAIN:-0} != 1 ]] &&
  grep -lqx 'model_format: 2' var/models/*/manifest.yaml 2>/dev/null; then
  echo "train-default-models: a bundle exists in var/models (ALLOT_RETRAIN=1 trains another)"
  exit 0
fi
start=$(date +%s)
rm -rf var/logs/default
"$build/allot-sim" generate --out var/logs/default --requests "$requests" --shards 8 --seed 1
mkdir -p var/testbench
"$build/allot-sim" testbench --out var/testbench/default.csv --seed 1
"$build/allot-train" --logs var/logs/default --testbench var/testbench/default.csv --out var/models \
  --algorithm awrq --seed 1 --epochs 8
echo "train-default-models: done in $(( $(date +%s) - start )) s"
