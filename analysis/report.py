"""Paper-style tables and the report command.

``python3 -m analysis report RESULTS_DIR --out OUT`` writes into OUT:

  tables.md, tables.tex, tables.csv   one row per dataset x arch x budget; per method the test
                                      top-1 (%) as mean ± std over seeds (n seeds) and the measured
                                      speed-up (dense latency / pruned latency, mean); the dense
                                      model's top-1 alongside; the best mean top-1 of a row marked
                                      (bold in Markdown/LaTeX, column best_method in the CSV)
  tables.md's "Methods by budget"     the same top-1 cells with methods as rows and budgets as columns,
                                      one block per dataset x arch (a paper's layout)
  methods.csv (and tables.md's        the same cells one line per dataset x arch x budget x method:
  "Per method" section)               top-1, its change from each run's own dense model, MACs and
                                      parameters kept (fraction of dense, mean), the seconds spent
                                      finding the plan (search, regularisation, ranking) and on the
                                      whole task as median [min–max] over seeds (wall times on a shared
                                      machine are skewed by whatever else ran: the median and the
                                      fastest seed say more than a mean) and over the runs that ran
                                      in one launch (journal.tsv: one start; a resumed task's file
                                      times only its last launch), and speed-up, the others
                                      mean ± std over seeds
  runs.csv                            every complete run, one line each (the numbers averaged)
  tables.md's "Structure probe"       when run files hold summary@probe_val_top1 (eval.probe_batches >
  section, methods.csv probe_*        0): validation top-1 of each plan before its fine-tune, BatchNorm
                                      recalibrated, mean ± std over seeds, beside the fine-tuned
                                      validation top-1 (a tuning signal: validation only)
  excluded.csv                        runs NOT in the tables: failed, incomplete, damaged, ...
  (speed-ups)                         from <results>/measurements.h5 when `passlab remeasure` wrote one
                                      (analysis/measurements.py; one machine for the whole table), else
                                      from the run files; tables.md and index.md say which
  plots/*.png, plots/*.pdf            see analysis/plots.py
  index.md                            what is where, the excluded runs, the plots

Std is the sample standard deviation (ddof=1); a cell with one seed shows no ±. Marks in cells:
† some runs of the cell failed or are incomplete (listed under "Runs not in the tables"),
‡ some runs missed the MAC budget by more than the tolerance (summary.budget_met = 0).
"""
from __future__ import annotations

import csv
import dataclasses
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from . import measurements as measurements_mod
from . import runs as runs_mod

DAGGER, DDAGGER = "†", "‡"
UNRELIABLE = "?"  # after a speed-up: some runs of the cell flagged it (summary@speedup_unreliable)


@dataclasses.dataclass
class Cell:
    runs: list
    top1_mean: float
    top1_std: float          # nan with one seed
    speedup_mean: float
    speedup_std: float
    mac_ratio_mean: float
    n: int
    n_excluded: int = 0      # failed/incomplete runs of this cell
    missed_budget: int = 0   # runs with budget_met == 0
    mac_ratio_std: float = math.nan
    params_ratio_mean: float = math.nan   # params / dense params
    params_ratio_std: float = math.nan
    delta_mean: float = math.nan          # top-1 minus the run's own dense top-1, points
    delta_std: float = math.nan
    unreliable_speedup: int = 0           # runs whose summary@speedup_unreliable is 1
    probe_mean: float = math.nan          # summary@probe_val_top1 (%), over the runs that have it
    probe_std: float = math.nan
    probe_n: int = 0
    val_mean: float = math.nan            # summary@val_top1 (%) of the fine-tuned network, same runs
    val_std: float = math.nan
    seconds: tuple = (math.nan,) * 3         # @seconds: the prune task's wall time, (median, min, max)
    search_seconds: tuple = (math.nan,) * 3  # @search_seconds: finding the plan (the search, depgraph/
                                             # growreg's regularisation, a criterion's ranking), same
    timed_n: int = 0                         # runs behind the two: those that ran in one launch


@dataclasses.dataclass
class Row:
    dataset: str
    arch: str
    budget: float
    dense_top1_mean: float
    dense_top1_std: float
    cells: dict              # method -> Cell
    best: list               # methods with the best mean top-1 (ties: all)
    dense_n: int = 0         # dense models behind the row's runs


def _mean_std(xs):
    xs = np.asarray(xs, dtype=np.float64)
    return float(xs.mean()), (float(xs.std(ddof=1)) if xs.size > 1 else float("nan"))


def _median_range(xs):
    """(median, min, max): wall times on a shared machine have a long upper tail."""
    if not len(xs):
        return (math.nan,) * 3
    xs = np.asarray(xs, dtype=np.float64)
    return float(np.median(xs)), float(xs.min()), float(xs.max())


def aggregate(result: runs_mod.ResultSet, decimals: int = 2):
    """Rows of the tables and the method order (first appearance in sorted order)."""
    by_cell = defaultdict(list)
    for r in result.runs:
        by_cell[(r.dataset, r.arch, r.budget, r.method)].append(r)
    # Cells are matched at 0.01 % of budget: the sweep journal records budgets as whole percents.
    excluded = defaultdict(int)
    for p in result.problems:
        try:
            key = (p.attrs["dataset"], p.attrs["arch"], round(100 * float(p.attrs["budget"]), 2), p.attrs["method"])
        except (KeyError, TypeError, ValueError):
            continue
        excluded[key] += 1
    exact = {(k[0], k[1], round(100 * k[2], 2), k[3]): k[2] for k in by_cell}
    excluded = {(k[0], k[1], exact.get(k, k[2] / 100), k[3]): v for k, v in excluded.items()}
    excluded = {k: v for k, v in excluded.items() if k[3] != "(dense)"}
    methods = sorted({k[3] for k in by_cell} | {k[3] for k in excluded}, key=_method_order)
    row_keys = sorted({k[:3] for k in by_cell} | {k[:3] for k in excluded}, key=lambda k: (k[0], k[1], -k[2]))
    rows = []
    for ds, arch, b in row_keys:
        cells = {}
        dense = {}
        for m in methods:
            rs = sorted(by_cell.get((ds, arch, b, m), []), key=lambda r: r.seed)
            for r in rs:
                dense[r.attrs["dense_id"]] = float(r.summary["dense_top1"])
            if not rs:
                if excluded.get((ds, arch, b, m)):
                    cells[m] = Cell([], math.nan, math.nan, math.nan, math.nan, math.nan, 0, excluded[(ds, arch, b, m)])
                continue
            t_mean, t_std = _mean_std([100 * r.top1 for r in rs])
            s_mean, s_std = _mean_std([float(r.summary["speedup"]) for r in rs])
            mr, mr_std = _mean_std([float(r.summary["mac_ratio"]) for r in rs])
            pr, pr_std = _mean_std([float(r.summary["params"]) / float(r.summary["dense_params"]) for r in rs])
            dl, dl_std = _mean_std([100 * (r.top1 - float(r.summary["dense_top1"])) for r in rs])
            missed = sum(1 for r in rs if int(r.summary.get("budget_met", 1)) == 0)
            # Run files written before the interleaved speed-up lack the flag: not flagged.
            unreliable = sum(1 for r in rs if int(r.summary.get("speedup_unreliable", 0)) == 1)
            # The structure probe: only run files written with eval.probe_batches > 0 hold it.
            probed = [r for r in rs if "probe_val_top1" in r.summary]
            pb, pb_std = _mean_std([100 * float(r.summary["probe_val_top1"]) for r in probed]) if probed else (math.nan, math.nan)
            vl, vl_std = _mean_std([100 * float(r.summary["val_top1"]) for r in probed]) if probed else (math.nan, math.nan)
            # A resumed task's file times only its last launch: its wall times would understate.
            timed = [r for r in rs if r.whole_wall_time]
            sec = _median_range([float(r.attrs.get("seconds", math.nan)) for r in timed])
            srch = _median_range([float(r.attrs.get("search_seconds", math.nan)) for r in timed])
            cells[m] = Cell(rs, t_mean, t_std, s_mean, s_std, mr, len(rs), excluded.get((ds, arch, b, m), 0), missed,
                            mac_ratio_std=mr_std, params_ratio_mean=pr, params_ratio_std=pr_std, delta_mean=dl,
                            delta_std=dl_std, unreliable_speedup=unreliable, probe_mean=pb, probe_std=pb_std,
                            probe_n=len(probed), val_mean=vl, val_std=vl_std, seconds=sec, search_seconds=srch,
                            timed_n=len(timed))
        d_mean, d_std = _mean_std([100 * v for v in dense.values()]) if dense else (math.nan, math.nan)
        scored = {m: round(c.top1_mean, decimals) for m, c in cells.items() if c.n}
        top = max(scored.values()) if scored else None
        best = [m for m, v in scored.items() if v == top] if len(scored) > 1 else []
        rows.append(Row(ds, arch, b, d_mean, d_std, cells, best, len(dense)))
    return rows, methods


def _method_order(m):
    # PASS first, its ablations next, then baselines alphabetically.
    if m == "pass":
        return (0, m)
    if m.startswith("pass"):
        return (1, m)
    return (2, m)


def _fmt(mean, std, d=2):
    if math.isnan(mean):
        return "–"
    return f"{mean:.{d}f}" if math.isnan(std) else f"{mean:.{d}f} ± {std:.{d}f}"


def _marks(c: Cell) -> str:
    return (DAGGER if c.n_excluded else "") + (DDAGGER if c.missed_budget else "")


def _speed_mark(c: Cell) -> str:
    return UNRELIABLE if c.unreliable_speedup else ""


def _budget_pct(b):
    return f"{100 * b:g}%"


# ---- Markdown ---------------------------------------------------------------------------------

def usual_n(rows) -> int:
    """The most common number of seeds per cell; cells with another count are annotated."""
    ns = [c.n for r in rows for c in r.cells.values() if c.n]
    return max(set(ns), key=ns.count) if ns else 0


def markdown_table(rows, methods, decimals=2) -> str:
    n_usual = usual_n(rows)
    head = ["dataset", "arch", "MAC budget", "dense top-1"]
    for m in methods:
        head += [f"{m} top-1", f"{m} speed-up"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * (1 + 2 * len(methods))) + "|"]
    for r in rows:
        cells = [r.dataset, r.arch, _budget_pct(r.budget), _fmt(r.dense_top1_mean, r.dense_top1_std, decimals)]
        for m in methods:
            c = r.cells.get(m)
            if c is None:
                cells += ["–", "–"]
                continue
            acc = _fmt(c.top1_mean, c.top1_std, decimals)
            if c.n and m in r.best:
                acc = f"**{acc}**"
            if c.n and c.n != n_usual:
                acc += f" (n={c.n})"
            acc += _marks(c)
            cells += [acc, "–" if not c.n else f"{c.speedup_mean:.2f}×{_speed_mark(c)}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def budget_table(rows, methods, decimals=2) -> str:
    """Test top-1 with methods as rows and budgets as columns, one block per dataset x arch: the
    layout of a paper's table, readable with many methods. Same cells and marks as markdown_table."""
    n_usual = usual_n(rows)
    out = []
    for ds, arch in sorted({(r.dataset, r.arch) for r in rows}):
        block = [r for r in rows if (r.dataset, r.arch) == (ds, arch)]  # budgets descending (aggregate)
        out += [f"**{ds}, {arch}**", "",
                "| method | " + " | ".join(f"{_budget_pct(r.budget)} MACs" for r in block) + " |",
                "|---|" + "---:|" * len(block)]
        out.append("| dense | " + " | ".join(_fmt(r.dense_top1_mean, r.dense_top1_std, decimals) for r in block) + " |")
        for m in methods:
            if not any(m in r.cells for r in block):
                continue
            cells = []
            for r in block:
                c = r.cells.get(m)
                if c is None:
                    cells.append("–")
                    continue
                acc = "–" if not c.n else _fmt(c.top1_mean, c.top1_std, decimals)
                if c.n and m in r.best:
                    acc = f"**{acc}**"
                if c.n and c.n != n_usual:
                    acc += f" (n={c.n})"
                cells.append(acc + _marks(c))
            out.append(f"| {m} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _signed(mean, std, d=2):
    if math.isnan(mean):
        return "–"
    return f"{mean:+.{d}f}" if math.isnan(std) else f"{mean:+.{d}f} ± {std:.{d}f}"


def _fmt_range(median_min_max, d, n, timed_n):
    """A wall time cell: the median, [min–max] when the seeds differ, (n=k) when k of the cell's
    n runs ran in one launch (the others were resumed, so their files time only the last one)."""
    med, lo, hi = median_min_max
    if math.isnan(med):
        return "– (resumed)" if n and not timed_n else "–"
    cell = f"{med:.{d}f}" if f"{lo:.{d}f}" == f"{hi:.{d}f}" else f"{med:.{d}f} [{lo:.{d}f}–{hi:.{d}f}]"
    return cell + (f" (n={timed_n})" if timed_n < n else "")


def method_table(rows, methods, decimals=2) -> str:
    """The cells of markdown_table one line per method: narrow enough to read with many methods."""
    lines = ["| dataset | arch | MAC budget | method | n | top-1 (%) | vs dense (pt) | MACs kept (%) | "
             "params kept (%) | finding the plan (s) | task (s) | speed-up |",
             "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.dataset} | {r.arch} | {_budget_pct(r.budget)} | dense | {r.dense_n} | "
                     f"{_fmt(r.dense_top1_mean, r.dense_top1_std, decimals)} | | 100 | 100 | | | 1× |")
        for m in methods:
            c = r.cells.get(m)
            if c is None:
                continue
            if not c.n:
                lines.append(f"| {r.dataset} | {r.arch} | {_budget_pct(r.budget)} | {m} | 0 | –{_marks(c)} | – | – | – | – | – | – |")
                continue
            acc = _fmt(c.top1_mean, c.top1_std, decimals)
            if m in r.best:
                acc = f"**{acc}**"
            lines.append("| " + " | ".join([
                r.dataset, r.arch, _budget_pct(r.budget), m, str(c.n), acc + _marks(c),
                _signed(c.delta_mean, c.delta_std, decimals),
                _fmt(100 * c.mac_ratio_mean, 100 * c.mac_ratio_std, decimals),
                _fmt(100 * c.params_ratio_mean, 100 * c.params_ratio_std, 1),
                _fmt_range(c.search_seconds, 1, c.n, c.timed_n), _fmt_range(c.seconds, 0, c.n, c.timed_n),
                _fmt(c.speedup_mean, c.speedup_std, decimals) + "×" + _speed_mark(c)]) + " |")
    return "\n".join(lines) + "\n"


def probe_table(rows, methods, decimals=2) -> str:
    """The structure probe per cell, or "" when no run holds one."""
    if not any(c.probe_n for r in rows for c in r.cells.values()):
        return ""
    lines = ["| dataset | arch | MAC budget | method | n | probe val top-1 (%) | fine-tuned val top-1 (%) |",
             "|---|---|---|---|---:|---:|---:|"]
    for r in rows:
        for m in methods:
            c = r.cells.get(m)
            if c is None or not c.probe_n:
                continue
            lines.append("| " + " | ".join([r.dataset, r.arch, _budget_pct(r.budget), m, str(c.probe_n),
                                            _fmt(c.probe_mean, c.probe_std, decimals),
                                            _fmt(c.val_mean, c.val_std, decimals)]) + " |")
    return "\n".join(lines) + "\n"


PROBE_LEGEND = ("Validation top-1 of each keep plan right after slicing, before the fine-tune, with BatchNorm "
                "recalibrated on a few training batches (summary@probe_val_top1; `passlab probe` recomputes it), "
                "beside the same runs' validation top-1 after the fine-tune; mean ± std over the runs that hold it.")


# ---- LaTeX ------------------------------------------------------------------------------------

def _tex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#")):
        s = s.replace(a, b)
    return s


def latex_table(rows, methods, decimals=2) -> str:
    n_usual = usual_n(rows)
    cols = "lll r" + " rr" * len(methods)
    out = [r"% passlab: test top-1 (%) mean $\pm$ std over seeds; speed-up = dense / pruned latency (measured; ? flagged unreliable).",
           r"% Needs \usepackage{booktabs}.", r"\begin{tabular}{" + cols + "}", r"\toprule"]
    h1 = ["", "", "", ""] + [r"\multicolumn{2}{c}{" + _tex_escape(m) + "}" for m in methods]
    out.append(" & ".join(h1) + r" \\")
    rules = " ".join(rf"\cmidrule(lr){{{5 + 2 * i}-{6 + 2 * i}}}" for i in range(len(methods)))
    out.append(rules)
    h2 = ["Dataset", "Arch", "Budget", "Dense"] + ["Top-1", r"$\times$"] * len(methods)
    out.append(" & ".join(h2) + r" \\")
    out.append(r"\midrule")
    for r in rows:
        cells = [_tex_escape(r.dataset), _tex_escape(r.arch), _tex_escape(_budget_pct(r.budget)),
                 _fmt(r.dense_top1_mean, r.dense_top1_std, decimals).replace("±", r"$\pm$")]
        for m in methods:
            c = r.cells.get(m)
            if c is None or not c.n:
                cells += ["--" + (r"$^\dagger$" if c is not None else ""), "--"]
                continue
            acc = _fmt(c.top1_mean, c.top1_std, decimals).replace("±", r"$\pm$")
            if m in r.best:
                acc = r"\textbf{" + acc + "}"
            if c.n != n_usual:
                acc += f" ($n$={c.n})"
            if c.n_excluded:
                acc += r"$^\dagger$"
            if c.missed_budget:
                acc += r"$^\ddagger$"
            cells += [acc, f"{c.speedup_mean:.2f}{_speed_mark(c)}"]
        out.append(" & ".join(cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n"


# ---- CSV --------------------------------------------------------------------------------------

def _num(x):
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else repr(float(x)) if isinstance(x, float) else x


def write_tables_csv(path, rows, methods):
    head = ["dataset", "arch", "budget", "dense_top1_mean", "dense_top1_std"]
    for m in methods:
        head += [f"{m}_top1_mean", f"{m}_top1_std", f"{m}_n", f"{m}_speedup_mean", f"{m}_speedup_std",
                 f"{m}_mac_ratio_mean", f"{m}_excluded", f"{m}_missed_budget"]
    head.append("best_method")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(head)
        for r in rows:
            line = [r.dataset, r.arch, repr(r.budget), _num(r.dense_top1_mean), _num(r.dense_top1_std)]
            for m in methods:
                c = r.cells.get(m)
                if c is None:
                    line += ["", "", 0, "", "", "", 0, 0]
                else:
                    line += [_num(c.top1_mean), _num(c.top1_std), c.n, _num(c.speedup_mean), _num(c.speedup_std),
                             _num(c.mac_ratio_mean), c.n_excluded, c.missed_budget]
            line.append(";".join(r.best))
            w.writerow(line)


METHOD_COLUMNS = ["dataset", "arch", "budget", "method", "n", "top1_mean", "top1_std", "delta_dense_mean",
                  "delta_dense_std", "mac_ratio_mean", "mac_ratio_std", "params_ratio_mean", "params_ratio_std",
                  "speedup_mean", "speedup_std", "speedup_unreliable", "excluded", "missed_budget",
                  "probe_val_top1_mean", "probe_val_top1_std", "probe_n", "search_seconds_median", "search_seconds_min",
                  "search_seconds_max", "seconds_median", "seconds_min", "seconds_max", "timed_n", "best"]


def write_methods_csv(path, rows, methods):
    """One line per dataset x arch x budget x method (cells with runs or excluded runs only)."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(METHOD_COLUMNS)
        for r in rows:
            for m in methods:
                c = r.cells.get(m)
                if c is None:
                    continue
                w.writerow([r.dataset, r.arch, repr(r.budget), m, c.n] + [_num(x) for x in (
                    c.top1_mean, c.top1_std, c.delta_mean, c.delta_std, c.mac_ratio_mean, c.mac_ratio_std,
                    c.params_ratio_mean, c.params_ratio_std, c.speedup_mean, c.speedup_std)] +
                    [c.unreliable_speedup, c.n_excluded, c.missed_budget, _num(c.probe_mean), _num(c.probe_std),
                     c.probe_n] + [_num(x) for x in c.search_seconds + c.seconds] + [c.timed_n, int(m in r.best)])


RUN_COLUMNS = ["run_id", "dataset", "arch", "budget", "method", "seed", "top1", "top5", "test_loss", "val_top1",
               "probe_val_top1", "probe_batches",
               "dense_top1", "macs", "dense_macs", "mac_ratio", "ops_full", "dense_ops_full", "params",
               "dense_params", "budget_met", "latency_dense_ms", "latency_pruned_ms", "speedup", "speedup_spread",
               "speedup_rounds", "speedup_unreliable", "load_1min_start", "load_1min_end", "cores", "latency_batch",
               "latency_device", "speedup_source", "search_seconds", "finetune_seconds", "seconds", "world_size",
               "device", "path"]


def write_runs_csv(path, result, out_dir):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(RUN_COLUMNS)
        for r in result.runs:
            src = {"speedup_source": "run file", **r.attrs, **r.summary}
            line = []
            for k in RUN_COLUMNS:
                if k == "path":
                    line.append(runs_mod.relpath(r.path, out_dir))
                else:
                    v = src.get(k, "")
                    line.append(repr(v) if isinstance(v, float) else v)
            w.writerow(line)


EXCLUDED_COLUMNS = ["status", "run_id", "dataset", "arch", "budget", "method", "seed", "reason", "path"]


def write_excluded_csv(path, result, out_dir):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(EXCLUDED_COLUMNS)
        for p in result.problems:
            w.writerow([p.status] + [p.get(k) for k in EXCLUDED_COLUMNS[1:7]] + [p.reason, runs_mod.relpath(p.path, out_dir)])


def excluded_markdown(result, out_dir) -> str:
    if not result.problems:
        return "None: every run file found is complete.\n"
    lines = ["| status | run id | dataset | arch | MAC budget | method | seed | reason | file |",
             "|---|---|---|---|---|---|---|---|---|"]
    for p in result.problems:
        b = p.get("budget")
        lines.append("| " + " | ".join(str(x) for x in [
            p.status, p.get("run_id"), p.get("dataset"), p.get("arch"), _budget_pct(float(b)) if b != "" else "",
            p.get("method"), p.get("seed"), p.reason.replace("|", "\\|").replace("\n", " "),
            runs_mod.relpath(p.path, out_dir)]) + " |")
    return "\n".join(lines) + "\n"


LEGEND = ("Test top-1 (%) as mean ± std over {n} seed(s) per cell (other counts marked n=k; no ± with one "
          f"seed); **bold**: best mean "
          f"top-1 of the row. Speed-up: median over interleaved rounds of dense / pruned latency as measured "
          f"by passlab (mean over seeds); {UNRELIABLE}: some runs of the cell flagged it unreliable (per-round ratios "
          f"spread more than eval.speedup_max_spread). {DAGGER}: runs of this cell failed or are incomplete (below, not averaged in). "
          f"{DDAGGER}: some runs missed the MAC budget.")


def write_report(results_dir, out_dir, on_damaged="raise", plots=True, decimals=2, speedups="auto", measured_on=None):
    """Write tables, CSVs, plots and index.md; returns (ResultSet, rows, methods, plot paths).

    speedups: "auto" takes the speed-ups of <results_dir>/measurements.h5 where it holds the run
    (machine: ``measured_on``, else the one that measured most runs), "run-files" ignores that file.
    The ResultSet's ``speedup_source`` (a measurements.Source) says what was used."""
    from . import plots as plots_mod

    if speedups not in ("auto", "run-files"):
        raise ValueError("speedups must be 'auto' or 'run-files'")
    out = Path(out_dir)
    # Read and check everything first: a refused directory leaves no output folder behind.
    result = runs_mod.scan(results_dir, on_damaged=on_damaged)
    source = measurements_mod.apply(result, measured_on, use=speedups == "auto")
    out.mkdir(parents=True, exist_ok=True)
    result.speedup_source = source  # for the caller's message; ResultSet itself stays the scan's
    rows, methods = aggregate(result, decimals)
    md = markdown_table(rows, methods, decimals)
    by_budget = budget_table(rows, methods, decimals)
    per_method = ("One line per method; vs dense: top-1 minus the run's own dense model's top-1, mean ± std "
                  "over seeds; MACs and parameters kept as a percentage of the dense model's; the two wall times "
                  "(seconds) as median [min–max] over seeds, since other work on the machine only ever "
                  "lengthens them, and over the runs that ran in one launch ((n=k) when fewer than the "
                  "cell's runs): a resumed task's file times only its last launch.\n\n"
                  + method_table(rows, methods, decimals))
    excl = excluded_markdown(result, out)
    legend = LEGEND.replace("{n}", str(usual_n(rows)))
    where = sorted({(str(r.summary.get("latency_device", "?")), int(r.summary.get("latency_batch", 0))) for r in result.runs})
    if where:
        legend += " Latency measured on " + "; ".join(f"{d}, batch {b}" for d, b in where) + "."
    legend += " " + source.describe()
    probe = probe_table(rows, methods, decimals)
    probe = "## Structure probe\n\n" + PROBE_LEGEND + "\n\n" + probe + "\n" if probe else ""
    (out / "tables.md").write_text("# Results\n\n" + legend + "\n\n" + md + "\n## Methods by budget\n\n" + by_budget
                                   + "\n## Per method\n\n" + per_method
                                   + "\n" + probe + "## Runs not in the tables\n\n" + excl)
    (out / "tables.tex").write_text(latex_table(rows, methods, decimals))
    write_tables_csv(out / "tables.csv", rows, methods)
    write_methods_csv(out / "methods.csv", rows, methods)
    write_runs_csv(out / "runs.csv", result, out)
    write_excluded_csv(out / "excluded.csv", result, out)
    written = plots_mod.write_all(result, rows, methods, out / "plots") if plots else []
    idx = ["# passlab report", "", f"Results: `{results_dir}` — {len(result.runs)} complete runs, "
           f"{len(result.problems)} not in the tables.", "",
           "Files: `tables.md`, `tables.tex`, `tables.csv` (one row per dataset × arch × budget), `runs.csv` "
           "(every complete run), `excluded.csv` (runs not in the tables), `methods.csv` (one line per method and "
           "row), `plots/` (PNG and PDF).", "",
           "## Table", "", legend, "", md, "## Methods by budget", "", by_budget, "## Per method", "", per_method] + ([probe] if probe else []) + [
           "## Runs not in the tables", "", excl, "## Plots", ""]
    for p in written:
        if p.suffix == ".png":
            idx.append(f"![{p.stem}](plots/{p.name})")
            idx.append("")
    (out / "index.md").write_text("\n".join(idx) + "\n")
    return result, rows, methods, written
