"""Speed-ups timed again after the sweep: ``<results>/measurements.h5``.

``passlab remeasure RESULTS`` times every usable run file's dense and compact network on the machine
that runs it and writes one entry per (machine, run id) into ``measurements.h5`` (layout:
docs/measurements.md); the run files stay as the sweep wrote them. The report prefers these numbers:
:func:`apply` overlays an entry's attributes on the run's ``summary`` (they carry the same names as
the run file's /summary attributes), for one machine chosen for the whole table, and returns a
:class:`Source` that says where the speed-up column came from.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np

FILE = "measurements.h5"
KIND = "measurements"
FORMAT_VERSION = 1

# /summary attributes of a run file that an entry replaces (same names, same meaning).
OVERLAID = ("latency_dense_ms", "latency_pruned_ms", "speedup", "speedup_spread", "speedup_rounds",
            "speedup_unreliable", "load_1min_start", "load_1min_end", "cores", "speedup_form", "latency_batch")


def _value(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    return v


@dataclasses.dataclass
class Machine:
    key: str                 # group name: "<host>@<device>"
    host: str
    device: str
    device_name: str
    runs: dict               # run id -> entry attributes (dense_ms, compact_ms: per-round arrays)

    def describe(self) -> str:
        return f"{self.host}, {self.device}" + (f" ({self.device_name})" if self.device_name else "")


def read(results_dir) -> dict:
    """machine key -> :class:`Machine` of ``<results_dir>/measurements.h5``; {} when there is none.
    ValueError for a file that is not a complete measurements file of this format."""
    path = Path(results_dir) / FILE
    if not path.is_file():
        return {}
    with h5py.File(path, "r") as f:
        attrs = {k: _value(v) for k, v in f.attrs.items()}
        if attrs.get("status") != "complete" or attrs.get("kind") != KIND:
            raise ValueError(f"{path}: not a complete measurements file (status {attrs.get('status')!r}, "
                             f"kind {attrs.get('kind')!r})")
        if attrs.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: measurements format version {attrs.get('format_version')}, "
                             f"this analysis reads {FORMAT_VERSION}")
        out = {}
        for key, g in f.items():
            runs = {}
            for rid, e in g.items():
                entry = {k: _value(v) for k, v in e.attrs.items()}
                entry["dense_ms"] = np.asarray(e["dense_ms"][()], dtype=np.float64)
                entry["compact_ms"] = np.asarray(e["compact_ms"][()], dtype=np.float64)
                runs[rid] = entry
            out[key] = Machine(key, _value(g.attrs["host"]), _value(g.attrs["device"]),
                               _value(g.attrs["device_name"]), runs)
    return out


@dataclasses.dataclass
class Source:
    """Where the speed-ups of a report came from."""
    machine: Machine | None  # None: the run files' own measurements
    measured: int = 0         # runs whose numbers come from the measurements file
    total: int = 0            # runs in the report
    stale: int = 0            # entries of an older run file of the same id (rewritten since): not used
    path: Path | None = None

    def describe(self) -> str:
        if self.machine is None:
            return ("Speed-ups as measured inside each prune task (the run files; no measurements.h5, "
                    "or --speedups run-files).")
        text = (f"Speed-ups re-measured after the sweep (`passlab remeasure`, {self.path.name}) on "
                f"{self.machine.describe()}: {self.measured} of {self.total} runs")
        if self.measured < self.total:
            text += (f"; the other {self.total - self.measured} as measured inside their prune task (run files)"
                     + (f", {self.stale} of them because their run file was rewritten after it was measured"
                        if self.stale else ""))
        return text + "."


def choose(machines: dict, run_ids, prefer: str | None = None) -> Machine | None:
    """The machine whose entries the report uses: ``prefer`` (a key, or a host), else the one that
    measured most of ``run_ids`` (ties: the latest measurement). One machine for the whole table: a
    column mixing machines would compare machines, not methods."""
    if not machines:
        return None
    if prefer:
        hits = [m for k, m in machines.items() if k == prefer or m.host == prefer]
        if len(hits) != 1:
            raise ValueError(f"--measured-on {prefer}: {'no' if not hits else 'more than one'} machine of "
                             f"{sorted(machines)} matches")
        return hits[0]
    ids = set(run_ids)

    def score(m):
        return (len(ids & set(m.runs)), max((e.get("measured_at", "") for e in m.runs.values()), default=""))
    return max(machines.values(), key=score)


def apply(result, prefer: str | None = None, use: bool = True) -> Source:
    """Overlays the chosen machine's entries on ``result.runs``' summaries (in place) and says so.
    An entry counts only when it measured the run file as it is now (same @finished_at)."""
    root = Path(result.root)
    machines = read(root) if use else {}
    machine = choose(machines, [r.run_id for r in result.runs], prefer)
    src = Source(machine, total=len(result.runs), path=root / FILE)
    if machine is None:
        return src
    for r in result.runs:
        e = machine.runs.get(r.run_id)
        if e is None:
            continue
        if e.get("run_finished_at") != r.attrs.get("finished_at"):
            src.stale += 1
            continue
        for k in OVERLAID:
            r.summary[k] = e[k]
        r.summary["latency_device"] = machine.device
        r.summary["speedup_source"] = f"{FILE}:{machine.key}"
        src.measured += 1
    return src
