#!/usr/bin/env python3
"""Turns the step files of scripts/bench.sh (OUT/*.json, OUT/*.skip) into results.json — one
object per measurement: name, label, value, unit, baseline_name, baseline_value, ratio (value /
baseline_value), better (higher|lower), goal, goal_met — and prints them as a table.

    report.py OUT_DIR RESULTS_JSON

A measurement whose step failed or was skipped is listed with value null and the reason.
Goals are reported, never enforced: the exit status is 0 whenever the report could be written.
"""
import json
import os
import sys

OUT = sys.argv[1]
RESULTS = sys.argv[2]


def step(name):
    p = os.path.join(OUT, name + ".json")
    try:
        with open(p) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def why(*names):
    for n in names:
        p = os.path.join(OUT, n + ".skip")
        if os.path.exists(p):
            with open(p) as f:
                return f.read().strip() or "skipped"
    return "step did not produce a result (see bench/out/*.log)"


env = step("env") or {}
results = []


def add(name, label, value, unit, better, baseline_name=None, baseline_value=None, goal=None, goal_met=None,
        note=None, skipped=None):
    ratio = None
    if value is not None and baseline_value:
        ratio = value / baseline_value
    results.append({
        "name": name, "label": label, "value": value, "unit": unit, "better": better,
        "baseline_name": baseline_name, "baseline_value": baseline_value, "ratio": ratio,
        "goal": goal, "goal_met": goal_met, "note": note,
        "skipped": skipped if value is None else None,
        "profile": env.get("profile"), "quick": env.get("quick"),
    })


def rate(rows, secs):
    return rows / secs if rows is not None and secs else None


def g(d, *path):
    for p in path:
        if d is None:
            return None
        d = d.get(p) if isinstance(d, dict) else None
    return d


# 1. Full load (start → `sluice run --once` exits with everything committed to the lake).
for key, table in (("small", "small.users"), ("big", "bench.users")):
    rows = env.get(f"rows_{key}")
    load, dump = step(f"fullload_{key}"), step(f"dump_{key}")
    v = rate(rows, g(load, "wall_s")) if load and load.get("exit") == 0 and load.get("count_ok") else None
    b = rate(rows, g(dump, "wall_s")) if dump and dump.get("exit") == 0 else None
    add(f"full_load.{key}", f"full load {table}, {rows:,} rows" if rows else f"full load {table}",
        v, "rows/s", "higher", "mariadb-dump → /dev/null", b, "≥ 500000 rows/s",
        None if v is None else v >= 500000,
        note=None if v is None else f"{load['wall_s']:.2f} s vs {dump['wall_s']:.2f} s" if b else f"{load['wall_s']:.2f} s",
        skipped=why(f"fullload_{key}"))

# 1b. The big full load by watermarks ([snapshot] method = "watermark"), beside the consistent one.
wm, big, dump = step("fullload_watermark"), step("fullload_big"), step("dump_big")
rows = env.get("rows_big")
v = rate(rows, g(wm, "wall_s")) if wm and wm.get("exit") == 0 and wm.get("count_ok") else None
c = rate(rows, g(big, "wall_s")) if big and big.get("exit") == 0 and big.get("count_ok") else None
add("full_load.watermark", f"full load bench.users by watermarks, {rows:,} rows" if rows else "full load by watermarks",
    v, "rows/s", "higher", "consistent method, same run", c, "≥ 0.5 of mariadb-dump",
    None if v is None or not dump or dump.get("exit") != 0 else v >= 0.5 * rate(rows, g(dump, "wall_s")),
    note=None if v is None else f"{wm['wall_s']:.2f} s, peak RSS {g(wm, 'maxrss_kb') / 1024:.0f} MB",
    skipped=why("fullload_watermark"))

# 2. Binlog decode.
dec, mb, py = step("decode_sluice"), step("decode_mariadb_binlog"), step("decode_python")
v = g(dec, "rows_per_s")
drows = g(dec, "rows")
mb_rate = rate(drows, g(mb, "wall_s")) if mb and mb.get("exit") == 0 else None
mb_note = None if v is None or mb is None else f"{dec['seconds']:.2f} s vs {mb['wall_s']:.2f} s"
if mb_note and mb.get("rows") is not None and mb.get("rows") != drows:
    mb_note += f"; mariadb-binlog printed {mb['rows']:,} rows"
add("decode.vs_mariadb_binlog", f"binlog decode, {drows or 0:,} row events", v, "rows/s", "higher",
    "mariadb-binlog -v decode-rows", mb_rate, "≥ mariadb-binlog",
    None if v is None or mb_rate is None else v >= mb_rate, skipped=why("decode_sluice"), note=mb_note)
py_rate = g(py, "rows_per_s")
py_note = None if py is None else f"{dec['seconds']:.2f} s vs {py['seconds']:.2f} s" if dec else None
if py is not None and drows is not None and py.get("rows") != drows:
    py_note = f"python counted {py.get('rows')} rows"
add("decode.vs_python_mysql_replication", f"binlog decode, {drows or 0:,} row events", v, "rows/s", "higher",
    f"python-mysql-replication {g(py, 'version') or ''}".strip(), py_rate, None, None,
    note=py_note or why("decode_python") if py_rate is None else py_note, skipped=why("decode_sluice"))

# 3. Latency under a steady write load.
for rate_key in ("1k", "5k"):
    lat = step(f"latency_{rate_key}")
    achieved = g(lat, "achieved_tps")
    for what, goal_ms, goal_txt, label in (("event", 50.0, "p99 < 50 ms", "commit→event (jsonl)"),
                                           ("queryable", 2000.0, "p99 < 2000 ms", "commit→queryable")):
        s = g(lat, what)
        for p in ("p50", "p95", "p99"):
            val = g(s, f"{p}_ms")
            note = None
            if lat is not None:
                note = f"{achieved:.0f} tx/s achieved"
                if s and s.get("missing"):
                    note += f", {s['missing']} rows not seen (lower bounds)"
                if what == "queryable" and g(s, "polls", "p50_ms") is not None:
                    note += f", query takes {s['polls']['p50_ms']:.0f} ms (p50)"
            add(f"latency.{what}.{rate_key}.{p}", f"{label} at {rate_key} tx/s, {p}", val, "ms", "lower",
                f"goal ({goal_txt})", goal_ms, goal_txt if p == "p99" else None,
                (val < goal_ms if val is not None else None) if p == "p99" else None,
                note=note, skipped=why(f"latency_{rate_key}"))

# 4. Keeping up.
db = step("keepup_db")
db_rate = g(db, "achieved_rows_per_s")
add("keepup.db_max_rows_per_s", "keep-up: max write rate of the DB alone", db_rate, "rows/s", "higher",
    "goal", 100000.0, "≥ 100000 row changes/s", None if db_rate is None else db_rate >= 100000,
    note=None if db is None else f"{db['connections']} connections × {db['rows_per_tx']}-row INSERTs",
    skipped=why("keepup_db"))
follow = step("keepup_db_binlog")
follow_rate = g(follow, "achieved_rows_per_s")
add("keepup.db_with_mariadb_binlog_rows_per_s", "keep-up: DB while mariadb-binlog follows", follow_rate, "rows/s", "higher",
    "DB alone (above)", db_rate, None, None,
    note="mariadb-binlog --stop-never -v decode-rows to /dev/null: what any replica costs the server here",
    skipped=why("keepup_db_binlog"))
for key, short, sinks, target in (("keepup_100k", "keepup.at_100k", "lake+jsonl at 100k rows/s", 100000.0),
                                  ("keepup_sluice", "keepup.max_rate", "lake+jsonl at max rate", None),
                                  ("keepup_jsonl", "keepup.max_rate_jsonl_only", "jsonl only at max rate", None)):
    ku, cpu = step(key), step(f"{key}_cpu")
    ku_rate = g(ku, "achieved_rows_per_s")
    if target:
        add(f"{short}.rows_per_s", f"keep-up, {sinks}: rate written", ku_rate, "rows/s", "higher",
            "target rate", target, None, None, skipped=why(key))
    else:
        add(f"{short}.rows_per_s", f"keep-up, {sinks}: rate written", ku_rate, "rows/s", "higher",
            "DB alone (above)", db_rate, None, None, skipped=why(key))
        add(f"{short}.rows_per_s_vs_follower", f"keep-up, {sinks}: rate written", ku_rate, "rows/s", "higher",
            "DB while mariadb-binlog follows", follow_rate, None, None, skipped=why(key))
    lag_max, lag_p99 = g(ku, "event", "max_ms"), g(ku, "event", "p99_ms")
    missing = g(ku, "event", "missing") or 0
    if ku is None:
        note = None
    elif missing:
        note = (f"NOT caught up {env.get('drain_seconds', '?')} s after the writer stopped: {missing:,} of "
                f"{ku['rows']:,} rows not seen (lags are lower bounds)")
    else:
        note = f"caught up {g(ku, 'event', 'drain_s') or 0:.2f} s after the writer stopped"
    add(f"{short}.lag_p99", f"keep-up, {sinks}: lag commit→event, p99", lag_p99, "ms", "lower",
        "goal (< 1 s)", 1000.0, None, None, note=note, skipped=why(key))
    met = None
    if target and lag_max is not None and ku_rate is not None:
        met = lag_max < 1000 and ku_rate >= 0.98 * target and not missing
    add(f"{short}.lag_max", f"keep-up, {sinks}: lag commit→event, max", lag_max, "ms", "lower",
        "goal (< 1 s)", 1000.0, "lag < 1 s at ≥ 100k rows/s" if target else None, met, note=note, skipped=why(key))
    add(f"{short}.sluice_cpu", f"keep-up, {sinks}: sluice CPU", g(cpu, "sluice_pct"), "% of a core", "lower",
        "mariadbd CPU", g(cpu, "mariadbd_pct"), None, None,
        note=None if cpu is None else f"{cpu['wall_s']:.0f} s of writing + catching up; {env.get('cpus')} cores; "
        f"writer {cpu.get('writer_pct', 0):.0f}%", skipped=why(key))

# 4b. Lake commit durations while streaming, from the summary sluice logs when it stops
# ("sink flush durations", one line per sink).
def flushes(step_name, sink):
    import re
    try:
        with open(os.path.join(OUT, f"stream_{step_name}.log")) as f:
            text = f.read()
    except OSError:
        return None
    for line in text.splitlines():
        if "sink flush durations" in line and re.search(rf'sink="?{sink}"?\b', line):
            m = {k: float(v) for k, v in re.findall(r"(flushes|p50_ms|p99_ms|max_ms)=([0-9.]+)", line)}
            return m
    return None


for step_name, label in (("latency", "latency runs (1k + 5k tx/s)"), ("keepup_100k", "keep-up at 100k rows/s")):
    f = flushes(step_name, "lake")
    for p in ("p50", "p99"):
        add(f"lake_commit.{step_name}.{p}", f"lake commit duration, {label}, {p}", g(f, f"{p}_ms"), "ms", "lower",
            note=None if f is None else f"{f['flushes']:.0f} commits, max {f['max_ms']:.0f} ms",
            skipped=why(step_name if step_name != "latency" else "latency_1k"))

# 5. Memory.
snap, stream_rss = step("fullload_big"), step("stream_latency")
for name, label, st, skip in (("memory.snapshot_peak_rss", f"peak RSS, snapshot of {env.get('rows_big', 0):,} rows", snap, "fullload_big"),
                              ("memory.streaming_peak_rss", "peak RSS, streaming (latency runs)", stream_rss, "stream_latency")):
    mb_val = g(st, "maxrss_kb") / 1024 if g(st, "maxrss_kb") is not None and st.get("exit") == 0 else None
    add(name, label, mb_val, "MB", "lower", "goal", 256.0, "< 256 MB", None if mb_val is None else mb_val < 256,
        note=None if st is None else f"process ran {st['wall_s']:.0f} s", skipped=why(skip))
ku_rss = step("stream_keepup_sluice")
v = g(ku_rss, "maxrss_kb") / 1024 if g(ku_rss, "maxrss_kb") is not None else None
add("memory.keepup_peak_rss", "peak RSS, streaming at max rate (lake+jsonl)", v, "MB", "lower", "goal", 256.0,
    "< 256 MB", None if v is None else v < 256, note=None if ku_rss is None else f"process ran {ku_rss['wall_s']:.0f} s",
    skipped=why("keepup_sluice"))

# 6. Masking overhead.
masked, plain = step("fullload_masked"), step("fullload_big")
rows = env.get("rows_big")
ok = masked and masked.get("exit") == 0 and masked.get("count_ok") and masked.get("mask_applied")
mv = rate(rows, g(masked, "wall_s")) if ok else None
pv = rate(rows, g(plain, "wall_s")) if plain and plain.get("exit") == 0 else None
mask_skip = why("fullload_masked")
if masked and masked.get("exit") == 0 and masked.get("mask_applied") is False:
    mask_skip = "sluice accepted [[mask]] but the lake holds the source's emails: the rules were not applied"
add("masking.full_load", f"full load {rows or 0:,} rows + 2 mask rules", mv, "rows/s", "higher",
    "same load, no mask", pv, None, None,
    note=None if mv is None else f"{masked['wall_s']:.2f} s vs {plain['wall_s']:.2f} s", skipped=mask_skip)

# 7. Kinesis (moto): sluice's full load into a 2-shard stream against boto3 put_records of the very
# same records (batches of 500) into the same server, and commit → record readable.
kl, kb = step("kinesis_load"), step("kinesis_boto3")
kl_ok = kl is not None and kl.get("exit") == 0 and g(kl, "stream", "data") == kl.get("rows")
add("kinesis.full_load", f"Kinesis (moto): full load {env.get('rows_small', 0):,} rows, DMS JSON", rate(g(kl, "rows"), g(kl, "wall_s")) if kl_ok else None,
    "rows/s", "higher", "boto3 put_records, batches of 500", g(kb, "rows_per_s"), None, None,
    note=None if kl is None else f"whole `run --once` {kl['wall_s']:.2f} s (start, check, snapshot, every record acknowledged); "
    f"{g(kl, 'stream', 'data')} data records on the stream",
    skipped=why("kinesis_load") if kl is None else "the stream does not hold one record per row")
klat = step("kinesis_latency")
for p in ("p50", "p99"):
    add(f"kinesis.latency.{p}", f"Kinesis (moto): commit→record readable at 200 tx/s, {p}", g(klat, f"{p}_ms"), "ms", "lower",
        note=None if klat is None else f"{klat['achieved_tps']:.0f} tx/s, flush_interval 100 ms, reader polls every shard; "
        f"{klat['missing']} not seen", skipped=why("kinesis_latency"))
# 8. Kafka: full load into tansu vs librdkafka alone producing the same records.
ks, kc = step("kafka_sluice"), step("kafka_produce")
krows = g(ks, "rows")
# Counts only if every row is on the topic.
kv = rate(krows, g(ks, "wall_s")) if ks and ks.get("exit") == 0 and krows and krows == ks.get("expected_rows") else None
kb = rate(g(kc, "rows"), g(kc, "wall_s")) if kc and kc.get("exit") == 0 else None
add("kafka.full_load", f"full load into Kafka (tansu), {krows or 0:,} rows", kv, "rows/s", "higher",
    "librdkafka alone, same records (idempotent, acks=all)", kb, None, None,
    note=None if kv is None else f"{ks['wall_s']:.2f} s vs {kc['wall_s']:.2f} s" if kb else f"{ks['wall_s']:.2f} s",
    skipped=why("kafka_sluice", "kafka_produce"))
kflat = step("kafka_latency")
for p in ("p50", "p99"):
    add(f"kafka.latency.{p}", f"Kafka (tansu): commit→record readable at 200 tx/s, {p}", g(kflat, "event", f"{p}_ms"), "ms", "lower",
        note=None if kflat is None else f"{kflat['achieved_tps']:.0f} tx/s, flush_interval 100 ms, read by `sluice tail --source kafka`; "
        f"{g(kflat, 'event', 'missing')} not seen", skipped=why("kafka_latency"))

doc = {"environment": env, "measurements": results}
with open(RESULTS, "w") as f:
    json.dump(doc, f, indent=1)
    f.write("\n")


def fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


rows_out = [("measurement", "value", "unit", "baseline", "baseline value", "ratio", "goal met", "note")]
for r in results:
    rows_out.append((
        r["label"], fmt(r["value"]), r["unit"], r["baseline_name"] or "-", fmt(r["baseline_value"]),
        "-" if r["ratio"] is None else f"{r['ratio']:.2f}",
        "-" if r["goal_met"] is None else ("yes" if r["goal_met"] else "no") + f" ({r['goal']})",
        r["note"] if r["value"] is not None else f"skipped: {r['skipped']}",
    ))
widths = [max(len(str(row[i])) for row in rows_out) for i in range(len(rows_out[0]) - 1)]
print(f"\nsluice bench — build profile {env.get('profile')}, {'QUICK sizes' if env.get('quick') else 'full sizes'}, "
      f"{env.get('cpus')} cores, {env.get('server')}, {env.get('date')}")
for i, row in enumerate(rows_out):
    cells = [str(c).ljust(w) if j in (0, 2, 3) else str(c).rjust(w) for j, (c, w) in enumerate(zip(row, widths))]
    print("  ".join(cells) + "  " + (row[-1] or ""))
    if i == 0:
        print("  ".join("-" * w for w in widths) + "  ----")
print(f"\nwritten: {RESULTS}")
