#!/usr/bin/env bash
# A Python virtualenv with the independent readers and servers the tests use: python
# `deltalake` and DuckDB (interop), moto's server mode (an S3-compatible server), and
# python-mysql-replication (a baseline of make bench). Prints its bin directory. Installed once
# into a persistent folder, reused afterwards.
set -euo pipefail
VENV="${SLUICE_VENV:-/var/tmp/sluice-venv}"
PKGS=("deltalake==1.*" "duckdb==1.*" "pyarrow" "moto[server]==5.*" "mysql-replication==1.*" "pymysql==1.*")
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import deltalake, duckdb, moto, pymysqlreplication' 2>/dev/null; then
  if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
    echo "python-env: installing python3-venv (apt)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip >/dev/null
    python3 -m venv "$VENV"
  fi
  echo "python-env: installing ${PKGS[*]} into $VENV (PyPI)" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PKGS[@]}" >&2
fi
echo "$VENV/bin"
