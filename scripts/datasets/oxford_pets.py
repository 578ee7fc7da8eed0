#!/usr/bin/env python3
"""Oxford-IIIT Pets (images.tar.gz + annotations.tar.gz extracted into one folder) -> imagefolder
layout: train = annotations/trainval.txt (3680), test = annotations/test.txt (3669); lines are
"<Breed_name>_<n> <class id> <species> <breed id>", the class is the breed name (37 classes)."""
import os

from _common import Placer, parser, require


def main():
    a = parser(__doc__).parse_args()
    p = Placer(a.out, a.copy)
    for split, name in (("train", "trainval.txt"), ("test", "test.txt")):
        for line in open(require(os.path.join(a.source, "annotations", name), "split list")):
            if line.startswith("#") or not line.strip():
                continue
            image = line.split()[0]
            breed = image.rsplit("_", 1)[0]
            p.put(os.path.join(a.source, "images", image + ".jpg"), split, breed)
    p.finish(224)


if __name__ == "__main__":
    main()
