#!/usr/bin/env python3
"""Compare the run files of two results directories (e.g. the quickstart sweep before and after
a refactoring that must keep behaviour).

    $HOME/.local/share/passlab/venv/bin/python scripts/compare-runs.py BEFORE AFTER [--tol 0.002]

For every task id complete in both directories it prints the method, the budget, whether the
kept channels (/keep/<group>) are equal and the difference in test top-1 (AFTER - BEFORE); dense
models are compared by their top-1. Exit status 1 when the kept channels of a baseline (non-PASS)
method differ or a top-1 moves by more than --tol (absolute fraction), 2 when the directories
share no complete task, 0 otherwise. --skip-pass leaves PASS methods out of the verdict (their
numbers may move with the search), though they are still listed. --layout also compares each
pair of files' HDF5 layout (every group, dataset and attribute: name, dtype, dataset shape) and
fails on any difference.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from analysis.runs import PASS_METHODS, natural_key  # noqa: E402


def _text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def read_task(path: Path):
    """(id, record) of a complete dense or run file, or None for one not complete."""
    with h5py.File(path, "r") as f:
        if _text(f.attrs.get("status", "")) != "complete":
            return None
        kind = _text(f.attrs.get("kind", "prune"))
        rec = {
            "kind": kind,
            "method": _text(f.attrs["method"]) if kind == "prune" else "dense",
            "budget": float(f.attrs["budget"]) if kind == "prune" else None,
            "top1": float(f["summary"].attrs["top1"]),
            "keep": None,
            "path": path,
        }
        if "keep" in f:
            rec["keep"] = {g: np.asarray(f["keep"][g][()]) for g in f["keep"]}
        task_id = _text(f.attrs["run_id"] if kind == "prune" else f.attrs["dense_id"])
        return task_id, rec


def layout(path: Path) -> dict:
    """name -> description of every object and attribute of the file (values left out)."""
    out = {}

    def attrs(name, obj):
        for k in obj.attrs:
            a = obj.attrs.get_id(k)
            out[f"{name}@{k}"] = f"attribute {a.dtype} {a.shape}"

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = f"dataset {obj.dtype} {obj.shape}"
        else:
            out[name] = "group"
        attrs(name, obj)

    with h5py.File(path, "r") as f:
        attrs("/", f)
        f.visititems(visit)
    return out


def layout_differences(a: Path, b: Path) -> list:
    la, lb = layout(a), layout(b)
    return [f"{k}: {la.get(k, 'absent')} -> {lb.get(k, 'absent')}" for k in sorted(la.keys() | lb.keys(), key=natural_key)
            if la.get(k) != lb.get(k)]


def scan(results: Path) -> dict:
    tasks = {}
    for sub in ("dense", "runs"):
        for path in sorted((results / sub).glob("*.h5")):
            got = read_task(path)
            if got:
                tasks[got[0]] = got[1]
    return tasks


def keep_equal(a, b) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[g], b[g]) for g in a)


def compare(before: dict, after: dict, tol: float, skip_pass: bool, check_layout=False, out=sys.stdout) -> int:
    common = sorted(before.keys() & after.keys(), key=lambda i: (before[i]["kind"] != "dense", natural_key(i)))
    if not common:
        print("no task is complete in both directories", file=out)
        return 2
    bad = 0
    print(f"{'task':<44} {'method':<18} {'budget':>6} {'keep':<9} {'top1 before':>11} {'after':>7} {'diff':>8}", file=out)
    for tid in common:
        b, a = before[tid], after[tid]
        is_pass = b["method"] in PASS_METHODS
        if b["keep"] is None or a["keep"] is None:
            keep = "-"
        else:
            keep = "equal" if keep_equal(b["keep"], a["keep"]) else "DIFFERENT"
        diff = a["top1"] - b["top1"]
        problems = []
        if not (skip_pass and is_pass):
            if keep == "DIFFERENT" and not is_pass:
                problems.append("keep differs")
            if abs(diff) > tol:
                problems.append(f"top-1 moved by more than {tol:g}")
        layout_diff = layout_differences(b["path"], a["path"]) if check_layout else []
        if layout_diff:
            problems.append(f"layout differs in {len(layout_diff)} place(s)")
        bad += bool(problems)
        budget = "-" if b["budget"] is None else f"{100 * b['budget']:.0f}%"
        print(f"{tid:<44} {b['method']:<18} {budget:>6} {keep:<9} {b['top1']:>11.4f} {a['top1']:>7.4f} {diff:>+8.4f}"
              + ("  <- " + ", ".join(problems) if problems else ""), file=out)
        for line in layout_diff:
            print(f"    {line}", file=out)
    only = sorted(before.keys() ^ after.keys())
    if only:
        print(f"{len(only)} task(s) complete in only one directory: {', '.join(only)}", file=out)
    print(f"{len(common)} task(s) compared, {bad} with differences beyond what is allowed", file=out)
    return 1 if bad else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("before", type=Path)
    p.add_argument("after", type=Path)
    p.add_argument("--tol", type=float, default=0.002, help="allowed |top-1 after - before| (fraction; default 0.002)")
    p.add_argument("--skip-pass", action="store_true", help="list PASS methods but leave them out of the verdict")
    p.add_argument("--layout", action="store_true", help="also require the same HDF5 layout (names, dtypes, shapes)")
    args = p.parse_args(argv)
    for d in (args.before, args.after):
        if not d.is_dir():
            p.error(f"{d}: not a directory")
    return compare(scan(args.before), scan(args.after), args.tol, args.skip_pass, args.layout)


if __name__ == "__main__":
    sys.exit(main())
