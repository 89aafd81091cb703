#!/usr/bin/env bash
# The benchmark suite behind `make bench` (method: docs/benchmarks.md).
#
# Starts its own private MariaDB, loads data, runs sluice and the baselines, samples RSS/CPU,
# writes bench/results.json (one object per measurement) and prints a table.
#
#   BENCH_BIN_DIR   binaries (sluice, sluice-bench, sluice-demo-data);
#                   default ${CARGO_TARGET_DIR:-/var/tmp/sluice-target}/perf
#   BENCH_QUICK=1   small sizes and short runs (a smoke test in a couple of minutes)
#   BENCH_ROWS_SMALL, BENCH_ROWS_BIG, BENCH_LAT_SECS, BENCH_KEEP_SECS, BENCH_DRAIN,
#   BENCH_REPEAT_SMALL, BENCH_REPEAT_BIG   override single sizes (docs/benchmarks.md)
#   BENCH_OUT       step files and logs (default bench/out); BENCH_RESULTS (default bench/results.json)
#   BENCH_KEEP=1    keep the work dir (server data, lakes) for inspection
# Kinesis steps run against moto's server (scripts/moto-server.sh, the python venv).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export PATH="$PATH:/usr/sbin:/sbin"

BIN="${BENCH_BIN_DIR:-${CARGO_TARGET_DIR:-/var/tmp/sluice-target}/perf}"
BIN=$(cd "$BIN" && pwd)
QUICK="${BENCH_QUICK:-0}"
OUT="${BENCH_OUT:-$ROOT/bench/out}"
RESULTS="${BENCH_RESULTS:-$ROOT/bench/results.json}"
SLUICE="$BIN/sluice"
BENCH="$BIN/sluice-bench"
DEMO_DATA="$BIN/sluice-demo-data"
HERE="$ROOT/scripts/bench"
MEASURE=(python3 "$HERE/measure.py")
J() { python3 "$HERE/jsonx.py" "$@"; }

if [[ "$QUICK" == 1 ]]; then
  ROWS_SMALL=5000 ROWS_BIG=20000 LAT_SECS=5 KEEP_SECS=5 DRAIN=10 REPEAT_SMALL=1 REPEAT_BIG=1
else
  ROWS_SMALL=50000 ROWS_BIG=1000000 LAT_SECS=30 KEEP_SECS=20 DRAIN=30 REPEAT_SMALL=3 REPEAT_BIG=2
fi
# Individual overrides, e.g. BENCH_ROWS_BIG=200000 BENCH_REPEAT_BIG=1.
ROWS_SMALL=${BENCH_ROWS_SMALL:-$ROWS_SMALL} ROWS_BIG=${BENCH_ROWS_BIG:-$ROWS_BIG}
LAT_SECS=${BENCH_LAT_SECS:-$LAT_SECS} KEEP_SECS=${BENCH_KEEP_SECS:-$KEEP_SECS} DRAIN=${BENCH_DRAIN:-$DRAIN}
REPEAT_SMALL=${BENCH_REPEAT_SMALL:-$REPEAT_SMALL} REPEAT_BIG=${BENCH_REPEAT_BIG:-$REPEAT_BIG}
for b in "$SLUICE" "$BENCH" "$DEMO_DATA"; do
  [[ -x "$b" ]] || { echo "bench: $b is missing; build it (make bench builds the perf profile)" >&2; exit 1; }
done

mkdir -p "$OUT" "$(dirname "$RESULTS")"
rm -f "$OUT"/*.json "$OUT"/*.log "$OUT"/*.skip # only our own step files: BENCH_OUT may be any dir
WORK=$(mktemp -d /var/tmp/sluice-bench.XXXXXX)
BG_PIDS=()
cleanup() {
  local p
  for p in "${BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${BG_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  scripts/mariadb-test-server.sh stop "$WORK/db" >/dev/null 2>&1 || true
  if [[ "${BENCH_KEEP:-0}" == 1 ]]; then echo "bench: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
T0=$(date +%s)
say() { printf '[bench %4ds] %s\n' $(($(date +%s) - T0)) "$*" >&2; }
skip() { echo "$2" >"$OUT/$1.skip"; say "skipped $1: $2"; }

# ---------------------------------------------------------------------------------------------
say "binaries: $BIN; quick=$QUICK; work dir $WORK"
PORT=$(SLUICE_TEST_OWNER_PID=$$ scripts/mariadb-test-server.sh start "$WORK/db" \
  --innodb-buffer-pool-size=512M --innodb-log-file-size=256M 2>"$OUT/server.log" | sed -n 's/^port=//p')
[[ -n "$PORT" ]] || { cat "$OUT/server.log" >&2; echo "bench: MariaDB did not start" >&2; exit 1; }
SQL() { mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$PORT" -uroot "$@"; }
ROOT_URL="mysql://root@127.0.0.1:$PORT"
export SLUICE_DB_PASSWORD=sluice
MARIADBD_PID=$(cat "$WORK/db/pid")
say "MariaDB on 127.0.0.1:$PORT (pid $MARIADBD_PID)"

# A sluice.toml in DIR capturing TABLE. $3: snapshot mode; $4: sinks (lake | jsonl | lake+jsonl); $5: extra TOML.
write_config() {
  local dir=$1 table=$2 mode=$3 sinks=$4 extra=${5:-}
  mkdir -p "$dir"
  {
    printf '[source]\nkind = "mysql"\nurl = "mysql://sluice:${SLUICE_DB_PASSWORD}@127.0.0.1:%s"\n' "$PORT"
    printf 'server_id = %s\ntables = ["%s"]\n' $((6400 + RANDOM % 500)) "$table"
    # The reference users table has no primary key: userid is its key in the lake.
    [[ "$table" == *.users ]] && printf 'keys = { "%s" = ["userid"] }\n' "$table"
    printf '\n[snapshot]\nmode = "%s"\nmethod = "%s"\n' "$mode" "${SNAPSHOT_METHOD:-auto}"
    [[ "$sinks" == *lake* ]] && printf '\n[sink.lake]\npath = "lake"\nflush_interval = "1s"\n'
    [[ "$sinks" == *jsonl* ]] && printf '\n[sink.jsonl]\npath = "events.jsonl"\nformat = "debezium"\n'
    printf '\n[state]\ndir = "state"\n'
    [[ -n "$extra" ]] && printf '\n%s\n' "$extra"
    true
  } >"$dir/sluice.toml"
}

# Waits until the pipeline in DIR has committed once (status says streaming).
wait_streaming() {
  local dir=$1 pid=$2 i
  for i in $(seq 1 600); do
    "$SLUICE" status -c "$dir/sluice.toml" --json 2>/dev/null | grep -q '"phase": "streaming"' && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
CLK_TCK=$(getconf CLK_TCK)

# ---------------------------------------------------------------------------------------------
say "loading $ROWS_SMALL reference-shaped users into small.users"
"$DEMO_DATA" --rows "$ROWS_SMALL" --seed 42 --database small | SQL
SQL -e "FLUSH BINARY LOGS"
BINLOG_FILE=$(SQL -N -e "SHOW MASTER STATUS" | cut -f1)
say "loading $ROWS_BIG users into bench.users (recorded alone in binlog $BINLOG_FILE)"
LOAD_T0=$(date +%s.%N)
"$DEMO_DATA" --rows "$ROWS_BIG" --seed 7 --database bench | SQL
LOAD_T1=$(date +%s.%N)
SQL -e "FLUSH BINARY LOGS"
BINLOG_BYTES=$(SQL -N -e "SHOW BINARY LOGS" | awk -v f="$BINLOG_FILE" '$1 == f {print $2}')

python3 - "$OUT/env.json" <<PY
import json, os, platform, subprocess, sys, datetime
env = {
  "profile": os.path.basename("$BIN"), "quick": "$QUICK" == "1", "bin_dir": "$BIN",
  "rows_small": $ROWS_SMALL, "rows_big": $ROWS_BIG, "latency_seconds": $LAT_SECS, "keepup_seconds": $KEEP_SECS, "drain_seconds": $DRAIN,
  "cpus": os.cpu_count(), "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
  "server": subprocess.run(["mariadb", "--no-defaults", "--protocol=TCP", "-h127.0.0.1", "-P$PORT", "-uroot", "-N", "-e", "SELECT CONCAT('MariaDB ', VERSION())"], capture_output=True, text=True).stdout.strip(),
  "kernel": platform.release(),
  "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
  "git": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip(),
  "binlog_file": "$BINLOG_FILE", "binlog_bytes": int("${BINLOG_BYTES:-0}" or 0),
  "db_load_rows_per_s": $ROWS_BIG / ($LOAD_T1 - $LOAD_T0),
}
json.dump(env, open(sys.argv[1], "w"), indent=1)
PY

# ---------------------------------------------------------------------------------------------
# 2. Binlog decode: the same recorded file, three readers, each over the network from the server.
# The sluice and mariadb-binlog runs alternate, so both read under the same background load (the
# server still flushes and purges after the 1M-row load).
decode_runs=()
binlog_runs=()
for i in $(seq 1 "$REPEAT_BIG"); do
  say "decode: sluice (MysqlSource, snapshot mode never) from $BINLOG_FILE:4, run $i"
  if "$BENCH" decode --url "$ROOT_URL" --table bench.users --file "$BINLOG_FILE" >"$OUT/decode_sluice_$i.json" 2>"$OUT/decode_sluice.log"; then
    say "  $(J fmt "$OUT/decode_sluice_$i.json" '{rows} rows in {seconds:.2f} s')"
    J set "$OUT/decode_sluice_$i.json" exit 0
    J set "$OUT/decode_sluice_$i.json" wall_s "$(J fmt "$OUT/decode_sluice_$i.json" '{seconds}')"
    J set "$OUT/decode_sluice_$i.json" maxrss_kb 0
    decode_runs+=("$OUT/decode_sluice_$i.json")
  fi
  say "decode: mariadb-binlog --read-from-remote-server --verbose --base64-output=decode-rows, run $i"
  "${MEASURE[@]}" "$OUT/decode_mariadb_binlog_$i.json" -- mariadb-binlog --no-defaults --read-from-remote-server \
    --host=127.0.0.1 --port="$PORT" --user=root --verbose --base64-output=decode-rows "$BINLOG_FILE" \
    >/dev/null 2>"$OUT/decode_mariadb_binlog.log" && binlog_runs+=("$OUT/decode_mariadb_binlog_$i.json")
done
if [[ ${#decode_runs[@]} -gt 0 ]]; then J best "$OUT/decode_sluice.json" "${decode_runs[@]}"
else skip decode_sluice "sluice-bench decode failed: $(tail -1 "$OUT/decode_sluice.log")"; fi
if [[ ${#binlog_runs[@]} -gt 0 ]]; then
  J best "$OUT/decode_mariadb_binlog.json" "${binlog_runs[@]}"
  # Untimed: check that it decoded the same row events (one "### INSERT INTO" per row).
  J set "$OUT/decode_mariadb_binlog.json" rows "$(mariadb-binlog --no-defaults --read-from-remote-server --host=127.0.0.1 \
    --port="$PORT" --user=root --verbose --base64-output=decode-rows "$BINLOG_FILE" 2>/dev/null | grep -c '^### INSERT INTO' || true)"
else skip decode_mariadb_binlog "mariadb-binlog failed: $(tail -1 "$OUT/decode_mariadb_binlog.log")"; fi
say "decode: python-mysql-replication"
if VENV_BIN=$(scripts/python-env.sh 2>"$OUT/python-env.log"); then
  "$VENV_BIN/python" "$HERE/pyrepl_decode.py" --port "$PORT" --file "$BINLOG_FILE" --table bench.users \
    >"$OUT/decode_python.json" 2>"$OUT/decode_python.log" \
    || { rm -f "$OUT/decode_python.json"; skip decode_python "python-mysql-replication failed: $(tail -1 "$OUT/decode_python.log")"; }
else
  skip decode_python "python venv could not be set up: $(tail -1 "$OUT/python-env.log")"
fi

# ---------------------------------------------------------------------------------------------
# 1. Full load (and 5. snapshot memory, 6. masking): `sluice run --once` from start until it exits
# with every row committed to the lake; then `sluice query` checks the count.
# Keeps the fastest of the runs fullload_NAME_*.json that succeeded (peak RSS: the largest).
full_load_best() {
  local name=$1 f
  local -a runs=()
  for f in "$OUT/fullload_${name}"_[0-9]*.json; do [[ -f "$f" ]] && runs+=("$f"); done
  if [[ ${#runs[@]} -gt 0 ]]; then J best "$OUT/fullload_$name.json" "${runs[@]}"; rm -f "$OUT/fullload_$name.skip"; fi
}
full_load_once() { # name table rows extra run
  local name=$1 table=$2 rows=$3 extra=$4 run=$5 dir="$WORK/$1" n f="$OUT/fullload_$1_$5.json" log="$OUT/fullload_$1_$5.log"
  rm -rf "$dir"
  write_config "$dir" "$table" initial lake "$extra"
  say "full load $name: $table ($rows rows), run $run"
  if ! "${MEASURE[@]}" "$f" -- "$SLUICE" run -c "$dir/sluice.toml" --once >/dev/null 2>"$log"; then
    skip "fullload_$name" "sluice run failed: $(grep -m1 -i 'error' "$log" || tail -1 "$log")"
    rm -f "$f"
    return 0
  fi
  n=$("$SLUICE" query -c "$dir/sluice.toml" "SELECT COUNT(*) AS n FROM $table" --format csv 2>>"$log" | tail -1)
  J set "$f" count_ok "$([[ "$n" == "$rows" ]] && echo true || echo false)"
  J set "$f" lake_count "\"$n\""
  [[ "$n" == "$rows" ]] || say "  WARNING: lake has $n rows, expected $rows"
  if [[ -n "$extra" ]]; then # masked: is the first user's email in the lake different from the source's?
    local src lake
    src=$(SQL -N -e "SELECT email FROM $table ORDER BY userid LIMIT 1")
    lake=$("$SLUICE" query -c "$dir/sluice.toml" "SELECT email FROM $table ORDER BY userid LIMIT 1" --format csv 2>>"$log" | tail -1)
    J set "$f" mask_applied "$([[ -n "$lake" && "$lake" != "$src" ]] && echo true || echo false)"
    say "  first email: source '$src', lake '$lake'"
  fi
  say "  $(J fmt "$f" '{wall_s:.2f} s, peak RSS {maxrss_kb} kB')"
  rm -rf "$dir"
}
dump() { # name db table repeats
  local i
  local -a runs=()
  for i in $(seq 1 "$4"); do
    say "baseline: mariadb-dump $2.$3 > /dev/null, run $i"
    "${MEASURE[@]}" "$OUT/dump_$1_$i.json" -- mariadb-dump --no-defaults --protocol=TCP -h127.0.0.1 -P"$PORT" -uroot \
      --single-transaction --quick "$2" "$3" >/dev/null 2>"$OUT/dump_$1.log" && runs+=("$OUT/dump_$1_$i.json")
  done
  if [[ ${#runs[@]} -gt 0 ]]; then J best "$OUT/dump_$1.json" "${runs[@]}"; else skip "dump_$1" "mariadb-dump failed: $(tail -1 "$OUT/dump_$1.log")"; fi
}
dump small small users "$REPEAT_SMALL"
for i in $(seq 1 "$REPEAT_SMALL"); do full_load_once small small.users "$ROWS_SMALL" "" "$i"; done
full_load_best small
dump big bench users "$REPEAT_BIG"
# The costlier methods, as a user protecting the reference table would: keyed HMAC for the
# email (joinable), partial for the phone, and content detection over the other text columns.
export SLUICE_MASK_KEY=bench-only-key-not-secret-0123456789
MASK='[[mask]]
columns = ["bench.users.email"]
method = "hash"

[[mask]]
columns = ["bench.users.phone"]
method = "partial"

[detect]
entities = ["EMAIL", "PHONE_NUMBER"]'
# Unmasked and masked runs alternate, so neither gets all the warm (or the cold) turns.
for i in $(seq 1 "$REPEAT_BIG"); do
  full_load_once big bench.users "$ROWS_BIG" "" "$i"
  full_load_once masked bench.users "$ROWS_BIG" "$MASK" "$i"
  # The same load by watermarks (what MySQL 8 / Aurora get), beside the consistent method.
  SNAPSHOT_METHOD=watermark full_load_once watermark bench.users "$ROWS_BIG" "" "$i"
done
full_load_best big
full_load_best masked
full_load_best watermark
if [[ -f "$OUT/fullload_masked.skip" ]] && grep -qi "mask" "$OUT/fullload_masked.skip"; then
  echo "sluice does not accept [[mask]] yet: $(cat "$OUT/fullload_masked.skip")" >"$OUT/fullload_masked.skip"
fi

# ---------------------------------------------------------------------------------------------
# 3. Latency (and 5. streaming memory): one `sluice run` (lake + JSON lines, snapshot mode never)
# follows bench.lat while the writer inserts 1k then 5k one-row transactions/s.
start_stream() { # name table [sinks] -> sets STREAM_PID (measure wrapper) and SLUICE_PID
  local dir="$WORK/$1"
  write_config "$dir" "$2" never "${3:-lake+jsonl}"
  "${MEASURE[@]}" "$OUT/stream_$1.json" --pidfile "$dir/sluice.pid" -- "$SLUICE" run -c "$dir/sluice.toml" \
    >/dev/null 2>"$OUT/stream_$1.log" &
  STREAM_PID=$!
  BG_PIDS+=("$STREAM_PID")
  local i
  for i in $(seq 1 50); do [[ -s "$dir/sluice.pid" ]] && break; sleep 0.1; done
  SLUICE_PID=$(cat "$dir/sluice.pid")
  wait_streaming "$dir" "$SLUICE_PID"
}
stop_stream() {
  kill -TERM "$STREAM_PID" 2>/dev/null || true
  wait "$STREAM_PID" || say "  sluice run exited with $?"
}

SQL -e "CREATE TABLE bench.lat (id BIGINT NOT NULL PRIMARY KEY, sent_us BIGINT NOT NULL, pad VARCHAR(64))"
say "latency: sluice run following bench.lat"
if start_stream latency bench.lat; then
  for r in 1k:1000 5k:5000; do
    say "latency at ${r#*:} tx/s for $LAT_SECS s"
    "$BENCH" load --url "$ROOT_URL" --table bench.lat --rate "${r#*:}" --rows-per-tx 1 --connections 4 \
      --duration "$LAT_SECS" --drain "$DRAIN" --events "$WORK/latency/events.jsonl" \
      --sluice "$SLUICE" --config "$WORK/latency/sluice.toml" >"$OUT/latency_${r%%:*}.json" 2>"$OUT/latency_${r%%:*}.log" \
      || { rm -f "$OUT/latency_${r%%:*}.json"; skip "latency_${r%%:*}" "sluice-bench load failed: $(tail -1 "$OUT/latency_${r%%:*}.log")"; }
    [[ -f "$OUT/latency_${r%%:*}.json" ]] && say "  $(J fmt "$OUT/latency_${r%%:*}.json" '{achieved_tps:.0f} tx/s; commit→event p99 {event[p99_ms]} ms; commit→queryable p99 {queryable[p99_ms]} ms')"
  done
  stop_stream
else
  skip latency_1k "sluice run did not start streaming: $(tail -1 "$OUT/stream_latency.log")"
  skip latency_5k "sluice run did not start streaming"
  stop_stream
fi

# ---------------------------------------------------------------------------------------------
# 4. Keeping up: the DB's own max write rate (100-row INSERTs from 4 connections, no sluice), then
# the same writer while sluice streams the table — at 100k rows/s (the goal) and at the max rate —
# : achieved rate, lag, sluice's CPU share.
SQL -e "CREATE TABLE bench.burst (id BIGINT NOT NULL PRIMARY KEY, sent_us BIGINT NOT NULL, pad VARCHAR(64))"
say "keeping up: DB alone, as fast as it accepts, $KEEP_SECS s"
"$BENCH" load --url "$ROOT_URL" --table bench.burst --rate 0 --rows-per-tx 100 --connections 4 \
  --duration "$KEEP_SECS" >"$OUT/keepup_db.json" 2>"$OUT/keepup_db.log" \
  || { rm -f "$OUT/keepup_db.json"; skip keepup_db "sluice-bench load failed: $(tail -1 "$OUT/keepup_db.log")"; }
# What any replica costs the server on these 2 cores: the same writer while mariadb-binlog follows
# the binlog over a replication connection and decodes every row (to /dev/null).
say "keeping up: DB while mariadb-binlog --stop-never decodes the binlog, $KEEP_SECS s"
read -r FOLLOW_FILE FOLLOW_POS _ < <(SQL -N -e "SHOW MASTER STATUS")
mariadb-binlog --no-defaults --read-from-remote-server --host=127.0.0.1 --port="$PORT" --user=root --stop-never \
  --start-position="$FOLLOW_POS" --verbose --base64-output=decode-rows "$FOLLOW_FILE" >/dev/null 2>"$OUT/keepup_db_binlog_follower.log" &
FOLLOW_PID=$!
BG_PIDS+=("$FOLLOW_PID")
sleep 1
"$BENCH" load --url "$ROOT_URL" --table bench.burst --rate 0 --rows-per-tx 100 --connections 4 \
  --duration "$KEEP_SECS" >"$OUT/keepup_db_binlog.json" 2>"$OUT/keepup_db_binlog.log" \
  || { rm -f "$OUT/keepup_db_binlog.json"; skip keepup_db_binlog "sluice-bench load failed: $(tail -1 "$OUT/keepup_db_binlog.log")"; }
kill -0 "$FOLLOW_PID" 2>/dev/null || { rm -f "$OUT/keepup_db_binlog.json"; skip keepup_db_binlog "mariadb-binlog stopped: $(tail -1 "$OUT/keepup_db_binlog_follower.log")"; }
kill -TERM "$FOLLOW_PID" 2>/dev/null || true
wait "$FOLLOW_PID" 2>/dev/null || true
# $1: step name, $2: sinks, $3: transactions/s (0: as fast as the server accepts). Writer as
# above; sluice CPU sampled from /proc over writing + catching up.
keepup() {
  local name=$1 sinks=$2 rate=$3 c0 m0 t0 c1 m1 t1
  say "keeping up: 100-row INSERTs at $([[ $rate == 0 ]] && echo "max rate" || echo "$rate tx/s") while sluice ($sinks) streams bench.burst"
  if ! start_stream "$name" bench.burst "$sinks"; then
    skip "$name" "sluice run did not start streaming: $(tail -1 "$OUT/stream_$name.log")"
    stop_stream
    return 0
  fi
  c0=$(cpu_ticks "$SLUICE_PID"); m0=$(cpu_ticks "$MARIADBD_PID"); t0=$(date +%s.%N)
  "${MEASURE[@]}" "$OUT/${name}_writer.json" -- "$BENCH" load --url "$ROOT_URL" --table bench.burst --rate "$rate" \
    --rows-per-tx 100 --connections 4 --duration "$KEEP_SECS" --drain "$DRAIN" \
    --events "$WORK/$name/events.jsonl" >"$OUT/$name.json" 2>"$OUT/$name.log" \
    || { rm -f "$OUT/$name.json"; skip "$name" "sluice-bench load failed: $(tail -1 "$OUT/$name.log")"; }
  c1=$(cpu_ticks "$SLUICE_PID"); m1=$(cpu_ticks "$MARIADBD_PID"); t1=$(date +%s.%N)
  python3 - "$OUT/${name}_cpu.json" "$OUT/${name}_writer.json" <<PY
import json, os, sys
wall = $t1 - $t0
w = json.load(open(sys.argv[2])) if os.path.exists(sys.argv[2]) else {}
json.dump({"wall_s": wall,
           "sluice_pct": 100 * ($c1 - $c0) / $CLK_TCK / wall,
           "mariadbd_pct": 100 * ($m1 - $m0) / $CLK_TCK / wall,
           "writer_pct": 100 * (w.get("user_s", 0) + w.get("sys_s", 0)) / wall}, open(sys.argv[1], "w"))
PY
  [[ -f "$OUT/$name.json" ]] && say "  $(J fmt "$OUT/$name.json" '{achieved_rows_per_s:.0f} rows/s; lag p99 {event[p99_ms]} ms, max {event[max_ms]} ms; {event[missing]} not seen')"
  stop_stream
}
keepup keepup_100k lake+jsonl 1000   # the goal's rate: 100k row changes/s
keepup keepup_sluice lake+jsonl 0    # the DB's max rate
keepup keepup_jsonl jsonl 0          # the same without the lake: source + decoding + JSON lines

# ---------------------------------------------------------------------------------------------
# 7. Kinesis on moto: full load rows/s against batched boto3 put_records of the same records,
# and commit → record readable latency (scripts/bench/kinesis.sh).
say "kinesis (moto): full load of small.users, boto3 baseline, latency"
SLUICE="$SLUICE" PORT="$PORT" OUT="$OUT" WORK="$WORK" ROWS_SMALL="$ROWS_SMALL" LAT_SECS="$LAT_SECS" \
  scripts/bench/kinesis.sh 2>&1 | while IFS= read -r line; do say "$line"; done \
  || say "kinesis steps failed (see $OUT/kinesis_*.log)"
# 8. Kafka (tansu): full load rows/s against librdkafka alone producing the same records, and
# commit → record readable latency (scripts/bench/kafka.sh).
say "kafka (tansu): full load of bench.users, librdkafka baseline, latency"
SLUICE="$SLUICE" BENCH="$BENCH" PORT="$PORT" OUT="$OUT" WORK="$WORK" TABLE=bench.users ROWS="$ROWS_BIG" \
  LAT_SECS="$LAT_SECS" DRAIN="$DRAIN" \
  scripts/bench/kafka.sh 2>&1 | while IFS= read -r line; do say "$line"; done \
  || say "kafka steps failed (see $OUT/kafka_*.log)"

# ---------------------------------------------------------------------------------------------
say "done in $(($(date +%s) - T0)) s"
python3 "$HERE/report.py" "$OUT" "$RESULTS"
