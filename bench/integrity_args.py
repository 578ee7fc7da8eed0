"""Command line shared by the integrity benchmarks (corruption_sweep.py, verify_cost.py)."""
import argparse
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def parser(doc):
    """--binary, --run-file, --store and --json; the caller adds its own options."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default=str(ROOT / "build" / "passlab"))
    p.add_argument("--run-file", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--json")
    return p
