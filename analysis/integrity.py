"""One notion of a usable result, as passlab's C++ has it (include/passlab/io/result_file.hpp).

A complete dense or run file is usable when it is

* complete: root attribute ``status`` is "complete";
* schema-valid: every required entry of docs/run-file.json present with its type, nothing
  undeclared (the C++ ``io::run_file::validate``);
* digest-valid: root attribute ``digest`` equals the content digest computed here, over every
  group, dataset and attribute but ``digest`` itself, in the byte stream documented in
  include/passlab/io/digest.hpp (FNV-1a 64);
* finite: no floating value anywhere is NaN or infinite, and the summary's numbers are in range.

A file written before digests (passlab 431f8cf and older) has no ``digest``: it is not usable
until ``passlab seal DIR`` has checked everything else and added one (``no_digest`` says so).
The report leaves every unusable file out of its tables and lists it with :meth:`Verdict.reason`.
"""
from __future__ import annotations

import dataclasses
import struct

import h5py
import numpy as np

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3
_MASK = (1 << 64) - 1
DIGEST_ATTR = "digest"
NON_FINITE = "non-finite values in "
NO_DIGEST = ("no content digest: written before digests (passlab 431f8cf or older); `passlab seal DIR` verifies such a "
             "file and adds one")
_BLOCK_BYTES = 32 << 20


class ContentHash:
    """Streaming FNV-1a 64 (io::ContentHash)."""

    def __init__(self):
        self.h = FNV_OFFSET

    def update(self, data: bytes):
        h = self.h
        for b in data:
            h = ((h ^ b) * FNV_PRIME) & _MASK
        self.h = h

    def hex(self) -> str:
        return f"fnv1a64:{self.h:016x}"


def _tag(dtype: np.dtype, where: str) -> str:
    if h5py.check_string_dtype(dtype) is not None:
        return "s"
    if dtype.kind in "ui" and dtype.itemsize in (1, 2, 4, 8):
        return f"{dtype.kind}{dtype.itemsize}"
    if dtype.kind == "f" and dtype.itemsize in (4, 8):
        return f"f{dtype.itemsize}"
    raise ValueError(f"{where}: an element type passlab does not write ({dtype})")


def _string_bytes(values) -> list:
    out = []
    for v in np.asarray(values, dtype=object).ravel().tolist():
        b = v.encode("utf-8") if isinstance(v, str) else bytes(v)
        out.append(b.split(b"\0", 1)[0])
    return out


class _Walker:
    def __init__(self):
        self.hash = ContentHash()
        self.non_finite = []

    def _text(self, s: str):
        self.hash.update(s.encode("utf-8") + b"\0")

    def _header(self, tag: str, shape):
        self._text(tag)
        self.hash.update(struct.pack("<Q", len(shape)) + b"".join(struct.pack("<Q", int(d)) for d in shape))

    def _strings(self, values):
        for b in _string_bytes(values):
            self.hash.update(struct.pack("<Q", len(b)) + b)

    def _numbers(self, tag: str, arr, name: str):
        a = np.ascontiguousarray(arr, dtype=np.dtype(tag).newbyteorder("<"))
        self.hash.update(a.tobytes())
        if tag[0] == "f" and (not self.non_finite or self.non_finite[-1] != name) and not np.isfinite(a).all():
            self.non_finite.append(name)

    def attributes(self, obj, path: str, root: bool):
        for name in sorted(obj.attrs.keys(), key=lambda n: n.encode("utf-8")):
            if root and name == DIGEST_ATTR:
                continue
            where = path + "@" + name
            aid = obj.attrs.get_id(name)
            tag = _tag(aid.dtype, where)
            shape = aid.shape or ()
            self.hash.update(b"A")
            self._text(name)
            self._header(tag, shape)
            value = obj.attrs[name]
            if tag == "s":
                self._strings(value)
            else:
                self._numbers(tag, np.asarray(value).reshape(-1), where)

    def dataset(self, ds, path: str):
        tag = _tag(ds.dtype, path)
        self.hash.update(b"D")
        self._text(path)
        self._header(tag, ds.shape)
        if tag == "s":
            self._strings(ds[()])
        elif ds.size > 0:
            if ds.ndim == 0:
                self._numbers(tag, np.asarray(ds[()]).reshape(-1), path)
            else:
                row_bytes = max(1, ds.size // ds.shape[0] * ds.dtype.itemsize)
                block = max(1, _BLOCK_BYTES // row_bytes)
                for start in range(0, ds.shape[0], block):
                    self._numbers(tag, ds[start:start + block], path)
        self.attributes(ds, path, False)

    def group(self, g, path: str):
        self.hash.update(b"G")
        self._text(path)
        self.attributes(g, path, path == "/")
        base = "" if path == "/" else path
        for name in sorted(g.keys(), key=lambda n: n.encode("utf-8")):
            child = g[name]
            if isinstance(child, h5py.Group):
                self.group(child, base + "/" + name)
            else:
                self.dataset(child, base + "/" + name)


def scan_content(f: h5py.File):
    """(digest "fnv1a64:<16 hex>", names of floating entries holding NaN or inf) of an open file."""
    w = _Walker()
    w.group(f, "/")
    return w.hash.hex(), w.non_finite


# ---- the declared schema (io::run_file::validate) -------------------------------------------

def _type_name(dtype: np.dtype) -> str:
    if h5py.check_string_dtype(dtype) is not None:
        return "string"
    if dtype.kind in "ui":
        return ("uint" if dtype.kind == "u" else "int") + str(8 * dtype.itemsize)
    if dtype.kind == "f":
        return f"float{8 * dtype.itemsize}"
    return str(dtype)


def _type_fits(want: str, have: str) -> bool:
    if want == "-":
        return True
    if want == "numeric":
        return have in ("uint8", "int32", "int64", "float32", "float64")
    return want == have


def _path_matches(pattern: str, path: str) -> bool:
    a, b = [p for p in pattern.split("/") if p], [p for p in path.split("/") if p]
    return len(a) == len(b) and all(x == "*" or x == y for x, y in zip(a, b))


def validate(f: h5py.File, entries: list) -> list:
    """Every problem of an open dense or run file against the schema's entries (the C++ wording)."""
    status, kind = f.attrs.get("status"), f.attrs.get("kind")
    status = status.decode() if isinstance(status, bytes) else status
    kind = kind.decode() if isinstance(kind, bytes) else kind
    for name, v in (("status", status), ("kind", kind)):
        if not isinstance(v, str):
            return [f"/@{name}: missing (not a passlab result file)"]
    if status not in ("complete", "failed"):
        return [f"/@status: '{status}', not complete or failed"]
    if kind not in ("dense", "prune"):
        return [f"/@kind: '{kind}', not dense or prune"]
    mine = [(i, e) for i, e in enumerate(entries) if kind in e["files"]]
    problems, matched, visited = [], set(), set()

    def declared(path, attr, item):
        best = None
        for i, e in mine:
            if e["item"] != item or e["attr"] != attr or not _path_matches(e["path"], path):
                continue
            if best is None or e["path"] == path:
                best = (i, e)
                if e["path"] == path:
                    break
        return best

    def check(path, attr, item, dtype):
        name = path + ("@" + attr if attr else "")
        d = declared(path, attr, item)
        if d is None:
            problems.append(f"{name}: undeclared {item} in a {kind} file")
            return None
        matched.add(d[0])
        if dtype is not None:
            have = _type_name(dtype)
            if not _type_fits(d[1]["type"], have):
                problems.append(f"{name}: {have} where the schema declares {d[1]['type']}")
        return d[1]

    def obj_attrs(obj, path):
        for a in obj.attrs.keys():
            aid = obj.attrs.get_id(a)
            e = check(path, a, "attribute", aid.dtype)
            if e is not None and aid.shape not in ((), None):
                problems.append(f"{path}@{a}: an array where the schema declares a scalar")

    def group(g, path):
        visited.add(path)
        obj_attrs(g, path)
        base = "" if path == "/" else path
        for name in g.keys():
            child, cpath = g[name], base + "/" + name
            if isinstance(child, h5py.Group):
                if declared(cpath, "", "group") is not None:
                    check(cpath, "", "group", None)
                    group(child, cpath)
                else:
                    check(cpath, "", "group", None)
            else:
                visited.add(cpath)
                check(cpath, "", "dataset", child.dtype)
                obj_attrs(child, cpath)

    group(f, "/")
    needed = {"always"} | ({"complete"} if status == "complete" else {"failed"})
    for i, e in mine:
        if i in matched or e["need"] not in needed:
            continue
        container = e["path"] if e["attr"] else (e["path"].rsplit("/", 1)[0] or "/")
        if "*" not in container and container not in visited:
            continue
        name = e["path"] + ("@" + e["attr"] if e["attr"] else "")
        every = "every" if e["need"] == "always" else e["need"]
        problems.append(f"{name}: missing ({e['item']} required in {every} {kind} file)")
    return problems


# ---- the verdict ---------------------------------------------------------------------------

@dataclasses.dataclass
class Verdict:
    state: str                      # complete | failed | unusable
    kind: str = ""
    problems: list = dataclasses.field(default_factory=list)
    no_digest: bool = False         # complete but written before digests (`passlab seal` may seal it)

    @property
    def usable(self) -> bool:
        return self.state == "complete"

    def reason(self) -> str:
        return "; ".join(self.problems)


def _summary_problems(f, kind: str) -> list:
    if "summary" not in f or not isinstance(f["summary"], h5py.Group):
        return []
    s = f["summary"].attrs

    def number(name):
        try:
            return float(s[name]) if name in s else float("nan")
        except (TypeError, ValueError):
            return float("nan")
    out = []
    top1 = number("top1")
    if not (0 <= top1 <= 1):
        out.append(f"summary top1 is {top1:.6f}, not in [0, 1]")
    if not number("macs") > 0:
        out.append("summary macs missing or not positive")
    if kind == "prune":
        ratio = number("mac_ratio")
        if not (0 < ratio <= 1 + 1e-9):
            out.append(f"summary mac_ratio is {ratio:.6f}")
    return out


def check_open(f: h5py.File, entries: list) -> Verdict:
    """The verdict of an open dense or run file (io::run_file::check)."""
    def text(name):
        v = f.attrs.get(name)
        return v.decode() if isinstance(v, bytes) else v
    status = text("status")
    if not isinstance(status, str):
        return Verdict("unusable", problems=["no status attribute: not written by passlab, or damaged"])
    kind = text("kind") if isinstance(text("kind"), str) else ""
    if status not in ("complete", "failed"):
        return Verdict("unusable", kind, [f"status '{status}': the task did not finish"])
    problems = list(validate(f, entries))
    digest, non_finite = scan_content(f)
    if non_finite:
        shown = ", ".join(non_finite[:6]) + (f" and {len(non_finite) - 6} more" if len(non_finite) > 6 else "")
        problems.append(NON_FINITE + shown)
    if status == "complete":
        problems += _summary_problems(f, kind)
    elif not text("error"):
        problems.append("failed without an error attribute")
    stored = text(DIGEST_ATTR)
    no_digest = False
    if stored is None:
        if status == "complete":
            no_digest = True
            problems.append(NO_DIGEST)
    elif stored != digest:
        problems.append(f"content digest mismatch: the file says {stored}, its content gives {digest} "
                        "(changed after it was written)")
    return Verdict("unusable" if problems else status, kind, problems, no_digest)


def check(path, entries: list) -> Verdict:
    """The verdict of a dense or run file; never raises for a missing, unreadable or bad file."""
    try:
        with h5py.File(path, "r") as f:
            return check_open(f, entries)
    except Exception as e:  # h5py raises OSError/KeyError/RuntimeError with HDF5's own words
        return Verdict("unusable", problems=[f"unreadable ({type(e).__name__}: {e})"])
