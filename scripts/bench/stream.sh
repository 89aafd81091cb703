# Sourced by scripts/bench/kinesis.sh and kafka.sh: `start_run CONFIG LOG` starts `sluice run`
# in the background (its pid in RUN) and waits until it streams.
start_run() {
  "$SLUICE" run -c "$1" >/dev/null 2>"$2" &
  RUN=$!
  local i
  for i in $(seq 1 300); do
    "$SLUICE" status -c "$1" --json 2>/dev/null | grep -q '"phase": "streaming"' && return 0
    sleep 0.1
  done
  return 0
}
