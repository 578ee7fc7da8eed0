#!/usr/bin/env python3
"""Oxford Flowers-102 (102flowers.tgz + imagelabels.mat + setid.mat in one folder) -> imagefolder
layout: train = trnid + valid (10 + 10 images per class), test = tstid (6149 images). Class folders
are the label numbers 001..102 (the archive has no class names). Needs scipy to read the .mat files."""
import os

from _common import Placer, die, parser, require


def main():
    a = parser(__doc__).parse_args()
    try:
        from scipy.io import loadmat
    except ImportError:
        die("reading imagelabels.mat/setid.mat needs scipy: pip install scipy")
    labels = loadmat(require(os.path.join(a.source, "imagelabels.mat"), "labels"))["labels"].ravel()
    setid = loadmat(require(os.path.join(a.source, "setid.mat"), "split ids"))
    jpg = require(os.path.join(a.source, "jpg"), "images")
    p = Placer(a.out, a.copy)
    for split, keys in (("train", ("trnid", "valid")), ("test", ("tstid",))):
        for key in keys:
            for i in sorted(int(v) for v in setid[key].ravel()):
                p.put(os.path.join(jpg, f"image_{i:05d}.jpg"), split, f"{int(labels[i - 1]):03d}")
    p.finish(224)


if __name__ == "__main__":
    main()
