"""Command line of the analysis package (see analysis/__init__.py)."""
import argparse
import sys


def main(argv=None):
    p = argparse.ArgumentParser(prog="python3 -m analysis", description=__import__("analysis").__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("report", help="tables, CSVs and plots of a results directory")
    r.add_argument("results", help="results directory (output.dir of a sweep: runs/, dense/, work/) or a folder of run files")
    r.add_argument("--out", required=True, help="output directory")
    r.add_argument("--list-damaged", action="store_true",
                   help="list unreadable run files under 'Runs not in the tables' instead of stopping")
    r.add_argument("--no-plots", action="store_true")
    r.add_argument("--decimals", type=int, default=2)
    r.add_argument("--speedups", choices=("auto", "run-files"), default="auto",
                   help="auto: from RESULTS/measurements.h5 (passlab remeasure) where present, else the run files")
    r.add_argument("--measured-on", metavar="HOST[@DEVICE]",
                   help="the machine of measurements.h5 to use (default: the one that measured most runs)")
    lo = sub.add_parser("load", help="rebuild a run file's pruned model in PyTorch and describe it")
    lo.add_argument("file")
    lo.add_argument("--input-size", type=int, default=0, help="input side (default: from the file)")
    ck = sub.add_parser("check-logits", help="compare load_pruned's logits with /input and /logits stored in the file")
    ck.add_argument("file", nargs="+")
    ck.add_argument("--rtol", type=float, default=1e-4, help="max |torch - passlab| / max |passlab|")
    a = p.parse_args(argv)

    from .runs import DamagedRunError
    try:
        if a.cmd == "report":
            from .report import write_report
            result, rows, methods, written = write_report(a.results, a.out, "list" if a.list_damaged else "raise",
                                                          plots=not a.no_plots, decimals=a.decimals,
                                                          speedups=a.speedups, measured_on=a.measured_on)
            print(result.speedup_source.describe())
            print(f"{len(result.runs)} complete runs in {len(rows)} table rows x {len(methods)} methods; "
                  f"{len(result.problems)} not in the tables; {len(written)} plot files; written to {a.out}")
            for pr in result.problems:
                print(f"  not in the tables: {pr.status}: {pr.path} {pr.reason}", file=sys.stderr)
            return 0
        from . import load_pruned as lp
        if a.cmd == "load":
            model, info = lp.load_pruned(a.file, input_size=a.input_size or None, return_info=True)
            print(info.describe())
            return 0
        if a.cmd == "check-logits":
            bad = 0
            for file in a.file:
                model, info = lp.load_pruned(file, return_info=True)
                rel = lp.check_logits(file, model)
                ok = rel <= a.rtol
                bad += not ok
                print(f"{file}: {info.arch} ({info.stem} stem, {info.input_size} px, {info.macs:,} MACs): "
                      f"max |torch - passlab| / max |passlab| = {rel:.3g} ({'ok' if ok else 'FAIL'}, tolerance {a.rtol:g})")
            return 1 if bad else 0
    except DamagedRunError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
