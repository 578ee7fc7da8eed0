"""Numbers behind README's reading of a sweep: paired differences and kept-channel shares.

    python -m analysis.paired RESULTS [--ref pass] [--budget 0.15]

Paired differences: for every budget and every other method, REF's test top-1 minus the
method's, run by run on the same seed (the same dense model): mean ± std over seeds (points) and
on how many seeds REF is ahead. Kept channels: at --budget, per method, the share of channels
kept in each run of the first inner group (the first group after the stem) and the mean share
over the other groups with fewer than all channels kept on average. Reads complete run files only
(analysis.runs.scan).
"""
from __future__ import annotations

import argparse
import statistics as st
from collections import defaultdict

import h5py

from . import runs as runs_mod


def paired(result, ref):
    top1 = {(r.budget, r.method, r.seed): 100 * r.top1 for r in result.runs}
    out = []
    for b in sorted({k[0] for k in top1}, reverse=True):
        seeds = sorted(s for (bb, m, s) in top1 if bb == b and m == ref)
        for m in sorted({k[1] for k in top1 if k[0] == b and k[1] != ref}):
            d = [top1[(b, ref, s)] - top1[(b, m, s)] for s in seeds if (b, m, s) in top1]
            if d:
                sd = st.stdev(d) if len(d) > 1 else float("nan")
                out.append((b, m, st.mean(d), sd, sum(x > 0 for x in d), len(d)))
    return out


def kept_shares(result, budget):
    shares = defaultdict(list)  # method -> [ {group: share} per run ]
    for r in result.runs:
        if abs(r.budget - budget) > 1e-9:
            continue
        with h5py.File(r.path, "r") as f:
            shares[r.method].append({g: f["keep"][g].shape[0] / f["masks"][g].shape[0] for g in f["masks"]})
    return shares


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m analysis.paired", description=__doc__.split("\n")[0])
    ap.add_argument("results")
    ap.add_argument("--ref", default="pass")
    ap.add_argument("--budget", type=float, default=0.15)
    a = ap.parse_args(argv)
    result = runs_mod.scan(a.results)
    print(f"{a.ref} minus method, paired by seed (points): mean ± std, seeds where {a.ref} is ahead")
    for b, m, mean, sd, ahead, n in paired(result, a.ref):
        print(f"  {100 * b:g}%  {m:20s} {mean:+.2f} ± {sd:.2f}  ({ahead}/{n})")
    shares = kept_shares(result, a.budget)
    print(f"kept channels at {100 * a.budget:g}% MACs (% of group width)")
    for m in sorted(shares):
        runs = shares[m]
        order = list(runs[0])  # groups in file order
        mean = {g: st.mean(x[g] for x in runs) for g in order}
        inner = [g for g in order if mean[g] < 1.0]
        if len(inner) < 2:
            print(f"  {m:20s} fewer than two pruned groups")
            continue
        first, rest = inner[0], inner[1:]
        print(f"  {m:20s} {first}: " + ", ".join(f"{100 * x[first]:.1f}" for x in runs) +
              f"; other pruned groups: mean {100 * st.mean(mean[g] for g in rest):.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
