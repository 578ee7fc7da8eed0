#!/usr/bin/env python3
"""PyTorch side of bench/train_throughput: the same model and training step as passlab's
(SGD momentum 0.9, weight decay 5e-4, cross-entropy, train mode; fp32 on CPU, fp32 or bf16
autocast on CUDA), in plain eager PyTorch, timed the same way.

    train_throughput_ref.py --arch resnet18 --in-ch 3 --size 32 --batch 128 --threads 2 --steps 5
    train_throughput_ref.py --arch resnet50 --size 224 --stem imagenet --batch 64 --device cuda --precision bf16
prints one JSON line: {"arch": ..., "images_per_s": ..., "step_s": [...]}. On CUDA the clock
starts after a synchronisation at the first timed step and stops after one at the end (step_s
then holds the total only).
"""
import argparse
import json
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision


class BasicBlock(nn.Module):
    """torchvision-style basic block with option-B (1x1 conv + BN) shortcuts, as passlab's resnet20."""

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class CifarResNet(nn.Module):
    def __init__(self, blocks, planes, in_ch, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, planes[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes[0])
        layers, cin = [], planes[0]
        for st, (n, p) in enumerate(zip(blocks, planes)):
            blks = []
            for i in range(n):
                blks.append(BasicBlock(cin, p, 2 if (st > 0 and i == 0) else 1))
                cin = p
            layers.append(nn.Sequential(*blks))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def make(arch, in_ch, classes, stem="cifar"):
    if arch in ("resnet18", "resnet50"):
        m = getattr(torchvision.models, arch)(weights=None, num_classes=classes)
        if stem == "cifar":  # the CIFAR stem: 3x3/1 conv, no max-pool
            m.conv1 = nn.Conv2d(in_ch, 64, 3, 1, 1, bias=False)
            m.maxpool = nn.Identity()
        elif in_ch != 3:
            m.conv1 = nn.Conv2d(in_ch, 64, 7, 2, 3, bias=False)
        return m
    if arch == "resnet20":
        return CifarResNet([3, 3, 3], [16, 32, 64], in_ch, classes)
    raise SystemExit(f"unknown arch {arch}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", required=True)
    ap.add_argument("--in-ch", type=int, default=3)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--stem", default="cifar", choices=["cifar", "imagenet"])
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    bf16 = cuda and a.precision == "bf16"  # as passlab: bf16 autocast on GPU only
    model = make(a.arch, a.in_ch, a.classes, a.stem).to(dev)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(a.batch, a.in_ch, a.size, a.size, device=dev)
    y = torch.randint(0, a.classes, (a.batch,), device=dev)
    times = []
    faults0 = 0
    start = 0.0
    for i in range(a.warmup + a.steps):
        if i == a.warmup:
            if cuda:
                torch.cuda.synchronize()
            faults0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if i >= a.warmup and not cuda:
            times.append(time.perf_counter() - t0)
    if cuda:
        torch.cuda.synchronize()
        times = [time.perf_counter() - start]
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0
    print(json.dumps({"arch": a.arch, "torch": torch.__version__, "device": a.device,
                      "precision": "bf16" if bf16 else "fp32", "threads": a.threads, "batch": a.batch,
                      "images_per_s": a.batch * a.steps / sum(times), "step_s": times,
                      "minor_faults_per_step": faults / a.steps}))


if __name__ == "__main__":
    main()
