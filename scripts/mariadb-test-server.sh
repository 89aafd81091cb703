#!/usr/bin/env bash
# Private, throw-away MariaDB for tests, the demo and CI.
#   mariadb-test-server.sh start DIR [extra mariadbd args...]  -> prints "port=P" on stdout
#   mariadb-test-server.sh restart DIR                         -> same data, same port
#   mariadb-test-server.sh stop DIR
# Only stdout line is "port=P"; all diagnostics go to stderr. --no-defaults everywhere keeps
# /etc/mysql and the machine's shared server (port 3306) out of it.
# SLUICE_TEST_OWNER_PID=PID: a watchdog stops the server and removes DIR once PID is gone.
set -euo pipefail

# cargo/CI environments often lack the sbin dirs where Debian puts mariadbd.
export PATH="$PATH:/usr/sbin:/usr/local/sbin:/sbin"

log() { echo "mariadb-test-server: $*" >&2; }
die() { log "$*"; exit 1; }

# kill -0 is true for zombies (possible if nobody reaps the detached server); cmdline is not.
alive() { [[ -n "$(tr -d '\0' 2>/dev/null <"/proc/$1/cmdline")" ]]; }

client() { mariadb --no-defaults --protocol=TCP -h127.0.0.1 -P"$1" -uroot "${@:2}"; }

installed() {
  command -v mariadbd >/dev/null && command -v mariadb-install-db >/dev/null && command -v mariadb >/dev/null
}

# Parallel tests on a fresh machine all start servers at once: one apt-get at a time (the lock
# is shared with python-env.sh), and only by the first caller that still finds it missing.
ensure_installed() {
  installed && return 0
  (
    flock 8
    installed && exit 0
    log "installing mariadb-server mariadb-client"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq mariadb-server mariadb-client >&2
  ) 8>>/var/tmp/sluice-apt.lock
}

# Random port below the ephemeral range (32768+), so outgoing connections cannot steal it.
pick_port() {
  local p i
  for i in $(seq 1 200); do
    p=$((20000 + RANDOM % 12000))
    [[ $p == 3306 ]] && continue
    if [[ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]]; then echo "$p"; return 0; fi
  done
  die "no free port found"
}

# Prints the pid only if it is a live mariadbd serving DIR, so a stale or reused pid
# (or the shared server) is never signalled.
server_pid() {
  local dir=$1 pid
  pid=$(cat "$dir/pid" 2>/dev/null || cat "$dir/launch.pid" 2>/dev/null || true)
  [[ -n "$pid" && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF -- "--datadir=$dir/data" || return 1
  echo "$pid"
}

stop_server() {
  local dir=$1 pid i
  pid=$(server_pid "$dir") || { log "not running ($dir)"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    alive "$pid" || return 0
    sleep 0.2
  done
  log "mariadbd $pid ignored TERM for 20 s; killing"
  kill -KILL "$pid" 2>/dev/null || true
}

start_watchdog() {
  local dir=$1 owner=$2 self
  self=$(readlink -f "$0")
  # Fully detached from our stdio: callers read stdout until EOF.
  (
    while alive "$owner"; do
      server_pid "$dir" >/dev/null || exit 0 # stopped normally: nothing to guard
      sleep 2
    done
    bash "$self" stop "$dir" || true
    rm -rf "$dir"
  ) </dev/null >/dev/null 2>&1 &
  disown || true
}

# Starts mariadbd on DIR/data and waits until it answers; returns 1 if it does not come up.
launch() {
  local dir=$1 port=$2 pid i
  shift 2
  : >"$dir/err.log"
  # A private tmpdir: every mariadbd deletes #sql* files in its tmpdir at start, which crashes
  # other servers sharing /tmp.
  mkdir -p "$dir/tmp"
  mariadbd --no-defaults --tmpdir="$dir/tmp" --datadir="$dir/data" --socket="$dir/sock" --port="$port" \
    --bind-address=127.0.0.1 --log-bin="$dir/data/mysql-bin" --binlog-format=ROW \
    --binlog-row-image=FULL --binlog-row-metadata=FULL --server-id=1 --user=root \
    --pid-file="$dir/pid" --log-error="$dir/err.log" --skip-name-resolve \
    --innodb-buffer-pool-size=128M --innodb-flush-log-at-trx-commit=2 --sync-binlog=0 \
    --max-connections=200 "$@" </dev/null >/dev/null 2>&1 &
  pid=$!
  echo "$pid" >"$dir/launch.pid"
  for i in $(seq 1 150); do # 30 s
    if client "$port" -e 'select 1' >/dev/null 2>&1; then return 0; fi
    alive "$pid" || return 1 # died: no point waiting
    sleep 0.2
  done
  return 1
}

# Stops the server in DIR and starts it again on the same data and port (for restart tests).
restart_server() {
  local dir=$1 port
  port=$(cat "$dir/port")
  local -a args=()
  [[ -s "$dir/args" ]] && mapfile -t args < <(grep -v '^$' "$dir/args")
  stop_server "$dir"
  launch "$dir" "$port" "${args[@]}" || { cat "$dir/err.log" >&2; die "restart on port $port failed"; }
  log "restarted on 127.0.0.1:$port"
}

start_server() {
  local dir=$1
  shift
  ensure_installed
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd) # absolute: mariadbd resolves relative paths against datadir
  [[ -e "$dir/data" ]] && die "$dir/data already exists"

  # Its bootstrap server gets the private tmpdir too: at start a mariadbd deletes the #sql* files of
  # its tmpdir, which broke another bootstrap running at the same moment in /tmp.
  mkdir -p "$dir/tmp"
  if ! mariadb-install-db --no-defaults --datadir="$dir/data" --auth-root-authentication-method=normal \
    --skip-test-db --user=root --tmpdir="$dir/tmp" >"$dir/install.log" 2>&1; then
    cat "$dir/install.log" >&2
    die "mariadb-install-db failed"
  fi

  : >"$dir/args"
  [[ $# -gt 0 ]] && printf '%s\n' "$@" >"$dir/args"
  local port attempt up
  for attempt in 1 2 3; do
    port=$(pick_port)
    up=0
    launch "$dir" "$port" "$@" && up=1
    [[ $up == 1 ]] && break
    if ! alive "$pid" && grep -q "Address already in use" "$dir/err.log"; then
      log "port $port was taken meanwhile; retrying"
      continue
    fi
    cat "$dir/err.log" >&2
    stop_server "$dir"
    die "mariadbd did not come up on port $port"
  done
  [[ $up == 1 ]] || { cat "$dir/err.log" >&2; die "no usable port after 3 attempts"; }

  # REPLICATION CLIENT is BINLOG MONITOR on 10.5+ (SHOW MASTER STATUS / SHOW BINARY LOGS);
  # REPLICATION SLAVE allows the binlog dump.
  local grants="SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT"
  local sql="" host
  for host in '%' '127.0.0.1' 'localhost'; do
    sql+="CREATE USER IF NOT EXISTS 'sluice'@'$host' IDENTIFIED BY 'sluice';"
    sql+="GRANT $grants ON *.* TO 'sluice'@'$host';"
  done
  client "$port" -e "$sql" >&2 || { stop_server "$dir"; die "creating user sluice failed"; }

  echo "$port" >"$dir/port"
  if [[ -n "${SLUICE_TEST_OWNER_PID:-}" ]]; then start_watchdog "$dir" "$SLUICE_TEST_OWNER_PID"; fi
  log "mariadbd pid $(cat "$dir/pid" 2>/dev/null || echo "$pid") on 127.0.0.1:$port, dir $dir"
  echo "port=$port"
}

case "${1:-}" in
  start) [[ $# -ge 2 ]] || die "usage: $0 start DIR [mariadbd args...]"; start_server "${@:2}" ;;
  stop)
    [[ $# -eq 2 ]] || die "usage: $0 stop DIR"
    [[ -d "$2" ]] || { log "no such dir $2"; exit 0; }
    stop_server "$(cd "$2" && pwd)"
    ;;
  restart)
    [[ $# -eq 2 ]] || die "usage: $0 restart DIR"
    restart_server "$(cd "$2" && pwd)"
    ;;
  *) die "usage: $0 start DIR [mariadbd args...] | stop DIR | restart DIR" ;;
esac
