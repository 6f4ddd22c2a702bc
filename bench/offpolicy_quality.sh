#!/usr/bin/env bash
# How far off-policy estimates can be trusted, per world and seed: logs from the world's logging
# policy (with propensities), a bundle per algorithm (whose manifest records its estimates on the
# validation logs), then `allot-sim offpolicy`: IPS, SNIPS and doubly robust estimates of each
# bundle and of the analytic rule from an epsilon-greedy log of a held-out day, beside the
# simulated truth of each on the same requests at the same prices. Prints the per-run checks,
# then the relative error of each estimator and how often its 95% interval covered the truth.
#
#   bash bench/offpolicy_quality.sh
#   ALLOT_OPE_WORLDS=default ALLOT_OPE_SEEDS=1 bash bench/offpolicy_quality.sh
#
# Environment: ALLOT_OPE_WORLDS (default "default b"), ALLOT_OPE_SEEDS ("1 2 3"),
# ALLOT_OPE_ALGORITHMS ("awrq vdn dqn"), ALLOT_OPE_REQUESTS (logged requests to train on,
# 200000), ALLOT_OPE_CHECK_REQUESTS (held-out requests logged for the check, 50000),
# ALLOT_BUILD_DIR (build), ALLOT_OPE_DIR (var/offpolicy). Expects a built tree.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${ALLOT_BUILD_DIR:-build}
work=${ALLOT_OPE_DIR:-var/offpolicy}
requests=${ALLOT_OPE_REQUESTS:-200000}
check_requests=${ALLOT_OPE_CHECK_REQUESTS:-50000}
rows=$work/rows.txt
mkdir -p "$work"
: > "$rows"

world_flags() {
  case $1 in
    default) echo "" ;;
    b) echo "--world config/sim/world-b.yaml --config config/allot-b.yaml" ;;
    *) echo "offpolicy_quality: unknown world '$1' (default, b)" >&2; exit 2 ;;
  esac
}

for world in ${ALLOT_OPE_WORLDS:-default b}; do
  flags=$(world_flags "$world")
  config_flag=""
  [[ $world == b ]] && config_flag="--config config/allot-b.yaml"
  for seed in ${ALLOT_OPE_SEEDS:-1 2 3}; do
    run=$work/$world-$seed
    rm -rf "$run"
    mkdir -p "$run"
    # shellcheck disable=SC2086
    "$build/allot-sim" generate $flags --out "$run/logs" --requests "$requests" --shards 4 \
      --seed "$seed" > /dev/null
    bundles=()
    for algorithm in ${ALLOT_OPE_ALGORITHMS:-awrq vdn dqn}; do
      # shellcheck disable=SC2086
      "$build/allot-train" --logs "$run/logs" $config_flag --out "$run/models" \
        --algorithm "$algorithm" --seed "$seed" --quiet > "$run/train-$algorithm.txt" 2>&1
      bundles+=("$(ls -d "$run"/models/*-"$algorithm" | tail -1)")
    done
    # shellcheck disable=SC2086
    "$build/allot-sim" offpolicy $flags --seed "$seed" --requests "$check_requests" \
      --bundles "$(IFS=,; echo "${bundles[*]}")" > "$run/offpolicy.txt" 2> /dev/null
    echo "== world $world seed $seed"
    cat "$run/offpolicy.txt"
    # One line per candidate and outcome: world seed candidate outcome truth, then estimate,
    # lower and upper of ips, snips and dr.
    awk -v world="$world" -v seed="$seed" '
      /^  [^ ].*\(matched/ { n = split($1, part, "-"); name = part[n]; next }
      /^    (revenue|core-ms|net) / {
        line = $0; gsub(/[\[\],*]/, " ", line); n = split(line, f, " ")
        printf "%s %s %s %s %s", world, seed, name, f[1], f[3]
        for (i = 4; i <= n; ++i) if (f[i] != "ips" && f[i] != "snips" && f[i] != "dr") printf " %s", f[i]
        printf "\n"
      }' "$run/offpolicy.txt" >> "$rows"
  done
done

echo
echo "== relative error |estimate - truth| / |truth| (mean over runs) and 95% interval coverage"
printf "%-10s %-8s %5s | %-16s | %-16s | %-16s\n" candidate outcome runs "ips err cover" \
  "snips err cover" "dr err cover"
awk '
  { key = $3 " " $4; runs[key]++
    for (e = 0; e < 3; ++e) {
      est = $(6 + 3 * e); lo = $(7 + 3 * e); hi = $(8 + 3 * e); truth = $5
      abserr[key, e] += (est > truth ? est - truth : truth - est) / (truth > 0 ? truth : -truth)
      covered[key, e] += (lo <= truth && truth <= hi)
    } }
  END {
    for (key in runs) {
      split(key, k, " ")
      printf "%-10s %-8s %5d", k[1], k[2], runs[key]
      for (e = 0; e < 3; ++e) printf " | %7.1f%% %4d/%-2d", 100 * abserr[key, e] / runs[key], covered[key, e], runs[key]
      printf "\n"
    } }' "$rows" | sort
