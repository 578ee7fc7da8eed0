#!/usr/bin/env python3
"""The speed-up column of a quickstart results directory (bench/quickstart_speedup_loaded.sh):
per prune run its method, budget, MACs kept, speed-up, spread, unreliable flag and the load around
the measurement, and the re-measured speed-up where RESULTS/measurements.h5 holds one; a verdict
for the 50 % runs ("ok": speed-up >= 1, "flagged": below 1 but flagged unreliable, "FAIL": below
1 and not flagged), for the task's own number and the re-measured one. Exit status 1 on a FAIL.

    bench/quickstart_speedup_table.py RESULTS
"""
import sys
from pathlib import Path

import h5py


def verdict(speed, flagged):
    return "ok" if speed >= 1 else ("flagged" if flagged else "FAIL")


out = Path(sys.argv[1])
measured = {}
m = out / "measurements.h5"
if m.is_file():
    with h5py.File(m, "r") as f:
        for g in f.values():
            for rid, e in g.items():
                measured[rid] = dict(e.attrs)
print(f"{'method':<16}{'budget':>7}{'MACs':>7}{'speed-up':>10}{'spread':>8}  {'flag':<11}{'load':<13}"
      + ("remeasured" if measured else ""))
fails = 0
for p in sorted((out / "runs").glob("*.h5")):
    with h5py.File(p, "r") as f:
        a, s = f.attrs, f["summary"].attrs
        method, budget = a["method"], float(a["budget"])
        if isinstance(method, bytes):
            method = method.decode()
        speed, spread, flagged = float(s["speedup"]), float(s["speedup_spread"]), int(s["speedup_unreliable"]) == 1
        line = (f"{method:<16}{100 * budget:>6.0f}%{100 * float(s['mac_ratio']):>6.1f}%{speed:>9.2f}x{spread:>8.3f}  "
                f"{'UNRELIABLE' if flagged else '-':<11}{float(s['load_1min_start']):.2f}->{float(s['load_1min_end']):.2f}  ")
        rid = a["run_id"].decode() if isinstance(a["run_id"], bytes) else a["run_id"]
        judged = [("task", speed, flagged)]
        if rid in measured:
            e = measured[rid]
            judged.append(("remeasured", float(e["speedup"]), int(e["speedup_unreliable"]) == 1))
            line += f"{judged[1][1]:.2f}x (spread {float(e['speedup_spread']):.3f}{', UNRELIABLE' if judged[1][2] else ''})"
        if abs(budget - 0.5) < 1e-9:
            verdicts = [(who, verdict(x, fl)) for who, x, fl in judged]
            fails += sum(v == "FAIL" for _, v in verdicts)
            line += "  50 % verdict: " + ", ".join(f"{who} {v}" for who, v in verdicts)
        print(line)
sys.exit(1 if fails else 0)
