"""Reads a sluice lake table with independent readers and prints its rows as JSON lines.

usage: lake-readers.py deltalake|duckdb TABLE_PATH "col1,col2,..." [storage options as k=v ...]

`deltalake`: python deltalake's own reader. `duckdb`: DuckDB over the table's *live* file list
(DeltaTable.file_uris()), never a directory glob (which would also read replaced files).
"""
import json
import os
import sys

from deltalake import DeltaTable

reader, path, cols = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
opts = dict(kv.split("=", 1) for kv in sys.argv[4:])
dt = DeltaTable(path, storage_options=opts or None)
if reader == "deltalake":
    rows = dt.to_pyarrow_table(columns=cols).to_pylist()
elif reader == "duckdb":
    import duckdb

    files = dt.file_uris()
    con = duckdb.connect()
    if not files:
        rows = []
    else:
        rel = con.execute(
            f"SELECT {', '.join(cols)} FROM read_parquet(?, hive_partitioning = false)", [files]
        )
        names = [d[0] for d in rel.description]
        rows = [dict(zip(names, r)) for r in rel.fetchall()]
else:
    sys.exit(f"unknown reader {reader}")
for r in sorted(rows, key=lambda r: r[cols[0]]):
    print(json.dumps(r, default=str))
# python deltalake's native runtime can abort while the interpreter tears down after S3 reads
# ("terminate called without an active exception"): the rows are out, leave without teardown.
sys.stdout.flush()
os._exit(0)
