#!/usr/bin/env bash
# The default-model pipeline in miniature, through the binaries: simulator logs and testbench ->
# allot-train with the cost map -> allot-bench-decision and allot-sim evaluate on the bundle.
# Usage: model_pipeline_test.sh BUILD_DIR
set -euo pipefail
build=$1
work=$(mktemp -d /tmp/allot-pipeline-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "model_pipeline_test: $*" >&2; exit 1; }

"$build/allot-sim" generate --out "$work/logs" --requests 4000 --shards 2 --seed 3 >/dev/null
"$build/allot-sim" testbench --out "$work/bench.csv" --seed 3 >/dev/null
if err=$("$build/allot-train" --logs "$work/logs" --algorithm ppo --quiet 2>&1); then
  fail "an unknown algorithm was accepted"
fi
grep -q "algorithm: unknown 'ppo' (dqn, drqn, vdn, qmix, awrq, maddpg)" <<<"$err" ||
  fail "unknown algorithm not named: $err"
if err=$("$build/allot-train" --logs "$work/logs" --network deep --quiet 2>&1); then
  fail "an unknown network was accepted"
fi
grep -q -- "--network: must be algorithm, factorised or distilled" <<<"$err" || fail "bad network not named: $err"
if err=$("$build/allot-train" --logs "$work/logs" --network distilled --distil-epochs 0 --quiet 2>&1); then
  fail "zero distillation epochs were accepted"
fi
grep -q -- "--distil-epochs: must be >= 1" <<<"$err" || fail "bad --distil-epochs not named: $err"
if err=$("$build/allot-train" --logs "$work/logs" --distil-actions -1 --quiet 2>&1); then
  fail "negative --distil-actions was accepted"
fi
grep -q -- "--distil-actions: must be >= 0" <<<"$err" || fail "bad --distil-actions not named: $err"
if err=$("$build/allot-train" --logs "$work/logs" --distil-pessimism -0.5 --quiet 2>&1); then
  fail "negative --distil-pessimism was accepted"
fi
grep -q -- "--distil-pessimism: must be finite and >= 0" <<<"$err" ||
  fail "bad --distil-pessimism not named: $err"
grep -Eq '^  awrq +AWRQ-Mixer' <<<"$("$build/allot-train" --help)" || fail "--help lists no methods"

"$build/allot-train" --logs "$work/logs" --testbench "$work/bench.csv" --out "$work/models" \
  --algorithm awrq --seed 3 --epochs 1 --heads 2 --quiet >/dev/null
bundle=$(ls -d "$work"/models/*-awrq)
grep -q '^cost_source:' "$bundle/manifest.yaml" || fail "manifest has no cost_source"
grep -q '^  network: distilled$' "$bundle/manifest.yaml" || fail "manifest does not say how it trained"
grep -Eq '^reuse_source: (model|half_life)$' "$bundle/manifest.yaml" || fail "manifest has no reuse_source"
grep -q '^warnings:' "$bundle/manifest.yaml" || fail "manifest has no warnings list"
[[ -s $bundle/cost_map.yaml ]] || fail "bundle has no cost_map.yaml"

out=$("$build/allot-bench-decision" --model-dir "$work/models" --requests 300)
echo "$out"
for agent in recall prerank rank; do
  grep -Eq "^bundle +$agent +joint_actions=[0-9]+ +requests=300 +p50= *[0-9.]+us" <<<"$out" ||
    fail "no bundle timing for $agent"
done
if "$build/allot-bench-decision" --model-dir "$work/empty" >/dev/null 2>&1; then
  fail "an empty model directory was accepted"
fi

table=$("$build/allot-sim" evaluate --requests 1500 --seed 3 --bundles "$bundle" 2>/dev/null)
echo "$table"
grep -Eq '^awrq\+pid +online' <<<"$table" || fail "no awrq+pid row"
grep -Eq '^awrq\+mpc +online' <<<"$table" || fail "no awrq+mpc row"
grep -Eq '^awrq\+dcaf +offline' <<<"$table" || fail "no awrq+dcaf row"
grep -Eq '^awrq\+windowed +hindsight' <<<"$table" || fail "no awrq+windowed row"
grep -Eq '^oracle-windowed +hindsight' <<<"$table" || fail "no oracle-windowed row"
grep -Eq "^model quality $(basename "$bundle") .*recall -?[0-9.]+ / -?[0-9.]+ prerank" <<<"$table" ||
  fail "no r_s line for the bundle"
echo "model_pipeline_test: ok"
