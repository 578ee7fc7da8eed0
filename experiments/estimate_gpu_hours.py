"""GPU-hours the paper-scale sweeps would need: an estimate, not a measurement.

For each experiments/<name>.toml, `passlab run --dry-run` prints the sweep's estimated work in MACs
(3 x forward MACs x images seen, every stage of every task: sweep/estimate.cpp). It reads the image
count and side from the dataset store; these stores are not on this machine, so stub stores are
written first: an HDF5 file per dataset whose train/images dataset has the shape of the standard
training split and no data (a few KB). The work is divided by a MAC rate measured on a GPU:
training throughput x 3 x forward MACs per image (README, GPU verification: passlab's Trainer on
an H200, ResNet-50 at 224 px, bf16, 1094 img/s, before the fixes made after that run; PyTorch eager
2128 img/s in the same run). Evaluation passes, latency measurement and data loading are not
counted.

    $PASSLAB_VENV/bin/python experiments/estimate_gpu_hours.py [--passlab build/passlab]
"""
import argparse
import re
import subprocess
import tempfile
from pathlib import Path

import h5py

# Standard training splits (images) and the side a store of them holds (the TOMLs' input size).
TRAIN_SPLITS = {"cifar10": (50000, 32), "cifar100": (50000, 32), "tiny_imagenet": (100000, 64),
                "food101": (75750, 224), "dtd": (1880, 224), "flowers102": (1020, 224),
                "oxford_pets": (3680, 224), "stanford_cars": (8144, 224)}
RESNET50_FORWARD_MACS = 4.09e9  # at 224 px (README, Measured)
MEASURED_IMG_PER_S = {"passlab (H200, bf16)": 1094.0, "PyTorch eager (H200, bf16)": 2128.0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--passlab", default="build/passlab")
    a = ap.parse_args()
    rates = {k: v * 3 * RESNET50_FORWARD_MACS for k, v in MEASURED_IMG_PER_S.items()}
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as stubs:
        for name, (n, side) in TRAIN_SPLITS.items():
            with h5py.File(Path(stubs) / f"{name}.h5", "w") as f:
                f.create_dataset("train/images", shape=(n, side, side, 3), dtype="u1", chunks=(1, side, side, 3))
        print("| sweep | tasks | training images | estimated work (MAC) | "
              + " | ".join(f"GPU-hours at {k}'s rate" for k in rates) + " |")
        print("|---|---:|---:|---:|" + "---:|" * len(rates))
        total = {k: 0.0 for k in rates}
        for name, (n, _) in TRAIN_SPLITS.items():
            r = subprocess.run([a.passlab, "run", str(root / "experiments" / f"{name}.toml"), "--dry-run",
                                "--set", f'data.root="{stubs}"'], capture_output=True, text=True, cwd=root)
            if r.returncode != 0:
                raise SystemExit(f"{name}: passlab run --dry-run failed:\n{r.stdout}{r.stderr}")
            if "is not readable here" in r.stdout:
                raise SystemExit(f"{name}: the stub store was not read:\n{r.stdout}")
            work = float(re.search(r"estimated work: (\S+) MAC", r.stdout).group(1))
            tasks = int(re.search(r"plans (\d+) tasks", r.stdout).group(1))
            hours = {k: work / rate / 3600 for k, rate in rates.items()}
            for k in rates:
                total[k] += hours[k]
            print(f"| {name} | {tasks} | {n} | {work:.3g} | " + " | ".join(f"{h:.1f}" for h in hours.values()) + " |")
        print("| **all** | | | | " + " | ".join(f"**{h:.0f}**" for h in total.values()) + " |")


if __name__ == "__main__":
    main()
