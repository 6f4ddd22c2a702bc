#!/usr/bin/env bash
# Default-model pipeline: simulator logs -> AutoBucket test bench -> AWRQ-Mixer bundle in
# var/models. Skips training when a bundle exists (ALLOT_RETRAIN=1 trains a new version anyway).
# Expects a built tree (scripts/build.sh build). Deterministic by seed.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${ALLOT_BUILD_DIR:-build}
requests=${ALLOT_DEFAULT_REQUESTS:-60000}

if [[ ${ALLOT_RETRAIN:-0} != 1 ]] && ls var/models/*/manifest.yaml >/dev/null 2>&1; then
  echo "train-default-models: a bundle exists in var/models (ALLOT_RETRAIN=1 trains another)"
  exit 0
fi
start=$(date +%s)
rm -rf var/logs/default
"$build/allot-sim" generate --out var/logs/default --requests "$requests" --shards 4 --seed 1
mkdir -p var/testbench
"$build/allot-sim" testbench --out var/testbench/default.csv --seed 1
"$build/allot-train" --logs var/logs/default --testbench var/testbench/default.csv --out var/models \
  --algorithm awrq --seed 1 --epochs 4
echo "train-default-models: done in $(( $(date +%s) - start )) s"
