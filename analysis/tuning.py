"""Validation scores of a tuning directory: one row per prune run, labelled by the variant the
tuning driver wrote into [experiment] description, with the settings that differ between runs.

    python -m analysis.tuning RESULTS_DIR

Only the validation split is read (summary @val_top1, after the fine-tune); test top-1 is not
printed, so that tuning cannot look at it.
"""
import sys
import tomllib
from pathlib import Path

import h5py


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, prefix + k + "."))
        else:
            out[prefix + k] = v
    return out


def tuning_rows(results_dir):
    rows = []
    for path in sorted(Path(results_dir, "runs").glob("*.h5")):
        with h5py.File(path, "r") as f:
            if f.attrs.get("kind") != "prune" or f.attrs.get("status") != "complete":
                continue
            cfg = _flatten(tomllib.loads(f["config"][()].decode()))
            s = f["summary"].attrs
            rows.append({
                "variant": cfg.get("experiment.description", ""),
                "method": f.attrs["method"],
                "budget": float(f.attrs["budget"]),
                "seed": int(f.attrs["seed"]),
                "val_top1": float(s["val_top1"]),
                "probe_val_top1": float(s["probe_val_top1"]) if "probe_val_top1" in s else float("nan"),
                "search_s": float(f.attrs.get("search_seconds", 0.0)),
                "config": cfg,
            })
    return rows


def main(argv):
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    rows = tuning_rows(argv[0])
    if not rows:
        print(f"no complete prune run in {argv[0]}", file=sys.stderr)
        return 1
    keys = sorted({k for r in rows for k in r["config"]})
    varying = [k for k in keys if not k.startswith(("experiment.", "output.")) and
               len({repr(r["config"].get(k)) for r in rows}) > 1 and k != "prune.method"]
    print("| variant | method | budget | seed | val top-1 (%) | probe (%) | search s | " + " | ".join(varying) + " |")
    print("|---|---|---:|---:|---:|---:|---:|" + "---|" * len(varying))
    for r in sorted(rows, key=lambda r: (r["budget"], r["seed"], -r["val_top1"])):
        vals = " | ".join(str(r["config"].get(k, "")) for k in varying)
        print(f"| {r['variant']} | {r['method']} | {100 * r['budget']:g}% | {r['seed']} | {100 * r['val_top1']:.2f} | "
              f"{100 * r['probe_val_top1']:.2f} | {r['search_s']:.0f} | {vals} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
