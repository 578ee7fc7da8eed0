#!/usr/bin/env python3
"""Export a torchvision model's state_dict to an HDF5 weights file that passlab can load.

Layout (read by passlab::models::load_weights):
  /weights/<state_dict key>   one dataset per tensor (float32 parameters and running stats,
                              int64 num_batches_tracked as a scalar)
  root attributes             arch, num_classes, source ("torchvision <version>"), weights
With --input-size, also a reference forward pass in eval mode:
  /input  [batch, 3, size, size] float32       /logits [batch, num_classes] float32

Examples:
  export_torchvision.py --arch resnet50 --weights DEFAULT --out resnet50_imagenet.h5   # needs a download
  export_torchvision.py --arch resnet18 --seed 0 --randomize-bn --input-size 64 --out r18.h5
"""
import argparse
import os
import sys

import h5py
import numpy as np
import torch
import torchvision

ARCHS = ["resnet18", "resnet34", "resnet50", "vgg11_bn", "vgg16_bn", "vgg19_bn", "mobilenet_v2"]


def build(arch, weights, num_classes, seed):
    if arch not in ARCHS:
        raise SystemExit(f"export_torchvision: torchvision has no '{arch}' (choose from {', '.join(ARCHS)})")
    torch.manual_seed(seed)
    ctor = getattr(torchvision.models, arch)
    if weights:
        model = ctor(weights=weights)
        if num_classes and num_classes != model.state_dict()[head_key(arch)].shape[0]:
            raise SystemExit("export_torchvision: --num-classes differs from the pretrained head; "
                             "export the pretrained head and let passlab replace it")
    else:
        model = ctor(weights=None, num_classes=num_classes or 1000)
    return model


def head_key(arch):
    if arch.startswith("resnet"):
        return "fc.weight"
    if arch.startswith("vgg"):
        return "classifier.6.weight"
    return "classifier.1.weight"


def randomize_bn(model, seed):
    """Non-trivial BatchNorm statistics and affine parameters, so eval-mode BN is tested."""
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
                m.weight.copy_(0.5 + 0.5 * torch.rand(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))
                m.num_batches_tracked.fill_(7)


def export(model, arch, out, source, input_size=0, batch=2, seed=0):
    tmp = out + ".tmp"
    sd = model.state_dict()
    with h5py.File(tmp, "w") as f:
        grp = f.create_group("weights")
        for key, t in sd.items():
            a = t.detach().cpu().numpy()
            if a.dtype == np.float64:
                a = a.astype(np.float32)
            grp.create_dataset(key, data=a)
        f.attrs["arch"] = arch
        f.attrs["num_classes"] = int(sd[head_key(arch)].shape[0])
        f.attrs["source"] = source
        if input_size:
            g = torch.Generator().manual_seed(seed + 2)
            x = torch.rand(batch, 3, input_size, input_size, generator=g)
            model.eval()
            with torch.no_grad():
                logits = model(x)
            f.create_dataset("input", data=x.numpy())
            f.create_dataset("logits", data=logits.numpy())
    os.replace(tmp, out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", required=True, action="append", help="torchvision model name (repeatable)")
    p.add_argument("--out", required=True, help="output .h5 (with several --arch: a directory, one <arch>.h5 each)")
    p.add_argument("--weights", default="", help="torchvision weights enum name, e.g. DEFAULT (downloads); empty: random init")
    p.add_argument("--num-classes", type=int, default=0, help="classes of a random-init model (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--randomize-bn", action="store_true", help="random BN statistics (tests)")
    p.add_argument("--input-size", type=int, default=0, help="also store /input and eval-mode /logits at this size")
    p.add_argument("--batch", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("PASSLAB_EXPORT_THREADS", "2")))
    if len(args.arch) > 1:
        os.makedirs(args.out, exist_ok=True)
    for arch in args.arch:
        model = build(arch, args.weights or None, args.num_classes, args.seed)
        if args.randomize_bn:
            randomize_bn(model, args.seed)
        out = os.path.join(args.out, arch + ".h5") if len(args.arch) > 1 else args.out
        source = f"torchvision {torchvision.__version__} {arch} weights={args.weights or 'random(seed=%d)' % args.seed}"
        export(model, arch, out, source, args.input_size, args.batch, args.seed)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
