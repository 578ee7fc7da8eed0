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
            d = {k: f.attrs[k] for k in ("method", "arch", "dataset", "budget", "seed", "dense_id")}
            d = {k: (s(v) if isinstance(v, (bytes, str)) else v.item()) for k, v in d.items()}
            d.update({k: float(v) for k, v in f["summary"].attrs.items() if k != "latency_device"})
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


def test_tables_hold_the_files_numbers(analysis_sweep, report):
    runs = read_runs(analysis_sweep["results"])
    assert len(runs) == 8
    cells = expected_cells(runs)
    methods = sorted({k[3] for k in cells})
    with open(report / "tables.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len({k[:3] for k in cells}) == 2
    md = (report / "tables.md").read_text()
    tex = (report / "tables.tex").read_text()
    for row in rows:
        key = (row["dataset"], row["arch"], float(row["budget"]))
        dense = {}
        best, best_v = [], -1.0
        for m in methods:
            rs = cells[key + (m,)]
            assert len(rs) == 2 and int(row[f"{m}_n"]) == 2
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
            txt = f"{np.mean(top1):.2f} ± {sd(top1):.2f}"
            assert txt in md, txt
            assert txt.replace("±", r"$\pm$") in tex
        assert close(row["dense_top1_mean"], float(np.mean(list(dense.values()))))
        assert sorted(row["best_method"].split(";")) == sorted(best)
        for m in best:
            t = [100 * r["top1"] for r in cells[key + (m,)]]
            assert f"**{np.mean(t):.2f} ± {sd(t):.2f}**" in md
            assert r"\textbf{" + f"{np.mean(t):.2f} $\\pm$ {sd(t):.2f}" + "}" in tex


def test_runs_csv_lists_every_run(analysis_sweep, report):
    runs = read_runs(analysis_sweep["results"])
    with open(report / "runs.csv") as f:
        got = {r["run_id"]: r for r in csv.DictReader(f)}
    assert set(got) == set(runs)
    for rid, r in runs.items():
        for k in ("top1", "macs", "dense_macs", "speedup", "mac_ratio", "test_loss"):
            assert close(got[rid][k], r[k]), (rid, k)
        assert got[rid]["method"] == r["method"] and int(got[rid]["seed"]) == r["seed"]
    with open(report / "excluded.csv") as f:
        assert len(list(csv.DictReader(f))) == 0


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
    files = sorted((res / "runs").glob("*.h5"))
    cell = {p: (runs[p.stem]["method"], runs[p.stem]["budget"]) for p in files}
    failed = files[0]
    unfinished = next(p for p in files if cell[p] != cell[failed])  # another cell
    with h5py.File(failed, "a") as f:
        f.attrs["status"] = "failed"
        f.attrs["error"] = "simulated failure: out of memory"
    with h5py.File(unfinished, "a") as f:
        f.attrs["status"] = "incomplete"
    tmp = res / "runs" / "0123456789ab.h5.tmp"  # a writer killed mid-way
    shutil.copy(next(p for p in files if p not in (failed, unfinished)), tmp)
    with h5py.File(tmp, "a") as f:
        f.attrs["status"] = "incomplete"
    out = tmp_path / "report"
    r = analysis(capsys, "report", res, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "not in the tables" in r.stderr and failed.name in r.stderr

    with open(out / "excluded.csv") as f:
        ex = {pathlib.Path(e["path"]).name: e for e in csv.DictReader(f)}
    assert ex[failed.name]["status"] == "failed" and "out of memory" in ex[failed.name]["reason"]
    assert ex[unfinished.name]["status"] == "incomplete"
    assert ex[tmp.name]["status"] == "incomplete"
    with open(out / "runs.csv") as f:
        in_table = {e["run_id"] for e in csv.DictReader(f)}
    assert failed.stem not in in_table and unfinished.stem not in in_table and len(in_table) == 6

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
    victim = sorted((res / "runs").glob("*.h5"))[3]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 3])  # truncated, as by a full disk or a bad copy
    # The real command line, once: exit status and message as a user sees them.
    r = subprocess.run([sys.executable, "-m", "analysis", "report", str(res), "--out", str(tmp_path / "out")],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0
    assert str(victim) in r.stderr and "damaged" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr

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
    assert [e["status"] for e in ex] == ["damaged"] and ex[0]["path"].endswith(junk.name)


def test_complete_file_missing_its_summary_names_what_is_missing(analysis_sweep, tmp_path, capsys):
    res = tmp_path / "runs"
    shutil.copytree(analysis_sweep["results"] / "runs", res)
    victim = sorted(res.glob("*.h5"))[0]
    with h5py.File(victim, "a") as f:
        del f["summary"].attrs["top1"]
    r = analysis(capsys, "report", tmp_path, "--out", tmp_path / "out")
    assert r.returncode != 0 and str(victim) in r.stderr and "top1" in r.stderr
