#!/usr/bin/env python3
"""Runs a command and writes its wall time, peak RSS and CPU time as JSON (stdlib only).

    measure.py OUT.json [--pidfile FILE] -- CMD [ARGS...]

stdin/stdout/stderr are the command's. SIGTERM/SIGINT are forwarded to the command. Peak RSS is
the kernel's own maximum (wait4's ru_maxrss), not a sample. Exits with the command's status.
"""
import json
import os
import signal
import subprocess
import sys
import time


def main() -> int:
    args = sys.argv[1:]
    if len(args) < 3 or "--" not in args:
        print(__doc__, file=sys.stderr)
        return 2
    sep = args.index("--")
    opts, cmd = args[:sep], args[sep + 1:]
    out = opts[0]
    pidfile = opts[opts.index("--pidfile") + 1] if "--pidfile" in opts else None
    t0 = time.monotonic()
    child = subprocess.Popen(cmd)
    if pidfile:
        with open(pidfile, "w") as f:
            f.write(f"{child.pid}\n")

    def forward(sig, _frame):
        try:
            child.send_signal(sig)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    _, status, ru = os.wait4(child.pid, 0)
    wall = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    with open(out, "w") as f:
        json.dump(
            {
                "cmd": cmd[0],
                "exit": code,
                "wall_s": wall,
                "maxrss_kb": ru.ru_maxrss,
                "user_s": ru.ru_utime,
                "sys_s": ru.ru_stime,
            },
            f,
        )
        f.write("\n")
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
