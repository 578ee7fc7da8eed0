#!/usr/bin/env python3
"""Tiny-ImageNet (tiny-imagenet-200.zip) -> imagefolder layout.
train/<wnid>/images/*.JPEG -> train/<wnid>/; val/images + val/val_annotations.txt -> test/<wnid>/
(the official test split has no labels, so the labelled val split serves as test, as in the
pruning literature). Class folders are WordNet ids (wnids.txt); words.txt has their names."""
import os

from _common import Placer, parser, require


def main():
    a = parser(__doc__).parse_args()
    src = a.source
    if os.path.isdir(os.path.join(src, "tiny-imagenet-200")):
        src = os.path.join(src, "tiny-imagenet-200")
    wnids = [w.strip() for w in open(require(os.path.join(src, "wnids.txt"), "class list")) if w.strip()]
    p = Placer(a.out, a.copy)
    for w in wnids:
        d = require(os.path.join(src, "train", w, "images"), "train images")
        for f in sorted(os.listdir(d)):
            if f.lower().endswith((".jpeg", ".jpg")):
                p.put(os.path.join(d, f), "train", w)
    for line in open(require(os.path.join(src, "val", "val_annotations.txt"), "val labels")):
        parts = line.split("\t")
        if len(parts) >= 2:
            p.put(os.path.join(src, "val", "images", parts[0]), "test", parts[1])
    p.finish(64)


if __name__ == "__main__":
    main()
