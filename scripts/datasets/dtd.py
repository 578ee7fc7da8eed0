#!/usr/bin/env python3
"""DTD (dtd-r1.0.1.tar.gz) -> imagefolder layout for one of the ten official splits:
train = labels/train<k>.txt + labels/val<k>.txt (40 + 40 images per class), test = labels/test<k>.txt
(40 per class). Lines are "<class>/<image>.jpg"."""
import os

from _common import Placer, parser, require


def main():
    ap = parser(__doc__)
    ap.add_argument("--fold", type=int, default=1, choices=range(1, 11), help="official split 1..10 (default 1)")
    a = ap.parse_args()
    src = a.source
    if os.path.isdir(os.path.join(src, "dtd")):
        src = os.path.join(src, "dtd")
    p = Placer(a.out, a.copy)
    for split, lists in (("train", ("train", "val")), ("test", ("test",))):
        for name in lists:
            for line in open(require(os.path.join(src, "labels", f"{name}{a.fold}.txt"), "split list")):
                item = line.strip()
                if item:
                    p.put(os.path.join(src, "images", item), split, item.split("/")[0])
    p.finish(224)


if __name__ == "__main__":
    main()
