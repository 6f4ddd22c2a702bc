#!/usr/bin/env bash
# Learned decisions against the analytic model and the hindsight oracle, per world and seed: logs
# from the world's logging policy, the AutoBucket test bench, a bundle per algorithm, then
# `allot-sim evaluate` on a held-out day with the bundles' +dcaf / +windowed / +pid / +mpc rows
# and r_s.
# Prints one summary table (% of oracle at equal compute) after the per-run tables.
#
#   bash bench/learned_quality.sh                      # awrq, worlds default and b, seeds 1-3
#   ALLOT_QUALITY_ALGORITHMS="dqn drqn vdn qmix awrq" ALLOT_QUALITY_SEEDS=1 bash bench/...
#
# Environment: ALLOT_QUALITY_WORLDS (default "default b"; also c, the held-out third chain that
# nothing is tuned on, and default-continuous and b-continuous, the same chains with continuous
# queues), ALLOT_QUALITY_SEEDS ("1 2 3"),
# ALLOT_QUALITY_ALGORITHMS ("awrq"), ALLOT_QUALITY_REQUESTS (logged requests, 500000),
# ALLOT_QUALITY_ROUNDS (1; N > 1: each later round logs as many requests with the last round's
# bundle as the served policy, `allot-sim generate --bundle`, and trains on all the logs),
# ALLOT_QUALITY_TRAIN_ARGS (extra allot-train flags), ALLOT_QUALITY_EVAL_ARGS (extra
# allot-sim evaluate flags, e.g. "--features-oracle-samples 16" for the features-only ceilings),
# ALLOT_BUILD_DIR (build), ALLOT_QUALITY_DIR (var/quality). Expects a built tree. About 5 minutes
# per world, seed and algorithm here.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${ALLOT_BUILD_DIR:-build}
work=${ALLOT_QUALITY_DIR:-var/quality}
requests=${ALLOT_QUALITY_REQUESTS:-500000}
rounds=${ALLOT_QUALITY_ROUNDS:-1}
summary=$work/summary.txt
mkdir -p "$work"
: > "$summary"

world_flags() {
  case $1 in
    default) echo "" ;;
    b) echo "--world config/sim/world-b.yaml --config config/allot-b.yaml" ;;
    c) echo "--world config/sim/world-c.yaml --config config/allot-c.yaml" ;;
    default-continuous) echo "--config config/allot-continuous.yaml" ;;
    b-continuous) echo "--world config/sim/world-b.yaml --config config/allot-b-continuous.yaml" ;;
    *) echo "learned_quality: unknown world '$1' (default, b, c, default-continuous, b-continuous)" >&2
       exit 2 ;;
  esac
}

for world in ${ALLOT_QUALITY_WORLDS:-default b}; do
  flags=$(world_flags "$world")
  config_flag=$(grep -o -- '--config [^ ]*' <<< "$flags" || true)
  for seed in ${ALLOT_QUALITY_SEEDS:-1 2 3}; do
    run=$work/$world-$seed
    rm -rf "$run"
    mkdir -p "$run"
    # shellcheck disable=SC2086
    "$build/allot-sim" generate $flags --out "$run/logs" --requests "$requests" --shards 8 \
      --seed "$seed" > /dev/null
    # shellcheck disable=SC2086
    "$build/allot-sim" testbench $flags --out "$run/testbench.csv" --seed "$seed" > /dev/null
    bundles=()
    for algorithm in ${ALLOT_QUALITY_ALGORITHMS:-awrq}; do
      logs=(--logs "$run/logs")
      for ((round = 1; round <= rounds; round++)); do
        if ((round > 1)); then
          # The bundle of the last round explores and logs as the served policy, on requests of
          # its own, and the next round trains on every round's logs.
          # shellcheck disable=SC2086
          "$build/allot-sim" generate $flags --out "$run/logs-$algorithm-$round" \
            --requests "$requests" --shards 8 --seed $((seed + 100 * round)) \
            --bundle "${bundles[-1]}" > /dev/null
          logs+=(--logs "$run/logs-$algorithm-$round")
          unset 'bundles[-1]'
        fi
        # shellcheck disable=SC2086
        "$build/allot-train" "${logs[@]}" $config_flag --testbench "$run/testbench.csv" \
          --out "$run/models-$round" --algorithm "$algorithm" --seed "$seed" --quiet \
          ${ALLOT_QUALITY_TRAIN_ARGS:-} > "$run/train-$algorithm-$round.txt" 2>&1
        bundles+=("$(ls -d "$run/models-$round"/*-"$algorithm" | tail -1)")
      done
    done
    # Evaluation seeds held-out streams that generate never uses.
    # shellcheck disable=SC2086
    "$build/allot-sim" evaluate $flags --seed "$seed" ${ALLOT_QUALITY_EVAL_ARGS:-} \
      --bundles "$(IFS=,; echo "${bundles[*]}")" > "$run/evaluate.txt" 2> /dev/null
    echo "== world $world seed $seed"
    cat "$run/evaluate.txt"
    grep -h "WARNING" "$run"/train-*.txt || true
    awk -v world="$world" -v seed="$seed" '
      $2 == "offline" || $2 == "online" || $2 == "hindsight" { printf "%-8s %-5s %-28s %7.2f\n", world, seed, $1, $4 }
    ' "$run/evaluate.txt" >> "$summary"
  done
done

echo
echo "== % of oracle at equal compute (world, seed, row)"
sort -k3,3 -k1,1 -k2,2n "$summary"
