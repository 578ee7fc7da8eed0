"""Plots of a report (PNG and PDF each, matplotlib's Agg backend; no display needed).

  acc_vs_macs_<dataset>_<arch>            test top-1 against MACs kept (% of dense), one line per
                                          method, error bars = std over seeds; the dense model as a
                                          star at 100 % and a dashed line
  layer_profile_<dataset>_<arch>_b<pct>   kept channels (% of the group's width) per channel group
                                          in forward order, one line per method, at one budget;
                                          error bars = std over seeds
  search_curves_<dataset>_<arch>          PASS methods: search loss and MAC ratio per step, one
                                          column per budget (mean over seeds, band = min..max)
  finetune_curves_<dataset>_<arch>        fine-tune train loss and validation top-1 per epoch, one
                                          column per budget, one line per method
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8, "xtick.labelsize": 8,
         "ytick.labelsize": 8, "axes.grid": True, "grid.alpha": 0.3, "figure.dpi": 100}
MARKERS = "osD^vP*Xh<>"


def _seeds(runs) -> str:
    n = len({r.seed for r in runs})
    return f"{n} seed" + ("" if n == 1 else "s")


def _slug(s) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(s))


def budget_tag(b: float) -> str:
    return "b" + f"{100 * b:g}".replace(".", "p")


def method_styles(methods):
    cmap = plt.get_cmap("tab10")
    return {m: {"color": cmap(i % 10), "marker": MARKERS[i % len(MARKERS)]} for i, m in enumerate(methods)}


def _save(fig, path_stem: Path):
    path_stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for ext in (".png", ".pdf"):
        p = path_stem.with_suffix(ext)
        fig.savefig(p, dpi=150 if ext == ".png" else None, bbox_inches="tight")
        out.append(p)
    plt.close(fig)
    return out


def _groups_of(runs):
    """(dataset, arch) -> runs."""
    g = defaultdict(list)
    for r in runs:
        g[(r.dataset, r.arch)].append(r)
    return dict(sorted(g.items()))


def acc_vs_macs(ds, arch, runs, methods, styles, out_dir):
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(5.2, 3.8))
        for mi, m in enumerate(methods):
            by_b = defaultdict(list)
            for r in runs:
                if r.method == m:
                    by_b[r.budget].append(r)
            if not by_b:
                continue
            xs, ys, es = [], [], []
            for b, rs in by_b.items():
                xs.append(100 * np.mean([float(r.summary["mac_ratio"]) for r in rs]))
                t = [100 * r.top1 for r in rs]
                ys.append(np.mean(t))
                es.append(np.std(t, ddof=1) if len(t) > 1 else 0.0)
            order = np.argsort(xs)
            st = styles[m]
            # Hollow markers, the first methods larger: points that coincide stay visible.
            ax.errorbar(np.array(xs)[order], np.array(ys)[order], yerr=np.array(es)[order], label=m, color=st["color"],
                        marker=st["marker"], markersize=max(4.0, 8.5 - 0.8 * mi), markerfacecolor="none",
                        markeredgewidth=1.4, capsize=3, linewidth=1.4, alpha=0.9)
        dense = {r.attrs["dense_id"]: 100 * float(r.summary["dense_top1"]) for r in runs}
        d = np.array(list(dense.values()))
        ax.axhline(d.mean(), color="0.35", linestyle="--", linewidth=1)
        ax.errorbar([100], [d.mean()], yerr=[d.std(ddof=1) if d.size > 1 else 0], color="black", marker="*",
                    markersize=10, capsize=3, linestyle="none", label=f"dense ({d.mean():.2f}%)")
        dense_macs = float(runs[0].summary["dense_macs"])
        ax.set_xlabel(f"MACs kept (% of dense: {dense_macs / 1e6:.4g} M per image)")
        ax.set_ylabel("test top-1 (%)")
        ax.set_title(f"{arch} on {ds}: accuracy vs MACs ({_seeds(runs)})")
        lo = min(100 * float(r.summary["mac_ratio"]) for r in runs)
        ax.set_xlim(max(0, lo - 8), 106)
        if len(ax.get_legend_handles_labels()[1]) > 5:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=True)
        else:
            ax.legend(loc="best", frameon=True)
        return _save(fig, out_dir / f"acc_vs_macs_{_slug(ds)}_{_slug(arch)}")


OVERLAY_MAX = 4  # layer profiles: up to this many methods as lines in one panel, else one bar panel each


def layer_profile(ds, arch, budget, runs, methods, styles, out_dir):
    groups = runs[0].groups
    widths = runs[0].widths
    n = len(groups)
    x = np.arange(n)
    present = [m for m in methods if any(r.method == m for r in runs)]
    stats = {}
    for m in present:
        rs = [r for r in runs if r.method == m]
        frac = np.array([[100.0 * r.kept[g] / r.widths[g] for g in groups] for r in rs])
        stats[m] = (frac.mean(axis=0), frac.std(axis=0, ddof=1) if len(rs) > 1 else None,
                    100 * np.mean([float(r.summary["mac_ratio"]) for r in rs]))
    title = f"{arch} on {ds}: kept channels per group at {100 * budget:g}% MACs ({_seeds(runs)})"
    width = max(6.0, 0.28 * n + 2.5)
    with plt.rc_context(STYLE):
        if len(present) <= OVERLAY_MAX:
            fig, ax = plt.subplots(figsize=(width, 4.2))
            axes = [ax]
            for m in present:
                mean, err, mr = stats[m]
                st = styles[m]
                ax.errorbar(x, mean, yerr=err, label=f"{m} (MACs {mr:.1f}%)", color=st["color"], marker=st["marker"],
                            markersize=4, capsize=2, linewidth=1.2)
            ax.set_ylabel("channels kept (% of group width)")
            ax.set_title(title)
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=True)
        else:
            fig, axes = plt.subplots(len(present), 1, figsize=(width, 1.15 * len(present) + 2.2), sharex=True,
                                     squeeze=False)
            axes = list(axes[:, 0])
            for ax, m in zip(axes, present):
                mean, err, mr = stats[m]
                ax.bar(x, mean, yerr=err, color=styles[m]["color"], width=0.75, capsize=1.5,
                       error_kw={"elinewidth": 0.8, "ecolor": "0.25"})
                ax.text(1.005, 0.5, f"{m}\nMACs {mr:.1f}%", transform=ax.transAxes, va="center", ha="left", fontsize=8)
                ax.set_yticks([0, 50, 100])
            axes[len(axes) // 2].set_ylabel("channels kept (% of group width)")
            axes[0].set_title(title)
        for ax in axes:
            ax.set_ylim(0, 105)
            ax.set_xlim(-0.6, n - 0.4)
        axes[-1].set_xticks(x)
        axes[-1].set_xticklabels([f"{g} ({widths[g]})" for g in groups], rotation=90, fontsize=8 if n <= 30 else 6)
        axes[-1].set_xlabel("channel group, in forward order (dense width)")
        return _save(fig, out_dir / f"layer_profile_{_slug(ds)}_{_slug(arch)}_{budget_tag(budget)}")


def _stack(curves):
    n = min(len(c) for c in curves)
    return np.stack([c[:n] for c in curves])


def _curve_grid(ds, arch, runs, methods, styles, out_dir, name, panels, xlabel, title, subtitle, want):
    """panels: [(curve key, y label, scale, reference-line fn)]; columns = budgets."""
    budgets = sorted({r.budget for r in runs if want(r)}, reverse=True)
    if not budgets:
        return []
    # Up to 3 budgets: one column each (panels as rows); more: one row each (panels as columns).
    wide = len(budgets) <= 3
    nrow, ncol = (len(panels), len(budgets)) if wide else (len(budgets), len(panels))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(nrow, ncol, figsize=(3.4 * ncol + 1.8, (2.5 if wide else 2.0) * nrow + 0.6),
                                 squeeze=False, sharex="col")
        handles = {}
        for j, b in enumerate(budgets):
            for i, (key, ylabel, scale, ref) in enumerate(panels):
                ax = axes[i][j] if wide else axes[j][i]
                for m in methods:
                    cs = [r.curves[key] * scale for r in runs if r.method == m and r.budget == b and want(r)
                          and key in r.curves and len(r.curves[key])]
                    if not cs:
                        continue
                    y = _stack(cs)
                    x = np.arange(1, y.shape[1] + 1)
                    st = styles[m]
                    (h,) = ax.plot(x, y.mean(axis=0), color=st["color"], linewidth=1.3,
                                   marker=st["marker"] if y.shape[1] <= 12 else None, markersize=4)
                    if y.shape[0] > 1:
                        ax.fill_between(x, y.min(axis=0), y.max(axis=0), color=st["color"], alpha=0.18, linewidth=0)
                    handles[m] = h
                if ref is not None:
                    v = ref(b)
                    h = ax.axhline(v, color="0.35", linestyle="--", linewidth=1)
                    handles["target"] = h
                if wide:
                    if i == 0:
                        ax.set_title(f"{100 * b:g}% MACs")
                    if i == nrow - 1:
                        ax.set_xlabel(xlabel)
                    if j == 0:
                        ax.set_ylabel(ylabel)
                else:
                    if j == 0:
                        ax.set_title(ylabel)
                    if j == nrow - 1:
                        ax.set_xlabel(xlabel)
                    if i == 0:
                        ax.set_ylabel(f"{100 * b:g}% MACs", fontweight="bold")
                ax.xaxis.get_major_locator().set_params(integer=True)
        labels = list(handles)
        fig.legend([handles[k] for k in labels], ["MAC budget" if k == "target" else k for k in labels],
                   loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=True)
        fig.suptitle(title + ("\n" if ncol == 1 else " (") + subtitle + ("" if ncol == 1 else ")"))
        fig.tight_layout()
        return _save(fig, out_dir / f"{name}_{_slug(ds)}_{_slug(arch)}")


def search_curves(ds, arch, runs, methods, styles, out_dir):
    return _curve_grid(ds, arch, runs, methods, styles, out_dir, "search_curves",
                       [("search_loss", "search loss", 1.0, None),
                        ("search_ce", "masked network's CE", 1.0, None),
                        ("search_mac_ratio", "MAC ratio (% of dense)", 100.0, lambda b: 100 * b)],
                       "search step", f"{arch} on {ds}: mask search", "mean over " + _seeds(runs) + ", band = min..max",
                       lambda r: "search_loss" in r.curves)


def finetune_curves(ds, arch, runs, methods, styles, out_dir):
    panels = [("finetune_train_loss", "train loss", 1.0, None)]
    if any("finetune_val_top1" in r.curves for r in runs):
        panels.append(("finetune_val_top1", "validation top-1 (%)", 100.0, None))
    else:
        panels.append(("finetune_train_top1", "train top-1 (%)", 100.0, None))
    return _curve_grid(ds, arch, runs, methods, styles, out_dir, "finetune_curves", panels, "fine-tune epoch",
                       f"{arch} on {ds}: fine-tuning", "mean over " + _seeds(runs) + ", band = min..max",
                       lambda r: "finetune_train_loss" in r.curves)


def write_all(result, rows, methods, out_dir):
    """Every plot of the report; returns the written paths (PNG and PDF)."""
    out_dir = Path(out_dir)
    styles = method_styles(methods)
    written = []
    for (ds, arch), runs in _groups_of(result.runs).items():
        written += acc_vs_macs(ds, arch, runs, methods, styles, out_dir)
        for b in sorted({r.budget for r in runs}, reverse=True):
            written += layer_profile(ds, arch, b, [r for r in runs if r.budget == b], methods, styles, out_dir)
        written += search_curves(ds, arch, runs, methods, styles, out_dir)
        written += finetune_curves(ds, arch, runs, methods, styles, out_dir)
    return written
