#!/usr/bin/env python3
"""Read a sluice (or AWS DMS) Kinesis stream the way a DMS consumer does: every shard from its
oldest record (or from now on with --latest), each record's Data decoded as JSON.

    python3 kinesis_consumer.py --stream cdc-users [--region us-east-1] [--endpoint URL]
                                [--latest] [--follow] [--limit N] [--with-keys]

Prints one JSON record per line. --with-keys wraps each as {"shard", "partition_key",
"sequence_number", "record"} (what a consumer needs to check per-key order). Without --follow
it stops once every shard is read to its end. Credentials come from the standard AWS chain.
"""
import argparse
import json
import sys
import time

import boto3


def shard_ids(kinesis, stream):
    ids, kwargs = [], {"StreamName": stream}
    while True:
        page = kinesis.list_shards(**kwargs)
        ids += [s["ShardId"] for s in page["Shards"]]
        if not page.get("NextToken"):
            return ids
        kwargs = {"NextToken": page["NextToken"]}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stream", required=True)
    p.add_argument("--region", default="us-east-1")
    p.add_argument("--endpoint", help="e.g. http://127.0.0.1:5000 for a local moto server")
    p.add_argument("--latest", action="store_true", help="only records written from now on")
    p.add_argument("--follow", action="store_true", help="keep reading new records")
    p.add_argument("--limit", type=int, help="stop after N records")
    p.add_argument("--with-keys", action="store_true")
    args = p.parse_args()

    kinesis = boto3.client("kinesis", region_name=args.region, endpoint_url=args.endpoint)
    start = "LATEST" if args.latest else "TRIM_HORIZON"
    iterators = {
        sid: kinesis.get_shard_iterator(StreamName=args.stream, ShardId=sid, ShardIteratorType=start)["ShardIterator"]
        for sid in shard_ids(kinesis, args.stream)
    }
    printed = 0
    while iterators:
        got_any = behind = False
        for sid, it in list(iterators.items()):
            resp = kinesis.get_records(ShardIterator=it, Limit=1000)
            for r in resp["Records"]:
                record = json.loads(r["Data"])
                # A DMS consumer applies the change here: record["metadata"]["operation"] on
                # schema-name.table-name; control records (record-type "control") carry the
                # table's definition. Duplicates are possible (at least once): skip a
                # metadata.seq already applied.
                if args.with_keys:
                    out = {"shard": sid, "partition_key": r["PartitionKey"], "sequence_number": r["SequenceNumber"], "record": record}
                else:
                    out = record
                print(json.dumps(out), flush=False)
                printed += 1
                got_any = True
                if args.limit and printed >= args.limit:
                    sys.stdout.flush()
                    return
            behind = behind or resp.get("MillisBehindLatest", 0) > 0
            if resp.get("NextShardIterator"):
                iterators[sid] = resp["NextShardIterator"]
            else:
                del iterators[sid]  # a closed shard, read to its end
        sys.stdout.flush()
        if not got_any and not behind:
            if not args.follow:
                return
            time.sleep(0.25)


if __name__ == "__main__":
    main()
