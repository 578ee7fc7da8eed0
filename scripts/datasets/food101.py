#!/usr/bin/env python3
"""Food-101 (food-101.tar.gz) -> imagefolder layout, using the official meta/train.txt and
meta/test.txt (750 train and 250 test images per class; lines are "<class>/<id>")."""
import os

from _common import Placer, parser, require


def main():
    a = parser(__doc__).parse_args()
    src = a.source
    if os.path.isdir(os.path.join(src, "food-101")):
        src = os.path.join(src, "food-101")
    p = Placer(a.out, a.copy)
    for split in ("train", "test"):
        for line in open(require(os.path.join(src, "meta", f"{split}.txt"), "split list")):
            item = line.strip()
            if item:
                cls = item.split("/")[0]
                p.put(os.path.join(src, "images", item + ".jpg"), split, cls)
    p.finish(224)


if __name__ == "__main__":
    main()
