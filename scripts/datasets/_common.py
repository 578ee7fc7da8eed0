"""Shared helpers of the dataset reshuffle scripts: they turn an official archive's layout into
the one `passlab prepare imagefolder` reads, root/{train,test}/<class>/<image>, by symbolic links
(default; no extra disk) or copies (--copy)."""
import argparse
import os
import shutil
import sys
from collections import Counter


def parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("source", help="extracted official archive (see docs/datasets.md)")
    p.add_argument("out", help="output folder: out/{train,test}/<class>/<image>")
    p.add_argument("--copy", action="store_true", help="copy the images instead of symlinking them")
    return p


def die(msg):
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(1)


def require(path, what):
    if not os.path.exists(path):
        die(f"{path} does not exist ({what}); is the archive extracted into the source folder?")
    return path


class Placer:
    """Places images into out/<split>/<class>/<name>, counting per split and class."""

    def __init__(self, out, copy):
        self.out, self.copy = out, copy
        self.counts = {"train": Counter(), "test": Counter()}
        if os.path.exists(out) and os.listdir(out):
            die(f"{out} exists and is not empty")

    def put(self, src, split, cls, name=None):
        if not os.path.isfile(src):
            die(f"{src}: listed by the split files but missing")
        cls = cls.replace("/", "_").strip()
        d = os.path.join(self.out, split, cls)
        os.makedirs(d, exist_ok=True)
        dst = os.path.join(d, name or os.path.basename(src))
        if os.path.lexists(dst):
            die(f"{dst}: two images map to the same name")
        if self.copy:
            shutil.copy2(src, dst)
        else:
            os.symlink(os.path.abspath(src), dst)
        self.counts[split][cls] += 1

    def finish(self, size):
        for split in ("train", "test"):
            c = self.counts[split]
            if not c:
                die(f"no {split} images were placed")
            print(f"{split}: {sum(c.values())} images in {len(c)} classes")
        missing = set(self.counts["train"]) - set(self.counts["test"])
        if missing:
            print(f"note: {len(missing)} classes have no test images", file=sys.stderr)
        print(f"next: passlab prepare imagefolder {self.out} --size {size} --out data/<name>.h5")
