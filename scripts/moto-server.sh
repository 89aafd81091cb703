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
    launch() { exec "$bin/moto_server" -H 127.0.0.1 -p "$1"; }
    ready() { python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$1/moto-api/')"; }
    start_server "$dir" moto ;;
  stop) stop_server "$dir" ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
