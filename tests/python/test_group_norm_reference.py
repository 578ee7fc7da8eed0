"""passlab's group norms against Torch-Pruning (torch-pruning, pinned in scripts/requirements.txt)
as the independent reference, on the same weights.

tests/prune/helpers/group_norm_dump.cpp (built as passlab_group_norm_dump) writes a random
network (BatchNorm scales and statistics randomised), passlab's group importance of every channel
group (criterion group_l2), and the network after one plain SGD step on each of passlab's two
sparsity penalties (depgraph's group-norm regulariser, growreg's per-channel L2). Here the same
weights are loaded into PyTorch (analysis/load_pruned.py) and Torch-Pruning computes:
  * GroupMagnitudeImportance(p=2) over the dependency group of each passlab group: equal;
  * GroupNormPruner.regularize + the same SGD step: the same weights;
  * GrowingRegPruner.regularize with passlab's coefficients + the same step: the same conv and
    linear weights. Its BatchNorm update (``grad.data[idxs].add_(...)`` in torch-pruning 1.6.1)
    adds into a copy made by the index, so Torch-Pruning leaves BN scales unpenalised; passlab
    penalises them like every other coupled weight, checked against the formula w - lr * c * w.
ResNet-20 with its residual groups pruned (prune_residual = true) and VGG-11-BN.
"""
import os
import pathlib
import subprocess

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from analysis.load_pruned import load_pruned

tp = pytest.importorskip("torch_pruning")

ROOT = pathlib.Path(__file__).resolve().parents[2]
INPUT_SIZE = 32


def helper():
    build = pathlib.Path(os.environ.get("PASSLAB_BUILD_DIR") or ROOT / "build")
    b = build / "tests" / "passlab_group_norm_dump"
    if not (b.is_file() and os.access(b, os.X_OK)):
        pytest.skip(f"{b} not built")
    return b


def read_group(f, name):
    return {k: np.asarray(v[()]) for k, v in f[name].items()} if name in f else {}


@pytest.fixture(scope="module", params=[("resnet20", "1"), ("vgg11_bn", "0")], ids=["resnet20", "vgg11_bn"])
def dump(request, tmp_path_factory):
    arch, residual = request.param
    out = tmp_path_factory.mktemp(arch) / "dump.h5"
    r = subprocess.run([str(helper()), arch, str(out), residual], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    with h5py.File(out, "r") as f:
        d = {k: read_group(f, k) for k in ("weights", "importance", "depgraph", "growreg_coef", "growreg")}
        d["attrs"] = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    d["path"] = out
    return d


def fresh_model(dump):
    return load_pruned(dump["path"], input_size=INPUT_SIZE)


def linears(model):
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def example(model):
    return torch.randn(1, 3, INPUT_SIZE, INPUT_SIZE)


def group_of(DG, model, name):
    conv = model.get_submodule(name)
    return DG.get_pruning_group(conv, tp.prune_conv_out_channels, idxs=list(range(conv.out_channels)))


def out_channel_modules(model, group):
    names = {m: n for n, m in model.named_modules()}
    return {names[dep.target.module] for dep, _ in group if dep.handler in (tp.prune_conv_out_channels,)}


def sgd_step_with(model, regularize, lr):
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    regularize()
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def test_group_importance_equals_torch_pruning(dump):
    model = fresh_model(dump)
    DG = tp.DependencyGraph().build_dependency(model, example_inputs=example(model))
    raw = tp.importance.GroupMagnitudeImportance(p=2, normalizer=None)  # group_reduction "mean"
    default = tp.importance.GroupMagnitudeImportance(p=2)              # normalizer "mean"
    largest = 0
    for name, ours in dump["importance"].items():
        group = group_of(DG, model, name)
        largest = max(largest, len(group))
        np.testing.assert_allclose(ours, raw(group).double().numpy(), rtol=2e-5, err_msg=name)
        # The allocator normalises each group by its mean (prune/allocate.hpp): TP's default.
        np.testing.assert_allclose(ours / ours.mean(), default(group).double().numpy(), rtol=2e-5, err_msg=name)
    if dump["attrs"]["arch"] == "resnet20":
        # A residual stage group couples the stem or downsample conv, every block's second conv and
        # BN, and the consumers of the stage: far more members than a plain conv's group.
        assert largest > 10


def test_depgraph_step_equals_group_norm_pruner(dump):
    a = dump["attrs"]
    model = fresh_model(dump)
    before = {k: v.detach().clone().numpy() for k, v in model.state_dict().items()}
    pruner = tp.pruner.GroupNormPruner(model, example(model), importance=tp.importance.GroupMagnitudeImportance(p=2),
                                       reg=float(a["reg"]), ignored_layers=linears(model))
    # Every group Torch-Pruning regularises is one passlab penalised (all groups are prunable here).
    assert len(pruner._groups) == len(dump["importance"])
    ref = sgd_step_with(model, lambda: pruner.regularize(model, alpha=float(a["alpha"])), float(a["lr"]))
    ours = dump["depgraph"]
    changed = 0
    for k, v in ref.items():
        # The updates, not the new weights: a weight that is both a channel's filter and another
        # channel's input is shrunk by lr * reg * (gamma_a + gamma_b) close to 1, where the new
        # value is a difference of nearly equal floats.
        np.testing.assert_allclose(ours[k] - before[k], v - before[k], rtol=1e-4, atol=1e-9, err_msg=k)
        changed += int(not np.array_equal(v, before[k]))
    assert changed > 0


def test_growreg_step_equals_growing_reg_pruner(dump):
    a = dump["attrs"]
    lr = float(a["lr"])
    model = fresh_model(dump)
    before = {k: v.detach().clone().numpy() for k, v in model.state_dict().items()}
    pruner = tp.pruner.GrowingRegPruner(model, example(model), importance=tp.importance.GroupMagnitudeImportance(p=2),
                                        reg=0.0, delta_reg=0.0, ignored_layers=linears(model))
    coef = dump["growreg_coef"]
    for group in pruner._groups:
        names = out_channel_modules(model, group) & set(coef)
        assert len(names) == 1, names
        pruner.group_reg[group] = torch.from_numpy(coef[names.pop()]).float()
    ref = sgd_step_with(model, lambda: pruner.regularize(model), lr)
    ours = dump["growreg"]
    bn_scales = {n + ".weight": n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    checked = 0
    for k, v in ref.items():
        if k in bn_scales:
            continue
        np.testing.assert_allclose(ours[k] - before[k], v - before[k], rtol=1e-4, atol=1e-9, err_msg=k)
        checked += int(not np.array_equal(v, before[k]))
    assert checked > 0
    # BN scales: a BN right after a group's producing conv carries that group's coefficients.
    for k, name in bn_scales.items():
        group = next(g for g in pruner._groups if model.get_submodule(name) in [d.target.module for d, _ in g])
        conv = (out_channel_modules(model, group) & set(coef)).pop()
        w = before[k]
        np.testing.assert_allclose(ours[k] - w, -lr * coef[conv] * w, rtol=1e-4, atol=1e-9, err_msg=k)
