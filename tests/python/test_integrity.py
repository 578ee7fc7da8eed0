"""analysis/integrity.py mirrors passlab's one notion of a usable result (io/result_file.hpp): the
same digest as the C++ writer on real files, and the report leaves out, with its reason, every
file that is damaged, holds a non-finite value, or was written before digests (until sealed)."""
import csv
import pathlib
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from analysis import integrity, runs  # noqa: E402
from conftest import passlab_binary  # noqa: E402

ENTRIES = runs.SCHEMA["entries"]


def complete_runs(results):
    return sorted(p for p in (results / "runs").glob("*.h5") if runs.read_status(p)[0] == "complete")


def test_fnv1a64_is_the_published_function():
    # FNV-1a 64 test vectors (Fowler, Noll, Vo: "a" and "foobar").
    for text, want in ((b"", 0xCBF29CE484222325), (b"a", 0xAF63DC4C8601EC8C), (b"foobar", 0x85944171F73967E8)):
        h = integrity.ContentHash()
        h.update(text)
        assert h.h == want, text


def test_python_digest_equals_the_writers_on_every_real_file(analysis_sweep):
    files = sorted((analysis_sweep["results"] / "runs").glob("*.h5")) + \
        sorted((analysis_sweep["results"] / "dense").glob("*.h5")) + [analysis_sweep["store"]]
    states = {}
    for p in files:
        with h5py.File(p, "r") as f:
            stored = f.attrs["digest"]
            stored = stored.decode() if isinstance(stored, bytes) else stored
            digest, non_finite = integrity.scan_content(f)
        assert digest == stored, p
        assert non_finite == [], p
        if p != analysis_sweep["store"]:
            states[p] = integrity.check(p, ENTRIES).state
    assert "complete" in states.values()
    assert set(states.values()) <= {"complete", "failed"}, states
    if analysis_sweep["injected"]:
        assert "failed" in states.values()


def _report(results, out, *extra):
    return subprocess.run([sys.executable, "-m", "analysis", "report", str(results), "--out", str(out), "--no-plots",
                           *extra], cwd=ROOT, capture_output=True, text=True)


def _excluded(out):
    with open(out / "excluded.csv") as f:
        return {pathlib.Path(r["path"]).name: r for r in csv.DictReader(f)}


def test_changed_and_non_finite_files_are_never_in_the_report(analysis_sweep, tmp_path):
    res = tmp_path / "results"
    shutil.copytree(analysis_sweep["results"] / "runs", res / "runs")
    shutil.copytree(analysis_sweep["results"] / "dense", res / "dense")
    victims = complete_runs(res)
    n = len(victims)
    changed, nan, summary = victims[0], victims[1], victims[2]
    with h5py.File(changed, "a") as f:  # one weight value changed: a bit flip inside a tensor
        name = sorted(f["weights"].keys())[0] if "weights" in f else None
        if name is None:
            f["keep"][sorted(f["keep"].keys())[0]][0] += 1
        else:
            d = f["weights"][name]
            flat = d[()].reshape(-1)
            flat[0] = np.nextafter(flat[0], np.float32(np.inf))
            d[...] = flat.reshape(d.shape)
    with h5py.File(summary, "a") as f:  # a result attribute changed
        f["summary"].attrs["top1"] = 0.99
    with h5py.File(nan, "a") as f:  # NaN under a digest that matches: the old kill-on-rename damage
        f["summary"].attrs["test_loss"] = np.nan
        f.attrs["digest"] = integrity.scan_content(f)[0]
    for p, needle in ((changed, "content digest mismatch"), (summary, "content digest mismatch"),
                      (nan, "non-finite values in /summary@test_loss")):
        v = integrity.check(p, ENTRIES)
        assert not v.usable and needle in v.reason(), (p, v.reason())
        with pytest.raises(runs.DamagedRunError, match="damaged run file"):
            runs.load_run(p)
    # Refused by default; listed with the reason on request; never averaged in.
    r = _report(res, tmp_path / "out")
    assert r.returncode == 2 and "damaged run file" in r.stderr and "Traceback" not in r.stderr, r.stderr
    r = _report(res, tmp_path / "out2", "--list-damaged")
    assert r.returncode == 0, r.stderr
    ex = _excluded(tmp_path / "out2")
    for p in (changed, summary, nan):
        assert ex[p.name]["status"] == "damaged" and ex[p.name]["reason"], ex.get(p.name)
    with open(tmp_path / "out2" / "runs.csv") as f:
        in_tables = {row["run_id"] for row in csv.DictReader(f)}
    assert in_tables.isdisjoint({changed.stem, summary.stem, nan.stem})
    assert len(in_tables) == n - 3


def test_files_written_before_digests_are_listed_until_sealed(analysis_sweep, tmp_path):
    res = tmp_path / "results"
    shutil.copytree(analysis_sweep["results"] / "runs", res / "runs")
    victims = complete_runs(res)
    for p in victims[:2]:  # as passlab 431f8cf wrote them
        with h5py.File(p, "a") as f:
            del f.attrs["digest"]
    v = integrity.check(victims[0], ENTRIES)
    assert v.no_digest and v.problems == [integrity.NO_DIGEST]
    result = runs.scan(res)  # not an error: listed
    listed = {p.path.name: p for p in result.problems if p.status == "no digest"}
    assert set(listed) == {victims[0].name, victims[1].name}
    assert "passlab seal" in listed[victims[0].name].reason
    assert {r.run_id for r in result.runs}.isdisjoint({victims[0].stem, victims[1].stem})
    binary = passlab_binary()
    if binary is None:
        pytest.skip("passlab binary not found")
    r = subprocess.run([binary, "seal", str(res)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 sealed" in r.stdout, r.stdout
    after = runs.scan(res)
    assert {victims[0].stem, victims[1].stem} <= {r.run_id for r in after.runs}
    with h5py.File(victims[0], "r") as f:
        assert "sealed_at" in f.attrs
