#!/usr/bin/env bash
# The reference scenario, end to end, on a throwaway MariaDB:
#   50,000 users (no primary key, like the reference table) → full load → live userid updates
#   followed in a second "terminal" (sluice tail) → a clean stop → table statistics.
# DEMO_UPDATES (default 20) and DEMO_INTERVAL (default 2 s) shape the live part.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
TARGET="${CARGO_TARGET_DIR:-/var/tmp/sluice-target}"
SLUICE="$TARGET/debug/sluice"
DEMO_DATA="$TARGET/debug/sluice-demo-data"
ROWS="${DEMO_ROWS:-50000}"
UPDATES="${DEMO_UPDATES:-20}"
INTERVAL="${DEMO_INTERVAL:-2}"

WORK=$(mktemp -d /tmp/sluice-demo.XXXXXX)
RUN_PID=""; TAIL_PID=""
cleanup() {
  [ -n "$TAIL_PID" ] && kill "$TAIL_PID" 2>/dev/null || true
  [ -n "$RUN_PID" ] && kill "$RUN_PID" 2>/dev/null || true
  scripts/mariadb-test-server.sh stop "$WORK/db" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
. scripts/demo-lib.sh

start_db_with_users

cat > "$WORK/sluice.toml" <<TOML
[source]
kind = "mysql"
url = "mysql://sluice:\${SLUICE_DB_PASSWORD}@127.0.0.1:$PORT"
server_id = 6401
tables = ["demo.users"]
# The reference users table has no primary key: userid identifies a user for the lake's
# current-state table (changes of userid are handled as key changes).
keys = { "demo.users" = ["userid"] }

[snapshot]
mode = "initial"

# Like the reference pipeline's Glue job: find email and phone columns by their content and
# replace them with "########" before anything is written (lake, events file, tail, logs).
[detect]
entities = ["EMAIL", "PHONE_NUMBER"]
action = "redact"

[sink.lake]
path = "lake"
flush_interval = "1s"

[sink.jsonl]
path = "events.jsonl"
format = "debezium"
flush_interval = "1s"

[state]
dir = "state"
TOML
export SLUICE_DB_PASSWORD=sluice

say "sluice check"
"$SLUICE" check -c "$WORK/sluice.toml"

say "sluice run: full load, then the binlog"
run_until_streaming "delivered and committed" " (the reference pipeline: ~4 min with DMS)"

say "the first 10 change records (like the reference's get-records script)"
"$SLUICE" tail -c "$WORK/sluice.toml" --from earliest --limit 10 --format dms | cut -c1-220

say "second terminal: sluice tail --from latest --format dms (live)"
"$SLUICE" tail -c "$WORK/sluice.toml" --from latest --format dms --table demo.users \
  > >(sed -u -E 's/^(.{0,230}).*/  [tail] \1/') &
TAIL_PID=$!
sleep 0.5

say "one update that changes a userid"
SQL -e "UPDATE demo.users SET userid = 1000001 WHERE userid = 1"
sleep 1

say "$UPDATES userid updates, ${INTERVAL}s apart"
userid_updates

say "stopping sluice (SIGTERM: flush, commit, exit 0)"
kill "$TAIL_PID" 2>/dev/null || true; TAIL_PID=""
kill -TERM "$RUN_PID"; wait "$RUN_PID"; echo "sluice run exited with $?"; RUN_PID=""

say "sluice status (table statistics and the PII detection decisions)"
"$SLUICE" status -c "$WORK/sluice.toml"

say "SQL over the lake: SELECT * FROM demo.users LIMIT 10 (the reference ends with this query in Athena; email and phone arrive masked)"
"$SLUICE" query -c "$WORK/sluice.toml" "SELECT * FROM demo.users LIMIT 10"

say "the changed rows, from the changelog (demo.users__changes)"
"$SLUICE" query -c "$WORK/sluice.toml" "SELECT userid, firstname, lastname, _cdc_op, _cdc_seq, _cdc_ts FROM demo.users__changes WHERE _cdc_op <> 'r' ORDER BY _cdc_seq"
