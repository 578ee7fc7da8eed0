"""analysis/runs.py follows the declared run-file schema (docs/run-file.json, generated from
src/io/run_schema.cpp and the method registry by `passlab inspect --schema-json`; tests/cli
checks that the file is current)."""
import json
import pathlib
import shutil
import sys

import h5py
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from analysis import runs  # noqa: E402


def test_names_come_from_the_schema():
    # Hand-written truths (DESIGN.md §2, §4) against what runs.py derives from the JSON.
    assert set(runs.PASS_METHODS) == {"pass", "pass_no_prompt", "pass_no_recurrence", "pass_no_stats"}
    assert runs.is_pass("pass_no_stats") and not runs.is_pass("l1_global")
    for a in ("status", "kind", "run_id", "dense_id", "method", "arch", "dataset", "budget", "seed", "version_git"):
        assert a in runs.ROOT_ATTRS, a
    assert "error" not in runs.ROOT_ATTRS  # failed files only
    for a in ("top1", "top5", "dense_top1", "macs", "dense_macs", "mac_ratio", "speedup", "latency_batch"):
        assert a in runs.SUMMARY_ATTRS, a
    assert set(runs.ROOT_OBJECTS) == {"config", "summary", "metrics", "masks", "keep"}


def _declared(entries, kind, path, attr, item):
    def match(pattern):
        a, b = pattern.strip("/").split("/"), path.strip("/").split("/")
        return len(a) == len(b) and all(x in ("*", y) for x, y in zip(a, b))
    return any(kind in e["files"] and e["item"] == item and e["attr"] == attr and match(e["path"]) for e in entries)


def test_real_result_files_hold_only_declared_entries(analysis_sweep):
    entries = json.loads((ROOT / "docs" / "run-file.json").read_text())["entries"]
    files = sorted((analysis_sweep["results"] / "runs").glob("*.h5")) + \
        sorted((analysis_sweep["results"] / "dense").glob("*.h5"))
    assert files
    undeclared = []
    for p in files:
        with h5py.File(p, "r") as f:
            kind = runs._attr(f.attrs["kind"])
            for a in f.attrs:
                if not _declared(entries, kind, "/", a, "attribute"):
                    undeclared.append(f"{p.name}: /@{a}")

            def visit(name, obj):
                item = "group" if isinstance(obj, h5py.Group) else "dataset"
                if not _declared(entries, kind, "/" + name, "", item):
                    undeclared.append(f"{p.name}: /{name}")
                for a in obj.attrs:
                    if not _declared(entries, kind, "/" + name, a, "attribute"):
                        undeclared.append(f"{p.name}: /{name}@{a}")
            f.visititems(visit)
    assert undeclared == []


def test_a_required_attribute_the_old_list_missed_is_now_checked(analysis_sweep, tmp_path):
    # /summary@latency_batch was not among runs.py's hand-written names; the schema requires it.
    src = sorted((analysis_sweep["results"] / "runs").glob("*.h5"))
    victim = None
    for p in src:
        if runs.read_status(p)[0] == "complete":
            victim = tmp_path / p.name
            shutil.copy(p, victim)
            break
    assert victim is not None
    runs.load_run(victim)
    with h5py.File(victim, "a") as f:
        del f["summary"].attrs["latency_batch"]
    with pytest.raises(runs.DamagedRunError, match="latency_batch"):
        runs.load_run(victim)
