#!/usr/bin/env python3
"""Checks passlab's module layering (DESIGN.md §5) and where raw MPI calls may appear.

  python3 scripts/check_layering.py [--root DIR]

Fails (exit 1, one line per violation) when
  - a file of module M (include/passlab/M/ or src/M/) includes "passlab/N/..." and N is not on a
    lower floor than M (a higher module, or another module on the same floor);
  - an MPI call (an identifier MPI_... followed by '(' in code, not in a comment or a string)
    appears outside src/dist, src/core and their headers: every other module talks through
    dist::Communicator and dist::Runtime.
ctest runs it on the tree (entry `layering`); tests/python/test_layering.py shows it failing.
Python 3 standard library only.
"""
import argparse
import pathlib
import re
import sys

# Floors, lowest first. A module may include its own headers and those of modules on lower
# floors, never one on its own floor or above.
#   cuda:      CUDA/NCCL wrappers, a leaf (core only) that dist uses.
#   tensorio:  tensors <-> HDF5, on top of io.
#   buildinfo: versions of the libraries (core, cuda); read by the run-file writer and the CLI.
#   train below pass: the PASS search runs through train::Trainer (src/pass includes train), so
#   the one training loop sits on its own floor under pass.
#   pipeline:  the dense and prune tasks as named stages, between pass/train and sweep.
FLOORS = [
    ["core"],
    ["config", "io", "cuda"],
    ["tensorio", "buildinfo"],
    ["dist", "data", "models"],
    ["prune"],
    ["train"],
    ["pass"],
    ["pipeline"],
    ["sweep"],
    ["cli"],
]
FLOOR = {m: i for i, ms in enumerate(FLOORS) for m in ms}

# Public headers directly under include/passlab/ and the module they belong to.
TOP_LEVEL_HEADERS = {"build_info.hpp": "buildinfo"}

# Where MPI may be called directly.
MPI_ALLOWED = ("src/dist", "src/core", "include/passlab/dist", "include/passlab/core")

SOURCE_SUFFIXES = {".hpp", ".h", ".cpp", ".cc", ".inc", ".cu", ".cuh"}

INCLUDE_RE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*[<"]passlab/([^">]+)[">]', re.M)
MPI_CALL_RE = re.compile(r"\b(MPI_[A-Za-z0-9_]*)\s*\(")


def strip_code(text, keep_strings):
    """`text` with comments (and, unless keep_strings, string and char literals) blanked out;
    newlines are kept so line numbers stay right."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        nxt = text[i + 1] if i + 1 < n else ""
        if c == "/" and nxt == "/":
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif c == "/" and nxt == "*":
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("".join(ch if ch == "\n" else " " for ch in text[i:j]))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(text[i:j] if keep_strings else c + " " * max(0, j - i - 2) + c)
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def line_of(text, pos):
    return text.count("\n", 0, pos) + 1


def included_module(path):
    """Module of an include path relative to include/passlab/ ("dist/runtime.hpp" -> dist)."""
    head, sep, _ = path.partition("/")
    if sep:
        return head
    return TOP_LEVEL_HEADERS.get(path)


def module_files(root):
    """(module, file) for every source file of every module, headers included."""
    for base in (root / "include" / "passlab", root / "src"):
        if not base.is_dir():
            continue
        for f in sorted(base.rglob("*")):
            if not f.is_file() or f.suffix not in SOURCE_SUFFIXES:
                continue
            rel = f.relative_to(base)
            if len(rel.parts) > 1:
                yield rel.parts[0], f
            elif base.name == "passlab":
                yield TOP_LEVEL_HEADERS.get(rel.name), f
            else:
                yield None, f


def check(root):
    root = pathlib.Path(root)
    problems = []
    for module, f in module_files(root):
        rel = f.relative_to(root).as_posix()
        if module not in FLOOR:
            problems.append(f"{rel}: module {module!r} is not in the layering of scripts/check_layering.py "
                            "(add it to FLOORS or TOP_LEVEL_HEADERS)")
            continue
        text = f.read_text(encoding="utf-8", errors="replace")
        for m in INCLUDE_RE.finditer(strip_code(text, keep_strings=True)):
            target = included_module(m.group(1))
            line = line_of(text, m.start())
            if target not in FLOOR:
                problems.append(f"{rel}:{line}: includes passlab/{m.group(1)}, which belongs to no known module")
            elif target != module and FLOOR[target] >= FLOOR[module]:
                where = "a higher" if FLOOR[target] > FLOOR[module] else "a same-floor"
                problems.append(f"{rel}:{line}: module {module} includes {where} module {target} (passlab/{m.group(1)})")
        if rel.startswith(MPI_ALLOWED):
            continue
        for m in MPI_CALL_RE.finditer(strip_code(text, keep_strings=False)):
            problems.append(f"{rel}:{line_of(text, m.start())}: calls {m.group(1)} outside src/dist and src/core "
                            "(use dist::Communicator or dist::Runtime)")
    return problems


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=pathlib.Path(__file__).resolve().parents[1], type=pathlib.Path,
                    help="source tree to check (default: this checkout)")
    args = ap.parse_args(argv)
    if not (args.root / "src").is_dir():
        print(f"check_layering: {args.root} has no src/ directory", file=sys.stderr)
        return 2
    problems = check(args.root)
    for p in problems:
        print(p)
    if problems:
        print(f"check_layering: {len(problems)} violation(s)", file=sys.stderr)
        return 1
    print("check_layering: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
