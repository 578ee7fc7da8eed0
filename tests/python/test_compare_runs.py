"""scripts/compare-runs.py on hand-made results directories: equal runs pass; a baseline whose
kept channels differ, or any top-1 beyond the tolerance, fails; PASS channels may differ; with
--layout an attribute of another type, or one missing, fails."""
import pathlib
import subprocess
import sys

import h5py
import numpy as np

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "scripts" / "compare-runs.py"


def write_run(results, run_id, method, keep, top1, status="complete"):
    (results / "runs").mkdir(parents=True, exist_ok=True)
    with h5py.File(results / "runs" / f"{run_id}.h5", "w") as f:
        f.attrs["status"] = status
        f.attrs["kind"] = "prune"
        f.attrs["run_id"] = run_id
        f.attrs["method"] = method
        f.attrs["budget"] = 0.5
        for g, idx in keep.items():
            f.create_dataset(f"keep/{g}", data=np.asarray(idx, dtype=np.int64))
        f.create_group("summary").attrs["top1"] = top1


def write_dense(results, dense_id, top1):
    (results / "dense").mkdir(parents=True, exist_ok=True)
    with h5py.File(results / "dense" / f"{dense_id}.h5", "w") as f:
        f.attrs["status"] = "complete"
        f.attrs["kind"] = "dense"
        f.attrs["dense_id"] = dense_id
        f.create_group("summary").attrs["top1"] = top1


KEEP = {"layer1.0": [0, 2, 3], "layer2.0": [1, 4]}


def run(before, after, *extra):
    return subprocess.run([sys.executable, str(SCRIPT), str(before), str(after), *extra], capture_output=True, text=True)


def make(tmp_path, after_runs):
    before, after = tmp_path / "before", tmp_path / "after"
    write_dense(before, "d0", 0.80)
    write_dense(after, "d0", 0.80)
    write_run(before, "l1", "l1_global", KEEP, 0.70)
    write_run(before, "ps", "pass", KEEP, 0.72)
    for args in after_runs:
        write_run(after, *args)
    return before, after


def test_identical_runs_pass(tmp_path):
    r = run(*make(tmp_path, [("l1", "l1_global", KEEP, 0.70), ("ps", "pass", KEEP, 0.72)]))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 task(s) compared, 0 with differences" in r.stdout
    assert r.stdout.count("equal") == 2


def test_baseline_keep_difference_fails_pass_difference_does_not(tmp_path):
    other = {"layer1.0": [0, 2, 3], "layer2.0": [1, 5]}
    r = run(*make(tmp_path, [("l1", "l1_global", other, 0.70), ("ps", "pass", KEEP, 0.72)]))
    assert r.returncode == 1
    assert "keep differs" in r.stdout
    r = run(*make(tmp_path / "b", [("l1", "l1_global", KEEP, 0.70), ("ps", "pass", other, 0.72)]))
    assert r.returncode == 0, r.stdout
    assert "DIFFERENT" in r.stdout


def test_top1_beyond_tolerance_fails(tmp_path):
    dirs = make(tmp_path, [("l1", "l1_global", KEEP, 0.7015), ("ps", "pass", KEEP, 0.72)])
    assert run(*dirs).returncode == 0  # within the default 0.002
    assert run(*dirs, "--tol", "0.001").returncode == 1
    dirs = make(tmp_path / "b", [("l1", "l1_global", KEEP, 0.70), ("ps", "pass", KEEP, 0.60)])
    r = run(*dirs)
    assert r.returncode == 1 and "top-1 moved" in r.stdout
    assert run(*dirs, "--skip-pass").returncode == 0


def test_incomplete_runs_are_not_compared(tmp_path):
    r = run(*make(tmp_path, [("l1", "l1_global", KEEP, 0.10, "failed")]))
    assert r.returncode == 0, r.stdout
    assert "1 task(s) compared" in r.stdout  # the dense model only
    assert "complete in only one directory: l1, ps" in r.stdout


def test_no_common_task_is_an_error(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert run(tmp_path / "a", tmp_path / "b").returncode == 2


def test_layout_difference_fails_only_with_layout(tmp_path):
    dirs = make(tmp_path, [("l1", "l1_global", KEEP, 0.70), ("ps", "pass", KEEP, 0.72)])
    assert run(*dirs, "--layout").returncode == 0
    with h5py.File(dirs[1] / "runs" / "l1.h5", "a") as f:
        f["summary"].attrs["budget_met"] = 1.0  # absent before
        del f.attrs["budget"]
        f.attrs["budget"] = "0.5"  # a string where a double was
    assert run(*dirs).returncode == 0
    r = run(*dirs, "--layout")
    assert r.returncode == 1
    assert "layout differs in 2 place(s)" in r.stdout
    assert "summary@budget_met: absent -> attribute float64 ()" in r.stdout
    assert "/@budget: attribute float64 () -> attribute" in r.stdout
