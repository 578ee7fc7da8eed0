#!/usr/bin/env python3
"""What verifying a result file and a dataset store costs (issue 19), against the task it guards.

  check_s         the time `passlab inspect --check FILE` reports for its check (start-up
                  excluded): the C++ verification a relaunch, a prune task loading its dense
                  model and a training run opening its store pay;
  python_check_s  analysis/integrity.check (the report's verification), run files only;
  task_s          the run file's own `seconds` attribute (the task that wrote it).

Medians over --repeats runs. Usage:
  python3 bench/verify_cost.py --binary build/passlab --run-file R.h5 --store S.h5 [--json out.json]
"""
import json
import pathlib
import re
import statistics
import subprocess
import sys
import time

import h5py

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import integrity_args  # noqa: E402
from analysis import integrity, runs  # noqa: E402


def check_seconds(binary, path):
    r = subprocess.run([binary, "inspect", "--check", str(path)], capture_output=True, text=True)
    m = re.search(r"checked in ([0-9.]+) s", r.stdout)
    if r.returncode != 0 or not m:
        raise SystemExit(f"passlab inspect --check {path} failed ({r.returncode}): {r.stdout}{r.stderr}")
    return float(m[1])


def main():
    p = integrity_args.parser(__doc__)
    p.add_argument("--repeats", type=int, default=5)
    a = p.parse_args()
    med = lambda f: statistics.median(f() for _ in range(a.repeats))  # noqa: E731
    out = {}
    for key, path in (("run_file", a.run_file), ("store", a.store)):
        out[key] = {"file": path, "bytes": pathlib.Path(path).stat().st_size,
                    "check_s": med(lambda: check_seconds(a.binary, path))}
    rf = out["run_file"]

    def python_check():
        t0 = time.perf_counter()
        integrity.check(a.run_file, runs.SCHEMA["entries"])
        return time.perf_counter() - t0
    rf["python_check_s"] = med(python_check)
    with h5py.File(a.run_file, "r") as f:
        rf["task_s"] = float(f.attrs["seconds"])
    for key in ("run_file", "store"):
        c = out[key]
        print(f"{key}: {c['bytes'] / 2**20:.1f} MiB, passlab inspect --check {1000 * c['check_s']:.0f} ms"
              + (f", analysis/integrity.py {1000 * c['python_check_s']:.0f} ms; the task took {c['task_s']:.0f} s"
                 if key == "run_file" else ""))
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
