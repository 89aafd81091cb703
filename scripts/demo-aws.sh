#!/usr/bin/env bash
# The reference pipeline's AWS path, locally: moto's server stands in for Kinesis and S3.
#   50,000 users → sluice → a 2-shard Kinesis stream (DMS JSON) + a Delta lake on S3;
#   the first 10 records read back from the stream; the 20 userid updates followed live from the
#   stream; then SQL over the S3 lake and the Athena DDL that registers it.
# DEMO_ROWS (default 50000), DEMO_UPDATES (default 20) and DEMO_INTERVAL (default 2 s) shape it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
TARGET="${CARGO_TARGET_DIR:-/var/tmp/sluice-target}"
SLUICE="$TARGET/debug/sluice"
DEMO_DATA="$TARGET/debug/sluice-demo-data"
ROWS="${DEMO_ROWS:-50000}"
UPDATES="${DEMO_UPDATES:-20}"
INTERVAL="${DEMO_INTERVAL:-2}"
STREAM=cdc-users
BUCKET=demo-lake

# moto takes any credentials; the SDKs must not look for instance metadata (no EC2 here).
export AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true

WORK=$(mktemp -d /tmp/sluice-demo-aws.XXXXXX)
RUN_PID=""; TAIL_PID=""
cleanup() {
  [ -n "$TAIL_PID" ] && kill "$TAIL_PID" 2>/dev/null || true
  [ -n "$RUN_PID" ] && kill "$RUN_PID" 2>/dev/null || true
  scripts/mariadb-test-server.sh stop "$WORK/db" >/dev/null 2>&1 || true
  scripts/moto-server.sh stop "$WORK/moto" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
. scripts/demo-lib.sh

say "starting moto's server (Kinesis and S3, in memory, on loopback)"
MOTO_PORT=$(scripts/moto-server.sh start "$WORK/moto" | sed -n 's/^port=//p')
ENDPOINT="http://127.0.0.1:$MOTO_PORT"
PY="$(scripts/python-env.sh)/python"
"$PY" - "$ENDPOINT" "$STREAM" "$BUCKET" <<'PY'
import sys, boto3
endpoint, stream, bucket = sys.argv[1:]
k = boto3.client("kinesis", endpoint_url=endpoint)
k.create_stream(StreamName=stream, ShardCount=2)
k.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.2})
boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
shards = [s["ShardId"] for s in k.list_shards(StreamName=stream)["Shards"]]
print(f"stream {stream}: ACTIVE, shards {', '.join(shards)}; bucket s3://{bucket}")
PY

start_db_with_users

cat > "$WORK/sluice.toml" <<TOML
[source]
kind = "mysql"
url = "mysql://sluice:\${SLUICE_DB_PASSWORD}@127.0.0.1:$PORT"
server_id = 6401
tables = ["demo.users"]
keys = { "demo.users" = ["userid"] }

[detect]
entities = ["EMAIL", "PHONE_NUMBER"]
action = "redact"

# The reference pipeline's transport: DMS JSON on Kinesis, partitioned by key (userid).
[sink.kinesis]
stream = "$STREAM"
region = "us-east-1"
endpoint = "$ENDPOINT"
format = "dms"
partition_key = "primary-key"

# The reference pipeline's destination: the lake on S3, for Athena.
[sink.lake]
path = "s3://$BUCKET/cdc"
flush_interval = "1s"

[sink.lake.s3]
region = "us-east-1"
endpoint = "$ENDPOINT"
allow_http = true

[state]
dir = "state"
TOML
export SLUICE_DB_PASSWORD=sluice

say "sluice check (source, and the stream: exists and ACTIVE)"
"$SLUICE" check -c "$WORK/sluice.toml"

say "sluice run: full load into Kinesis and the S3 lake, then the binlog"
run_until_streaming "on the stream and in the lake"

say "the first 10 records of the stream, every shard (sluice tail --source kinesis --limit 10)"
"$SLUICE" tail -c "$WORK/sluice.toml" --source kinesis --limit 10 | cut -c1-220

say "second terminal: sluice tail --source kinesis --from latest (live, from the stream)"
"$SLUICE" tail -c "$WORK/sluice.toml" --source kinesis --from latest --table demo.users \
  2>"$WORK/tail.log" > >(sed -u -E 's/^(.{0,230}).*/  [tail] \1/') &
TAIL_PID=$!
until grep -q "reading the stream" "$WORK/tail.log" 2>/dev/null; do
  kill -0 "$TAIL_PID" 2>/dev/null || { cat "$WORK/tail.log"; echo "sluice tail died" >&2; exit 1; }
  sleep 0.1
done

say "one update that changes a userid, then $UPDATES more, ${INTERVAL}s apart"
SQL -e "UPDATE demo.users SET userid = 1000001 WHERE userid = 1"
sleep 1
userid_updates

say "stopping sluice (SIGTERM: flush, commit, exit 0)"
kill "$TAIL_PID" 2>/dev/null || true; TAIL_PID=""
kill -TERM "$RUN_PID"; wait "$RUN_PID"; echo "sluice run exited with $?"; RUN_PID=""

say "the stream as a DMS consumer reads it (examples/kinesis_consumer.py, boto3): records per operation"
"$PY" examples/kinesis_consumer.py --stream "$STREAM" --endpoint "$ENDPOINT" \
  | "$PY" -c 'import sys, json, collections; c = collections.Counter(json.loads(l)["metadata"]["operation"] for l in sys.stdin); print(dict(c))'

say "sluice status (table statistics)"
"$SLUICE" status -c "$WORK/sluice.toml"

say "SQL over the S3 lake: SELECT * FROM demo.users LIMIT 10"
"$SLUICE" query -c "$WORK/sluice.toml" "SELECT * FROM demo.users LIMIT 10"

say "the changed rows, from the changelog on S3 (demo.users__changes)"
"$SLUICE" query -c "$WORK/sluice.toml" "SELECT userid, firstname, lastname, _cdc_op, _cdc_seq, _cdc_ts FROM demo.users__changes WHERE _cdc_op <> 'r' ORDER BY _cdc_seq"

say "Athena DDL for the S3 lake (sluice lake ddl --engine athena)"
"$SLUICE" lake ddl -c "$WORK/sluice.toml" --engine athena
