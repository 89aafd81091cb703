#!/usr/bin/env bash
# 7. Kinesis (moto), called by scripts/bench.sh; runnable alone against a MariaDB on PORT that
# holds small.users (ROWS_SMALL rows), with SLUICE, OUT, WORK and LAT_SECS set as bench.sh sets them.
# - full load of small.users into a 2-shard stream (`sluice run --once`, DMS JSON) → rows/s,
#   against boto3 put_records of the very same records (batches of 500) into another stream of
#   the same server, timed in the same run;
# - commit → record readable from the stream at 200 one-row tx/s, p50/p99.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/stream.sh
HERE=scripts/bench
: "${SLUICE:?}" "${PORT:?}" "${OUT:?}" "${WORK:?}" "${ROWS_SMALL:?}" "${LAT_SECS:?}"
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
kb() { echo "[bench kinesis] $*" >&2; }
skipk() { echo "$2" >"$OUT/$1.skip"; kb "skipped $1: $2"; }

PY="$(scripts/python-env.sh)/python"
MOTO_PORT=$(SLUICE_TEST_OWNER_PID=$$ scripts/moto-server.sh start "$WORK/moto" | sed -n 's/^port=//p')
trap 'scripts/moto-server.sh stop "$WORK/moto" >/dev/null 2>&1 || true' EXIT
EP="http://127.0.0.1:$MOTO_PORT"
"$PY" $HERE/kinesis_bench.py create --endpoint "$EP" bench-sluice bench-boto3 bench-lat >/dev/null

kcfg() { # dir table mode stream
  mkdir -p "$1"
  cat >"$1/sluice.toml" <<TOML
[source]
kind = "mysql"
url = "mysql://sluice:\${SLUICE_DB_PASSWORD}@127.0.0.1:$PORT"
server_id = $((6400 + RANDOM % 500))
tables = ["$2"]
$([[ "$2" == *.users ]] && echo "keys = { \"$2\" = [\"userid\"] }")

[snapshot]
mode = "$3"

[sink.kinesis]
stream = "$4"
region = "us-east-1"
endpoint = "$EP"

[state]
dir = "state"
TOML
}

kb "full load of small.users ($ROWS_SMALL rows) into Kinesis (moto, 2 shards)"
kcfg "$WORK/kin_load" small.users initial bench-sluice
if python3 $HERE/measure.py "$OUT/kinesis_load.json" -- "$SLUICE" run -c "$WORK/kin_load/sluice.toml" --once >/dev/null 2>"$OUT/kinesis_load.log"; then
  n=$("$PY" $HERE/kinesis_bench.py count --endpoint "$EP" --stream bench-sluice)
  python3 $HERE/jsonx.py set "$OUT/kinesis_load.json" stream "$n"
  python3 $HERE/jsonx.py set "$OUT/kinesis_load.json" rows "$ROWS_SMALL"
  kb "  $(python3 $HERE/jsonx.py fmt "$OUT/kinesis_load.json" '{wall_s:.2f} s; on the stream: {stream[data]} data records')"
  kb "baseline: boto3 put_records of the same records, batches of 500"
  "$PY" $HERE/kinesis_bench.py baseline --endpoint "$EP" --from bench-sluice --to bench-boto3 >"$OUT/kinesis_boto3.json" 2>"$OUT/kinesis_boto3.log" \
    || { rm -f "$OUT/kinesis_boto3.json"; skipk kinesis_boto3 "boto3 baseline failed: $(tail -1 "$OUT/kinesis_boto3.log")"; }
  [[ -f "$OUT/kinesis_boto3.json" ]] && kb "  $(python3 $HERE/jsonx.py fmt "$OUT/kinesis_boto3.json" '{rows} records in {seconds:.2f} s')"
else
  rm -f "$OUT/kinesis_load.json"
  skipk kinesis_load "sluice run failed: $(grep -m1 -i error "$OUT/kinesis_load.log" || tail -1 "$OUT/kinesis_load.log")"
  skipk kinesis_boto3 "no records to replay (the sluice load failed)"
fi

kb "latency: commit → record readable from the stream, 200 tx/s for $LAT_SECS s"
mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$PORT" -uroot -e \
  "CREATE DATABASE IF NOT EXISTS bench; CREATE TABLE IF NOT EXISTS bench.klat (id BIGINT NOT NULL PRIMARY KEY, sent_us BIGINT NOT NULL)"
kcfg "$WORK/kin_lat" bench.klat never bench-lat
sed -i 's/^endpoint = .*/&\nflush_interval = "100ms"/' "$WORK/kin_lat/sluice.toml"
start_run "$WORK/kin_lat/sluice.toml" "$OUT/kinesis_latency_run.log"
"$PY" $HERE/kinesis_bench.py latency --endpoint "$EP" --stream bench-lat --port "$PORT" --table bench.klat --rate 200 \
  --seconds "$LAT_SECS" >"$OUT/kinesis_latency.json" 2>"$OUT/kinesis_latency.log" \
  || { rm -f "$OUT/kinesis_latency.json"; skipk kinesis_latency "latency probe failed: $(tail -1 "$OUT/kinesis_latency.log")"; }
kill -TERM "$RUN" 2>/dev/null || true
wait "$RUN" || true
[[ -f "$OUT/kinesis_latency.json" ]] && kb "  $(python3 $HERE/jsonx.py fmt "$OUT/kinesis_latency.json" '{achieved_tps:.0f} tx/s; p50 {p50_ms:.0f} ms, p99 {p99_ms:.0f} ms; {missing} not seen')"
true
