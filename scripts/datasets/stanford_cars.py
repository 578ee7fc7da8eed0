#!/usr/bin/env python3
"""Stanford Cars (cars_train.tgz, cars_test.tgz, car_devkit.tgz and cars_test_annos_withlabels.mat
in one folder) -> imagefolder layout: 8144 train and 8041 test images of 196 classes. Class folders
are "<id>_<name>" (id 001..196 keeps the official order when sorted). Needs scipy for the .mat files."""
import os
import re

from _common import Placer, die, parser, require


def main():
    a = parser(__doc__).parse_args()
    try:
        from scipy.io import loadmat
    except ImportError:
        die("reading the devkit .mat files needs scipy: pip install scipy")
    dev = os.path.join(a.source, "devkit")
    names = [str(n[0]) for n in loadmat(require(os.path.join(dev, "cars_meta.mat"), "class names"))["class_names"].ravel()]
    classes = [f"{i + 1:03d}_" + re.sub(r"[^A-Za-z0-9.-]+", "_", n).strip("_") for i, n in enumerate(names)]
    p = Placer(a.out, a.copy)
    sets = (("train", os.path.join(dev, "cars_train_annos.mat"), "cars_train"),
            ("test", os.path.join(a.source, "cars_test_annos_withlabels.mat"), "cars_test"))
    for split, annos, folder in sets:
        for r in loadmat(require(annos, "annotations"))["annotations"].ravel():
            cls = int(r["class"].ravel()[0]) - 1
            p.put(os.path.join(a.source, folder, str(r["fname"].ravel()[0])), split, classes[cls])
    p.finish(224)


if __name__ == "__main__":
    main()
