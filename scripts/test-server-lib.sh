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
