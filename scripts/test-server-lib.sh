# Shared by the scripts that start a private test server (moto-server.sh, tansu-server.sh):
# source it. The server's pid is in DIR/pid.

# A free port of 127.0.0.1 (taken back by the kernel at once; the server binds it next).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_ready DIR CMD...: waits up to 10 s for CMD to succeed while the server lives. Then, with
# SLUICE_TEST_OWNER_PID set, stops the server when that process exits, and returns 0.
wait_ready() {
  local dir=$1; shift
  for _ in $(seq 1 100); do
    if "$@" 2>/dev/null; then
      if [[ -n "${SLUICE_TEST_OWNER_PID:-}" ]]; then
        (while kill -0 "$SLUICE_TEST_OWNER_PID" 2>/dev/null && kill -0 "$(cat "$dir/pid")" 2>/dev/null; do sleep 2; done
         kill "$(cat "$dir/pid")" 2>/dev/null || true) </dev/null >/dev/null 2>&1 &
      fi
      return 0
    fi
    kill -0 "$(cat "$dir/pid")" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# start_server DIR NAME PORT: up to 3 times, `launch P` (the caller's function: starts the server
# on port P in the background, output to DIR/NAME.log) and waits for `ready P`; prints "port=P"
# and exits 0, or shows the log and exits 1. PORT: a fixed port, else a free one each time.
start_server() {
  local dir=$1 name=$2 fixed=${3:-} port attempt
  mkdir -p "$dir"
  for attempt in 1 2 3; do
    port=${fixed:-$(free_port)}
    launch "$port" </dev/null >"$dir/$name.log" 2>&1 &
    echo $! >"$dir/pid"
    if wait_ready "$dir" ready "$port"; then
      echo "port=$port"; exit 0
    fi
    kill "$(cat "$dir/pid")" 2>/dev/null || true
  done
  cat "$dir/$name.log" >&2; echo "$name did not start" >&2; exit 1
}

# stop_server DIR: stops what start_server started there.
stop_server() {
  [[ -f "$1/pid" ]] && kill "$(cat "$1/pid")" 2>/dev/null || true
}
