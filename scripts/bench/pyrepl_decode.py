#!/usr/bin/env python3
"""Baseline decoder: python-mysql-replication (PyPI `mysql-replication`) reads the binlog from
FILE:4 to its current end and decodes every row of DB.TABLE (accessing `event.rows` decodes the
row images into Python values). Prints one JSON object."""
import argparse
import json
import sys
import time

from pymysqlreplication import BinLogStreamReader
from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--file", required=True)
    ap.add_argument("--pos", type=int, default=4)
    ap.add_argument("--table", required=True, help="db.table")
    ap.add_argument("--server-id", type=int, default=6502)
    a = ap.parse_args()
    db, table = a.table.split(".", 1)
    settings = {"host": "127.0.0.1", "port": a.port, "user": "root", "passwd": ""}
    t0 = time.monotonic()
    stream = BinLogStreamReader(
        connection_settings=settings,
        server_id=a.server_id,
        log_file=a.file,
        log_pos=a.pos,
        resume_stream=True,
        blocking=False,
        only_events=[WriteRowsEvent, UpdateRowsEvent, DeleteRowsEvent],
        only_schemas=[db],
        only_tables=[table],
    )
    rows = 0
    try:
        for ev in stream:
            rows += len(ev.rows)
    finally:
        stream.close()
    secs = time.monotonic() - t0
    try:
        from importlib.metadata import version
        ver = version("mysql-replication")
    except Exception:  # noqa: BLE001 - the version is only informative
        ver = None
    print(json.dumps({"rows": rows, "seconds": secs, "rows_per_s": rows / secs if secs else 0, "version": ver}))
    print(f"python-mysql-replication: {rows} rows in {secs:.2f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
