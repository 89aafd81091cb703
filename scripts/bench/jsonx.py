#!/usr/bin/env python3
"""Tiny JSON helper for bench.sh (so it needs no jq):
    jsonx.py fmt FILE FORMAT        print FORMAT.format_map(the object), e.g. '{event[p99_ms]} ms'
    jsonx.py set FILE KEY JSON      set KEY to the JSON value JSON in FILE's object
    jsonx.py best FILE RUN...       FILE = the run with the least wall_s among RUN files that exited 0,
                                    plus runs_wall_s (all runs) and maxrss_kb = the largest of all runs
"""
import json
import sys

cmd, path = sys.argv[1], sys.argv[2]
if cmd == "best":
    runs = []
    for p in sys.argv[3:]:
        try:
            with open(p) as f:
                runs.append(json.load(f))
        except (OSError, ValueError):
            pass
    ok = [r for r in runs if r.get("exit") == 0]
    if not ok:
        sys.exit(1)
    best = dict(min(ok, key=lambda r: r["wall_s"]))
    best["runs_wall_s"] = [r["wall_s"] for r in ok]
    best["maxrss_kb"] = max(r["maxrss_kb"] for r in ok)
    with open(path, "w") as f:
        json.dump(best, f)
        f.write("\n")
    sys.exit(0)
with open(path) as f:
    data = json.load(f)
if cmd == "fmt":
    try:
        print(sys.argv[3].format_map(data))
    except (KeyError, IndexError, TypeError, ValueError) as e:
        print(f"(cannot format {path}: {e!r})")
elif cmd == "set":
    data[sys.argv[3]] = json.loads(sys.argv[4])
    with open(path, "w") as f:
        json.dump(data, f)
        f.write("\n")
else:
    sys.exit(__doc__)
