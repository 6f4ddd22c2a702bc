# Sourced by the bench scripts: starts allot-server on free loopback ports with the bundles in
# $models (and the config file $ALLOT_BENCH_CONFIG when set, else the embedded default), logging to
# $work/server.log, and sets server (its pid), port and metrics_port. The caller's EXIT trap stops
# it (stop_server). ALLOT_SERVER_WRAPPER, when set, runs the server through a command that execs it
# (taskset -c 0, to pin it). A stopped server can be started again.
start_server() {
  local config=() wrapper=()
  [[ -n ${ALLOT_BENCH_CONFIG:-} ]] && config=(--config "$ALLOT_BENCH_CONFIG")
  [[ -n ${ALLOT_SERVER_WRAPPER:-} ]] && read -ra wrapper <<< "$ALLOT_SERVER_WRAPPER"
  rm -f "$work/server.log"  # the previous server's ports must not be read
  "${wrapper[@]}" "$build/allot-server" "${config[@]}" --listen 127.0.0.1:0 \
    --metrics-listen 127.0.0.1:0 --model-dir "$models" 2> "$work/server.log" &
  server=$!
  for _ in $(seq 300); do
    grep -q "listening on port" "$work/server.log" && break
    kill -0 "$server" 2> /dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.1
  done
  local ports
  ports=$(sed -n 's/.*listening on port \([0-9]*\) (metrics on port \([0-9]*\)).*/\1 \2/p' \
    "$work/server.log")
  read -r port metrics_port <<< "$ports"
  [[ -n ${port:-} && -n ${metrics_port:-} ]] || { cat "$work/server.log" >&2; exit 1; }
}

stop_server() {
  [[ -n ${server:-} ]] && kill "$server" 2> /dev/null && wait "$server" 2> /dev/null
  return 0
}
