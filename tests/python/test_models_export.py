"""analysis/export_torchvision.py: the HDF5 layout passlab's weight loader reads."""
import importlib.util
import pathlib
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch
import torchvision

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "analysis" / "export_torchvision.py"


def load_script():
    spec = importlib.util.spec_from_file_location("export_torchvision", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_state_dict_round_trip(tmp_path):
    out = tmp_path / "mb.h5"
    rc = subprocess.run([sys.executable, str(SCRIPT), "--arch", "mobilenet_v2", "--num-classes", "7", "--seed", "3",
                         "--randomize-bn", "--input-size", "32", "--out", str(out)], capture_output=True, text=True)
    assert rc.returncode == 0, rc.stderr
    torch.manual_seed(3)
    ref = torchvision.models.mobilenet_v2(weights=None, num_classes=7)
    load_script().randomize_bn(ref, 3)
    sd = ref.state_dict()
    with h5py.File(out, "r") as f:
        assert set(f["weights"].keys()) == set(sd.keys())
        for k, t in sd.items():
            a = f["weights"][k][()]
            assert a.shape == tuple(t.shape), k
            if t.dtype == torch.int64:
                assert a.dtype == np.int64 and a.shape == ()
            else:
                assert a.dtype == np.float32
            np.testing.assert_array_equal(a, t.numpy())
        assert f.attrs["arch"] == "mobilenet_v2"
        assert int(f.attrs["num_classes"]) == 7
        assert "torchvision" in f.attrs["source"]
        x = torch.from_numpy(f["input"][()])
        ref.eval()
        with torch.no_grad():
            np.testing.assert_allclose(f["logits"][()], ref(x).numpy(), rtol=1e-5, atol=1e-6)
    assert not (tmp_path / "mb.h5.tmp").exists()


def test_unknown_arch_is_a_clear_error(tmp_path):
    rc = subprocess.run([sys.executable, str(SCRIPT), "--arch", "resnet56", "--out", str(tmp_path / "x.h5")],
                        capture_output=True, text=True)
    assert rc.returncode != 0
    assert "resnet56" in rc.stderr
    assert not (tmp_path / "x.h5").exists()
