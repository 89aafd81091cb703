#!/usr/bin/env bash
# An S3-compatible server for tests: moto's server mode (from PyPI), on a free loopback port,
# in memory. `start DIR` prints "port=P"; `stop DIR` stops it. SLUICE_TEST_OWNER_PID: stop
# when that process exits.
set -euo pipefail
cmd=${1:-}; dir=${2:-}
[[ -n "$cmd" && -n "$dir" ]] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
. "$(dirname "$0")/test-server-lib.sh"
case "$cmd" in
  start)
    bin=$("$(dirname "$0")/python-env.sh")
    mkdir -p "$dir"
    for attempt in 1 2 3; do
      port=$(free_port)
      "$bin/moto_server" -H 127.0.0.1 -p "$port" </dev/null >"$dir/moto.log" 2>&1 &
      echo $! >"$dir/pid"
      if wait_ready "$dir" python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')"; then
        echo "port=$port"; exit 0
      fi
      kill "$(cat "$dir/pid")" 2>/dev/null || true
    done
    cat "$dir/moto.log" >&2; echo "moto server did not start" >&2; exit 1 ;;
  stop)
    [[ -f "$dir/pid" ]] && kill "$(cat "$dir/pid")" 2>/dev/null || true ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
