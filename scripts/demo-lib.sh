# Shared by scripts/demo.sh and scripts/demo-aws.sh (sourced). Expects SLUICE, WORK, ROWS,
# UPDATES, INTERVAL and DEMO_DATA; start_db_with_users defines SQL and PORT, run_until_streaming
# sets RUN_PID.

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# Starts `sluice run` in the background and returns once it streams, printing how long the full
# load took: "full load of N rows <$1> in T s<$2>".
run_until_streaming() {
  local start end
  start=$(date +%s.%N)
  "$SLUICE" run -c "$WORK/sluice.toml" 2>"$WORK/run.log" &
  RUN_PID=$!
  until "$SLUICE" status -c "$WORK/sluice.toml" --json 2>/dev/null | grep -q '"phase": "streaming"'; do
    kill -0 "$RUN_PID" 2>/dev/null || { cat "$WORK/run.log"; echo "sluice run died" >&2; exit 1; }
    sleep 0.1
  done
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" -v n="$ROWS" -v what="$1" -v after="${2:-}" 'BEGIN { printf "full load of %d rows %s in %.2f s%s\n", n, what, e - s, after }'
}

# $UPDATES userid updates, $INTERVAL s apart, each shown as it is made.
userid_updates() {
  local i
  for i in $(seq 1 "$UPDATES"); do
    printf '  [db]   %s UPDATE demo.users SET userid = %d WHERE userid = %d\n' "$(date +%T.%3N)" $((2000000 + i)) $((i + 1))
    SQL -e "UPDATE demo.users SET userid = $((2000000 + i)) WHERE userid = $((i + 1))"
    sleep "$INTERVAL"
  done
  sleep 1
}

# A throwaway MariaDB in $WORK/db holding $ROWS deterministic demo users (DEMO_DATA, the
# generator); sets PORT and defines SQL.
start_db_with_users() {
  say "starting a throwaway MariaDB (binlog ROW/FULL) in $WORK"
  PORT=$(scripts/mariadb-test-server.sh start "$WORK/db" | sed -n 's/^port=//p')
  SQL() { mariadb -h127.0.0.1 -P"$PORT" -uroot "$@"; }
  say "loading $ROWS sample users into demo.users (deterministic generator)"
  "$DEMO_DATA" --rows "$ROWS" --seed 42 | SQL
  SQL -e "SELECT COUNT(*) AS users FROM demo.users; SELECT * FROM demo.users LIMIT 3"
}
