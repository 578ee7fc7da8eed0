"""Loading and validating passlab result files.

A results directory (``output.dir`` of a sweep) holds::

    dense/<dense_id>.h5     trained dense models (shared by the prune tasks of an arch/dataset/seed)
    runs/<run_id>.h5        one file per prune task (layout: docs/run-file.md; written by src/pipeline/run_writer.cpp)
    runs/<run_id>.h5.tmp    a task being written, or one whose writer was killed
    work/<id>/              checkpoints of tasks in progress (removed when a task finishes)

:func:`scan` reads every run file. Complete runs that are usable (analysis/integrity.py: schema-valid,
digest-valid, finite, as passlab's C++ decides) become :class:`Run` objects; everything else (status
"failed" or "incomplete", a left-over ``.tmp``, a work folder without a result) becomes a
:class:`Problem`, so that reports can list it instead of silently dropping it. A file that cannot
be read, or a complete file that is not usable (damaged, changed since it was written, holding a
non-finite value), raises :class:`DamagedRunError` naming the file and why
(``scan(..., on_damaged="list")`` records it as a Problem instead). A complete file written before
digests (passlab 431f8cf and older) is always listed, as status "no digest", until
``passlab seal DIR`` has verified it and added its digest.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
from pathlib import Path

import h5py
import numpy as np

from . import integrity

# The declared layout of result files and the method registry, generated from passlab's C++
# tables (`passlab inspect --schema-json`; a test keeps the file current).
SCHEMA_JSON = Path(__file__).resolve().parents[1] / "docs" / "run-file.json"


def _load_schema(path=SCHEMA_JSON) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


SCHEMA = _load_schema()


def required_in_complete_run(item: str, parent: str) -> tuple:
    """Names of the ``item`` entries ("attribute", "group" or "dataset") that every complete prune
    run file holds: the attributes of the object ``parent``, or the groups or datasets directly
    under the group ``parent`` (wildcard entries excluded)."""
    out = []
    for e in SCHEMA["entries"]:
        if e["item"] != item or "prune" not in e["files"] or e["need"] not in ("always", "complete"):
            continue
        if item == "attribute":
            if e["path"] == parent:
                out.append(e["attr"])
        elif os.path.dirname(e["path"]) == parent and "*" not in e["path"]:
            out.append(os.path.basename(e["path"]))
    return tuple(out)


ROOT_ATTRS = required_in_complete_run("attribute", "/")
SUMMARY_ATTRS = required_in_complete_run("attribute", "/summary")
ROOT_OBJECTS = required_in_complete_run("group", "/") + required_in_complete_run("dataset", "/")
PASS_METHODS = tuple(m["name"] for m in SCHEMA["methods"] if m["family"] == "pass")


class DamagedRunError(RuntimeError):
    """A result file that cannot be read or lacks what passlab always writes. ``path`` names it."""

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: damaged run file: {reason}")


class UnsealedRunError(DamagedRunError):
    """A complete file written before digests (fine in every other respect): not used until sealed."""


def natural_key(name: str):
    """Sort key putting 'features.2' before 'features.10' (HDF5 lists names alphabetically; the
    group names of passlab's models are in forward order under this key)."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _attr(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


def _attrs(obj) -> dict:
    return {k: _attr(v) for k, v in obj.attrs.items()}


@dataclasses.dataclass
class Run:
    """One complete prune run, as read from its file (no tensors kept open)."""
    path: Path
    attrs: dict            # root attributes
    summary: dict          # /summary attributes
    config: dict           # /config parsed as TOML
    groups: list           # group names in forward order
    kept: dict             # group -> kept channels (len of /keep/<group>)
    widths: dict           # group -> dense width (len of /masks/<group>)
    curves: dict           # /metrics/<curve> -> float64 array
    # Start events of the task in the sweep's journal.tsv (0: no journal). More than one: it was
    # resumed or retried, and its wall times (@seconds, @search_seconds) cover only its last launch.
    starts: int = 0

    # Convenience accessors used by the report.
    @property
    def run_id(self): return self.attrs["run_id"]
    @property
    def method(self): return self.attrs["method"]
    @property
    def arch(self): return self.attrs["arch"]
    @property
    def dataset(self): return self.attrs["dataset"]
    @property
    def budget(self): return float(self.attrs["budget"])
    @property
    def seed(self): return int(self.attrs["seed"])
    @property
    def top1(self): return float(self.summary["top1"])
    @property
    def whole_wall_time(self): return self.starts <= 1


@dataclasses.dataclass
class Problem:
    """A run that is not in the tables, and why."""
    path: Path
    status: str            # failed | incomplete | tmp | no result | damaged
    reason: str
    attrs: dict = dataclasses.field(default_factory=dict)

    def get(self, key, default=""):
        return self.attrs.get(key, default)


def load_run(path) -> Run:
    """Read a complete run file. Raises DamagedRunError (unreadable, or missing pieces) and
    ValueError for a readable file whose status is not 'complete' (use :func:`read_status`)."""
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except Exception as e:  # h5py raises OSError with HDF5's own words
        raise DamagedRunError(path, f"cannot be opened as HDF5 ({e})") from None
    try:
        with f:
            attrs = _attrs(f)
            status = attrs.get("status")
            if status is None:
                raise DamagedRunError(path, "no 'status' attribute (not written by passlab, or damaged)")
            if status != "complete":
                raise ValueError(f"{path}: status '{status}', not 'complete'")
            # One notion of a usable result (integrity.py); the checks below name what a reader needs.
            verdict = integrity.check_open(f, SCHEMA["entries"])
            if not verdict.usable:
                unsealed = verdict.problems == [integrity.NO_DIGEST]
                raise (UnsealedRunError if unsealed else DamagedRunError)(path, verdict.reason())
            missing = [a for a in ROOT_ATTRS if a not in attrs]
            if missing:
                raise DamagedRunError(path, f"root attributes missing: {', '.join(missing)}")
            if attrs["kind"] != "prune":
                raise DamagedRunError(path, f"kind '{attrs['kind']}' where a prune run file was expected")
            for obj in ROOT_OBJECTS:
                if obj not in f:
                    raise DamagedRunError(path, f"'/{obj}' missing")
            summary = _attrs(f["summary"])
            missing = [a for a in SUMMARY_ATTRS if a not in summary]
            if missing:
                raise DamagedRunError(path, f"/summary attributes missing: {', '.join(missing)}")
            try:
                cfg_text = _attr(f["config"][()])
                config = tomllib.loads(cfg_text)
            except Exception as e:
                raise DamagedRunError(path, f"/config is not readable TOML ({e})") from None
            groups = sorted(f["keep"].keys(), key=natural_key)
            if not groups or set(groups) != set(f["masks"].keys()):
                raise DamagedRunError(path, "/keep and /masks do not name the same channel groups")
            kept, widths = {}, {}
            for g in groups:
                k = f["keep"][g][()]
                m = f["masks"][g][()]
                kept[g] = int(k.shape[0])
                widths[g] = int(m.shape[0])
                if int(m.sum()) != kept[g]:
                    raise DamagedRunError(path, f"/masks/{g} keeps {int(m.sum())} channels, /keep/{g} lists {kept[g]}")
            curves = {}
            if "metrics" in f:
                for name, ds in f["metrics"].items():
                    curves[name] = np.asarray(ds[()], dtype=np.float64)
    except (DamagedRunError, ValueError):
        raise
    except Exception as e:  # a truncated file fails while reading datasets
        raise DamagedRunError(path, f"unreadable ({type(e).__name__}: {e})") from None
    return Run(path=path, attrs=attrs, summary=summary, config=config, groups=groups, kept=kept, widths=widths,
               curves=curves)


def read_status(path) -> tuple[str, dict]:
    """(status, root attributes) of a result file; raises DamagedRunError if unreadable."""
    try:
        with h5py.File(path, "r") as f:
            attrs = _attrs(f)
    except Exception as e:
        raise DamagedRunError(path, f"cannot be opened as HDF5 ({e})") from None
    if "status" not in attrs:
        raise DamagedRunError(path, "no 'status' attribute (not written by passlab, or damaged)")
    return attrs["status"], attrs


def _readable_attrs(path) -> dict:
    """Root attributes of a file for the list of excluded runs; {} when they cannot be read."""
    try:
        return read_status(path)[1]
    except DamagedRunError:
        return {}


@dataclasses.dataclass
class ResultSet:
    root: Path
    runs: list
    problems: list


def _run_files(root: Path):
    runs_dir = root / "runs"
    base = runs_dir if runs_dir.is_dir() else root
    return base, sorted(base.glob("*.h5")), sorted(base.glob("*.h5.tmp"))


def scan(results_dir, on_damaged: str = "raise") -> ResultSet:
    """Read every run file of a results directory (or a folder of run files).

    on_damaged: "raise" (default) raises DamagedRunError for the first damaged file; "list"
    records it as a Problem with status "damaged"."""
    if on_damaged not in ("raise", "list"):
        raise ValueError("on_damaged must be 'raise' or 'list'")
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such results directory")
    base, files, tmps = _run_files(root)
    runs, problems = [], []
    for p in files:
        try:
            status, attrs = read_status(p)
            if attrs.get("kind", "prune") != "prune":
                continue
            if status == "complete":
                runs.append(load_run(p))
            else:
                reason = str(attrs.get("error", "")) or ("the task did not finish" if status == "incomplete" else "")
                problems.append(Problem(p, status, reason, attrs))
        except UnsealedRunError as e:
            problems.append(Problem(p, "no digest", e.reason, _readable_attrs(p)))
        except DamagedRunError as e:
            if on_damaged == "raise":
                raise
            problems.append(Problem(p, "damaged", e.reason, _readable_attrs(p)))
    for p in tmps:
        final = p.with_name(p.name[: -len(".tmp")])
        if final.exists():
            continue  # a rerun is writing over a finished file
        attrs = {}
        try:
            _, attrs = read_status(p)
        except DamagedRunError:
            pass
        problems.append(Problem(p, "incomplete", "only a .tmp file: the task is running or its writer was killed", attrs))
    dense_dir = root / "dense"
    dense_ids = set()
    if dense_dir.is_dir():
        for p in sorted(dense_dir.glob("*.h5")):
            dense_ids.add(p.stem)
            try:
                status, attrs = read_status(p)
            except DamagedRunError as e:
                if on_damaged == "raise":
                    raise
                problems.append(Problem(p, "damaged", e.reason + " (a dense model: its prune tasks cannot run)"))
                continue
            if status != "complete":
                err = str(attrs.get("error", "")) or "the task did not finish"
                problems.append(Problem(p, status, f"dense model {status}: {err} (its prune tasks are blocked)",
                                        {**attrs, "run_id": attrs.get("dense_id", p.stem), "method": "(dense)"}))
                continue
            verdict = integrity.check(p, SCHEMA["entries"])
            if not verdict.usable:
                unsealed = verdict.problems == [integrity.NO_DIGEST]
                if not unsealed and on_damaged == "raise":
                    raise DamagedRunError(p, verdict.reason() + " (a dense model)")
                problems.append(Problem(p, "no digest" if unsealed else "damaged", verdict.reason() + " (a dense model)",
                                        {**attrs, "run_id": attrs.get("dense_id", p.stem), "method": "(dense)"}))
    have = {p.name[:-3] for p in files} | {p.name[:-7] for p in tmps} | dense_ids
    started = _journal_started(root / "journal.tsv")
    for r in runs:
        r.starts = started.get(r.run_id, {}).get("starts", 0)
    # Tasks the sweep journal says started but that left no result file (killed, or running).
    for rid, info in started.items():
        if rid in have:
            continue
        have.add(rid)
        claimed = (root / "claims" / f"{rid}.claim").exists()
        where = root / ("dense" if info.get("method") == "(dense)" else "runs") / f"{rid}.h5"
        problems.append(Problem(where, "incomplete", f"started {info['started']} ({info['detail']}), no result file"
                                + (" — still claimed: running, or its launcher died" if claimed else ""),
                                {k: v for k, v in info.items() if k not in ("started", "detail", "starts")}))
    # Work folders (checkpoints) of tasks with no result anywhere.
    work = root / "work"
    if work.is_dir():
        for d in sorted(work.iterdir()):
            if d.is_dir() and d.name not in have and any(d.iterdir()):
                problems.append(Problem(d, "incomplete", "a work folder (checkpoints) but no result file",
                                        {"run_id": d.name}))
    runs.sort(key=lambda r: (r.dataset, r.arch, -r.budget, r.method, r.seed))
    return ResultSet(root=root, runs=runs, problems=problems)


_JOURNAL_PRUNE = re.compile(r"^(\S+) (\d+(?:\.\d+)?)% (\S+) (\S+) seed (-?\d+)")
_JOURNAL_DENSE = re.compile(r"^dense (\S+) (\S+) seed (-?\d+)")


def _journal_started(path: Path) -> dict:
    """task id -> what journal.tsv (utc, holder, event, id, detail) says of tasks that started;
    detail of a start event: "<method> <pct>% <arch> <dataset> seed <s> attempt <k>" or
    "dense <arch> <dataset> seed <s> attempt <k>"; the last start's, with "starts": how many."""
    out = {}
    if not path.is_file():
        return out
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split("\t")
        if len(parts) < 5 or parts[2] != "start":
            continue
        t, _holder, _ev, rid, detail = parts[:5]
        info = {"run_id": rid, "started": t, "detail": detail, "starts": out.get(rid, {}).get("starts", 0) + 1}
        m = _JOURNAL_DENSE.match(detail)
        if m:
            info.update(method="(dense)", arch=m[1], dataset=m[2], seed=int(m[3]))
        else:
            m = _JOURNAL_PRUNE.match(detail)
            if m:
                info.update(method=m[1], budget=float(m[2]) / 100, arch=m[3], dataset=m[4], seed=int(m[5]))
        out[rid] = info
    return out


def dense_files(results_dir) -> dict:
    """dense_id -> path of the complete dense model files of a results directory."""
    d = Path(results_dir) / "dense"
    out = {}
    if d.is_dir():
        for p in sorted(d.glob("*.h5")):
            out[p.stem] = p
    return out


def is_pass(method: str) -> bool:
    return method in PASS_METHODS


def relpath(p, start) -> str:
    """p relative to start when it lies below start's parent, else absolute."""
    try:
        r = os.path.relpath(p, start)
    except ValueError:
        return str(Path(p).resolve())
    return r if not r.startswith(os.pardir + os.sep + os.pardir) else str(Path(p).resolve())
