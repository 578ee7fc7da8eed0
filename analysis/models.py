"""PyTorch definitions of passlab's architectures, with torchvision's module names.

passlab's C++ models (src/models/architectures.cpp) use torchvision's state_dict keys, so the
dense architectures are torchvision's own classes, patched where passlab differs:

  resnet18/34/50    torchvision.models.resnetXX; ``stem="cifar"``: conv1 is 3x3/1 and no max-pool
  resnet20/56       not in torchvision: :class:`CifarResNet` below (same names: conv1, bn1,
                    layer1..3, fc; BasicBlocks with option-B 1x1-conv shortcuts downsample.0/.1)
  vgg11/16/19_bn    torchvision.models.vggXX_bn; ``stem="cifar"``: global average pool and a single
                    Linear named classifier.0
  mobilenet_v2      torchvision.models.mobilenet_v2; ``stem="cifar"``: stride 1 in the stem and in
                    the first 24-channel block (8x total down-sampling)

A pruned (compact) network has the same modules with fewer channels: :func:`resize_to_state`
replaces every Conv2d / BatchNorm2d / Linear whose shape differs from a state_dict by one of the
state_dict's shape (depthwise convs keep groups == channels). That is exactly what passlab's
slicing produces, so ``build(arch, ...)`` followed by ``resize_to_state(model, sd)`` and
``load_state_dict(sd)`` reproduces a run file's compact model.

``stem`` follows passlab's config: "cifar", "imagenet" or "auto" (cifar below 64 px).
"""
from __future__ import annotations

import torch
from torch import nn
import torchvision
from torchvision.models.resnet import BasicBlock, Bottleneck

ARCHS = ("resnet18", "resnet34", "resnet50", "resnet20", "resnet56", "vgg11_bn", "vgg16_bn", "vgg19_bn",
         "mobilenet_v2")


def resolve_stem(stem: str, input_size: int | None) -> str:
    """passlab's rule (models::resolve_stem): auto means cifar below 64 px."""
    if stem in ("cifar", "imagenet"):
        return stem
    if stem != "auto":
        raise ValueError(f"stem '{stem}' (allowed: cifar, imagenet, auto)")
    if not input_size:
        raise ValueError("stem 'auto' needs the input size")
    return "cifar" if input_size < 64 else "imagenet"


class CifarResNet(nn.Module):
    """ResNet-20/56 as passlab builds them: stages of BasicBlocks with 16/32/64 planes, 1x1-conv
    (option B) shortcuts where the shape changes, torchvision's module names. With
    ``stem="imagenet"`` the stem is torchvision's 7x7/2 conv + 3x3/2 max-pool, as in passlab."""

    def __init__(self, blocks, planes=(16, 32, 64), num_classes=10, in_channels=3, stem="cifar"):
        super().__init__()
        self.inplanes = planes[0]
        if stem == "imagenet":
            self.conv1 = nn.Conv2d(in_channels, planes[0], 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        else:
            self.conv1 = nn.Conv2d(in_channels, planes[0], 3, 1, 1, bias=False)
            self.maxpool = nn.Identity()
        self.bn1 = nn.BatchNorm2d(planes[0])
        self.relu = nn.ReLU(inplace=True)
        for i, (n, p) in enumerate(zip(blocks, planes)):
            setattr(self, f"layer{i + 1}", self._make_layer(p, n, 1 if i == 0 else 2))
        self.num_stages = len(blocks)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(planes[-1], num_classes)

    def _make_layer(self, planes, n, stride):
        layers = []
        for i in range(n):
            s = stride if i == 0 else 1
            down = None
            if s != 1 or self.inplanes != planes:
                down = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, s, bias=False), nn.BatchNorm2d(planes))
            layers.append(BasicBlock(self.inplanes, planes, s, down))
            self.inplanes = planes
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build(arch: str, num_classes: int, in_channels: int = 3, stem: str = "cifar") -> nn.Module:
    """The dense network passlab builds for ``arch`` (stem already resolved: cifar | imagenet)."""
    if stem not in ("cifar", "imagenet"):
        raise ValueError(f"stem must be resolved to 'cifar' or 'imagenet', not '{stem}'")
    cifar = stem == "cifar"
    if arch in ("resnet20", "resnet56"):
        n = 3 if arch == "resnet20" else 9
        return CifarResNet((n, n, n), num_classes=num_classes, in_channels=in_channels, stem=stem)
    if arch in ("resnet18", "resnet34", "resnet50"):
        m = getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)
        if cifar:
            m.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
            m.maxpool = nn.Identity()
        elif in_channels != 3:
            m.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        return m
    if arch in ("vgg11_bn", "vgg16_bn", "vgg19_bn"):
        m = getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)
        first = m.features[0]
        if in_channels != 3:
            m.features[0] = nn.Conv2d(in_channels, first.out_channels, 3, 1, 1)
        if cifar:
            m.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            m.classifier = nn.Sequential(nn.Linear(512, num_classes))
        return m
    if arch == "mobilenet_v2":
        m = torchvision.models.mobilenet_v2(weights=None, num_classes=num_classes)
        stem_conv = m.features[0][0]
        if in_channels != 3 or cifar:
            m.features[0][0] = nn.Conv2d(in_channels, stem_conv.out_channels, 3, 1 if cifar else 2, 1, bias=False)
        if cifar:
            # features.2 is the first 24-channel block; its depthwise conv carries the stride.
            m.features[2].conv[1][0].stride = (1, 1)
        return m
    raise ValueError(f"unknown architecture '{arch}' (known: {', '.join(ARCHS)})")


def _set_module(root: nn.Module, path: str, new: nn.Module):
    parent_path, _, name = path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    setattr(parent, name, new)


def resize_to_state(model: nn.Module, state: dict) -> nn.Module:
    """Replace modules whose shapes differ from ``state`` (a state_dict of tensors or arrays) by
    modules of the state's shapes. Returns the model (modified in place)."""
    for name, mod in list(model.named_modules()):
        key = f"{name}.weight" if name else "weight"
        if key not in state:
            continue
        shape = tuple(state[key].shape)
        if isinstance(mod, nn.Conv2d):
            if tuple(mod.weight.shape) == shape:
                continue
            depthwise = mod.groups > 1 and mod.groups == mod.in_channels == mod.out_channels
            if mod.groups > 1 and not depthwise:
                raise ValueError(f"{name}: grouped conv with groups={mod.groups} cannot be resized")
            out = shape[0]
            inp = out if depthwise else shape[1]
            new = nn.Conv2d(inp, out, mod.kernel_size, mod.stride, mod.padding, mod.dilation,
                            groups=out if depthwise else 1, bias=mod.bias is not None)
        elif isinstance(mod, nn.BatchNorm2d):
            if mod.num_features == shape[0]:
                continue
            new = nn.BatchNorm2d(shape[0], eps=mod.eps, momentum=mod.momentum)
        elif isinstance(mod, nn.Linear):
            if tuple(mod.weight.shape) == shape:
                continue
            new = nn.Linear(shape[1], shape[0], bias=mod.bias is not None)
        else:
            continue
        _set_module(model, name, new)
    return model


def mac_counter(model: nn.Module, in_channels: int):
    """A function input_size -> MACs per image with passlab's convention: conv and linear
    multiply-accumulates, bias excluded (models::Structure::count). It runs a meta-device copy of
    the model (shapes only, no compute)."""
    import copy
    meta = copy.deepcopy(model).to("meta").eval()
    total = [0]

    def conv_hook(m, _inp, out):
        kh, kw = m.kernel_size
        total[0] += out.shape[1] * out.shape[2] * out.shape[3] * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m, _inp, _out):
        total[0] += m.in_features * m.out_features

    for m in meta.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(conv_hook)
        elif isinstance(m, nn.Linear):
            m.register_forward_hook(linear_hook)

    def count(input_size: int) -> int:
        total[0] = 0
        with torch.no_grad():
            meta(torch.empty(1, in_channels, input_size, input_size, device="meta"))
        return int(total[0])

    return count


def count_macs(model: nn.Module, in_channels: int, input_size: int) -> int:
    """MACs per image of ``model`` at ``input_size`` (see :func:`mac_counter`)."""
    return mac_counter(model, in_channels)(input_size)
