#!/usr/bin/env python3
"""Kinesis measurements of make bench, against moto's server (boto3 + pymysql from the venv).

    kinesis_bench.py create  --endpoint URL STREAM...           2-shard streams, waited ACTIVE
    kinesis_bench.py count   --endpoint URL --stream S          {"records": n, "data": n}
    kinesis_bench.py baseline --endpoint URL --from S --to T    boto3 put_records of S's records into T,
                                                                batches of 500, timed: {"rows", "seconds"}
    kinesis_bench.py latency --endpoint URL --stream S --port P --table db.t --rate N --seconds S
        inserts one row per transaction at N tx/s and times, per row, COMMIT returned → its record
        readable from the stream (a reader polls every shard from LATEST): p50/p95/p99/max ms.

Prints one JSON object. Credentials: moto takes any (the caller sets AWS_*).
"""
import argparse
import json
import threading
import time

import boto3


def kinesis(endpoint):
    return boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1")


def shards(k, stream):
    return [s["ShardId"] for s in k.list_shards(StreamName=stream)["Shards"]]


def read_all(k, stream):
    """Every record of every shard, as (partition key, data bytes)."""
    out = []
    for sid in shards(k, stream):
        it = k.get_shard_iterator(StreamName=stream, ShardId=sid, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while it:
            r = k.get_records(ShardIterator=it, Limit=10000)
            out += [(x["PartitionKey"], x["Data"]) for x in r["Records"]]
            if not r["Records"] and r.get("MillisBehindLatest", 0) == 0:
                break
            it = r.get("NextShardIterator")
    return out


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round((len(xs) - 1) * p))] if xs else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cmd")
    ap.add_argument("streams", nargs="*")
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--stream")
    ap.add_argument("--from", dest="src")
    ap.add_argument("--to")
    ap.add_argument("--port", type=int)
    ap.add_argument("--table")
    ap.add_argument("--rate", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=10)
    a = ap.parse_intermixed_args()
    k = kinesis(a.endpoint)

    if a.cmd == "create":
        for s in a.streams:
            k.create_stream(StreamName=s, ShardCount=2)
        for s in a.streams:
            k.get_waiter("stream_exists").wait(StreamName=s, WaiterConfig={"Delay": 0.2})
        print(json.dumps({"created": a.streams}))
    elif a.cmd == "count":
        recs = read_all(k, a.stream)
        data = sum(1 for _, d in recs if json.loads(d).get("metadata", {}).get("record-type") == "data")
        print(json.dumps({"records": len(recs), "data": data}))
    elif a.cmd == "baseline":
        # The very records sluice wrote (same payloads, same partition keys), read untimed.
        recs = [(pk, d) for pk, d in read_all(k, a.src)]
        t0 = time.monotonic()
        for i in range(0, len(recs), 500):
            batch = [{"PartitionKey": pk, "Data": d} for pk, d in recs[i:i + 500]]
            left = batch
            while left:  # moto never fails entries; kept so the baseline is a correct producer
                r = k.put_records(StreamName=a.to, Records=left)
                left = [e for e, res in zip(left, r["Records"]) if "ErrorCode" in res]
        secs = time.monotonic() - t0
        print(json.dumps({"rows": len(recs), "seconds": secs, "rows_per_s": len(recs) / secs if secs else None}))
    elif a.cmd == "latency":
        import pymysql
        db, table = a.table.split(".")
        seen, committed = {}, {}
        stop = threading.Event()
        rk = kinesis(a.endpoint)
        its = {sid: rk.get_shard_iterator(StreamName=a.stream, ShardId=sid, ShardIteratorType="LATEST")["ShardIterator"]
               for sid in shards(rk, a.stream)}

        def reader():
            while not stop.is_set():
                got = False
                for sid, it in list(its.items()):
                    try:
                        r = rk.get_records(ShardIterator=it, Limit=10000)
                    except Exception:  # moto is not thread-safe: a read racing a write may get a 500
                        continue
                    now = time.monotonic()
                    for x in r["Records"]:
                        rec = json.loads(x["Data"])
                        if rec.get("metadata", {}).get("record-type") == "data" and "data" in rec:
                            seen.setdefault(rec["data"]["id"], now)
                            got = True
                    its[sid] = r["NextShardIterator"]
                if not got:
                    time.sleep(0.005)

        t = threading.Thread(target=reader, daemon=True)
        t.start()
        conn = pymysql.connect(host="127.0.0.1", port=a.port, user="root", autocommit=False)
        cur = conn.cursor()
        n = int(a.rate * a.seconds)
        t0 = time.monotonic()
        for i in range(1, n + 1):
            due = t0 + i / a.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            cur.execute(f"INSERT INTO {db}.{table} (id, sent_us) VALUES (%s, %s)", (i, int(time.time() * 1e6)))
            conn.commit()
            committed[i] = time.monotonic()
        achieved = n / (time.monotonic() - t0)
        deadline = time.monotonic() + 30
        while len(seen) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        stop.set()
        lat = [(seen[i] - committed[i]) * 1000 for i in committed if i in seen]
        print(json.dumps({"rows": n, "achieved_tps": achieved, "missing": n - len(lat),
                          "p50_ms": pct(lat, 0.5), "p95_ms": pct(lat, 0.95), "p99_ms": pct(lat, 0.99), "max_ms": max(lat) if lat else None}))


if __name__ == "__main__":
    main()
