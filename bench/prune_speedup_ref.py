#!/usr/bin/env python3
"""PyTorch side of bench/prune_speedup: the dense and compact networks that bench wrote (weight
files with an ``arch`` attribute), loaded with analysis/load_pruned.py, in the form bench timed
(training: as loaded; folded: fold_batchnorm; folded_channels_last: the same in NHWC), timed the
way passlab's prune/speedup.cpp times them: eval mode, no-grad, the same random input for both,
alternating warm-up passes until the last 3 times of each vary by less than 10 % (3..30 passes),
then interleaved rounds (dense first in even rounds), the speed-up the median per-round ratio.

    prune_speedup_ref.py --dense d.h5 --compact c.h5 --size 224 --batch 8 --threads 2 --rounds 7 --form folded
prints one JSON line: {"form", "dense_ms", "compact_ms", "speedup", "spread", "rounds", "warmup_passes"}.
With --torchscript, also "torchscript": the same keys for the TorchScript files that
analysis/load_pruned.save_torchscript writes (loaded back with torch.jit.load), timed the same way
in the same process: the form a user deploys, without Python's per-module dispatch.
With --profile, also "profile": where the time goes, per conv and linear layer (forward hooks,
over --profile-passes passes: the median, and the minimum, which a busy machine only ever raises)
of both networks, their times, their MACs per image, and "other" (everything outside those
layers: activations, additions, pooling, framework overhead). --profile-table also prints it per
stage (stem, each residual stage, head, other) on stderr: time and MAC shares, and each stage's
time ratio dense / compact against its MAC ratio.
"""
import argparse
import json
import pathlib
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from analysis.load_pruned import fold_batchnorm, load_pruned, save_torchscript  # noqa: E402


def time_ms(model, x):
    t0 = time.perf_counter()
    model(x)
    return 1e3 * (time.perf_counter() - t0)


def stable(times, window=3, tolerance=0.10):
    if len(times) < window:
        return False
    last = times[-window:]
    return min(last) > 0 and (max(last) - min(last)) / min(last) < tolerance


class LayerTimer:
    """Wall time and MACs per image of every conv and linear module of ``model``, per forward pass."""

    def __init__(self, model):
        self.times, self.macs, self._t0 = {}, {}, {}
        for name, mod in model.named_modules():
            if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
                mod.register_forward_pre_hook(self._pre(name))
                mod.register_forward_hook(self._post(name))

    def _pre(self, name):
        def hook(mod, inp):
            self._t0[name] = time.perf_counter()
        return hook

    def _post(self, name):
        def hook(mod, inp, out):
            self.times.setdefault(name, []).append(1e3 * (time.perf_counter() - self._t0[name]))
            per_out = mod.weight[0].numel()  # in/groups * k * k (conv) or in (linear)
            self.macs[name] = int(out[0].numel() * per_out)
        return hook

    def summary(self, total_ms, stat=np.median):
        layers = {n: float(stat(t)) for n, t in self.times.items()}
        return layers, total_ms - sum(layers.values())


def profile(dense, compact, x, passes=5):
    rows = {}
    out = {}
    for key, model in (("dense", dense), ("compact", compact)):
        timer = LayerTimer(model)
        totals = [time_ms(model, x) for _ in range(passes)]
        for suffix, stat in (("", np.median), ("_min", np.min)):
            layers, other = timer.summary(float(stat(totals)), stat)
            out[f"{key}_total{suffix}_ms"], out[f"{key}_other{suffix}_ms"] = float(stat(totals)), other
            for n, t in layers.items():
                rows.setdefault(n, {"layer": n})[f"{key}{suffix}_ms"] = t
                rows[n][key + "_macs"] = timer.macs[n]
    out["passes"] = passes
    out["layers"] = sorted(rows.values(), key=lambda r: -r.get("compact_ms", 0))
    return out


def stage_of(layer: str) -> str:
    """'layer2.0.conv1' -> 'layer2'; the stem's conv1 -> 'stem'; the classifier -> 'head'."""
    head = layer.split(".")[0]
    if head.startswith("layer") or head == "features":
        return head
    return "stem" if head == "conv1" else "head"


def profile_table(prof, suffix="_min") -> str:
    """Per stage: time share and MAC share of each network, time ratio against MAC ratio."""
    stages = {}
    for r in prof["layers"]:
        st = stages.setdefault(stage_of(r["layer"]), {"dense_ms": 0.0, "compact_ms": 0.0, "dense_macs": 0, "compact_macs": 0})
        for k in ("dense", "compact"):
            st[k + "_ms"] += r[f"{k}{suffix}_ms"]
            st[k + "_macs"] += r[k + "_macs"]
    stages["other"] = {"dense_ms": prof[f"dense_other{suffix}_ms"], "compact_ms": prof[f"compact_other{suffix}_ms"],
                       "dense_macs": 0, "compact_macs": 0}
    tot = {k: prof[f"{k}_total{suffix}_ms"] for k in ("dense", "compact")}
    macs = {k: sum(v[k + "_macs"] for v in stages.values()) for k in ("dense", "compact")}
    lines = [f"{'stage':<8}{'dense ms':>10}{'share':>7}{'MACs':>7}{'compact ms':>12}{'share':>7}{'MACs':>7}"
             f"{'time ratio':>12}{'MAC ratio':>11}"]
    for name, v in stages.items():
        tr = v["dense_ms"] / v["compact_ms"] if v["compact_ms"] > 0 else float("nan")
        mr = v["dense_macs"] / v["compact_macs"] if v["compact_macs"] else float("nan")
        lines.append(f"{name:<8}{v['dense_ms']:>10.3f}{100 * v['dense_ms'] / tot['dense']:>6.1f}%"
                     f"{100 * v['dense_macs'] / macs['dense']:>6.1f}%{v['compact_ms']:>12.3f}"
                     f"{100 * v['compact_ms'] / tot['compact']:>6.1f}%{100 * v['compact_macs'] / macs['compact']:>6.1f}%"
                     f"{tr:>11.2f}x{mr:>10.2f}x")
    lines.append(f"{'total':<8}{tot['dense']:>10.3f}{'':>14}{tot['compact']:>12.3f}{'':>14}"
                 f"{tot['dense'] / tot['compact']:>11.2f}x{macs['dense'] / macs['compact']:>10.2f}x")
    return "\n".join(lines)


def interleaved(dense, compact, x, a) -> dict:
    """Warm-up until stable, then interleaved rounds; the median per-round ratio and its spread."""
    warm = ([], [])
    passes = 0
    while passes < a.max_warmup:
        warm[0].append(time_ms(dense, x))
        warm[1].append(time_ms(compact, x))
        passes += 1
        if passes >= a.min_warmup and stable(warm[0]) and stable(warm[1]):
            break
    d, c = [], []
    for i in range(a.rounds):
        if i % 2 == 0:
            d.append(time_ms(dense, x))
            c.append(time_ms(compact, x))
        else:
            c.append(time_ms(compact, x))
            d.append(time_ms(dense, x))
    ratios = np.asarray(d) / np.asarray(c)
    med = float(np.quantile(ratios, 0.5))
    return {"dense_ms": float(np.median(d)), "compact_ms": float(np.median(c)), "speedup": med,
            "spread": float((np.quantile(ratios, 0.75) - np.quantile(ratios, 0.25)) / med),
            "rounds": a.rounds, "warmup_passes": passes}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dense", required=True)
    ap.add_argument("--compact", required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--min-warmup", type=int, default=3)
    ap.add_argument("--max-warmup", type=int, default=30)
    ap.add_argument("--form", choices=["training", "folded", "folded_channels_last"], default="folded")
    ap.add_argument("--torchscript", action="store_true",
                    help='also time the TorchScript files save_torchscript writes ("torchscript" in the JSON)')
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--profile-passes", type=int, default=5)
    ap.add_argument("--profile-table", action="store_true", help="with --profile: the per-stage table on stderr")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    nets = []
    for path in (a.dense, a.compact):
        m, info = load_pruned(path, input_size=a.size, return_info=True)
        if a.form != "training":
            m = fold_batchnorm(m, channels_last=a.form == "folded_channels_last")
        nets.append(m.eval())
    channels = info.in_channels
    torch.manual_seed(0)
    x = torch.randn(a.batch, channels, a.size, a.size)
    if a.form == "folded_channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    dense, compact = nets
    with torch.no_grad():
        result = {"form": a.form, **interleaved(dense, compact, x, a)}
        if a.torchscript:
            # The deployable form: each network written by save_torchscript and loaded back with
            # torch.jit.load, as a user would, then timed the same way.
            with tempfile.TemporaryDirectory() as tmp:
                scripts = [torch.jit.load(str(save_torchscript(m, pathlib.Path(tmp) / f"{k}.pt", x)))
                           for k, m in (("dense", dense), ("compact", compact))]
            result["torchscript"] = interleaved(*scripts, x, a)
        prof = profile(dense, compact, x, a.profile_passes) if a.profile else None
    if prof is not None:
        result["profile"] = prof
        if a.profile_table:
            print(f"per stage, minimum over {a.profile_passes} passes (ms):\n" + profile_table(prof), file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
