#!/usr/bin/env bash
# 8. Kafka (tansu), called by scripts/bench.sh; runnable alone against a MariaDB on PORT that
# holds TABLE (ROWS rows, the reference users shape), with SLUICE, BENCH, OUT and WORK set as
# bench.sh sets them (and SLUICE_DB_PASSWORD for its `sluice` user).
# - full load of TABLE into Kafka alone (`sluice run --once`, Debezium JSON keyed by userid,
#   idempotent, acks=all) into a private tansu broker (scripts/tansu-server.sh) → rows/s;
# - baseline, in the same run: librdkafka alone (`sluice-bench produce`: the same vendored build,
#   idempotent, acks=all) producing the very same records (sluice's, read back with `sluice tail
#   --source kafka`) to another topic of the same broker. Not kcat: Debian's kcat (librdkafka
#   2.0.2) fails tansu's ApiVersions answer.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/bench/stream.sh
: "${SLUICE:?}" "${BENCH:?}" "${PORT:?}" "${OUT:?}" "${WORK:?}" "${TABLE:?}" "${ROWS:?}"
J() { python3 scripts/bench/jsonx.py "$@"; }
MEASURE=(python3 scripts/bench/measure.py)
kb() { echo "[bench kafka] $*" >&2; }
skipk() { echo "$2" >"$OUT/$1.skip"; kb "skipped $1: $2"; }

KDIR="$WORK/tansu" DIR="$WORK/kafka"
KPORT=$(SLUICE_TEST_OWNER_PID=$$ scripts/tansu-server.sh start "$KDIR" 2>"$OUT/kafka_tansu.log" | sed -n 's/^port=//p')
[[ -n "$KPORT" ]] || { skipk kafka_sluice "tansu did not start: $(tail -1 "$OUT/kafka_tansu.log")"; exit 0; }
trap 'scripts/tansu-server.sh stop "$KDIR" >/dev/null 2>&1 || true; rm -rf "$DIR"' EXIT

mkdir -p "$DIR"
cat >"$DIR/sluice.toml" <<TOML
[source]
kind = "mysql"
url = "mysql://sluice:\${SLUICE_DB_PASSWORD}@127.0.0.1:$PORT"
server_id = $((6400 + RANDOM % 500))
tables = ["$TABLE"]
keys = { "$TABLE" = ["userid"] }

[sink.kafka]
brokers = "127.0.0.1:$KPORT"
topic_prefix = "bench"

[state]
dir = "state"
TOML

kb "full load of $TABLE ($ROWS rows) into tansu"
if ! "${MEASURE[@]}" "$OUT/kafka_sluice.json" -- "$SLUICE" run -c "$DIR/sluice.toml" --once >/dev/null 2>"$OUT/kafka_sluice.log"; then
  rm -f "$OUT/kafka_sluice.json"
  skipk kafka_sluice "sluice run failed: $(grep -m1 -i 'error' "$OUT/kafka_sluice.log" || tail -1 "$OUT/kafka_sluice.log")"
  exit 0
fi
# The change records as stored (the schema-change record left out), one per line.
"$SLUICE" tail -c "$DIR/sluice.toml" --source kafka --no-follow --table "$TABLE" 2>>"$OUT/kafka_sluice.log" \
  | grep -v '"tableChanges"' >"$WORK/kafka.jsonl" || true
n=$(wc -l <"$WORK/kafka.jsonl")
J set "$OUT/kafka_sluice.json" rows "$n"
J set "$OUT/kafka_sluice.json" expected_rows "$ROWS"
kb "$(J fmt "$OUT/kafka_sluice.json" '{wall_s:.2f} s, peak RSS {maxrss_kb} kB'); $n records read back"
[[ "$n" == "$ROWS" ]] || kb "WARNING: $n records on the topic, expected $ROWS"

kb "baseline: librdkafka alone producing the same $n records (idempotent, acks=all)"
if "${MEASURE[@]}" "$OUT/kafka_produce.json" -- "$BENCH" produce --brokers "127.0.0.1:$KPORT" --topic bench.baseline \
  --file "$WORK/kafka.jsonl" >"$OUT/kafka_produce_out.json" 2>"$OUT/kafka_produce.log"; then
  J set "$OUT/kafka_produce.json" rows "$n"
  kb "$(J fmt "$OUT/kafka_produce.json" '{wall_s:.2f} s')"
else
  rm -f "$OUT/kafka_produce.json"
  skipk kafka_produce "sluice-bench produce failed: $(tail -1 "$OUT/kafka_produce.log")"
fi
rm -f "$WORK/kafka.jsonl"

# Commit → record readable: `sluice run` (Kafka only, flush_interval 100 ms) follows bench.kflat
# while `sluice-bench load` inserts 200 one-row transactions/s; the reader is `sluice tail
# --source kafka --from latest` (a plain consumer of every partition) writing to a file that the
# load's event observer follows, so each latency is commit → the line a consumer prints.
kb "latency: commit → record readable from the topic, 200 tx/s for ${LAT_SECS:-30} s"
mkdir -p "$DIR/lat"
sed -e "s/\"$TABLE\"/\"bench.kflat\"/g" -e 's/^topic_prefix = .*/&\nflush_interval = "100ms"/' \
  -e 's/^dir = "state"/dir = "state-lat"/' "$DIR/sluice.toml" >"$DIR/lat/sluice.toml"
printf '\n[snapshot]\nmode = "never"\n' >>"$DIR/lat/sluice.toml"
mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$PORT" -uroot -e \
  "CREATE DATABASE IF NOT EXISTS bench; CREATE TABLE IF NOT EXISTS bench.kflat (id BIGINT NOT NULL PRIMARY KEY, sent_us BIGINT NOT NULL, pad VARCHAR(64))"
start_run "$DIR/lat/sluice.toml" "$OUT/kafka_latency_run.log"
# One row first, so the table's topic exists when the reader starts (a topic created later is
# found by the reader's periodic rescan, which would count in the first latencies).
mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$PORT" -uroot -e "INSERT INTO bench.kflat VALUES (0, 0, 'warm-up')"
sleep 1
: >"$DIR/lat/read.jsonl"
"$SLUICE" tail -c "$DIR/lat/sluice.toml" --source kafka --from latest --table bench.kflat \
  >>"$DIR/lat/read.jsonl" 2>"$OUT/kafka_latency_tail.log" &
TAIL=$!
sleep 2 # the tail has every partition assigned at its end
if "$BENCH" load --url "mysql://root@127.0.0.1:$PORT" --table bench.kflat --rate 200 --rows-per-tx 1 --connections 2 \
  --duration "${LAT_SECS:-30}" --drain "${DRAIN:-30}" --events "$DIR/lat/read.jsonl" \
  >"$OUT/kafka_latency.json" 2>"$OUT/kafka_latency.log"; then
  kb "  $(J fmt "$OUT/kafka_latency.json" '{achieved_tps:.0f} tx/s; commit→readable p50 {event[p50_ms]} ms, p99 {event[p99_ms]} ms; {event[missing]} not seen')"
else
  rm -f "$OUT/kafka_latency.json"
  skipk kafka_latency "sluice-bench load failed: $(tail -1 "$OUT/kafka_latency.log")"
fi
kill -TERM "$TAIL" "$RUN" 2>/dev/null || true
wait "$TAIL" "$RUN" 2>/dev/null || true
