"""analysis/load_pruned.py on the run files of a tiny real sweep (conftest.analysis_sweep).

The pruned model rebuilt in PyTorch is evaluated on the very test images passlab evaluated
(the first data.limit_test images of the store, normalised with the store's mean/std); its mean
cross-entropy and top-1 must equal the /summary test_loss and top1 that passlab's C++ forward
produced. PASS runs of the sweep are fine-tuned behind their visual prompt, so those are rebuilt
with it (load_pruned(..., with_prompt=True)). (tests/analysis/test_load_pruned.cpp compares logits directly, for every architecture.)
"""
import pathlib
import sys

import h5py
import numpy as np
import pytest
import torch

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from analysis.load_pruned import load_pruned  # noqa: E402
from analysis.runs import DamagedRunError  # noqa: E402

LOSS_RTOL = 1e-6


def store_test_split(store, n):
    with h5py.File(store, "r") as f:
        x = f["test/images"][:n].astype(np.float32) / 255.0  # [N, H, W, C]
        y = f["test/labels"][:n]
        mean = np.asarray(f.attrs["mean"], dtype=np.float32)
        std = np.asarray(f.attrs["std"], dtype=np.float32)
    x = (x - mean) / std
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))), torch.from_numpy(y)


def test_pruned_model_reproduces_passlab_test_metrics(analysis_sweep):
    files = []
    for p in sorted((analysis_sweep["results"] / "runs").glob("*.h5")):
        with h5py.File(p, "r") as f:
            status = f.attrs["status"]
            if (status.decode() if isinstance(status, bytes) else status) == "complete":  # not a failure record
                files.append(p)
    assert len(files) >= 8
    x, y = store_test_split(analysis_sweep["store"], 64)
    torch.set_num_threads(2)
    prompted = 0
    for p in files:
        with h5py.File(p, "r") as f:
            summary = dict(f["summary"].attrs)
            keep = {g: int(f["keep"][g].shape[0]) for g in f["keep"]}
            n_test = 64
        model, info = load_pruned(p, return_info=True)
        if info.keep_prompt:
            # Fine-tuned and evaluated behind the visual prompt: rebuild that too (mean/std from
            # the store named in /config), and make sure the prompt matters for these images.
            bare = model
            model = load_pruned(p, with_prompt=True)
            with torch.no_grad():
                bare_loss = torch.nn.functional.cross_entropy(bare(x), y).item()
            # Without its prompt the network is measurably off (the prompt path is exercised).
            assert abs(bare_loss - float(summary["test_loss"])) > 5 * LOSS_RTOL * float(summary["test_loss"]), p.name
            prompted += 1
        # The widths are the file's: each group's producing conv has the kept channel count.
        mods = dict((model.model if info.keep_prompt else model).named_modules())
        for g, k in keep.items():
            assert mods[g].out_channels == k, (p.name, g)
        assert info.macs == int(summary["macs"]) and info.input_size == 14 and info.stem == "cifar"
        with torch.no_grad():
            logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits, y).item()
        top1 = (logits.argmax(1) == y).double().mean().item()
        # Same float32 forward as passlab's: observed ~1e-8 relative; the prompt alone moves it ~2e-5.
        assert loss == pytest.approx(float(summary["test_loss"]), rel=LOSS_RTOL), p.name
        assert abs(top1 - float(summary["top1"])) <= 1.0 / n_test + 1e-12, p.name  # a tie may flip one image
    assert prompted == 4  # the PASS runs


def test_dense_model_file_loads_too(analysis_sweep):
    dense = sorted((analysis_sweep["results"] / "dense").glob("*.h5"))
    assert len(dense) == 2
    x, y = store_test_split(analysis_sweep["store"], 64)
    for p in dense:
        model, info = load_pruned(p, return_info=True)
        assert info.kind == "dense" and info.input_size == 14  # inferred from /summary macs
        with h5py.File(p, "r") as f:
            want = float(f["summary"].attrs["top1"])
        with torch.no_grad():
            top1 = (model(x).argmax(1) == y).double().mean().item()
        assert abs(top1 - want) <= 1.0 / 64 + 1e-12


def test_load_cli_describes_the_run(analysis_sweep, capsys):
    from analysis.__main__ import main
    p = next(p for p in sorted((analysis_sweep["results"] / "runs").glob("*.h5")) if p.stem != analysis_sweep["failed_id"])
    assert main(["load", str(p)]) == 0
    out = capsys.readouterr().out
    assert "resnet20 (cifar stem)" in out and "layer1.0.conv1" in out


def test_unreadable_file_is_named(tmp_path):
    bad = tmp_path / "broken.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(DamagedRunError, match="broken.h5"):
        load_pruned(bad)


def test_verify_refuses_a_file_changed_after_it_was_written_and_nan_weights_always(analysis_sweep, tmp_path):
    """verify=True checks the file as the report does: a run file whose weights were changed after
    passlab wrote it is refused by its content digest (the change is finite, so only the digest can
    tell), and loads without verify. A NaN weight is refused with or without verify."""
    import shutil
    src = next(p for p in sorted((analysis_sweep["results"] / "runs").glob("*.h5")) if p.stem != analysis_sweep["failed_id"])
    load_pruned(src, verify=True)  # the untouched file passes
    changed, nan = tmp_path / "changed.h5", tmp_path / "nan.h5"
    for copy, value in ((changed, 0.125), (nan, float("nan"))):
        shutil.copy(src, copy)
        with h5py.File(copy, "r+") as f:
            w = f["weights/fc.weight"]
            a = w[()]
            a.flat[0] = value
            w[...] = a
    with pytest.raises(DamagedRunError, match="content digest mismatch"):
        load_pruned(changed, verify=True)
    load_pruned(changed)  # finite: without verify nothing can tell
    for verify in (False, True):
        with pytest.raises(DamagedRunError, match="non-finite values in .*fc.weight"):
            load_pruned(nan, verify=verify)
