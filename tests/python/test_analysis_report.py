"""python -m analysis report on the run files of a tiny real sweep (conftest.analysis_sweep).

Expected numbers are computed here straight from the run files with h5py, independently of
analysis/runs.py and analysis/report.py.
"""
import csv
import math
import pathlib
import shutil
import subprocess
import sys
from collections import defaultdict

import h5py
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from analysis.__main__ import main  # noqa: E402


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def analysis(capsys, *args):
    """`python -m analysis ARGS`, in this process (no interpreter start-up per call)."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return Result(code, out.out, out.err)


def s(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def read_runs(results):
    """run_id -> root attrs + summary attrs, read with h5py."""
    out = {}
    for p in sorted((results / "runs").glob("*.h5")):
        with h5py.File(p, "r") as f:
            if s(f.attrs["status"]) != "complete":
                continue
            d = {k: f.attrs[k] for k in ("method", "arch", "dataset", "budget", "seed", "dense_id", "seconds", "search_seconds")}
            d = {k: (s(v) if isinstance(v, (bytes, str)) else v.item()) for k, v in d.items()}
            d.update({k: float(v) for k, v in f["summary"].attrs.items() if k not in ("latency_device", "speedup_form")})
            d["keep"] = {g: int(f["keep"][g].shape[0]) for g in f["keep"]}
            d["width"] = {g: int(f["masks"][g].shape[0]) for g in f["masks"]}
            out[s(f.attrs["run_id"])] = d
    return out


def expected_cells(runs):
    cells = defaultdict(list)
    for rid, r in runs.items():
        cells[(r["dataset"], r["arch"], r["budget"], r["method"])].append(r)
    return cells


def sd(xs):
    return float(np.std(xs, ddof=1)) if len(xs) > 1 else math.nan


@pytest.fixture(scope="module")
def report(analysis_sweep, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert main(["report", str(analysis_sweep["results"]), "--out", str(out)]) == 0
    return out


def close(a, b, tol=1e-9):
    if a == "" or (isinstance(b, float) and math.isnan(b)):
        return a == "" and (isinstance(b, float) and math.isnan(b))
    return abs(float(a) - b) <= tol * max(1.0, abs(b))


def fmt(xs):
    return f"{np.mean(xs):.2f}" if len(xs) == 1 else f"{np.mean(xs):.2f} ± {sd(xs):.2f}"


def assert_wall_times(line, rs):
    """methods.csv's two wall-time columns of a cell: median, min and max over the runs rs."""
    for col in ("seconds", "search_seconds"):
        xs = [r[col] for r in rs]
        for stat, f in (("median", np.median), ("min", np.min), ("max", np.max)):
            assert close(line[f"{col}_{stat}"], float(f(xs)), 1e-6), (col, stat)


def test_tables_hold_the_files_numbers(analysis_sweep, report):
    runs = read_runs(analysis_sweep["results"])
    # 8 runs of pass/l1_global; the random_uniform task is complete only where failures cannot be injected.
    assert len(runs) == (8 if analysis_sweep["injected"] else 9)
    cells = expected_cells(runs)
    methods = sorted({k[3] for k in cells})
    with open(report / "tables.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len({k[:3] for k in cells}) == 2
    md = (report / "tables.md").read_text()
    tex = (report / "tables.tex").read_text()
    checked = 0
    for row in rows:
        key = (row["dataset"], row["arch"], float(row["budget"]))
        dense = {}
        best, best_v = [], -1.0
        for m in methods:
            rs = cells.get(key + (m,), [])
            assert int(row[f"{m}_n"]) == len(rs)
            if not rs:
                continue
            top1 = [100 * r["top1"] for r in rs]
            assert close(row[f"{m}_top1_mean"], float(np.mean(top1)))
            assert close(row[f"{m}_top1_std"], sd(top1))
            assert close(row[f"{m}_speedup_mean"], float(np.mean([r["speedup"] for r in rs])))
            assert close(row[f"{m}_mac_ratio_mean"], float(np.mean([r["mac_ratio"] for r in rs])))
            for r in rs:
                dense[r["dense_id"]] = 100 * r["dense_top1"]
            v = round(float(np.mean(top1)), 2)
            if v > best_v:
                best, best_v = [m], v
            elif v == best_v:
                best.append(m)
            # The same numbers, formatted, in Markdown and LaTeX.
            assert fmt(top1) in md, fmt(top1)
            assert fmt(top1).replace("±", r"$\pm$") in tex
            checked += len(rs)
        assert close(row["dense_top1_mean"], float(np.mean(list(dense.values()))))
        assert sorted(row["best_method"].split(";")) == sorted(best)
        for m in best:
            t = [100 * r["top1"] for r in cells[key + (m,)]]
            assert f"**{fmt(t)}**" in md
            assert r"\textbf{" + fmt(t).replace("±", r"$\pm$") + "}" in tex
    assert checked == len(runs)


def test_methods_by_budget_block_holds_the_files_numbers(analysis_sweep, report):
    """tables.md's "Methods by budget": per dataset x arch, one line per method, one column per
    budget (descending), each cell the formatted top-1 of that method's runs at that budget."""
    runs = read_runs(analysis_sweep["results"])
    cells = expected_cells(runs)
    md = (report / "tables.md").read_text()
    block = md[md.index("## Methods by budget"):md.index("## Per method")]
    checked = 0
    for ds, arch in {(k[0], k[1]) for k in cells}:
        part = block[block.index(f"**{ds}, {arch}**"):]
        budgets = sorted({k[2] for k in cells if k[:2] == (ds, arch)}, reverse=True)
        header = next(l for l in part.splitlines() if l.startswith("| method |"))
        assert header == "| method | " + " | ".join(f"{100 * b:g}% MACs" for b in budgets) + " |", header
        for m in {k[3] for k in cells if k[:2] == (ds, arch)}:
            line = next(l for l in part.splitlines() if l.startswith(f"| {m} |"))
            cols = [c.strip() for c in line.strip("|").split("|")][1:]
            for b, col in zip(budgets, cols):
                rs = cells.get((ds, arch, b, m), [])
                if rs:
                    assert fmt([100 * r["top1"] for r in rs]) in col, (m, b, col)
                    checked += len(rs)
    assert checked == len(runs)


def test_methods_csv_and_per_method_lines_hold_the_files_numbers(analysis_sweep, report):
    runs = read_runs(analysis_sweep["results"])
    cells = expected_cells(runs)
    with open(report / "methods.csv") as f:
        lines = list(csv.DictReader(f))
    by_key = {(l["dataset"], l["arch"], float(l["budget"]), l["method"]): l for l in lines}
    md = (report / "tables.md").read_text()
    per_method = md[md.index("## Per method"):md.index("## Runs not in the tables")]
    assert {k for k in by_key if int(by_key[k]["n"])} == set(cells)
    for key, rs in cells.items():
        l = by_key[key]
        assert int(l["n"]) == len(rs)
        top1 = [100 * r["top1"] for r in rs]
        delta = [100 * (r["top1"] - r["dense_top1"]) for r in rs]
        macs = [r["macs"] / r["dense_macs"] for r in rs]
        params = [r["params"] / r["dense_params"] for r in rs]
        speed = [r["speedup"] for r in rs]  # the median per-round ratio, not a ratio of the two medians
        seconds, search = [r["seconds"] for r in rs], [r["search_seconds"] for r in rs]
        for col, xs in (("top1", top1), ("delta_dense", delta), ("mac_ratio", macs), ("params_ratio", params),
                        ("speedup", speed)):
            assert close(l[f"{col}_mean"], float(np.mean(xs)), 1e-6), (key, col)
            assert close(l[f"{col}_std"], sd(xs), 1e-6), (key, col)
        # Wall times: median, min and max over seeds (a shared machine only ever lengthens them).
        assert_wall_times(l, rs)
        # The Markdown line of the cell carries the same formatted numbers.
        line = next(x for x in per_method.splitlines()
                    if x.startswith(f"| {key[0]} | {key[1]} | {100 * key[2]:g}% | {key[3]} |"))
        assert fmt(top1) in line
        d = f"{np.mean(delta):+.2f}" + ("" if len(rs) == 1 else f" ± {sd(delta):.2f}")
        assert d in line, (d, line)
        assert f"{100 * np.mean(macs):.2f}" in line
        def time_cell(xs, d):
            med, lo, hi = (f"{f(xs):.{d}f}" for f in (np.median, np.min, np.max))
            return med if lo == hi else f"{med} [{lo}–{hi}]"
        assert f"| {time_cell(search, 1)} | {time_cell(seconds, 0)} |" in line, line
        # Runs that flagged their speed-up unreliable are counted and mark the cell's speed-up "?".
        flagged = sum(1 for r in rs if int(r.get("speedup_unreliable", 0)) == 1)
        assert int(l["speedup_unreliable"]) == flagged, key
        assert line.rstrip(" |").endswith("×?") == (flagged > 0), line


def test_a_resumed_task_is_left_out_of_the_wall_times(analysis_sweep, tmp_path, capsys):
    """A task the sweep started twice (relaunched after a kill, or retried) wrote the wall time of
    its last launch only: the cell's two wall times come from its other runs, marked (n=k)."""
    src = analysis_sweep["results"]
    res = tmp_path / "results"
    shutil.copytree(src, res)
    runs = read_runs(src)
    cells = expected_cells(runs)
    key, rs = next((k, v) for k, v in sorted(cells.items()) if len(v) >= 2)
    resumed = next(rid for rid, r in sorted(runs.items()) if r is rs[0])
    # What sweep/results.cpp appends when a relaunch starts the task again.
    with open(res / "journal.tsv", "a") as f:
        f.write(f"2026-11-30T12:00:00Z\thost 1 2 g0\tstart\t{resumed}\t{key[3]} {100 * key[2]:g}% {key[1]} "
                f"{key[0]} seed {rs[0]['seed']} attempt 1\n")
    out = tmp_path / "report"
    assert analysis(capsys, "report", res, "--out", out).returncode == 0
    with open(out / "methods.csv") as f:
        line = next(l for l in csv.DictReader(f)
                    if (l["dataset"], l["arch"], float(l["budget"]), l["method"]) == key)
    whole = rs[1:]
    assert int(line["n"]) == len(rs) and int(line["timed_n"]) == len(whole)
    assert_wall_times(line, whole)
    md = (out / "tables.md").read_text()
    row = next(x for x in md[md.index("## Per method"):].splitlines()
               if x.startswith(f"| {key[0]} | {key[1]} | {100 * key[2]:g}% | {key[3]} |"))
    assert row.count(f"(n={len(whole)})") == 2, row
    # The top-1 still averages every run: only the wall times are partial.
    assert fmt([100 * r["top1"] for r in rs]) in row


def test_structure_probe_section_holds_the_files_numbers(analysis_sweep, report):
    """Every run of the sweep probed its plan (eval.probe_batches defaults to 20): the probe's
    validation top-1 per cell in methods.csv and in tables.md's "Structure probe" section."""
    runs = read_runs(analysis_sweep["results"])
    cells = expected_cells(runs)
    assert all("probe_val_top1" in r for r in runs.values())
    with open(report / "methods.csv") as f:
        by_key = {(l["dataset"], l["arch"], float(l["budget"]), l["method"]): l for l in csv.DictReader(f)}
    md = (report / "tables.md").read_text()
    section = md[md.index("## Structure probe"):md.index("## Runs not in the tables")]
    for key, rs in cells.items():
        probe = [100 * r["probe_val_top1"] for r in rs]
        val = [100 * r["val_top1"] for r in rs]
        l = by_key[key]
        assert int(l["probe_n"]) == len(rs)
        assert close(l["probe_val_top1_mean"], float(np.mean(probe)), 1e-6), key
        assert close(l["probe_val_top1_std"], sd(probe), 1e-6), key
        line = next(x for x in section.splitlines() if x.startswith(f"| {key[0]} | {key[1]} | {100 * key[2]:g}% | {key[3]} |"))
        assert line == f"| {key[0]} | {key[1]} | {100 * key[2]:g}% | {key[3]} | {len(rs)} | {fmt(probe)} | {fmt(val)} |", line


def test_paired_differences_and_kept_shares_match_the_files(analysis_sweep, capsys):
    from analysis import paired as paired_mod
    from analysis import runs as runs_mod
    runs = read_runs(analysis_sweep["results"])
    top1 = {(r["budget"], r["method"], r["seed"]): 100 * r["top1"] for r in runs.values()}
    result = runs_mod.scan(analysis_sweep["results"], on_damaged="list")
    rows = paired_mod.paired(result, "pass")
    assert rows
    for b, m, mean, sdev, ahead, n in rows:
        d = [top1[(b, "pass", s)] - top1[(b, m, s)] for (bb, mm, s) in top1 if bb == b and mm == m
             and (b, "pass", s) in top1]
        assert n == len(d) and ahead == sum(x > 0 for x in d)
        assert math.isclose(mean, float(np.mean(d)), abs_tol=1e-9)
        assert close("" if len(d) == 1 else sdev, sd(d))
    budget = sorted({r["budget"] for r in runs.values()})[0]
    shares = paired_mod.kept_shares(result, budget)
    for m, per_run in shares.items():
        want = sorted(sorted(100 * r["keep"][g] / r["width"][g] for g in r["keep"])
                      for r in runs.values() if r["method"] == m and r["budget"] == budget)
        got = sorted(sorted(100 * x[g] for g in x) for x in per_run)
        assert np.allclose(got, want)
    assert paired_mod.main([str(analysis_sweep["results"])]) == 0
    assert "pass minus method" in capsys.readouterr().out


def test_runs_csv_lists_every_run(analysis_sweep, report):
    runs = read_runs(analysis_sweep["results"])
    with open(report / "runs.csv") as f:
        got = {r["run_id"]: r for r in csv.DictReader(f)}
    assert set(got) == set(runs)
    for rid, r in runs.items():
        for k in ("top1", "macs", "dense_macs", "speedup", "mac_ratio", "test_loss", "probe_val_top1", "probe_batches"):
            assert close(got[rid][k], r[k]), (rid, k)
        assert got[rid]["method"] == r["method"] and int(got[rid]["seed"]) == r["seed"]
    with open(report / "excluded.csv") as f:
        ex = list(csv.DictReader(f))
    assert len(ex) == (1 if analysis_sweep["injected"] else 0)


def test_real_failure_record_is_listed(analysis_sweep, report):
    """The task the sweep was made to fail: listed with passlab's error, its cell marked, not averaged."""
    if not analysis_sweep["injected"]:
        pytest.skip("this passlab binary does not inject failures (PASSLAB_TEST_FAIL_TASK)")
    fid = analysis_sweep["failed_id"]
    with h5py.File(analysis_sweep["results"] / "runs" / f"{fid}.h5", "r") as f:
        assert s(f.attrs["status"]) == "failed"
        error = s(f.attrs["error"])
    with open(report / "excluded.csv") as f:
        (e,) = list(csv.DictReader(f))
    assert e["run_id"] == fid and e["status"] == "failed" and e["method"] == "random_uniform"
    assert e["reason"] == error and "injected failure" in error
    with open(report / "tables.csv") as f:
        row = next(r for r in csv.DictReader(f) if float(r["budget"]) == 0.6)
    assert row["random_uniform_n"] == "0" and row["random_uniform_excluded"] == "1"
    assert row["random_uniform_top1_mean"] == ""
    md = (report / "tables.md").read_text()
    assert "| –† |" in md and fid in md


def test_every_plot_is_written(analysis_sweep, report):
    stems = ["acc_vs_macs_fashion_mnist_resnet20", "layer_profile_fashion_mnist_resnet20_b60",
             "layer_profile_fashion_mnist_resnet20_b40", "search_curves_fashion_mnist_resnet20",
             "finetune_curves_fashion_mnist_resnet20"]
    plots = report / "plots"
    for st in stems:
        png, pdf = plots / f"{st}.png", plots / f"{st}.pdf"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
        assert pdf.read_bytes()[:5] == b"%PDF-", pdf
        assert png.stat().st_size > 10_000
        assert f"plots/{st}.png" in (report / "index.md").read_text()
    assert len(list(plots.iterdir())) == 2 * len(stems)


def test_failed_and_incomplete_runs_are_listed_not_averaged(analysis_sweep, tmp_path, capsys):
    src = analysis_sweep["results"]
    res = tmp_path / "results"
    shutil.copytree(src / "runs", res / "runs")
    runs = read_runs(src)
    files = sorted(p for p in (res / "runs").glob("*.h5") if p.stem in runs)
    cell = {p: (runs[p.stem]["method"], runs[p.stem]["budget"]) for p in files}
    size = {c: list(cell.values()).count(c) for c in cell.values()}
    failed = next(p for p in files if size[cell[p]] >= 2)  # a seed stays in the cell
    unfinished = next(p for p in files if size[cell[p]] >= 2 and cell[p] != cell[failed])  # another cell
    with h5py.File(failed, "a") as f:
        f.attrs["status"] = "failed"
        f.attrs["error"] = "simulated failure: out of memory"
    with h5py.File(unfinished, "a") as f:
        f.attrs["status"] = "incomplete"
    tmp = res / "runs" / "0123456789ab.h5.tmp"  # a writer killed mid-way
    shutil.copy(next(p for p in files if p not in (failed, unfinished)), tmp)
    with h5py.File(tmp, "a") as f:
        f.attrs["status"] = "incomplete"
    # The sweep journal (sweep/results.cpp: utc, holder, event, id, detail) names a task that
    # started and left nothing; a dense model whose training failed blocks its prune tasks.
    (res / "journal.tsv").write_text(
        "2026-11-27T09:00:00Z\thost:1\tstart\tabcdefabcdef\tpass 60% resnet20 fashion_mnist seed 7 attempt 1\n"
        "2026-11-27T09:00:01Z\thost:1\tstart\t" + failed.stem + "\tsomething attempt 1\n")
    (res / "dense").mkdir()
    dense_src = sorted((src / "dense").glob("*.h5"))[0]
    shutil.copy(dense_src, res / "dense" / dense_src.name)
    with h5py.File(res / "dense" / dense_src.name, "a") as f:
        f.attrs["status"] = "failed"
        f.attrs["error"] = "simulated: loss is NaN"
    out = tmp_path / "report"
    r = analysis(capsys, "report", res, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "not in the tables" in r.stderr and failed.name in r.stderr

    with open(out / "excluded.csv") as f:
        ex = {pathlib.Path(e["path"]).name: e for e in csv.DictReader(f)}
    assert ex[failed.name]["status"] == "failed" and "out of memory" in ex[failed.name]["reason"]
    assert ex[unfinished.name]["status"] == "incomplete"
    assert ex[tmp.name]["status"] == "incomplete"
    j = ex["abcdefabcdef.h5"]
    assert j["status"] == "incomplete" and j["method"] == "pass" and float(j["budget"]) == 0.6 and j["seed"] == "7"
    assert "no result file" in j["reason"]
    d = ex[dense_src.name]
    assert d["status"] == "failed" and "loss is NaN" in d["reason"] and "blocked" in d["reason"]
    with open(out / "runs.csv") as f:
        in_table = {e["run_id"] for e in csv.DictReader(f)}
    assert failed.stem not in in_table and unfinished.stem not in in_table and len(in_table) == len(runs) - 2

    # The cells of the excluded runs average only the remaining seed, and say so.
    ok = {rid: r for rid, r in runs.items() if rid not in (failed.stem, unfinished.stem)}
    cells = expected_cells(ok)
    with open(out / "tables.csv") as f:
        rows = list(csv.DictReader(f))
    for gone in (failed.stem, unfinished.stem):
        g = runs[gone]
        row = next(x for x in rows if float(x["budget"]) == g["budget"])
        m = g["method"]
        left = cells[(g["dataset"], g["arch"], g["budget"], m)]
        assert int(row[f"{m}_n"]) == len(left) and int(row[f"{m}_excluded"]) >= 1
        assert close(row[f"{m}_top1_mean"], float(np.mean([100 * r["top1"] for r in left])))
    md = (out / "tables.md").read_text()
    assert "†" in md and failed.name in md and "simulated failure" in md


def test_damaged_file_is_a_clear_error(analysis_sweep, tmp_path, capsys):
    res = tmp_path / "results"
    shutil.copytree(analysis_sweep["results"] / "runs", res / "runs")
    victim = sorted(p for p in (res / "runs").glob("*.h5") if p.stem in read_runs(analysis_sweep["results"]))[3]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 3])  # truncated, as by a full disk or a bad copy
    # The real command line, once: exit status and message as a user sees them.
    r = subprocess.run([sys.executable, "-m", "analysis", "report", str(res), "--out", str(tmp_path / "out")],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0
    assert str(victim) in r.stderr and "damaged" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists(), "a refused report left an output folder behind"

    # A file that is not HDF5 at all.
    junk = res / "runs" / "ffffffffffff.h5"
    junk.write_bytes(b"not an hdf5 file\n" * 10)
    victim.write_bytes(data)
    r = analysis(capsys, "report", res, "--out", tmp_path / "out")
    assert r.returncode != 0 and str(junk) in r.stderr and "cannot be opened as HDF5" in r.stderr

    # On request the report goes on and lists it.
    r = analysis(capsys, "report", res, "--out", tmp_path / "out2", "--list-damaged")
    assert r.returncode == 0, r.stderr
    with open(tmp_path / "out2" / "excluded.csv") as f:
        ex = list(csv.DictReader(f))
    damaged = [e for e in ex if e["status"] == "damaged"]
    assert len(damaged) == 1 and damaged[0]["path"].endswith(junk.name)


def test_complete_file_missing_its_summary_names_what_is_missing(analysis_sweep, tmp_path, capsys):
    res = tmp_path / "runs"
    shutil.copytree(analysis_sweep["results"] / "runs", res)
    victim = sorted(p for p in res.glob("*.h5") if p.stem in read_runs(analysis_sweep["results"]))[0]
    with h5py.File(victim, "a") as f:
        del f["summary"].attrs["top1"]
    r = analysis(capsys, "report", tmp_path, "--out", tmp_path / "out")
    assert r.returncode != 0 and str(victim) in r.stderr and "top1" in r.stderr
