"""analysis/load_pruned.py's inference form: fold_batchnorm's output equals the unfolded eval-mode
module's (the truth), for each architecture family, also in channels-last; the TorchScript file of
save_torchscript, loaded back with torch.jit.load alone, gives the unfolded module's output too.
BatchNorm statistics and affine parameters are randomised so that the fold is not an identity.
Every residual addition of the folded module sums in place (as torchvision's eager blocks and
passlab's fold.cpp do), counted against each architecture's residual blocks by hand, and the
caller's input is never overwritten."""
import operator
import pathlib
import sys

import pytest
import torch
from torch import nn

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from analysis import models  # noqa: E402
from analysis.load_pruned import fold_batchnorm, save_torchscript  # noqa: E402

CASES = [("resnet20", "cifar", 16), ("resnet18", "imagenet", 32), ("vgg11_bn", "cifar", 32), ("mobilenet_v2", "cifar", 16)]
# Residual additions per architecture, by hand: ResNet-20 3 stages x 3 blocks; ResNet-18 4 x 2;
# VGG none; MobileNetV2 one per repeated inverted-residual block, sum of (n - 1) over its settings
# (n = 1, 2, 3, 4, 3, 3, 1) = 10.
RESIDUAL_ADDS = {"resnet20": 9, "resnet18": 8, "vgg11_bn": 0, "mobilenet_v2": 10}


def randomised(arch, stem):
    torch.manual_seed(0)
    m = models.build(arch, 10, 3, stem)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.normal_(0.0, 0.2)
                mod.running_mean.normal_(0.0, 0.2)
                mod.running_var.uniform_(0.5, 2.0)
    return m.eval()


def close(got, want):
    scale = max(1.0, want.abs().max().item())
    return (got - want).abs().max().item() <= 1e-4 * scale


@pytest.mark.parametrize("arch,stem,size", CASES)
def test_folded_output_equals_unfolded(arch, stem, size):
    torch.set_num_threads(1)
    m = randomised(arch, stem)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        want = m(x)
        for channels_last in (False, True):
            folded = fold_batchnorm(m, channels_last=channels_last)
            assert not any(isinstance(k, nn.BatchNorm2d) for k in folded.modules())
            adds = [n.target for n in folded.graph.nodes if n.target in (operator.add, operator.iadd, torch.add)]
            assert adds == [operator.iadd] * RESIDUAL_ADDS[arch], (arch, adds)
            x_before = x.clone()
            assert close(folded(x), want), (arch, channels_last)
            assert torch.equal(x, x_before), "the folded module overwrote its input"
    # The source module is untouched (still has its BatchNorms, same output).
    assert any(isinstance(k, nn.BatchNorm2d) for k in m.modules())
    with torch.no_grad():
        assert torch.equal(m(x), want)


def test_torchscript_file_reproduces_the_unfolded_module(tmp_path):
    torch.set_num_threads(1)
    m = randomised("resnet20", "cifar")
    x = torch.randn(3, 3, 16, 16)
    path = save_torchscript(fold_batchnorm(m), tmp_path / "pruned.pt", torch.randn(1, 3, 16, 16))
    loaded = torch.jit.load(str(path))
    with torch.no_grad():
        want = m(x)
        got = loaded(x)  # another batch size than the trace's example
    assert close(got, want)
    assert not close(got, want + 1e-2 * want.abs().max())  # the comparison can fail
