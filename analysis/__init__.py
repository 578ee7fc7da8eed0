"""passlab's offline analysis: read run files, write paper tables and plots, load pruned models.

  python3 -m analysis report RESULTS_DIR --out OUT   tables (md/tex/csv), plots (png/pdf), index.md
  python3 -m analysis load RUN.h5 [--input-size N]   rebuild the pruned model in PyTorch, print it
  python3 -m analysis check-logits FILE.h5           compare with passlab's logits stored in FILE

Run from the source root with the project's Python (h5py, torch, matplotlib):
``source scripts/env.sh && $PASSLAB_VENV/bin/python -m analysis ...``.

Modules: runs (loading and validating result files), measurements (speed-ups timed again after the
sweep by `passlab remeasure`, preferred by the report), report (tables), plots, models (PyTorch
definitions with torchvision's names), load_pruned (pruned weights back into PyTorch),
export_torchvision (torchvision weights to passlab's HDF5 layout).
"""
from .runs import DamagedRunError, Problem, Run, load_run, scan  # noqa: F401
