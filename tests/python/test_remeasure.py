"""`passlab remeasure` on a copy of the tiny real sweep (conftest.analysis_sweep), and the report's
preference for its measurements file. Expected numbers are read here with h5py straight from
measurements.h5 and the run files, independently of analysis/measurements.py."""
import csv
import os
import pathlib
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from analysis.__main__ import main  # noqa: E402

from conftest import passlab_binary  # noqa: E402


def s(v):
    return v.decode() if isinstance(v, bytes) else v


def remeasure(results, *extra):
    env = dict(os.environ, PASSLAB_LOG="info", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return subprocess.run([passlab_binary(), "remeasure", str(results), "--set", "eval.latency_repeats=3",
                           "--progress", "lines", *map(str, extra)], env=env, capture_output=True, text=True)


def complete_run_ids(results):
    out = {}
    for p in sorted((results / "runs").glob("*.h5")):
        with h5py.File(p, "r") as f:
            if s(f.attrs["status"]) == "complete":
                out[s(f.attrs["run_id"])] = {k: s(v) for k, v in f.attrs.items()} | {
                    "summary": {k: s(v) for k, v in f["summary"].attrs.items()}}
    return out


def entries(results):
    """machine key -> run id -> attrs of measurements.h5."""
    with h5py.File(results / "measurements.h5", "r") as f:
        assert s(f.attrs["status"]) == "complete" and s(f.attrs["kind"]) == "measurements"
        return {key: {rid: {k: s(v) for k, v in e.attrs.items()} for rid, e in g.items()} for key, g in f.items()}


@pytest.fixture(scope="module")
def measured(analysis_sweep, tmp_path_factory):
    """A copy of the sweep's results, remeasured in two calls: --max-runs 3, then the rest."""
    results = tmp_path_factory.mktemp("remeasure") / "results"
    shutil.copytree(analysis_sweep["results"], results)
    first = remeasure(results, "--max-runs", "3")
    assert first.returncode == 0, first.stdout + first.stderr
    second = remeasure(results)
    assert second.returncode == 0, second.stdout + second.stderr
    third = remeasure(results)
    assert third.returncode == 0, third.stdout + third.stderr
    return {"results": results, "calls": (first, second, third), "runs": complete_run_ids(results)}


def test_one_entry_per_usable_run_over_resumed_calls(measured):
    runs = measured["runs"]
    first, second, third = measured["calls"]
    n = len(runs)
    assert f"3 run(s) measured, 0 measured before on this machine (skipped)" in first.stdout, first.stdout
    assert f"{n - 3} run(s) measured, 3 measured before on this machine (skipped)" in second.stdout, second.stdout
    assert f"0 run(s) measured, {n} measured before on this machine (skipped)" in third.stdout, third.stdout
    # Progress: one log line per timed run in a batch log.
    assert second.stderr.count(f"remeasure 1/{n - 3}:") == 1, second.stderr
    e = entries(measured["results"])
    assert len(e) == 1  # one machine
    (key, by_run), = e.items()
    assert set(by_run) == set(runs)
    for rid, m in by_run.items():
        assert m["run_finished_at"] == runs[rid]["finished_at"]
        assert m["speedup_rounds"] == 3 and m["speedup_form"] == "folded"
        assert m["latency_batch"] == runs[rid]["summary"]["latency_batch"]
        assert m["speedup_unreliable"] == int(m["speedup_spread"] > m["speedup_max_spread"])


def test_report_prefers_the_measurements_file(measured, tmp_path, capsys):
    results = measured["results"]
    e = entries(results)
    (key, by_run), = e.items()
    out = tmp_path / "report"
    assert main(["report", str(results), "--out", str(out), "--no-plots"]) == 0
    said = capsys.readouterr().out
    assert f"re-measured after the sweep" in said and f"{len(by_run)} of {len(by_run)} runs" in said, said
    with open(out / "runs.csv") as f:
        rows = {r["run_id"]: r for r in csv.DictReader(f)}
    assert set(rows) == set(by_run)
    for rid, m in by_run.items():
        for col in ("speedup", "speedup_spread", "latency_dense_ms", "latency_pruned_ms"):
            assert float(rows[rid][col]) == pytest.approx(m[col], rel=1e-12), (rid, col)
        assert rows[rid]["speedup_source"] == f"measurements.h5:{key}"
    # The table's speed-up column: the mean of the cell's measured speed-ups.
    with open(out / "methods.csv") as f:
        cells = list(csv.DictReader(f))
    runs = measured["runs"]
    for c in cells:
        ids = [rid for rid, r in runs.items() if r["method"] == c["method"] and
               abs(float(r["budget"]) - float(c["budget"])) < 1e-12]
        if not ids:
            continue
        assert float(c["speedup_mean"]) == pytest.approx(np.mean([by_run[i]["speedup"] for i in ids]), rel=1e-9)
    assert "re-measured after the sweep" in (out / "tables.md").read_text()


def test_report_can_ignore_the_measurements_file(measured, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(measured["results"]), "--out", str(out), "--no-plots", "--speedups", "run-files"]) == 0
    assert "as measured inside each prune task" in capsys.readouterr().out
    with open(out / "runs.csv") as f:
        rows = {r["run_id"]: r for r in csv.DictReader(f)}
    for rid, r in measured["runs"].items():
        assert float(rows[rid]["speedup"]) == pytest.approx(r["summary"]["speedup"], rel=1e-12)
        assert rows[rid]["speedup_source"] == "run file"


def test_inspect_shows_the_entries_and_counts_them(measured):
    env = dict(os.environ, PASSLAB_LOG="warn")
    results = measured["results"]
    r = subprocess.run([passlab_binary(), "inspect", str(results / "measurements.h5")], env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    for rid in measured["runs"]:
        assert rid in r.stdout
    d = subprocess.run([passlab_binary(), "inspect", str(results)], env=env, capture_output=True, text=True)
    assert d.returncode == 0, d.stdout + d.stderr
    assert f"measurements.h5: {len(measured['runs'])} entries on 1 machine(s)" in d.stdout, d.stdout
