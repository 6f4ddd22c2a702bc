#!/usr/bin/env bash
# allot-train scaled out, on simulator logs:
#   1. data-parallel throughput: action-value transitions/s with 1 and 2 processes (c10d Gloo on
#      loopback, torchrun's environment) by model width, alternating 1 and 2 processes;
#   2. one gradient all-reduce between 2 processes, by size (allot-bench-allreduce);
#   3. out of core: logs several times the memory a cgroup allows the trainer, and the trainer's
#      peak RSS on 1x and on the large log set (bounded: it streams chunks and keeps a capped
#      validation sample).
#   ALLOT_BENCH_PARTS (default "1 2 3")   ALLOT_BENCH_WIDTHS (default "32 128")
#   ALLOT_BENCH_MEMORY_MB (default 512)   ALLOT_BENCH_LOG_FACTOR (default 3: log bytes / limit)
# Expects a built tree (scripts/build.sh build). Part 3 needs root for a memory cgroup.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${ALLOT_BUILD_DIR:-build}
work=$(mktemp -d /tmp/allot-train-scale-XXXXXX)
trap 'rm -rf "$work"; [[ -n ${cgroup:-} ]] && rmdir "$cgroup" 2>/dev/null || true' EXIT
parts=${ALLOT_BENCH_PARTS:-1 2 3}
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
metric() { awk -v k="$1" '$1 == k { printf "%.0f", $3 }'; }

# Runs allot-train on $1 processes (the remaining arguments are its flags); prints rank 0's output.
train_on() {
  local n=$1 port pids=() r
  shift
  if [[ $n == 1 ]]; then "$build/allot-train" "$@" 2>/dev/null; return; fi
  port=$(free_port)
  for ((r = 1; r < n; r++)); do
    WORLD_SIZE=$n RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      "$build/allot-train" "$@" >/dev/null 2>&1 &
    pids+=($!)
  done
  WORLD_SIZE=$n RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$build/allot-train" "$@" 2>/dev/null
  wait "${pids[@]}"
}

if [[ " $parts " == *" 1 "* ]]; then
  echo "== 1. data-parallel throughput (action values, transitions/s over all ranks)"
  "$build/allot-sim" generate --out "$work/logs" --requests 100000 --shards 4 --seed 1 >/dev/null
  printf "%-6s %10s %8s %12s %12s %8s\n" hidden parameters repeat "1 process" "2 processes" ratio
  for width in ${ALLOT_BENCH_WIDTHS:-32 128}; do
    for repeat in 1 2; do
      flags=(--logs "$work/logs" --out "$work/models" --hidden "$width" --epochs 2 --seed 1 --quiet)
      one_out=$(train_on 1 "${flags[@]}")
      two_out=$(train_on 2 "${flags[@]}")
      one=$(metric train_transitions_per_second <<<"$one_out")
      two=$(metric train_transitions_per_second <<<"$two_out")
      printf "%-6s %10s %8s %12s %12s %8.2f\n" "$width" "$(metric model_parameters <<<"$one_out")" \
        "$repeat" "$one" "$two" "$(awk -v a="$one" -v b="$two" 'BEGIN { print b / a }')"
    done
  done
fi

if [[ " $parts " == *" 2 "* ]]; then
  echo "== 2. one all-reduce between 2 processes on loopback (Gloo)"
  port=$(free_port)
  WORLD_SIZE=2 RANK=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$build/allot-bench-allreduce" &
  WORLD_SIZE=2 RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$build/allot-bench-allreduce"
  wait
fi

# Peak resident set of a command (VmHWM sampled until it exits), in MB; its exit status goes to
# $work/peak.status.
peak_rss_mb() {
  "$@" >"$work/peak.out" 2>"$work/peak.err" &
  local pid=$! kb=0 h
  while kill -0 "$pid" 2>/dev/null; do
    h=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    [[ -n $h ]] && kb=$h
    sleep 0.2
  done
  local status=0
  wait "$pid" || status=$?
  echo "$status" >"$work/peak.status"
  echo $((kb / 1024))
}

if [[ " $parts " == *" 3 "* ]]; then
  limit_mb=${ALLOT_BENCH_MEMORY_MB:-512}
  echo "== 3. out of core: the trainer in a ${limit_mb} MB memory cgroup"
  "$build/allot-sim" generate --out "$work/base" --requests 400000 --shards 8 --seed 2 >/dev/null
  base_mb=$(du -sm "$work/base" | cut -f1)
  # The large set: copies of the base shards (the same requests again: enough for memory and
  # throughput, and each copy stays on its side of the split).
  want_mb=$((limit_mb * ${ALLOT_BENCH_LOG_FACTOR:-3}))
  mkdir -p "$work/large"
  for ((copy = 0; $(du -sm "$work/large" | cut -f1) < want_mb; copy++)); do
    for f in "$work"/base/*.binpb; do cp "$f" "$work/large/copy$copy-$(basename "$f")"; done
  done
  large_mb=$(du -sm "$work/large" | cut -f1)
  cgroup=/sys/fs/cgroup/memory/allot-train-bench-$$
  if mkdir "$cgroup" 2>/dev/null; then
    echo $((limit_mb * 1024 * 1024)) >"$cgroup/memory.limit_in_bytes"
    # Runs in the background subshell peak_rss_mb starts: it joins the cgroup and becomes the
    # trainer (same PID, so VmHWM is the trainer's).
    run_limited() { echo $BASHPID >"$cgroup/cgroup.procs" && exec "$@"; }
  else
    echo "(no memory cgroup here: ulimit -v $((limit_mb * 4)) MB of address space instead)"
    run_limited() { ulimit -v $((limit_mb * 4 * 1024)) && exec "$@"; }
  fi
  printf "%-10s %8s %10s %10s %14s %8s\n" logs "log MB" rows "peak MB" "transitions/s" seconds
  for set in base large; do
    start=$(date +%s)
    mb=$(peak_rss_mb run_limited "$build/allot-train" --logs "$work/$set" --out "$work/models" \
      --epochs 1 --seed 2 --quiet --max-validation-rows 20000)
    status=$(cat "$work/peak.status")
    [[ $status == 0 ]] || { echo "$set: allot-train exited $status: $(tail -2 "$work/peak.err")"; continue; }
    rows=$(grep -o '^allot-train: [0-9]* transitions' "$work/peak.err" | awk '{ print $2 }')
    printf "%-10s %8s %10s %10s %14s %8s\n" "$set" "$(du -sm "$work/$set" | cut -f1)" "$rows" "$mb" \
      "$(metric train_transitions_per_second <"$work/peak.out")" $(($(date +%s) - start))
  done
  [[ -f $cgroup/memory.failcnt ]] && echo "cgroup: limit hit $(cat "$cgroup/memory.failcnt") times (page cache reclaimed), peak usage $(($(cat "$cgroup/memory.max_usage_in_bytes") / 1048576)) MB"
  echo "(base ${base_mb} MB, large ${large_mb} MB = $(awk -v a="$large_mb" -v b="$limit_mb" 'BEGIN { printf "%.1f", a / b }')x the limit)"
fi
