"""scripts/check_layering.py fails on a layering violation and on a stray MPI call.

The real tree is checked by the ctest entry `layering`; here the checker runs on small trees
written for the purpose, so that it can be seen to fail (and to pass where it should).
"""
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHECKER = ROOT / "scripts" / "check_layering.py"


def write(root, rel, text):
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def run(root):
    r = subprocess.run([sys.executable, str(CHECKER), "--root", str(root)], capture_output=True, text=True)
    return r.returncode, r.stdout


def clean_tree(root):
    write(root, "include/passlab/core/error.hpp", "#pragma once\n")
    write(root, "include/passlab/dist/communicator.hpp", '#pragma once\n#include <mpi.h>\n#include "passlab/core/error.hpp"\n')
    write(root, "src/dist/communicator.cpp", '#include "passlab/dist/communicator.hpp"\nvoid f() { MPI_Barrier(MPI_COMM_WORLD); }\n')
    write(root, "src/train/trainer.cpp",
          '#include "passlab/dist/communicator.hpp"\n'
          "// MPI_Gather( in a comment is no call\n"
          '/* nor MPI_Bcast( in a block comment */\n'
          'const char* s = "MPI_Allreduce(";\n'
          "void g(MPI_Comm c);\n")
    write(root, "src/sweep/runner.cpp", '#include "passlab/train/trainer.hpp"\n#include "passlab/dist/communicator.hpp"\n')


def test_clean_tree_passes(tmp_path):
    clean_tree(tmp_path)
    code, out = run(tmp_path)
    assert code == 0, out
    assert "check_layering: ok" in out


def violations(root, files):
    """The checker's report on the clean tree plus `files` (path -> text); it must fail."""
    clean_tree(root)
    for rel, text in files.items():
        write(root, rel, text)
    code, out = run(root)
    assert code == 1, out
    return out.strip().splitlines()


def test_upward_include_and_stray_mpi_call_are_both_reported(tmp_path):
    lines = violations(tmp_path, {
        # prune sits below train: including the trainer climbs a floor.
        "src/prune/allocate.cpp": '#include "passlab/core/error.hpp"\n\n#include "passlab/train/trainer.hpp"\n',
        # A raw MPI call in sweep (it must go through dist::Communicator).
        "src/sweep/plan.cpp": "int n() {\n  int r = 0;\n  MPI_Comm_rank (MPI_COMM_WORLD, &r);\n  return r;\n}\n",
    })
    assert "src/prune/allocate.cpp:3: module prune includes a higher module train (passlab/train/trainer.hpp)" in lines
    assert any(l.startswith("src/sweep/plan.cpp:3: calls MPI_Comm_rank outside src/dist and src/core") for l in lines)
    assert len(lines) == 2, lines  # nothing else: comments, strings and MPI_ types are not calls


def test_same_floor_include_and_mpi_in_a_header_are_reported(tmp_path):
    lines = violations(tmp_path, {
        "include/passlab/data/loader.hpp": '#pragma once\n#include "passlab/models/network.hpp"\n',
        "include/passlab/train/helpers.hpp": "inline void b() { MPI_Barrier(MPI_COMM_WORLD); }\n",
    })
    assert any(l.startswith("include/passlab/data/loader.hpp:2: module data includes a same-floor module models")
               for l in lines), lines
    assert any(l.startswith("include/passlab/train/helpers.hpp:1: calls MPI_Barrier") for l in lines), lines
    assert len(lines) == 2, lines
