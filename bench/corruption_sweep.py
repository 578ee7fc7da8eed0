#!/usr/bin/env python3
"""Corruption sweep (issue 19): flip one byte at N seeded random offsets of a run file and of a
dataset store, one flip at a time on a private copy, and count

  flips      byte flips made;
  changed    flips that change the file's data: h5py then reads some dataset or attribute
             differently, or cannot read the file at all (a flip in unused space changes nothing);
  detected   changed flips that `passlab inspect --check` reports (exit status 1);
  missed     changed flips it does not report (must be 0);
  reported   run-file flips whose file the analysis report still averages (must be 0 among the
             changed ones; an unchanged file is rightly kept).

Usage: python3 bench/corruption_sweep.py --binary build/passlab --run-file R.h5 --store S.h5
           [--flips 50] [--seed 0] [--json out.json]
"""
import json
import pathlib
import random
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
import integrity_args  # noqa: E402
from analysis import runs  # noqa: E402


def snapshot(path):
    """Every dataset and attribute of a file as bytes, keyed by name; None when unreadable."""
    out = {}
    try:
        with h5py.File(path, "r") as f:
            def attrs(obj, name):
                for k in sorted(obj.attrs.keys()):
                    out[f"{name}@{k}"] = repr(obj.attrs[k]) if isinstance(obj.attrs[k], (str, bytes)) else \
                        np.asarray(obj.attrs[k]).tobytes()
            attrs(f, "/")

            def visit(name, obj):
                attrs(obj, "/" + name)
                if isinstance(obj, h5py.Dataset):
                    v = obj[()]
                    out["/" + name] = repr(v) if isinstance(v, (bytes, str)) else np.asarray(v).tobytes()
                else:
                    out["/" + name] = "group"
            f.visititems(visit)
    except Exception:
        return None
    return out


def check_exit(binary, path):
    r = subprocess.run([binary, "inspect", "--check", str(path)], capture_output=True, text=True, timeout=600)
    return r.returncode


def in_report(path):
    """Whether the analysis would average the run file into a report."""
    try:
        runs.load_run(path)
        return True
    except (runs.DamagedRunError, ValueError):
        return False


def sweep(binary, source, flips, rng, is_run):
    work = pathlib.Path(tempfile.mkdtemp(prefix="passlab_flip_"))
    try:
        copy = work / ("runs" if is_run else "") / source.name
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, copy)
        base = snapshot(copy)
        assert base is not None, f"{source} is not readable"
        assert check_exit(binary, copy) == 0, f"{source} does not pass passlab inspect --check before any flip"
        size = copy.stat().st_size
        counts = {"file": str(source), "bytes": size, "flips": 0, "changed": 0, "detected": 0, "missed": 0,
                  "unchanged_flagged": 0, "reported_changed": 0, "offsets_missed": []}
        with open(copy, "r+b") as fh:
            for _ in range(flips):
                off, mask = rng.randrange(size), rng.randrange(1, 256)
                fh.seek(off)
                old = fh.read(1)[0]
                fh.seek(off)
                fh.write(bytes([old ^ mask]))
                fh.flush()
                changed = snapshot(copy) != base
                flagged = check_exit(binary, copy) != 0
                counts["flips"] += 1
                counts["changed"] += changed
                counts["detected"] += changed and flagged
                counts["unchanged_flagged"] += (not changed) and flagged
                if changed and not flagged:
                    counts["missed"] += 1
                    counts["offsets_missed"].append(off)
                if is_run and changed and in_report(copy):
                    counts["reported_changed"] += 1
                fh.seek(off)
                fh.write(bytes([old]))
                fh.flush()
        return counts
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    p = integrity_args.parser(__doc__)
    p.add_argument("--flips", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    rng = random.Random(a.seed)
    out = {"seed": a.seed, "run_file": sweep(a.binary, pathlib.Path(a.run_file), a.flips, rng, True),
           "store": sweep(a.binary, pathlib.Path(a.store), a.flips, rng, False)}
    for k in ("run_file", "store"):
        c = out[k]
        print(f"{k}: {c['flips']} flips, {c['changed']} changed data, {c['detected']} detected by --check, "
              f"{c['missed']} missed, {c['unchanged_flagged']} flagged without a data change"
              + (f", {c['reported_changed']} changed files averaged into a report" if k == "run_file" else ""))
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(out, indent=2) + "\n")
    return 0 if all(out[k]["missed"] == 0 and out[k]["reported_changed"] == 0 for k in ("run_file", "store")) else 1


if __name__ == "__main__":
    sys.exit(main())
